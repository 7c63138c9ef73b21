//! Structured ingest and the Event Explorer API through the real binary: batches in,
//! filters, cursor pages, one event's explanation, deletion by policy, retention.

mod support;

use serde_json::{json, Value};
use support::{TestServer, Workspace, KEY};

const DISK_POLICY: &str = r#"
name: disk-critical
category: critical
conditions:
  - {field: category, equals: critical}
  - {field: message, contains: disk}
notify:
  - email:
      to: [oncall@example.com]
      subject: "{{ title }}"
"#;

const NOISY_POLICY: &str = r#"
name: noisy
conditions:
  - {field: message, contains: heartbeat}
"#;

async fn post_events(server: &TestServer, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/ingest/events/{KEY}")))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn start() -> (Workspace, TestServer) {
    let ws = Workspace::new();
    ws.config("");
    ws.policy("disk.yaml", DISK_POLICY);
    ws.policy("noisy.yaml", NOISY_POLICY);
    let server = TestServer::start(&ws, &[]);
    (ws, server)
}

fn titles(list: &Value) -> Vec<String> {
    list["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_batch_is_stored_with_categories_tags_and_matches() {
    let (_ws, server) = start();
    let batch = json!([
        {"source": "web-1", "title": "Disk full", "type": "Alert", "timestamp": 1_700_000_000_000_i64,
         "tags": [{"name": "env", "value": "prod"}], "data": {"level": "Critical", "message": "disk /var at 99%"}},
        {"title": "Backup done", "timestamp": "2023-11-14T22:13:21Z", "data": {"level": "OK", "message": "nightly"}},
        {"title": "Heartbeat", "type": "WARNING", "data": {"message": "heartbeat"}}
    ]);
    let (status, body) = post_events(&server, &batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 3);
    let ids = body["event_ids"].as_array().unwrap();

    let disk = server
        .get_json(&format!("/api/events/{}", ids[0].as_str().unwrap()))
        .await;
    assert_eq!(disk["category"], "critical");
    assert_eq!(
        disk["source"], "ci",
        "the source is the API key's, not the sender's claim"
    );
    assert_eq!(disk["received_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(
        disk["tags"],
        json!([{"name": "env", "value": "prod"}, {"name": "source", "value": "web-1"}, {"name": "type", "value": "Alert"}])
    );
    assert_eq!(disk["matched"], json!(["disk-critical"]));
    assert_eq!(disk["deliveries"][0]["subject"], "Disk full");
    let backup = server
        .get_json(&format!("/api/events/{}", ids[1].as_str().unwrap()))
        .await;
    assert_eq!(backup["category"], "info");
    let heartbeat = server
        .get_json(&format!("/api/events/{}", ids[2].as_str().unwrap()))
        .await;
    assert_eq!(
        (heartbeat["category"].as_str(), heartbeat["matched"].clone()),
        (Some("warning"), json!(["noisy"]))
    );
}

#[tokio::test]
async fn a_batch_with_one_bad_element_stores_nothing_and_names_each_mistake() {
    let (_ws, server) = start();
    let batch = json!([
        {"title": "fine", "data": {"level": "INFO"}},
        {"title": "bad level", "data": {"level": "purple"}},
        {"titel": "typo"}
    ]);
    let (status, body) = post_events(&server, &batch).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "3 mistakes in the batch; nothing was stored");
    assert_eq!(
        body["errors"],
        json!([
            {"index": 1, "field": "data.level", "error": "unknown level `purple`; use INFO, WARNING or CRITICAL (see the docs for other names)"},
            {"index": 2, "field": "titel", "error": "unknown key `titel`; did you mean `title`?"},
            {"index": 2, "field": "title", "error": "`title` is required"},
        ])
    );
    let events = server.get_json("/api/events").await;
    assert_eq!(events["events"], json!([]));
}

#[tokio::test]
async fn events_are_filtered_and_paged_newest_first() {
    let (_ws, server) = start();
    let mut batch = Vec::new();
    for n in 0..7 {
        let level = if n % 2 == 0 { "CRITICAL" } else { "INFO" };
        let env = if n < 3 { "prod" } else { "dev" };
        batch.push(json!({
            "title": format!("event {n}"),
            "timestamp": 1_700_000_000_000_i64 + n * 60_000,
            "tags": [{"name": "env", "value": env}],
            "data": {"level": level, "message": if n == 4 { "disk full" } else { "heartbeat" }},
        }));
    }
    let (status, _) = post_events(&server, &Value::Array(batch)).await;
    assert_eq!(status, 202);
    server.send("a plain webhook about the disk").await;

    let cases = [
        (
            "/api/events?category=critical&tag=env%3Dprod",
            vec!["event 2", "event 0"],
        ),
        ("/api/events?policy=disk-critical", vec!["event 4"]),
        ("/api/events?text=DISK", vec!["", "event 4"]),
        (
            "/api/events?tag=env&since=2023-11-14T22:16:20Z&until=2023-11-14T22:18:20Z",
            vec!["event 4", "event 3"],
        ),
        ("/api/events?source=nagios", vec![]),
        ("/api/events?since=1h", vec![""]),
    ];
    for (path, want) in cases {
        let got = titles(&server.get_json(path).await);
        assert_eq!(got, want, "{path}");
    }

    let mut seen = Vec::new();
    let mut path = "/api/events?tag=env&limit=3".to_string();
    loop {
        let page = server.get_json(&path).await;
        seen.extend(titles(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/events?tag=env&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let want: Vec<String> = (0..7).rev().map(|n| format!("event {n}")).collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn an_event_explains_every_policy_and_a_noisy_policy_can_be_deleted() {
    let (_ws, server) = start();
    let quiet = server.send("heartbeat from web-1").await;
    server.send("heartbeat from web-2").await;
    let kept = server.send("deploy finished").await;

    let detail = server.get_json(&format!("/api/events/{quiet}")).await;
    let explanation = detail["explanation"]["policies"].as_array().unwrap();
    let disk = explanation
        .iter()
        .find(|x| x["policy"] == "disk-critical")
        .unwrap();
    assert_eq!(disk["result"], "failed");
    assert_eq!(disk["condition"], "`category` equals `critical`");
    assert_eq!(disk["actual"], "\"info\"");
    assert!(
        disk["at"].as_str().unwrap().ends_with("disk.yaml:5:5"),
        "{disk}"
    );
    let noisy = explanation.iter().find(|x| x["policy"] == "noisy").unwrap();
    assert_eq!(noisy["result"], "matched");

    let client = reqwest::Client::new();
    let response = client
        .delete(server.url("/api/events?policy=noisy"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"deleted": 2, "policy": "noisy"}));
    let left: Vec<Value> = server.get_json("/api/events").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(left, [json!(kept)]);
    let missing = reqwest::get(server.url(&format!("/api/events/{quiet}")))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let response = client
        .delete(server.url("/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"],
        "give `policy=NAME`: the events that policy matched are deleted"
    );
}

#[tokio::test]
async fn retention_removes_the_oldest_events_in_the_background() {
    let ws = Workspace::new();
    ws.config("retention: {max_events: 2, max_age: 30d, interval: 200ms}\n");
    let server = TestServer::start(&ws, &[]);
    let old = json!([{"title": "ancient", "timestamp": "2001-01-01T00:00:00Z"}]);
    assert_eq!(post_events(&server, &old).await.0, 202);
    for n in 0..3 {
        server.send(&format!("message {n}")).await;
    }
    let events = server
        .wait_json("/api/events", |j| {
            j["events"].as_array().unwrap().len() == 2
        })
        .await;
    let messages: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["message 2", "message 1"]);
    server.wait_log("retention removed old events");
}
