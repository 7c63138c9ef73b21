//! The Slack channel: a message posted to an incoming-webhook URL, with text and
//! optional Block Kit blocks rendered from templates.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::action::{optional, ActionReader, Render};
use super::http::{self, HttpCall};
use super::{EnvText, Failure};
use crate::template::TemplateId;
use crate::yaml::Node;

const SLACK_KEYS: &[&str] = &["url", "text", "blocks", "timeout"];

/// The text posted when an action gives none.
pub const DEFAULT_TEXT: &str = "{% if status == 'cleared' %}:white_check_mark: cleared{% else %}:rotating_light: [{{ category }}]{% endif %} \
*{{ policy }}* from {{ source }}: {% if title %}{{ title }}{% else %}{{ message }}{% endif %}";

/// A `slack:` action.
#[derive(Debug)]
pub struct SlackAction {
    /// The incoming-webhook URL; it is a secret, so usually `${SLACK_WEBHOOK_URL}`.
    pub url: EnvText,
    pub text: TemplateId,
    /// A template that renders a JSON list of blocks.
    pub blocks: Option<TemplateId>,
    pub timeout: Duration,
}

/// A rendered Slack message, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlackMessage {
    pub url: EnvText,
    /// The JSON posted: `{"text": ..., "blocks": [...]}`.
    pub body: serde_json::Value,
    pub timeout_ms: u64,
}

impl SlackMessage {
    pub fn summary(&self) -> String {
        self.body["text"].as_str().unwrap_or_default().to_string()
    }
}

/// Reads a `slack:` mapping.
pub fn read(cx: &mut ActionReader<'_>, node: &Node) -> Option<SlackAction> {
    let mut map = cx.reader.map(node, "`slack`")?;
    let url = match map.take("url") {
        Some(n) => cx.url(n, "`url`"),
        None => {
            cx.reader
                .error(map.pos, "`slack` needs the `url` of an incoming webhook");
            None
        }
    };
    let text = cx.template_or(map.take("text"), map.pos, "`text`", DEFAULT_TEXT);
    let blocks = map.take("blocks").map(|n| cx.template(n, "`blocks`"));
    let timeout = cx.timeout(map.take("timeout"));
    cx.reader.finish(map, SLACK_KEYS, "`slack`");
    Some(SlackAction {
        url: url?,
        text: text?,
        blocks: optional(blocks)?,
        timeout: timeout?,
    })
}

impl SlackAction {
    /// Renders the text and blocks; blocks must render a JSON list.
    pub fn render(&self, r: &Render<'_>) -> Result<SlackMessage, String> {
        let text = r.text(&self.text).map_err(|e| format!("`text`: {e}"))?;
        let mut body = serde_json::json!({ "text": text });
        if let Some(id) = &self.blocks {
            let rendered = r.text(id).map_err(|e| format!("`blocks`: {e}"))?;
            match serde_json::from_str::<serde_json::Value>(&rendered) {
                Ok(list @ serde_json::Value::Array(_)) => body["blocks"] = list,
                Ok(_) => return Err("`blocks` must render a JSON list".to_string()),
                Err(e) => return Err(format!("`blocks` did not render valid JSON: {e}")),
            }
        }
        Ok(SlackMessage {
            url: self.url.clone(),
            body,
            timeout_ms: self.timeout.as_millis() as u64,
        })
    }
}

/// Posts the message; Slack answers `ok` on success and a reason such as
/// `invalid_payload` or `channel_is_archived` (4xx, permanent) otherwise.
pub async fn send(client: &reqwest::Client, m: &SlackMessage) -> Result<String, Failure> {
    let url = m.url.resolve().map_err(Failure::permanent)?;
    let call = HttpCall {
        method: reqwest::Method::POST,
        url,
        headers: vec![("content-type".into(), "application/json".into())],
        body: m.body.to_string().into_bytes(),
        timeout: Duration::from_millis(m.timeout_ms),
        auth: None,
    };
    http::send(client, call).await
}
