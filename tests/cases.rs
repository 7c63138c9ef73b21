//! Data-driven policy cases. `tests/cases/*.yaml` are policy files whose `tests:`
//! fixtures must all pass; `tests/cases/errors/NAME.yaml` must fail to load with exactly
//! the `line:col: message` lines of `NAME.expected`.

use std::path::{Path, PathBuf};

use tripline::fixture;
use tripline::policy::PolicySet;

fn cases(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn every_case_file_passes_its_fixtures() {
    for file in cases("", "yaml") {
        let set =
            PolicySet::load(std::slice::from_ref(&file), None).unwrap_or_else(|e| panic!("{e}"));
        let (count, failures) = fixture::run_all(&set);
        assert!(count > 0, "{} has no fixtures", file.display());
        assert!(failures.is_empty(), "{}: {failures:#?}", file.display());
    }
}

#[test]
fn every_error_case_reports_exactly_its_expected_errors() {
    for file in cases("errors", "yaml") {
        let expected = std::fs::read_to_string(file.with_extension("expected")).unwrap();
        let errors = PolicySet::load(std::slice::from_ref(&file), None).unwrap_err();
        let prefix = format!("{}:", file.display());
        let got: Vec<String> = errors
            .items
            .iter()
            .map(|d| d.to_string().replace(&prefix, ""))
            .collect();
        let want: Vec<&str> = expected.lines().collect();
        assert_eq!(got, want, "{}", file.display());
    }
}

#[test]
fn a_wrong_expectation_is_reported_with_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    let policy = "name: p\nextract: [{kv: {}}]\nconditions: [{field: status, ge: 500}]\n\
        notify: [{email: {to: a@b.c, subject: 'status {{ fields.status }}'}}]\n\
        tests:\n  - {name: t, message: status=404, expect: {match: true, fields: {status: 500}, subject: status 500}}\n";
    std::fs::write(&file, policy).unwrap();
    let set = PolicySet::load(&[file], None).unwrap();
    let (count, failures) = fixture::run_all(&set);
    assert_eq!(count, 1);
    let problems = &failures[0].problems;
    assert!(
        problems[0].starts_with("match: expected true, got false (`status` ge 500 failed at "),
        "{problems:?}"
    );
    assert!(
        problems[0].ends_with("p.yaml:3:14; the value was \"404\")"),
        "{problems:?}"
    );
    assert_eq!(problems[1], "field `status`: expected `500`, got `404`");
    assert_eq!(
        problems[2],
        "subject: expected `status 500`, got `status 404`"
    );
}
