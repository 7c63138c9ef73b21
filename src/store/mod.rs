//! Durable storage of events, their matches and their deliveries.
//!
//! Ingest and the engine see only the [`Store`] trait. SQLite ([`sqlite::SqliteStore`])
//! is the embedded default; a shared server database can implement the same trait so
//! several tripline nodes use one store. Methods are blocking: async callers run them
//! with `tokio::task::spawn_blocking`.

pub mod sqlite;

use serde::Serialize;

use crate::event::Event;

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
}
