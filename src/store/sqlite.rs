//! The embedded store: one SQLite file under the data directory.
//!
//! WAL mode with `synchronous=FULL`, so a commit is on disk before ingest answers.
//! The schema version lives in `PRAGMA user_version`; [`MIGRATIONS`] brings an older
//! file up to date on open. Writes share one connection behind a mutex: SQLite allows
//! one writer at a time anyway.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row};
use time::OffsetDateTime;

mod explore;
mod incident;
mod outbox;

use super::{
    now_ms, Attempt, Claimed, Delivery, DeliveryFilter, EventFilter, EventPage, GroupResult,
    Inserted, Mute, NewEvent, QuietIncident, Retention, RetryOutcome, Store, StoreError,
    StoreStats, StoredEvent,
};
use crate::event::{format_time, Category, Event};

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "tripline.db";

/// Each entry upgrades the schema by one version; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    received_at  INTEGER NOT NULL,   -- unix milliseconds
    source       TEXT NOT NULL,
    title        TEXT NOT NULL,
    message      TEXT NOT NULL,
    content_type TEXT,
    headers      TEXT NOT NULL,      -- JSON array of [name, value]
    category     TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (received_at);
CREATE TABLE event_matches (
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    policy   TEXT NOT NULL,
    PRIMARY KEY (event_id, policy)
);
CREATE INDEX event_matches_by_policy ON event_matches (policy);
CREATE TABLE deliveries (
    id         TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    policy     TEXT NOT NULL,
    channel    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_by_status ON deliveries (status);
"#,
    r#"
CREATE TABLE event_tags (
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (event_id, position)
);
CREATE INDEX event_tags_by_name ON event_tags (name, value);
CREATE TABLE idempotency_keys (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_at INTEGER NOT NULL,     -- unix milliseconds
    PRIMARY KEY (source, key)
);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
CREATE INDEX events_by_source ON events (source, received_at);
"#,
    r#"
ALTER TABLE events ADD COLUMN query TEXT NOT NULL DEFAULT '[]';  -- JSON array of [name, value]
ALTER TABLE events ADD COLUMN policy_version TEXT;
-- Every policy set an event was evaluated with, so its explanation can be recomputed.
CREATE TABLE policy_sets (
    version   TEXT PRIMARY KEY,
    loaded_at TEXT NOT NULL,
    files     TEXT NOT NULL      -- JSON array of [path, text]
);
"#,
    r#"
-- The durable outbox: each delivery keeps its rendered message and its retry schedule.
ALTER TABLE deliveries ADD COLUMN action INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN alert TEXT NOT NULL DEFAULT 'firing';
ALTER TABLE deliveries ADD COLUMN message TEXT;            -- JSON; NULL for older rows
ALTER TABLE deliveries ADD COLUMN response TEXT;
ALTER TABLE deliveries ADD COLUMN incident_id TEXT;
ALTER TABLE deliveries ADD COLUMN next_attempt_at INTEGER; -- unix milliseconds
ALTER TABLE deliveries ADD COLUMN retry_step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN retry_since INTEGER;     -- unix milliseconds
ALTER TABLE deliveries ADD COLUMN claimed_until INTEGER;   -- unix milliseconds
ALTER TABLE deliveries ADD COLUMN sent_at TEXT;
-- Before retries existed a failure was final.
UPDATE deliveries SET status = 'dead' WHERE status = 'failed';
UPDATE deliveries SET next_attempt_at = 0 WHERE status = 'pending';
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_policy ON deliveries (policy);
CREATE TABLE incidents (
    id               TEXT PRIMARY KEY,
    policy           TEXT NOT NULL,
    action           INTEGER NOT NULL,
    group_key        TEXT NOT NULL,     -- JSON list of the group_by values
    status           TEXT NOT NULL,     -- open | resolved
    opened_at        INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL,
    last_notified_at INTEGER,           -- NULL while nothing was sent
    last_event_id    TEXT NOT NULL,
    events           INTEGER NOT NULL DEFAULT 1,
    resolve_after_ms INTEGER,
    resolved_at      INTEGER,
    resolved_by      TEXT               -- the clearing event's id, or `resolve_after`
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (policy, action, group_key)
    WHERE status = 'open';
CREATE INDEX incidents_by_status ON incidents (status, last_seen_at);
CREATE TABLE mutes (
    policy TEXT PRIMARY KEY,
    until  INTEGER NOT NULL,
    set_at INTEGER NOT NULL
);
"#,
];

/// How many prepared statements a connection keeps; the hot path uses about twenty.
const STATEMENT_CACHE: usize = 64;

/// Statements run through the connection's cache, so each SQL text is parsed once.
pub(crate) trait Cached {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    fn one<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn one<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// SQLite behind the [`Store`] trait.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let mut conn = Connection::open(data_dir.join(DB_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// The schema version this build writes.
    pub fn schema_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction half applied
        // (SQLite rolls it back), so a poisoned lock is safe to reuse.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = SqliteStore::schema_version();
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Inserts the batches of a group commit in one transaction, each all or nothing.
fn insert_group(
    conn: &mut Connection,
    groups: &[Vec<NewEvent<'_>>],
) -> Result<Vec<GroupResult>, StoreError> {
    // Batches almost never fail, so the group first goes in without a savepoint per
    // batch: a savepoint copies every page it touches. Should one fail, all is undone
    // and the group goes again with savepoints, to refuse that one alone.
    let tx = conn.transaction()?;
    let inserted: Result<Vec<Vec<Inserted>>, StoreError> = groups
        .iter()
        .map(|batch| batch.iter().map(|new| explore::insert(&tx, new)).collect())
        .collect();
    if let Ok(inserted) = inserted {
        tx.commit()?;
        return Ok(inserted.into_iter().map(Ok).collect());
    }
    tx.finish()?;
    let tx = conn.transaction()?;
    let mut results = Vec::with_capacity(groups.len());
    for batch in groups {
        results.push(insert_savepoint(&tx, batch)?);
    }
    tx.commit()?;
    Ok(results)
}

/// Inserts `batch` under a savepoint of `tx`: on an error only this batch is undone.
/// The outer error means the savepoint itself failed, so the whole group must go.
fn insert_savepoint(tx: &Connection, batch: &[NewEvent<'_>]) -> Result<GroupResult, StoreError> {
    tx.run("SAVEPOINT batch", [])?;
    let inserted = batch
        .iter()
        .map(|new| explore::insert(tx, new))
        .collect::<Result<Vec<_>, _>>();
    if inserted.is_err() {
        tx.run("ROLLBACK TO batch", [])?;
    }
    tx.run("RELEASE batch", [])?;
    Ok(inserted)
}

/// The columns of `events` in the order [`read_event`] reads them.
macro_rules! event_columns {
    () => {
        "id, received_at, source, title, message, content_type, headers, category, query, \
         policy_version"
    };
}
pub(crate) use event_columns;

pub(crate) const EVENT_COLUMNS: &str = event_columns!();

impl Store for SqliteStore {
    fn insert_event(
        &self,
        event: &Event,
        policy_version: &str,
        matched: &[String],
        deliveries: &[Delivery],
    ) -> Result<(), StoreError> {
        let new = NewEvent {
            event,
            policy_version,
            matched,
            deliveries,
            idempotency_key: None,
            idempotency_since_ms: 0,
        };
        self.insert_events(&[new]).map(drop)
    }

    fn event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let conn = self.conn();
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1");
        let event = conn.query_row(&sql, [id], read_event).optional()?;
        event.map(|e| with_matches(&conn, e?)).transpose()
    }

    fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events ORDER BY received_at DESC, id DESC LIMIT ?1"
        );
        let mut stmt = conn.prepare(&sql)?;
        let events: Vec<_> = stmt
            .query_map([limit as i64], read_event)?
            .collect::<Result<_, _>>()?;
        events
            .into_iter()
            .map(|e| with_matches(&conn, e?))
            .collect()
    }

    fn deliveries(
        &self,
        filter: &DeliveryFilter,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        outbox::list(&self.conn(), filter, limit)
    }

    fn save_policy_set(&self, version: &str, files: &[(String, String)]) -> Result<(), StoreError> {
        let files = serde_json::to_string(files).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn().execute(
            "INSERT OR IGNORE INTO policy_sets (version, loaded_at, files) VALUES (?1, ?2, ?3)",
            params![version, format_time(OffsetDateTime::now_utc()), files],
        )?;
        Ok(())
    }

    fn policy_set(&self, version: &str) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let conn = self.conn();
        let sql = "SELECT files FROM policy_sets WHERE version = ?1";
        let files: Option<String> = conn.query_row(sql, [version], |r| r.get(0)).optional()?;
        files
            .map(|f| {
                serde_json::from_str(&f)
                    .map_err(|e| StoreError::Corrupt(format!("policy set `{version}`: {e}")))
            })
            .transpose()
    }

    fn insert_events(&self, batch: &[NewEvent<'_>]) -> Result<Vec<Inserted>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let inserted = batch
            .iter()
            .map(|new| explore::insert(&tx, new))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(inserted)
    }

    fn insert_groups(&self, groups: &[Vec<NewEvent<'_>>]) -> Result<Vec<GroupResult>, StoreError> {
        insert_group(&mut self.conn(), groups)
    }

    fn idempotent_event(
        &self,
        source: &str,
        key: &str,
        since_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        explore::idempotent_event(&self.conn(), source, key, since_ms)
    }

    fn query_events(&self, filter: &EventFilter) -> Result<EventPage, StoreError> {
        explore::query_events(&self.conn(), filter)
    }

    fn delete_policy_events(&self, policy: &str) -> Result<u64, StoreError> {
        explore::delete_policy_events(&self.conn(), policy)
    }

    fn prune(
        &self,
        now_ms: i64,
        retention: Retention,
        idempotency_before_ms: i64,
    ) -> Result<u64, StoreError> {
        explore::prune(&self.conn(), now_ms, retention, idempotency_before_ms)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        explore::stats(&self.conn())
    }

    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        outbox::get(&self.conn(), id)
    }

    fn claim_due(&self, now: i64, lease_ms: i64, limit: usize) -> Result<Vec<Claimed>, StoreError> {
        outbox::claim_due(&self.conn(), now, lease_ms, limit)
    }

    fn next_due(&self) -> Result<Option<i64>, StoreError> {
        outbox::next_due(&self.conn())
    }

    fn release_claims(&self) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL",
            [],
        )?;
        Ok(())
    }

    fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for attempt in attempts {
            outbox::record_attempt(&tx, attempt)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn retry(&self, id: &str, now: i64) -> Result<RetryOutcome, StoreError> {
        outbox::retry(&self.conn(), id, now)
    }

    fn quiet_incidents(&self, now: i64) -> Result<Vec<QuietIncident>, StoreError> {
        incident::quiet(&self.conn(), now)
    }

    fn next_quiet(&self) -> Result<Option<i64>, StoreError> {
        incident::next_quiet(&self.conn())
    }

    fn resolve_quiet(
        &self,
        quiet: &QuietIncident,
        deliveries: &[Delivery],
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let resolved = incident::resolve_quiet(&tx, quiet, deliveries, now)?;
        tx.commit()?;
        Ok(resolved)
    }

    fn set_mute(&self, policy: &str, until: Option<i64>) -> Result<(), StoreError> {
        incident::set_mute(&self.conn(), policy, until, now_ms())
    }

    fn mutes(&self, now: i64) -> Result<Vec<Mute>, StoreError> {
        incident::mutes(&self.conn(), now)
    }
}

/// Formats Unix milliseconds as RFC 3339.
pub(crate) fn ms_text(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(format_time)
        .unwrap_or_else(|_| ms.to_string())
}

/// Unix milliseconds of `t`.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Reads an event row; the outer `Result` is SQLite's, the inner one our decoding.
pub(crate) type EventRow = (Event, Option<String>);

/// Reads an event row with its policy version.
pub(crate) fn read_event(row: &Row<'_>) -> rusqlite::Result<Result<EventRow, StoreError>> {
    let ms: i64 = row.get(1)?;
    let headers: String = row.get(6)?;
    let category: String = row.get(7)?;
    let message: String = row.get(4)?;
    let content_type: Option<String> = row.get(5)?;
    let id: String = row.get(0)?;
    let source: String = row.get(2)?;
    let title: String = row.get(3)?;
    let query: String = row.get(8)?;
    let policy_version: Option<String> = row.get(9)?;
    Ok((|| {
        let received_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .map_err(|e| StoreError::Corrupt(format!("event `{id}` time: {e}")))?;
        let headers = serde_json::from_str(&headers)
            .map_err(|e| StoreError::Corrupt(format!("event `{id}` headers: {e}")))?;
        let category = Category::parse(&category)
            .ok_or_else(|| StoreError::Corrupt(format!("event `{id}` category `{category}`")))?;
        let query = serde_json::from_str(&query)
            .map_err(|e| StoreError::Corrupt(format!("event `{id}` query: {e}")))?;
        let json = crate::event::parse_json_body(&message, content_type.as_deref());
        let event = Event {
            id,
            received_at,
            source,
            title,
            message,
            content_type,
            headers,
            query,
            category,
            // Filled by `with_matches` from their own table.
            tags: Vec::new(),
            json,
        };
        Ok((event, policy_version))
    })())
}

/// Adds what lives in other tables: the matched policies and the tags.
pub(crate) fn with_matches(
    conn: &Connection,
    (mut event, policy_version): EventRow,
) -> Result<StoredEvent, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT policy FROM event_matches WHERE event_id = ?1 ORDER BY policy")?;
    let matched = stmt
        .query_map([&event.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT name, value FROM event_tags WHERE event_id = ?1 ORDER BY position",
    )?;
    event.tags = stmt
        .query_map([&event.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(StoredEvent {
        event,
        matched,
        policy_version,
    })
}

/// Events and deliveries for the store's tests.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use crate::notify::action::Renotify;
    use crate::notify::AlertStatus;
    use crate::store::{DeliveryStatus, IncidentPlan};

    pub fn event(id: &str, ms: i64) -> Event {
        Event {
            id: id.into(),
            received_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap(),
            source: "ci".into(),
            title: "t".into(),
            message: "{\"a\": 1}".into(),
            content_type: Some("application/json".into()),
            headers: vec![("user-agent".into(), "curl".into())],
            query: vec![("env".into(), "prod".into())],
            category: Category::Warning,
            tags: Vec::new(),
            json: None,
        }
    }

    pub fn delivery(id: &str, event_id: &str) -> Delivery {
        Delivery {
            id: id.into(),
            event_id: event_id.into(),
            policy: "p".into(),
            channel: "email".into(),
            recipient: "a@b.c".into(),
            subject: "s".into(),
            body: "b".into(),
            status: DeliveryStatus::Pending,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
            ..Delivery::default()
        }
    }

    /// A delivery planned for the incident of group `group`.
    pub fn planned(
        id: &str,
        event_id: &str,
        alert: AlertStatus,
        renotify: Renotify,
        group: &str,
    ) -> Delivery {
        Delivery {
            alert,
            plan: Some(IncidentPlan {
                group_key: group.into(),
                renotify,
                resolve_after: None,
                notify: true,
            }),
            ..delivery(id, event_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{delivery, event};
    use super::*;

    #[test]
    fn events_and_deliveries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store
                .insert_event(
                    &event("e1", 1_000),
                    "v1",
                    &["p".into()],
                    &[delivery("d1", "e1")],
                )
                .unwrap();
            store
                .insert_event(&event("e2", 2_000), "v1", &[], &[])
                .unwrap();
            store
                .save_policy_set("v1", &[("p.yaml".into(), "name: p".into())])
                .unwrap();
            store
                .save_policy_set("v1", &[("p.yaml".into(), "changed".into())])
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let e1 = store.event("e1").unwrap().unwrap();
        assert_eq!(e1.matched, ["p"]);
        assert_eq!(e1.policy_version.as_deref(), Some("v1"));
        assert_eq!(e1.event.query, [("env".to_string(), "prod".to_string())]);
        let files = store.policy_set("v1").unwrap().unwrap();
        assert_eq!(
            files,
            [("p.yaml".to_string(), "name: p".to_string())],
            "a known version is kept"
        );
        assert!(store.policy_set("v2").unwrap().is_none());
        assert_eq!(
            e1.event.headers,
            [("user-agent".to_string(), "curl".to_string())]
        );
        assert_eq!(e1.event.json, Some(serde_json::json!({"a": 1})));
        let recent: Vec<String> = store
            .recent_events(10)
            .unwrap()
            .into_iter()
            .map(|e| e.event.id)
            .collect();
        assert_eq!(recent, ["e2", "e1"]);
        let filter = DeliveryFilter {
            event_id: Some("e1".into()),
            ..DeliveryFilter::default()
        };
        let d = &store.deliveries(&filter, 10).unwrap()[0];
        assert_eq!(
            (d.id.as_str(), d.status),
            ("d1", crate::store::DeliveryStatus::Pending)
        );
    }

    #[test]
    fn the_schema_is_versioned_and_wal_is_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.conn();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            (version, mode.as_str(), sync),
            (SqliteStore::schema_version(), "wal", 2)
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("schema 99"), "{err}");
    }

    #[test]
    fn a_version_1_database_is_upgraded_without_losing_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO events VALUES ('e1', 0, 'ci', '', 'm', NULL, '[]', 'info');
             INSERT INTO deliveries (id, event_id, policy, channel, recipient, subject, body, status, created_at, updated_at)
             VALUES ('waiting', 'e1', 'p', 'email', 'a@b.c', 's', 'b', 'pending', 't', 't'),
                    ('given-up', 'e1', 'p', 'email', 'a@b.c', 's', 'b', 'failed', 't', 't');",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(dir.path()).unwrap();
        let claimed = store.claim_due(now_ms(), 1_000, 10).unwrap();
        let ids: Vec<&str> = claimed.iter().map(|c| c.delivery.id.as_str()).collect();
        assert_eq!(ids, ["waiting"], "the pending row is due at once");
        assert!(claimed[0].delivery.message.is_none());
        let dead = store.delivery("given-up").unwrap().unwrap();
        assert_eq!(dead.status, crate::store::DeliveryStatus::Dead);
    }
}
