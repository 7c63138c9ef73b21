//! Ingest security through the real binary: signature presets fail closed, keys from a
//! file, idempotent redelivery, per-source rate limits, and no secret in the log.

mod support;

use base64::Engine as _;
use reqwest::header::HeaderMap;
use serde_json::Value;
use support::{TestServer, Workspace};
use tripline::verify::{sign_hex, Algorithm};

const GH_KEY: &str = "github-key-0123456789abcdef";
const ST_KEY: &str = "stripe-key-0123456789abcdef";
const SL_KEY: &str = "slack-key-0123456789abcdef";
const SW_KEY: &str = "stdhook-key-0123456789abcdef";
const HM_KEY: &str = "hmac-key-0123456789abcdef";
const SECRET: &str = "whisper-0123456789";

fn config(ws: &Workspace) {
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SECRET)
    );
    ws.config(&format!(
        r#"  - name: github
    api_key: {GH_KEY}
    verify: {{github: {{secret: '${{GH_SECRET}}'}}}}
  - name: stripe
    api_key: {ST_KEY}
    verify: {{stripe: {{secret: {SECRET}, tolerance: 5m}}}}
  - name: slack
    api_key: {SL_KEY}
    verify: {{slack: {{secret: {SECRET}}}}}
  - name: stdhook
    api_key: {SW_KEY}
    verify: {{standard_webhooks: {{secret: {whsec}}}}}
  - name: custom
    api_key: {HM_KEY}
    verify: {{hmac: {{secret: {SECRET}, header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512="}}}}
"#
    ));
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sig(parts: &[&[u8]]) -> String {
    sign_hex(Algorithm::Sha256, SECRET.as_bytes(), parts)
}

fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    map
}

async fn post(server: &TestServer, key: &str, headers: HeaderMap, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/webhook/{key}")))
        .headers(headers)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn each_signature_preset_accepts_signed_requests_and_refuses_the_rest() {
    let ws = Workspace::new();
    config(&ws);
    let server = TestServer::start(&ws, &[("GH_SECRET", SECRET)]);
    let body = r#"{"action":"completed"}"#;
    let b = body.as_bytes();
    let (ts, stale) = (now().to_string(), (now() - 600).to_string());
    let b64 = |hex: String| {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let sha512 = b64(sign_hex(Algorithm::Sha512, SECRET.as_bytes(), &[b]));
    let std_sig = b64(sig(&[b"msg_1.", ts.as_bytes(), b".", b]));

    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (GH_KEY, vec![("x-hub-signature-256", format!("sha256={}", sig(&[b])))], 202, ""),
        (GH_KEY, vec![], 401, "missing the `X-Hub-Signature-256` header; this source requires signed requests"),
        (GH_KEY, vec![("x-hub-signature-256", format!("sha256={}", sig(&[b"other"])))], 401, "the signature does not match the body; check the signing secret"),
        (ST_KEY, vec![("stripe-signature", format!("t={ts},v1={}", sig(&[ts.as_bytes(), b".", b])))], 202, ""),
        (ST_KEY, vec![("stripe-signature", format!("t={stale},v1={}", sig(&[stale.as_bytes(), b".", b])))], 401, "the signed timestamp is more than 300 seconds from now; the request is stale or replayed"),
        (SL_KEY, vec![("x-slack-request-timestamp", ts.clone()), ("x-slack-signature", format!("v0={}", sig(&[b"v0:", ts.as_bytes(), b":", b])))], 202, ""),
        (SL_KEY, vec![("x-slack-request-timestamp", stale.clone()), ("x-slack-signature", format!("v0={}", sig(&[b"v0:", stale.as_bytes(), b":", b])))], 401, "stale or replayed"),
        (SW_KEY, vec![("webhook-id", "msg_1".into()), ("webhook-timestamp", ts.clone()), ("webhook-signature", format!("v1,{std_sig}"))], 202, ""),
        (SW_KEY, vec![("webhook-id", "msg_2".into()), ("webhook-timestamp", ts.clone()), ("webhook-signature", format!("v1,{std_sig}"))], 401, "does not match"),
        (HM_KEY, vec![("x-signature", format!("sha512={sha512}"))], 202, ""),
        (HM_KEY, vec![("x-signature", sha512.clone())], 401, "the `x-signature` header is malformed"),
    ];
    let mut accepted = 0;
    for (i, (key, pairs, status, error)) in cases.into_iter().enumerate() {
        let (got, json) = post(&server, key, headers(&pairs), body).await;
        assert_eq!(got, status, "case {i}: {json}");
        if status == 202 {
            accepted += 1;
        } else {
            assert!(
                json["error"].as_str().unwrap().contains(error),
                "case {i}: {json}"
            );
        }
    }
    let events = server.get_json("/api/events").await;
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        accepted,
        "refused requests were stored"
    );
    let log = server.log();
    assert!(!log.contains(SECRET), "a secret was logged");
    for key in [GH_KEY, ST_KEY, SL_KEY, SW_KEY, HM_KEY] {
        assert!(!log.contains(key), "an API key was logged");
    }
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tripline_webhooks_total{source="github",outcome="bad_signature"} 2"#),
        "{metrics}"
    );
    assert!(!metrics.contains(SECRET));
}

#[tokio::test]
async fn a_repeated_delivery_answers_with_the_original_event_and_is_not_evaluated_again() {
    let ws = Workspace::new();
    ws.config("");
    ws.policy("all.yaml", "name: all\nconditions:\n  - {field: message, contains: deploy}\nnotify:\n  - email: {to: [a@example.com]}\n");
    let server = TestServer::start(&ws, &[]);
    let mut ids = Vec::new();
    for header in ["idempotency-key", "webhook-id", "x-github-delivery"] {
        let h = headers(&[(header, format!("{header}-1"))]);
        let (first, json) = post(&server, support::KEY, h.clone(), "deploy 1").await;
        assert_eq!(first, 202, "{json}");
        let original = json["event_id"].clone();
        let (again, json) = post(&server, support::KEY, h, "deploy 1 again").await;
        assert_eq!(again, 200, "{header}: {json}");
        assert_eq!(
            (json["event_id"].clone(), json["duplicate"].clone()),
            (original.clone(), Value::Bool(true))
        );
        ids.push(original);
    }
    let events = server.get_json("/api/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 3);
    let ledger = server.get_json("/api/notifications").await;
    assert_eq!(
        ledger["notifications"].as_array().unwrap().len(),
        3,
        "a duplicate was evaluated again"
    );
}

#[tokio::test]
async fn a_source_over_its_rate_limit_gets_429_with_retry_after() {
    let ws = Workspace::new();
    ws.config("  - name: slow\n    api_key: slow-key-0123456789abcdef\n    rate_limit: {requests: 2, per: 1m}\n");
    let server = TestServer::start(&ws, &[]);
    for _ in 0..2 {
        let (status, _) = post(&server, "slow-key-0123456789abcdef", HeaderMap::new(), "hi").await;
        assert_eq!(status, 202);
    }
    let response = reqwest::Client::new()
        .post(server.url("/webhook/slow-key-0123456789abcdef"))
        .body("one too many")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((20..=31).contains(&retry), "retry after {retry}");
    let json: Value = response.json().await.unwrap();
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .starts_with("too many requests from this source"),
        "{json}"
    );
    // Other sources are not limited by it.
    server.send("another source").await;
    let events = server.get_json("/api/events?source=slow").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_key_can_come_from_a_file() {
    let ws = Workspace::new();
    std::fs::write(ws.path().join("hook.key"), "file-key-0123456789abcdef\n").unwrap();
    ws.config("  - name: filed\n    api_key_file: hook.key\n");
    let server = TestServer::start(&ws, &[]);
    let (status, _) = post(
        &server,
        "file-key-0123456789abcdef",
        HeaderMap::new(),
        "from a file key",
    )
    .await;
    assert_eq!(status, 202);
    assert!(!server.log().contains("file-key-0123456789abcdef"));
}
