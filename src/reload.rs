//! Reloading the policies while the server runs: `POST /-/reload`, SIGHUP, and a
//! debounced watch of the policies directory.
//!
//! The new set is loaded and validated whole, then swapped into the engine in one step.
//! A set with any mistake is not used: the previous one keeps running, and the errors
//! are logged, counted in `tripline_reloads_total{outcome="failure"}` and shown by
//! `GET /api/policies`. The engine keeps no per-policy state in memory, and what the
//! store keeps is keyed by policy name, so a policy whose name is unchanged carries on.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;

use crate::engine::Engine;
use crate::event::format_time;
use crate::metrics::{gauge, Metrics, RELOADS};
use crate::policy::PolicySet;

/// How often the watch looks at the policies directory.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// How long the directory must stay unchanged before a reload: editors write a file in
/// several steps, and a checkout changes many files at once.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// What the last reload did, for the API.
#[derive(Clone, Debug, Default)]
pub struct ReloadStatus {
    /// RFC 3339 time of the last successful load.
    pub last_success: Option<String>,
    /// The errors of the last attempt, when it failed; cleared by a success.
    pub last_error: Option<String>,
    /// What started the last attempt: `start`, `api`, `signal` or `watch`.
    pub trigger: String,
}

/// Loads policy sets and swaps them into the engine.
pub struct Reloader {
    paths: Vec<PathBuf>,
    known_sources: Vec<String>,
    status: Mutex<ReloadStatus>,
    /// One reload at a time; a second waits for the first.
    running: Mutex<()>,
}

impl Reloader {
    pub fn new(policies: PathBuf, known_sources: Vec<String>) -> Self {
        Reloader {
            paths: vec![policies],
            known_sources,
            status: Mutex::new(ReloadStatus::default()),
            running: Mutex::new(()),
        }
    }

    /// Loads the set; used at start, where a bad set stops the server.
    pub fn load(&self) -> Result<PolicySet, String> {
        PolicySet::load(&self.paths, Some(&self.known_sources)).map_err(|d| d.to_string())
    }

    /// Loads and, when valid, installs a new set. Blocking: it reads files.
    /// The new set's files are kept in the store under its version first, so events
    /// evaluated with it can be explained later.
    pub fn reload(
        &self,
        engine: &Engine,
        store: &dyn crate::store::Store,
        metrics: &Metrics,
        trigger: &str,
    ) -> Result<usize, String> {
        let _one_at_a_time = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let loaded = self.load().and_then(|set| {
            crate::server::remember_policy_set(store, &set)
                .map_err(|e| format!("cannot record the policy set: {e}"))?;
            Ok(set)
        });
        metrics.set(gauge::RELOAD_DURATION, started.elapsed().as_secs_f64());
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.trigger = trigger.to_string();
        match loaded {
            Ok(set) => {
                let count = set.policies.len();
                engine.replace(set);
                self.succeeded(&mut status, metrics, count);
                tracing::info!(trigger, count, "policies reloaded");
                Ok(count)
            }
            Err(errors) => {
                metrics.inc(RELOADS, &[("outcome", "failure")]);
                metrics.set(gauge::RELOAD_FAILED, 1.0);
                tracing::error!(trigger, errors = %errors, "policy reload failed; the previous policies keep running");
                status.last_error = Some(errors.clone());
                Err(errors)
            }
        }
    }

    /// Records the set loaded at start.
    pub fn started(&self, metrics: &Metrics, count: usize) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.trigger = "start".into();
        self.succeeded(&mut status, metrics, count);
    }

    fn succeeded(&self, status: &mut ReloadStatus, metrics: &Metrics, count: usize) {
        let now = OffsetDateTime::now_utc();
        status.last_success = Some(format_time(now));
        status.last_error = None;
        metrics.inc(RELOADS, &[("outcome", "success")]);
        metrics.set(gauge::RELOAD_LAST_SUCCESS, now.unix_timestamp() as f64);
        metrics.set(gauge::RELOAD_FAILED, 0.0);
        metrics.set(gauge::POLICIES, count as f64);
    }

    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The watched directory.
    pub fn dir(&self) -> &Path {
        &self.paths[0]
    }
}

/// What the watch compares: each policy file's name, size and modification time.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The directory's [`Fingerprint`] now.
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = entry.metadata().ok();
        let size = meta.as_ref().map_or(0, |m| m.len());
        let modified = meta.and_then(|m| m.modified().ok());
        files.push((path, size, modified));
    }
    files.sort();
    files
}

/// Watches the policies directory and reloads once it has been quiet for [`DEBOUNCE`].
/// `seen` is the fingerprint taken before the running set was loaded, so a change made
/// while the server started is not missed.
pub async fn watch(reload: impl Fn() + Send + 'static, dir: PathBuf, mut seen: Fingerprint) {
    let snapshot = |dir: PathBuf| async move {
        tokio::task::spawn_blocking(move || fingerprint(&dir))
            .await
            .unwrap_or_default()
    };
    let mut changed_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let now = snapshot(dir.clone()).await;
        if now != seen {
            seen = now;
            changed_at = Some(Instant::now());
            continue;
        }
        if changed_at.is_some_and(|t| t.elapsed() >= DEBOUNCE) {
            changed_at = None;
            reload();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: p1\nconditions:\n  - {field: message, contains: x}\n";

    #[test]
    fn a_bad_set_keeps_the_running_one_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), GOOD).unwrap();
        let reloader = Reloader::new(dir.path().into(), vec![]);
        let engine = Engine::new(reloader.load().unwrap());
        let metrics = Metrics::default();
        let data = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(data.path()).unwrap();

        std::fs::write(dir.path().join("b.yaml"), "name: p2\nconditions: []\n").unwrap();
        let err = reloader
            .reload(&engine, &store, &metrics, "api")
            .unwrap_err();
        assert!(err.contains("b.yaml:2:"), "{err}");
        assert_eq!(engine.policies().policies.len(), 1);
        assert_eq!(reloader.status().last_error.as_deref(), Some(err.as_str()));

        std::fs::write(dir.path().join("b.yaml"), GOOD.replace("p1", "p2")).unwrap();
        assert_eq!(reloader.reload(&engine, &store, &metrics, "api"), Ok(2));
        assert_eq!(reloader.status().last_error, None);
        let version = engine.policies().version.clone();
        assert!(
            crate::store::Store::policy_set(&store, &version)
                .unwrap()
                .is_some(),
            "the new version is kept"
        );
        let text = metrics.render(None);
        assert!(
            text.contains("tripline_reloads_total{outcome=\"failure\"} 1"),
            "{text}"
        );
        assert!(text.contains("tripline_policies_loaded 2"), "{text}");
    }

    #[test]
    fn the_fingerprint_sees_edits() {
        let dir = tempfile::tempdir().unwrap();
        let before = fingerprint(dir.path());
        std::fs::write(dir.path().join("a.yaml"), GOOD).unwrap();
        assert_ne!(fingerprint(dir.path()), before);
    }
}
