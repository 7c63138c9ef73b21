//! The webhook channel: a JSON body sent with `POST` or `PUT`, optionally with basic or
//! bearer credentials from the environment, and signed with the Standard Webhooks
//! scheme when a secret is set.
//!
//! Signing follows the Standard Webhooks specification: `webhook-id` is the delivery's
//! id (the same on every retry, so a receiver can drop duplicates), `webhook-timestamp`
//! the Unix time of the attempt, and `webhook-signature` is `v1,` and the base64 of
//! HMAC-SHA256 over `id.timestamp.body`, keyed with the secret (`whsec_` and base64).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::action::{optional, render_headers, ActionReader, Render};
use super::http::{self, Credentials, HttpCall};
use super::{EnvText, Failure};
use crate::template::TemplateId;
use crate::yaml::Node;

const WEBHOOK_KEYS: &[&str] = &[
    "url", "method", "headers", "body", "auth", "secret", "timeout",
];
const AUTH_KEYS: &[&str] = &["bearer", "username", "password"];

/// Headers tripline writes itself.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// A `webhook:` action.
#[derive(Debug)]
pub struct WebhookAction {
    pub url: EnvText,
    pub method: String,
    pub headers: Vec<(String, TemplateId)>,
    /// A template that renders the JSON body; `None` sends the default payload.
    pub body: Option<TemplateId>,
    pub auth: Option<Auth>,
    pub secret: Option<EnvText>,
    pub timeout: Duration,
}

/// Credentials, as `${NAME}` references read when sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    Bearer(EnvText),
    Basic { username: String, password: EnvText },
}

/// A rendered webhook request, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookMessage {
    pub method: String,
    pub url: EnvText,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub body: String,
    #[serde(default)]
    pub auth: Option<Auth>,
    #[serde(default)]
    pub secret: Option<EnvText>,
    pub timeout_ms: u64,
}

/// Reads a `webhook:` mapping.
pub fn read(cx: &mut ActionReader<'_>, node: &Node) -> Option<WebhookAction> {
    let mut map = cx.reader.map(node, "`webhook`")?;
    let url = match map.take("url") {
        Some(n) => cx.url(n, "`url`"),
        None => {
            cx.reader.error(map.pos, "`webhook` needs a `url`");
            None
        }
    };
    let method = match map.take("method") {
        Some(n) => method(cx, n),
        None => Some("POST".to_string()),
    };
    let headers = match map.take("headers") {
        Some(n) => cx.headers(n, "`webhook`", RESERVED_HEADERS),
        None => Some(Vec::new()),
    };
    let body = map.take("body").map(|n| cx.template(n, "`body`"));
    let auth = map.take("auth").map(|n| auth(cx, n));
    let secret = map.take("secret").map(|n| secret(cx, n));
    let timeout = cx.timeout(map.take("timeout"));
    cx.reader.finish(map, WEBHOOK_KEYS, "`webhook`");
    Some(WebhookAction {
        url: url?,
        method: method?,
        headers: headers?,
        body: optional(body)?,
        auth: optional(auth)?,
        secret: optional(secret)?,
        timeout: timeout?,
    })
}

fn method(cx: &mut ActionReader<'_>, node: &Node) -> Option<String> {
    let text = cx.reader.str(node, "`method`")?;
    match text.to_ascii_uppercase().as_str() {
        m @ ("POST" | "PUT") => Some(m.to_string()),
        _ => {
            cx.reader.error(
                node.pos,
                format!("`method` must be `POST` or `PUT`, found `{text}`"),
            );
            None
        }
    }
}

fn auth(cx: &mut ActionReader<'_>, node: &Node) -> Option<Auth> {
    let mut map = cx.reader.map(node, "`auth`")?;
    let bearer = map.take("bearer").map(|n| from_env(cx, n, "`auth.bearer`"));
    let username = map
        .take("username")
        .map(|n| cx.reader.str(n, "`auth.username`").map(str::to_string));
    let password = map
        .take("password")
        .map(|n| from_env(cx, n, "`auth.password`"));
    let pos = map.pos;
    cx.reader.finish(map, AUTH_KEYS, "`auth`");
    match (bearer, username, password) {
        (Some(token), None, None) => Some(Auth::Bearer(token?)),
        (None, Some(username), Some(password)) => Some(Auth::Basic {
            username: username?,
            password: password?,
        }),
        _ => {
            cx.reader.error(
                pos,
                "`auth` takes either `bearer`, or `username` and `password`",
            );
            None
        }
    }
}

/// A credential must come from the environment, so it stays out of policy files.
fn from_env(cx: &mut ActionReader<'_>, node: &Node, what: &str) -> Option<EnvText> {
    let (text, _) = cx.env_text(node, what)?;
    if !text.raw().contains("${") {
        cx.reader.error(node.pos, format!("{what} must come from the environment; write `${{NAME}}` and set `NAME` when starting tripline"));
        return None;
    }
    Some(text)
}

fn secret(cx: &mut ActionReader<'_>, node: &Node) -> Option<EnvText> {
    let text = from_env(cx, node, "`secret`")?;
    let value = text.resolve().ok()?;
    if let Err(e) = signing_key(&value) {
        cx.reader.error(node.pos, format!("`secret` {e}"));
        return None;
    }
    Some(text)
}

impl WebhookAction {
    /// Renders the body (checked to be JSON) and the headers.
    pub fn render(&self, r: &Render<'_>) -> Result<WebhookMessage, String> {
        let body = match &self.body {
            Some(id) => {
                let text = r.text(id).map_err(|e| format!("`body`: {e}"))?;
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| format!("`body` did not render valid JSON: {e}"))?;
                text
            }
            None => default_payload(r).to_string(),
        };
        Ok(WebhookMessage {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: render_headers(r, &self.headers)?,
            body,
            auth: self.auth.clone(),
            secret: self.secret.clone(),
            timeout_ms: self.timeout.as_millis() as u64,
        })
    }
}

/// The body sent when an action gives none, shaped as Standard Webhooks suggests:
/// `{type, timestamp, data}` with every template value under `data`.
pub fn default_payload(r: &Render<'_>) -> serde_json::Value {
    let mut data = serde_json::to_value(r.context).unwrap_or_default();
    data["group"] = serde_json::json!(r.group);
    serde_json::json!({
        "type": format!("tripline.alert.{}", r.context.status.as_str()),
        "timestamp": r.context.received_at,
        "data": data,
    })
}

/// Sends a webhook; `id` is the delivery's id, used as `webhook-id`.
pub async fn send(
    client: &reqwest::Client,
    id: &str,
    m: &WebhookMessage,
) -> Result<String, Failure> {
    let resolve = |t: &EnvText| t.resolve().map_err(Failure::permanent);
    let url = resolve(&m.url)?;
    let mut headers = m.headers.clone();
    headers.push(("content-type".into(), "application/json".into()));
    if let Some(secret) = &m.secret {
        let key = signing_key(&resolve(secret)?)
            .map_err(|e| Failure::permanent(format!("the signing secret {e}")))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        headers.push(("webhook-id".into(), id.to_string()));
        headers.push(("webhook-timestamp".into(), timestamp.to_string()));
        headers.push((
            "webhook-signature".into(),
            sign(&key, id, timestamp, &m.body),
        ));
    }
    let auth = match &m.auth {
        Some(Auth::Bearer(token)) => Some(Credentials::Bearer(resolve(token)?)),
        Some(Auth::Basic { username, password }) => Some(Credentials::Basic {
            username: username.clone(),
            password: resolve(password)?,
        }),
        None => None,
    };
    let method = if m.method == "PUT" {
        reqwest::Method::PUT
    } else {
        reqwest::Method::POST
    };
    let call = HttpCall {
        method,
        url,
        headers,
        body: m.body.clone().into_bytes(),
        timeout: Duration::from_millis(m.timeout_ms),
        auth,
    };
    http::send(client, call).await
}

/// The key bytes of a secret written `whsec_` and base64 (the prefix is optional).
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    match BASE64.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => {
            Err("must be `whsec_` followed by base64, as Standard Webhooks secrets are".to_string())
        }
    }
}

/// The `webhook-signature` value: `v1,` and base64(HMAC-SHA256(key, "id.timestamp.body")).
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The example published with the Standard Webhooks specification.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn bad_secrets_are_refused() {
        for secret in ["whsec_", "whsec_%%%", "not base64!"] {
            assert!(signing_key(secret).is_err(), "{secret}");
        }
    }
}
