//! Recovery through the real binary: pulling the SMTP server's plug and killing
//! tripline loses nothing and sends nothing twice without a stable id; `notify-test`
//! finds a wrong password before a real alert does.

mod support;

use std::collections::BTreeSet;

use support::smtp::SmtpServer;
use support::{TestServer, Workspace};

const POLICY: &str = r#"
name: deploy-failed
conditions: [{field: message, contains: deploy}]
notify:
  - email:
      to: oncall@example.com
      subject: "{{ policy }}: {{ message }}"
"#;

fn smtp_config(port: u16, retry: &str) -> String {
    format!("smtp:\n  host: 127.0.0.1\n  port: {port}\n  tls: none\n  from: alerts@example.com\n  timeout: 5\nretry:\n  schedule: [{retry}]\n  give_up_after: 1h\n")
}

#[tokio::test]
async fn sigkill_while_smtp_is_down_loses_nothing_and_sends_nothing_twice() {
    // A port with nothing listening is the SMTP server with its plug pulled.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let ws = Workspace::new();
    ws.config(&smtp_config(port, "200ms"));
    ws.policy("deploy.yaml", POLICY);

    let server = TestServer::start(&ws, &[]);
    let mut events = Vec::new();
    for n in 0..5 {
        events.push(server.send(&format!("deploy {n} failed")).await);
    }
    // Every delivery has been tried and failed at least once, then the process dies.
    let ledger = server
        .wait_json("/api/notifications?status=failed", |j| {
            j["notifications"].as_array().unwrap().len() == 5
        })
        .await;
    for d in ledger["notifications"].as_array().unwrap() {
        let error = d["last_error"].as_str().unwrap().to_lowercase();
        assert!(error.contains("connect"), "{d}");
        assert!(
            d["next_attempt_at"].is_string(),
            "a retry is scheduled: {d}"
        );
    }
    server.kill();

    // SMTP comes back; tripline restarts and finishes the job from the store.
    let smtp = SmtpServer::plain_on(port);
    let server = TestServer::start(&ws, &[]);
    let ledger = server
        .wait_json("/api/notifications?status=sent", |j| {
            j["notifications"].as_array().unwrap().len() == 5
        })
        .await;
    let all = server.get_json("/api/notifications").await;
    assert_eq!(all["notifications"].as_array().unwrap().len(), 5, "{all}");

    let sent: BTreeSet<String> = ledger["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(d["attempts"].as_u64().unwrap() >= 2, "{d}");
            assert!(d["response"].as_str().unwrap().starts_with("250"), "{d}");
            format!("<{}@tripline>", d["id"].as_str().unwrap())
        })
        .collect();
    let mail = smtp.wait_for(5);
    let received: Vec<String> = mail
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(received.len(), 5, "each delivery arrived exactly once");
    assert_eq!(received.into_iter().collect::<BTreeSet<_>>(), sent);
    let event_ids: BTreeSet<String> = ledger["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(event_ids, events.into_iter().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn notify_test_sends_for_real_and_shows_the_server_reply() {
    let ws = Workspace::new();
    let smtp = SmtpServer::starttls(ws.path(), "alerts", "right");
    let config = format!(
        "smtp:\n  host: localhost\n  port: {}\n  username: alerts\n  password: ${{SMTP_PASSWORD}}\n  from: alerts@example.com\n  ca_file: {}\n",
        smtp.port,
        smtp.ca_file.as_ref().unwrap().display()
    );
    let config = ws.config(&config);
    let config = config.to_str().unwrap();
    ws.policy("deploy.yaml", POLICY);
    let args = [
        "notify-test",
        "--config",
        config,
        "--policy",
        "deploy-failed",
    ];

    let wrong = support::run(ws.path(), &args, &[("SMTP_PASSWORD", "wrong")]);
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.starts_with("action 1 (email to oncall@example.com): failed: permanent error (535)"),
        "{stderr}"
    );

    let right = support::run(ws.path(), &args, &[("SMTP_PASSWORD", "right")]);
    let stdout = String::from_utf8_lossy(&right.stdout);
    assert!(right.status.success(), "{right:?}");
    assert!(
        stdout.starts_with("action 1 (email to oncall@example.com): sent: 250"),
        "{stdout}"
    );
    let mail = smtp.wait_for(1);
    assert!(
        mail[0].body().contains("Title: tripline notify-test"),
        "{:?}",
        mail[0]
    );

    let cases: [(&[&str], &str); 2] = [
        (
            &["--action", "2"],
            "policy `deploy-failed` has 1 action(s); `--action` must be 1 to 1, found 2",
        ),
        (
            &["--policy", "deploy-fialed"],
            "no policy is named `deploy-fialed`; did you mean `deploy-failed`?",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec![
            "notify-test",
            "--config",
            config,
            "--policy",
            "deploy-failed",
        ];
        if extra[0] == "--policy" {
            args.truncate(3);
        }
        args.extend_from_slice(extra);
        let output = support::run(ws.path(), &args, &[("SMTP_PASSWORD", "right")]);
        assert!(!output.status.success());
        assert_eq!(String::from_utf8_lossy(&output.stderr).trim(), want);
    }
}
