//! Conditions: what a policy asks of an event, read from YAML and compiled once.
//!
//! A condition tests one field with one operator, or combines others with `all`, `any`
//! and `not`. Case-insensitive text operators are compiled to regexes at load, so
//! evaluating an event never lowercases or allocates.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};

use crate::event::Event;
use crate::yaml::{backticked, suggest, MapReader, Node, Pos, Reader};

/// Largest compiled size of one policy regex; bounds memory for hostile patterns.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Largest lazy-DFA cache of one policy regex.
pub const REGEX_DFA_LIMIT: usize = 2 << 20;

/// The operators a condition may use.
pub const OPERATORS: &[&str] = &[
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "equals",
    "not_equals",
    "regex",
    "not_regex",
    "in",
    "not_in",
    "exists",
];

const COMBINATORS: &[&str] = &["all", "any", "not"];

/// Built-in fields every event has.
pub const BUILTIN_FIELDS: &[&str] = &["message", "title", "source", "category"];

/// A compiled condition.
#[derive(Clone, Debug)]
pub enum Condition {
    Test(Test),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// One field tested with one operator.
#[derive(Clone, Debug)]
pub struct Test {
    pub field: Field,
    pub op: Op,
    /// For `not_*` operators: the result is inverted, and a missing field passes.
    pub negated: bool,
    pub pos: Pos,
}

/// Where a condition looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Message,
    Title,
    Source,
    Category,
    /// A request header, by lowercase name.
    Header(String),
}

/// A compiled operator.
#[derive(Clone, Debug)]
pub enum Op {
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Equals(String),
    In(Vec<String>),
    /// Any regex, including the case-insensitive forms of the text operators.
    Regex(Regex),
    Exists(bool),
}

impl Condition {
    /// Whether `event` satisfies the condition.
    pub fn matches(&self, event: &Event) -> bool {
        match self {
            Condition::Test(test) => test.matches(event),
            Condition::All(list) => list.iter().all(|c| c.matches(event)),
            Condition::Any(list) => list.iter().any(|c| c.matches(event)),
            Condition::Not(inner) => !inner.matches(event),
        }
    }
}

impl Test {
    fn matches(&self, event: &Event) -> bool {
        let value = self.field.value(event);
        if let Op::Exists(want) = self.op {
            return value.is_some() == want;
        }
        match value {
            Some(value) => self.op.matches(&value) != self.negated,
            None => self.negated,
        }
    }
}

impl Op {
    fn matches(&self, value: &str) -> bool {
        match self {
            Op::Contains(needle) => value.contains(needle.as_str()),
            Op::StartsWith(prefix) => value.starts_with(prefix.as_str()),
            Op::EndsWith(suffix) => value.ends_with(suffix.as_str()),
            Op::Equals(want) => value == want,
            Op::In(list) => list.iter().any(|w| w == value),
            Op::Regex(re) => re.is_match(value),
            Op::Exists(_) => true,
        }
    }
}

impl Field {
    /// The field's value in `event`, or `None` when the event does not have it.
    pub fn value<'e>(&self, event: &'e Event) -> Option<Cow<'e, str>> {
        match self {
            Field::Message => Some(Cow::Borrowed(&event.message)),
            Field::Title if event.title.is_empty() => None,
            Field::Title => Some(Cow::Borrowed(&event.title)),
            Field::Source => Some(Cow::Borrowed(&event.source)),
            Field::Category => Some(Cow::Borrowed(event.category.as_str())),
            Field::Header(name) => event.header(name).map(Cow::Borrowed),
        }
    }

    fn parse(name: &str) -> Option<Field> {
        match name {
            "message" => Some(Field::Message),
            "title" => Some(Field::Title),
            "source" => Some(Field::Source),
            "category" => Some(Field::Category),
            _ => {
                let header = name.strip_prefix("header.")?;
                (!header.is_empty()).then(|| Field::Header(header.to_ascii_lowercase()))
            }
        }
    }
}

/// Reads a list of conditions. An empty list is refused: it would match everything.
pub fn read_list(reader: &mut Reader, node: &Node, what: &str) -> Option<Vec<Condition>> {
    let items = reader.seq(node, what)?;
    if items.is_empty() {
        let message = format!("{what} is empty, so it would match every event; add a condition");
        reader.error(node.pos, message);
        return None;
    }
    let conditions: Vec<Option<Condition>> = items.iter().map(|n| read(reader, n)).collect();
    conditions.into_iter().collect()
}

/// Reads one condition: a test, or `all`, `any` or `not`.
pub fn read(reader: &mut Reader, node: &Node) -> Option<Condition> {
    let map = reader.map(node, "a condition")?;
    if let Some(combinator) = COMBINATORS.iter().find(|c| map.has(c)) {
        return read_combinator(reader, map, combinator);
    }
    read_test(reader, map)
}

fn read_combinator(reader: &mut Reader, mut map: MapReader<'_>, name: &str) -> Option<Condition> {
    let (key, value) = map.take_entry(name).expect("the caller saw this key");
    let extra = map.entries().iter().find(|(k, _)| k.name != name);
    if let Some((other, _)) = extra {
        let message = format!(
            "`{name}` must stand alone in its condition, but `{}` is beside it; nest one of them",
            other.name
        );
        reader.error(other.pos, message);
        map.take_all();
    }
    let condition = if name == "not" {
        Condition::Not(Box::new(read(reader, value)?))
    } else {
        let list = read_list(reader, value, &format!("`{name}`"))?;
        if name == "all" {
            Condition::All(list)
        } else {
            Condition::Any(list)
        }
    };
    let _ = key;
    Some(condition)
}

fn read_test(reader: &mut Reader, mut map: MapReader<'_>) -> Option<Condition> {
    let pos = map.pos;
    let field = read_field(reader, &mut map);
    let case_sensitive = match map.take("case_sensitive") {
        Some(node) => reader.bool(node, "`case_sensitive`"),
        None => Some(true),
    };

    let ops: Vec<_> = OPERATORS
        .iter()
        .filter_map(|op| map.take_entry(op))
        .collect();
    let mut known: Vec<&str> = OPERATORS.to_vec();
    known.extend(["field", "case_sensitive"]);
    known.extend(COMBINATORS);
    let before = reader.diagnostics.len();
    reader.finish(map, &known, "a condition");
    let unknown_keys = reader.diagnostics.len() > before;

    let (op_key, op_value) = match ops.as_slice() {
        [one] => *one,
        // An unknown key was most likely the operator, misspelt; that message says enough.
        [] if unknown_keys => return None,
        [] => {
            let message = format!(
                "this condition has no operator; use one of {}",
                backticked(OPERATORS)
            );
            reader.error(pos, message);
            return None;
        }
        [first, second, ..] => {
            let message = format!(
                "a condition takes one operator, but has `{}` and `{}`; combine two tests with `all`",
                first.0.name, second.0.name
            );
            reader.error(second.0.pos, message);
            return None;
        }
    };
    let op = read_op(reader, &op_key.name, op_value, case_sensitive?)?;
    let negated = op_key.name.starts_with("not_");
    Some(Condition::Test(Test {
        field: field?,
        op,
        negated,
        pos,
    }))
}

fn read_field(reader: &mut Reader, map: &mut MapReader<'_>) -> Option<Field> {
    let Some(node) = map.take("field") else {
        reader.error(
            map.pos,
            "this condition needs `field`: which part of the event to test",
        );
        return None;
    };
    let name = reader.str(node, "`field`")?;
    let field = Field::parse(name);
    if field.is_none() {
        let hint = match suggest(name, BUILTIN_FIELDS) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("expected {} or `header.NAME`", backticked(BUILTIN_FIELDS)),
        };
        reader.error(node.pos, format!("unknown field `{name}`; {hint}"));
    }
    field
}

fn read_op(reader: &mut Reader, name: &str, node: &Node, case_sensitive: bool) -> Option<Op> {
    let what = format!("`{name}`");
    match name.trim_start_matches("not_") {
        "exists" => reader.bool(node, &what).map(Op::Exists),
        "in" => read_in(reader, node, &what, case_sensitive),
        "regex" => {
            let pattern = reader.str(node, &what)?;
            compile_regex(reader, node.pos, pattern, case_sensitive).map(Op::Regex)
        }
        op => {
            let text = reader.scalar_text(node, &what)?;
            if case_sensitive {
                return Some(match op {
                    "contains" => Op::Contains(text),
                    "starts_with" => Op::StartsWith(text),
                    "ends_with" => Op::EndsWith(text),
                    _ => Op::Equals(text),
                });
            }
            let escaped = regex::escape(&text);
            let pattern = match op {
                "contains" => escaped,
                "starts_with" => format!("^{escaped}"),
                "ends_with" => format!("{escaped}$"),
                _ => format!("^{escaped}$"),
            };
            compile_regex(reader, node.pos, &pattern, false).map(Op::Regex)
        }
    }
}

fn read_in(reader: &mut Reader, node: &Node, what: &str, case_sensitive: bool) -> Option<Op> {
    let items = reader.seq(node, what)?;
    let values: Option<Vec<String>> = items
        .iter()
        .map(|n| reader.scalar_text(n, &format!("each entry of {what}")))
        .collect();
    let values = values?;
    if values.is_empty() {
        reader.error(node.pos, format!("{what} needs at least one value"));
        return None;
    }
    if case_sensitive {
        return Some(Op::In(values));
    }
    let alternatives: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
    let pattern = format!("^(?:{})$", alternatives.join("|"));
    compile_regex(reader, node.pos, &pattern, false).map(Op::Regex)
}

/// Compiles a pattern from a policy with limits suited to untrusted input.
fn compile_regex(
    reader: &mut Reader,
    pos: Pos,
    pattern: &str,
    case_sensitive: bool,
) -> Option<Regex> {
    let built = RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_LIMIT)
        .build();
    match built {
        Ok(re) => Some(re),
        Err(regex::Error::CompiledTooBig(limit)) => {
            let message = format!(
                "regex `{pattern}` is too large once compiled (limit {limit} bytes); simplify it"
            );
            reader.error(pos, message);
            None
        }
        Err(e) => {
            let detail = e.to_string();
            let last = detail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let last = last.trim().trim_start_matches("error: ");
            reader.error(pos, format!("regex `{pattern}` does not compile: {last}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Category;

    fn event(message: &str) -> Event {
        Event {
            id: "e1".into(),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            source: "ci".into(),
            title: String::new(),
            message: message.into(),
            content_type: None,
            headers: vec![("x-github-event".into(), "workflow_run".into())],
            category: Category::Info,
            tags: Vec::new(),
            json: None,
        }
    }

    fn compile(yaml: &str) -> Result<Condition, Vec<String>> {
        let mut reader = Reader::new("p.yaml");
        let node = reader.parse(yaml).ok_or_else(Vec::new)?;
        match read(&mut reader, &node) {
            Some(c) if reader.diagnostics.is_empty() => Ok(c),
            _ => Err(reader
                .diagnostics
                .items
                .iter()
                .map(|d| d.to_string())
                .collect()),
        }
    }

    #[test]
    fn operator_table() {
        let cases = [
            ("{field: message, contains: deploy}", "deploy failed", true),
            ("{field: message, contains: Deploy}", "deploy failed", false),
            (
                "{field: message, contains: DEPLOY, case_sensitive: false}",
                "deploy failed",
                true,
            ),
            (
                "{field: message, contains: ÉTÉ, case_sensitive: false}",
                "l'été",
                true,
            ),
            (
                "{field: message, not_contains: deploy}",
                "deploy failed",
                false,
            ),
            (
                "{field: message, starts_with: deploy}",
                "deploy failed",
                true,
            ),
            ("{field: message, ends_with: failed}", "deploy failed", true),
            (
                "{field: message, ends_with: FAILED, case_sensitive: false}",
                "deploy failed",
                true,
            ),
            ("{field: message, equals: ok}", "ok", true),
            ("{field: message, equals: ok}", "ok!", false),
            ("{field: message, not_equals: ok}", "ok!", true),
            ("{field: message, in: [a, b]}", "b", true),
            ("{field: message, not_in: [a, b]}", "c", true),
            (
                "{field: message, in: [A], case_sensitive: false}",
                "a",
                true,
            ),
            (
                "{field: message, regex: 'host=\\w+'}",
                "x host=web1 y",
                true,
            ),
            ("{field: message, regex: '^host'}", "x host=web1", false),
            (
                "{field: message, not_regex: '\\btest\\b'}",
                "a test run",
                false,
            ),
            (
                "{field: message, regex: 'ERROR', case_sensitive: false}",
                "error",
                true,
            ),
            (
                "{field: header.X-GitHub-Event, equals: workflow_run}",
                "",
                true,
            ),
            ("{field: source, equals: ci}", "", true),
            ("{field: category, equals: info}", "", true),
        ];
        for (yaml, message, want) in cases {
            let condition = compile(yaml).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
            assert_eq!(
                condition.matches(&event(message)),
                want,
                "{yaml} on {message:?}"
            );
        }
    }

    #[test]
    fn missing_fields_fail_positive_and_pass_negative_operators() {
        let cases = [
            ("{field: title, contains: x}", false),
            ("{field: title, not_contains: x}", true),
            ("{field: header.x-none, equals: x}", false),
            ("{field: header.x-none, not_equals: x}", true),
            ("{field: header.x-none, not_regex: x}", true),
            ("{field: header.x-none, exists: false}", true),
            ("{field: header.x-github-event, exists: true}", true),
        ];
        for (yaml, want) in cases {
            assert_eq!(compile(yaml).unwrap().matches(&event("m")), want, "{yaml}");
        }
    }

    #[test]
    fn combinators_nest() {
        let yaml = "any:\n  - {field: message, contains: nope}\n  - all:\n      - {field: message, contains: deploy}\n      - not: {field: message, contains: test}\n";
        let c = compile(yaml).unwrap();
        assert!(c.matches(&event("deploy prod")));
        assert!(!c.matches(&event("deploy test")));
    }

    #[test]
    fn mistakes_are_located_and_explained() {
        let cases = [
            ("{field: message, contain: x}", "p.yaml:1:18: unknown key `contain` in a condition; did you mean `contains`?"),
            ("{field: mesage, contains: x}", "p.yaml:1:9: unknown field `mesage`; did you mean `message`?"),
            ("{field: message, contains: x, regex: y}", "p.yaml:1:31: a condition takes one operator, but has `contains` and `regex`; combine two tests with `all`"),
            ("{field: message}", "p.yaml:1:1: this condition has no operator; use one of `contains`, `not_contains`, `starts_with`, `ends_with`, `equals`, `not_equals`, `regex`, `not_regex`, `in`, `not_in`, `exists`"),
            ("{contains: x}", "p.yaml:1:1: this condition needs `field`: which part of the event to test"),
            ("{field: message, regex: 'a('}", "p.yaml:1:25: regex `a(` does not compile: unclosed group"),
            ("{all: []}", "p.yaml:1:7: `all` is empty, so it would match every event; add a condition"),
            ("{field: message, in: []}", "p.yaml:1:22: `in` needs at least one value"),
            ("{field: message, exists: maybe}", "p.yaml:1:26: `exists` must be `true` or `false`, found the text `maybe`"),
        ];
        for (yaml, want) in cases {
            assert_eq!(compile(yaml).unwrap_err(), [want], "{yaml}");
        }
    }

    #[test]
    fn huge_regexes_are_refused() {
        let errors = compile("{field: message, regex: '\\w{1000}\\w{1000}'}").unwrap_err();
        assert!(
            errors[0].contains("is too large once compiled"),
            "{errors:?}"
        );
    }
}
