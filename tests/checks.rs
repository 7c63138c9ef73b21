//! Notification settings as a policy author meets them: `tripline check` locates every
//! mistake, the log channel shadows a policy, and a template that fails when rendering
//! leaves a dead delivery with the reason instead of silence.

mod support;

use support::{TestServer, Workspace};

#[test]
fn check_locates_every_notification_mistake() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy(
        "bad.yaml",
        r#"name: bad
conditions: [{field: message, contains: x}]
resolve_after: soon
notify:
  - webhook: {url: 'ftp://example.com', secret: "${TRIPLINE_TEST_UNSET_SECRET}"}
  - slack: {url: 'https://hooks.example.com', txt: hi}
    group_by: [hots]
  - email: {to: oncall@example.com, subject: "{{ stauts }}"}
  - pagerduty: {routing_key: k, severity: loud}
  - webhook: {url: 'https://example.com', auth: {bearer: plain-token}}
"#,
    );
    ws.policy(
        "noclear.yaml",
        "name: noclear\nconditions: [{field: message, contains: x}]\nnotify:\n  - log: {}\n    on_clear: true\n",
    );
    let config = ws.path().join("tripline.yaml");
    let output = support::run(
        ws.path(),
        &["check", "--config", config.to_str().unwrap()],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let p = ws.path().join("policies/bad.yaml");
    let p = p.display();
    for want in [
        format!("{p}:3:16: `resolve_after` must be a duration such as `30s`, `5m`, `2h` or `1d`, found `soon`"),
        format!("{p}:5:20: `url` must be an `http://` or `https://` URL, found `ftp://example.com`"),
        format!("{p}:5:49: `secret`: environment variable `TRIPLINE_TEST_UNSET_SECRET` is not set"),
        format!("{p}:6:47: unknown key `txt` in `slack`; did you mean `text`?"),
        format!("{p}:7:16: `group_by` cannot use `hots`; use one of `source`, `title`, `category`, `message`, `content_type`, `header.NAME`, `query.NAME`, `tag.NAME`, or a field the policy extracts"),
        format!("{p}:8:46: `subject` uses `stauts`, which tripline does not provide; did you mean `status`?"),
        format!("{p}:9:43: `severity` must be one of `critical`, `error`, `warning`, `info`, found `loud`"),
        format!("{p}:10:58: `auth.bearer` must come from the environment; write `${{NAME}}` and set `NAME` when starting tripline"),
        format!("{}:5:15: `on_clear` has no effect: the policy has neither `clear:` conditions nor `resolve_after`", ws.path().join("policies/noclear.yaml").display()),
        "9 errors".to_string(),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
}

#[tokio::test]
async fn the_log_channel_shadows_a_policy_and_render_failures_are_dead() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy(
        "shadow.yaml",
        r#"name: shadow
conditions: [{field: message, contains: x}]
notify:
  - log: {message: "would page for {{ source }}", level: warn}
  - log: {message: "{{ message | int }}"}
"#,
    );
    let server = TestServer::start(&ws, &[]);

    server.send("x happened").await;

    let sent = server
        .wait_json("/api/notifications?status=sent", |j| {
            !j["notifications"].as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(sent["notifications"][0]["response"], "logged");
    assert_eq!(sent["notifications"][0]["channel"], "log");
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("would page for ci"))
        .unwrap_or_else(|| panic!("no log line in:\n{log}"));
    assert!(
        line.contains("WARN") && line.contains("policy=\"shadow\""),
        "{line}"
    );

    let dead = server.get_json("/api/notifications?status=dead").await;
    let error = dead["notifications"][0]["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("template failed to render: `message`"),
        "{error}"
    );
}
