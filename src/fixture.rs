//! Fixture tests kept with policies: a sample message and what the policy must make of
//! it, run by `tripline test --fixtures` so a policies repository can prove its rules in
//! its own CI.
//!
//! ```yaml
//! tests:
//!   - name: a failed run on main alerts
//!     message_file: ../examples/github-workflow-run-failed.json   # or `message:`
//!     source: github
//!     headers: {X-GitHub-Event: workflow_run}
//!     expect:
//!       match: true
//!       fields: {conclusion: failure, branch: main}
//!       subject: "[critical] acme/api: workflow failed on main"
//! ```

use std::path::Path;

use serde_json::Value;

use crate::engine::{self, Verdict};
use crate::event::Event;
use crate::field::{number, Scope};
use crate::notify::AlertStatus;
use crate::policy::{Policy, PolicySet};
use crate::yaml::{Node, Reader};

const FIXTURE_KEYS: &[&str] = &[
    "name",
    "message",
    "message_file",
    "source",
    "title",
    "headers",
    "expect",
];
const EXPECT_KEYS: &[&str] = &["match", "fields", "subject"];

/// The source a fixture's event comes from when it names none.
pub const DEFAULT_SOURCE: &str = "fixture";

/// One fixture test.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub name: String,
    /// `file:line:col` of the fixture, for reports.
    pub at: String,
    pub message: String,
    pub source: Option<String>,
    pub title: Option<String>,
    pub headers: Vec<(String, String)>,
    pub expect: Expect,
}

/// What a fixture expects.
#[derive(Clone, Debug)]
pub struct Expect {
    pub matches: bool,
    /// Extracted fields and their values as text.
    pub fields: Vec<(String, String)>,
    /// The subject of the first email action, rendered.
    pub subject: Option<String>,
}

/// A fixture that did not hold.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FixtureFailure {
    pub policy: String,
    pub fixture: String,
    pub at: String,
    /// Each mismatch as "what: expected X, got Y".
    pub problems: Vec<String>,
}

/// Reads a `tests:` list.
pub fn read_list(reader: &mut Reader, node: &Node) -> Option<Vec<Fixture>> {
    let items = reader.seq(node, "`tests`")?;
    let fixtures: Vec<Option<Fixture>> = items.iter().map(|n| read(reader, n)).collect();
    fixtures.into_iter().collect()
}

fn read(reader: &mut Reader, node: &Node) -> Option<Fixture> {
    let mut map = reader.map(node, "a test")?;
    let name = map
        .take("name")
        .and_then(|n| reader.scalar_text(n, "`name`"));
    let message = read_message(reader, &mut map);
    let source = map
        .take("source")
        .and_then(|n| reader.scalar_text(n, "`source`"));
    let title = map
        .take("title")
        .and_then(|n| reader.scalar_text(n, "`title`"));
    let headers = match map.take("headers") {
        Some(n) => read_pairs(reader, n, "`headers`"),
        None => Some(Vec::new()),
    };
    let expect = match map.take("expect") {
        Some(n) => read_expect(reader, n),
        None => {
            reader.error(
                map.pos,
                "this test needs `expect:` with at least `match: true` or `match: false`",
            );
            None
        }
    };
    reader.finish(map, FIXTURE_KEYS, "a test");
    let at = format!("{}:{}:{}", reader.path(), node.pos.line, node.pos.col);
    let name = name.unwrap_or_else(|| format!("test at line {}", node.pos.line));
    Some(Fixture {
        name,
        at,
        message: message?,
        source,
        title,
        headers: headers?,
        expect: expect?,
    })
}

fn read_message(reader: &mut Reader, map: &mut crate::yaml::MapReader<'_>) -> Option<String> {
    match (map.take("message"), map.take("message_file")) {
        (Some(n), None) => reader.scalar_text(n, "`message`"),
        (None, Some(n)) => {
            let relative = reader.str(n, "`message_file`")?;
            let base = Path::new(&**reader.path())
                .parent()
                .unwrap_or(Path::new(""));
            let path = base.join(relative);
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(text),
                Err(e) => {
                    let message = format!("cannot read `message_file` `{}`: {e}", path.display());
                    reader.error(n.pos, message);
                    None
                }
            }
        }
        (Some(_), Some(n)) => {
            reader.error(n.pos, "give `message` or `message_file`, not both");
            None
        }
        (None, None) => {
            reader.error(map.pos, "this test needs `message` or `message_file`");
            None
        }
    }
}

fn read_pairs(reader: &mut Reader, node: &Node, what: &str) -> Option<Vec<(String, String)>> {
    let mut map = reader.map(node, what)?;
    let mut pairs = Vec::new();
    for (key, value) in map.take_all() {
        pairs.push((
            key.name.clone(),
            reader.scalar_text(value, &format!("`{}`", key.name))?,
        ));
    }
    Some(pairs)
}

fn read_expect(reader: &mut Reader, node: &Node) -> Option<Expect> {
    let mut map = reader.map(node, "`expect`")?;
    let matches = match map.take("match") {
        Some(n) => reader.bool(n, "`match`"),
        None => {
            reader.error(map.pos, "`expect` needs `match: true` or `match: false`");
            None
        }
    };
    let fields = match map.take("fields") {
        Some(n) => read_pairs(reader, n, "`fields`"),
        None => Some(Vec::new()),
    };
    let subject = map
        .take("subject")
        .and_then(|n| reader.scalar_text(n, "`subject`"));
    reader.finish(map, EXPECT_KEYS, "`expect`");
    Some(Expect {
        matches: matches?,
        fields: fields?,
        subject,
    })
}

impl Fixture {
    /// The event the fixture describes.
    pub fn event(&self) -> Event {
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| DEFAULT_SOURCE.to_string());
        let title = self.title.clone().unwrap_or_default();
        Event::sample(
            format!("fixture-{}", self.name),
            source,
            title,
            self.message.clone(),
            &self.headers,
        )
    }
}

/// Runs every fixture of every policy; returns the count run and the failures.
pub fn run_all(set: &PolicySet) -> (usize, Vec<FixtureFailure>) {
    let mut count = 0;
    let mut failures = Vec::new();
    for policy in &set.policies {
        for fixture in &policy.fixtures {
            count += 1;
            let problems = check(set, policy, fixture);
            if !problems.is_empty() {
                failures.push(FixtureFailure {
                    policy: policy.name.clone(),
                    fixture: fixture.name.clone(),
                    at: fixture.at.clone(),
                    problems,
                });
            }
        }
    }
    (count, failures)
}

/// The ways `fixture` does not hold for `policy`; empty when it passes.
pub fn check(set: &PolicySet, policy: &Policy, fixture: &Fixture) -> Vec<String> {
    let event = fixture.event();
    let scope = Scope::new(&event, &set.extractors);
    let verdict = engine::verdict(policy, &scope);
    let matched = matches!(verdict, Verdict::Matched { .. });
    let mut problems = Vec::new();
    if matched != fixture.expect.matches {
        problems.push(format!(
            "match: expected {}, got {matched}{}",
            fixture.expect.matches,
            reason(&verdict)
        ));
    }
    let fields = scope.fields(&policy.extractors);
    for (name, want) in &fixture.expect.fields {
        let got = fields.get(name);
        if !got.is_some_and(|v| same(v, want)) {
            let got = got.map_or("no value".to_string(), |v| format!("`{}`", text(v)));
            problems.push(format!("field `{name}`: expected `{want}`, got {got}"));
        }
    }
    if let Some(want) = &fixture.expect.subject {
        let got = (!policy.actions.is_empty())
            .then(|| engine::render_message(set, policy, 0, &scope, AlertStatus::Firing));
        match got {
            Some(Ok(message)) if message.summary() == *want => {}
            Some(Ok(message)) => problems.push(format!(
                "subject: expected `{want}`, got `{}`",
                message.summary()
            )),
            Some(Err(e)) => problems.push(format!(
                "subject: expected `{want}`, but rendering failed: {e}"
            )),
            None => {
                problems.push("subject: expected one, but the policy has no `notify` action".into())
            }
        }
    }
    problems
}

fn reason(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Failed(f) => {
            let actual = match &f.actual {
                Some(actual) => format!("the value was {actual}"),
                None => "the event has no such field".to_string(),
            };
            format!(" ({} failed at {}; {actual})", f.condition, f.at)
        }
        Verdict::OtherSource { sources } => {
            format!(" (the policy listens only to {})", sources.join(", "))
        }
        Verdict::Disabled => " (the policy is disabled)".to_string(),
        Verdict::Matched { .. } => String::new(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Equal as text, or as numbers when both read as numbers.
fn same(value: &Value, want: &str) -> bool {
    let got = text(value);
    got == want || matches!((number(&got), number(want)), (Some(a), Some(b)) if a == b)
}
