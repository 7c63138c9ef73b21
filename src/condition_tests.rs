//! Table tests for conditions: every operator, missing fields, types, and errors.

use super::*;
use crate::event::{Category, Event};
use crate::extract::{self, Extractor};

fn event(message: &str) -> Event {
    Event {
        id: "e1".into(),
        received_at: time::OffsetDateTime::UNIX_EPOCH,
        source: "ci".into(),
        title: String::new(),
        message: message.into(),
        content_type: None,
        headers: vec![("x-github-event".into(), "workflow_run".into())],
        query: vec![("env".into(), "prod".into())],
        category: Category::Info,
        tags: vec![("team".into(), "payments".into())],
        json: serde_json::from_str(message).ok(),
    }
}

/// Extractors every test condition may use.
fn extractors() -> Vec<Extractor> {
    let mut reader = Reader::new("x.yaml");
    let yaml = "- kv: {}\n- json: {status: $.status, tags: $.tags, n: $.n, flag: $.flag, nothing: $.nothing}\n";
    let node = reader.parse(yaml).unwrap();
    let items = reader.seq(&node, "x").unwrap().to_vec();
    items
        .iter()
        .map(|n| extract::read(&mut reader, n).unwrap())
        .collect()
}

fn compile(yaml: &str, extractors: &[Extractor]) -> Result<Condition, Vec<String>> {
    let mut reader = Reader::new("p.yaml");
    let node = reader.parse(yaml).ok_or_else(Vec::new)?;
    let names = Names {
        extractors: extractors.iter().enumerate().collect(),
    };
    let condition = ConditionReader {
        reader: &mut reader,
        names: &names,
    }
    .read(&node);
    match condition {
        Some(c) if reader.diagnostics.is_empty() => Ok(c),
        _ => Err(reader
            .diagnostics
            .items
            .iter()
            .map(|d| d.to_string())
            .collect()),
    }
}

fn check(yaml: &str, message: &str) -> bool {
    let extractors = extractors();
    let condition = compile(yaml, &extractors).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
    let event = event(message);
    let scope = Scope::new(&event, &extractors);
    let matched = condition.matches(&scope);
    assert_eq!(
        condition.explain(&scope).is_none(),
        matched,
        "explain agrees with matches: {yaml}"
    );
    matched
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
        (
            "{field: message, equals: OK, case_sensitive: false}",
            "ok",
            true,
        ),
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
        ("{field: query.env, equals: prod}", "", true),
        ("{field: tag.team, equals: payments}", "", true),
        ("{field: tag.nope, exists: false}", "", true),
        ("{field: source, equals: ci}", "", true),
        ("{field: category, equals: info}", "", true),
        // Numbers: numeric strings compare as numbers.
        ("{field: status, gt: 499}", "status=500", true),
        ("{field: status, ge: 500}", "status=500", true),
        ("{field: status, lt: 500}", "status=500", false),
        ("{field: status, le: '500'}", "status=500", true),
        ("{field: status, gt: 99}", "status=abc", false),
        ("{field: status, equals: 500}", "status=500.0", true),
        ("{field: status, equals: '0500'}", "status=500", true),
        ("{field: status, in: [404, 500]}", "status=500", true),
        ("{field: n, gt: 1.5}", r#"{"n": 2}"#, true),
        ("{field: n, equals: 2}", r#"{"n": "2"}"#, true),
        ("{field: status, equals: 500}", r#"{"status": 500}"#, true),
        ("{field: flag, equals: true}", r#"{"flag": true}"#, true),
        // Arrays: any element.
        (
            "{field: tags, contains: prod}",
            r#"{"tags": ["dev", "prod-eu"]}"#,
            true,
        ),
        (
            "{field: tags, not_contains: prod}",
            r#"{"tags": ["dev", "prod-eu"]}"#,
            false,
        ),
        ("{field: tags, in: [x, dev]}", r#"{"tags": ["dev"]}"#, true),
        (
            "{field: '$.tags[*]', equals: dev}",
            r#"{"tags": ["dev", "x"]}"#,
            true,
        ),
        ("{field: '$.a.b', equals: 1}", r#"{"a": {"b": 1}}"#, true),
        (
            "{field: '$.a', contains: '\"b\":1'}",
            r#"{"a": {"b": 1}}"#,
            true,
        ),
        ("{field: status, exists: true}", r#"{"status": "x"}"#, true),
    ];
    for (yaml, message, want) in cases {
        assert_eq!(check(yaml, message), want, "{yaml} on {message:?}");
    }
}

#[test]
fn missing_and_null_fields_fail_positive_and_pass_negative_operators() {
    let cases = [
        ("{field: title, contains: x}", false),
        ("{field: title, not_contains: x}", true),
        ("{field: header.x-none, equals: x}", false),
        ("{field: header.x-none, not_equals: x}", true),
        ("{field: header.x-none, not_regex: x}", true),
        ("{field: header.x-none, not_in: [x]}", true),
        ("{field: header.x-none, exists: false}", true),
        ("{field: header.x-github-event, exists: true}", true),
        ("{field: nothing, exists: true}", false),
        ("{field: nothing, equals: 'null'}", false),
        ("{field: nothing, gt: 0}", false),
        ("{field: '$.nowhere', exists: false}", true),
        ("{field: status, lt: 5}", false),
    ];
    for (yaml, want) in cases {
        assert_eq!(check(yaml, r#"{"nothing": null}"#), want, "{yaml}");
    }
}

#[test]
fn combinators_nest() {
    let yaml = "any:\n  - {field: message, contains: nope}\n  - all:\n      - {field: message, contains: deploy}\n      - not: {field: message, contains: test}\n";
    assert!(check(yaml, "deploy prod"));
    assert!(!check(yaml, "deploy test"));
}

#[test]
fn explanations_name_the_condition_its_place_and_the_value_seen() {
    let extractors = extractors();
    let yaml =
        "all:\n  - {field: message, contains: deploy}\n  - {field: status, in: [500, 502]}\n";
    let condition = compile(yaml, &extractors).unwrap();
    let event = event("deploy status=404");
    let failure = condition.explain(&Scope::new(&event, &extractors)).unwrap();
    assert_eq!(
        failure,
        Failure {
            condition: "`status` in [500, 502]".into(),
            at: "p.yaml:3:5".into(),
            actual: Some("\"404\"".into())
        }
    );
    let event = self::event("nothing here");
    let failure = condition.explain(&Scope::new(&event, &extractors)).unwrap();
    assert_eq!(
        (failure.condition.as_str(), failure.actual),
        (
            "`message` contains `deploy`",
            Some("\"nothing here\"".into())
        )
    );
}

#[test]
fn mistakes_are_located_and_explained() {
    let cases = [
        ("{field: message, contain: x}", "p.yaml:1:18: unknown key `contain` in a condition; did you mean `contains`?"),
        ("{field: mesage, contains: x}", "p.yaml:1:9: unknown field `mesage`; did you mean `message`?"),
        ("{field: statsu, gt: 1}", "p.yaml:1:9: unknown field `statsu`; did you mean `status`? (if `statsu` is a key a `kv` or `form` extractor finds, list it under that extractor's `keys:`)"),
        ("{field: message, contains: x, regex: y}", "p.yaml:1:31: a condition takes one operator, but has `contains` and `regex`; combine two tests with `all`"),
        ("{field: message}", "p.yaml:1:1: this condition has no operator; use one of `contains`, `not_contains`, `starts_with`, `ends_with`, `equals`, `not_equals`, `regex`, `not_regex`, `in`, `not_in`, `gt`, `ge`, `lt`, `le`, `exists`"),
        ("{contains: x}", "p.yaml:1:1: this condition needs `field`: which part of the event to test"),
        ("{field: message, regex: 'a('}", "p.yaml:1:25: regex `a(` does not compile: unclosed group"),
        ("{all: []}", "p.yaml:1:7: `all` is empty, so it would match every event; add a condition"),
        ("{all: [{field: title, exists: true}], any: []}", "p.yaml:1:39: `all` must stand alone in its condition, but `any` is beside it; nest one of them"),
        ("{field: message, in: []}", "p.yaml:1:22: `in` needs at least one value"),
        ("{field: message, exists: maybe}", "p.yaml:1:26: `exists` must be `true` or `false`, found the text `maybe`"),
        ("{field: status, gt: many}", "p.yaml:1:21: `gt` compares numbers, so it needs a number, found the text `many`"),
        ("{field: '$.a[', equals: 1}", "p.yaml:1:9: JSONPath `$.a[` is not valid"),
    ];
    for (yaml, want) in cases {
        let errors = compile(yaml, &extractors()).unwrap_err();
        assert_eq!(errors.len(), 1, "{yaml}: {errors:?}");
        assert!(
            errors[0].starts_with(want),
            "{yaml}:\n got {}\nwant {want}",
            errors[0]
        );
    }
}

#[test]
fn an_unknown_field_without_extractors_says_what_is_available() {
    let errors = compile("{field: repo, equals: x}", &[]).unwrap_err();
    assert_eq!(
        errors,
        ["p.yaml:1:9: unknown field `repo`: no extractor of this policy produces it; use `message`, `title`, `source`, `category`, `header.NAME`, `query.NAME`, `tag.NAME`, a JSONPath such as `$.a.b`, or add an extractor"]
    );
}

#[test]
fn hostile_regexes_are_refused() {
    let errors = compile("{field: message, regex: '\\w{1000}\\w{1000}'}", &[]).unwrap_err();
    assert!(
        errors[0].contains("is too large once compiled"),
        "{errors:?}"
    );
    let deep = format!(
        "{{field: message, regex: '{}x{}'}}",
        "(".repeat(100),
        ")".repeat(100)
    );
    let errors = compile(&deep, &[]).unwrap_err();
    assert!(errors[0].contains("does not compile"), "{errors:?}");
}
