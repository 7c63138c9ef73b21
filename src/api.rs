//! The API for operators: events with their matches and deliveries, the notification
//! ledger (with retry of dead deliveries), the loaded policies (with mute), and health.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::ingest::ApiError;
use crate::server::AppState;
use crate::store::{now_ms, Delivery, DeliveryFilter, DeliveryStatus, RetryOutcome, StoredEvent};

/// The most items one list request returns.
pub const MAX_PAGE: usize = 500;

/// Items returned when `limit` is not given.
pub const DEFAULT_PAGE: usize = 50;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/events", get(list_events))
        .route("/api/events/{id}", get(get_event))
        .route("/api/notifications", get(list_notifications))
        .route("/api/notifications/{id}", get(get_notification))
        .route("/api/notifications/{id}/retry", post(retry_notification))
        .route("/api/policies", get(list_policies))
        .route(
            "/api/policies/{name}/mute",
            post(mute_policy).delete(unmute_policy),
        )
        .route("/-/healthy", get(|| async { "ok\n" }))
        .route("/-/ready", get(ready))
}

fn limit(query: &HashMap<String, String>) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`limit` must be 1 to {MAX_PAGE}, found `{text}`"),
            )),
        },
    }
}

/// Runs a blocking store call off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

async fn list_events(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(&query)?;
    let store = state.store.clone();
    let events = blocking(move || store.recent_events(limit)).await?;
    let events: Vec<Value> = events.iter().map(event_json).collect();
    Ok(Json(json!({ "events": events })))
}

async fn get_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let found = blocking(move || {
        let Some(event) = store.event(&id)? else {
            return Ok(None);
        };
        let filter = DeliveryFilter {
            event_id: Some(event.event.id.clone()),
            ..DeliveryFilter::default()
        };
        let deliveries = store.deliveries(&filter, MAX_PAGE)?;
        Ok(Some((event, deliveries)))
    })
    .await?;
    let Some((event, deliveries)) = found else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no event has this id"));
    };
    let mut body = event_json(&event);
    body["deliveries"] = deliveries.iter().map(delivery_json).collect();
    Ok(Json(body))
}

/// The ledger: `?status=`, `?policy=`, `?event_id=` and `?limit=` narrow it.
async fn list_notifications(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(&query)?;
    let status = match query.get("status") {
        None => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            let names = crate::yaml::backticked(DeliveryStatus::NAMES);
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`status` must be one of {names}, found `{text}`"),
            )
        })?),
    };
    let filter = DeliveryFilter {
        event_id: query.get("event_id").cloned(),
        policy: query.get("policy").cloned(),
        status,
    };
    let store = state.store.clone();
    let deliveries = blocking(move || store.deliveries(&filter, limit)).await?;
    let items: Vec<Value> = deliveries.iter().map(delivery_json).collect();
    Ok(Json(json!({ "notifications": items })))
}

/// One delivery with the message it sends (secrets appear as `${NAME}` only).
async fn get_notification(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let Some(delivery) = blocking(move || store.delivery(&id)).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no notification has this id",
        ));
    };
    let mut body = delivery_json(&delivery);
    body["message"] = serde_json::to_value(&delivery.message).unwrap_or(Value::Null);
    Ok(Json(body))
}

/// Sends a dead (or failed) delivery again, now, with a fresh retry schedule.
async fn retry_notification(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let store = state.store.clone();
    let key = id.clone();
    match blocking(move || store.retry(&key, now_ms())).await? {
        RetryOutcome::Queued => {
            tracing::info!(delivery_id = %id, "notification queued for retry");
            state.dispatcher.wake();
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "id": id, "status": "pending" })),
            ))
        }
        RetryOutcome::NotFound => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no notification has this id",
        )),
        RetryOutcome::NotRetryable(status) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the notification is `{}`; only `dead` and `failed` ones can be retried",
                status.as_str()
            ),
        )),
    }
}

/// Mutes a policy: `{"for": "2h"}` or `{"until": "2026-01-01T12:00:00Z"}`.
async fn mute_policy(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    known_policy(&state, &name)?;
    let until = crate::notify::mute::until_from_json(&body, now_ms())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    set_mute(&state, name, Some(until)).await
}

async fn unmute_policy(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    known_policy(&state, &name)?;
    set_mute(&state, name, None).await
}

fn known_policy(state: &AppState, name: &str) -> Result<(), ApiError> {
    let set = state.engine.policies();
    crate::notify::mute::check_policy(&set, name)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e))
}

async fn set_mute(
    state: &AppState,
    name: String,
    until: Option<i64>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let policy = name.clone();
    blocking(move || store.set_mute(&policy, until)).await?;
    let until_text = until.map(crate::notify::mute::time_text);
    tracing::info!(policy = %name, until = ?until_text, "policy mute changed");
    Ok(Json(json!({ "policy": name, "muted_until": until_text })))
}

async fn list_policies(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let set = state.engine.policies();
    let store = state.store.clone();
    let mutes = blocking(move || store.mutes(now_ms())).await?;
    let muted_until = |name: &str| {
        mutes
            .iter()
            .find(|m| m.policy == name)
            .map(|m| crate::notify::mute::time_text(m.until))
    };
    let policies: Vec<Value> = set
        .policies
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "description": p.description,
                "category": p.category,
                "enabled": p.enabled,
                "sources": p.sources,
                "file": &*p.file,
                "actions": p.actions.len(),
                "muted_until": muted_until(&p.name),
            })
        })
        .collect();
    Ok(Json(json!({ "policies": policies })))
}

async fn ready(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    let store = state.store.clone();
    blocking(move || store.recent_events(1)).await?;
    Ok("ready\n")
}

fn event_json(stored: &StoredEvent) -> Value {
    let e = &stored.event;
    json!({
        "id": e.id,
        "received_at": e.received_rfc3339(),
        "source": e.source,
        "title": e.title,
        "category": e.category,
        "content_type": e.content_type,
        "message": e.message,
        "json": e.json,
        "headers": e.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "matched": stored.matched,
    })
}

/// The ledger's shape for one delivery; documented in `docs/notifications.md`, so
/// fields are added, never renamed or removed.
fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "policy": d.policy,
        "action": d.action,
        "channel": d.channel,
        "alert": d.alert,
        "recipient": d.recipient,
        "subject": d.subject,
        "status": d.status,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "response": d.response,
        "next_attempt_at": d.next_attempt_at,
        "incident_id": d.incident_id,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "sent_at": d.sent_at,
    })
}
