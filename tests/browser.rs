//! The web page in a real headless Chromium: a person loads the Event Explorer, filters
//! it, opens an event and reads why each policy did or did not match, then looks at
//! the loaded policies.

mod support;

use serde_json::json;
use support::browser::Browser;
use support::{TestServer, Workspace, KEY};

const DISK_POLICY: &str = r#"
name: disk-critical
category: critical
conditions:
  - {field: message, contains: disk}
notify:
  - email:
      to: [oncall@example.com]
      subject: "disk trouble"
"#;

const DEPLOY_POLICY: &str =
    "name: deploy-failed\nconditions:\n  - {field: message, contains: deploy}\n";

#[tokio::test]
async fn a_person_filters_events_and_opens_one_in_the_browser() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy("disk.yaml", DISK_POLICY);
    ws.policy("deploy.yaml", DEPLOY_POLICY);
    let server = TestServer::start(&ws, &[]);
    let batch = json!([
        {"title": "Disk full on web-1", "tags": [{"name": "env", "value": "prod"}],
         "data": {"level": "CRITICAL", "message": "disk /var at 99% <script>alert(1)</script>"}},
        {"title": "Backup finished", "data": {"level": "OK", "message": "nightly backup"}}
    ]);
    let response = reqwest::Client::new()
        .post(server.url(&format!("/ingest/events/{KEY}")))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    server.send("deploy of api succeeded").await;

    let browser = Browser::start().await;
    browser.goto(&server.url("/")).await;
    assert_eq!(browser.title().await, "Events · tripline");
    assert_eq!(browser.find_all("tr.event").await.len(), 3);

    // Filter by text, as a person types it into the form.
    let text = browser.find("#f-text").await;
    browser.type_into(&text, "disk").await;
    let apply = browser.find("#apply").await;
    browser.click(&apply).await;
    browser.wait_for_url("text=disk").await;
    let rows = browser.find_all("tr.event").await;
    assert_eq!(rows.len(), 1);
    let row = browser.text(&rows[0]).await;
    assert!(
        row.contains("Disk full on web-1")
            && row.contains("critical")
            && row.contains("disk-critical"),
        "{row}"
    );

    // A filter that matches nothing says so.
    browser.goto(&server.url("/?text=disk&category=info")).await;
    assert_eq!(
        browser.text_of("#no-events").await,
        "No events match these filters."
    );
    browser.goto(&server.url("/?text=disk")).await;

    // Open the event.
    let link = browser.find("tr.event td.message a").await;
    browser.click(&link).await;
    browser.wait_for_url("/events/").await;
    assert_eq!(browser.title().await, "Event · tripline");
    assert_eq!(browser.text_of("#title").await, "Disk full on web-1");
    assert_eq!(
        browser.text_of("#message").await,
        "disk /var at 99% <script>alert(1)</script>",
        "the sender's markup must show as text"
    );
    assert!(browser.text_of("#tags").await.contains("env=prod"));
    let explanation = browser.text_of("#explanation").await;
    assert!(
        explanation.contains("disk-critical matched"),
        "{explanation}"
    );
    assert!(
        explanation.contains("deploy-failed did not match")
            && explanation.contains("deploy.yaml:3:5: `message` contains `deploy` failed")
            && explanation.contains("the value was \"disk /var at 99% <script>alert(1)</script>\""),
        "{explanation}"
    );
    let deliveries = browser.text_of("#deliveries").await;
    assert!(
        deliveries.contains("disk-critical email oncall@example.com"),
        "{deliveries}"
    );

    if let Ok(dir) = std::env::var("TRIPLINE_SCREENSHOTS") {
        browser
            .screenshot(&std::path::Path::new(&dir).join("event.png"))
            .await;
    }

    // The loaded policies, with a link to what each matched.
    browser.goto(&server.url("/policies")).await;
    let policies = browser.text_of("#policies").await;
    assert!(
        policies.contains("deploy-failed") && policies.contains("disk-critical"),
        "{policies}"
    );
    let links = browser.find_all("#policies a").await;
    browser.click(&links[0]).await;
    browser.wait_for_url("policy=").await;
    let rows = browser.find_all("tr.event").await;
    assert_eq!(rows.len(), 1, "one event matched each policy");
    if let Ok(dir) = std::env::var("TRIPLINE_SCREENSHOTS") {
        browser
            .screenshot(&std::path::Path::new(&dir).join("list.png"))
            .await;
    }
}
