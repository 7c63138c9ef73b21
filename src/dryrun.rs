//! `tripline test`: one message evaluated against the policies without sending
//! anything, and the report that shows what would happen and why.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::{self, Verdict};
use crate::event::Event;
use crate::field::Scope;
use crate::notify::{AlertStatus, Message};
use crate::policy::PolicySet;

/// The source of a dry-run event when none is given.
pub const DEFAULT_SOURCE: &str = "test";

/// What a dry run is asked to evaluate.
pub struct Input {
    pub message: String,
    pub source: Option<String>,
    pub title: Option<String>,
    /// `Name: value` pairs.
    pub headers: Vec<(String, String)>,
}

/// The whole result, printed as text or JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Names of the policies that matched.
    pub matched: Vec<String>,
    pub policies: Vec<PolicyReport>,
}

/// One policy's part of the report.
#[derive(Debug, Serialize)]
pub struct PolicyReport {
    pub policy: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The notifications it would send, rendered; empty unless it matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
}

/// A notification that would be sent, or why it could not be rendered.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Notification {
    Rendered { message: Message },
    Error { error: String },
}

impl Input {
    /// The event this input describes; header names are kept in lowercase.
    pub fn event(&self) -> Event {
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| DEFAULT_SOURCE.to_string());
        let title = self.title.clone().unwrap_or_default();
        Event::sample(
            "dry-run".to_string(),
            source,
            title,
            self.message.clone(),
            &self.headers,
        )
    }
}

/// Parses a `--header 'Name: value'` argument.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!(
            "`{text}` is not a header; write it as `Name: value`"
        )),
    }
}

/// Evaluates `input` against every policy; nothing is sent or stored.
pub fn run(set: &PolicySet, input: &Input) -> Report {
    let event = input.event();
    let scope = Scope::new(&event, &set.extractors);
    let mut report = Report {
        matched: Vec::new(),
        policies: Vec::new(),
    };
    for policy in &set.policies {
        let verdict = engine::verdict(policy, &scope);
        let mut notifications = Vec::new();
        if matches!(verdict, Verdict::Matched { .. }) {
            report.matched.push(policy.name.clone());
            for index in 0..policy.actions.len() {
                let rendered =
                    engine::render_message(set, policy, index, &scope, AlertStatus::Firing);
                notifications.push(match rendered {
                    Ok(message) => Notification::Rendered { message },
                    Err(error) => Notification::Error { error },
                });
            }
        }
        report.policies.push(PolicyReport {
            policy: policy.name.clone(),
            verdict,
            notifications,
        });
    }
    report
}

impl Report {
    /// The report for people: matches first with fields and notifications, then why
    /// every other policy did not match.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let (matched, other): (Vec<_>, Vec<_>) = self
            .policies
            .iter()
            .partition(|p| matches!(p.verdict, Verdict::Matched { .. }));
        let _ = writeln!(
            out,
            "{} of {} policies match",
            matched.len(),
            self.policies.len()
        );
        for p in matched {
            write_match(&mut out, p);
        }
        for p in other {
            write_miss(&mut out, p);
        }
        out
    }
}

fn write_match(out: &mut String, p: &PolicyReport) {
    let _ = writeln!(out, "\nMATCH {}", p.policy);
    if let Verdict::Matched { fields } = &p.verdict {
        for (name, value) in fields {
            let _ = writeln!(out, "  field {name} = {value}");
        }
    }
    for n in &p.notifications {
        match n {
            Notification::Rendered { message } => {
                let _ = writeln!(
                    out,
                    "  would send {} to {}",
                    channel(message),
                    message.recipient()
                );
                let _ = writeln!(out, "    {}", message.summary());
                if let Message::Email(email) = message {
                    for line in email.text.lines() {
                        let _ = writeln!(out, "    | {line}");
                    }
                }
            }
            Notification::Error { error } => {
                let _ = writeln!(out, "  cannot render a notification: {error}");
            }
        }
    }
    if p.notifications.is_empty() {
        let _ = writeln!(out, "  (no notify actions)");
    }
}

fn channel(message: &Message) -> &'static str {
    match message {
        Message::Email(_) => "email",
        Message::Webhook(_) => "webhook",
        Message::Slack(_) => "slack",
        Message::Pagerduty(_) => "pagerduty",
        Message::Log(_) => "log",
    }
}

fn write_miss(out: &mut String, p: &PolicyReport) {
    let _ = writeln!(out, "\nno match {}\n  {}", p.policy, p.verdict.reason());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_arguments_table() {
        assert_eq!(
            parse_header("X-Event: push").unwrap(),
            ("X-Event".to_string(), "push".to_string())
        );
        assert_eq!(
            parse_header("A: b: c").unwrap(),
            ("A".to_string(), "b: c".to_string())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": value").is_err());
    }
}
