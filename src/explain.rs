//! Explanations for stored events: which policies fired and why each other one did not,
//! recomputed on demand from the stored message and the policy set it was evaluated
//! with.
//!
//! Storing a reason per policy per event would not scale to thousands of policies, so
//! only the matches and the policy set's version are stored with the event; the set's
//! files are kept once per version and compiled again here when asked.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::engine::{self, Outcome};
use crate::policy::PolicySet;
use crate::store::{Store, StoredEvent};

/// How many past policy sets are kept compiled.
pub const CACHED_SETS: usize = 4;

/// The explanation of one stored event.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// The policy set version the event was evaluated with.
    pub policy_version: Option<String>,
    /// Whether that version is the one loaded now.
    pub current: bool,
    /// Each policy's verdict; empty with `error` when the set cannot be recovered.
    pub policies: Vec<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Recompiles past policy sets on demand and keeps the last few.
#[derive(Default)]
pub struct Explainer {
    cache: Mutex<Vec<Arc<PolicySet>>>,
}

impl Explainer {
    /// Explains `stored` with the policy set it was evaluated with; `current` is the
    /// set loaded now, used when the versions agree.
    pub fn explain(
        &self,
        store: &dyn Store,
        current: &Arc<PolicySet>,
        stored: &StoredEvent,
    ) -> Explanation {
        let version = stored.policy_version.clone();
        let set = match version.as_deref() {
            Some(v) if v == current.version => Ok(current.clone()),
            Some(v) => self.past_set(store, v),
            None => Err("the event was stored without a policy set version".to_string()),
        };
        let is_current = version.as_deref() == Some(current.version.as_str());
        match set {
            Ok(set) => Explanation {
                policy_version: version,
                current: is_current,
                policies: engine::explain(&set, &stored.event),
                error: None,
            },
            Err(error) => Explanation {
                policy_version: version,
                current: false,
                policies: Vec::new(),
                error: Some(error),
            },
        }
    }

    fn past_set(&self, store: &dyn Store, version: &str) -> Result<Arc<PolicySet>, String> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = cache.iter().find(|s| s.version == version) {
            return Ok(set.clone());
        }
        let files = store
            .policy_set(version)
            .map_err(|e| format!("cannot read policy set `{version}`: {e}"))?
            .ok_or_else(|| format!("policy set `{version}` is not in the store"))?;
        let files = files
            .into_iter()
            .map(|(path, text)| (path.into(), text))
            .collect();
        let set = PolicySet::compile(files, None)
            .map_err(|e| format!("policy set `{version}` no longer compiles: {e}"))?;
        let set = Arc::new(set);
        if cache.len() >= CACHED_SETS {
            cache.remove(0);
        }
        cache.push(set.clone());
        Ok(set)
    }
}
