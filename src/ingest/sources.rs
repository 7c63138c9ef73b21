//! The known sources: API keys held as SHA-256 digests, signature verifiers and
//! per-source rate limits.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{RateLimit, SourceConfig};
use crate::verify::Verifier;

/// One source as ingest sees it.
pub struct Source {
    pub name: String,
    hash: [u8; 32],
    pub verify: Option<Verifier>,
    limiter: Option<Mutex<Bucket>>,
}

/// A token bucket: holds up to `requests` tokens, refilled at `requests` per `per`.
/// Kept in memory: each tripline node limits on its own, and a restart refills it.
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        Bucket {
            limit,
            tokens: f64::from(limit.requests),
            refilled: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.limit.requests);
        let rate = capacity / self.limit.per.as_secs_f64();
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
    }
}

impl Source {
    /// Takes one request from the source's rate limit, or says when to retry.
    pub fn admit(&self) -> Result<(), Duration> {
        match &self.limiter {
            Some(bucket) => bucket
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(Instant::now()),
            None => Ok(()),
        }
    }
}

/// Every source, found by key.
pub struct Sources {
    entries: Vec<Source>,
}

impl Sources {
    pub fn new(sources: &[SourceConfig]) -> Self {
        let entries = sources
            .iter()
            .map(|s| Source {
                name: s.name.clone(),
                hash: digest(s.api_key.expose()),
                verify: s.verify.clone(),
                limiter: s.rate_limit.map(|l| Mutex::new(Bucket::new(l))),
            })
            .collect();
        Sources { entries }
    }

    /// The source owning `key`. Every entry is compared, in constant time, so the
    /// answer's timing says nothing about which keys exist.
    pub fn find(&self, key: &str) -> Option<&Source> {
        let presented = digest(key);
        let mut found = None;
        for source in &self.entries {
            if bool::from(source.hash.ct_eq(&presented)) {
                found = Some(source);
            }
        }
        found
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|s| s.name.clone()).collect()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn source(name: &str, key: String) -> SourceConfig {
        SourceConfig {
            name: name.into(),
            api_key: Secret::new(key),
            verify: None,
            rate_limit: None,
        }
    }

    #[test]
    fn sources_are_found_by_key_only() {
        let sources = Sources::new(&[
            source("ci", "a".repeat(20)),
            source("nagios", "b".repeat(20)),
        ]);
        assert_eq!(
            sources.find(&"b".repeat(20)).map(|s| s.name.as_str()),
            Some("nagios")
        );
        assert!(sources.find(&"a".repeat(19)).is_none());
        assert!(sources.find("").is_none());
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refills() {
        let limit = RateLimit {
            requests: 2,
            per: Duration::from_secs(10),
        };
        let mut bucket = Bucket::new(limit);
        let start = bucket.refilled;
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Ok(()));
        let wait = bucket.take(start).unwrap_err();
        assert_eq!(wait.as_secs(), 5);
        assert_eq!(bucket.take(start + Duration::from_secs(5)), Ok(()));
    }
}
