//! The server: wires configuration, store, engine, dispatcher and routes together,
//! and runs until SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;

use crate::config::{Config, Secret, SourceConfig};
use crate::engine::Engine;
use crate::ingest::Sources;
use crate::notify::dispatcher::Dispatcher;
use crate::notify::email::Mailer;
use crate::notify::send::Senders;
use crate::policy::PolicySet;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

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
    pub max_body: usize,
}

/// All routes.
pub fn app(state: Arc<AppState>) -> Router {
    crate::ingest::router()
        .merge(crate::api::router())
        .with_state(state)
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
    let policies = PolicySet::load(std::slice::from_ref(&config.policies), Some(&names))
        .map_err(|d| anyhow::anyhow!("{d}\nthe policies have errors; tripline did not start"))?;
    tracing::info!(count = policies.policies.len(), files = policies.files.len(), dir = %config.policies.display(), "policies loaded");

    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&config.data_dir).context("cannot open the store")?);
    let mailer = match &config.smtp {
        Some(smtp) => Mailer::smtp(smtp)?,
        None => Mailer::folder(&config.data_dir.join("mail")),
    };
    tracing::info!(to = %mailer.describe(), "email goes here");
    let engine = Arc::new(Engine::new(policies));
    let senders = Arc::new(Senders::new(mailer));
    let dispatcher =
        Dispatcher::start(store.clone(), senders, engine.clone(), config.retry.clone());

    let state = Arc::new(AppState {
        sources: Sources::new(&config.sources),
        engine,
        store,
        dispatcher,
        max_body: config.max_body,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
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
    tracing::info!("shutting down: finishing requests in flight");
}
