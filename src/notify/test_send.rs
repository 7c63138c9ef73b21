//! `tripline notify-test`: renders a policy's actions with a sample event and really
//! sends them, so a wrong SMTP password or webhook URL is found before a real alert.
//! Nothing is stored: the outbox and its retries are not involved.

use super::send::Senders;
use super::AlertStatus;
use crate::engine::render_delivery;
use crate::event::{new_id, Event};
use crate::policy::{Policy, PolicySet};

/// The message of the sample event.
pub const SAMPLE_MESSAGE: &str =
    "This is a test notification sent by `tripline notify-test`; no event caused it.";

/// What happened to one action.
#[derive(Debug)]
pub struct TestSend {
    /// The action's position in `notify:`, from 1.
    pub number: usize,
    pub channel: String,
    pub recipient: String,
    /// The server's reply, or why rendering or sending failed.
    pub outcome: Result<String, String>,
}

/// Sends the actions of `policy` (only the `action`th, from 1, when given).
pub async fn run(
    set: &PolicySet,
    policy: &str,
    action: Option<usize>,
    senders: &Senders,
) -> Result<Vec<TestSend>, String> {
    let policy = find(set, policy)?;
    let numbers: Vec<usize> = match action {
        Some(n) if (1..=policy.actions.len()).contains(&n) => vec![n],
        Some(n) => {
            return Err(format!(
                "policy `{}` has {} action(s); `--action` must be 1 to {}, found {n}",
                policy.name,
                policy.actions.len(),
                policy.actions.len()
            ))
        }
        None => (1..=policy.actions.len()).collect(),
    };
    if numbers.is_empty() {
        return Err(format!("policy `{}` has no `notify:` actions", policy.name));
    }
    let event = sample_event(policy);
    let mut results = Vec::new();
    for number in numbers {
        results.push(send_one(set, policy, number, &event, senders).await);
    }
    Ok(results)
}

async fn send_one(
    set: &PolicySet,
    policy: &Policy,
    number: usize,
    event: &Event,
    senders: &Senders,
) -> TestSend {
    let action = &policy.actions[number - 1];
    let scope = crate::field::Scope::new(event, &set.extractors);
    let group = super::incident::group_values(&scope, policy, &action.group_by);
    let delivery = render_delivery(
        set,
        policy,
        (number - 1) as u32,
        &scope,
        AlertStatus::Firing,
        &group,
    );
    let outcome = match (&delivery.message, &delivery.last_error) {
        (Some(message), _) => senders
            .send_message(&delivery, message)
            .await
            .map_err(|f| f.text),
        (None, error) => Err(error.clone().unwrap_or_default()),
    };
    TestSend {
        number,
        channel: delivery.channel,
        recipient: delivery.recipient,
        outcome,
    }
}

fn find<'s>(set: &'s PolicySet, name: &str) -> Result<&'s Policy, String> {
    if let Some(policy) = set.get(name) {
        return Ok(policy);
    }
    let names: Vec<&str> = set.policies.iter().map(|p| p.name.as_str()).collect();
    let hint = match crate::yaml::suggest(name, &names) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    Err(format!("no policy is named `{name}`{hint}"))
}

/// The event to render with: the policy's first fixture that is expected to match,
/// so templates that use extracted fields have them; otherwise an event that says
/// what it is, from a source the policy accepts.
pub fn sample_event(policy: &Policy) -> Event {
    if let Some(fixture) = policy.fixtures.iter().find(|f| f.expect.matches) {
        return Event {
            id: new_id(),
            ..fixture.event()
        };
    }
    let source = policy
        .sources
        .as_ref()
        .and_then(|s| s.first().cloned())
        .unwrap_or_else(|| "notify-test".to_string());
    let mut event = Event::sample(
        new_id(),
        source,
        "tripline notify-test".to_string(),
        SAMPLE_MESSAGE.to_string(),
        &[("content-type".to_string(), "text/plain".to_string())],
    );
    event.category = policy.category;
    event
}
