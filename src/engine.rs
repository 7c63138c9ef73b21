//! The engine: evaluates an event against the loaded policy set and turns each firing
//! policy's actions into rendered deliveries, ready to commit with the event.
//!
//! The set is held behind an `Arc` so a reload can swap it while events in flight finish
//! against the set they started with. Extractors run at most once per event, however
//! many policies use them (see [`Scope`]).

use std::sync::{Arc, RwLock};

use serde::Serialize;
use time::OffsetDateTime;

use crate::condition::Failure;
use crate::event::{format_time, new_id, Event};
use crate::field::Scope;
use crate::policy::{Action, Policy, PolicySet};
use crate::store::{Delivery, DeliveryStatus};
use crate::template::Context;

/// The outcome of evaluating one event.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Names of the policies that matched, in load order.
    pub matched: Vec<String>,
    /// Rendered notifications to commit with the event.
    pub deliveries: Vec<Delivery>,
    /// The version of the policy set the event was evaluated with.
    pub policy_version: String,
}

/// Why one policy did or did not fire for an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verdict {
    /// It fired; these are the fields its extractors found.
    Matched {
        fields: serde_json::Map<String, serde_json::Value>,
    },
    /// `enabled: false`.
    Disabled,
    /// The event came from a source the policy does not listen to.
    OtherSource { sources: Vec<String> },
    /// A condition failed.
    Failed(Failure),
}

impl Verdict {
    pub fn matched(&self) -> bool {
        matches!(self, Verdict::Matched { .. })
    }

    /// The verdict in one line for people: the extracted fields of a match, or why
    /// the policy did not match and what the failing condition saw.
    pub fn reason(&self) -> String {
        match self {
            Verdict::Matched { fields } if fields.is_empty() => String::new(),
            Verdict::Matched { fields } => {
                let fields: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                fields.join(", ")
            }
            Verdict::Disabled => "the policy is disabled".to_string(),
            Verdict::OtherSource { sources } => {
                format!("it listens only to sources {}", sources.join(", "))
            }
            Verdict::Failed(f) => match &f.actual {
                Some(actual) => format!("{}: {} failed; the value was {actual}", f.at, f.condition),
                None => format!(
                    "{}: {} failed; the event has no such field",
                    f.at, f.condition
                ),
            },
        }
    }
}

/// A policy's name with its verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub policy: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The current policy set, replaceable as a whole.
pub struct Engine {
    current: RwLock<Arc<PolicySet>>,
}

impl Engine {
    pub fn new(set: PolicySet) -> Self {
        Engine {
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The set in force now.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the set; events already being evaluated keep the old one.
    pub fn replace(&self, set: PolicySet) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
    }

    /// Evaluates `event` against the current set.
    pub fn evaluate(&self, event: &Event) -> Evaluation {
        evaluate(&self.policies(), event)
    }
}

/// Whether `policy` is enabled and listens to the event's source.
fn applies(policy: &Policy, event: &Event) -> bool {
    policy.enabled
        && policy
            .sources
            .as_ref()
            .is_none_or(|s| s.contains(&event.source))
}

/// Whether `policy` fires for the scope's event.
pub fn policy_matches(policy: &Policy, scope: &Scope<'_>) -> bool {
    applies(policy, scope.event) && policy.condition.matches(scope)
}

/// Evaluates `event` against `set`.
pub fn evaluate(set: &PolicySet, event: &Event) -> Evaluation {
    let scope = Scope::new(event, &set.extractors);
    let mut evaluation = Evaluation {
        policy_version: set.version.clone(),
        ..Default::default()
    };
    let candidates = set.index.candidates(&event.message);
    let candidates = candidates
        .iter()
        .filter_map(|i| set.policies.get(*i as usize));
    for policy in candidates.filter(|p| policy_matches(p, &scope)) {
        tracing::debug!(policy = %policy.name, event_id = %event.id, "policy matched");
        evaluation.matched.push(policy.name.clone());
        for action in &policy.actions {
            evaluation
                .deliveries
                .push(render(set, policy, action, &scope));
        }
    }
    evaluation
}

/// Every policy's verdict on `event`: what fired, and why each other one did not.
pub fn explain(set: &PolicySet, event: &Event) -> Vec<Outcome> {
    let scope = Scope::new(event, &set.extractors);
    let outcome = |p: &Policy| Outcome {
        policy: p.name.clone(),
        verdict: verdict(p, &scope),
    };
    set.policies.iter().map(outcome).collect()
}

/// One policy's verdict on the scope's event.
pub fn verdict(policy: &Policy, scope: &Scope<'_>) -> Verdict {
    if !policy.enabled {
        return Verdict::Disabled;
    }
    let event_source = &scope.event.source;
    if let Some(sources) = policy
        .sources
        .as_ref()
        .filter(|s| !s.contains(event_source))
    {
        return Verdict::OtherSource {
            sources: sources.clone(),
        };
    }
    match policy.condition.explain(scope) {
        Some(failure) => Verdict::Failed(failure),
        None => Verdict::Matched {
            fields: scope.fields(&policy.extractors),
        },
    }
}

/// A rendered email: recipients, subject and body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RenderedEmail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Renders an action for the scope's event.
pub fn render_action(
    set: &PolicySet,
    policy: &Policy,
    action: &Action,
    scope: &Scope<'_>,
) -> Result<RenderedEmail, String> {
    let Action::Email(email) = action;
    let context = Context::new(policy, scope.event, scope.fields(&policy.extractors));
    let to = email
        .to
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let subject = set.templates.render(&email.subject, &context)?;
    let body = set.templates.render(&email.body, &context)?;
    Ok(RenderedEmail { to, subject, body })
}

/// Renders one action into a delivery. A template that fails at render time still
/// yields a delivery, marked failed with the reason, so the ledger shows what was lost.
fn render(set: &PolicySet, policy: &Policy, action: &Action, scope: &Scope<'_>) -> Delivery {
    let event = scope.event;
    let now = format_time(OffsetDateTime::now_utc());
    let mut delivery = Delivery {
        id: new_id(),
        event_id: event.id.clone(),
        policy: policy.name.clone(),
        channel: "email".to_string(),
        recipient: String::new(),
        subject: String::new(),
        body: String::new(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_error: None,
        created_at: now.clone(),
        updated_at: now,
    };
    match render_action(set, policy, action, scope) {
        Ok(email) => {
            delivery.recipient = email.to;
            delivery.subject = email.subject;
            delivery.body = email.body;
        }
        Err(e) => {
            tracing::error!(policy = %policy.name, event_id = %event.id, error = %e, "template failed to render; the email is not sent");
            let Action::Email(email) = action;
            delivery.recipient = email
                .to
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            delivery.status = DeliveryStatus::Failed;
            delivery.last_error = Some(format!("template failed to render: {e}"));
        }
    }
    delivery
}
