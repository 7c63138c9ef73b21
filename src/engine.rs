//! The engine: evaluates an event against the loaded policy set and turns each firing
//! (or clearing) policy's actions into rendered deliveries, ready to commit with the
//! event; the store decides, with its incident and mute state, which are sent.
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
use crate::notify::action::Render;
use crate::notify::incident::{group_key, group_values};
use crate::notify::{AlertStatus, Message};
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

/// Whether `policy` is enabled and sees events of `event`'s source.
pub fn policy_applies(policy: &Policy, event: &Event) -> bool {
    policy.enabled
        && policy
            .sources
            .as_ref()
            .is_none_or(|s| s.contains(&event.source))
}

/// Whether `policy` fires for the scope's event.
pub fn policy_matches(policy: &Policy, scope: &Scope<'_>) -> bool {
    policy_applies(policy, scope.event) && policy.condition.matches(scope)
}

/// Whether the scope's event matches `policy`'s `clear:` conditions (and not its own).
pub fn policy_clears(policy: &Policy, scope: &Scope<'_>) -> bool {
    policy_applies(policy, scope.event)
        && policy.clear.as_ref().is_some_and(|c| c.matches(scope))
        && !policy.condition.matches(scope)
}

/// Evaluates `event` against `set`: a matching policy renders a firing delivery per
/// action; a policy whose `clear:` matches renders a clear per action. Only the
/// policies the index names as candidates are evaluated.
pub fn evaluate(set: &PolicySet, event: &Event) -> Evaluation {
    let scope = Scope::new(event, &set.extractors);
    let mut evaluation = Evaluation {
        policy_version: set.version.clone(),
        ..Default::default()
    };
    let candidates = set.index.candidates(&event.message);
    for policy in candidates
        .iter()
        .filter_map(|i| set.policies.get(*i as usize))
    {
        let status = if policy_matches(policy, &scope) {
            tracing::debug!(policy = %policy.name, event_id = %event.id, "policy matched");
            evaluation.matched.push(policy.name.clone());
            AlertStatus::Firing
        } else if policy_clears(policy, &scope) {
            tracing::debug!(policy = %policy.name, event_id = %event.id, "clear conditions matched");
            AlertStatus::Cleared
        } else {
            continue;
        };
        for (index, action) in policy.actions.iter().enumerate() {
            let group = group_values(&scope, policy, &action.group_by);
            let mut delivery = render_delivery(set, policy, index as u32, &scope, status, &group);
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

/// Renders the `index`th action of `policy` for the scope's event, as it would be sent.
pub fn render_message(
    set: &PolicySet,
    policy: &Policy,
    index: usize,
    scope: &Scope<'_>,
    status: AlertStatus,
) -> Result<Message, String> {
    let action = policy
        .actions
        .get(index)
        .ok_or("the action no longer exists")?;
    let group = group_values(scope, policy, &action.group_by);
    let fields = scope.template_fields(&policy.extractors);
    let context = Context::new(policy, scope.event, fields).with_status(status);
    let render = Render {
        templates: &set.templates,
        context: &context,
        group: &group,
    };
    action.render(&render)
}

/// Renders the `index`th action of `policy` into a delivery. A template that fails at
/// render time still yields a delivery, dead with the reason, so the ledger shows what
/// was lost and why.
pub fn render_delivery(
    set: &PolicySet,
    policy: &Policy,
    index: u32,
    scope: &Scope<'_>,
    status: AlertStatus,
    group: &[String],
) -> Delivery {
    let event = scope.event;
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
    let fields = scope.template_fields(&policy.extractors);
    let context = Context::new(policy, event, fields).with_status(status);
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
