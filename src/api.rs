//! The API for operators and the operations endpoints: the Event Explorer (events
//! filtered and paged, one event with its explanation and deliveries, deletion by
//! policy), the notification ledger (with retry of dead deliveries), the loaded policies
//! (with mute and the last reload's outcome), health, readiness, metrics and reload.

pub mod filter;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::explain::Explanation;
use crate::ingest::{blocking, ApiError};
use crate::server::AppState;
use crate::store::{now_ms, Delivery, DeliveryFilter, DeliveryStatus, RetryOutcome, StoredEvent};

pub use filter::{DEFAULT_PAGE, MAX_PAGE};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/events", get(list_events).delete(delete_events))
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
        .route("/-/reload", post(reload))
        .route("/metrics", get(metrics))
}

async fn list_events(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = filter::from_query(&query, OffsetDateTime::now_utc())?;
    let store = state.store.clone();
    let page = blocking(move || store.query_events(&filter)).await?;
    let events: Vec<Value> = page.events.iter().map(event_json).collect();
    let next = page.next.map(|c| c.encode());
    Ok(Json(json!({ "events": events, "next_cursor": next })))
}

/// An event with what a person asks next: why each policy did or did not match, and
/// what was sent.
pub struct EventDetail {
    pub event: StoredEvent,
    pub explanation: Explanation,
    pub deliveries: Vec<Delivery>,
}

/// Loads one event's detail; `None` when no event has the id.
pub async fn event_detail(
    state: &Arc<AppState>,
    id: String,
) -> Result<Option<EventDetail>, ApiError> {
    let (store, current, state) = (state.store.clone(), state.engine.policies(), state.clone());
    blocking(move || {
        let Some(event) = store.event(&id)? else {
            return Ok(None);
        };
        let filter = DeliveryFilter {
            event_id: Some(event.event.id.clone()),
            ..Default::default()
        };
        let deliveries = store.deliveries(&filter, MAX_PAGE)?;
        let explanation = state.explainer.explain(store.as_ref(), &current, &event);
        Ok(Some(EventDetail {
            event,
            explanation,
            deliveries,
        }))
    })
    .await
}

async fn get_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(detail) = event_detail(&state, id).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no event has this id"));
    };
    let mut body = event_json(&detail.event);
    body["explanation"] = serde_json::to_value(&detail.explanation).unwrap_or(Value::Null);
    body["deliveries"] = detail.deliveries.iter().map(delivery_json).collect();
    Ok(Json(body))
}

/// `DELETE /api/events?policy=NAME`: removes the events a noisy policy matched.
async fn delete_events(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(other) = query.keys().find(|k| *k != "policy") {
        let message = format!("unknown parameter `{other}`; only `policy` is accepted");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, message));
    }
    let Some(policy) = query.get("policy").filter(|p| !p.is_empty()).cloned() else {
        let message = "give `policy=NAME`: the events that policy matched are deleted";
        return Err(ApiError::new(StatusCode::BAD_REQUEST, message));
    };
    let store = state.store.clone();
    let name = policy.clone();
    let deleted = blocking(move || store.delete_policy_events(&name)).await?;
    state.metrics.add(
        crate::metrics::EVENTS_REMOVED,
        &[("reason", "deleted")],
        deleted,
    );
    tracing::info!(policy = %policy, deleted, "events deleted by request");
    Ok(Json(json!({ "deleted": deleted, "policy": policy })))
}

/// The ledger: `?status=`, `?policy=`, `?event_id=` and `?limit=` narrow it.
async fn list_notifications(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = filter::limit(query.get("limit").map(String::as_str))?;
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
    let status = state.reloader.status();
    let reload = json!({
        "last_success": status.last_success,
        "last_error": status.last_error,
        "trigger": status.trigger,
    });
    Ok(Json(json!({ "policies": policies, "reload": reload })))
}

/// Ready when the store answers and a policy set is loaded (a failed reload keeps the
/// previous set, so it stays ready).
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let store = state.store.clone();
    let policies = state.engine.policies().policies.len();
    match tokio::task::spawn_blocking(move || store.stats()).await {
        Ok(Ok(_)) => {
            Json(json!({ "ready": true, "store": "ok", "policies": policies })).into_response()
        }
        Ok(Err(e)) => not_ready(e.to_string()),
        Err(e) => not_ready(e.to_string()),
    }
}

fn not_ready(detail: String) -> Response {
    tracing::error!(error = %detail, "readiness check failed: the store does not answer");
    let body = json!({ "ready": false, "store": "unreachable" });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn reload(State(state): State<Arc<AppState>>) -> Response {
    match state.reload("api").await {
        Ok(count) => Json(json!({ "reloaded": true, "policies": count })).into_response(),
        Err(errors) => {
            let body = json!({
                "error": "the policies have errors; the previous policies keep running",
                "errors": errors.lines().collect::<Vec<_>>(),
            });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let store = state.store.clone();
    let stats = match tokio::task::spawn_blocking(move || store.stats()).await {
        Ok(Ok(stats)) => Some(stats),
        _ => None,
    };
    let text = state.metrics.render(stats.as_ref());
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// An event as the API shows it.
pub fn event_json(stored: &StoredEvent) -> Value {
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
        "tags": e.tags.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "matched": stored.matched,
    })
}

/// The ledger's shape for one delivery; documented in `docs/notifications.md`, so
/// fields are added, never renamed or removed.
pub fn delivery_json(d: &Delivery) -> Value {
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
