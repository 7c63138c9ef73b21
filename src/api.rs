//! The read API for operators and the operations endpoints: the Event Explorer (events
//! filtered and paged, one event with its explanation and deliveries, deletion by
//! policy), the notification ledger, the loaded policies with the last reload's outcome,
//! health, readiness, metrics and reload.

pub mod filter;

use std::collections::HashMap;
use std::sync::Arc;

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
use crate::store::{Delivery, StoredEvent};

pub use filter::{DEFAULT_PAGE, MAX_PAGE};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/events", get(list_events).delete(delete_events))
        .route("/api/events/{id}", get(get_event))
        .route("/api/notifications", get(list_notifications))
        .route("/api/policies", get(list_policies))
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
        let deliveries = store.deliveries(Some(&event.event.id), MAX_PAGE)?;
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

async fn list_notifications(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = filter::limit(query.get("limit").map(String::as_str))?;
    let store = state.store.clone();
    let deliveries = blocking(move || store.deliveries(None, limit)).await?;
    let items: Vec<Value> = deliveries.iter().map(delivery_json).collect();
    Ok(Json(json!({ "notifications": items })))
}

async fn list_policies(State(state): State<Arc<AppState>>) -> Json<Value> {
    let set = state.engine.policies();
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
            })
        })
        .collect();
    let status = state.reloader.status();
    let reload = json!({
        "last_success": status.last_success,
        "last_error": status.last_error,
        "trigger": status.trigger,
    });
    Json(json!({ "policies": policies, "reload": reload }))
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

fn delivery_json(d: &Delivery) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}
