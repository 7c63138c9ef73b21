//! Notifications: what a policy's `notify:` list says, how each entry becomes a rendered
//! message, and how the committed messages reach people.
//!
//! - [`action`] reads `notify:` entries and renders them into a [`Message`].
//! - One file per channel: [`email`], [`webhook`], [`slack`], [`pagerduty`], [`log`];
//!   [`http`] is what the HTTP channels share; [`relay`] is the SMTP connection.
//! - [`incident`] decides, per action and group key, whether a firing notifies, is
//!   suppressed by `renotify`, or clears an open incident.
//! - [`outbox`] is the retry schedule and the failure classification;
//!   [`dispatcher`] claims due deliveries from the store and sends them.
//! - [`mute`] silences a policy until a time.
//! - [`send`] routes a message to its channel; [`test_send`] backs `tripline notify-test`;
//!   [`cli`] holds the notification commands of the binary.

pub mod action;
pub mod cli;
pub mod dispatcher;
pub mod duration;
pub mod email;
pub mod http;
pub mod incident;
pub mod log;
pub mod mute;
pub mod outbox;
pub mod pagerduty;
pub mod relay;
pub mod send;
pub mod slack;
pub mod test_send;
pub mod webhook;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether a notification announces a problem or its end; templates see it as `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    #[default]
    Firing,
    Cleared,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Cleared => "cleared",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "firing" => Some(AlertStatus::Firing),
            "cleared" => Some(AlertStatus::Cleared),
            _ => None,
        }
    }
}

/// A rendered notification, stored with its delivery so a retry after a restart sends
/// exactly what the policy decided when it fired. Secrets stay `${NAME}` references
/// here and are read from the environment only when sending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "lowercase")]
pub enum Message {
    Email(email::EmailMessage),
    Webhook(webhook::WebhookMessage),
    Slack(slack::SlackMessage),
    Pagerduty(pagerduty::PagerDutyMessage),
    Log(log::LogMessage),
}

impl Message {
    /// The channel's name as policies write it.
    pub fn channel(&self) -> &'static str {
        match self {
            Message::Email(_) => "email",
            Message::Webhook(_) => "webhook",
            Message::Slack(_) => "slack",
            Message::Pagerduty(_) => "pagerduty",
            Message::Log(_) => "log",
        }
    }

    /// Who or what receives it, for the ledger; never contains a secret's value.
    pub fn recipient(&self) -> String {
        match self {
            Message::Email(m) => m.recipients_summary(),
            Message::Webhook(m) => m.url.raw().to_string(),
            Message::Slack(m) => m.url.raw().to_string(),
            Message::Pagerduty(m) => m.url.clone(),
            Message::Log(_) => "log".to_string(),
        }
    }

    /// A one-line description, for the ledger.
    pub fn summary(&self) -> String {
        match self {
            Message::Email(m) => m.subject.clone(),
            Message::Webhook(m) => format!("{} {}", m.method, m.url.raw()),
            Message::Slack(m) => m.summary(),
            Message::Pagerduty(m) => m.summary(),
            Message::Log(m) => m.text.clone(),
        }
    }
}

/// Why an attempt failed and whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The remote server's reply, or the local error.
    pub text: String,
    pub retry: Retry,
}

/// Whether a failed delivery is worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// A temporary failure; the server may have said how long to wait.
    Later(Option<Duration>),
    /// Sending the same message again cannot succeed.
    Never,
}

impl Failure {
    pub fn temporary(text: impl Into<String>) -> Self {
        Failure {
            text: text.into(),
            retry: Retry::Later(None),
        }
    }

    pub fn permanent(text: impl Into<String>) -> Self {
        Failure {
            text: text.into(),
            retry: Retry::Never,
        }
    }
}

/// A text that may name environment variables as `${NAME}`, kept unexpanded so a
/// secret never reaches the store or the ledger; [`EnvText::resolve`] reads it when
/// a message is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnvText(String);

impl EnvText {
    pub fn new(raw: impl Into<String>) -> Self {
        EnvText(raw.into())
    }

    /// The text as written, with `${NAME}` references intact.
    pub fn raw(&self) -> &str {
        &self.0
    }

    /// The text with every `${NAME}` replaced from the environment.
    pub fn resolve(&self) -> Result<String, String> {
        crate::config::expand_env(&self.0, &|name| std::env::var(name).ok())
    }
}
