//! The server: wires configuration, store, engine, dispatcher and routes together,
//! runs the background tasks (retention, the policy watch, SIGHUP), and serves until
//! SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::config::{Config, Secret, SourceConfig};
use crate::engine::Engine;
use crate::ingest::commit::Committer;
use crate::ingest::Sources;
use crate::metrics::Metrics;
use crate::notify::dispatcher::Dispatcher;
use crate::notify::email::Mailer;
use crate::notify::send::Senders;
use crate::reload::Reloader;
use crate::store::sqlite::SqliteStore;
use crate::store::{Retention, Store};

/// The file, in the data directory, holding the demo source's key on embedded defaults.
pub const DEMO_KEY_FILE: &str = "api-key";

/// The name of the source created on embedded defaults.
pub const DEMO_SOURCE: &str = "default";

/// Everything a request handler needs.
pub struct AppState {
    pub sources: Sources,
    pub engine: Arc<Engine>,
    pub store: Arc<dyn Store>,
    pub dispatcher: Dispatcher,
    pub committer: Committer,
    pub max_body: usize,
    pub explainer: crate::explain::Explainer,
    pub read_timeout: Duration,
    pub metrics: Metrics,
    pub reloader: Reloader,
}

impl AppState {
    /// Reloads the policies off the async runtime; the outcome is also recorded.
    pub async fn reload(self: &Arc<Self>, trigger: &'static str) -> Result<usize, String> {
        let state = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            state
                .reloader
                .reload(&state.engine, state.store.as_ref(), &state.metrics, trigger)
        })
        .await;
        done.unwrap_or_else(|e| Err(format!("the reload stopped unexpectedly: {e}")))
    }
}

/// All routes, with oversized headers refused and request latency recorded.
pub fn app(state: Arc<AppState>) -> Router {
    crate::ingest::router()
        .merge(crate::api::router())
        .merge(crate::web::router())
        .layer(axum::middleware::from_fn(crate::serve::limit_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            time_request,
        ))
        .with_state(state)
}

/// Records how long each request took, under its route pattern (never the raw path:
/// it would hold API keys and make the label set unbounded).
async fn time_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .observe_latency(&route, started.elapsed().as_secs_f64());
    response
}

/// Loads everything, binds, and serves until a shutdown signal.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    if config.embedded && config.sources.is_empty() {
        config.sources.push(demo_source(&config.data_dir)?);
    }
    if config.sources.is_empty() {
        tracing::warn!("no sources are configured; every webhook will be refused");
    }
    let names: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let reloader = Reloader::new(config.policies.clone(), names);
    let before_load = crate::reload::fingerprint(&config.policies);
    let policies = reloader
        .load()
        .map_err(|d| anyhow::anyhow!("{d}\nthe policies have errors; tripline did not start"))?;
    tracing::info!(count = policies.policies.len(), files = policies.files.len(), dir = %config.policies.display(), "policies loaded");
    let metrics = Metrics::default();
    reloader.started(&metrics, policies.policies.len());

    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&config.data_dir).context("cannot open the store")?);
    remember_policy_set(store.as_ref(), &policies).context("cannot record the policy set")?;
    let mailer = match &config.smtp {
        Some(smtp) => Mailer::smtp(smtp)?,
        None => Mailer::folder(&config.data_dir.join("mail")),
    };
    tracing::info!(to = %mailer.describe(), "email goes here");
    let engine = Arc::new(Engine::new(policies));
    let senders = Arc::new(Senders::new(mailer));
    let dispatcher =
        Dispatcher::start(store.clone(), senders, engine.clone(), config.retry.clone());

    let committer = Committer::start(store.clone()).context("cannot start the committer")?;
    let state = Arc::new(AppState {
        sources: Sources::new(&config.sources),
        engine,
        store,
        dispatcher,
        committer,
        max_body: config.max_body,
        explainer: Default::default(),
        read_timeout: config.read_timeout,
        metrics,
        reloader,
    });
    start_tasks(&state, &config, before_load);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let header_timeout = config.read_timeout;
    crate::serve::serve(listener, app(state), header_timeout, shutdown_signal()).await;
    // Deliveries not yet sent stay pending in the store and go out on the next start.
    tracing::info!("stopped");
    Ok(())
}

/// Keeps the policy files under their version, so an event evaluated with them can be
/// explained later even after the files change.
pub fn remember_policy_set(
    store: &dyn Store,
    set: &crate::policy::PolicySet,
) -> Result<(), crate::store::StoreError> {
    let files: Vec<(String, String)> = set
        .files
        .iter()
        .zip(&set.texts)
        .map(|(path, text)| (path.display().to_string(), text.clone()))
        .collect();
    store.save_policy_set(&set.version, &files)
}

/// Retention, SIGHUP and the policy watch.
fn start_tasks(state: &Arc<AppState>, config: &Config, seen: crate::reload::Fingerprint) {
    if config.retention != Retention::default() {
        let store = state.store.clone();
        let metrics = state.clone();
        tokio::spawn(crate::retention::run(
            store,
            config.retention,
            config.retention_interval,
            move |n| {
                metrics.metrics.add(
                    crate::metrics::EVENTS_REMOVED,
                    &[("reason", "retention")],
                    n,
                )
            },
        ));
    }
    // The handler is installed before the server listens: a SIGHUP that arrived before
    // it would end the process.
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangup) => {
            let state = state.clone();
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    let _ = state.reload("signal").await;
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload")
        }
    }
    if config.watch {
        let (state, dir) = (state.clone(), state.reloader.dir().to_path_buf());
        let handle = tokio::runtime::Handle::current();
        let reload = move || {
            let state = state.clone();
            handle.spawn(async move { state.reload("watch").await });
        };
        tokio::spawn(crate::reload::watch(reload, dir, seen));
    }
}

/// The demo source of embedded defaults. Its key is random, made on first start and
/// kept in the data directory, readable by the owner only; it is never logged.
fn demo_source(data_dir: &Path) -> anyhow::Result<SourceConfig> {
    let path = data_dir.join(DEMO_KEY_FILE);
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create `{}`", data_dir.display()))?;
            let key = uuid::Uuid::new_v4().simple().to_string();
            write_private(&path, &key)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            key
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    };
    tracing::info!(source = DEMO_SOURCE, key_file = %path.display(), "no configuration file; send webhooks to /webhook/<the key in the key file>");
    Ok(SourceConfig {
        name: DEMO_SOURCE.to_string(),
        api_key: Secret::new(key),
        verify: None,
        rate_limit: None,
    })
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
