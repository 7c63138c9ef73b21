//! Retention: removes old events in the background, as `retention:` in the configuration
//! says, and forgets idempotency keys past their window.
//!
//! Events with a delivery still pending are kept until it is sent: retention never
//! loses a notification.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::ingest::IDEMPOTENCY_WINDOW;
use crate::store::sqlite::unix_ms;
use crate::store::{Retention, Store};

/// Applies `retention` now and then every `interval`; `removed` hears each count.
pub async fn run(
    store: Arc<dyn Store>,
    retention: Retention,
    interval: Duration,
    removed: impl Fn(u64) + Send + 'static,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        let store = store.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            let now = OffsetDateTime::now_utc();
            let keys_before = unix_ms(now - IDEMPOTENCY_WINDOW);
            store.prune(unix_ms(now), retention, keys_before)
        })
        .await;
        match pruned {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(removed = n, "retention removed old events");
                removed(n);
            }
            Ok(Err(e)) => tracing::error!(error = %e, "retention failed; it runs again later"),
            Err(e) => tracing::error!(error = %e, "retention stopped unexpectedly"),
        }
    }
}
