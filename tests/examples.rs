//! Every policy in `policies/` loads, and every sample message in `examples/` gives
//! the matches it was written for. A new example must be added to [`EXPECTED`].

use std::path::{Path, PathBuf};

use tripline::engine;
use tripline::event::Event;
use tripline::policy::PolicySet;
use tripline::store::DeliveryStatus;

/// Each example file and the policies it must fire, in load order.
const EXPECTED: &[(&str, &[&str])] = &[
    ("alertmanager-firing.json", &["alertmanager-critical"]),
    ("alertmanager-resolved.json", &[]),
    ("app-log-checkout-error.log", &["app-log-errors"]),
    ("aws-sns-cloudwatch-alarm.json", &["aws-cloudwatch-alarm"]),
    ("deploy-failed.txt", &["deploy-failed"]),
    ("github-workflow-run-failed.json", &[]),
    ("nagios-disk-critical.txt", &["disk-space-critical"]),
    ("nagios-disk-recovery.txt", &[]),
    ("nagios-host-down.txt", &["nagios-host-down"]),
    (
        "stripe-invoice-payment-failed.json",
        &["stripe-payment-failed"],
    ),
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn event(message: String) -> Event {
    Event {
        id: tripline::event::new_id(),
        received_at: time::OffsetDateTime::now_utc(),
        source: "default".into(),
        title: String::new(),
        json: tripline::event::parse_json_body(&message, None),
        message,
        content_type: None,
        headers: Vec::new(),
        query: Vec::new(),
        category: Default::default(),
        tags: Vec::new(),
    }
}

#[test]
fn every_shipped_policy_loads() {
    let set = PolicySet::load(&[repo("policies")], None).unwrap_or_else(|e| panic!("{e}"));
    let files = std::fs::read_dir(repo("policies")).unwrap().count();
    assert_eq!(
        set.files.len(),
        files,
        "every file in policies/ is a policy file"
    );
    assert!(set.policies.len() >= 2);
}

#[test]
fn every_example_fires_the_policies_written_for_it() {
    let set = PolicySet::load(&[repo("policies")], None).unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<String> = std::fs::read_dir(repo("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names, listed,
        "examples/ and EXPECTED must list the same files"
    );

    for (name, want) in EXPECTED {
        let message = std::fs::read_to_string(repo("examples").join(name)).unwrap();
        let evaluation = engine::evaluate(&set, &event(message));
        assert_eq!(evaluation.matched, *want, "{name}");
        for delivery in &evaluation.deliveries {
            assert_eq!(
                delivery.status,
                DeliveryStatus::Pending,
                "{name}: {:?}",
                delivery.last_error
            );
            assert!(!delivery.subject.is_empty());
        }
    }
}

#[test]
fn check_accepts_the_shipped_policies() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
        .arg("check")
        .arg(repo("policies"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("ok: "), "{stdout}");
}

#[test]
fn check_reports_every_error_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "name: a\nconditions: []\n").unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "name: b\nconditions:\n  - {field: titel, contains: x}\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let d = dir.path().display();
    let want = format!(
        "{d}/a.yaml:2:13: `conditions` is empty, so it would match every event; add a condition\n\
         {d}/b.yaml:3:13: unknown field `titel`; did you mean `title`?\n2 errors\n"
    );
    assert_eq!(stderr, want);
}
