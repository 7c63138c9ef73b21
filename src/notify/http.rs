//! What the HTTP channels (webhook, Slack, PagerDuty) share: one request, its reply
//! turned into a ledger text, and the failure classification.
//!
//! 2xx is sent. 5xx, 408 and 429 are temporary, and a `Retry-After` (seconds or an
//! HTTP date) is honoured. Timeouts and connection errors are temporary. Every other
//! status, redirects included (they are not followed, since a redirected POST may
//! silently become a GET), is permanent: sending the same request again cannot help.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::Method;

use super::{Failure, Retry};

/// How long one request may take when an action gives no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this much of a reply body is kept in the ledger.
pub const MAX_REPLY_TEXT: usize = 300;

/// One request to make.
#[derive(Debug)]
pub struct HttpCall {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    /// Basic credentials, or a bearer token.
    pub auth: Option<Credentials>,
}

/// Credentials resolved from the environment for one request.
#[derive(Debug)]
pub enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

/// The client every HTTP channel uses: no redirects, pooled connections.
pub fn client() -> reqwest::Client {
    // reqwest takes the process's TLS provider; make it the one lettre uses too.
    // An error only means a provider is installed already, which is as good.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tripline/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Makes the request; `Ok` is the reply text of a 2xx answer.
pub async fn send(client: &reqwest::Client, call: HttpCall) -> Result<String, Failure> {
    let mut headers = HeaderMap::new();
    for (name, value) in &call.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Failure::permanent(format!("`{name}` is not a valid header name")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            Failure::permanent(format!("the value of header `{name}` is not valid"))
        })?;
        headers.append(name, value);
    }
    let mut request = client
        .request(call.method, &call.url)
        .headers(headers)
        .timeout(call.timeout)
        .body(call.body);
    request = match call.auth {
        Some(Credentials::Bearer(token)) => request.bearer_auth(token),
        Some(Credentials::Basic { username, password }) => {
            request.basic_auth(username, Some(password))
        }
        None => request,
    };
    let response = request
        .send()
        .await
        .map_err(|e| transport_failure(&e, call.timeout))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = response.text().await.unwrap_or_default();
    classify(
        status.as_u16(),
        status.canonical_reason(),
        retry_after,
        &body,
    )
}

/// The reply text for the ledger, and whether the status means sent, retry or give up.
pub fn classify(
    status: u16,
    reason: Option<&str>,
    retry_after: Option<Duration>,
    body: &str,
) -> Result<String, Failure> {
    let mut text = format!("HTTP {status}");
    if let Some(reason) = reason {
        text.push(' ');
        text.push_str(reason);
    }
    let excerpt = excerpt(body);
    if !excerpt.is_empty() {
        text.push_str(": ");
        text.push_str(&excerpt);
    }
    match status {
        200..=299 => Ok(text),
        408 | 429 | 500..=599 => Err(Failure {
            text,
            retry: Retry::Later(retry_after),
        }),
        300..=399 => Err(Failure::permanent(format!(
            "{text} (redirects are not followed; configure the final URL)"
        ))),
        _ => Err(Failure::permanent(text)),
    }
}

/// The start of a reply body on one line, cut at a character boundary.
fn excerpt(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_REPLY_TEXT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn transport_failure(error: &reqwest::Error, timeout: Duration) -> Failure {
    if error.is_timeout() {
        return Failure::temporary(format!(
            "no answer within {}",
            super::duration::format(timeout)
        ));
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_builder() {
        return Failure::permanent(text);
    }
    Failure::temporary(text)
}

/// Reads `Retry-After`: a number of seconds, or an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let at = SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        let later = |d| Err(Retry::Later(d));
        let cases: &[(u16, Option<Duration>, Result<(), Retry>)] = &[
            (200, None, Ok(())),
            (202, None, Ok(())),
            (204, None, Ok(())),
            (301, None, Err(Retry::Never)),
            (400, None, Err(Retry::Never)),
            (401, None, Err(Retry::Never)),
            (404, None, Err(Retry::Never)),
            (408, None, later(None)),
            (410, None, Err(Retry::Never)),
            (
                429,
                Some(Duration::from_secs(7)),
                later(Some(Duration::from_secs(7))),
            ),
            (500, None, later(None)),
            (
                503,
                Some(Duration::from_secs(1)),
                later(Some(Duration::from_secs(1))),
            ),
        ];
        for (status, retry_after, want) in cases {
            let got = classify(*status, None, *retry_after, "")
                .map(drop)
                .map_err(|f| f.retry);
            assert_eq!(got, *want, "{status}");
        }
    }

    #[test]
    fn the_reply_text_keeps_status_and_body() {
        let failure = classify(
            500,
            Some("Internal Server Error"),
            None,
            "database\n  is down",
        )
        .unwrap_err();
        assert_eq!(
            failure.text,
            "HTTP 500 Internal Server Error: database is down"
        );
        let long = "é".repeat(MAX_REPLY_TEXT + 5);
        let text = classify(200, None, None, &long).unwrap();
        assert_eq!(
            text.chars().count(),
            "HTTP 200: ".len() + MAX_REPLY_TEXT + 1
        );
    }

    #[test]
    fn retry_after_table() {
        let now = SystemTime::from(time::macros::datetime!(2026-01-01 00:00:00 UTC));
        let cases: &[(&str, Option<u64>)] = &[
            ("120", Some(120)),
            (" 3 ", Some(3)),
            ("Thu, 01 Jan 2026 00:00:30 GMT", Some(30)),
            ("Wed, 31 Dec 2025 23:00:00 GMT", Some(0)),
            ("soon", None),
            ("-1", None),
        ];
        for (value, want) in cases {
            let got = parse_retry_after(value, now).map(|d| d.as_secs());
            assert_eq!(got, *want, "{value}");
        }
    }
}
