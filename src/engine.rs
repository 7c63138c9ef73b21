//! The engine: evaluates an event against the loaded policy set and turns each firing
//! policy's actions into rendered deliveries, ready to commit with the event.
//!
//! The set is held behind an `Arc` so a reload can swap it while events in flight finish
//! against the set they started with.

use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::event::{format_time, new_id, Event};
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

/// Whether `policy` applies to `event` and its conditions hold.
pub fn policy_matches(policy: &Policy, event: &Event) -> bool {
    if !policy.enabled {
        return false;
    }
    if let Some(sources) = &policy.sources {
        if !sources.contains(&event.source) {
            return false;
        }
    }
    policy.condition.matches(event)
}

/// Evaluates `event` against `set`.
pub fn evaluate(set: &PolicySet, event: &Event) -> Evaluation {
    let mut evaluation = Evaluation::default();
    for policy in set.policies.iter().filter(|p| policy_matches(p, event)) {
        tracing::debug!(policy = %policy.name, event_id = %event.id, "policy matched");
        evaluation.matched.push(policy.name.clone());
        for action in &policy.actions {
            evaluation
                .deliveries
                .push(render(set, policy, action, event));
        }
    }
    evaluation
}

/// Renders one action. A template that fails at render time still yields a delivery,
/// marked failed with the reason, so the ledger shows what was lost and why.
fn render(set: &PolicySet, policy: &Policy, action: &Action, event: &Event) -> Delivery {
    let Action::Email(email) = action;
    let context = Context::new(policy, event);
    let subject = set.templates.render(&email.subject, &context);
    let body = set.templates.render(&email.body, &context);
    let now = format_time(OffsetDateTime::now_utc());
    let recipient = email
        .to
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut delivery = Delivery {
        id: new_id(),
        event_id: event.id.clone(),
        policy: policy.name.clone(),
        channel: "email".to_string(),
        recipient,
        subject: String::new(),
        body: String::new(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_error: None,
        created_at: now.clone(),
        updated_at: now,
    };
    match (subject, body) {
        (Ok(subject), Ok(body)) => {
            delivery.subject = subject;
            delivery.body = body;
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(policy = %policy.name, event_id = %event.id, error = %e, "template failed to render; the email is not sent");
            delivery.status = DeliveryStatus::Failed;
            delivery.last_error = Some(format!("template failed to render: {e}"));
        }
    }
    delivery
}
