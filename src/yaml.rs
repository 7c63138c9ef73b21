//! A YAML document as a tree whose every node knows its line and column, and the
//! helpers that read configuration out of it while collecting every mistake.
//!
//! serde's derive stops at the first error and forgets where a value came from once
//! it is deserialized. Policy authors deserve better: a file with three mistakes should
//! show three located messages. So YAML is parsed once (by serde-saphyr) into [`Node`]s,
//! and the config and policy readers walk that tree, report through a [`Diagnostics`]
//! sink and keep going.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A position in a source file, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One YAML value with the position where it starts.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

/// The shapes a YAML value can take.
#[derive(Clone, Debug)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Clone, Debug)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// A located mistake in a file: `path:line:col: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: Arc<str>,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            return write!(f, "{}: {}", self.path, self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.pos.line, self.pos.col, self.message
        )
    }
}

/// Every mistake found while reading one or more files.
#[derive(Debug, Default, thiserror::Error)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Sorts by file, then position, so output reads top to bottom.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            (&a.path, a.pos.line, a.pos.col).cmp(&(&b.path, b.pos.line, b.pos.col))
        });
    }
}

/// Reads one file's tree and records mistakes against that file.
pub struct Reader {
    path: Arc<str>,
    pub diagnostics: Diagnostics,
}

impl Reader {
    pub fn new(path: impl Into<Arc<str>>) -> Self {
        Reader {
            path: path.into(),
            diagnostics: Diagnostics::default(),
        }
    }

    pub fn path(&self) -> &Arc<str> {
        &self.path
    }

    /// Records a mistake at `pos`.
    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        let path = self.path.clone();
        self.diagnostics.items.push(Diagnostic {
            path,
            pos,
            message: message.into(),
        });
    }

    /// Parses `text` into a tree. Duplicate keys are reported and the first one kept.
    pub fn parse(&mut self, text: &str) -> Option<Node> {
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
            with_snippet: false,
            // `yes`, `no`, `on`, `off`, `y` and `n` stay text: `equals: no` means "no".
            strict_booleans: true,
            // `007` and `1_000` stay text, as an author comparing IDs would expect.
            leading_zero_numbers_as_strings: true,
            underscored_numbers_as_strings: true,
        };
        match serde_saphyr::from_str_with_options::<Spanned<RawNode>>(text, options) {
            Ok(raw) => Some(self.convert(raw)),
            Err(err) => {
                let pos = err.location().map(|l| to_pos(&l)).unwrap_or_default();
                self.error(pos, syntax_message(&err));
                None
            }
        }
    }

    fn convert(&mut self, raw: Spanned<RawNode>) -> Node {
        let pos = to_pos(&raw.referenced);
        let kind = match raw.value {
            RawNode::Null => Kind::Null,
            RawNode::Bool(b) => Kind::Bool(b),
            RawNode::Int(i) => Kind::Int(i),
            RawNode::Float(f) => Kind::Float(f),
            RawNode::Str(s) => Kind::Str(s),
            RawNode::Seq(items) => Kind::Seq(items.into_iter().map(|n| self.convert(n)).collect()),
            RawNode::Map(entries) => Kind::Map(self.convert_map(entries)),
        };
        Node { kind, pos }
    }

    fn convert_map(
        &mut self,
        entries: Vec<(Spanned<String>, Spanned<RawNode>)>,
    ) -> Vec<(Key, Node)> {
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut out = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let key = Key {
                pos: to_pos(&key.referenced),
                name: key.value,
            };
            if let Some(first) = seen.get(&key.name) {
                let message = format!(
                    "duplicate key `{}`; it is already set on line {}",
                    key.name, first.line
                );
                self.error(key.pos, message);
                continue;
            }
            seen.insert(key.name.clone(), key.pos);
            let value = self.convert(value);
            out.push((key, value));
        }
        out
    }

    /// Opens a mapping for reading its keys one by one, or reports that `node` is not one.
    pub fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<MapReader<'n>> {
        match &node.kind {
            Kind::Map(entries) => Some(MapReader::new(entries, node.pos)),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a mapping, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// Reads a sequence, or reports that `node` is not one.
    pub fn seq<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Seq(items) => Some(items),
            _ => {
                let found = node.describe();
                self.error(node.pos, format!("{what} must be a list, found {found}"));
                None
            }
        }
    }

    /// Reads a string. Numbers and booleans are not silently turned into text.
    pub fn str<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match &node.kind {
            Kind::Str(s) => Some(s),
            _ => {
                let found = node.describe();
                self.error(node.pos, format!("{what} must be a string, found {found}"));
                None
            }
        }
    }

    /// Reads a scalar as text: strings as they are, numbers and booleans as written.
    pub fn scalar_text(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => {
                let found = node.describe();
                self.error(
                    node.pos,
                    format!("{what} must be a single value, found {found}"),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.kind {
            Kind::Bool(b) => Some(*b),
            _ => {
                let found = node.describe();
                self.error(
                    node.pos,
                    format!("{what} must be `true` or `false`, found {found}"),
                );
                None
            }
        }
    }

    /// Reads a non-negative integer.
    pub fn uint(&mut self, node: &Node, what: &str) -> Option<u64> {
        match &node.kind {
            Kind::Int(i) if *i >= 0 => Some(*i as u64),
            _ => {
                let found = node.describe();
                self.error(
                    node.pos,
                    format!("{what} must be a whole number ≥ 0, found {found}"),
                );
                None
            }
        }
    }

    /// Reads a string or a list of strings.
    pub fn str_list(&mut self, node: &Node, what: &str) -> Option<Vec<(String, Pos)>> {
        if let Kind::Str(s) = &node.kind {
            return Some(vec![(s.clone(), node.pos)]);
        }
        let items = self.seq(node, what)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(s) = self.str(item, &format!("each entry of {what}")) {
                out.push((s.to_string(), item.pos));
            }
        }
        Some(out)
    }

    /// Reports every key of `map` that was not taken, suggesting the closest known one.
    pub fn finish(&mut self, map: MapReader<'_>, known: &[&str], what: &str) {
        for (key, _) in map.unused() {
            let message = match suggest(&key.name, known) {
                Some(s) => format!("unknown key `{}` in {what}; did you mean `{s}`?", key.name),
                None => format!(
                    "unknown key `{}` in {what}; expected one of {}",
                    key.name,
                    backticked(known)
                ),
            };
            self.error(key.pos, message);
        }
    }
}

/// Hands out a mapping's entries by name and remembers which were used.
pub struct MapReader<'n> {
    entries: &'n [(Key, Node)],
    used: Vec<bool>,
    pub pos: Pos,
}

impl<'n> MapReader<'n> {
    fn new(entries: &'n [(Key, Node)], pos: Pos) -> Self {
        MapReader {
            entries,
            used: vec![false; entries.len()],
            pos,
        }
    }

    /// Takes the value of `name`, if present.
    pub fn take(&mut self, name: &str) -> Option<&'n Node> {
        let i = self.entries.iter().position(|(k, _)| k.name == name)?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    /// Takes `name` with its key, for messages that point at the key.
    pub fn take_entry(&mut self, name: &str) -> Option<(&'n Key, &'n Node)> {
        let i = self.entries.iter().position(|(k, _)| k.name == name)?;
        self.used[i] = true;
        let (k, v) = &self.entries[i];
        Some((k, v))
    }

    /// Whether `name` is present, without taking it.
    pub fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.name == name)
    }

    /// Every entry in document order.
    pub fn entries(&self) -> &'n [(Key, Node)] {
        self.entries
    }

    /// Marks every entry as used.
    pub fn take_all(&mut self) -> &'n [(Key, Node)] {
        self.used.iter_mut().for_each(|u| *u = true);
        self.entries
    }

    fn unused(&self) -> impl Iterator<Item = &'n (Key, Node)> + '_ {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(e, _)| e)
    }
}

impl Node {
    /// A short description of the value for messages: "a list", "the number `5`".
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "nothing".to_string(),
            Kind::Bool(b) => format!("`{b}`"),
            Kind::Int(i) => format!("the number `{i}`"),
            Kind::Float(f) => format!("the number `{f}`"),
            Kind::Str(s) => format!("the text `{s}`"),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Map(_) => "a mapping".to_string(),
        }
    }
}

/// The closest of `known` to `word`, if it is close enough to be a likely typo.
pub fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (word.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Formats names as "`a`, `b`, `c`".
pub fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Edit distance over characters where swapping two neighbours counts as one edit
/// (optimal string alignment), since `tsl` for `tls` is one slip of the fingers.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn to_pos(location: &serde_saphyr::Location) -> Pos {
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Pos {
        line: clamp(location.line()),
        col: clamp(location.column()),
    }
}

/// serde-saphyr's message without its own "line N column M" prefix, which our
/// `path:line:col:` already says.
fn syntax_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let text = match text.find(": ") {
        Some(i) if text.starts_with("line ") => &text[i + 2..],
        _ => text,
    };
    let first = text.lines().next().unwrap_or_default();
    let first = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    format!("invalid YAML: {first}")
}

/// The shape serde-saphyr fills; converted at once into [`Node`].
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<String>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(v))
    }

    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(RawNode::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Option<Node>, Vec<String>) {
        let mut r = Reader::new("t.yaml");
        let node = r.parse(text);
        (
            node,
            r.diagnostics.items.iter().map(|d| d.to_string()).collect(),
        )
    }

    #[test]
    fn positions_point_at_values_and_keys() {
        let (node, errors) = read("name: x\nlist:\n  - a\n");
        assert!(errors.is_empty());
        let node = node.unwrap();
        let Kind::Map(entries) = &node.kind else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.pos, Pos { line: 1, col: 1 });
        assert_eq!(entries[0].1.pos, Pos { line: 1, col: 7 });
        let Kind::Seq(items) = &entries[1].1.kind else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, Pos { line: 3, col: 5 });
    }

    #[test]
    fn yaml_11_booleans_and_padded_numbers_stay_text() {
        let (node, _) = read("[yes, no, on, off, y, n, 007, true, 7]");
        let Kind::Seq(items) = node.unwrap().kind else {
            panic!("not a list")
        };
        let texts: Vec<String> = items.iter().map(Node::describe).collect();
        assert_eq!(
            texts,
            [
                "the text `yes`",
                "the text `no`",
                "the text `on`",
                "the text `off`",
                "the text `y`",
                "the text `n`",
                "the text `007`",
                "`true`",
                "the number `7`",
            ]
        );
    }

    #[test]
    fn duplicate_keys_are_located() {
        let (_, errors) = read("name: a\nother: 1\nname: b\n");
        assert_eq!(
            errors,
            ["t.yaml:3:1: duplicate key `name`; it is already set on line 1"]
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let (node, errors) = read("name: x\n  foo: [\n");
        assert!(node.is_none());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("t.yaml:2:6: invalid YAML: "),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn unknown_keys_suggest_the_closest() {
        let mut r = Reader::new("t.yaml");
        let node = r.parse("contain: x\nzzz: 1\n").unwrap();
        let map = r.map(&node, "a condition").unwrap();
        r.finish(map, &["contains", "regex"], "a condition");
        let got: Vec<String> = r.diagnostics.items.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            [
                "t.yaml:1:1: unknown key `contain` in a condition; did you mean `contains`?",
                "t.yaml:2:1: unknown key `zzz` in a condition; expected one of `contains`, `regex`",
            ]
        );
    }

    #[test]
    fn edit_distance_table() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "abc", 0),
            ("contain", "contains", 1),
            ("ab", "ba", 1),
            ("tsl", "tls", 1),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} vs {b}");
        }
    }
}
