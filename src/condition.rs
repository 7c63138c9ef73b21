//! Conditions: what a policy asks of an event, read from YAML and compiled once.
//!
//! A condition tests one field with one operator, or combines others with `all`, `any`
//! and `not`. Case-insensitive text operators are compiled to regexes at load, so
//! evaluating an event never lowercases. A missing field makes a positive operator
//! false and a negative one (`not_*`) true: "the field does not contain x" holds when
//! there is no field.

use std::sync::Arc;

use crate::field::{number, FieldRef, Names, Scope, Val};
use crate::pattern::Pattern;
use crate::yaml::{backticked, MapReader, Node, Pos, Reader};

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
    "gt",
    "ge",
    "lt",
    "le",
    "exists",
];

const COMBINATORS: &[&str] = &["all", "any", "not"];

/// A compiled condition.
#[derive(Debug)]
pub enum Condition {
    Test(Test),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>, Location),
}

/// Where a condition is written, for explanations.
#[derive(Clone, Debug)]
pub struct Location {
    pub file: Arc<str>,
    pub pos: Pos,
}

/// One field tested with one operator.
#[derive(Debug)]
pub struct Test {
    pub field: FieldRef,
    pub op: Op,
    /// For `not_*` operators: the result is inverted, and a missing field passes.
    pub negated: bool,
    /// The condition as written, for explanations: "`branch` in [main, master]".
    pub text: String,
    pub location: Location,
}

/// A compiled operator.
#[derive(Debug)]
pub enum Op {
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    /// Any regex, including the case-insensitive forms of the text operators.
    Regex(Pattern),
    /// Equal as numbers when both sides are numbers, else as text.
    Equals(Operand),
    In(Vec<Operand>),
    Compare(Ordering, f64),
    Exists(bool),
}

/// A value to compare with, compiled for both readings.
#[derive(Debug)]
pub struct Operand {
    pub text: String,
    pub number: Option<f64>,
    /// For `case_sensitive: false`: the text as an anchored case-insensitive regex.
    pub folded: Option<Pattern>,
}

/// The numeric comparisons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    Gt,
    Ge,
    Lt,
    Le,
}

/// Why a policy's conditions did not hold: the first failing test and what it saw.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Failure {
    /// The condition as written.
    pub condition: String,
    /// `file:line:col` of the condition.
    pub at: String,
    /// The value the field had, or `None` when the event has no such field.
    pub actual: Option<String>,
}

impl Condition {
    /// Whether the scope's event satisfies the condition.
    pub fn matches(&self, scope: &Scope<'_>) -> bool {
        match self {
            Condition::Test(test) => test.matches(scope),
            Condition::All(list) => list.iter().all(|c| c.matches(scope)),
            Condition::Any(list) => list.iter().any(|c| c.matches(scope)),
            Condition::Not(inner, _) => !inner.matches(scope),
        }
    }

    /// `None` when the condition holds; otherwise the first reason it does not.
    pub fn explain(&self, scope: &Scope<'_>) -> Option<Failure> {
        match self {
            Condition::Test(test) => (!test.matches(scope)).then(|| test.failure(scope)),
            Condition::All(list) => list.iter().find_map(|c| c.explain(scope)),
            Condition::Any(list) => {
                let failures: Option<Vec<Failure>> =
                    list.iter().map(|c| c.explain(scope)).collect();
                failures
                    .and_then(|f| f.into_iter().next())
                    .map(|first| Failure {
                        condition: format!(
                            "none of the `any` conditions held; the first: {}",
                            first.condition
                        ),
                        ..first
                    })
            }
            Condition::Not(inner, location) => inner.matches(scope).then(|| Failure {
                condition: "`not` condition held inside, so `not` failed".to_string(),
                at: format!(
                    "{}:{}:{}",
                    location.file, location.pos.line, location.pos.col
                ),
                actual: None,
            }),
        }
    }
}

impl Test {
    fn matches(&self, scope: &Scope<'_>) -> bool {
        let value = self.field.resolve(scope);
        if let Op::Exists(want) = self.op {
            return value.is_some() == want;
        }
        match value {
            Some(value) => self.op.matches(&value) != self.negated,
            None => self.negated,
        }
    }

    fn failure(&self, scope: &Scope<'_>) -> Failure {
        let at = format!(
            "{}:{}:{}",
            self.location.file, self.location.pos.line, self.location.pos.col
        );
        let actual = self.field.resolve(scope).map(|v| v.display());
        Failure {
            condition: self.text.clone(),
            at,
            actual,
        }
    }
}

impl Op {
    fn matches(&self, value: &Val<'_>) -> bool {
        match self {
            Op::Contains(needle) => value.any_text(&mut |t| t.contains(needle.as_str())),
            Op::StartsWith(prefix) => value.any_text(&mut |t| t.starts_with(prefix.as_str())),
            Op::EndsWith(suffix) => value.any_text(&mut |t| t.ends_with(suffix.as_str())),
            Op::Regex(re) => value.any_text(&mut |t| re.is_match(t)),
            Op::Equals(operand) => value.any_text(&mut |t| operand.equals(t)),
            Op::In(list) => value.any_text(&mut |t| list.iter().any(|o| o.equals(t))),
            Op::Compare(ordering, bound) => value.any_number(&mut |n| ordering.holds(n, *bound)),
            Op::Exists(_) => true,
        }
    }
}

impl Operand {
    fn equals(&self, text: &str) -> bool {
        if let (Some(want), Some(have)) = (self.number, number(text)) {
            return want == have;
        }
        match &self.folded {
            Some(re) => re.is_match(text),
            None => text == self.text,
        }
    }
}

impl Ordering {
    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Ordering::Gt => value > bound,
            Ordering::Ge => value >= bound,
            Ordering::Lt => value < bound,
            Ordering::Le => value <= bound,
        }
    }
}

/// Reads conditions, resolving field names against a policy's extractors.
pub struct ConditionReader<'r, 'n> {
    pub reader: &'r mut Reader,
    pub names: &'r Names<'n>,
}

impl ConditionReader<'_, '_> {
    /// Reads a list of conditions. An empty list is refused: it would match everything.
    pub fn list(&mut self, node: &Node, what: &str) -> Option<Vec<Condition>> {
        let items = self.reader.seq(node, what)?;
        if items.is_empty() {
            let message =
                format!("{what} is empty, so it would match every event; add a condition");
            self.reader.error(node.pos, message);
            return None;
        }
        let conditions: Vec<Option<Condition>> = items.iter().map(|n| self.read(n)).collect();
        conditions.into_iter().collect()
    }

    /// Reads one condition: a test, or `all`, `any` or `not`.
    pub fn read(&mut self, node: &Node) -> Option<Condition> {
        let map = self.reader.map(node, "a condition")?;
        if let Some(combinator) = COMBINATORS.iter().find(|c| map.has(c)) {
            return self.combinator(map, combinator);
        }
        self.test(map)
    }

    fn location(&self, pos: Pos) -> Location {
        Location {
            file: self.reader.path().clone(),
            pos,
        }
    }

    fn combinator(&mut self, mut map: MapReader<'_>, name: &str) -> Option<Condition> {
        let value = map.take(name).expect("the caller saw this key");
        if let Some((other, _)) = map.entries().iter().find(|(k, _)| k.name != name) {
            let message = format!(
                "`{name}` must stand alone in its condition, but `{}` is beside it; nest one of them",
                other.name
            );
            self.reader.error(other.pos, message);
            map.take_all();
            return None;
        }
        match name {
            "not" => Some(Condition::Not(
                Box::new(self.read(value)?),
                self.location(map.pos),
            )),
            "all" => self.list(value, "`all`").map(Condition::All),
            _ => self.list(value, "`any`").map(Condition::Any),
        }
    }

    fn test(&mut self, mut map: MapReader<'_>) -> Option<Condition> {
        let pos = map.pos;
        let field_node = map.take("field");
        let case_sensitive = match map.take("case_sensitive") {
            Some(node) => self.reader.bool(node, "`case_sensitive`"),
            None => Some(true),
        };
        let mut ops: Vec<_> = OPERATORS
            .iter()
            .filter_map(|op| map.take_entry(op))
            .collect();
        ops.sort_by_key(|(key, _)| (key.pos.line, key.pos.col));
        let mut known: Vec<&str> = OPERATORS.to_vec();
        known.extend(["field", "case_sensitive"]);
        known.extend(COMBINATORS);
        let before = self.reader.diagnostics.len();
        self.reader.finish(map, &known, "a condition");
        let unknown_keys = self.reader.diagnostics.len() > before;
        let field = match field_node {
            Some(node) => self.field(node),
            // A misspelt `field` was reported as an unknown key already.
            None if unknown_keys => None,
            None => {
                let message = "this condition needs `field`: which part of the event to test";
                self.reader.error(pos, message);
                None
            }
        };

        let (op_key, op_value) = match ops.as_slice() {
            [one] => *one,
            // An unknown key was most likely the operator, misspelt; that message says enough.
            [] if unknown_keys => return None,
            [] => {
                let message = format!(
                    "this condition has no operator; use one of {}",
                    backticked(OPERATORS)
                );
                self.reader.error(pos, message);
                return None;
            }
            [first, second, ..] => {
                let message = format!(
                    "a condition takes one operator, but has `{}` and `{}`; combine two tests with `all`",
                    first.0.name, second.0.name
                );
                self.reader.error(second.0.pos, message);
                return None;
            }
        };
        let op = read_op(self.reader, &op_key.name, op_value, case_sensitive?)?;
        let (field, field_name) = field?;
        let text = format!("`{field_name}` {} {}", op_key.name, operand_text(op_value));
        let negated = op_key.name.starts_with("not_");
        let location = self.location(pos);
        Some(Condition::Test(Test {
            field,
            op,
            negated,
            text,
            location,
        }))
    }

    fn field(&mut self, node: &Node) -> Option<(FieldRef, String)> {
        let name = self.reader.str(node, "`field`")?;
        match FieldRef::parse(name, self.names) {
            Ok(field) => Some((field, name.to_string())),
            Err(message) => {
                self.reader.error(node.pos, message);
                None
            }
        }
    }
}

/// The operand as written, for explanations.
fn operand_text(node: &Node) -> String {
    match &node.kind {
        crate::yaml::Kind::Seq(items) => {
            let items: Vec<String> = items.iter().map(operand_text).collect();
            format!("[{}]", items.join(", "))
        }
        crate::yaml::Kind::Str(s) => format!("`{s}`"),
        crate::yaml::Kind::Int(i) => i.to_string(),
        crate::yaml::Kind::Float(f) => f.to_string(),
        crate::yaml::Kind::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn read_op(reader: &mut Reader, name: &str, node: &Node, case_sensitive: bool) -> Option<Op> {
    let what = format!("`{name}`");
    match name.trim_start_matches("not_") {
        "exists" => reader.bool(node, &what).map(Op::Exists),
        "in" => read_in(reader, node, &what, case_sensitive),
        "equals" => read_operand(reader, node, &what, case_sensitive).map(Op::Equals),
        "gt" | "ge" | "lt" | "le" => read_compare(reader, name, node),
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
                    _ => Op::EndsWith(text),
                });
            }
            let escaped = regex::escape(&text);
            let pattern = match op {
                "contains" => escaped,
                "starts_with" => format!("^{escaped}"),
                _ => format!("{escaped}$"),
            };
            compile_regex(reader, node.pos, &pattern, false).map(Op::Regex)
        }
    }
}

fn read_compare(reader: &mut Reader, name: &str, node: &Node) -> Option<Op> {
    let bound = match &node.kind {
        crate::yaml::Kind::Int(i) => Some(*i as f64),
        crate::yaml::Kind::Float(f) if f.is_finite() => Some(*f),
        crate::yaml::Kind::Str(s) => number(s),
        _ => None,
    };
    let Some(bound) = bound else {
        let message = format!(
            "`{name}` compares numbers, so it needs a number, found {}",
            node.describe()
        );
        reader.error(node.pos, message);
        return None;
    };
    let ordering = match name {
        "gt" => Ordering::Gt,
        "ge" => Ordering::Ge,
        "lt" => Ordering::Lt,
        _ => Ordering::Le,
    };
    Some(Op::Compare(ordering, bound))
}

fn read_operand(
    reader: &mut Reader,
    node: &Node,
    what: &str,
    case_sensitive: bool,
) -> Option<Operand> {
    let text = reader.scalar_text(node, what)?;
    let folded = if case_sensitive {
        None
    } else {
        let pattern = format!("^{}$", regex::escape(&text));
        Some(compile_regex(reader, node.pos, &pattern, false)?)
    };
    Some(Operand {
        number: number(&text),
        text,
        folded,
    })
}

fn read_in(reader: &mut Reader, node: &Node, what: &str, case_sensitive: bool) -> Option<Op> {
    let items = reader.seq(node, what)?;
    if items.is_empty() {
        reader.error(node.pos, format!("{what} needs at least one value"));
        return None;
    }
    let each = format!("each entry of {what}");
    let operands: Option<Vec<Operand>> = items
        .iter()
        .map(|n| read_operand(reader, n, &each, case_sensitive))
        .collect();
    operands.map(Op::In)
}

/// Compiles a pattern from a policy; a mistake is reported at `pos`.
pub fn compile_regex(
    reader: &mut Reader,
    pos: Pos,
    pattern: &str,
    case_sensitive: bool,
) -> Option<Pattern> {
    // The flag goes into the pattern itself, so the matching index sees it too.
    let flagged;
    let source = if case_sensitive {
        pattern
    } else {
        flagged = format!("(?i){pattern}");
        &flagged
    };
    match Pattern::new(source) {
        Ok(compiled) => Some(compiled),
        Err(e) => {
            reader.error(pos, format!("regex `{pattern}` {e}"));
            None
        }
    }
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
