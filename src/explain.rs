//! Explanations for the Event Explorer: for a stored event, which policies matched and
//! why each other one did not.
//!
//! The matches are the stored truth of when the event arrived. The reasons are
//! recomputed on demand against the policies loaded now, so nothing per policy per
//! event is stored; after a reload that changed a policy, its reason describes the
//! current version, and the answer says so when the two disagree.

use std::borrow::Cow;

use serde::Serialize;

use crate::condition::{Condition, Field};
use crate::engine::policy_matches;
use crate::policy::{Policy, PolicySet};
use crate::store::StoredEvent;

/// The longest actual value quoted in a reason.
const MAX_QUOTED: usize = 120;

/// One policy's verdict on one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub policy: String,
    pub matched: bool,
    /// Why it did not match, or a note on a match; `None` for a plain match.
    pub reason: Option<String>,
}

/// The verdict of every loaded policy, then of matched policies no longer loaded.
pub fn explain(set: &PolicySet, stored: &StoredEvent) -> Vec<Explanation> {
    let mut out: Vec<Explanation> = set
        .policies
        .iter()
        .map(|policy| {
            let matched = stored.matched.contains(&policy.name);
            let reason = match (matched, policy_matches(policy, &stored.event)) {
                (true, _) => None,
                (false, true) => Some("did not match when the event arrived; the policy has changed since and matches now".into()),
                (false, false) => Some(reason(policy, stored)),
            };
            Explanation { policy: policy.name.clone(), matched, reason }
        })
        .collect();
    for name in &stored.matched {
        if set.get(name).is_none() {
            let reason =
                Some("matched when the event arrived; the policy is no longer loaded".into());
            out.push(Explanation {
                policy: name.clone(),
                matched: true,
                reason,
            });
        }
    }
    out
}

/// The first thing that kept `policy` from matching.
fn reason(policy: &Policy, stored: &StoredEvent) -> String {
    let event = &stored.event;
    if !policy.enabled {
        return "the policy is disabled".into();
    }
    if let Some(sources) = &policy.sources {
        if !sources.contains(&event.source) {
            return format!("source `{}` is not one of its `sources`", event.source);
        }
    }
    let failing = match &policy.condition {
        Condition::All(list) => list.iter().find(|c| !c.matches(event)),
        other => Some(other),
    };
    match failing {
        Some(Condition::Test(test)) => {
            let at = format!("{}:{}:{}", policy.file, test.pos.line, test.pos.col);
            match test.field.value(event) {
                Some(value) => format!(
                    "the condition at {at} on `{}` does not hold; its value is `{}`",
                    field_name(&test.field),
                    quote(&value)
                ),
                None => format!(
                    "the condition at {at} does not hold: the event has no `{}`",
                    field_name(&test.field)
                ),
            }
        }
        Some(Condition::Any(_)) => "none of the `any` conditions holds".into(),
        Some(Condition::Not(_)) => "a `not` condition holds, so the policy does not".into(),
        Some(Condition::All(_)) | None => "its conditions do not hold".into(),
    }
}

fn field_name(field: &Field) -> Cow<'_, str> {
    match field {
        Field::Message => "message".into(),
        Field::Title => "title".into(),
        Field::Source => "source".into(),
        Field::Category => "category".into(),
        Field::Header(name) => format!("header.{name}").into(),
    }
}

fn quote(value: &str) -> String {
    let mut quoted: String = value.chars().take(MAX_QUOTED).collect();
    if quoted.len() < value.len() {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Category, Event};

    fn stored(message: &str, matched: &[&str]) -> StoredEvent {
        StoredEvent {
            event: Event {
                id: "e1".into(),
                received_at: time::OffsetDateTime::UNIX_EPOCH,
                source: "ci".into(),
                title: String::new(),
                message: message.into(),
                content_type: None,
                headers: Vec::new(),
                category: Category::Info,
                tags: Vec::new(),
                json: None,
            },
            matched: matched.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn each_policy_gets_a_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let policy = |name: &str, extra: &str| {
            let text = format!("name: {name}\n{extra}conditions:\n  - {{field: message, contains: deploy}}\n  - {{field: message, contains: failed}}\n");
            std::fs::write(dir.path().join(format!("{name}.yaml")), text).unwrap();
        };
        policy("a", "");
        policy("b", "sources: [nagios]\n");
        policy("c", "enabled: false\n");
        let set = PolicySet::load(&[dir.path().into()], None).unwrap();
        let out = explain(&set, &stored("deploy ok", &["gone"]));
        let reasons: Vec<(&str, bool, String)> = out
            .iter()
            .map(|e| {
                (
                    e.policy.as_str(),
                    e.matched,
                    e.reason.clone().unwrap_or_default(),
                )
            })
            .collect();
        let file = dir.path().join("a.yaml").display().to_string();
        assert_eq!(reasons, [
            ("a", false, format!("the condition at {file}:4:5 on `message` does not hold; its value is `deploy ok`")),
            ("b", false, "source `ci` is not one of its `sources`".into()),
            ("c", false, "the policy is disabled".into()),
            ("gone", true, "matched when the event arrived; the policy is no longer loaded".into()),
        ]);
    }
}
