//! Durable storage of events, their matches and their deliveries.
//!
//! Ingest and the engine see only the [`Store`] trait. SQLite ([`sqlite::SqliteStore`])
//! is the embedded default; a shared server database can implement the same trait so
//! several tripline nodes use one store. Methods are blocking: async callers run them
//! with `tokio::task::spawn_blocking`.

pub mod sqlite;

use serde::Serialize;

use crate::event::{Category, Event};

/// What can go wrong in the store. Details go to the log, never to a sender.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("cannot prepare the data directory `{path}`: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the database was written by a newer tripline (schema {found}, this one knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Committed, not yet attempted.
    Pending,
    /// Accepted by the remote server (or written to the mail folder).
    Sent,
    /// The attempt failed; `last_error` says why.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "sent" => Some(DeliveryStatus::Sent),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One notification to one channel, rendered when the policy fired.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub policy: String,
    pub channel: String,
    /// Recipients as written in the message, comma separated.
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The last failure: the remote server's reply or the connection error.
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// An event as stored, with the names of the policies it matched.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub event: Event,
    pub matched: Vec<String>,
    /// The version of the policy set it was evaluated with.
    pub policy_version: Option<String>,
}

/// One event to commit with what its evaluation decided.
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    pub event: &'a Event,
    /// The version of the policy set the event was evaluated with.
    pub policy_version: &'a str,
    pub matched: &'a [String],
    pub deliveries: &'a [Delivery],
    /// The sender's idempotency key; a key seen for the same source since
    /// `idempotency_since_ms` makes the insert a duplicate that stores nothing.
    pub idempotency_key: Option<&'a str>,
    pub idempotency_since_ms: i64,
}

/// What became of one [`NewEvent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// The idempotency key was already used; `event_id` is the original event.
    Duplicate {
        event_id: String,
    },
}

/// The Event Explorer's filters; every one given must hold.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub source: Option<String>,
    pub category: Option<Category>,
    /// Events this policy matched.
    pub policy: Option<String>,
    /// Text in the title or the message, ignoring ASCII case.
    pub text: Option<String>,
    /// A tag by name, and its value when given.
    pub tag: Option<(String, Option<String>)>,
    /// Unix milliseconds, inclusive.
    pub since_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until_ms: Option<i64>,
    /// Only events older than this position (the previous page's last event).
    pub before: Option<Cursor>,
    pub limit: usize,
}

/// A position in the newest-first event order: the time and id of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub time_ms: i64,
    pub id: String,
}

impl Cursor {
    /// The cursor as text for a URL: `TIME_ID`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.time_ms, self.id)
    }

    /// Reads a cursor made by [`Cursor::encode`].
    pub fn decode(text: &str) -> Option<Cursor> {
        let (time, id) = text.split_once('_')?;
        let valid_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        valid_id.then_some(())?;
        Some(Cursor {
            time_ms: time.parse().ok()?,
            id: id.to_string(),
        })
    }
}

/// One page of events, newest first; `next` continues after the last one.
#[derive(Clone, Debug)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    pub next: Option<Cursor>,
}

/// How long events are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this many milliseconds are removed.
    pub max_age_ms: Option<i64>,
    /// Beyond this many events, the oldest are removed.
    pub max_events: Option<u64>,
}

/// Counts for metrics and readiness.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    pub events: u64,
    /// Deliveries counted by channel and status.
    pub deliveries: Vec<(String, String, u64)>,
    /// Deliveries waiting to be sent.
    pub outbox_depth: u64,
}

/// Storage for events and deliveries.
pub trait Store: Send + Sync + 'static {
    /// Commits an event, its matches and its deliveries in one durable transaction.
    fn insert_event(
        &self,
        event: &Event,
        policy_version: &str,
        matched: &[String],
        deliveries: &[Delivery],
    ) -> Result<(), StoreError>;

    /// One event by id.
    fn event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError>;

    /// The newest events first, at most `limit`.
    fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;

    /// Deliveries newest first, at most `limit`; only those of `event_id` when given.
    fn deliveries(&self, event_id: Option<&str>, limit: usize)
        -> Result<Vec<Delivery>, StoreError>;

    /// Keeps the files of a policy set under its version; a known version is kept as is.
    fn save_policy_set(&self, version: &str, files: &[(String, String)]) -> Result<(), StoreError>;

    /// The files of a policy set version, as (path, text).
    fn policy_set(&self, version: &str) -> Result<Option<Vec<(String, String)>>, StoreError>;

    /// Deliveries not yet attempted, oldest first.
    fn pending_deliveries(&self) -> Result<Vec<Delivery>, StoreError>;

    /// Records an attempt: `Ok` when sent, `Err(reply)` when it failed.
    fn record_attempt(&self, id: &str, outcome: Result<(), &str>) -> Result<(), StoreError>;

    /// Commits a batch in one transaction: all of it is stored, or none.
    fn insert_events(&self, batch: &[NewEvent<'_>]) -> Result<Vec<Inserted>, StoreError>;

    /// The event first stored with this idempotency key since `since_ms`.
    fn idempotent_event(
        &self,
        source: &str,
        key: &str,
        since_ms: i64,
    ) -> Result<Option<String>, StoreError>;

    /// Events matching `filter`, newest first.
    fn query_events(&self, filter: &EventFilter) -> Result<EventPage, StoreError>;

    /// Removes the events `policy` matched, with their deliveries, except events whose
    /// deliveries are still pending; returns how many were removed.
    fn delete_policy_events(&self, policy: &str) -> Result<u64, StoreError>;

    /// Applies `retention` at `now_ms` and forgets idempotency keys older than
    /// `idempotency_before_ms`; events with pending deliveries are kept.
    fn prune(
        &self,
        now_ms: i64,
        retention: Retention,
        idempotency_before_ms: i64,
    ) -> Result<u64, StoreError>;

    /// Counts for metrics; also proves the store answers.
    fn stats(&self) -> Result<StoreStats, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_table() {
        let id = "0190a000-0000-7000-8000-000000000001";
        let cursor = Cursor {
            time_ms: 1_700_000_000_000,
            id: id.into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "_", "12_", "x_abc", "12_not hex", "12"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
