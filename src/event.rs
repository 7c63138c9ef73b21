//! An event: one message received from a source, as the engine and the store see it.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How serious an event or a policy's alert is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    #[default]
    Info,
    Warning,
    Critical,
}

impl Category {
    pub const NAMES: &'static [&'static str] = &["info", "warning", "critical"];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Info => "info",
            Category::Warning => "warning",
            Category::Critical => "critical",
        }
    }

    /// Reads a category name, ignoring case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "info" => Some(Category::Info),
            "warning" => Some(Category::Warning),
            "critical" => Some(Category::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One received message.
#[derive(Clone, Debug)]
pub struct Event {
    /// Time-ordered unique id (UUID v7), given at ingest.
    pub id: String,
    pub received_at: OffsetDateTime,
    /// The name of the source that owns the API key used.
    pub source: String,
    pub title: String,
    /// The body as text.
    pub message: String,
    pub content_type: Option<String>,
    /// Request headers kept with the event, names in lowercase; credentials are dropped.
    pub headers: Vec<(String, String)>,
    /// Query parameters of the request URL, in order.
    pub query: Vec<(String, String)>,
    pub category: Category,
    /// Name and value pairs given by the sender (structured ingest); kept in order.
    pub tags: Vec<(String, String)>,
    /// The body parsed, when it is JSON.
    pub json: Option<serde_json::Value>,
}

impl Event {
    /// An event built outside ingest (a dry run or a fixture), received now. Header
    /// names are lowercased, and the body is parsed as ingest would.
    pub fn sample(
        id: String,
        source: String,
        title: String,
        message: String,
        headers: &[(String, String)],
    ) -> Self {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.clone());
        Event {
            id,
            received_at: OffsetDateTime::now_utc(),
            source,
            title,
            json: parse_json_body(&message, content_type.as_deref()),
            message,
            content_type,
            headers,
            query: Vec::new(),
            category: Category::Info,
            tags: Vec::new(),
        }
    }

    /// The first kept header named `name` (give it in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first tag named `name`.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The received time as RFC 3339.
    pub fn received_rfc3339(&self) -> String {
        format_time(self.received_at)
    }
}

/// The body parsed as JSON when it is labelled JSON or looks like it; text that does
/// not parse stays text and simply has no JSON fields.
pub fn parse_json_body(message: &str, content_type: Option<&str>) -> Option<serde_json::Value> {
    let looks_json = content_type.is_some_and(|c| c.contains("json"))
        || message.trim_start().starts_with(['{', '[']);
    if looks_json {
        serde_json::from_str(message).ok()
    } else {
        None
    }
}

/// Formats a time as RFC 3339 in UTC, with milliseconds.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
