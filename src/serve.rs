//! Accepting HTTP connections with the limits a public endpoint needs, and stopping
//! gracefully.
//!
//! Each connection gets a deadline for its request headers (a sender that trickles
//! headers is cut off) and a cap on their size (answered 431). On shutdown the listener
//! closes first, requests in flight finish, idle keep-alive connections are closed, and
//! whatever is still open after [`SHUTDOWN_GRACE`] is dropped.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// The longest a client may take to send its request line and headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of request line and headers buffered; more is answered with 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long requests in flight may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then drains.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = TowerToHyperService::new(app.clone());
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .max_buf_size(MAX_HEADER_BYTES)
                        .serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors, usually; pausing lets connections close.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "requests still open after the grace period were dropped");
        }
    }
}
