//! Incidents: one per policy action and group key, opened by the first firing,
//! renotified on the action's `renotify` interval, and resolved by an event matching
//! the policy's `clear:` conditions or by `resolve_after` of quiet.
//!
//! The decisions are pure functions here; the store applies them inside the
//! transaction that stores the event, and the [`sweep`] resolves quiet incidents.

use std::sync::Arc;

use super::action::Renotify;
use super::AlertStatus;
use crate::engine::{render_delivery, Engine};
use crate::field::Scope;
use crate::policy::Policy;
use crate::store::{now_ms, QuietIncident, Store};

/// The event values `group_by` can name, besides `header.NAME`, `query.NAME`,
/// `tag.NAME` and the policy's extracted fields.
pub const GROUP_FIELDS: &[&str] = &["source", "title", "category", "message", "content_type"];

/// Whether `group_by` may name `name`; `extracted` lists the names the policy's
/// extractors produce, or is `None` when they may produce any name.
pub fn check_group_field(name: &str, extracted: Option<&[String]>) -> Result<(), String> {
    if GROUP_FIELDS.contains(&name) {
        return Ok(());
    }
    let prefixed = ["header.", "query.", "tag."]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
    if prefixed || extracted.is_none_or(|names| names.iter().any(|n| n == name)) {
        return Ok(());
    }
    let mut known: Vec<&str> = GROUP_FIELDS.to_vec();
    known.extend(extracted.unwrap_or_default().iter().map(String::as_str));
    let hint = match crate::yaml::suggest(name, &known) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "use one of {}, `header.NAME`, `query.NAME`, `tag.NAME`, or a field the policy extracts",
            crate::yaml::backticked(&known)
        ),
    };
    Err(format!("`group_by` cannot use `{name}`; {hint}"))
}

/// The value of one `group_by` name for the scope's event. This is the one place
/// that maps names to values.
pub fn group_value(scope: &Scope<'_>, policy: &Policy, name: &str) -> Option<String> {
    let event = scope.event;
    match name {
        "source" => Some(event.source.clone()),
        "title" => Some(event.title.clone()),
        "category" => Some(event.category.as_str().to_string()),
        "message" => Some(event.message.clone()),
        "content_type" => event.content_type.clone(),
        _ => {
            if let Some(header) = name.strip_prefix("header.") {
                return event
                    .header(&header.to_ascii_lowercase())
                    .map(str::to_string);
            }
            if let Some(param) = name.strip_prefix("query.") {
                return event.query_param(param).map(str::to_string);
            }
            if let Some(tag) = name.strip_prefix("tag.") {
                return event.tag(tag).map(str::to_string);
            }
            let fields = scope.fields(&policy.extractors);
            fields.get(name).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
    }
}

/// The group's values in `group_by` order; a missing value is empty.
pub fn group_values(scope: &Scope<'_>, policy: &Policy, names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| group_value(scope, policy, n).unwrap_or_default())
        .collect()
}

/// The stored form of a group key: its values as a JSON list.
pub fn group_key(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

/// Whether a firing notifies. `open` is `None` when no incident is open, otherwise
/// when the open incident last notified (`None` if never, e.g. it was muted).
pub fn firing_notifies(open: Option<Option<i64>>, renotify: Renotify, now: i64) -> bool {
    let Some(last_notified) = open else {
        return true;
    };
    match (renotify, last_notified) {
        (_, None) | (Renotify::Always, _) => true,
        (Renotify::Never, Some(_)) => false,
        (Renotify::Every(interval), Some(at)) => now - at >= interval.as_millis() as i64,
    }
}

/// Resolves every incident quiet past its policy's `resolve_after`, committing the
/// clear notifications of actions with `on_clear`. Answers how many it resolved.
pub fn sweep(store: &Arc<dyn Store>, engine: &Engine) -> usize {
    let now = now_ms();
    let quiet = match store.quiet_incidents(now) {
        Ok(quiet) => quiet,
        Err(e) => {
            tracing::error!(error = %e, "cannot read quiet incidents; they stay open");
            return 0;
        }
    };
    let mut resolved = 0;
    for incident in quiet {
        let deliveries = clear_deliveries(store, engine, &incident);
        match store.resolve_quiet(&incident, &deliveries, now) {
            Ok(true) => {
                resolved += 1;
                tracing::info!(policy = %incident.policy, incident_id = %incident.id, group = %incident.group_key, "incident resolved after a quiet period");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(incident_id = %incident.id, error = %e, "cannot resolve a quiet incident")
            }
        }
    }
    resolved
}

/// The clear notification of a quiet incident, rendered from its last event with the
/// policy as loaded now; none when the policy or action is gone or has no `on_clear`.
fn clear_deliveries(
    store: &Arc<dyn Store>,
    engine: &Engine,
    incident: &QuietIncident,
) -> Vec<crate::store::Delivery> {
    if !incident.notified {
        return Vec::new();
    }
    let set = engine.policies();
    let Some(policy) = set.get(&incident.policy) else {
        return Vec::new();
    };
    let Some(action) = policy.actions.get(incident.action as usize) else {
        return Vec::new();
    };
    if !action.on_clear {
        return Vec::new();
    }
    let event = match store.event(&incident.last_event_id) {
        Ok(Some(stored)) => stored.event,
        _ => return Vec::new(),
    };
    let group: Vec<String> = serde_json::from_str(&incident.group_key).unwrap_or_default();
    let scope = Scope::new(&event, &set.extractors);
    let mut delivery = render_delivery(
        &set,
        policy,
        incident.action,
        &scope,
        AlertStatus::Cleared,
        &group,
    );
    delivery.plan = None;
    vec![delivery]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn firing_notifies_table() {
        let every = Renotify::Every(Duration::from_secs(60));
        let cases: &[(Option<Option<i64>>, Renotify, i64, bool)] = &[
            (None, Renotify::Never, 0, true),
            (None, every, 0, true),
            (Some(Some(0)), Renotify::Always, 1, true),
            (Some(Some(0)), Renotify::Never, 999_999, false),
            (Some(None), Renotify::Never, 5, true),
            (Some(Some(0)), every, 59_999, false),
            (Some(Some(0)), every, 60_000, true),
        ];
        for (open, renotify, now, want) in cases {
            assert_eq!(
                firing_notifies(*open, *renotify, *now),
                *want,
                "{open:?} {renotify:?} {now}"
            );
        }
    }

    fn policy(extract: &str) -> (crate::policy::PolicySet, crate::event::Event) {
        let text = format!("name: p\n{extract}conditions: [{{field: message, exists: true}}]\n");
        let set = crate::policy::PolicySet::compile(vec![("p.yaml".into(), text)], None).unwrap();
        let mut event = crate::event::Event::sample(
            "e".into(),
            "nagios".into(),
            "disk".into(),
            "host=db-2 m".into(),
            &[("X-Host".into(), "web-1".into())],
        );
        event.category = crate::event::Category::Critical;
        event.tags = vec![("team".into(), "infra".into())];
        (set, event)
    }

    #[test]
    fn group_values_come_from_the_event_and_its_fields() {
        let (set, event) = policy("extract: [{kv: {keys: [host]}}]\n");
        let scope = Scope::new(&event, &set.extractors);
        let names: Vec<String> = [
            "source",
            "header.X-Host",
            "category",
            "content_type",
            "header.none",
            "host",
            "tag.team",
        ]
        .map(String::from)
        .to_vec();
        let values = group_values(&scope, &set.policies[0], &names);
        assert_eq!(
            values,
            ["nagios", "web-1", "critical", "", "", "db-2", "infra"]
        );
        assert_eq!(group_key(&values[..2]), r#"["nagios","web-1"]"#);
    }

    #[test]
    fn unknown_group_fields_are_refused_with_a_hint() {
        let extracted = ["host".to_string()];
        assert!(check_group_field("header.x-host", Some(&[])).is_ok());
        assert!(check_group_field("host", Some(&extracted)).is_ok());
        assert!(
            check_group_field("anything", None).is_ok(),
            "a `kv` without keys may produce it"
        );
        assert_eq!(
            check_group_field("hots", Some(&extracted)).unwrap_err(),
            "`group_by` cannot use `hots`; did you mean `host`?"
        );
        assert_eq!(
            check_group_field("header.", Some(&[])).unwrap_err(),
            "`group_by` cannot use `header.`; use one of `source`, `title`, `category`, `message`, `content_type`, `header.NAME`, `query.NAME`, `tag.NAME`, or a field the policy extracts"
        );
    }
}
