//! Delivery through the real binary to real servers on loopback: an SMTP server that
//! answers 451 or 550, an HTTP receiver that answers 500, 429 or slowly, and retries
//! by schedule, by API and from the command line.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::http::{verify_signature, Receiver, Reply};
use support::smtp::{SmtpServer, Stage};
use support::{TestServer, Workspace};

/// Retries within a fraction of a second, so tests need no long sleeps.
const FAST_RETRY: &str = "retry:\n  schedule: [100ms, 200ms]\n  give_up_after: 1h\n";

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn smtp_plain(port: u16) -> String {
    format!("smtp:\n  host: 127.0.0.1\n  port: {port}\n  tls: none\n  from: alerts@example.com\n{FAST_RETRY}")
}

const EMAIL_POLICY: &str = r#"
name: deploy-failed
conditions: [{field: message, contains: deploy}]
notify:
  - email:
      to: [oncall@example.com, "{{ headers['x-owner'] }}"]
      cc: lead@example.com
      bcc: [audit@example.com]
      reply_to: desk@example.com
      subject: "{{ policy }} {{ status }}"
      body: "text: {{ message }}"
      html: "<p>{{ message }}</p>"
      headers: {X-Tripline-Policy: "{{ policy }}"}
"#;

fn ledger_item(json: &serde_json::Value) -> serde_json::Value {
    json["notifications"][0].clone()
}

#[tokio::test]
async fn smtp_451_is_retried_and_the_email_carries_every_part() {
    let smtp = SmtpServer::plain();
    smtp.script(&[(Stage::DataEnd, 451, "4.3.0 mailbox busy, try later")]);
    let ws = Workspace::new();
    ws.config(&smtp_plain(smtp.port));
    ws.policy("deploy.yaml", EMAIL_POLICY);
    let server = TestServer::start(&ws, &[]);

    server
        .send_with("deploy failed", &[("x-owner", "Owner <owner@example.com>")])
        .await;

    let ledger = server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "sent"
        })
        .await;
    let d = ledger_item(&ledger);
    assert_eq!(d["attempts"], 2);
    assert_eq!(
        d["last_error"],
        "transient error (451): 4.3.0 mailbox busy, try later"
    );
    assert!(d["response"].as_str().unwrap().starts_with("250"), "{d}");
    assert_eq!(
        d["recipient"],
        "oncall@example.com, Owner <owner@example.com>, lead@example.com"
    );

    let mail = smtp.received();
    assert_eq!(mail.len(), 1, "the refused attempt left no message");
    let mail = &mail[0];
    let mut to = mail.to.clone();
    to.sort();
    assert_eq!(
        to,
        [
            "audit@example.com",
            "lead@example.com",
            "oncall@example.com",
            "owner@example.com"
        ]
    );
    let id = d["id"].as_str().unwrap();
    assert_eq!(
        mail.header("Message-ID").unwrap(),
        format!("<{id}@tripline>")
    );
    assert_eq!(mail.header("Cc").unwrap(), "lead@example.com");
    assert_eq!(mail.header("Reply-To").unwrap(), "desk@example.com");
    assert_eq!(mail.header("X-Tripline-Policy").unwrap(), "deploy-failed");
    assert_eq!(mail.header("Subject").unwrap(), "deploy-failed firing");
    assert!(mail.header("Bcc").is_none(), "Bcc must not be visible");
    assert!(mail
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    let body = mail.body();
    assert!(
        body.contains("text: deploy failed") && body.contains("<p>deploy failed</p>"),
        "{body}"
    );
}

#[tokio::test]
async fn smtp_550_is_dead_and_retried_by_api_and_command_line() {
    let smtp = SmtpServer::plain();
    let refusal = (Stage::Rcpt, 550, "5.1.1 no such user");
    smtp.script(&[refusal, refusal]);
    let ws = Workspace::new();
    let config = ws.config(&smtp_plain(smtp.port));
    ws.policy("deploy.yaml", EMAIL_POLICY);
    let server = TestServer::start(&ws, &[]);
    let owner = [("x-owner", "owner@example.com")];

    server.send_with("deploy one", &owner).await;
    server.send_with("deploy two", &owner).await;
    let dead = server
        .wait_json("/api/notifications?status=dead", |j| {
            j["notifications"].as_array().unwrap().len() == 2
        })
        .await;
    for d in dead["notifications"].as_array().unwrap() {
        assert_eq!(d["attempts"], 1, "a permanent failure is not retried: {d}");
        assert_eq!(d["last_error"], "permanent error (550): 5.1.1 no such user");
        assert_eq!(d["next_attempt_at"], serde_json::Value::Null);
    }
    let ids: Vec<String> = dead["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();

    // The operator fixes the mailbox, then retries one over HTTP, one from the shell.
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/notifications/{}/retry", ids[0]),
            None,
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (202, Some("pending")));
    let output = support::run(
        ws.path(),
        &[
            "notifications",
            "retry",
            "--config",
            config.to_str().unwrap(),
            &ids[1],
        ],
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("queued `{}`", ids[1])));

    let sent = server
        .wait_json("/api/notifications?status=sent", |j| {
            j["notifications"].as_array().unwrap().len() == 2
        })
        .await;
    for d in sent["notifications"].as_array().unwrap() {
        assert_eq!(d["attempts"], 2, "{d}");
    }
    let mut message_ids: Vec<String> = smtp
        .wait_for(2)
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    message_ids.sort();
    let mut want: Vec<String> = ids.iter().map(|id| format!("<{id}@tripline>")).collect();
    want.sort();
    assert_eq!(message_ids, want);

    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/notifications/{}/retry", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("`sent`"), "{body}");
    let (status, _) = server
        .call(Method::POST, "/api/notifications/nope/retry", None)
        .await;
    assert_eq!(status, 404);
    let output = support::run(
        ws.path(),
        &[
            "notifications",
            "retry",
            "--config",
            config.to_str().unwrap(),
            "nope",
        ],
        &[],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no notification has the id `nope`"));
}

fn webhook_policy(receiver: &Receiver, extra: &str) -> String {
    format!(
        r#"
name: hook
category: critical
conditions: [{{field: message, contains: fail}}]
notify:
  - webhook:
      url: {}
      secret: "${{HOOK_SECRET}}"
      auth: {{bearer: "${{HOOK_TOKEN}}"}}
      headers: {{X-Team: ops}}
{extra}"#,
        receiver.url("/hook")
    )
}

#[tokio::test]
async fn a_webhook_is_signed_and_retried_after_500_and_429_with_retry_after() {
    let receiver = Receiver::start();
    let mut too_many = Reply::status(429, "slow down");
    too_many.headers.push(("retry-after", "1".to_string()));
    receiver.script(vec![Reply::status(500, "database down"), too_many]);
    let ws = Workspace::new();
    ws.config(FAST_RETRY);
    ws.policy("hook.yaml", &webhook_policy(&receiver, ""));
    let env = [("HOOK_SECRET", SECRET), ("HOOK_TOKEN", "t0ken")];
    let server = TestServer::start(&ws, &env);

    let event_id = server.send("job failed").await;

    let requests = receiver.wait_for(3);
    let ledger = server
        .wait_json("/api/notifications", |j| {
            j["notifications"][0]["status"] == "sent"
        })
        .await;
    let d = ledger_item(&ledger);
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["last_error"], "HTTP 429 Too Many Requests: slow down");
    assert_eq!(d["response"], "HTTP 200 OK: ok");
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.header("webhook-id").unwrap(),
            d["id"].as_str().unwrap(),
            "the same id on every attempt"
        );
        verify_signature(request, SECRET).unwrap();
        assert_eq!(request.header("authorization").unwrap(), "Bearer t0ken");
        assert_eq!(request.header("x-team").unwrap(), "ops");
    }
    assert!(
        verify_signature(&requests[0], "whsec_c2VjcmV0").is_err(),
        "a wrong secret must not verify"
    );
    assert!(
        requests[2].at - requests[1].at >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    let body = requests[0].json();
    assert_eq!(body["type"], "tripline.alert.firing");
    assert_eq!(body["data"]["policy"], "hook");
    assert_eq!(body["data"]["event_id"], event_id.as_str());
    assert_eq!(body["data"]["status"], "firing");
    assert!(!server.log().contains("t0ken"), "a secret was logged");
    let stored = server
        .get_json(&format!("/api/notifications/{}", d["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        stored["message"]["secret"], "${HOOK_SECRET}",
        "secrets are stored as references"
    );
}

#[tokio::test]
async fn a_4xx_is_permanent_and_a_slow_receiver_is_retried() {
    let gone = Receiver::start();
    gone.script(vec![Reply::status(404, "no such hook")]);
    let slow = Receiver::start();
    let mut late = Reply::status(200, "late");
    late.delay = Duration::from_secs(2);
    slow.script(vec![late]);
    let ws = Workspace::new();
    ws.config(FAST_RETRY);
    let policy = format!(
        "name: two\nconditions: [{{field: message, contains: x}}]\nnotify:\n  - webhook: {{url: '{}', method: PUT, body: '{{{{ {{\"m\": message}} | tojson }}}}'}}\n  - webhook: {{url: '{}', timeout: 300ms}}\n",
        gone.url("/gone"),
        slow.url("/slow")
    );
    ws.policy("two.yaml", &policy);
    let server = TestServer::start(&ws, &[]);

    server.send("x marks").await;

    let dead = server
        .wait_json("/api/notifications?status=dead", |j| {
            !j["notifications"].as_array().unwrap().is_empty()
        })
        .await;
    let d = ledger_item(&dead);
    assert_eq!(
        (d["attempts"].as_u64(), d["action"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(d["last_error"], "HTTP 404 Not Found: no such hook");
    let request = &gone.received()[0];
    assert_eq!(
        (request.method.as_str(), request.json()),
        ("PUT", json!({"m": "x marks"}))
    );

    let sent = server
        .wait_json("/api/notifications?status=sent", |j| {
            !j["notifications"].as_array().unwrap().is_empty()
        })
        .await;
    let d = ledger_item(&sent);
    assert_eq!(d["action"], 1);
    assert_eq!(d["last_error"], "no answer within 300ms");
    assert!(d["attempts"].as_u64().unwrap() >= 2, "{d}");
}
