//! The engine: evaluates an event against the loaded policy set and turns each firing
//! (or clearing) policy's actions into rendered deliveries, ready to commit with the
//! event.
//!
//! The set is held behind an `Arc` so a reload can swap it while events in flight finish
//! against the set they started with.

use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::event::{format_time, new_id, Event};
use crate::notify::action::Render;
use crate::notify::incident::{group_key, group_values};
use crate::notify::AlertStatus;
use crate::policy::{Policy, PolicySet};
use crate::store::{Delivery, DeliveryStatus, IncidentPlan};
use crate::template::Context;

/// The outcome of evaluating one event.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Names of the policies that matched, in load order.
    pub matched: Vec<String>,
    /// Rendered notifications to commit with the event; the store decides, with its
    /// incident and mute state, which are sent.
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

/// Whether `policy` is enabled and sees events of `event`'s source.
pub fn policy_applies(policy: &Policy, event: &Event) -> bool {
    if !policy.enabled {
        return false;
    }
    match &policy.sources {
        Some(sources) => sources.contains(&event.source),
        None => true,
    }
}

/// Whether `policy` applies to `event` and its conditions hold.
pub fn policy_matches(policy: &Policy, event: &Event) -> bool {
    policy_applies(policy, event) && policy.condition.matches(event)
}

/// Whether `event` matches `policy`'s `clear:` conditions (and not its own).
pub fn policy_clears(policy: &Policy, event: &Event) -> bool {
    policy_applies(policy, event)
        && policy.clear.as_ref().is_some_and(|c| c.matches(event))
        && !policy.condition.matches(event)
}

/// Evaluates `event` against `set`: a matching policy renders a firing delivery per
/// action; a policy whose `clear:` matches renders a clear per action. The store
/// decides, with its incident state, which of them are sent.
pub fn evaluate(set: &PolicySet, event: &Event) -> Evaluation {
    let mut evaluation = Evaluation::default();
    for policy in &set.policies {
        let status = if policy_matches(policy, event) {
            tracing::debug!(policy = %policy.name, event_id = %event.id, "policy matched");
            evaluation.matched.push(policy.name.clone());
            AlertStatus::Firing
        } else if policy_clears(policy, event) {
            tracing::debug!(policy = %policy.name, event_id = %event.id, "clear conditions matched");
            AlertStatus::Cleared
        } else {
            continue;
        };
        for (index, action) in policy.actions.iter().enumerate() {
            let group = group_values(event, &action.group_by);
            let mut delivery = render_delivery(set, policy, index as u32, event, status, &group);
            delivery.plan = Some(IncidentPlan {
                group_key: group_key(&group),
                renotify: action.renotify,
                resolve_after: policy.resolve_after,
                notify: status == AlertStatus::Firing || action.on_clear,
            });
            evaluation.deliveries.push(delivery);
        }
    }
    evaluation
}

/// Renders the `index`th action of `policy` for `event`. A template that fails at
/// render time still yields a delivery, dead with the reason, so the ledger shows
/// what was lost and why.
pub fn render_delivery(
    set: &PolicySet,
    policy: &Policy,
    index: u32,
    event: &Event,
    status: AlertStatus,
    group: &[String],
) -> Delivery {
    let now = format_time(OffsetDateTime::now_utc());
    let mut delivery = Delivery {
        id: new_id(),
        event_id: event.id.clone(),
        policy: policy.name.clone(),
        action: index,
        alert: status,
        created_at: now.clone(),
        updated_at: now,
        ..Delivery::default()
    };
    let Some(action) = policy.actions.get(index as usize) else {
        delivery.status = DeliveryStatus::Dead;
        delivery.last_error = Some("the action no longer exists".to_string());
        return delivery;
    };
    delivery.channel = action.channel_name().to_string();
    let context = Context::new(policy, event).with_status(status);
    let render = Render {
        templates: &set.templates,
        context: &context,
        group,
    };
    match action.render(&render) {
        Ok(message) => {
            delivery.recipient = message.recipient();
            delivery.subject = message.summary();
            delivery.message = Some(message);
        }
        Err(e) => {
            tracing::error!(policy = %policy.name, event_id = %event.id, action = index, error = %e, "a template failed to render; the notification is not sent");
            delivery.status = DeliveryStatus::Dead;
            delivery.last_error = Some(format!("template failed to render: {e}"));
        }
    }
    delivery
}
