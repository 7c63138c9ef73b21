//! Incidents and mutes in SQLite. Each firing or clear is decided inside the
//! transaction that stores its event, so a restart neither repeats a notification
//! that was suppressed nor forgets an incident that was open.

use rusqlite::{params, Connection, OptionalExtension};

use super::{outbox, Cached};
use crate::event::{new_id, Event};
use crate::notify::incident::firing_notifies;
use crate::notify::AlertStatus;
use crate::store::{Delivery, DeliveryStatus, IncidentPlan, Mute, QuietIncident, StoreError};

/// The open incident of a delivery's action and group: its id and last notification.
fn open_incident(
    tx: &Connection,
    d: &Delivery,
    group_key: &str,
) -> Result<Option<(String, Option<i64>)>, StoreError> {
    let open = tx
        .one(
            "SELECT id, last_notified_at FROM incidents \
             WHERE policy = ?1 AND action = ?2 AND group_key = ?3 AND status = 'open'",
            params![d.policy, d.action, group_key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(open)
}

/// Decides a planned delivery: its status and incident, or `None` when there is
/// nothing to store (a clear with no open incident, or one not to be notified).
pub(super) fn apply(
    tx: &Connection,
    event: &Event,
    d: &Delivery,
    plan: &IncidentPlan,
    now: i64,
) -> Result<Option<(DeliveryStatus, Option<String>)>, StoreError> {
    let open = open_incident(tx, d, &plan.group_key)?;
    let muted = is_muted(tx, &d.policy, now)?;
    match d.alert {
        AlertStatus::Firing => fire(tx, event, d, plan, open, muted, now).map(Some),
        AlertStatus::Cleared => clear(tx, event, d, plan, open, muted, now),
    }
}

fn fire(
    tx: &Connection,
    event: &Event,
    d: &Delivery,
    plan: &IncidentPlan,
    open: Option<(String, Option<i64>)>,
    muted: bool,
    now: i64,
) -> Result<(DeliveryStatus, Option<String>), StoreError> {
    let notifies = firing_notifies(open.as_ref().map(|o| o.1), plan.renotify, now);
    let status = decided(d, muted, !notifies);
    let notified = (status == DeliveryStatus::Pending).then_some(now);
    let resolve_after = plan.resolve_after.map(|r| r.as_millis() as i64);
    let id = match open {
        Some((id, _)) => {
            tx.run(
                "UPDATE incidents SET last_seen_at = ?2, events = events + 1, last_event_id = ?3, \
                 resolve_after_ms = ?4, last_notified_at = COALESCE(?5, last_notified_at) WHERE id = ?1",
                params![id, now, event.id, resolve_after, notified],
            )?;
            id
        }
        None => {
            let id = new_id();
            tx.run(
                "INSERT INTO incidents (id, policy, action, group_key, status, opened_at, last_seen_at, \
                 last_notified_at, last_event_id, resolve_after_ms) \
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?5, ?6, ?7, ?8)",
                params![id, d.policy, d.action, plan.group_key, now, notified, event.id, resolve_after],
            )?;
            id
        }
    };
    Ok((status, Some(id)))
}

fn clear(
    tx: &Connection,
    event: &Event,
    d: &Delivery,
    plan: &IncidentPlan,
    open: Option<(String, Option<i64>)>,
    muted: bool,
    now: i64,
) -> Result<Option<(DeliveryStatus, Option<String>)>, StoreError> {
    let Some((id, last_notified)) = open else {
        return Ok(None);
    };
    tx.run(
        "UPDATE incidents SET status = 'resolved', resolved_at = ?2, resolved_by = ?3 WHERE id = ?1",
        params![id, now, event.id],
    )?;
    // A clear is news only to someone who heard about the problem.
    if !plan.notify || last_notified.is_none() {
        return Ok(None);
    }
    Ok(Some((decided(d, muted, false), Some(id))))
}

/// A delivery that failed to render stays dead; a mute wins over a suppression, since
/// it is what an operator chose and wants to see.
fn decided(d: &Delivery, muted: bool, suppressed: bool) -> DeliveryStatus {
    if d.status == DeliveryStatus::Dead {
        DeliveryStatus::Dead
    } else if muted {
        DeliveryStatus::Muted
    } else if suppressed {
        DeliveryStatus::Suppressed
    } else {
        DeliveryStatus::Pending
    }
}

fn is_muted(conn: &Connection, policy: &str, now: i64) -> Result<bool, StoreError> {
    let until: Option<i64> = conn
        .one("SELECT until FROM mutes WHERE policy = ?1", [policy], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(until.is_some_and(|u| u > now))
}

pub(super) fn quiet(conn: &Connection, now: i64) -> Result<Vec<QuietIncident>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, policy, action, group_key, last_seen_at, last_event_id, last_notified_at IS NOT NULL \
         FROM incidents WHERE status = 'open' AND resolve_after_ms IS NOT NULL \
         AND last_seen_at + resolve_after_ms <= ?1 ORDER BY last_seen_at LIMIT 100",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok(QuietIncident {
            id: r.get(0)?,
            policy: r.get(1)?,
            action: r.get(2)?,
            group_key: r.get(3)?,
            last_seen_at: r.get(4)?,
            last_event_id: r.get(5)?,
            notified: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn next_quiet(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let next = conn.one(
        "SELECT MIN(last_seen_at + resolve_after_ms) FROM incidents \
         WHERE status = 'open' AND resolve_after_ms IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    Ok(next)
}

pub(super) fn resolve_quiet(
    tx: &Connection,
    quiet: &QuietIncident,
    deliveries: &[Delivery],
    now: i64,
) -> Result<bool, StoreError> {
    let changed = tx.run(
        "UPDATE incidents SET status = 'resolved', resolved_at = ?3, resolved_by = 'resolve_after' \
         WHERE id = ?1 AND status = 'open' AND last_seen_at = ?2",
        params![quiet.id, quiet.last_seen_at, now],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    let muted = is_muted(tx, &quiet.policy, now)?;
    for d in deliveries {
        outbox::insert(tx, d, decided(d, muted, false), Some(&quiet.id), now)?;
    }
    Ok(true)
}

pub(super) fn set_mute(
    conn: &Connection,
    policy: &str,
    until: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    match until {
        Some(until) => conn.run(
            "INSERT INTO mutes (policy, until, set_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (policy) DO UPDATE SET until = ?2, set_at = ?3",
            params![policy, until, now],
        )?,
        None => conn.run("DELETE FROM mutes WHERE policy = ?1", [policy])?,
    };
    Ok(())
}

pub(super) fn mutes(conn: &Connection, now: i64) -> Result<Vec<Mute>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT policy, until FROM mutes WHERE until > ?1 ORDER BY policy")?;
    let rows = stmt.query_map([now], |r| {
        Ok(Mute {
            policy: r.get(0)?,
            until: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{event, planned};
    use super::super::SqliteStore;
    use crate::notify::action::Renotify;
    use crate::notify::AlertStatus::{Cleared, Firing};
    use crate::store::{now_ms, Delivery, DeliveryStatus, Store};
    use std::time::Duration;

    fn commit(store: &SqliteStore, n: u32, deliveries: &[Delivery]) {
        store
            .insert_event(&event(&format!("e{n}"), 0), "v1", &[], deliveries)
            .unwrap();
    }

    fn statuses(store: &SqliteStore) -> Vec<(String, DeliveryStatus)> {
        let mut all = store.deliveries(&Default::default(), 100).unwrap();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.into_iter().map(|d| (d.id, d.status)).collect()
    }

    #[test]
    fn renotify_suppresses_repeats_and_a_clear_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let hour = Renotify::Every(Duration::from_secs(3600));
        commit(&store, 1, &[planned("d1", "e1", Firing, hour, "[\"a\"]")]);
        commit(&store, 2, &[planned("d2", "e2", Firing, hour, "[\"a\"]")]);
        commit(&store, 3, &[planned("d3", "e3", Firing, hour, "[\"b\"]")]);
        commit(&store, 4, &[planned("d4", "e4", Cleared, hour, "[\"a\"]")]);
        commit(&store, 5, &[planned("d5", "e5", Cleared, hour, "[\"a\"]")]);
        commit(&store, 6, &[planned("d6", "e6", Firing, hour, "[\"a\"]")]);
        use DeliveryStatus::*;
        let want = [
            ("d1", Pending),
            ("d2", Suppressed),
            ("d3", Pending),
            ("d4", Pending),
            ("d6", Pending),
        ];
        let want: Vec<(String, DeliveryStatus)> =
            want.iter().map(|(i, s)| (i.to_string(), *s)).collect();
        assert_eq!(
            statuses(&store),
            want,
            "d5 cleared nothing, so it is not stored"
        );
        let d1 = store.delivery("d1").unwrap().unwrap();
        let d4 = store.delivery("d4").unwrap().unwrap();
        let d6 = store.delivery("d6").unwrap().unwrap();
        assert_eq!(d1.incident_id, d4.incident_id);
        assert_ne!(d1.incident_id, d6.incident_id);
    }

    #[test]
    fn a_muted_policy_records_muted_deliveries_and_clears_stay_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.set_mute("p", Some(now_ms() + 60_000)).unwrap();
        assert_eq!(store.mutes(now_ms()).unwrap().len(), 1);
        commit(
            &store,
            1,
            &[planned("d1", "e1", Firing, Renotify::Never, "[]")],
        );
        commit(
            &store,
            2,
            &[planned("d2", "e2", Cleared, Renotify::Never, "[]")],
        );
        store.set_mute("p", None).unwrap();
        assert!(store.mutes(now_ms()).unwrap().is_empty());
        commit(
            &store,
            3,
            &[planned("d3", "e3", Firing, Renotify::Never, "[]")],
        );
        commit(
            &store,
            4,
            &[planned("d4", "e4", Firing, Renotify::Never, "[]")],
        );
        use DeliveryStatus::*;
        let want = [("d1", Muted), ("d3", Pending), ("d4", Suppressed)];
        let want: Vec<(String, DeliveryStatus)> =
            want.iter().map(|(i, s)| (i.to_string(), *s)).collect();
        assert_eq!(
            statuses(&store),
            want,
            "a clear of an incident nobody heard of says nothing"
        );
    }

    #[test]
    fn a_quiet_incident_resolves_unless_an_event_came_since() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut firing = planned("d1", "e1", Firing, Renotify::Always, "[]");
        firing.plan.as_mut().unwrap().resolve_after = Some(Duration::from_millis(10));
        commit(&store, 1, &[firing]);
        assert!(store.quiet_incidents(now_ms() - 60_000).unwrap().is_empty());
        let later = now_ms() + 1_000;
        let quiet = store.quiet_incidents(later).unwrap();
        assert_eq!((quiet.len(), quiet[0].notified), (1, true));
        assert!(store.next_quiet().unwrap().is_some());

        let mut moved = quiet[0].clone();
        moved.last_seen_at -= 1;
        assert!(
            !store.resolve_quiet(&moved, &[], later).unwrap(),
            "an event came since"
        );
        let clear = Delivery {
            alert: Cleared,
            ..super::super::fixtures::delivery("c1", "e1")
        };
        assert!(store.resolve_quiet(&quiet[0], &[clear], later).unwrap());
        assert!(store.quiet_incidents(later).unwrap().is_empty());
        let c1 = store.delivery("c1").unwrap().unwrap();
        assert_eq!(
            (c1.status, c1.alert, c1.incident_id),
            (DeliveryStatus::Pending, Cleared, Some(quiet[0].id.clone()))
        );
    }
}
