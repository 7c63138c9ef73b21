//! The SQLite side of the Event Explorer: batch inserts with idempotency keys, filtered
//! and paged queries, deletion by policy, retention, and counts for metrics.
//!
//! Filters are bound as parameters, never spliced into SQL. Pagination is by cursor
//! (time and id of the last event shown), so a page stays correct while events arrive.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{event_columns, read_event, unix_ms, with_matches, Cached, EVENT_COLUMNS};
use crate::store::{
    Cursor, EventFilter, EventPage, Inserted, NewEvent, Retention, StoreError, StoreStats,
};

/// Inserts one event inside the open transaction `tx`, unless its idempotency key was
/// already used.
pub(super) fn insert(tx: &Connection, new: &NewEvent<'_>) -> Result<Inserted, StoreError> {
    let event = new.event;
    if let Some(key) = new.idempotency_key {
        if let Some(event_id) = idempotent_event(tx, &event.source, key, new.idempotency_since_ms)?
        {
            return Ok(Inserted::Duplicate { event_id });
        }
        tx.run(
            "INSERT OR REPLACE INTO idempotency_keys (source, key, event_id, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![
                event.source,
                key,
                event.id,
                unix_ms(time::OffsetDateTime::now_utc())
            ],
        )?;
    }
    let headers =
        serde_json::to_string(&event.headers).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let query =
        serde_json::to_string(&event.query).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.run(
        concat!(
            "INSERT INTO events (",
            event_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            event.id,
            unix_ms(event.received_at),
            event.source,
            event.title,
            event.message,
            event.content_type,
            headers,
            event.category.as_str(),
            query,
            new.policy_version,
        ],
    )?;
    for (position, (name, value)) in event.tags.iter().enumerate() {
        tx.run(
            "INSERT INTO event_tags (event_id, position, name, value) VALUES (?1, ?2, ?3, ?4)",
            params![event.id, position as i64, name, value],
        )?;
    }
    for policy in new.matched {
        tx.run(
            "INSERT INTO event_matches (event_id, policy) VALUES (?1, ?2)",
            params![event.id, policy],
        )?;
    }
    // The store, not the engine, decides each delivery with the incident and mute
    // state, inside this transaction.
    let now = crate::store::now_ms();
    for d in new.deliveries {
        let decided = match &d.plan {
            Some(plan) => super::incident::apply(tx, event, d, plan, now)?,
            None => Some((d.status, d.incident_id.clone())),
        };
        if let Some((status, incident_id)) = decided {
            super::outbox::insert(tx, d, status, incident_id.as_deref(), now)?;
        }
    }
    Ok(Inserted::New)
}

pub(super) fn idempotent_event(
    conn: &Connection,
    source: &str,
    key: &str,
    since_ms: i64,
) -> Result<Option<String>, StoreError> {
    let found = conn
        .one(
            "SELECT event_id FROM idempotency_keys WHERE source = ?1 AND key = ?2 \
             AND created_at >= ?3",
            params![source, key, since_ms],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found)
}

/// Builds the WHERE clause of a filter: conditions joined by AND, with their values.
fn where_clause(filter: &EventFilter) -> (String, Vec<SqlValue>) {
    let mut terms: Vec<&str> = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    let mut add = |term: &'static str, more: Vec<SqlValue>| {
        terms.push(term);
        values.extend(more);
    };
    let text = |s: &str| SqlValue::Text(s.to_string());
    if let Some(source) = &filter.source {
        add("source = ?", vec![text(source)]);
    }
    if let Some(category) = filter.category {
        add("category = ?", vec![text(category.as_str())]);
    }
    if let Some(policy) = &filter.policy {
        let term = "id IN (SELECT event_id FROM event_matches WHERE policy = ?)";
        add(term, vec![text(policy)]);
    }
    if let Some(needle) = &filter.text {
        let pattern = text(&format!("%{}%", escape_like(needle)));
        let term = "(title LIKE ? ESCAPE '\\' OR message LIKE ? ESCAPE '\\')";
        add(term, vec![pattern.clone(), pattern]);
    }
    match &filter.tag {
        Some((name, Some(value))) => add(
            "id IN (SELECT event_id FROM event_tags WHERE name = ? AND value = ?)",
            vec![text(name), text(value)],
        ),
        Some((name, None)) => add(
            "id IN (SELECT event_id FROM event_tags WHERE name = ?)",
            vec![text(name)],
        ),
        None => {}
    }
    if let Some(since) = filter.since_ms {
        add("received_at >= ?", vec![SqlValue::Integer(since)]);
    }
    if let Some(until) = filter.until_ms {
        add("received_at < ?", vec![SqlValue::Integer(until)]);
    }
    if let Some(Cursor { time_ms, id }) = &filter.before {
        let term = "(received_at < ? OR (received_at = ? AND id < ?))";
        let time = SqlValue::Integer(*time_ms);
        add(term, vec![time.clone(), time, text(id)]);
    }
    if terms.is_empty() {
        return (String::new(), values);
    }
    (format!("WHERE {}", terms.join(" AND ")), values)
}

/// `%`, `_` and `\` stand for themselves in a text filter.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn query_events(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<EventPage, StoreError> {
    let (clause, mut values) = where_clause(filter);
    // One more than asked tells whether another page follows.
    values.push(SqlValue::Integer(filter.limit as i64 + 1));
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events {clause} ORDER BY received_at DESC, id DESC LIMIT ?"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows: Vec<_> = stmt
        .query_map(params_from_iter(values), read_event)?
        .collect::<Result<_, _>>()?;
    let mut events = rows
        .into_iter()
        .map(|e| with_matches(conn, e?))
        .collect::<Result<Vec<_>, _>>()?;
    let next = if events.len() > filter.limit {
        events.truncate(filter.limit);
        events.last().map(|last| Cursor {
            time_ms: unix_ms(last.event.received_at),
            id: last.event.id.clone(),
        })
    } else {
        None
    };
    Ok(EventPage { events, next })
}

/// Events with a delivery still pending are kept: nothing acknowledged may be lost.
const KEEP_PENDING: &str = "id NOT IN (SELECT event_id FROM deliveries WHERE status = 'pending')";

pub(super) fn delete_policy_events(conn: &Connection, policy: &str) -> Result<u64, StoreError> {
    let sql = format!(
        "DELETE FROM events WHERE id IN (SELECT event_id FROM event_matches WHERE policy = ?1) \
         AND {KEEP_PENDING}"
    );
    Ok(conn.run(&sql, [policy])? as u64)
}

pub(super) fn prune(
    conn: &Connection,
    now_ms: i64,
    retention: Retention,
    idempotency_before_ms: i64,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    if let Some(age) = retention.max_age_ms {
        let sql = format!("DELETE FROM events WHERE received_at < ?1 AND {KEEP_PENDING}");
        removed += conn.run(&sql, [now_ms.saturating_sub(age)])? as u64;
    }
    if let Some(max) = retention.max_events {
        let sql = format!(
            "DELETE FROM events WHERE id IN (SELECT id FROM events \
             ORDER BY received_at DESC, id DESC LIMIT -1 OFFSET ?1) AND {KEEP_PENDING}"
        );
        removed += conn.run(&sql, [max as i64])? as u64;
    }
    conn.run(
        "DELETE FROM idempotency_keys WHERE created_at < ?1",
        [idempotency_before_ms],
    )?;
    Ok(removed)
}

pub(super) fn stats(conn: &Connection) -> Result<StoreStats, StoreError> {
    let events: i64 = conn.one("SELECT count(*) FROM events", [], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(
        "SELECT channel, status, count(*) FROM deliveries GROUP BY channel, status \
         ORDER BY channel, status",
    )?;
    let deliveries: Vec<(String, String, u64)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })?
        .collect::<Result<_, _>>()?;
    let outbox_depth = deliveries
        .iter()
        .filter(|(_, status, _)| status == "pending")
        .map(|(_, _, n)| n)
        .sum();
    Ok(StoreStats {
        events: events as u64,
        deliveries,
        outbox_depth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Category, Event};
    use crate::store::sqlite::SqliteStore;
    use crate::store::Store;

    fn event(n: i64, source: &str, title: &str, tags: &[(&str, &str)]) -> Event {
        Event {
            id: format!("0190a000-0000-7000-8000-{n:012}"),
            received_at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + n).unwrap(),
            source: source.into(),
            title: title.into(),
            message: format!("message {n} 100%"),
            content_type: None,
            headers: Vec::new(),
            query: Vec::new(),
            category: if n % 2 == 0 {
                Category::Critical
            } else {
                Category::Info
            },
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            json: None,
        }
    }

    fn store_with_events() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        for n in 1..=6 {
            let source = if n <= 3 { "ci" } else { "nagios" };
            let tags: &[(&str, &str)] = if n == 2 { &[("env", "prod")] } else { &[] };
            let e = event(n, source, &format!("Title {n}"), tags);
            let matched = if n >= 5 {
                vec!["noisy".to_string()]
            } else {
                vec![]
            };
            store.insert_event(&e, "v1", &matched, &[]).unwrap();
        }
        (dir, store)
    }

    fn ids(store: &SqliteStore, filter: EventFilter) -> Vec<u64> {
        let filter = EventFilter {
            limit: if filter.limit == 0 { 50 } else { filter.limit },
            ..filter
        };
        let page = store.query_events(&filter).unwrap();
        page.events
            .iter()
            .map(|e| e.event.id.rsplit('-').next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn filter_table() {
        let (_dir, store) = store_with_events();
        let s = |v: &str| Some(v.to_string());
        let cases: Vec<(EventFilter, Vec<u64>)> = vec![
            (EventFilter::default(), vec![6, 5, 4, 3, 2, 1]),
            (
                EventFilter {
                    source: s("ci"),
                    ..Default::default()
                },
                vec![3, 2, 1],
            ),
            (
                EventFilter {
                    category: Some(Category::Critical),
                    ..Default::default()
                },
                vec![6, 4, 2],
            ),
            (
                EventFilter {
                    policy: s("noisy"),
                    ..Default::default()
                },
                vec![6, 5],
            ),
            (
                EventFilter {
                    text: s("title 4"),
                    ..Default::default()
                },
                vec![4],
            ),
            (
                EventFilter {
                    text: s("100%"),
                    ..Default::default()
                },
                vec![6, 5, 4, 3, 2, 1],
            ),
            (
                EventFilter {
                    text: s("_"),
                    ..Default::default()
                },
                vec![],
            ),
            (
                EventFilter {
                    tag: Some(("env".into(), s("prod"))),
                    ..Default::default()
                },
                vec![2],
            ),
            (
                EventFilter {
                    tag: Some(("env".into(), s("dev"))),
                    ..Default::default()
                },
                vec![],
            ),
            (
                EventFilter {
                    tag: Some(("env".into(), None)),
                    ..Default::default()
                },
                vec![2],
            ),
            (
                EventFilter {
                    since_ms: Some(1_700_000_002_000),
                    until_ms: Some(1_700_000_004_000),
                    ..Default::default()
                },
                vec![3, 2],
            ),
        ];
        for (filter, want) in cases {
            let label = format!("{filter:?}");
            assert_eq!(ids(&store, filter), want, "{label}");
        }
    }

    #[test]
    fn pages_follow_the_cursor_to_the_end() {
        let (_dir, store) = store_with_events();
        let mut filter = EventFilter {
            limit: 4,
            ..Default::default()
        };
        let first = store.query_events(&filter).unwrap();
        assert_eq!(first.events.len(), 4);
        filter.before = first.next;
        let second = store.query_events(&filter).unwrap();
        let last: Vec<_> = second
            .events
            .iter()
            .map(|e| e.event.title.clone())
            .collect();
        assert_eq!(
            (last, second.next),
            (vec!["Title 2".into(), "Title 1".into()], None)
        );
    }

    #[test]
    fn deleting_and_pruning_remove_events_with_their_tags_and_matches() {
        let (_dir, store) = store_with_events();
        assert_eq!(store.delete_policy_events("noisy").unwrap(), 2);
        assert_eq!(ids(&store, EventFilter::default()), [4, 3, 2, 1]);
        let retention = Retention {
            max_age_ms: None,
            max_events: Some(3),
        };
        assert_eq!(store.prune(0, retention, 0).unwrap(), 1);
        let retention = Retention {
            max_age_ms: Some(1_000),
            max_events: None,
        };
        assert_eq!(store.prune(1_700_000_004_000, retention, 0).unwrap(), 1);
        assert_eq!(ids(&store, EventFilter::default()), [4, 3]);
        let tags: i64 = store
            .conn()
            .one("SELECT count(*) FROM event_tags", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tags, 0);
    }

    #[test]
    fn a_repeated_idempotency_key_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (a, b) = (event(1, "ci", "a", &[]), event(2, "ci", "b", &[]));
        let new = |event| NewEvent {
            event,
            policy_version: "v1",
            matched: &[],
            deliveries: &[],
            idempotency_key: Some("k1"),
            idempotency_since_ms: 0,
        };
        assert_eq!(store.insert_events(&[new(&a)]).unwrap(), [Inserted::New]);
        let again = store.insert_events(&[new(&b)]).unwrap();
        assert_eq!(
            again,
            [Inserted::Duplicate {
                event_id: a.id.clone()
            }]
        );
        assert!(store.event(&b.id).unwrap().is_none());
        assert_eq!(store.stats().unwrap().events, 1);
    }
}
