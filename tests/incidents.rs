//! Incidents, mutes and the ledger through the real binary: renotify and group_by
//! across a restart, clear and on_clear with Slack and PagerDuty on a real HTTP
//! receiver, resolve_after, mute by API and command line, and ledger filters.

mod support;

use reqwest::Method;
use serde_json::json;
use support::http::{Receiver, Request};
use support::{TestServer, Workspace};

const FAST_RETRY: &str = "retry:\n  schedule: [100ms]\n  give_up_after: 1h\n";

fn disk_policy(receiver: &Receiver) -> String {
    format!(
        r#"
name: disk
category: critical
conditions: [{{field: message, contains: PROBLEM}}]
clear: [{{field: message, contains: RECOVERY}}]
notify:
  - pagerduty: {{routing_key: "${{PD_KEY}}", url: "{pd}"}}
    group_by: [header.x-host]
    renotify: never
  - slack:
      url: "{slack}"
      text: "{{{{ status }}}} {{{{ headers['x-host'] }}}}"
      blocks: '[{{"type": "section", "text": {{"type": "mrkdwn", "text": {{{{ policy | tojson }}}}}}}}]'
    group_by: [header.x-host]
    renotify: never
    on_clear: true
"#,
        pd = receiver.url("/pd"),
        slack = receiver.url("/slack")
    )
}

fn on(path: &str, requests: &[Request]) -> Vec<serde_json::Value> {
    requests
        .iter()
        .filter(|r| r.path == path)
        .map(Request::json)
        .collect()
}

async fn count(server: &TestServer, query: &str) -> usize {
    let json = server
        .get_json(&format!("/api/notifications?{query}"))
        .await;
    json["notifications"].as_array().unwrap().len()
}

#[tokio::test]
async fn incidents_renotify_group_and_clear_across_a_restart() {
    let receiver = Receiver::start();
    let ws = Workspace::new();
    ws.config(FAST_RETRY);
    ws.policy("disk.yaml", &disk_policy(&receiver));
    let env = [("PD_KEY", "pd-routing-key")];
    let server = TestServer::start(&ws, &env);
    let host = |h: &'static str| [("x-host", h)];

    server.send_with("PROBLEM disk full", &host("a")).await;
    receiver.wait_for(2);
    server.send_with("PROBLEM disk full", &host("a")).await;
    server.send_with("PROBLEM disk full", &host("b")).await;
    receiver.wait_for(4);
    assert_eq!(
        count(&server, "status=suppressed").await,
        2,
        "host a's repeat"
    );

    // A restart neither repeats nor forgets: host a is still open and quiet.
    server
        .wait_json("/api/notifications?status=sent", |j| {
            j["notifications"].as_array().unwrap().len() == 4
        })
        .await;
    server.kill();
    let server = TestServer::start(&ws, &env);
    server.send_with("PROBLEM disk full", &host("a")).await;
    assert_eq!(count(&server, "status=suppressed").await, 4);
    server.send_with("RECOVERY disk ok", &host("a")).await;
    receiver.wait_for(6);
    server.send_with("PROBLEM again", &host("a")).await;
    let requests = receiver.wait_for(8);

    let pd = on("/pd", &requests);
    let actions: Vec<(&str, &str)> = pd
        .iter()
        .map(|e| {
            (
                e["event_action"].as_str().unwrap(),
                e["dedup_key"].as_str().unwrap(),
            )
        })
        .collect();
    let mut sorted = actions.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("resolve", "tripline/disk/a"),
            ("trigger", "tripline/disk/a"),
            ("trigger", "tripline/disk/a"),
            ("trigger", "tripline/disk/b"),
        ]
    );
    assert_eq!(pd[0]["routing_key"], "pd-routing-key");
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    let mut slack_sorted: Vec<String> = on("/slack", &requests)
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    slack_sorted.sort();
    assert_eq!(
        slack_sorted,
        ["cleared a", "firing a", "firing a", "firing b"]
    );
    assert_eq!(
        on("/slack", &requests)[0]["blocks"][0]["text"]["text"],
        "disk"
    );

    let ledger = server
        .wait_json("/api/notifications?status=sent", |j| {
            j["notifications"].as_array().unwrap().len() == 8
        })
        .await;
    let cleared: Vec<_> = ledger["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["alert"] == "cleared")
        .collect();
    assert_eq!(cleared.len(), 2, "one clear per action");
    assert_eq!(count(&server, "policy=disk").await, 12);
    assert_eq!(count(&server, "policy=other").await, 0);
}

#[tokio::test]
async fn a_quiet_incident_resolves_after_its_time_and_notifies_the_clear() {
    let receiver = Receiver::start();
    let ws = Workspace::new();
    ws.config(FAST_RETRY);
    let policy = format!(
        "name: flappy\nconditions: [{{field: message, contains: down}}]\nresolve_after: 300ms\nnotify:\n  - webhook: {{url: '{}', body: '{{\"status\": {{{{ status | tojson }}}}}}'}}\n    on_clear: true\n    renotify: never\n",
        receiver.url("/hook")
    );
    ws.policy("flappy.yaml", &policy);
    let server = TestServer::start(&ws, &[]);

    server.send("service down").await;
    let requests = receiver.wait_for(2);
    let statuses: Vec<serde_json::Value> = requests.iter().map(Request::json).collect();
    assert_eq!(
        statuses,
        [json!({"status": "firing"}), json!({"status": "cleared"})]
    );
    // After the clear, the next event opens a new incident and notifies again.
    server.send("service down again").await;
    receiver.wait_for(3);
}

#[tokio::test]
async fn mute_by_api_and_command_line_records_muted_deliveries() {
    let receiver = Receiver::start();
    let ws = Workspace::new();
    let config = ws.config(FAST_RETRY);
    let config = config.to_str().unwrap();
    let policy = format!(
        "name: noisy\nconditions: [{{field: message, contains: x}}]\nnotify:\n  - webhook: {{url: '{}'}}\n",
        receiver.url("/hook")
    );
    ws.policy("noisy.yaml", &policy);
    let server = TestServer::start(&ws, &[]);

    let (status, body) = server
        .call(
            Method::POST,
            "/api/policies/noisy/mute",
            Some(json!({"for": "1h"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["muted_until"].as_str().unwrap().ends_with('Z'));
    let policies = server.get_json("/api/policies").await;
    assert_eq!(policies["policies"][0]["muted_until"], body["muted_until"]);
    let event_id = server.send("x while muted").await;
    let event = server.get_json(&format!("/api/events/{event_id}")).await;
    assert_eq!(
        event["matched"],
        json!(["noisy"]),
        "the event is still recorded"
    );
    assert_eq!(event["deliveries"][0]["status"], "muted");

    let (status, _) = server
        .call(Method::DELETE, "/api/policies/noisy/mute", None)
        .await;
    assert_eq!(status, 200);
    server.send("x unmuted").await;
    receiver.wait_for(1);

    let output = support::run(
        ws.path(),
        &["mute", "--config", config, "noisy", "--for", "2h"],
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("muted `noisy` until "));
    server.send("x muted from the shell").await;
    assert_eq!(count(&server, "status=muted").await, 2);
    let output = support::run(
        ws.path(),
        &["mute", "--config", config, "noisy", "--off"],
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    server.send("x heard again").await;
    receiver.wait_for(2);
    assert_eq!(receiver.received().len(), 2, "nothing muted was sent");

    let cases = [
        (
            "/api/policies/nosy/mute",
            json!({"for": "1h"}),
            404,
            "did you mean `noisy`?",
        ),
        (
            "/api/policies/noisy/mute",
            json!({"for": "soon"}),
            400,
            "`soon` is not a duration",
        ),
    ];
    for (path, body, want, text) in cases {
        let (status, answer) = server.call(Method::POST, path, Some(body)).await;
        assert_eq!(status, want, "{path}");
        assert!(answer["error"].as_str().unwrap().contains(text), "{answer}");
    }
    let output = support::run(
        ws.path(),
        &["mute", "--config", config, "nosy", "--for", "1h"],
        &[],
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("did you mean `noisy`?"));
    let (status, answer) = server
        .call(Method::GET, "/api/notifications?status=lost", None)
        .await;
    assert_eq!(status, 400);
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .starts_with("`status` must be one of `pending`"));
}

#[tokio::test]
async fn incidents_survive_a_reload_of_a_policy_whose_name_is_unchanged() {
    let receiver = Receiver::start();
    let ws = Workspace::new();
    ws.config(FAST_RETRY);
    let policy = |description: &str| {
        format!(
            "name: disk\ndescription: {description}\nextract: [{{kv: {{keys: [host]}}}}]\nconditions: [{{field: message, contains: PROBLEM}}]\nnotify:\n  - slack: {{url: \"{}\"}}\n    group_by: [host]\n    renotify: never\n",
            receiver.url("/slack")
        )
    };
    ws.policy("disk.yaml", &policy("before"));
    let server = TestServer::start(&ws, &[]);

    server.send("PROBLEM disk full host=db-1").await;
    receiver.wait_for(1);

    ws.policy("disk.yaml", &policy("after the reload"));
    let response = reqwest::Client::new()
        .post(server.url("/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let policies = server.get_json("/api/policies").await;
    assert_eq!(policies["policies"][0]["description"], "after the reload");

    // Same incident (host db-1): suppressed. A new group key (db-2): sent.
    server.send("PROBLEM disk full host=db-1").await;
    server.send("PROBLEM disk full host=db-2").await;
    receiver.wait_for(2);
    server
        .wait_json("/api/notifications?status=suppressed", |j| {
            j["notifications"].as_array().unwrap().len() == 1
        })
        .await;
    let sent = on("/slack", &receiver.wait_for(2));
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].to_string().contains("disk"), "{}", sent[1]);
}
