//! Accepting HTTP connections with the limits a public endpoint needs, and stopping
//! gracefully.
//!
//! Each connection gets a deadline for its request headers, so a sender that trickles
//! headers is cut off; [`limit_headers`] caps their size. On shutdown the listener
//! closes first, requests in flight finish, idle keep-alive connections are closed, and
//! whatever is still open after [`SHUTDOWN_GRACE`] is dropped.

use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// The most bytes of request headers (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How long requests in flight may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then drains. A client that has
/// not sent its request line and headers within `header_timeout` is disconnected.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = TowerToHyperService::new(app.clone());
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout)
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

/// Refuses requests whose headers exceed [`MAX_HEADER_BYTES`] with 431, before any
/// handler sees them.
pub async fn limit_headers(request: Request, next: Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        tracing::warn!(
            size,
            limit = MAX_HEADER_BYTES,
            outcome = "headers_too_large",
            "request refused"
        );
        let message =
            format!("the request headers are larger than the limit of {MAX_HEADER_BYTES} bytes");
        let body = Json(serde_json::json!({ "error": message }));
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, body).into_response();
    }
    next.run(request).await
}
