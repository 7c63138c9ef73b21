//! The outbox in SQLite: deliveries inserted with their event, claimed when due,
//! and updated after each attempt.
//!
//! A claim sets `claimed_until`, a lease: a delivery whose sender died with the
//! process is claimable again once the lease runs out (or at the next start, which
//! releases every claim since a single node owns the file).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{ms_text, Cached};
use crate::notify::{AlertStatus, Message};
use crate::store::{
    Attempt, AttemptResult, Claimed, Delivery, DeliveryFilter, DeliveryStatus, RetryOutcome,
    StoreError,
};

/// The columns of `deliveries` in the order [`read`] reads them.
macro_rules! columns {
    () => {
        "id, event_id, policy, action, channel, alert, recipient, subject, body, message, \
         status, attempts, last_error, response, next_attempt_at, incident_id, created_at, \
         updated_at, sent_at"
    };
}

const COLUMNS: &str = columns!();

/// Inserts a delivery with its decided status; a pending one is due at once.
pub(super) fn insert(
    tx: &Connection,
    d: &Delivery,
    status: DeliveryStatus,
    incident_id: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let message = d
        .message
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("delivery `{}` message: {e}", d.id)))?;
    let due = (status == DeliveryStatus::Pending).then_some(now);
    tx.run(
        concat!(
            "INSERT INTO deliveries (",
            columns!(),
            ", retry_since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
        ),
        params![
            d.id,
            d.event_id,
            d.policy,
            d.action,
            d.channel,
            d.alert.as_str(),
            d.recipient,
            d.subject,
            d.body,
            message,
            status.as_str(),
            d.attempts,
            d.last_error,
            d.response,
            due,
            incident_id,
            d.created_at,
            d.updated_at,
            d.sent_at,
            now,
        ],
    )?;
    Ok(())
}

/// Reads a row; the message is decoded separately so a bad one spoils only its row.
fn read(row: &Row<'_>) -> rusqlite::Result<(Result<Delivery, StoreError>, Option<String>)> {
    let status: String = row.get(10)?;
    let alert: String = row.get(5)?;
    let message: Option<String> = row.get(9)?;
    let next: Option<i64> = row.get(14)?;
    let mut delivery = Delivery {
        id: row.get(0)?,
        event_id: row.get(1)?,
        policy: row.get(2)?,
        action: row.get(3)?,
        channel: row.get(4)?,
        alert: AlertStatus::parse(&alert).unwrap_or_default(),
        recipient: row.get(6)?,
        subject: row.get(7)?,
        body: row.get(8)?,
        message: None,
        status: DeliveryStatus::default(),
        attempts: row.get(11)?,
        last_error: row.get(12)?,
        response: row.get(13)?,
        next_attempt_at: None,
        incident_id: row.get(15)?,
        created_at: row.get(16)?,
        updated_at: row.get(17)?,
        sent_at: row.get(18)?,
        plan: None,
    };
    let Some(parsed) = DeliveryStatus::parse(&status) else {
        let error = StoreError::Corrupt(format!("delivery status `{status}`"));
        return Ok((Err(error), None));
    };
    delivery.status = parsed;
    if matches!(parsed, DeliveryStatus::Pending | DeliveryStatus::Failed) {
        delivery.next_attempt_at = next.map(ms_text);
    }
    let mut message_error = None;
    if let Some(json) = message {
        match serde_json::from_str::<Message>(&json) {
            Ok(m) => delivery.message = Some(m),
            Err(e) => message_error = Some(format!("the stored message is unreadable: {e}")),
        }
    }
    Ok((Ok(delivery), message_error))
}

pub(super) fn list(
    conn: &Connection,
    filter: &DeliveryFilter,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries WHERE (?1 IS NULL OR event_id = ?1) \
         AND (?2 IS NULL OR policy = ?2) AND (?3 IS NULL OR status = ?3) \
         ORDER BY created_at DESC, id DESC LIMIT ?4"
    );
    let mut stmt = conn.prepare(&sql)?;
    let status = filter.status.map(DeliveryStatus::as_str);
    let rows = stmt.query_map(
        params![filter.event_id, filter.policy, status, limit as i64],
        read,
    )?;
    rows.map(|r| r?.0).collect()
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<Delivery>, StoreError> {
    let sql = concat!("SELECT ", columns!(), " FROM deliveries WHERE id = ?1");
    let row = conn.one(sql, [id], read).optional()?;
    row.map(|(d, _)| d).transpose()
}

pub(super) fn claim_due(
    conn: &Connection,
    now: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<Claimed>, StoreError> {
    let sql = concat!(
        "UPDATE deliveries SET claimed_until = ?2 WHERE id IN (\
           SELECT id FROM deliveries WHERE status IN ('pending', 'failed') \
           AND next_attempt_at <= ?1 AND (claimed_until IS NULL OR claimed_until <= ?1) \
           ORDER BY next_attempt_at, id LIMIT ?3) \
         RETURNING ",
        columns!(),
        ", retry_step, COALESCE(retry_since, 0)"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![now, now + lease_ms, limit as i64], |row| {
        let (delivery, message_error) = read(row)?;
        let retry_step: u32 = row.get(19)?;
        let retry_since: i64 = row.get(20)?;
        Ok((delivery, message_error, retry_step, retry_since))
    })?;
    let mut claimed = Vec::new();
    for row in rows {
        let (delivery, message_error, retry_step, retry_since) = row?;
        claimed.push(Claimed {
            delivery: delivery?,
            message_error,
            retry_step,
            retry_since,
        });
    }
    Ok(claimed)
}

pub(super) fn next_due(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let next = conn.one(
        "SELECT MIN(MAX(next_attempt_at, COALESCE(claimed_until, 0))) FROM deliveries \
         WHERE status IN ('pending', 'failed')",
        [],
        |r| r.get(0),
    )?;
    Ok(next)
}

pub(super) fn record_attempt(conn: &Connection, attempt: &Attempt) -> Result<(), StoreError> {
    let at = ms_text(attempt.at);
    match &attempt.result {
        AttemptResult::Sent { reply } => {
            conn.run(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, response = ?2, \
                 next_attempt_at = NULL, claimed_until = NULL, updated_at = ?3, sent_at = ?3 \
                 WHERE id = ?1",
                params![attempt.id, reply, at],
            )?;
        }
        AttemptResult::Failed { error, next } => {
            let status = match next {
                Some(_) => DeliveryStatus::Failed,
                None => DeliveryStatus::Dead,
            };
            conn.run(
                "UPDATE deliveries SET status = ?2, attempts = attempts + 1, \
                 retry_step = retry_step + 1, last_error = ?3, next_attempt_at = ?4, \
                 claimed_until = NULL, updated_at = ?5 WHERE id = ?1",
                params![attempt.id, status.as_str(), error, next, at],
            )?;
        }
    }
    Ok(())
}

pub(super) fn retry(conn: &Connection, id: &str, now: i64) -> Result<RetryOutcome, StoreError> {
    let changed = conn.run(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, retry_step = 0, \
         retry_since = ?2, claimed_until = NULL, updated_at = ?3 \
         WHERE id = ?1 AND status IN ('dead', 'failed')",
        params![id, now, ms_text(now)],
    )?;
    if changed == 1 {
        return Ok(RetryOutcome::Queued);
    }
    let status: Option<String> = conn
        .one("SELECT status FROM deliveries WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(match status.as_deref().map(DeliveryStatus::parse) {
        None => RetryOutcome::NotFound,
        Some(Some(status)) => RetryOutcome::NotRetryable(status),
        Some(None) => return Err(StoreError::Corrupt(format!("delivery `{id}` status"))),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{delivery, event};
    use super::super::SqliteStore;
    use crate::store::{Attempt, AttemptResult, DeliveryStatus, RetryOutcome, Store};

    fn store_with(ids: &[&str]) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let deliveries: Vec<_> = ids.iter().map(|id| delivery(id, "e1")).collect();
        store
            .insert_event(&event("e1", 0), "v1", &[], &deliveries)
            .unwrap();
        (dir, store)
    }

    fn status(store: &SqliteStore, id: &str) -> (DeliveryStatus, u32) {
        let d = store.delivery(id).unwrap().unwrap();
        (d.status, d.attempts)
    }

    fn sent(reply: &str) -> AttemptResult {
        AttemptResult::Sent {
            reply: reply.into(),
        }
    }

    fn failed(error: &str, next: Option<i64>) -> AttemptResult {
        AttemptResult::Failed {
            error: error.into(),
            next,
        }
    }

    fn record(store: &SqliteStore, id: &str, result: AttemptResult, at: i64) {
        let attempt = Attempt {
            id: id.into(),
            at,
            result,
        };
        store.record_attempts(&[attempt]).unwrap();
    }

    #[test]
    fn attempts_recorded_together_each_get_their_own_outcome() {
        let (_dir, store) = store_with(&["d1", "d2", "d3"]);
        let now = crate::store::now_ms();
        assert_eq!(store.claim_due(now, 60_000, 10).unwrap().len(), 3);
        let attempts: Vec<Attempt> = [
            ("d1", sent("250 OK")),
            ("d2", failed("451 try later", Some(now + 500))),
            ("d3", failed("550 no such user", None)),
        ]
        .into_iter()
        .map(|(id, result)| Attempt {
            id: id.into(),
            at: now,
            result,
        })
        .collect();
        store.record_attempts(&attempts).unwrap();
        assert_eq!(status(&store, "d1"), (DeliveryStatus::Sent, 1));
        assert_eq!(status(&store, "d2"), (DeliveryStatus::Failed, 1));
        assert_eq!(status(&store, "d3"), (DeliveryStatus::Dead, 1));
        // Recording releases the claims: the failed one is due again at its time.
        assert_eq!(store.next_due().unwrap(), Some(now + 500));
        assert_eq!(store.claim_due(now + 500, 60_000, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_claim_is_held_until_its_lease_ends() {
        let (_dir, store) = store_with(&["d1", "d2"]);
        let now = crate::store::now_ms();
        assert_eq!(store.claim_due(now, 1_000, 1).unwrap().len(), 1);
        assert_eq!(
            store.claim_due(now, 1_000, 10).unwrap().len(),
            1,
            "only the unclaimed one"
        );
        assert!(store.claim_due(now, 1_000, 10).unwrap().is_empty());
        assert_eq!(
            store.claim_due(now + 1_000, 1_000, 10).unwrap().len(),
            2,
            "leases ran out"
        );
        store.release_claims().unwrap();
        assert_eq!(store.claim_due(now + 1_000, 1_000, 10).unwrap().len(), 2);
    }

    #[test]
    fn failures_are_scheduled_then_dead_then_retried_by_hand() {
        let (_dir, store) = store_with(&["d1"]);
        let now = crate::store::now_ms();
        store.claim_due(now, 60_000, 10).unwrap();
        record(&store, "d1", failed("451 try later", Some(now + 500)), now);
        assert_eq!(status(&store, "d1"), (DeliveryStatus::Failed, 1));
        assert_eq!(store.next_due().unwrap(), Some(now + 500));
        assert!(store.claim_due(now + 499, 60_000, 10).unwrap().is_empty());
        let claimed = store.claim_due(now + 500, 60_000, 10).unwrap();
        assert_eq!((claimed.len(), claimed[0].retry_step), (1, 1));

        record(&store, "d1", failed("550 no such user", None), now);
        let dead = store.delivery("d1").unwrap().unwrap();
        assert_eq!((dead.status, dead.attempts), (DeliveryStatus::Dead, 2));
        assert_eq!(dead.last_error.as_deref(), Some("550 no such user"));
        assert!(store.claim_due(now + 10_000_000, 1, 10).unwrap().is_empty());

        assert_eq!(store.retry("d1", now).unwrap(), RetryOutcome::Queued);
        let claimed = store.claim_due(now, 60_000, 10).unwrap();
        assert_eq!((claimed[0].retry_step, claimed[0].retry_since), (0, now));
        record(&store, "d1", sent("250 OK"), now);
        let sent = store.delivery("d1").unwrap().unwrap();
        assert_eq!(
            (sent.status, sent.attempts, sent.response.as_deref()),
            (DeliveryStatus::Sent, 3, Some("250 OK"))
        );
        assert_eq!(
            store.retry("d1", now).unwrap(),
            RetryOutcome::NotRetryable(DeliveryStatus::Sent)
        );
        assert_eq!(store.retry("nope", now).unwrap(), RetryOutcome::NotFound);
    }
}
