//! The dispatcher: sends committed deliveries without holding up ingest.
//!
//! Ingest hands it each delivery after the commit. On start it also picks up what a
//! previous run left pending, so a crash between commit and send loses nothing.
//! Each delivery is tried once; a failure is recorded with the server's reply.

use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};

use super::email::Mailer;
use crate::store::{Delivery, DeliveryStatus, Store};

/// How many deliveries are sent at the same time.
pub const MAX_CONCURRENT_SENDS: usize = 8;

/// A handle for queueing deliveries.
#[derive(Clone)]
pub struct Dispatcher {
    queue: mpsc::UnboundedSender<Delivery>,
}

impl Dispatcher {
    /// Starts the dispatcher task; it first resumes the store's pending deliveries.
    pub fn start(store: Arc<dyn Store>, mailer: Arc<Mailer>) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(store, mailer, receiver));
        Dispatcher { queue }
    }

    /// Queues committed deliveries for sending.
    pub fn enqueue(&self, deliveries: Vec<Delivery>) {
        for delivery in deliveries
            .into_iter()
            .filter(|d| d.status == DeliveryStatus::Pending)
        {
            if self.queue.send(delivery).is_err() {
                tracing::error!(
                    "the dispatcher has stopped; the delivery stays pending until restart"
                );
            }
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    mailer: Arc<Mailer>,
    mut receiver: mpsc::UnboundedReceiver<Delivery>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_SENDS));
    let pending = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.pending_deliveries()).await
    };
    match pending {
        Ok(Ok(pending)) => {
            if !pending.is_empty() {
                tracing::info!(count = pending.len(), "resuming deliveries left pending");
            }
            for delivery in pending {
                spawn_send(&limit, &store, &mailer, delivery).await;
            }
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read pending deliveries; they stay pending")
        }
        Err(e) => tracing::error!(error = %e, "reading pending deliveries failed"),
    }
    while let Some(delivery) = receiver.recv().await {
        spawn_send(&limit, &store, &mailer, delivery).await;
    }
}

async fn spawn_send(
    limit: &Arc<Semaphore>,
    store: &Arc<dyn Store>,
    mailer: &Arc<Mailer>,
    delivery: Delivery,
) {
    let Ok(permit) = limit.clone().acquire_owned().await else {
        return;
    };
    let (store, mailer) = (store.clone(), mailer.clone());
    tokio::spawn(async move {
        send_one(&store, &mailer, &delivery).await;
        drop(permit);
    });
}

async fn send_one(store: &Arc<dyn Store>, mailer: &Mailer, delivery: &Delivery) {
    let outcome = mailer.send(delivery).await;
    match &outcome {
        Ok(()) => tracing::info!(
            delivery_id = %delivery.id, event_id = %delivery.event_id, policy = %delivery.policy,
            channel = %delivery.channel, to = %delivery.recipient, via = %mailer.describe(),
            "notification sent"
        ),
        Err(reply) => tracing::warn!(
            delivery_id = %delivery.id, event_id = %delivery.event_id, policy = %delivery.policy,
            channel = %delivery.channel, to = %delivery.recipient, reply = %reply,
            "notification failed"
        ),
    }
    let (store, id) = (store.clone(), delivery.id.clone());
    let recorded = tokio::task::spawn_blocking(move || {
        store.record_attempt(&id, outcome.as_ref().map(|_| ()).map_err(String::as_str))
    })
    .await;
    if !matches!(recorded, Ok(Ok(()))) {
        tracing::error!(delivery_id = %delivery.id, "cannot record the delivery attempt; it may be sent again after a restart");
    }
}
