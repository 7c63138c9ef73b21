//! Ingest: webhooks in over HTTP, each turned into an event, evaluated, and committed
//! with its deliveries before the sender hears 202.
//!
//! A refused request stores nothing. Every refusal carries a JSON `{"error": ...}` that
//! tells the sender what to change.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::config::SourceConfig;
use crate::event::{new_id, Category, Event};
use crate::server::AppState;

/// Headers never kept with an event: they carry credentials.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "x-auth-token",
];

/// At most this many headers are kept with one event.
pub const MAX_KEPT_HEADERS: usize = 64;

/// Longer header values are not kept.
pub const MAX_HEADER_VALUE: usize = 4096;

/// The webhook routes: `PUT` and `POST`, at `/webhook/{apiId}` and `/ingest/webhook/{apiId}`.
pub fn router() -> Router<Arc<AppState>> {
    let route = || put(receive_webhook).post(receive_webhook);
    Router::new()
        .route("/webhook/{api_id}", route())
        .route("/ingest/webhook/{api_id}", route())
}

/// The known sources, with keys held only as SHA-256 digests.
pub struct Sources {
    entries: Vec<(String, [u8; 32])>,
}

impl Sources {
    pub fn new(sources: &[SourceConfig]) -> Self {
        let entries = sources
            .iter()
            .map(|s| (s.name.clone(), digest(s.api_key.expose())))
            .collect();
        Sources { entries }
    }

    /// The source owning `key`. Every entry is compared, in constant time, so the
    /// answer's timing says nothing about which keys exist.
    pub fn find(&self, key: &str) -> Option<&str> {
        let presented = digest(key);
        let mut found = None;
        for (name, hash) in &self.entries {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(name.as_str());
            }
        }
        found
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|(n, _)| n.clone()).collect()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A refusal sent to the client as `{"error": ...}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A failure on our side: the detail is logged, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the event was not stored, send it again",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}

async fn receive_webhook(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(source) = state.sources.find(&api_id).map(str::to_string) else {
        tracing::warn!(outcome = "unknown_key", "webhook refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown API key: check the key in the webhook URL",
        ));
    };
    let id = new_id();
    let span = tracing::info_span!("webhook", source = %source, event_id = %id);
    async move {
        let bytes = read_body(body, &headers, state.max_body).await?;
        let message = String::from_utf8(bytes).map_err(|_| {
            tracing::warn!(outcome = "not_utf8", "webhook refused");
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body is not UTF-8 text; send text or JSON encoded as UTF-8",
            )
        })?;
        let event = build_event(id, source, message, &headers, &query);
        accept(&state, event).await
    }
    .instrument(span)
    .await
}

/// Evaluates and commits the event, then queues its deliveries.
async fn accept(state: &Arc<AppState>, event: Event) -> Result<Response, ApiError> {
    let evaluation = state.engine.evaluate(&event);
    let store = state.store.clone();
    let event_id = event.id.clone();
    let deliveries = evaluation.deliveries;
    let matched = evaluation.matched;
    let committed = tokio::task::spawn_blocking(move || {
        store
            .insert_event(&event, &matched, &deliveries)
            .map(|()| (deliveries, matched))
    })
    .await;
    let (deliveries, matched) = match committed {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Err(ApiError::internal(e)),
        Err(e) => return Err(ApiError::internal(e)),
    };
    tracing::debug!(matched = ?matched, deliveries = deliveries.len(), "event stored");
    state.dispatcher.enqueue(deliveries);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "event_id": event_id })),
    )
        .into_response())
}

/// Reads the body up to `limit` bytes; past that the request is refused with 413.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        tracing::warn!(outcome = "too_large", limit, "webhook refused");
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = body;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::warn!(outcome = "unreadable", error = %e, "webhook refused");
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "the body could not be read completely; send it again",
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// Builds the event: the body is the message; JSON is also kept parsed when it parses.
fn build_event(
    id: String,
    source: String,
    message: String,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Event {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let looks_json = content_type.as_deref().is_some_and(|c| c.contains("json"))
        || message.trim_start().starts_with(['{', '[']);
    let json = if looks_json {
        serde_json::from_str(&message).ok()
    } else {
        None
    };
    let category = query
        .get("category")
        .and_then(|c| Category::parse(c))
        .unwrap_or_default();
    Event {
        id,
        received_at: OffsetDateTime::now_utc(),
        source,
        title: query.get("title").cloned().unwrap_or_default(),
        message,
        content_type,
        headers: kept_headers(headers),
        category,
        tags: Vec::new(),
        json,
    }
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !DROPPED_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            let value = value
                .to_str()
                .ok()
                .filter(|v| v.len() <= MAX_HEADER_VALUE)?;
            Some((name.as_str().to_string(), value.to_string()))
        })
        .take(MAX_KEPT_HEADERS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn sources_are_found_by_key_only() {
        let sources = Sources::new(&[
            SourceConfig {
                name: "ci".into(),
                api_key: Secret::new("a".repeat(20)),
                verify: None,
                rate_limit: None,
            },
            SourceConfig {
                name: "nagios".into(),
                api_key: Secret::new("b".repeat(20)),
                verify: None,
                rate_limit: None,
            },
        ]);
        assert_eq!(sources.find(&"b".repeat(20)), Some("nagios"));
        assert_eq!(sources.find(&"a".repeat(19)), None);
        assert_eq!(sources.find(""), None);
    }

    #[test]
    fn credentials_are_not_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer x".parse().unwrap());
        headers.insert("x-github-event", "push".parse().unwrap());
        assert_eq!(
            kept_headers(&headers),
            [("x-github-event".to_string(), "push".to_string())]
        );
    }

    #[test]
    fn json_bodies_are_parsed_and_broken_json_stays_text() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let query = HashMap::new();
        let good = build_event(
            "1".into(),
            "s".into(),
            "{\"a\": [1]}".into(),
            &headers,
            &query,
        );
        assert_eq!(good.json, Some(serde_json::json!({"a": [1]})));
        let broken = build_event("2".into(), "s".into(), "{\"a\": ".into(), &headers, &query);
        assert_eq!((broken.json, broken.message.as_str()), (None, "{\"a\": "));
    }
}
