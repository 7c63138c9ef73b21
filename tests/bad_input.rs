//! The bad-input suite: what a careless or hostile sender can throw at the real binary.
//! Each case checks the status, the error text, and that nothing was stored.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{TestServer, Workspace, KEY};
use tripline::verify::{sign_hex, Algorithm};

const GH_KEY: &str = "github-key-0123456789abcdef";
const ST_KEY: &str = "stripe-key-0123456789abcdef";
const SECRET: &str = "whisper-0123456789";

fn start() -> (Workspace, TestServer) {
    let ws = Workspace::new();
    ws.config(&format!(
        "  - name: github\n    api_key: {GH_KEY}\n    verify: {{github: {{secret: {SECRET}}}}}\n  - name: stripe\n    api_key: {ST_KEY}\n    verify: {{stripe: {{secret: {SECRET}}}}}\nmax_body: 4KiB\nread_timeout: 1s\n"
    ));
    let server = TestServer::start(&ws, &[]);
    (ws, server)
}

async fn stored(server: &TestServer) -> usize {
    server.get_json("/api/events").await["events"]
        .as_array()
        .unwrap()
        .len()
}

/// One request: method, path, headers, body; what must come back.
struct Case {
    name: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
}

fn case(
    name: &'static str,
    path: String,
    body: impl Into<Vec<u8>>,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        name,
        path,
        headers: Vec::new(),
        body: body.into(),
        status,
        error,
    }
}

#[tokio::test]
async fn refused_bodies_signatures_and_batches_store_nothing() {
    let (_ws, server) = start();
    let events = format!("/ingest/events/{KEY}");
    let webhook = format!("/webhook/{KEY}");
    let stale = (time::OffsetDateTime::now_utc().unix_timestamp() - 3600).to_string();
    let body = "{}";
    let stale_sig = sign_hex(
        Algorithm::Sha256,
        SECRET.as_bytes(),
        &[stale.as_bytes(), b".", body.as_bytes()],
    );
    let many: Vec<Value> = (0..1001)
        .map(|n| json!({"title": format!("e{n}")}))
        .collect();
    let mut cases = vec![
        case(
            "huge webhook",
            webhook.clone(),
            vec![b'a'; 5000],
            413,
            "the body is larger than the limit of 4096 bytes",
        ),
        case(
            "huge batch",
            events.clone(),
            vec![b' '; 5000],
            413,
            "the body is larger than the limit of 4096 bytes",
        ),
        case(
            "invalid UTF-8 webhook",
            webhook.clone(),
            vec![b'o', b'k', 0xc3, 0x28],
            415,
            "the body is not UTF-8 text",
        ),
        case(
            "invalid UTF-8 batch",
            events.clone(),
            b"[{\"title\": \"\xc3\x28\"}]".to_vec(),
            400,
            "the body is not valid JSON",
        ),
        case(
            "JSON that does not parse",
            events.clone(),
            "[{\"title\": ",
            400,
            "the body is not valid JSON: EOF while parsing",
        ),
        case(
            "text as a batch",
            events.clone(),
            "disk full on web-1",
            400,
            "the body is not valid JSON: expected value at line 1 column 1",
        ),
        case(
            "not an array",
            events.clone(),
            "{\"title\": \"t\"}",
            400,
            "1 mistakes in the batch",
        ),
        case(
            "empty array",
            events.clone(),
            "[]",
            400,
            "1 mistakes in the batch",
        ),
        case(
            "too many events",
            events.clone(),
            serde_json::to_vec(&many).unwrap(),
            413,
            "larger than the limit",
        ),
        case(
            "element not an object",
            events.clone(),
            "[\"disk full\", 3]",
            400,
            "2 mistakes in the batch",
        ),
        case(
            "unknown keys and wrong types",
            events.clone(),
            r#"[{"title": "t", "severity": "high", "tags": {"env": "prod"}, "data": "x"}]"#,
            400,
            "3 mistakes in the batch",
        ),
        case(
            "unknown key",
            "/webhook/not-a-key-0000000000".into(),
            "x",
            401,
            "unknown API key",
        ),
        case(
            "missing signature",
            format!("/webhook/{GH_KEY}"),
            body,
            401,
            "missing the `X-Hub-Signature-256` header",
        ),
        Case {
            headers: vec![("x-hub-signature-256", "sha256=00ff".into())],
            ..case(
                "wrong signature",
                format!("/webhook/{GH_KEY}"),
                body,
                401,
                "the signature does not match the body",
            )
        },
        Case {
            headers: vec![("x-hub-signature-256", "md5=abc".into())],
            ..case(
                "malformed signature",
                format!("/webhook/{GH_KEY}"),
                body,
                401,
                "the `X-Hub-Signature-256` header is malformed",
            )
        },
        Case {
            headers: vec![("stripe-signature", format!("t={stale},v1={stale_sig}"))],
            ..case(
                "replayed timestamp",
                format!("/webhook/{ST_KEY}"),
                body,
                401,
                "the request is stale or replayed",
            )
        },
        Case {
            headers: vec![("idempotency-key", "k".repeat(300))],
            ..case(
                "huge idempotency key",
                webhook.clone(),
                "x",
                400,
                "the `idempotency-key` header must be 1 to 256",
            )
        },
    ];
    let client = reqwest::Client::new();
    for c in cases.drain(..) {
        let mut request = client.post(server.url(&c.path)).body(c.body);
        for (k, v) in &c.headers {
            request = request.header(*k, v);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), c.status, "{}", c.name);
        let json: Value = response.json().await.unwrap();
        let text = json["error"].as_str().unwrap_or_default();
        assert!(text.contains(c.error), "{}: {json}", c.name);
    }
    assert_eq!(stored(&server).await, 0, "a refused request was stored");
}

#[tokio::test]
async fn a_webhook_body_that_is_not_json_is_kept_as_text() {
    let (_ws, server) = start();
    let response = reqwest::Client::new()
        .post(server.url(&format!("/webhook/{KEY}")))
        .header("content-type", "application/json")
        .body("{\"broken\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id: Value = response.json().await.unwrap();
    let event = server
        .get_json(&format!("/api/events/{}", id["event_id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (event["message"].as_str(), event["json"].clone()),
        (Some("{\"broken\": "), Value::Null)
    );
}

#[tokio::test]
async fn bad_explorer_queries_say_what_to_fix() {
    let (_ws, server) = start();
    for (path, status, error) in [
        (
            "/api/events?sorce=ci",
            400,
            "unknown parameter `sorce`; did you mean `source`?",
        ),
        (
            "/api/events?since=yesterday",
            400,
            "`since` must be an RFC 3339 time",
        ),
        ("/api/events?limit=100000", 400, "`limit` must be 1 to 500"),
        (
            "/api/events?cursor=%27%3B%20DROP%20TABLE%20events",
            400,
            "is not one this server gave",
        ),
        ("/api/events/does-not-exist", 404, "no event has this id"),
    ] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let json: Value = response.json().await.unwrap();
        assert!(
            json["error"].as_str().unwrap().contains(error),
            "{path}: {json}"
        );
    }
}

#[tokio::test]
async fn huge_headers_are_refused_before_the_handler() {
    let (_ws, server) = start();
    let response = reqwest::Client::new()
        .post(server.url(&format!("/webhook/{KEY}")))
        .header("x-padding", "p".repeat(100 * 1024))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    let json: Value = response.json().await.unwrap();
    assert_eq!(
        json["error"],
        "the request headers are larger than the limit of 32768 bytes"
    );
    assert_eq!(stored(&server).await, 0);
}

#[tokio::test]
async fn slow_senders_are_cut_off() {
    let (_ws, server) = start();

    // A body that stops arriving: 408 after read_timeout, with a reason.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let head =
        format!("POST /webhook/{KEY} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part");
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the body did not arrive within 1 s"),
        "{answer}"
    );

    // Headers that trickle in: the connection is closed after read_timeout.
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .write_all(format!("POST /webhook/{KEY} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the connection stayed open"
    );
    assert_eq!(stored(&server).await, 0);
}
