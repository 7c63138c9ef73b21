//! The PagerDuty channel: Events API v2. A firing sends `trigger`, a clear sends
//! `resolve`, both with the same dedup key so PagerDuty joins them into one incident.
//! `on_clear` is on by default for this channel, since an alert left open in
//! PagerDuty keeps paging.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::action::{one_line, optional, ActionReader, Render};
use super::http::{self, HttpCall};
use super::{AlertStatus, EnvText, Failure};
use crate::event::Category;
use crate::template::TemplateId;
use crate::yaml::Node;

/// Where events go unless an action says otherwise.
pub const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty refuses summaries longer than this.
pub const MAX_SUMMARY: usize = 1024;

const DEFAULT_SUMMARY: &str =
    "[{{ category }}] {{ policy }}: {% if title %}{{ title }}{% else %}{{ message }}{% endif %}";

const PAGERDUTY_KEYS: &[&str] = &[
    "routing_key",
    "url",
    "summary",
    "severity",
    "source",
    "dedup_key",
    "timeout",
];
const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

/// A `pagerduty:` action.
#[derive(Debug)]
pub struct PagerDutyAction {
    /// The integration's routing key, usually `${PAGERDUTY_ROUTING_KEY}`.
    pub routing_key: EnvText,
    pub url: EnvText,
    pub summary: TemplateId,
    /// Fixed severity; without it the policy's category decides.
    pub severity: Option<String>,
    pub source: TemplateId,
    /// Without a template the key is `tripline/POLICY` and the group's values.
    pub dedup_key: Option<TemplateId>,
    pub timeout: Duration,
}

/// A rendered PagerDuty event, as stored in the outbox (without the routing key's value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PagerDutyMessage {
    pub url: String,
    pub routing_key: EnvText,
    /// `trigger` or `resolve`.
    pub event_action: String,
    pub dedup_key: String,
    /// The `payload` object of a trigger; absent for a resolve.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    pub timeout_ms: u64,
}

impl PagerDutyMessage {
    pub fn summary(&self) -> String {
        let summary = self.payload.as_ref().and_then(|p| p["summary"].as_str());
        format!(
            "{} {}",
            self.event_action,
            summary.unwrap_or(&self.dedup_key)
        )
    }
}

/// Reads a `pagerduty:` mapping.
pub fn read(cx: &mut ActionReader<'_>, node: &Node) -> Option<PagerDutyAction> {
    let mut map = cx.reader.map(node, "`pagerduty`")?;
    let routing_key = match map.take("routing_key") {
        Some(n) => cx.env_text(n, "`routing_key`").map(|(t, _)| t),
        None => {
            cx.reader.error(
                map.pos,
                "`pagerduty` needs the `routing_key` of an Events API v2 integration",
            );
            None
        }
    };
    let url = match map.take("url") {
        Some(n) => cx.url(n, "`url`"),
        None => Some(EnvText::new(EVENTS_URL)),
    };
    let summary = cx.template_or(map.take("summary"), map.pos, "`summary`", DEFAULT_SUMMARY);
    let severity = map.take("severity").map(|n| severity(cx, n));
    let source = cx.template_or(map.take("source"), map.pos, "`source`", "{{ source }}");
    let dedup_key = map.take("dedup_key").map(|n| cx.template(n, "`dedup_key`"));
    let timeout = cx.timeout(map.take("timeout"));
    cx.reader.finish(map, PAGERDUTY_KEYS, "`pagerduty`");
    Some(PagerDutyAction {
        routing_key: routing_key?,
        url: url?,
        summary: summary?,
        severity: optional(severity)?,
        source: source?,
        dedup_key: optional(dedup_key)?,
        timeout: timeout?,
    })
}

fn severity(cx: &mut ActionReader<'_>, node: &Node) -> Option<String> {
    let text = cx.reader.str(node, "`severity`")?;
    if SEVERITIES.contains(&text) {
        return Some(text.to_string());
    }
    let message = format!(
        "`severity` must be one of {}, found `{text}`",
        crate::yaml::backticked(SEVERITIES)
    );
    cx.reader.error(node.pos, message);
    None
}

impl PagerDutyAction {
    /// Renders a trigger for a firing, a resolve for a clear.
    pub fn render(&self, r: &Render<'_>) -> Result<PagerDutyMessage, String> {
        let dedup_key = match &self.dedup_key {
            Some(id) => one_line(&r.text(id).map_err(|e| format!("`dedup_key`: {e}"))?),
            None => default_dedup_key(r.context.policy, r.group),
        };
        let payload = match r.context.status {
            AlertStatus::Cleared => None,
            AlertStatus::Firing => Some(self.payload(r)?),
        };
        let url = self
            .url
            .resolve()
            .unwrap_or_else(|_| self.url.raw().to_string());
        Ok(PagerDutyMessage {
            url,
            routing_key: self.routing_key.clone(),
            event_action: if payload.is_some() {
                "trigger"
            } else {
                "resolve"
            }
            .to_string(),
            dedup_key,
            payload,
            timeout_ms: self.timeout.as_millis() as u64,
        })
    }

    fn payload(&self, r: &Render<'_>) -> Result<serde_json::Value, String> {
        let summary = one_line(
            &r.text(&self.summary)
                .map_err(|e| format!("`summary`: {e}"))?,
        );
        let source = one_line(&r.text(&self.source).map_err(|e| format!("`source`: {e}"))?);
        let severity = self
            .severity
            .clone()
            .unwrap_or_else(|| category_severity(r.context.category).to_string());
        Ok(serde_json::json!({
            "summary": truncate(&summary, MAX_SUMMARY),
            "source": source,
            "severity": severity,
            "custom_details": {
                "policy": r.context.policy,
                "event_id": r.context.event_id,
                "title": r.context.title,
                "message": r.context.message,
            },
        }))
    }
}

fn default_dedup_key(policy: &str, group: &[String]) -> String {
    std::iter::once(format!("tripline/{policy}"))
        .chain(group.iter().cloned())
        .collect::<Vec<_>>()
        .join("/")
}

fn category_severity(category: Category) -> &'static str {
    match category {
        Category::Critical => "critical",
        Category::Warning => "warning",
        Category::Info => "info",
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text.to_string(),
    }
}

/// Sends the event; PagerDuty answers 202 on success, 400 for an invalid event
/// (permanent) and 429 when rate limited (retried).
pub async fn send(client: &reqwest::Client, m: &PagerDutyMessage) -> Result<String, Failure> {
    let routing_key = m.routing_key.resolve().map_err(Failure::permanent)?;
    let mut body = serde_json::json!({
        "routing_key": routing_key,
        "event_action": m.event_action,
        "dedup_key": m.dedup_key,
    });
    if let Some(payload) = &m.payload {
        body["payload"] = payload.clone();
    }
    let call = HttpCall {
        method: reqwest::Method::POST,
        url: m.url.clone(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        timeout: Duration::from_millis(m.timeout_ms),
        auth: None,
    };
    http::send(client, call).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keys_join_policy_and_group() {
        assert_eq!(default_dedup_key("disk", &[]), "tripline/disk");
        assert_eq!(
            default_dedup_key("disk", &["web-1".into(), "/var".into()]),
            "tripline/disk/web-1//var"
        );
    }

    #[test]
    fn summaries_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("ééé", 2), "éé");
        assert_eq!(truncate("ab", 5), "ab");
    }
}
