//! Operations through the real binary: health, readiness, Prometheus metrics, log format
//! and level, graceful shutdown, and policy reload by API, SIGHUP and directory watch.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;
use support::{TestServer, Workspace, KEY};

const DEPLOY: &str = "name: deploy\nconditions:\n  - {field: message, contains: deploy}\n";
const BROKEN: &str = "name: broken\nconditions:\n  - {field: message, contans: x}\n";

fn policy_names(json: &Value) -> Vec<String> {
    json["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy("deploy.yaml", DEPLOY);
    let server = TestServer::start(&ws, &[]);
    server.send("deploy failed").await;
    let refused = reqwest::Client::new()
        .post(server.url("/webhook/not-a-key-at-all-0000"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let healthy = reqwest::get(server.url("/-/healthy")).await.unwrap();
    assert_eq!(
        (healthy.status().as_u16(), healthy.text().await.unwrap()),
        (200, "ok\n".into())
    );
    let ready = server.get_json("/-/ready").await;
    assert_eq!(
        ready,
        serde_json::json!({"ready": true, "store": "ok", "policies": 1})
    );

    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    for line in [
        r#"tripline_webhooks_total{source="ci",outcome="accepted"} 1"#,
        r#"tripline_webhooks_total{source="unknown",outcome="unknown_key"} 1"#,
        r#"tripline_policy_matches_total{policy="deploy"} 1"#,
        r#"tripline_reloads_total{outcome="success"} 1"#,
        "tripline_policies_loaded 1",
        "tripline_outbox_depth 0",
        "tripline_events_stored 1",
        "# TYPE tripline_http_request_duration_seconds histogram",
        r#"tripline_http_request_duration_seconds_count{route="/webhook/{api_id}"} 2"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    assert!(
        text.contains("tripline_reload_last_success_timestamp_seconds "),
        "{text}"
    );
    assert!(!text.contains("not-a-key"), "a raw path reached a label");
}

#[tokio::test]
async fn json_logs_and_log_level_come_from_the_configuration() {
    let ws = Workspace::new();
    ws.config("log_format: json\nlog_level: warn,tripline=info\n");
    let server = TestServer::start(&ws, &[("RUST_LOG", "")]);
    server.send("hello").await;
    reqwest::Client::new()
        .post(server.url("/webhook/wrong-key-0000000000000"))
        .send()
        .await
        .unwrap();
    server.wait_log("request refused");
    let log = server.log();
    for line in log.lines() {
        let json: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            json["level"].is_string() && json["fields"]["message"].is_string(),
            "{line}"
        );
    }
    assert!(log.contains(r#""outcome":"unknown_key""#), "{log}");
    assert!(
        !log.contains("DEBUG"),
        "debug lines were written below the configured level: {log}"
    );
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits() {
    let ws = Workspace::new();
    ws.config("");
    let mut server = TestServer::start(&ws, &[]);
    let body = "sent in two halves";
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    let head = format!(
        "POST /webhook/{KEY} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    server.signal("TERM");
    server.wait_log("shutting down");
    // New connections are refused while the old one finishes.
    assert!(
        std::net::TcpStream::connect(server.addr()).is_err(),
        "still accepting"
    );
    stream.write_all(&body.as_bytes()[5..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert_eq!(
        server.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        server.log()
    );
    assert!(server.log().contains("stopped"));

    // The event finished in flight was committed.
    let server = TestServer::start(&ws, &[]);
    let events = server.get_json("/api/events").await;
    assert_eq!(events["events"][0]["message"], body);
}

#[tokio::test]
async fn reload_by_api_keeps_the_running_set_when_a_file_is_bad() {
    let ws = Workspace::new();
    ws.config("watch: false\n");
    ws.policy("deploy.yaml", DEPLOY);
    let server = TestServer::start(&ws, &[]);
    let client = reqwest::Client::new();

    ws.policy("broken.yaml", BROKEN);
    let response = client.post(server.url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"],
        "the policies have errors; the previous policies keep running"
    );
    let first = body["errors"][0].as_str().unwrap();
    assert!(
        first.ends_with(
            "broken.yaml:3:34: unknown key `contans` in a condition; did you mean `contains`?"
        ) || first.contains("broken.yaml:3:"),
        "{body}"
    );
    let policies = server.get_json("/api/policies").await;
    assert_eq!(policy_names(&policies), ["deploy"]);
    assert!(
        policies["reload"]["last_error"]
            .as_str()
            .unwrap()
            .contains("broken.yaml:3:"),
        "{policies}"
    );
    assert!(server.log().contains("policy reload failed"));
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tripline_reloads_total{outcome="failure"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("tripline_reload_failed 1"), "{metrics}");
    // The running set still matches.
    let id = server.send("deploy failed").await;
    assert_eq!(
        server.get_json(&format!("/api/events/{id}")).await["matched"],
        serde_json::json!(["deploy"])
    );

    ws.policy(
        "broken.yaml",
        &BROKEN
            .replace("contans", "contains")
            .replace("broken", "fixed"),
    );
    let response = client.post(server.url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"reloaded": true, "policies": 2}));
    let policies = server.get_json("/api/policies").await;
    assert_eq!(policies["reload"]["last_error"], Value::Null);
}

#[tokio::test]
async fn sighup_and_the_directory_watch_reload_the_policies() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy("deploy.yaml", DEPLOY);
    let server = TestServer::start(&ws, &[]);

    ws.policy(
        "second.yaml",
        &DEPLOY.replace("name: deploy", "name: second"),
    );
    let policies = server
        .wait_json("/api/policies", |j| {
            j["policies"].as_array().unwrap().len() == 2
        })
        .await;
    assert_eq!(policies["reload"]["trigger"], "watch");

    // A file added and fixed within the debounce window is loaded once, fixed.
    ws.policy("third.yaml", BROKEN);
    ws.policy("third.yaml", &DEPLOY.replace("name: deploy", "name: third"));
    server
        .wait_json("/api/policies", |j| {
            j["policies"].as_array().unwrap().len() == 3
        })
        .await;

    std::fs::remove_file(ws.path().join("policies/third.yaml")).unwrap();
    server.signal("HUP");
    let policies = server
        .wait_json("/api/policies", |j| {
            j["policies"].as_array().unwrap().len() == 2
        })
        .await;
    assert!(["signal", "watch"].contains(&policies["reload"]["trigger"].as_str().unwrap()));
    assert!(
        !server.log().contains("policy reload failed"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn sighup_alone_reloads_when_the_watch_is_off() {
    let ws = Workspace::new();
    ws.config("watch: false\n");
    ws.policy("deploy.yaml", DEPLOY);
    let server = TestServer::start(&ws, &[]);
    ws.policy(
        "second.yaml",
        &DEPLOY.replace("name: deploy", "name: second"),
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        policy_names(&server.get_json("/api/policies").await),
        ["deploy"],
        "the watch ran while off"
    );
    server.signal("HUP");
    let policies = server
        .wait_json("/api/policies", |j| {
            j["policies"].as_array().unwrap().len() == 2
        })
        .await;
    assert_eq!(policies["reload"]["trigger"], "signal");
}
