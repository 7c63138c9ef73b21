//! The read API for operators: events with their matches and deliveries, the
//! notification ledger, the loaded policies, and health.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::ingest::ApiError;
use crate::server::AppState;
use crate::store::{Delivery, StoredEvent};

/// The most items one list request returns.
pub const MAX_PAGE: usize = 500;

/// Items returned when `limit` is not given.
pub const DEFAULT_PAGE: usize = 50;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/events", get(list_events))
        .route("/api/events/{id}", get(get_event))
        .route("/api/notifications", get(list_notifications))
        .route("/api/policies", get(list_policies))
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
        let deliveries = store.deliveries(Some(&event.event.id), MAX_PAGE)?;
        Ok(Some((event, deliveries)))
    })
    .await?;
    let Some((event, deliveries)) = found else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no event has this id"));
    };
    let mut body = event_json(&event);
    body["deliveries"] = deliveries.iter().map(delivery_json).collect();
    let (store, current) = (state.store.clone(), state.engine.policies());
    let explanation = tokio::task::spawn_blocking(move || {
        let explanation = state.explainer.explain(store.as_ref(), &current, &event);
        serde_json::to_value(explanation).unwrap_or(Value::Null)
    })
    .await
    .map_err(ApiError::internal)?;
    body["explanation"] = explanation;
    Ok(Json(body))
}

async fn list_notifications(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(&query)?;
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
    Json(json!({ "policies": policies }))
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

fn delivery_json(d: &Delivery) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}
