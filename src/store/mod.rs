//! Durable storage of events, their matches and their deliveries.
//!
//! Ingest and the engine see only the [`Store`] trait. SQLite ([`sqlite::SqliteStore`])
//! is the embedded default; a shared server database can implement the same trait so
//! several tripline nodes use one store. Methods are blocking: async callers run them
//! with `tokio::task::spawn_blocking`.

pub mod sqlite;

use std::time::Duration;

use serde::Serialize;

use crate::event::{Category, Event};
use crate::notify::action::Renotify;
use crate::notify::{AlertStatus, Message};

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Committed, not yet attempted.
    #[default]
    Pending,
    /// Accepted by the remote server (or written to the mail folder, or logged).
    Sent,
    /// The last attempt failed temporarily; another is scheduled at `next_attempt_at`.
    Failed,
    /// Given up: a permanent failure, or every retry failed. Can be retried by hand.
    Dead,
    /// Not sent: the incident already notified within its `renotify` interval.
    Suppressed,
    /// Not sent: the policy was muted.
    Muted,
}

impl DeliveryStatus {
    pub const NAMES: &'static [&'static str] =
        &["pending", "sent", "failed", "dead", "suppressed", "muted"];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
            DeliveryStatus::Suppressed => "suppressed",
            DeliveryStatus::Muted => "muted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "sent" => Some(DeliveryStatus::Sent),
            "failed" => Some(DeliveryStatus::Failed),
            "dead" => Some(DeliveryStatus::Dead),
            "suppressed" => Some(DeliveryStatus::Suppressed),
            "muted" => Some(DeliveryStatus::Muted),
            _ => None,
        }
    }
}

/// One notification to one channel, rendered when the policy fired or cleared.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub policy: String,
    /// The action's position in the policy's `notify:` list, from 0.
    pub action: u32,
    pub channel: String,
    /// Whether it announces a problem or its end.
    pub alert: AlertStatus,
    /// Who receives it, for the ledger: addresses, or the URL as written.
    pub recipient: String,
    /// A one-line description: the subject, the Slack text, the PagerDuty summary.
    pub subject: String,
    /// The email text of deliveries written before messages were stored whole.
    pub body: String,
    /// What is sent; `None` only for rows from before messages were stored.
    #[serde(skip)]
    pub message: Option<Message>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The last failure: the remote server's reply or the local error.
    pub last_error: Option<String>,
    /// The reply to the successful attempt, such as `250 2.0.0 OK` or `HTTP 202`.
    pub response: Option<String>,
    /// When the next attempt is due, for pending and failed deliveries.
    pub next_attempt_at: Option<String>,
    pub incident_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub sent_at: Option<String>,
    /// How the store's transaction is to treat this delivery's incident.
    #[serde(skip)]
    pub plan: Option<IncidentPlan>,
}

/// Incident bookkeeping for a rendered delivery, decided inside the commit so that
/// the decision and the event are durable together.
#[derive(Clone, Debug)]
pub struct IncidentPlan {
    /// The `group_by` values, as a JSON list.
    pub group_key: String,
    pub renotify: Renotify,
    /// The policy's `resolve_after`, kept with the incident for the sweeper.
    pub resolve_after: Option<Duration>,
    /// For a clear: whether it is notified (`on_clear`) or only resolves the incident.
    pub notify: bool,
}

/// Which deliveries a ledger query wants.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub event_id: Option<String>,
    pub policy: Option<String>,
    pub status: Option<DeliveryStatus>,
}

/// What became of a request to send a delivery again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Queued to be sent now.
    Queued,
    NotFound,
    /// Only dead and failed deliveries can be retried; this is its status.
    NotRetryable(DeliveryStatus),
}

/// A delivery claimed for sending, with where it stands in its retry schedule.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: Delivery,
    /// Why the stored message could not be read, if it could not.
    pub message_error: Option<String>,
    /// Failed attempts since the schedule started.
    pub retry_step: u32,
    /// When the schedule started (first attempt or manual retry), Unix milliseconds.
    pub retry_since: i64,
}

/// One attempt to send a delivery, as the dispatcher records it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub id: String,
    /// When the attempt ended, Unix milliseconds.
    pub at: i64,
    pub result: AttemptResult,
}

/// What an attempt came to.
#[derive(Clone, Debug)]
pub enum AttemptResult {
    /// Accepted, with the server's reply.
    Sent { reply: String },
    /// Failed; `next` schedules another attempt, `None` makes the delivery dead.
    Failed { error: String, next: Option<i64> },
}

/// An open incident that has been quiet past its `resolve_after`.
#[derive(Clone, Debug)]
pub struct QuietIncident {
    pub id: String,
    pub policy: String,
    pub action: u32,
    pub group_key: String,
    /// Unix milliseconds; resolving checks it is unchanged, so a new event wins.
    pub last_seen_at: i64,
    pub last_event_id: String,
    /// Whether a notification was sent while it was open.
    pub notified: bool,
}

/// A policy silenced until a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mute {
    pub policy: String,
    /// Unix milliseconds.
    pub until: i64,
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

/// What became of one batch of a group commit.
pub type GroupResult = Result<Vec<Inserted>, StoreError>;

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

/// Storage for events, deliveries, incidents and mutes. Times are Unix milliseconds.
pub trait Store: Send + Sync + 'static {
    /// Commits an event, its matches and its deliveries in one durable transaction.
    /// A delivery with an [`IncidentPlan`] is decided here: it opens, renotifies or
    /// clears its incident, and becomes suppressed or muted when it should not be sent.
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

    /// Deliveries newest first, at most `limit`, that pass `filter`.
    fn deliveries(
        &self,
        filter: &DeliveryFilter,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Keeps the files of a policy set under its version; a known version is kept as is.
    fn save_policy_set(&self, version: &str, files: &[(String, String)]) -> Result<(), StoreError>;

    /// The files of a policy set version, as (path, text).
    fn policy_set(&self, version: &str) -> Result<Option<Vec<(String, String)>>, StoreError>;

    /// Commits a batch in one transaction: all of it is stored, or none.
    fn insert_events(&self, batch: &[NewEvent<'_>]) -> Result<Vec<Inserted>, StoreError>;

    /// Group commit: several batches, each all or nothing on its own, made durable by
    /// one commit. A batch that fails is rolled back alone and its error stands in its
    /// place; the outer error means nothing was stored. This default commits each batch
    /// separately, for stores where one commit is not dearer than one statement.
    fn insert_groups(&self, groups: &[Vec<NewEvent<'_>>]) -> Result<Vec<GroupResult>, StoreError> {
        Ok(groups
            .iter()
            .map(|batch| self.insert_events(batch))
            .collect())
    }

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

    /// One delivery by id, with its message.
    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError>;

    /// Claims up to `limit` deliveries due at `now` for `lease_ms`, oldest due first.
    fn claim_due(&self, now: i64, lease_ms: i64, limit: usize) -> Result<Vec<Claimed>, StoreError>;

    /// When the next unclaimed delivery is due, if any is waiting.
    fn next_due(&self) -> Result<Option<i64>, StoreError>;

    /// Releases every claim; for a single node at start, after a crash left claims.
    fn release_claims(&self) -> Result<(), StoreError>;

    /// Records the outcome of each attempt, all in one transaction, and releases
    /// their claims.
    fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError>;

    /// Queues a dead or failed delivery to be sent now, with a fresh retry schedule.
    fn retry(&self, id: &str, now: i64) -> Result<RetryOutcome, StoreError>;

    /// Open incidents quiet past their `resolve_after` at `now`.
    fn quiet_incidents(&self, now: i64) -> Result<Vec<QuietIncident>, StoreError>;

    /// When the next open incident becomes quiet, if any has `resolve_after`.
    fn next_quiet(&self) -> Result<Option<i64>, StoreError>;

    /// Resolves a quiet incident unless an event arrived since; commits the clear
    /// deliveries with it. Answers whether it resolved.
    fn resolve_quiet(
        &self,
        incident: &QuietIncident,
        deliveries: &[Delivery],
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Mutes `policy` until `until`, or unmutes it with `None`.
    fn set_mute(&self, policy: &str, until: Option<i64>) -> Result<(), StoreError>;

    /// Every mute still in force at `now`.
    fn mutes(&self, now: i64) -> Result<Vec<Mute>, StoreError>;
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
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
