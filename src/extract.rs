//! Extraction: turning a message into named fields before conditions run.
//!
//! Four kinds, each read from a policy's `extract:` list and compiled once:
//! `json` (JSONPath, RFC 9535), `kv` (logfmt `key=value` pairs, or `Key: value` lines
//! with another `separator`), `regex` (named groups) and `form` (URL-encoded bodies).
//! Identical extractors in many policies are compiled once and, per event, run once
//! (see [`crate::engine`]).

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::condition::compile_regex;
use crate::event::Event;
use crate::field::jsonpath_error;
use crate::pattern::Pattern;
#[cfg(test)]
use crate::yaml::Kind;
use crate::yaml::{backticked, Node, Reader};

/// The kinds of extractor.
pub const KINDS: &[&str] = &["json", "kv", "regex", "form"];

/// Names an extractor may not produce: they would hide built-in fields.
pub const RESERVED: &[&str] = &["message", "title", "source", "category"];

/// A compiled extractor.
#[derive(Debug)]
pub enum Extractor {
    /// Named JSONPath queries over the JSON body.
    Json(Vec<(String, JsonPath)>),
    /// `key=value` pairs anywhere in the message (logfmt).
    Pairs { keys: Option<Vec<String>> },
    /// One `Key<separator> value` pair per line.
    Lines {
        separator: String,
        keys: Option<Vec<String>>,
    },
    /// Named groups of the first match.
    Regex(Pattern),
    /// An `application/x-www-form-urlencoded` body.
    Form { keys: Option<Vec<String>> },
}

/// The fields one extractor found in one event, in the order found.
pub type Extracted = Vec<(String, Value)>;

impl Extractor {
    /// A key that is equal for extractors that do the same thing, to share them.
    pub fn identity(&self) -> String {
        match self {
            Extractor::Json(rules) => {
                let rules: Vec<String> = rules.iter().map(|(n, p)| format!("{n}={p}")).collect();
                format!("json:{}", rules.join(";"))
            }
            Extractor::Pairs { keys } => format!("kv:=:{keys:?}"),
            Extractor::Lines { separator, keys } => format!("kv:{separator}:{keys:?}"),
            Extractor::Regex(re) => format!("regex:{}", re.as_str()),
            Extractor::Form { keys } => format!("form:{keys:?}"),
        }
    }

    /// The names this extractor can produce; `None` when any name may appear.
    pub fn names(&self) -> Option<Vec<String>> {
        match self {
            Extractor::Json(rules) => Some(rules.iter().map(|(n, _)| n.clone()).collect()),
            Extractor::Regex(re) => Some(re.names().map(str::to_string).collect()),
            Extractor::Pairs { keys }
            | Extractor::Lines { keys, .. }
            | Extractor::Form { keys } => keys.clone(),
        }
    }

    /// Runs the extractor on `event`.
    pub fn run(&self, event: &Event) -> Extracted {
        match self {
            Extractor::Json(rules) => run_json(rules, event.json.as_ref()),
            Extractor::Pairs { keys } => keep(parse_logfmt(&event.message), keys),
            Extractor::Lines { separator, keys } => {
                keep(parse_lines(&event.message, separator), keys)
            }
            Extractor::Regex(re) => run_regex(re, &event.message),
            Extractor::Form { keys } => keep(parse_form(&event.message), keys),
        }
    }
}

fn run_json(rules: &[(String, JsonPath)], json: Option<&Value>) -> Extracted {
    let Some(json) = json else { return Vec::new() };
    rules
        .iter()
        .filter_map(|(name, path)| {
            let nodes = path.query(json).all();
            let value = match nodes.as_slice() {
                [] => return None,
                [one] => (*one).clone(),
                many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
            };
            Some((name.clone(), value))
        })
        .collect()
}

fn run_regex(re: &Pattern, message: &str) -> Extracted {
    re.named_groups(message)
        .into_iter()
        .map(|(name, text)| (name.to_string(), Value::String(text.to_string())))
        .collect()
}

/// Keeps the first value of each key, and only `keys` when given.
fn keep(pairs: Vec<(String, String)>, keys: &Option<Vec<String>>) -> Extracted {
    let mut out: Extracted = Vec::new();
    for (key, value) in pairs {
        let wanted = keys.as_ref().is_none_or(|k| k.contains(&key));
        if wanted && !out.iter().any(|(k, _)| *k == key) {
            out.push((key, Value::String(value)));
        }
    }
    out
}

/// Parses logfmt: `key=value`, `key="quoted \"value\""`, separated by whitespace.
/// Words without `=` are prose around the pairs and are skipped.
pub fn parse_logfmt(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return pairs;
        }
        let word_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let key = &rest[..word_end];
        rest = &rest[word_end..];
        let Some(after_eq) = rest.strip_prefix('=') else {
            continue;
        };
        let (value, tail) = match after_eq.strip_prefix('"') {
            Some(quoted) => read_quoted(quoted),
            None => {
                let end = after_eq.find(char::is_whitespace).unwrap_or(after_eq.len());
                (after_eq[..end].to_string(), &after_eq[end..])
            }
        };
        rest = tail;
        if !key.is_empty() && !key.contains('"') {
            pairs.push((key.to_string(), value));
        }
    }
}

/// Reads a quoted value up to the closing quote, handling `\"`, `\\`, `\n`, `\t`.
/// An unclosed quote takes the rest of the text.
fn read_quoted(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &text[i + 1..]),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, other)) => value.push(other),
                None => value.push('\\'),
            },
            other => value.push(other),
        }
    }
    (value, "")
}

/// Parses `Key<separator> value` lines; lines without the separator are skipped.
pub fn parse_lines(text: &str, separator: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(separator)?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_string(), value.trim().to_string()))
        })
        .collect()
}

fn parse_form(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.trim().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Reads one entry of an `extract:` list.
pub fn read(reader: &mut Reader, node: &Node) -> Option<Extractor> {
    let mut map = reader.map(node, "an extractor")?;
    let kinds: Vec<_> = KINDS.iter().filter_map(|k| map.take_entry(k)).collect();
    reader.finish(map, KINDS, "an extractor");
    match kinds.as_slice() {
        [(key, value)] => read_kind(reader, &key.name, value),
        [] => {
            let message = format!(
                "this extractor names no kind; use one of {}",
                backticked(KINDS)
            );
            reader.error(node.pos, message);
            None
        }
        [_, (second, _), ..] => {
            let message = "an extractor has one kind; write each as its own list entry";
            reader.error(second.pos, message);
            None
        }
    }
}

fn read_kind(reader: &mut Reader, kind: &str, node: &Node) -> Option<Extractor> {
    match kind {
        "json" => read_json(reader, node),
        "regex" => read_regex(reader, node),
        "kv" => read_kv(reader, node),
        _ => read_form(reader, node),
    }
}

fn read_json(reader: &mut Reader, node: &Node) -> Option<Extractor> {
    let mut map = reader.map(node, "`json`")?;
    let mut rules = Vec::new();
    let mut ok = true;
    for (key, value) in map.take_all() {
        ok &= check_name(reader, &key.name, key.pos);
        let Some(text) = reader.str(value, &format!("the path of `{}`", key.name)) else {
            ok = false;
            continue;
        };
        match JsonPath::parse(text) {
            Ok(path) => rules.push((key.name.clone(), path)),
            Err(e) => {
                ok = false;
                let message = jsonpath_error(text, &e);
                reader.error(value.pos, message);
            }
        }
    }
    if rules.is_empty() && ok {
        reader.error(node.pos, "`json` needs at least one `name: $.path`");
        return None;
    }
    ok.then_some(Extractor::Json(rules))
}

fn read_regex(reader: &mut Reader, node: &Node) -> Option<Extractor> {
    let pattern = reader.str(node, "`regex`")?;
    let re = compile_regex(reader, node.pos, pattern, true)?;
    let names: Vec<&str> = re.names().collect();
    if names.is_empty() {
        let message = format!("regex `{pattern}` has no named group, so it extracts nothing; name one as `(?P<host>...)`");
        reader.error(node.pos, message);
        return None;
    }
    let ok = names.iter().all(|n| check_name(reader, n, node.pos));
    ok.then_some(Extractor::Regex(re))
}

fn read_kv(reader: &mut Reader, node: &Node) -> Option<Extractor> {
    let mut map = reader.map(node, "`kv`")?;
    let separator = match map.take("separator") {
        Some(n) => {
            let s = reader.str(n, "`separator`")?;
            if s.is_empty() || s.contains('\n') {
                reader.error(
                    n.pos,
                    "`separator` must be one or more characters on one line",
                );
                return None;
            }
            s.to_string()
        }
        None => "=".to_string(),
    };
    let keys = read_keys(reader, &mut map);
    reader.finish(map, &["separator", "keys"], "`kv`");
    let keys = keys?;
    Some(if separator == "=" {
        Extractor::Pairs { keys }
    } else {
        Extractor::Lines { separator, keys }
    })
}

fn read_form(reader: &mut Reader, node: &Node) -> Option<Extractor> {
    let mut map = reader.map(node, "`form`")?;
    let keys = read_keys(reader, &mut map);
    reader.finish(map, &["keys"], "`form`");
    Some(Extractor::Form { keys: keys? })
}

/// The optional `keys:` list; `Some(None)` when absent.
fn read_keys(
    reader: &mut Reader,
    map: &mut crate::yaml::MapReader<'_>,
) -> Option<Option<Vec<String>>> {
    let Some(node) = map.take("keys") else {
        return Some(None);
    };
    let list = reader.str_list(node, "`keys`")?;
    Some(Some(list.into_iter().map(|(k, _)| k).collect()))
}

/// Extracted names must not hide built-in fields or look like field prefixes.
fn check_name(reader: &mut Reader, name: &str, pos: crate::yaml::Pos) -> bool {
    let prefixed = ["header.", "query.", "tag.", "$"]
        .iter()
        .any(|p| name.starts_with(p));
    if RESERVED.contains(&name) || prefixed || name.is_empty() {
        let message = format!("`{name}` cannot be an extracted field name: it would hide a built-in field; choose another name");
        reader.error(pos, message);
        return false;
    }
    true
}

/// Whether a node is an `extract:` list entry with the given kind; for tests.
#[cfg(test)]
fn is_kind(node: &Node, kind: &str) -> bool {
    matches!(&node.kind, Kind::Map(entries) if entries.iter().any(|(k, _)| k.name == kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Category;
    use serde_json::json;

    fn event(message: &str) -> Event {
        Event {
            id: "e".into(),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            source: "s".into(),
            title: String::new(),
            message: message.into(),
            content_type: None,
            headers: Vec::new(),
            query: Vec::new(),
            category: Category::Info,
            tags: Vec::new(),
            json: serde_json::from_str(message).ok(),
        }
    }

    fn compile(yaml: &str) -> Result<Extractor, Vec<String>> {
        let mut reader = Reader::new("p.yaml");
        let node = reader.parse(yaml).ok_or_else(Vec::new)?;
        assert!(KINDS.iter().any(|k| is_kind(&node, k)) || yaml.starts_with('{'));
        match read(&mut reader, &node) {
            Some(e) if reader.diagnostics.is_empty() => Ok(e),
            _ => Err(reader
                .diagnostics
                .items
                .iter()
                .map(|d| d.to_string())
                .collect()),
        }
    }

    fn run(yaml: &str, message: &str) -> Value {
        let extractor = compile(yaml).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
        let fields = extractor.run(&event(message));
        Value::Object(fields.into_iter().collect())
    }

    #[test]
    fn extractor_table() {
        let cases = [
            (
                "json: {c: $.run.conclusion, n: $.run.number}",
                r#"{"run": {"conclusion": "failure", "number": 42}}"#,
                json!({"c": "failure", "n": 42}),
            ),
            (
                "json: {names: '$.items[*].name'}",
                r#"{"items": [{"name": "a"}, {"name": "b"}]}"#,
                json!({"names": ["a", "b"]}),
            ),
            (
                "json: {x: $.missing, n: $.v}",
                r#"{"v": null}"#,
                json!({"n": null}),
            ),
            ("json: {x: $.a}", "not json at all", json!({})),
            ("json: {é: $.ünï}", r#"{"ünï": "ça"}"#, json!({"é": "ça"})),
            (
                "kv: {}",
                r#"level=error msg="disk \"/\" full" took=1.5s"#,
                json!({"level": "error", "msg": "disk \"/\" full", "took": "1.5s"}),
            ),
            (
                "kv: {}",
                "prose first status=500 path=/api  trailing words",
                json!({"status": "500", "path": "/api"}),
            ),
            (
                "kv: {}",
                r#"a=1 a=2 b="multi\nline" c="unclosed"#,
                json!({"a": "1", "b": "multi\nline", "c": "unclosed"}),
            ),
            ("kv: {}", "empty= next=x", json!({"empty": "", "next": "x"})),
            ("kv: {keys: [b]}", "a=1 b=2", json!({"b": "2"})),
            (
                "kv: {separator: ':'}",
                "Host: db-1\nState: CRITICAL\nno separator here\nURL: http://x:8080/\n",
                json!({"Host": "db-1", "State": "CRITICAL", "URL": "http://x:8080/"}),
            ),
            (
                "kv: {separator: ' = '}",
                "Notification Type = PROBLEM",
                json!({"Notification Type": "PROBLEM"}),
            ),
            (
                "regex: 'host=(?P<host>[\\w.-]+)(?: port=(?P<port>\\d+))?'",
                "x host=web-1.example y",
                json!({"host": "web-1.example"}),
            ),
            ("regex: '(?P<n>\\d+)'", "no digits", json!({})),
            (
                "form: {}",
                "payload=%7B%22a%22%3A1%7D&ref=refs%2Fheads%2Fmain&x=a+b",
                json!({"payload": "{\"a\":1}", "ref": "refs/heads/main", "x": "a b"}),
            ),
        ];
        for (yaml, message, want) in cases {
            assert_eq!(run(yaml, message), want, "{yaml} on {message:?}");
        }
    }

    #[test]
    fn identical_extractors_share_an_identity() {
        let a = compile("kv: {separator: ':'}").unwrap();
        let b = compile("kv: {separator: ':'}").unwrap();
        let c = compile("kv: {}").unwrap();
        assert_eq!(a.identity(), b.identity());
        assert_ne!(a.identity(), c.identity());
    }

    #[test]
    fn mistakes_are_located() {
        let cases = [
            ("json: {a: 'repository.name'}", "p.yaml:1:11: JSONPath `repository.name` is not valid"),
            ("regex: '(\\d+)'", "p.yaml:1:8: regex `(\\d+)` has no named group, so it extracts nothing; name one as `(?P<host>...)`"),
            ("regex: '(?P<a>'", "p.yaml:1:8: regex `(?P<a>` does not compile: unclosed group"),
            ("json: {message: $.m}", "p.yaml:1:8: `message` cannot be an extracted field name"),
            ("kv: {separatr: ':'}", "p.yaml:1:6: unknown key `separatr` in `kv`; did you mean `separator`?"),
            ("{jsn: {a: $.a}}", "p.yaml:1:2: unknown key `jsn` in an extractor; did you mean `json`?"),
            ("{json: {a: $.a}, kv: {}}", "p.yaml:1:18: an extractor has one kind; write each as its own list entry"),
        ];
        for (yaml, want) in cases {
            let errors = compile(yaml).unwrap_err();
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{yaml}: {errors:?}"
            );
        }
    }
}
