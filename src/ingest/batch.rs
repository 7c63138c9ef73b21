//! Structured events, as CloudWisdom's events API takes them: a JSON array of
//! `{source, title, type, timestamp, tags: [{name, value}], data: {level, message}}`.
//!
//! Every element is checked and every mistake reported, by index and field, so a sender
//! fixes a batch in one round trip. The event's `source` stays the name of the API key's
//! source, so a sender cannot pose as another; the element's own `source` and `type` are
//! kept as tags of those names.

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::event::{new_id, Category, Event};

/// The most events one batch may hold.
pub const MAX_BATCH: usize = 1000;

/// The most tags one event may carry.
pub const MAX_TAGS: usize = 64;

/// The longest tag name and tag value.
pub const MAX_TAG_NAME: usize = 256;
pub const MAX_TAG_VALUE: usize = 4096;

const ELEMENT_KEYS: &[&str] = &["source", "title", "type", "timestamp", "tags", "data"];
const DATA_KEYS: &[&str] = &["level", "message"];

/// One mistake in a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchError {
    /// The element's position in the array, from 0; absent for the array itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub error: String,
}

/// A level name as senders write it, mapped to a category. Levels other than
/// INFO, WARNING and CRITICAL are mapped by meaning: good news is info, doubt is a
/// warning, failure is critical.
pub fn level_category(level: &str) -> Option<Category> {
    let category = match level.trim().to_ascii_uppercase().as_str() {
        "INFO" | "OK" | "CLEAR" | "CLEARED" | "RESOLVED" | "NORMAL" | "DEBUG" | "NOTICE"
        | "SUCCESS" => Category::Info,
        "WARNING" | "WARN" | "UNKNOWN" | "MINOR" => Category::Warning,
        "CRITICAL" | "CRIT" | "ERROR" | "ERR" | "FATAL" | "ALERT" | "EMERGENCY" | "SEVERE"
        | "MAJOR" | "FAILURE" => Category::Critical,
        _ => return None,
    };
    Some(category)
}

/// Reads a whole batch for `source`; any mistake refuses all of it.
pub fn parse(
    source: &str,
    body: &Value,
    now: OffsetDateTime,
) -> Result<Vec<Event>, Vec<BatchError>> {
    let Some(items) = body.as_array() else {
        return Err(vec![array_error("the body must be a JSON array of events")]);
    };
    if items.is_empty() {
        return Err(vec![array_error(
            "the array is empty; send at least one event",
        )]);
    }
    if items.len() > MAX_BATCH {
        let message = format!(
            "the array holds {} events; send at most {MAX_BATCH} per request",
            items.len()
        );
        return Err(vec![array_error(&message)]);
    }
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let mut element = Element {
            index,
            errors: &mut errors,
        };
        if let Some(event) = element.event(source, item, now) {
            events.push(event);
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

fn array_error(message: &str) -> BatchError {
    BatchError {
        index: None,
        field: String::new(),
        error: message.to_string(),
    }
}

/// Reads one element, collecting its mistakes.
struct Element<'e> {
    index: usize,
    errors: &'e mut Vec<BatchError>,
}

impl Element<'_> {
    fn error(&mut self, field: &str, error: impl Into<String>) {
        self.errors.push(BatchError {
            index: Some(self.index),
            field: field.to_string(),
            error: error.into(),
        });
    }

    fn event(&mut self, source: &str, item: &Value, now: OffsetDateTime) -> Option<Event> {
        let Some(map) = item.as_object() else {
            self.error(
                "",
                format!("each event must be a JSON object, found {}", kind(item)),
            );
            return None;
        };
        let before = self.errors.len();
        self.unknown_keys(map, ELEMENT_KEYS, "");
        let title = self.string(map, "title", true).unwrap_or_default();
        let origin = self.string(map, "source", false);
        let kind_text = self.string(map, "type", false);
        let received_at = self.timestamp(map.get("timestamp")).unwrap_or(now);
        let mut tags = self.tags(map.get("tags"));
        let (level, message) = self.data(map.get("data"));
        let category = self.category(level.as_deref(), kind_text.as_deref());
        tags.extend(origin.map(|v| ("source".to_string(), v)));
        tags.extend(kind_text.map(|v| ("type".to_string(), v)));
        if self.errors.len() > before {
            return None;
        }
        let json = serde_json::from_str(&message).ok();
        Some(Event {
            id: new_id(),
            received_at,
            source: source.to_string(),
            title,
            message,
            content_type: Some("application/json".into()),
            headers: Vec::new(),
            query: Vec::new(),
            category,
            tags,
            json,
        })
    }

    fn unknown_keys(&mut self, map: &Map<String, Value>, known: &[&str], prefix: &str) {
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            let help = match crate::yaml::suggest(key, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("expected one of {}", crate::yaml::backticked(known)),
            };
            self.error(
                &format!("{prefix}{key}"),
                format!("unknown key `{key}`; {help}"),
            );
        }
    }

    fn string(&mut self, map: &Map<String, Value>, key: &str, required: bool) -> Option<String> {
        match map.get(key) {
            Some(Value::String(s)) if !(required && s.trim().is_empty()) => Some(s.clone()),
            Some(Value::String(_)) => {
                self.error(key, format!("`{key}` is empty"));
                None
            }
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                self.error(key, format!("`{key}` is required"));
                None
            }
            Some(other) => {
                self.error(
                    key,
                    format!("`{key}` must be a string, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Epoch milliseconds, or RFC 3339 text.
    fn timestamp(&mut self, value: Option<&Value>) -> Option<OffsetDateTime> {
        let parsed = match value? {
            Value::Null => return None,
            Value::Number(n) => n.as_i64().and_then(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            }),
            Value::String(s) => {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            }
            _ => None,
        };
        if parsed.is_none() {
            let found = value.map(Value::to_string).unwrap_or_default();
            let found: String = found.chars().take(64).collect();
            self.error(
                "timestamp",
                format!("`timestamp` must be epoch milliseconds or RFC 3339 text, found `{found}`"),
            );
        }
        parsed
    }

    fn tags(&mut self, value: Option<&Value>) -> Vec<(String, String)> {
        let items = match value {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    "tags",
                    format!(
                        "`tags` must be an array of {{name, value}}, found {}",
                        kind(other)
                    ),
                );
                return Vec::new();
            }
        };
        if items.len() > MAX_TAGS {
            self.error(
                "tags",
                format!("an event may carry at most {MAX_TAGS} tags"),
            );
            return Vec::new();
        }
        items
            .iter()
            .enumerate()
            .filter_map(|(i, tag)| self.tag(i, tag))
            .collect()
    }

    fn tag(&mut self, i: usize, tag: &Value) -> Option<(String, String)> {
        let field = format!("tags[{i}]");
        let Some(map) = tag.as_object() else {
            self.error(
                &field,
                format!(
                    "a tag must be an object {{name, value}}, found {}",
                    kind(tag)
                ),
            );
            return None;
        };
        self.unknown_keys(map, &["name", "value"], &format!("{field}."));
        let name = match map.get("name") {
            Some(Value::String(n)) if !n.is_empty() && n.len() <= MAX_TAG_NAME => Some(n.clone()),
            _ => {
                let message = format!("`name` must be text of 1 to {MAX_TAG_NAME} bytes");
                self.error(&format!("{field}.name"), message);
                None
            }
        };
        let value = match map.get("value") {
            Some(Value::String(v)) if v.len() <= MAX_TAG_VALUE => Some(v.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
            _ => {
                let message = format!(
                    "`value` must be text of at most {MAX_TAG_VALUE} bytes, a number or a boolean"
                );
                self.error(&format!("{field}.value"), message);
                None
            }
        };
        Some((name?, value?))
    }

    /// `data.level` and `data.message`.
    fn data(&mut self, value: Option<&Value>) -> (Option<String>, String) {
        let map = match value {
            None | Some(Value::Null) => return (None, String::new()),
            Some(Value::Object(map)) => map,
            Some(other) => {
                self.error(
                    "data",
                    format!(
                        "`data` must be an object {{level, message}}, found {}",
                        kind(other)
                    ),
                );
                return (None, String::new());
            }
        };
        self.unknown_keys(map, DATA_KEYS, "data.");
        let mut text = |key: &str| match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.error(
                    &format!("data.{key}"),
                    format!("`{key}` must be a string, found {}", kind(other)),
                );
                None
            }
        };
        (text("level"), text("message").unwrap_or_default())
    }

    /// `level`, else `type` when it names a level, else info.
    fn category(&mut self, level: Option<&str>, kind_text: Option<&str>) -> Category {
        if let Some(level) = level {
            return level_category(level).unwrap_or_else(|| {
                let message = format!("unknown level `{level}`; use INFO, WARNING or CRITICAL (see the docs for other names)");
                self.error("data.level", message);
                Category::Info
            });
        }
        kind_text.and_then(level_category).unwrap_or_default()
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn a_full_element_becomes_an_event() {
        let body = json!([{
            "source": "web-1", "title": "Disk full", "type": "Alert",
            "timestamp": "2024-05-01T10:00:00Z",
            "tags": [{"name": "env", "value": "prod"}, {"name": "rack", "value": 7}],
            "data": {"level": "critical", "message": "/var at 99%"}
        }]);
        let events = parse("ci", &body, now()).unwrap();
        let e = &events[0];
        assert_eq!(
            (e.source.as_str(), e.title.as_str(), e.message.as_str()),
            ("ci", "Disk full", "/var at 99%")
        );
        assert_eq!(e.category, Category::Critical);
        assert_eq!(e.received_at.unix_timestamp(), 1_714_557_600);
        let tags: Vec<(&str, &str)> = e
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("env", "prod"),
                ("rack", "7"),
                ("source", "web-1"),
                ("type", "Alert")
            ]
        );
    }

    #[test]
    fn level_table() {
        let cases = [
            ("INFO", Some(Category::Info)),
            ("warning", Some(Category::Warning)),
            ("Critical", Some(Category::Critical)),
            ("OK", Some(Category::Info)),
            ("UNKNOWN", Some(Category::Warning)),
            ("ERROR", Some(Category::Critical)),
            ("fatal", Some(Category::Critical)),
            ("purple", None),
        ];
        for (level, want) in cases {
            assert_eq!(level_category(level), want, "{level}");
        }
    }

    #[test]
    fn type_stands_in_for_a_missing_level_and_epoch_ms_is_read() {
        let body = json!([{"title": "t", "type": "WARNING", "timestamp": 1_700_000_000_123_i64}]);
        let e = &parse("ci", &body, now()).unwrap()[0];
        assert_eq!(e.category, Category::Warning);
        assert_eq!(
            crate::event::format_time(e.received_at),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn every_mistake_is_named_by_index_and_field() {
        let body = json!([
            {"title": "fine"},
            {"title": "", "timestamp": "yesterday", "colour": 1},
            {"title": "t", "tags": [{"name": "", "value": []}], "data": {"level": "purple", "message": 3}},
            "text"
        ]);
        let errors = parse("ci", &body, now()).unwrap_err();
        let got: Vec<(Option<usize>, &str)> =
            errors.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(1), "colour"),
                (Some(1), "title"),
                (Some(1), "timestamp"),
                (Some(2), "tags[0].name"),
                (Some(2), "tags[0].value"),
                (Some(2), "data.message"),
                (Some(2), "data.level"),
                (Some(3), ""),
            ]
        );
        assert_eq!(errors[0].error, "unknown key `colour`; expected one of `source`, `title`, `type`, `timestamp`, `tags`, `data`");
    }

    #[test]
    fn the_array_itself_is_checked() {
        for (body, want) in [
            (
                json!({"title": "t"}),
                "the body must be a JSON array of events",
            ),
            (json!([]), "the array is empty; send at least one event"),
        ] {
            assert_eq!(parse("ci", &body, now()).unwrap_err()[0].error, want);
        }
    }
}
