//! Signature verification over the raw request body, per source.
//!
//! A source with `verify` refuses a request whose signature is missing, wrong or stale:
//! it fails closed. Each preset follows the sender's documented scheme; the generic
//! `hmac` scheme covers the many senders that put an HMAC of the body in one header.
//! Digests are compared in constant time by the `hmac` crate.

use std::fmt;
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

/// How far a signed timestamp may be from now unless `tolerance` says otherwise.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The signature schemes a source may require.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// GitHub: `X-Hub-Signature-256: sha256=HEX` over the body.
    Github,
    /// Stripe: `Stripe-Signature: t=TS,v1=HEX` over `TS.BODY`.
    Stripe,
    /// Slack: `X-Slack-Signature: v0=HEX` over `v0:TS:BODY`, TS in `X-Slack-Request-Timestamp`.
    Slack,
    /// Standard Webhooks: `webhook-signature: v1,BASE64` over `ID.TS.BODY`.
    StandardWebhooks,
    /// One header holding an HMAC of the body.
    Hmac(HmacScheme),
}

/// The generic scheme: which header, digest and encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacScheme {
    /// Header name in lowercase.
    pub header: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// Text before the digest in the header, such as `sha256=`.
    pub prefix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// A scheme with its secret; the secret is never printed.
#[derive(Clone)]
pub struct Verifier {
    pub scheme: Scheme,
    key: Vec<u8>,
    pub tolerance: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("key", &"<redacted>")
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// Why a request was refused; the text is sent to the sender with a 401.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing the `{0}` header; this source requires signed requests")]
    Missing(String),
    #[error("the `{0}` header is malformed")]
    Malformed(String),
    #[error("the signature does not match the body; check the signing secret")]
    Mismatch,
    #[error(
        "the signed timestamp is more than {0} seconds from now; the request is stale or replayed"
    )]
    Stale(u64),
}

impl Verifier {
    /// A verifier for `scheme`. For Standard Webhooks the secret is `whsec_` and base64.
    pub fn new(scheme: Scheme, secret: &str, tolerance: Duration) -> Result<Self, String> {
        let key = match scheme {
            Scheme::StandardWebhooks => {
                let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| "the secret must be `whsec_` followed by base64".to_string())?
            }
            _ => secret.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(Verifier {
            scheme,
            key,
            tolerance,
        })
    }

    /// Checks the request's signature at time `now`.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), VerifyError> {
        match &self.scheme {
            Scheme::Github => {
                let value = header(headers, "x-hub-signature-256", "X-Hub-Signature-256")?;
                let hex = value
                    .strip_prefix("sha256=")
                    .ok_or_else(|| VerifyError::Malformed("X-Hub-Signature-256".into()))?;
                let wanted = decode_hex(hex)
                    .ok_or_else(|| VerifyError::Malformed("X-Hub-Signature-256".into()))?;
                self.check(Algorithm::Sha256, &[body], &[wanted])
            }
            Scheme::Stripe => self.verify_stripe(headers, body, now),
            Scheme::Slack => self.verify_slack(headers, body, now),
            Scheme::StandardWebhooks => self.verify_standard(headers, body, now),
            Scheme::Hmac(generic) => self.verify_generic(generic, headers, body),
        }
    }

    fn verify_stripe(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), VerifyError> {
        const NAME: &str = "Stripe-Signature";
        let value = header(headers, "stripe-signature", NAME)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in value.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = Some(t),
                Some(("v1", hex)) => signatures.extend(decode_hex(hex)),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or_else(|| VerifyError::Malformed(NAME.into()))?;
        self.check_time(timestamp, now, NAME)?;
        let signed = [timestamp.as_bytes(), b".", body];
        self.check(Algorithm::Sha256, &signed, &signatures)
    }

    fn verify_slack(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), VerifyError> {
        const TS: &str = "X-Slack-Request-Timestamp";
        const SIG: &str = "X-Slack-Signature";
        let timestamp = header(headers, "x-slack-request-timestamp", TS)?;
        let value = header(headers, "x-slack-signature", SIG)?;
        self.check_time(timestamp, now, TS)?;
        let hex = value
            .strip_prefix("v0=")
            .ok_or_else(|| VerifyError::Malformed(SIG.into()))?;
        let wanted = decode_hex(hex).ok_or_else(|| VerifyError::Malformed(SIG.into()))?;
        let signed = [b"v0:", timestamp.as_bytes(), b":", body];
        self.check(Algorithm::Sha256, &signed, &[wanted])
    }

    fn verify_standard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let id = header(headers, "webhook-id", "webhook-id")?;
        let timestamp = header(headers, "webhook-timestamp", "webhook-timestamp")?;
        let value = header(headers, "webhook-signature", "webhook-signature")?;
        self.check_time(timestamp, now, "webhook-timestamp")?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let signatures: Vec<Vec<u8>> = value
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| b64.decode(s).ok())
            .collect();
        let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
        self.check(Algorithm::Sha256, &signed, &signatures)
    }

    fn verify_generic(
        &self,
        scheme: &HmacScheme,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let name = scheme.header.as_str();
        let value = headers
            .get(scheme.header.as_str())
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| VerifyError::Missing(name.into()))?;
        let encoded = value
            .strip_prefix(scheme.prefix.as_str())
            .ok_or_else(|| VerifyError::Malformed(name.into()))?;
        let wanted = match scheme.encoding {
            Encoding::Hex => decode_hex(encoded),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok(),
        };
        let wanted = wanted.ok_or_else(|| VerifyError::Malformed(name.into()))?;
        self.check(scheme.algorithm, &[body], &[wanted])
    }

    /// A signed timestamp must be within the tolerance, before or after now.
    fn check_time(&self, timestamp: &str, now: i64, name: &'static str) -> Result<(), VerifyError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::Malformed(name.into()))?;
        let tolerance = self.tolerance.as_secs();
        if now.abs_diff(ts) > tolerance {
            return Err(VerifyError::Stale(tolerance));
        }
        Ok(())
    }

    /// Whether any of `wanted` is the MAC of the concatenated `parts`.
    fn check(
        &self,
        algorithm: Algorithm,
        parts: &[&[u8]],
        wanted: &[Vec<u8>],
    ) -> Result<(), VerifyError> {
        let ok = wanted.iter().any(|w| match algorithm {
            Algorithm::Sha256 => mac::<Hmac<Sha256>>(&self.key, parts)
                .verify_slice(w)
                .is_ok(),
            Algorithm::Sha512 => mac::<Hmac<Sha512>>(&self.key, parts)
                .verify_slice(w)
                .is_ok(),
        });
        if ok {
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> M {
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

fn header<'h>(
    headers: &'h HeaderMap,
    lower: &str,
    name: &'static str,
) -> Result<&'h str, VerifyError> {
    headers
        .get(lower)
        .ok_or_else(|| VerifyError::Missing(name.into()))?
        .to_str()
        .map_err(|_| VerifyError::Malformed(name.into()))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Signs `parts` as a sender would: for tests and for `tripline` tools.
pub fn sign_hex(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> String {
    let bytes = match algorithm {
        Algorithm::Sha256 => mac::<Hmac<Sha256>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::Sha512 => mac::<Hmac<Sha512>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn hex_to_bytes(hex: &str) -> Vec<u8> {
        decode_hex(hex).unwrap()
    }

    #[test]
    fn scheme_table() {
        let body = br#"{"ok":true}"#;
        let sig = |parts: &[&[u8]]| sign_hex(Algorithm::Sha256, b"s3cret", parts);
        let ts = NOW.to_string();
        let old = (NOW - 301).to_string();
        let whsec = format!("whsec_{}", b64(b"s3cret"));
        let std_sig = |id: &str, t: &str| {
            b64(&hex_to_bytes(&sig(&[
                id.as_bytes(),
                b".",
                t.as_bytes(),
                b".",
                body,
            ])))
        };
        let generic = Scheme::Hmac(HmacScheme {
            header: "x-signature".into(),
            algorithm: Algorithm::Sha512,
            encoding: Encoding::Base64,
            prefix: "sha512=".into(),
        });
        let sha512 = b64(&hex_to_bytes(&sign_hex(
            Algorithm::Sha512,
            b"s3cret",
            &[body],
        )));
        type Case<'a> = (
            Scheme,
            &'a str,
            Vec<(&'a str, String)>,
            Result<(), VerifyError>,
        );
        let cases: Vec<Case> = vec![
            (
                Scheme::Github,
                "s3cret",
                vec![("x-hub-signature-256", format!("sha256={}", sig(&[body])))],
                Ok(()),
            ),
            (
                Scheme::Github,
                "other",
                vec![("x-hub-signature-256", format!("sha256={}", sig(&[body])))],
                Err(VerifyError::Mismatch),
            ),
            (
                Scheme::Github,
                "s3cret",
                vec![],
                Err(VerifyError::Missing("X-Hub-Signature-256".into())),
            ),
            (
                Scheme::Github,
                "s3cret",
                vec![("x-hub-signature-256", "sha256=zz".into())],
                Err(VerifyError::Malformed("X-Hub-Signature-256".into())),
            ),
            (
                Scheme::Stripe,
                "s3cret",
                vec![(
                    "stripe-signature",
                    format!("t={ts},v1=00,v1={}", sig(&[ts.as_bytes(), b".", body])),
                )],
                Ok(()),
            ),
            (
                Scheme::Stripe,
                "s3cret",
                vec![(
                    "stripe-signature",
                    format!("t={old},v1={}", sig(&[old.as_bytes(), b".", body])),
                )],
                Err(VerifyError::Stale(300)),
            ),
            (
                Scheme::Stripe,
                "s3cret",
                vec![("stripe-signature", format!("v1={}", sig(&[body])))],
                Err(VerifyError::Malformed("Stripe-Signature".into())),
            ),
            (
                Scheme::Slack,
                "s3cret",
                vec![
                    ("x-slack-request-timestamp", ts.clone()),
                    (
                        "x-slack-signature",
                        format!("v0={}", sig(&[b"v0:", ts.as_bytes(), b":", body])),
                    ),
                ],
                Ok(()),
            ),
            (
                Scheme::Slack,
                "s3cret",
                vec![("x-slack-request-timestamp", ts.clone())],
                Err(VerifyError::Missing("X-Slack-Signature".into())),
            ),
            (
                Scheme::StandardWebhooks,
                &whsec,
                vec![
                    ("webhook-id", "msg_1".into()),
                    ("webhook-timestamp", ts.clone()),
                    (
                        "webhook-signature",
                        format!("v1,AAAA v1,{}", std_sig("msg_1", &ts)),
                    ),
                ],
                Ok(()),
            ),
            (
                Scheme::StandardWebhooks,
                &whsec,
                vec![
                    ("webhook-id", "msg_2".into()),
                    ("webhook-timestamp", ts.clone()),
                    ("webhook-signature", format!("v1,{}", std_sig("msg_1", &ts))),
                ],
                Err(VerifyError::Mismatch),
            ),
            (
                generic.clone(),
                "s3cret",
                vec![("x-signature", format!("sha512={sha512}"))],
                Ok(()),
            ),
            (
                generic.clone(),
                "s3cret",
                vec![("x-signature", sha512.clone())],
                Err(VerifyError::Malformed("x-signature".into())),
            ),
        ];
        for (i, (scheme, secret, pairs, want)) in cases.into_iter().enumerate() {
            let verifier = Verifier::new(scheme, secret, DEFAULT_TOLERANCE).unwrap();
            assert_eq!(
                verifier.verify(&headers(&pairs), body, NOW),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn the_secret_is_not_printed() {
        let v = Verifier::new(Scheme::Github, "hunter2-secret", DEFAULT_TOLERANCE).unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[test]
    fn a_standard_webhooks_secret_must_be_base64() {
        let err = Verifier::new(Scheme::StandardWebhooks, "whsec_!!", DEFAULT_TOLERANCE);
        assert_eq!(
            err.err().unwrap(),
            "the secret must be `whsec_` followed by base64"
        );
    }
}
