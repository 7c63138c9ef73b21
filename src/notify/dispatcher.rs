//! The dispatcher: claims due deliveries from the store and sends them, without
//! holding up ingest.
//!
//! Nothing is handed over in memory: ingest commits deliveries and only wakes the
//! dispatcher, which claims what is due from the store. So a crash at any point loses
//! nothing; a delivery sent but not yet recorded is sent again after a restart, with
//! the same Message-ID or `webhook-id` so the receiver can tell. Failures are retried
//! on the [`RetryPolicy`]; the same loop resolves quiet incidents.
//!
//! Outcomes are recorded the way ingest commits: a recorder task takes every attempt
//! that finished while it was writing and records them in one transaction, so a burst
//! of alerts costs a few disk syncs rather than one per message.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};

use super::outbox::RetryPolicy;
use super::send::Senders;
use super::{incident, Failure};
use crate::engine::Engine;
use crate::store::{now_ms, Attempt, AttemptResult, Claimed, Delivery, Store, StoreError};

/// How many deliveries are sent at the same time.
pub const MAX_CONCURRENT_SENDS: usize = 16;

/// How many due deliveries one claim takes.
pub const CLAIM_BATCH: usize = 128;

/// The most attempts recorded by one transaction.
pub const RECORD_BATCH: usize = 512;

/// The longest the loop sleeps, so changes made by another process (a retry or a mute
/// from the command line) are seen within it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long a claim holds; longer than any send may take.
pub const LEASE: Duration = Duration::from_secs(600);

/// A handle that wakes the dispatcher when new deliveries are committed.
#[derive(Clone)]
pub struct Dispatcher {
    wake: Arc<Notify>,
}

struct Worker {
    store: Arc<dyn Store>,
    senders: Arc<Senders>,
    engine: Arc<Engine>,
    retry: RetryPolicy,
    wake: Arc<Notify>,
    attempts: mpsc::UnboundedSender<Attempt>,
}

impl Dispatcher {
    /// Starts the dispatcher task. It first releases claims a previous run left.
    pub fn start(
        store: Arc<dyn Store>,
        senders: Arc<Senders>,
        engine: Arc<Engine>,
        retry: RetryPolicy,
    ) -> Self {
        let wake = Arc::new(Notify::new());
        let (attempts, finished) = mpsc::unbounded_channel();
        tokio::spawn(record(store.clone(), finished));
        let worker = Worker {
            store,
            senders,
            engine,
            retry,
            wake: wake.clone(),
            attempts,
        };
        tokio::spawn(worker.run());
        Dispatcher { wake }
    }

    /// Tells the dispatcher that deliveries were committed; they are read from the store.
    pub fn enqueue(&self, deliveries: Vec<Delivery>) {
        if !deliveries.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Wakes the dispatcher, e.g. after a delivery was queued for retry.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Runs a blocking store call off the async runtime.
async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

impl Worker {
    async fn run(self) {
        if let Err(e) = blocking(&self.store, |s| s.release_claims()).await {
            tracing::error!(error = %e, "cannot release the claims of a previous run");
        }
        let worker = Arc::new(self);
        let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_SENDS));
        loop {
            let (store, engine) = (worker.store.clone(), worker.engine.clone());
            if let Err(e) =
                tokio::task::spawn_blocking(move || incident::sweep(&store, &engine)).await
            {
                tracing::error!(error = %e, "the incident sweep failed");
            }
            let claimed = worker.claim().await;
            let full = claimed.len() == CLAIM_BATCH;
            for claim in claimed {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let worker = worker.clone();
                tokio::spawn(async move {
                    worker.send_one(claim).await;
                    drop(permit);
                    worker.wake.notify_one();
                });
            }
            if !full {
                let pause = worker.pause().await;
                tokio::select! {
                    _ = worker.wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    async fn claim(&self) -> Vec<Claimed> {
        let lease = LEASE.as_millis() as i64;
        match blocking(&self.store, move |s| {
            s.claim_due(now_ms(), lease, CLAIM_BATCH)
        })
        .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim due deliveries; trying again shortly");
                Vec::new()
            }
        }
    }

    /// How long to sleep: until the next delivery or quiet incident is due, at most
    /// [`POLL_INTERVAL`].
    async fn pause(&self) -> Duration {
        let next = blocking(&self.store, |s| {
            let due = s.next_due()?;
            let quiet = s.next_quiet()?;
            Ok(due.into_iter().chain(quiet).min())
        })
        .await;
        match next {
            Ok(Some(at)) => {
                let wait = u64::try_from(at - now_ms()).unwrap_or(0);
                Duration::from_millis(wait).min(POLL_INTERVAL)
            }
            _ => POLL_INTERVAL,
        }
    }

    async fn send_one(&self, claim: Claimed) {
        let d = &claim.delivery;
        let outcome = match &claim.message_error {
            Some(error) => Err(Failure::permanent(error.clone())),
            None => self.senders.send(d).await,
        };
        let now = now_ms();
        let result = match outcome {
            Ok(reply) => {
                tracing::info!(delivery_id = %d.id, event_id = %d.event_id, policy = %d.policy, channel = %d.channel, to = %d.recipient, alert = d.alert.as_str(), reply = %reply, "notification sent");
                AttemptResult::Sent { reply }
            }
            Err(failure) => {
                let next = self.retry.next_attempt(
                    failure.retry,
                    claim.retry_step,
                    claim.retry_since,
                    now,
                    fastrand::f64(),
                );
                log_failure(d, &failure, next, now);
                AttemptResult::Failed {
                    error: failure.text,
                    next,
                }
            }
        };
        let attempt = Attempt {
            id: d.id.clone(),
            at: now,
            result,
        };
        if self.attempts.send(attempt).is_err() {
            let why = "the recorder has stopped";
            tracing::error!(delivery_id = %d.id, why, "{UNRECORDED}");
        }
    }
}

/// Records finished attempts: each transaction takes all that are waiting.
async fn record(store: Arc<dyn Store>, mut finished: mpsc::UnboundedReceiver<Attempt>) {
    loop {
        let mut attempts = Vec::new();
        if finished.recv_many(&mut attempts, RECORD_BATCH).await == 0 {
            return;
        }
        let count = attempts.len();
        if let Err(e) = blocking(&store, move |s| s.record_attempts(&attempts)).await {
            tracing::error!(attempts = count, error = %e, "{UNRECORDED}");
        }
    }
}

/// What an unrecorded attempt means for the operator.
const UNRECORDED: &str = "delivery attempt not recorded; it will be sent again, with the \
     same id, once its claim expires";

fn log_failure(d: &Delivery, failure: &Failure, next: Option<i64>, now: i64) {
    match next {
        Some(at) => {
            tracing::warn!(delivery_id = %d.id, event_id = %d.event_id, policy = %d.policy, channel = %d.channel, to = %d.recipient, reply = %failure.text, retry_in_ms = at - now, "notification failed; it will be retried")
        }
        None => {
            tracing::error!(delivery_id = %d.id, event_id = %d.event_id, policy = %d.policy, channel = %d.channel, to = %d.recipient, reply = %failure.text, attempts = d.attempts + 1, "notification failed and is dead; retry it once the cause is fixed")
        }
    }
}
