//! Ingest: webhooks and structured events in over HTTP, each turned into an event,
//! evaluated, and committed with its deliveries before the sender hears 2xx.
//!
//! Every request passes the same gate, in this order: the API key names a source, the
//! source's rate limit admits it, the body arrives whole within the size and time
//! limits, and its signature verifies when the source requires one. A refused request
//! stores nothing. Every refusal carries a JSON `{"error": ...}` that tells the sender
//! what to change; none repeats a key or a secret.

pub mod batch;
pub mod commit;
pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use http_body_util::BodyExt;
use time::OffsetDateTime;
use tracing::Instrument;

pub use sources::{Source, Sources};

use crate::event::{new_id, Category, Event};
use crate::metrics::{POLICY_MATCHES, WEBHOOKS};
use crate::server::AppState;
use crate::store::Inserted;

/// Headers never kept with an event: they carry credentials.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "x-auth-token",
];

/// Headers that carry a sender's idempotency key, in the order they are looked for.
pub const IDEMPOTENCY_HEADERS: &[&str] = &["idempotency-key", "webhook-id", "x-github-delivery"];

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

/// At most this many headers are kept with one event.
pub const MAX_KEPT_HEADERS: usize = 64;

/// Longer header values are not kept.
pub const MAX_HEADER_VALUE: usize = 4096;

/// The ingest routes: webhooks (`PUT` and `POST`, at `/webhook/{apiId}` and
/// `/ingest/webhook/{apiId}`) and structured events at `/ingest/events/{apiId}`.
pub fn router() -> Router<Arc<AppState>> {
    let route = || put(receive_webhook).post(receive_webhook);
    Router::new()
        .route("/webhook/{api_id}", route())
        .route("/ingest/webhook/{api_id}", route())
        .route("/ingest/events/{api_id}", post(receive_events))
}

/// A refusal sent to the client as `{"error": ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    /// More detail for the client, such as the mistakes in a batch.
    errors: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            errors: None,
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

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The text the client sees.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A request that passed the gate: its source and its whole body.
struct Admitted {
    source: String,
    body: Vec<u8>,
}

/// Logs and counts a refusal, and builds its answer.
fn refuse(
    state: &AppState,
    source: &str,
    outcome: &'static str,
    status: StatusCode,
    message: impl Into<String>,
) -> ApiError {
    tracing::warn!(source, outcome, "request refused");
    state
        .metrics
        .inc(WEBHOOKS, &[("source", source), ("outcome", outcome)]);
    ApiError::new(status, message)
}

/// Key, rate limit, body and signature, in that order.
async fn admit(
    state: &AppState,
    api_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Admitted, ApiError> {
    let Some(source) = state.sources.find(api_id) else {
        let message = "unknown API key: check the key in the URL";
        return Err(refuse(
            state,
            "unknown",
            "unknown_key",
            StatusCode::UNAUTHORIZED,
            message,
        ));
    };
    let name = source.name.as_str();
    if let Err(wait) = source.admit() {
        let seconds = wait.as_secs() + 1;
        let message = format!("too many requests from this source; retry in {seconds} s");
        let mut error = refuse(
            state,
            name,
            "rate_limited",
            StatusCode::TOO_MANY_REQUESTS,
            message,
        );
        error.retry_after = Some(seconds);
        return Err(error);
    }
    let bytes = read_body(body, headers, state.max_body, state.read_timeout)
        .await
        .map_err(|(outcome, error)| {
            tracing::warn!(source = name, outcome, "request refused");
            state
                .metrics
                .inc(WEBHOOKS, &[("source", name), ("outcome", outcome)]);
            error
        })?;
    if let Some(verifier) = &source.verify {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if let Err(why) = verifier.verify(headers, &bytes, now) {
            return Err(refuse(
                state,
                name,
                "bad_signature",
                StatusCode::UNAUTHORIZED,
                why.to_string(),
            ));
        }
    }
    Ok(Admitted {
        source: name.to_string(),
        body: bytes,
    })
}

/// The sender's idempotency key, from the first header that carries one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some((name, value)) = IDEMPOTENCY_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).map(|v| (name, v)))
    else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.trim().is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => {
            Ok(Some(key.trim().to_string()))
        }
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the `{name}` header must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters"),
        )),
    }
}

fn idempotency_since() -> i64 {
    let since = OffsetDateTime::now_utc() - IDEMPOTENCY_WINDOW;
    crate::store::sqlite::unix_ms(since)
}

async fn receive_webhook(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Admitted { source, body } = admit(&state, &api_id, &headers, body).await?;
    let id = new_id();
    let span = tracing::info_span!("webhook", source = %source, event_id = %id);
    async move {
        let key = idempotency_key(&headers)?;
        if let Some(key) = &key {
            let (store, src, key) = (state.store.clone(), source.clone(), key.clone());
            let since = idempotency_since();
            let found = blocking(move || store.idempotent_event(&src, &key, since)).await?;
            if let Some(original) = found {
                return Ok(duplicate(&state, &source, original));
            }
        }
        let message = String::from_utf8(body).map_err(|_| {
            let message = "the body is not UTF-8 text; send text or JSON encoded as UTF-8";
            refuse(
                &state,
                &source,
                "not_utf8",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message,
            )
        })?;
        let event = build_event(id, source.clone(), message, &headers, &query);
        let event_id = event.id.clone();
        match commit(&state, &source, vec![event], key).await?.pop() {
            Some(Inserted::Duplicate { event_id }) => Ok(duplicate(&state, &source, event_id)),
            _ => Ok(accepted(json_id(&event_id))),
        }
    }
    .instrument(span)
    .await
}

fn json_id(id: &str) -> serde_json::Value {
    serde_json::json!({ "event_id": id })
}

fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// A repeated idempotency key: the original event, not evaluated again.
fn duplicate(state: &AppState, source: &str, original: String) -> Response {
    tracing::info!(source, original = %original, "repeated delivery; answered with the original event");
    state
        .metrics
        .inc(WEBHOOKS, &[("source", source), ("outcome", "duplicate")]);
    let body = serde_json::json!({ "event_id": original, "duplicate": true });
    (StatusCode::OK, Json(body)).into_response()
}

async fn receive_events(
    State(state): State<Arc<AppState>>,
    Path(api_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Admitted { source, body } = admit(&state, &api_id, &headers, body).await?;
    let span = tracing::info_span!("events", source = %source);
    async move {
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            let message = format!("the body is not valid JSON: {e}");
            refuse(&state, &source, "invalid", StatusCode::BAD_REQUEST, message)
        })?;
        let events =
            batch::parse(&source, &value, OffsetDateTime::now_utc()).map_err(|errors| {
                let message = format!("{} mistakes in the batch; nothing was stored", errors.len());
                let mut error =
                    refuse(&state, &source, "invalid", StatusCode::BAD_REQUEST, message);
                error.errors = serde_json::to_value(&errors).ok();
                error
            })?;
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        commit(&state, &source, events, None).await?;
        Ok(accepted(
            serde_json::json!({ "accepted": ids.len(), "event_ids": ids }),
        ))
    }
    .instrument(span)
    .await
}

/// Evaluates the events and commits them, all or none, with the other requests waiting
/// ([`commit::Committer`]); then wakes the dispatcher for their deliveries.
async fn commit(
    state: &Arc<AppState>,
    source: &str,
    events: Vec<Event>,
    key: Option<String>,
) -> Result<Vec<Inserted>, ApiError> {
    let evaluations = events.iter().map(|e| state.engine.evaluate(e)).collect();
    let batch = commit::Batch {
        events,
        evaluations,
        key,
        idempotency_since_ms: idempotency_since(),
    };
    let (batch, result) = state
        .committer
        .commit(batch)
        .await
        .map_err(ApiError::internal)?;
    let inserted = result.map_err(ApiError::internal)?;
    for (evaluation, inserted) in batch.evaluations.into_iter().zip(&inserted) {
        if *inserted != Inserted::New {
            continue;
        }
        state
            .metrics
            .inc(WEBHOOKS, &[("source", source), ("outcome", "accepted")]);
        for policy in &evaluation.matched {
            state.metrics.inc(POLICY_MATCHES, &[("policy", policy)]);
        }
        tracing::debug!(matched = ?evaluation.matched, deliveries = evaluation.deliveries.len(), "event stored");
        state.dispatcher.enqueue(evaluation.deliveries);
    }
    Ok(inserted)
}

/// Runs a blocking store call off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Reads the body up to `limit` bytes within `timeout`; refusals carry their outcome.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, (&'static str, ApiError)> {
    match tokio::time::timeout(timeout, read_limited(body, headers, limit)).await {
        Ok(result) => result,
        Err(_) => Err((
            "timeout",
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s; send it faster or in one piece",
                    timeout.as_secs()
                ),
            ),
        )),
    }
}

async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, (&'static str, ApiError)> {
    let too_large = || {
        let message = format!("the body is larger than the limit of {limit} bytes");
        (
            "too_large",
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message),
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
        let frame = frame.map_err(|_| {
            let message = "the body could not be read completely; send it again";
            (
                "unreadable",
                ApiError::new(StatusCode::BAD_REQUEST, message),
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
    query: &[(String, String)],
) -> Event {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json = crate::event::parse_json_body(&message, content_type.as_deref());
    let category = param("category")
        .and_then(Category::parse)
        .unwrap_or_default();
    Event {
        id,
        received_at: OffsetDateTime::now_utc(),
        source,
        title: param("title").unwrap_or_default().to_string(),
        message,
        content_type,
        headers: kept_headers(headers),
        query: query.to_vec(),
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
        let query = Vec::new();
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
