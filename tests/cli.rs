//! `tripline test`: dry runs of one message and the fixture runner, through the binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tripline(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_dry_run_shows_matches_fields_notifications_and_reasons() {
    let output = tripline(
        repo(),
        &[
            "test",
            "--message-file",
            "examples/github-workflow-run-failed.json",
            "--header",
            "X-GitHub-Event: workflow_run",
        ],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("1 of 8 policies match\n"), "{text}");
    assert!(
        text.contains("MATCH github-workflow-failed\n  field actor = \"octocat\"\n"),
        "{text}"
    );
    assert!(text.contains("  would send email to dev-oncall@example.com\n    [critical] acme/api: CI failed on main\n"), "{text}");
    assert!(text.contains("no match app-log-errors\n  policies/app-log-errors.yaml:16:5: `env` equals `production` failed; the event has no such field\n"), "{text}");
}

#[test]
fn json_output_reads_stdin_and_lists_matches_fields_and_reasons() {
    let message =
        std::fs::read_to_string(repo().join("examples/app-log-checkout-error.log")).unwrap();
    let output = tripline(
        repo(),
        &["test", "--json", "--source", "checkout", "-"],
        Some(&message),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["matched"], serde_json::json!(["app-log-errors"]));
    let policies = report["policies"].as_array().unwrap();
    let app = policies
        .iter()
        .find(|p| p["policy"] == "app-log-errors")
        .unwrap();
    assert_eq!(app["fields"]["status"], "502");
    let message = &app["notifications"][0]["message"];
    assert_eq!(message["channel"], "email");
    assert_eq!(
        message["subject"],
        "[warning] checkout: payment provider call failed"
    );
    let stripe = policies
        .iter()
        .find(|p| p["policy"] == "stripe-payment-failed")
        .unwrap();
    assert_eq!(stripe["result"], "failed");
    assert_eq!(
        stripe["condition"],
        "`type` equals `invoice.payment_failed`"
    );
    assert_eq!(stripe["actual"], serde_json::Value::Null);
}

#[test]
fn a_missing_message_is_explained() {
    let output = tripline(repo(), &["test"], None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("give the message with `--message TEXT`"),
        "{stderr}"
    );
}

#[test]
fn fixtures_pass_for_the_shipped_policies_and_fail_loudly_otherwise() {
    let output = tripline(repo(), &["test", "--fixtures"], None);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.trim_end().ends_with(" passed, 0 failed"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let policy = "name: errors\nextract: [{kv: {}}]\nconditions: [{field: level, equals: error}]\n\
        tests:\n  - {name: info is quiet, message: level=info, expect: {match: true}}\n  - {name: error fires, message: level=error, expect: {match: true}}\n";
    std::fs::write(dir.path().join("policies/errors.yaml"), policy).unwrap();
    let output = tripline(dir.path(), &["test", "--fixtures"], None);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    let want = "FAIL errors / info is quiet (policies/errors.yaml:5:5)\n  match: expected true, got false (`level` equals `error` failed at policies/errors.yaml:3:14; the value was \"info\")\n1 passed, 1 failed\n";
    assert_eq!(text, want);
}
