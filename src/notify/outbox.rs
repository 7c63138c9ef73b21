//! The outbox's retry schedule: after a temporary failure a delivery waits the next
//! step of the schedule, jittered so a burst of failures does not retry in lockstep,
//! and never less than a server's `Retry-After`. The last step repeats until the
//! delivery has been failing for `give_up_after`; then, or after a permanent failure,
//! it is dead.
//!
//! The schedule is read from the `retry:` section of the configuration:
//!
//! ```yaml
//! retry:
//!   schedule: [5s, 30s, 2m, 10m, 30m, 1h]   # the default
//!   give_up_after: 24h                       # the default
//! ```

use std::time::Duration;

use super::{duration, Retry};
use crate::yaml::{Node, Reader};

/// A delay is multiplied by a random factor in `1 ± JITTER`.
pub const JITTER: f64 = 0.2;

const RETRY_KEYS: &[&str] = &["schedule", "give_up_after"];

/// When to try a failed delivery again, and when to give up.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The wait before each retry; the last one repeats.
    pub schedule: Vec<Duration>,
    /// A delivery failing for longer than this since its first attempt is dead.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let secs = Duration::from_secs;
        RetryPolicy {
            schedule: vec![
                secs(5),
                secs(30),
                secs(120),
                secs(600),
                secs(1800),
                secs(3600),
            ],
            give_up_after: secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// When to try again after a failure, in Unix milliseconds, or `None` to give up.
    /// `step` counts the failures before this one; `since` is when the schedule began;
    /// `jitter` is a random number in `0..1`.
    pub fn next_attempt(
        &self,
        retry: Retry,
        step: u32,
        since: i64,
        now: i64,
        jitter: f64,
    ) -> Option<i64> {
        let Retry::Later(retry_after) = retry else {
            return None;
        };
        let index = (step as usize).min(self.schedule.len().saturating_sub(1));
        let base = self
            .schedule
            .get(index)
            .copied()
            .unwrap_or(Duration::from_secs(60));
        let factor = 1.0 + JITTER * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
        let mut delay = base.mul_f64(factor);
        if let Some(after) = retry_after {
            delay = delay.max(after);
        }
        let next = now.saturating_add(delay.as_millis() as i64);
        let deadline = since.saturating_add(self.give_up_after.as_millis() as i64);
        (next <= deadline).then_some(next)
    }

    /// Reads a `retry:` section; keys left out keep their defaults.
    pub fn read(reader: &mut Reader, node: &Node) -> Option<Self> {
        let mut policy = RetryPolicy::default();
        let mut map = reader.map(node, "`retry`")?;
        let mut ok = true;
        if let Some(n) = map.take("schedule") {
            match reader.seq(n, "`retry.schedule`") {
                Some([]) => {
                    reader.error(n.pos, "`retry.schedule` needs at least one duration");
                    ok = false;
                }
                Some(items) => {
                    let steps: Option<Vec<Duration>> = items
                        .iter()
                        .map(|i| duration::read(reader, i, "each step of `retry.schedule`"))
                        .collect();
                    ok &= steps.as_ref().is_some_and(|s| !s.is_empty());
                    policy.schedule = steps.unwrap_or_default();
                }
                None => ok = false,
            }
        }
        if let Some(n) = map.take("give_up_after") {
            match duration::read(reader, n, "`retry.give_up_after`") {
                Some(d) => policy.give_up_after = d,
                None => ok = false,
            }
        }
        reader.finish(map, RETRY_KEYS, "`retry`");
        ok.then_some(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![Duration::from_secs(5), Duration::from_secs(30)],
            give_up_after: Duration::from_secs(100),
        }
    }

    #[test]
    fn next_attempt_table() {
        let later = Retry::Later(None);
        let cases: &[(Retry, u32, i64, f64, Option<i64>)] = &[
            // The first step, without and with the largest jitter either way.
            (later, 0, 0, 0.5, Some(5_000)),
            (later, 0, 0, 0.0, Some(4_000)),
            (later, 0, 0, 1.0, Some(6_000)),
            // The last step repeats.
            (later, 1, 0, 0.5, Some(30_000)),
            (later, 7, 0, 0.5, Some(30_000)),
            // Retry-After wins when longer than the schedule, not when shorter.
            (
                Retry::Later(Some(Duration::from_secs(60))),
                0,
                0,
                0.5,
                Some(60_000),
            ),
            (
                Retry::Later(Some(Duration::from_secs(1))),
                0,
                0,
                0.5,
                Some(5_000),
            ),
            // Past give_up_after, or permanent: dead.
            (later, 1, 80_000, 0.5, None),
            (Retry::Never, 0, 0, 0.5, None),
        ];
        for (retry, step, now, jitter, want) in cases {
            let got = policy().next_attempt(*retry, *step, 0, *now, *jitter);
            assert_eq!(got, *want, "{retry:?} step {step} at {now}");
        }
    }

    #[test]
    fn reads_a_retry_section() {
        let mut reader = Reader::new("t.yaml");
        let node = reader
            .parse("{schedule: [100ms, 1s], give_up_after: 2m}")
            .unwrap();
        let got = RetryPolicy::read(&mut reader, &node).unwrap();
        assert_eq!(
            got.schedule,
            [Duration::from_millis(100), Duration::from_secs(1)]
        );
        assert_eq!(got.give_up_after, Duration::from_secs(120));

        let mut reader = Reader::new("t.yaml");
        let node = reader.parse("{schedule: [], give_up: 1h}").unwrap();
        assert!(RetryPolicy::read(&mut reader, &node).is_none());
        let errors: Vec<String> = reader
            .diagnostics
            .items
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "t.yaml:1:12: `retry.schedule` needs at least one duration",
                "t.yaml:1:16: unknown key `give_up` in `retry`; expected one of `schedule`, `give_up_after`",
            ]
        );
    }
}
