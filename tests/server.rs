//! The core flow through the real binary: webhooks in over HTTP, policies matched,
//! email out to a real SMTP server, events durable across restarts.

mod support;

use std::io::{Read, Write};

use support::smtp::SmtpServer;
use support::{TestServer, Workspace, KEY};

const DEPLOY_POLICY: &str = r#"
name: deploy-failed
category: critical
conditions:
  - {field: message, contains: deploy}
  - {field: message, regex: '(?i)\bfail'}
notify:
  - email:
      to: [oncall@example.com, Lead <lead@example.com>]
      subject: "[{{ category }}] {{ policy }} from {{ source }}"
      body: "event {{ event_id }} at {{ received_at }}: {{ message }}"
"#;

fn smtp_plain(port: u16) -> String {
    format!("smtp:\n  host: 127.0.0.1\n  port: {port}\n  tls: none\n  from: tripline <alerts@example.com>\n")
}

#[tokio::test]
async fn a_matching_webhook_sends_a_rendered_email_over_plain_smtp() {
    let smtp = SmtpServer::plain();
    let ws = Workspace::new();
    ws.config(&smtp_plain(smtp.port));
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);

    let id = server.send("deploy of api to production FAILED").await;

    let mail = smtp.wait_for(1);
    let mail = &mail[0];
    assert_eq!(mail.from, "alerts@example.com");
    assert_eq!(mail.to, ["oncall@example.com", "lead@example.com"]);
    assert_eq!(
        mail.header("Subject").unwrap(),
        "[critical] deploy-failed from ci"
    );
    assert_eq!(
        mail.header("Message-ID").unwrap().len(),
        "<@tripline>".len() + 36
    );
    let body = mail.body();
    let body = body.trim_end();
    assert!(body.starts_with(&format!("event {id} at 20")), "{body}");
    assert!(
        body.ends_with(": deploy of api to production FAILED"),
        "{body}"
    );

    let event = server.get_json(&format!("/api/events/{id}")).await;
    assert_eq!(event["matched"], serde_json::json!(["deploy-failed"]));
    let ledger = server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "sent"
        })
        .await;
    let delivery = &ledger["notifications"][0];
    assert_eq!(delivery["event_id"], id.as_str());
    assert_eq!(
        delivery["recipient"],
        "oncall@example.com, Lead <lead@example.com>"
    );
    assert_eq!(delivery["attempts"], 1);
}

#[tokio::test]
async fn email_goes_through_starttls_with_auth_and_a_private_ca() {
    let ws = Workspace::new();
    let smtp = SmtpServer::starttls(ws.path(), "alerts", "correct horse battery");
    let config = format!(
        "smtp:\n  host: localhost\n  port: {}\n  tls: starttls\n  username: alerts\n  password: ${{SMTP_PASSWORD}}\n  from: alerts@example.com\n  ca_file: {}\n",
        smtp.port,
        smtp.ca_file.as_ref().unwrap().display()
    );
    ws.config(&config);
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[("SMTP_PASSWORD", "correct horse battery")]);

    server.send("deploy failed on web-1").await;

    let mail = smtp.wait_for(1);
    assert_eq!(mail[0].user.as_deref(), Some("alerts"));
    assert_eq!(
        mail[0].header("Subject").unwrap(),
        "[critical] deploy-failed from ci"
    );
    server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "sent"
        })
        .await;
    assert!(
        !server.log().contains("correct horse battery"),
        "the password was logged"
    );
}

#[tokio::test]
async fn email_goes_through_implicit_tls() {
    let ws = Workspace::new();
    let smtp = SmtpServer::plain();
    let (port, ca) = support::smtp::implicit_tls_front(ws.path(), smtp.port);
    let config = format!(
        "smtp:\n  host: localhost\n  port: {port}\n  tls: implicit\n  from: alerts@example.com\n  ca_file: {}\n",
        ca.display()
    );
    ws.config(&config);
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);

    server.send("deploy failed behind smtps").await;

    let mail = smtp.wait_for(1);
    assert_eq!(
        mail[0].header("Subject").unwrap(),
        "[critical] deploy-failed from ci"
    );
    server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "sent"
        })
        .await;
}

#[tokio::test]
async fn a_relay_with_an_untrusted_certificate_is_refused() {
    let ws = Workspace::new();
    let smtp = SmtpServer::plain();
    let (port, _ca) = support::smtp::implicit_tls_front(ws.path(), smtp.port);
    // No `ca_file`: the test CA is not trusted, so the relay's certificate is refused.
    let config = format!(
        "smtp:\n  host: localhost\n  port: {port}\n  tls: implicit\n  from: alerts@example.com\n"
    );
    ws.config(&config);
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);

    server.send("deploy failed").await;
    let ledger = server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "failed"
        })
        .await;
    let error = ledger["notifications"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(error.contains("certificate"), "{error}");
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn a_refused_login_is_recorded_with_the_server_reply_and_the_server_keeps_running() {
    let ws = Workspace::new();
    let smtp = SmtpServer::starttls(ws.path(), "alerts", "right");
    let config = format!(
        "smtp:\n  host: localhost\n  port: {}\n  username: alerts\n  password: wrong-password\n  from: alerts@example.com\n  ca_file: {}\n",
        smtp.port,
        smtp.ca_file.as_ref().unwrap().display()
    );
    ws.config(&config);
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);

    server.send("deploy failed").await;
    // A refused login is a permanent (5xx) failure: dead at once, not retried.
    let ledger = server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "dead"
        })
        .await;
    let error = ledger["notifications"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("535"), "the reply is missing: {error}");
    assert!(
        server.log().contains("notification failed"),
        "{}",
        server.log()
    );

    // Still accepting webhooks after the failure.
    server.send("deploy failed again").await;
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn put_and_post_are_accepted_on_both_paths() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);
    let client = reqwest::Client::new();

    let mut ids = Vec::new();
    for path in ["/webhook", "/ingest/webhook"] {
        for method in [reqwest::Method::PUT, reqwest::Method::POST] {
            let url = server.url(&format!("{path}/{KEY}"));
            let response = client
                .request(method.clone(), url)
                .header("content-type", "application/json")
                .header("x-github-event", "workflow_run")
                .header("authorization", "Bearer do-not-keep")
                .body(format!(r#"{{"via": "{method} {path}"}}"#))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202, "{method} {path}");
            let json: serde_json::Value = response.json().await.unwrap();
            ids.push(json["event_id"].as_str().unwrap().to_string());
        }
    }
    let events = server.get_json("/api/events").await;
    let listed: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    ids.reverse();
    assert_eq!(listed, ids, "newest first");

    let event = server.get_json(&format!("/api/events/{}", ids[0])).await;
    assert_eq!(event["source"], "ci");
    assert_eq!(event["content_type"], "application/json");
    assert_eq!(event["json"]["via"], "POST /ingest/webhook");
    let headers = event["headers"].to_string();
    assert!(headers.contains("workflow_run"), "{headers}");
    assert!(
        !headers.contains("do-not-keep"),
        "credentials were kept: {headers}"
    );
}

#[tokio::test]
async fn a_message_that_matches_nothing_is_stored_without_notifications() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);

    let id = server.send("deploy succeeded").await;

    let event = server.get_json(&format!("/api/events/{id}")).await;
    assert_eq!(event["message"], "deploy succeeded");
    assert_eq!(event["matched"], serde_json::json!([]));
    assert_eq!(event["deliveries"], serde_json::json!([]));
    let ledger = server.get_json("/api/notifications").await;
    assert_eq!(ledger["notifications"], serde_json::json!([]));
}

#[tokio::test]
async fn refused_requests_get_a_clear_error_and_store_nothing() {
    let ws = Workspace::new();
    ws.config("max_body: 1KiB\n");
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);
    let client = reqwest::Client::new();

    let cases: Vec<(String, Vec<u8>, u16, &str)> = vec![
        (
            format!("/webhook/{}", "x".repeat(24)),
            b"deploy failed".to_vec(),
            401,
            "unknown API key",
        ),
        (
            "/webhook/".to_string() + &KEY[..KEY.len() - 1],
            b"deploy failed".to_vec(),
            401,
            "unknown API key",
        ),
        (
            format!("/webhook/{KEY}"),
            vec![b'a'; 1025],
            413,
            "larger than the limit of 1024 bytes",
        ),
        (
            format!("/webhook/{KEY}"),
            vec![b'd', 0xff, 0xfe, b'x'],
            415,
            "not UTF-8",
        ),
    ];
    for (path, body, status, error) in cases {
        let response = client
            .post(server.url(&path))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let json: serde_json::Value = response.json().await.unwrap();
        let text = json["error"].as_str().unwrap();
        assert!(text.contains(error), "{status}: {text}");
    }

    // A chunked body gives no length up front; the limit still holds while reading.
    let (status, body) = raw_chunked(&server, 2048);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than the limit"), "{body}");

    let events = server.get_json("/api/events").await;
    assert_eq!(events["events"], serde_json::json!([]));
    assert!(!server.log().contains(KEY), "the API key was logged");
}

/// Sends a chunked POST of `size` bytes over a raw socket; returns status and body.
fn raw_chunked(server: &TestServer, size: usize) -> (u16, String) {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!("POST /webhook/{KEY} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    for _ in 0..size / 256 {
        let _ = stream.write_all(format!("100\r\n{}\r\n", "z".repeat(256)).as_bytes());
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[tokio::test]
async fn events_and_deliveries_survive_a_crash_and_restart() {
    let smtp = SmtpServer::plain();
    let ws = Workspace::new();
    ws.config(&smtp_plain(smtp.port));
    ws.policy("deploy.yaml", DEPLOY_POLICY);

    let server = TestServer::start(&ws, &[]);
    let id = server.send("deploy failed before the crash").await;
    smtp.wait_for(1);
    server.kill();

    let server = TestServer::start(&ws, &[]);
    let event = server.get_json(&format!("/api/events/{id}")).await;
    assert_eq!(event["message"], "deploy failed before the crash");
    assert_eq!(event["matched"], serde_json::json!(["deploy-failed"]));
    assert_eq!(event["deliveries"][0]["status"], "sent");
    // A delivery already sent is not sent again on restart.
    let second = server.send("deploy failed after the restart").await;
    smtp.wait_for(2);
    assert_eq!(smtp.received().len(), 2);
    assert!(smtp.received()[1].body().contains(&second));
}

#[tokio::test]
async fn a_delivery_left_pending_by_a_crash_is_sent_on_start() {
    use tripline::store::{sqlite::SqliteStore, Delivery, DeliveryStatus, Store};

    let smtp = SmtpServer::plain();
    let ws = Workspace::new();
    ws.config(&smtp_plain(smtp.port));
    ws.policy("deploy.yaml", DEPLOY_POLICY);

    // What a crash between the commit and the send leaves behind.
    let store = SqliteStore::open(&ws.path().join("data")).unwrap();
    let event = tripline::event::Event {
        id: "0190a000-0000-7000-8000-000000000001".into(),
        received_at: time::OffsetDateTime::now_utc(),
        source: "ci".into(),
        title: String::new(),
        message: "deploy failed just before a crash".into(),
        content_type: None,
        headers: Vec::new(),
        query: Vec::new(),
        category: Default::default(),
        tags: Vec::new(),
        json: None,
    };
    let delivery = Delivery {
        id: "0190a000-0000-7000-8000-000000000002".into(),
        event_id: event.id.clone(),
        policy: "deploy-failed".into(),
        channel: "email".into(),
        recipient: "oncall@example.com".into(),
        subject: "left pending".into(),
        body: "sent after restart".into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_error: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        ..Delivery::default()
    };
    store
        .insert_event(&event, "v0", &["deploy-failed".into()], &[delivery])
        .unwrap();
    drop(store);

    let server = TestServer::start(&ws, &[]);
    let mail = smtp.wait_for(1);
    assert_eq!(mail[0].header("Subject").unwrap(), "left pending");
    assert_eq!(
        mail[0].header("Message-ID").unwrap(),
        "<0190a000-0000-7000-8000-000000000002@tripline>"
    );
    server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "sent"
        })
        .await;
}

#[tokio::test]
async fn a_relay_that_is_down_is_recorded_as_a_failed_delivery() {
    // A port with nothing listening stands for the relay being down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let ws = Workspace::new();
    ws.config(&smtp_plain(dead_port));
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);
    server.send("deploy failed while mail was down").await;
    let ledger = server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "failed"
        })
        .await;
    let error = ledger["notifications"][0]["last_error"].as_str().unwrap();
    assert!(error.to_lowercase().contains("connect"), "{error}");
}

#[tokio::test]
async fn a_bad_policy_stops_serve_with_every_located_error() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy(
        "a.yaml",
        "name: a\nconditions:\n  - {field: message, contain: x}\n",
    );
    ws.policy(
        "b.yaml",
        "name: b\ncategory: loud\nconditions:\n  - {field: message, regex: '('}\n",
    );
    let config = ws.path().join("tripline.yaml");
    let output = std::process::Command::new(support::binary())
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let policies = ws.path().join("policies");
    let p = policies.display();
    for want in [
        format!("{p}/a.yaml:3:22: unknown key `contain` in a condition; did you mean `contains`?"),
        format!(
            "{p}/b.yaml:2:11: `category` must be `info`, `warning` or `critical`, found `loud`"
        ),
        format!("{p}/b.yaml:4:29: regex `(` does not compile: unclosed group"),
        "tripline did not start".to_string(),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
}

#[tokio::test]
async fn a_bad_config_names_file_line_and_column() {
    let ws = Workspace::new();
    let path = ws.path().join("tripline.yaml");
    std::fs::write(&path, "listen: 127.0.0.1:0\nsmtp:\n  host: mail\n  from: a@b.c\n  password: ${TRIPLINE_TEST_UNSET}\n  username: u\nmax_body: [1]\n").unwrap();
    let output = std::process::Command::new(support::binary())
        .args(["serve", "--config", path.to_str().unwrap()])
        .env_remove("TRIPLINE_TEST_UNSET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "{p}:5:13: environment variable `TRIPLINE_TEST_UNSET` is not set"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{p}:7:11: `max_body` must be a single value, found a list"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn embedded_defaults_write_mail_files_and_make_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/deploy.yaml"), DEPLOY_POLICY).unwrap();
    let server = TestServer::spawn(dir.path(), &["serve", "--listen", "127.0.0.1:0"], &[]);

    let key_file = dir.path().join("data/api-key");
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(key.len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!server.log().contains(&key), "the generated key was logged");

    let response = reqwest::Client::new()
        .post(server.url(&format!("/webhook/{key}")))
        .body("deploy to production failed")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let ledger = server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "sent"
        })
        .await;
    let delivery_id = ledger["notifications"][0]["id"].as_str().unwrap();
    let eml =
        std::fs::read_to_string(dir.path().join(format!("data/mail/{delivery_id}.eml"))).unwrap();
    assert!(
        eml.contains("Subject: [critical] deploy-failed from default\r\n"),
        "{eml}"
    );
    assert!(
        eml.contains("To: oncall@example.com, Lead <lead@example.com>\r\n"),
        "{eml}"
    );
    let body = support::smtp::decode_quoted_printable(eml.split_once("\r\n\r\n").unwrap().1);
    assert!(
        body.trim_end().ends_with(": deploy to production failed"),
        "{eml}"
    );
}

const STATUS_POLICY: &str = r#"
name: server-errors
extract:
  - kv: {}
conditions:
  - {field: status, ge: 500}
"#;

#[tokio::test]
async fn a_stored_event_explains_itself_with_the_policies_it_was_evaluated_with() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    ws.policy("status.yaml", STATUS_POLICY);
    let server = TestServer::start(&ws, &[]);
    let id = server.send("deploy failed status=404").await;

    let event = server.get_json(&format!("/api/events/{id}")).await;
    let explanation = &event["explanation"];
    assert_eq!(explanation["current"], true);
    assert_eq!(explanation["policies"][0]["policy"], "deploy-failed");
    assert_eq!(explanation["policies"][0]["result"], "matched");
    let status = &explanation["policies"][1];
    assert_eq!(status["result"], "failed");
    assert_eq!(status["condition"], "`status` ge 500");
    assert_eq!(status["actual"], "\"404\"");
    assert!(
        status["at"].as_str().unwrap().ends_with("status.yaml:6:5"),
        "{status}"
    );
    server.kill();

    // The policy changes; the old event is still explained by the old policy.
    ws.policy("status.yaml", &STATUS_POLICY.replace("ge: 500", "ge: 400"));
    let server = TestServer::start(&ws, &[]);
    let event = server.get_json(&format!("/api/events/{id}")).await;
    let explanation = &event["explanation"];
    assert_eq!(explanation["current"], false);
    assert_eq!(explanation["policies"][1]["result"], "failed");
    assert_eq!(explanation["policies"][1]["condition"], "`status` ge 500");
    let fresh = server.send("deploy failed status=404").await;
    let event = server.get_json(&format!("/api/events/{fresh}")).await;
    assert_eq!(
        event["matched"],
        serde_json::json!(["deploy-failed", "server-errors"])
    );
    assert_eq!(
        event["explanation"]["policies"][1]["fields"]["status"],
        "404"
    );
}
