//! Fields: the named values a condition, template or group key can use, and how they
//! are found in an event.
//!
//! Names are resolved when a policy loads: `message`, `title`, `source`, `category`,
//! `header.NAME`, `query.NAME`, `tag.NAME`, a JSONPath such as `$.repository.name`, or a name one
//! of the policy's extractors produces. Evaluation then never looks a name up by
//! string among the built-ins.

use std::cell::OnceCell;

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::event::Event;
use crate::extract::{Extracted, Extractor};
use crate::yaml::{backticked, suggest};

/// Built-in fields every event has.
pub const BUILTIN: &[&str] = &["message", "title", "source", "category"];

/// A resolved reference to a field.
#[derive(Debug)]
pub enum FieldRef {
    Message,
    Title,
    Source,
    Category,
    /// A request header, by lowercase name.
    Header(String),
    /// A query parameter of the request URL.
    Query(String),
    /// A tag given by the sender (structured ingest).
    Tag(String),
    /// A JSONPath over the JSON body.
    Path(Box<JsonPath>),
    /// An extracted field; `from` lists the extractors (set-wide ids, in the policy's
    /// order) that can produce it. The first one that does wins.
    Extracted {
        name: String,
        from: Vec<usize>,
    },
}

/// A field's value as found in one event, borrowed from it.
#[derive(Clone, Debug)]
pub enum Val<'a> {
    Str(&'a str),
    Json(&'a Value),
    /// Several JSONPath matches.
    Many(Vec<&'a Value>),
}

/// The extractors a policy runs, for resolving names at load.
pub struct Names<'a> {
    /// (set-wide id, extractor) in the policy's order.
    pub extractors: Vec<(usize, &'a Extractor)>,
}

/// One event with its extraction results, computed on first use and shared by every
/// policy evaluated against the event.
pub struct Scope<'e> {
    pub event: &'e Event,
    extractors: &'e [Extractor],
    cache: Vec<OnceCell<Extracted>>,
}

impl<'e> Scope<'e> {
    pub fn new(event: &'e Event, extractors: &'e [Extractor]) -> Self {
        let cache = (0..extractors.len()).map(|_| OnceCell::new()).collect();
        Scope {
            event,
            extractors,
            cache,
        }
    }

    /// What extractor `id` found, running it the first time it is asked for.
    pub fn extracted(&self, id: usize) -> &[(String, Value)] {
        match (self.cache.get(id), self.extractors.get(id)) {
            (Some(cell), Some(extractor)) => cell.get_or_init(|| extractor.run(self.event)),
            _ => &[],
        }
    }

    /// Every field the given extractors found, first one winning, for templates.
    pub fn fields(&self, ids: &[usize]) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        for id in ids {
            for (name, value) in self.extracted(*id) {
                map.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        map
    }
}

impl Scope<'_> {
    /// The fields for templates: as [`Scope::fields`], plus every name the extractors
    /// declare but did not find, as empty text, so a template that names an optional
    /// field still renders (`{% if fields.error %}` tells the two apart).
    pub fn template_fields(&self, ids: &[usize]) -> serde_json::Map<String, Value> {
        let mut map = self.fields(ids);
        for extractor in ids.iter().filter_map(|id| self.extractors.get(*id)) {
            for name in extractor.names().unwrap_or_default() {
                map.entry(name)
                    .or_insert_with(|| Value::String(String::new()));
            }
        }
        map
    }
}

impl FieldRef {
    /// The value of this field in the scope's event, or `None` when it has none.
    /// A JSON `null` counts as no value.
    pub fn resolve<'s>(&self, scope: &'s Scope<'_>) -> Option<Val<'s>> {
        let event = scope.event;
        let val = match self {
            FieldRef::Message => Val::Str(&event.message),
            FieldRef::Title if event.title.is_empty() => return None,
            FieldRef::Title => Val::Str(&event.title),
            FieldRef::Source => Val::Str(&event.source),
            FieldRef::Category => Val::Str(event.category.as_str()),
            FieldRef::Header(name) => Val::Str(event.header(name)?),
            FieldRef::Query(name) => Val::Str(event.query_param(name)?),
            FieldRef::Tag(name) => Val::Str(event.tag(name)?),
            FieldRef::Path(path) => {
                let nodes = path.query(event.json.as_ref()?).all();
                match nodes.as_slice() {
                    [] => return None,
                    [one] => Val::Json(one),
                    _ => Val::Many(nodes),
                }
            }
            FieldRef::Extracted { name, from } => from.iter().find_map(|id| {
                scope
                    .extracted(*id)
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| Val::Json(v))
            })?,
        };
        (!matches!(val, Val::Json(Value::Null))).then_some(val)
    }

    /// Resolves a field name written in a policy; the error says what to write instead.
    pub fn parse(name: &str, names: &Names<'_>) -> Result<FieldRef, String> {
        match name {
            "message" => return Ok(FieldRef::Message),
            "title" => return Ok(FieldRef::Title),
            "source" => return Ok(FieldRef::Source),
            "category" => return Ok(FieldRef::Category),
            _ => {}
        }
        if let Some(header) = name.strip_prefix("header.").filter(|h| !h.is_empty()) {
            return Ok(FieldRef::Header(header.to_ascii_lowercase()));
        }
        if let Some(param) = name.strip_prefix("query.").filter(|q| !q.is_empty()) {
            return Ok(FieldRef::Query(param.to_string()));
        }
        if let Some(tag) = name.strip_prefix("tag.").filter(|t| !t.is_empty()) {
            return Ok(FieldRef::Tag(tag.to_string()));
        }
        if name.starts_with('$') {
            return JsonPath::parse(name)
                .map(|p| FieldRef::Path(Box::new(p)))
                .map_err(|e| jsonpath_error(name, &e));
        }
        let known = known_names(names);
        let declared = known.iter().any(|k| k == name);
        let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
        if let Some(close) = suggest(name, &known_refs).filter(|_| !declared) {
            let dynamic = names.extractors.iter().any(|(_, e)| e.names().is_none());
            let hint = if dynamic {
                format!(" (if `{name}` is a key a `kv` or `form` extractor finds, list it under that extractor's `keys:`)")
            } else {
                String::new()
            };
            return Err(format!(
                "unknown field `{name}`; did you mean `{close}`?{hint}"
            ));
        }
        let from: Vec<usize> = names
            .extractors
            .iter()
            .filter(|(_, e)| e.names().is_none_or(|n| n.iter().any(|n| n == name)))
            .map(|(id, _)| *id)
            .collect();
        if from.is_empty() {
            return Err(unknown_field(name, names));
        }
        Ok(FieldRef::Extracted {
            name: name.to_string(),
            from,
        })
    }
}

/// The built-in names and every name the policy's extractors declare.
fn known_names(names: &Names<'_>) -> Vec<String> {
    let mut known: Vec<String> = BUILTIN.iter().map(|s| s.to_string()).collect();
    for (_, extractor) in &names.extractors {
        known.extend(extractor.names().unwrap_or_default());
    }
    known
}

/// Explains a JSONPath that does not parse, suggesting the usual `$.` start.
pub fn jsonpath_error(path: &str, error: &serde_json_path::ParseError) -> String {
    let hint = if path.starts_with('$') {
        String::new()
    } else {
        format!("; paths start with `$`, as in `$.{path}`")
    };
    format!("JSONPath `{path}` is not valid: {error}{hint}")
}

fn unknown_field(name: &str, names: &Names<'_>) -> String {
    let known = known_names(names);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    match suggest(name, &known) {
        Some(s) => format!("unknown field `{name}`; did you mean `{s}`?"),
        None => format!(
            "unknown field `{name}`: no extractor of this policy produces it; use {}, \
             `header.NAME`, `query.NAME`, `tag.NAME`, a JSONPath such as `$.a.b`, or add an extractor",
            backticked(&known)
        ),
    }
}

impl Val<'_> {
    /// Calls `f` on each scalar as text until it returns true. Arrays are searched
    /// element by element; objects are seen as their JSON text.
    pub fn any_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        match self {
            Val::Str(s) => f(s),
            Val::Json(v) => json_any_text(v, f),
            Val::Many(list) => list.iter().any(|v| json_any_text(v, f)),
        }
    }

    /// Calls `f` on each value that is a number, or text that reads as one.
    pub fn any_number(&self, f: &mut dyn FnMut(f64) -> bool) -> bool {
        self.any_text(&mut |text| number(text).is_some_and(&mut *f))
    }

    /// A short rendering for explanations: text quoted, long values cut.
    pub fn display(&self) -> String {
        let text = match self {
            Val::Str(s) => serde_json::to_string(s).unwrap_or_default(),
            Val::Json(v) => v.to_string(),
            Val::Many(list) => {
                Value::Array(list.iter().map(|v| (*v).clone()).collect()).to_string()
            }
        };
        truncate(&text, 120)
    }
}

fn json_any_text(value: &Value, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => f(s),
        Value::Bool(b) => f(if *b { "true" } else { "false" }),
        Value::Number(n) => f(&n.to_string()),
        Value::Array(items) => items.iter().any(|v| json_any_text(v, f)),
        Value::Object(_) => f(&value.to_string()),
    }
}

/// Reads text as a finite number: `42`, ` -1.5 `, `1e3`.
pub fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("nan") || text.contains("inf") {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_table() {
        for (text, want) in [
            ("42", Some(42.0)),
            (" -1.5 ", Some(-1.5)),
            ("1e3", Some(1000.0)),
            ("0x10", None),
            ("NaN", None),
            ("inf", None),
            ("", None),
            ("12abc", None),
        ] {
            assert_eq!(number(text), want, "{text:?}");
        }
    }

    #[test]
    fn values_are_searched_element_by_element() {
        let v = serde_json::json!(["a", 3, true, null, {"k": 1}]);
        let mut seen = Vec::new();
        Val::Json(&v).any_text(&mut |t| {
            seen.push(t.to_string());
            false
        });
        assert_eq!(seen, ["a", "3", "true", "{\"k\":1}"]);
    }

    #[test]
    fn long_values_are_cut_for_display() {
        let long = "x".repeat(200);
        let shown = Val::Str(&long).display();
        assert_eq!(shown.chars().count(), 121);
        assert!(shown.ends_with('…'));
    }
}
