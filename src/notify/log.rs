//! The log channel: one structured log line per notification, for shadowing a policy
//! (watching what it would send) before it notifies anyone.

use serde::{Deserialize, Serialize};

use super::action::{ActionReader, Render};
use crate::yaml::Node;

const LOG_KEYS: &[&str] = &["message", "level"];
const LEVELS: &[&str] = &["info", "warn", "error"];

/// The line logged when an action gives no `message`.
pub const DEFAULT_MESSAGE: &str = "[{{ category }}] {{ policy }} {{ status }}: {% if title %}{{ title }}{% else %}{{ message }}{% endif %}";

/// A `log:` action.
#[derive(Debug)]
pub struct LogAction {
    pub message: crate::template::TemplateId,
    pub level: String,
}

/// A rendered log line, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogMessage {
    pub level: String,
    pub text: String,
}

/// Reads a `log:` mapping (it may be empty: `log: {}`).
pub fn read(cx: &mut ActionReader<'_>, node: &Node) -> Option<LogAction> {
    if matches!(node.kind, crate::yaml::Kind::Null) {
        let message = cx
            .templates
            .add(cx.reader, node.pos, "`message`", DEFAULT_MESSAGE)?;
        return Some(LogAction {
            message,
            level: "info".into(),
        });
    }
    let mut map = cx.reader.map(node, "`log`")?;
    let message = cx.template_or(map.take("message"), map.pos, "`message`", DEFAULT_MESSAGE);
    let level = match map.take("level") {
        Some(n) => level(cx, n),
        None => Some("info".to_string()),
    };
    cx.reader.finish(map, LOG_KEYS, "`log`");
    Some(LogAction {
        message: message?,
        level: level?,
    })
}

fn level(cx: &mut ActionReader<'_>, node: &Node) -> Option<String> {
    let text = cx.reader.str(node, "`level`")?;
    if LEVELS.contains(&text) {
        return Some(text.to_string());
    }
    let message = format!(
        "`level` must be one of {}, found `{text}`",
        crate::yaml::backticked(LEVELS)
    );
    cx.reader.error(node.pos, message);
    None
}

impl LogAction {
    pub fn render(&self, r: &Render<'_>) -> Result<LogMessage, String> {
        Ok(LogMessage {
            level: self.level.clone(),
            text: r
                .text(&self.message)
                .map_err(|e| format!("`message`: {e}"))?,
        })
    }
}

/// Writes the line under the `tripline::notification` target.
pub fn send(delivery_id: &str, policy: &str, event_id: &str, m: &LogMessage) -> String {
    match m.level.as_str() {
        "error" => {
            tracing::error!(target: "tripline::notification", delivery_id, policy, event_id, text = %m.text, "notification")
        }
        "warn" => {
            tracing::warn!(target: "tripline::notification", delivery_id, policy, event_id, text = %m.text, "notification")
        }
        _ => {
            tracing::info!(target: "tripline::notification", delivery_id, policy, event_id, text = %m.text, "notification")
        }
    }
    "logged".to_string()
}
