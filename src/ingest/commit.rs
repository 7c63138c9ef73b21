//! Group commit: many requests made durable by one transaction.
//!
//! A commit waits for an fsync, which takes from a fraction of a millisecond to several
//! milliseconds; one commit per request would cap durable ingest at that rate. Instead
//! every request hands its evaluated events to one committer thread and waits. The
//! thread takes all the requests that are waiting, up to [`MAX_GROUP`], commits them
//! in one transaction, and answers each. While it waits for the disk, the next group
//! gathers, so the groups grow with the load and no request is ever held back by a
//! timer. Each request stays all or nothing on its own: should one fail, the store
//! redoes the group with a savepoint per request, so it does not take the others with
//! it.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::engine::Evaluation;
use crate::event::Event;
use crate::store::{Inserted, NewEvent, Store};

/// The most requests committed by one transaction.
pub const MAX_GROUP: usize = 256;

/// Requests waiting for the committer beyond this wait for room in the queue.
pub const QUEUE: usize = 4096;

/// One request's events with their evaluations, to be committed together.
pub struct Batch {
    pub events: Vec<Event>,
    pub evaluations: Vec<Evaluation>,
    /// The sender's idempotency key, for a single webhook.
    pub key: Option<String>,
    pub idempotency_since_ms: i64,
}

impl Batch {
    fn rows(&self) -> Vec<NewEvent<'_>> {
        self.events
            .iter()
            .zip(&self.evaluations)
            .map(|(event, evaluation)| NewEvent {
                event,
                policy_version: &evaluation.policy_version,
                matched: &evaluation.matched,
                deliveries: &evaluation.deliveries,
                idempotency_key: self.key.as_deref(),
                idempotency_since_ms: self.idempotency_since_ms,
            })
            .collect()
    }
}

/// What the committer answers: the batch back, and what became of each event, or why
/// nothing of it was stored.
pub type Committed = (Batch, Result<Vec<Inserted>, String>);

struct Job {
    batch: Batch,
    reply: oneshot::Sender<Committed>,
}

/// The handle requests commit through. The committer thread stops when every handle
/// is dropped, after answering what it was given.
#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the committer thread over `store`.
    pub fn start(store: Arc<dyn Store>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("tripline-commit".into())
            .spawn(move || run(store.as_ref(), queue))?;
        Ok(Committer { jobs })
    }

    /// Commits `batch` durably, with whatever other requests are waiting.
    pub async fn commit(&self, batch: Batch) -> Result<Committed, String> {
        let (reply, answer) = oneshot::channel();
        let stopped = || "the committer has stopped".to_string();
        self.jobs
            .send(Job { batch, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}

fn run(store: &dyn Store, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        commit_group(store, jobs);
    }
}

/// Commits the jobs in one transaction and answers each.
fn commit_group(store: &dyn Store, jobs: Vec<Job>) {
    let groups: Vec<Vec<NewEvent<'_>>> = jobs.iter().map(|job| job.batch.rows()).collect();
    let results = store.insert_groups(&groups);
    drop(groups);

    let mut results: Vec<Result<Vec<Inserted>, String>> = match results {
        Ok(results) => results
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect(),
        Err(e) => vec![Err(format!("the group commit failed: {e}")); jobs.len()],
    };
    // A store answers once per batch; should one not, the rest are refused, not lost.
    results.resize_with(jobs.len(), || Err("the store gave no answer".into()));
    for (job, result) in jobs.into_iter().zip(results) {
        // A sender that went away (the client disconnected) still had its events stored.
        let _ = job.reply.send((job.batch, result));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn batch(id: &str, key: Option<&str>) -> Batch {
        let event = Event::sample(id.into(), "src".into(), String::new(), "hi".into(), &[]);
        let evaluation = Evaluation {
            matched: vec![],
            deliveries: vec![],
            policy_version: "v1".into(),
        };
        Batch {
            events: vec![event],
            evaluations: vec![evaluation],
            key: key.map(str::to_string),
            idempotency_since_ms: 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_are_each_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let committer = Committer::start(store.clone()).unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let committer = committer.clone();
                // Every fourth request repeats the key of the one before it.
                let key = format!("key-{}", i - i % 4 / 3);
                tokio::spawn(async move {
                    let id = format!("event-{i}");
                    committer.commit(batch(&id, Some(&key))).await.unwrap().1
                })
            })
            .collect();
        let mut new = 0;
        let mut duplicates = 0;
        for task in tasks {
            match task.await.unwrap().unwrap().as_slice() {
                [Inserted::New] => new += 1,
                [Inserted::Duplicate { .. }] => duplicates += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((new, duplicates), (150, 50));
        assert_eq!(store.stats().unwrap().events, 150);
    }

    #[test]
    fn a_failing_batch_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let good = batch("good", None);
        // The same event twice in one batch breaks the primary key.
        let mut bad = batch("bad", None);
        let twin = batch("bad", None);
        bad.events.extend(twin.events);
        bad.evaluations.extend(twin.evaluations);
        let later = batch("later", None);
        let groups = vec![good.rows(), bad.rows(), later.rows()];
        let results = store.insert_groups(&groups).unwrap();
        assert!(results[0].is_ok() && results[2].is_ok());
        assert!(results[1].is_err());
        assert!(store.event("good").unwrap().is_some());
        assert!(store.event("later").unwrap().is_some());
        assert!(store.event("bad").unwrap().is_none());
    }
}
