//! The `sources:` list: who may send, with which key, signature scheme and rate limit.

use std::path::Path;
use std::time::Duration;

use super::{check_api_key, ConfigReader, Secret, SourceConfig};
use crate::verify::{Algorithm, Encoding, HmacScheme, Scheme, Verifier, DEFAULT_TOLERANCE};
use crate::yaml::{MapReader, Node, Pos};

const SOURCE_KEYS: &[&str] = &["name", "api_key", "api_key_file", "verify", "rate_limit"];
const SCHEMES: &[&str] = &["github", "stripe", "slack", "standard_webhooks", "hmac"];
const SCHEME_KEYS: &[&str] = &["secret", "tolerance"];
const HMAC_KEYS: &[&str] = &["secret", "header", "algorithm", "encoding", "prefix"];
const RATE_KEYS: &[&str] = &["requests", "per"];

/// At most `requests` per `per`, with bursts up to `requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl ConfigReader<'_, '_> {
    pub(super) fn sources(&mut self, node: &Node, base: &Path) -> Vec<SourceConfig> {
        let Some(items) = self.reader.seq(node, "`sources`") else {
            return Vec::new();
        };
        let mut sources: Vec<SourceConfig> = Vec::new();
        for item in items {
            if let Some(source) = self.source(item, base, &sources) {
                sources.push(source);
            }
        }
        sources
    }

    fn source(
        &mut self,
        item: &Node,
        base: &Path,
        earlier: &[SourceConfig],
    ) -> Option<SourceConfig> {
        let mut map = self.reader.map(item, "a source")?;
        let name = self.required(&mut map, "name", "a source");
        let key = self.api_key(&mut map, base);
        let verify = map.take("verify").and_then(|n| self.verify(n));
        let rate_limit = map.take("rate_limit").and_then(|n| self.rate_limit(n));
        self.reader.finish(map, SOURCE_KEYS, "a source");
        let ((name, name_pos), (key, key_pos)) = (name?, key?);
        if earlier.iter().any(|s| s.name == name) {
            self.reader
                .error(name_pos, format!("source `{name}` is defined twice"));
        }
        if let Err(why) = check_api_key(&key) {
            self.reader
                .error(key_pos, format!("the `api_key` of source `{name}` {why}"));
        } else if earlier.iter().any(|s| s.api_key.expose() == key) {
            self.reader.error(
                key_pos,
                "two sources share one `api_key`; give each its own",
            );
        }
        Some(SourceConfig {
            name,
            api_key: Secret::new(key),
            verify,
            rate_limit,
        })
    }

    /// `api_key`, or `api_key_file` holding it (surrounding whitespace ignored).
    fn api_key(&mut self, map: &mut MapReader<'_>, base: &Path) -> Option<(String, Pos)> {
        match (map.take("api_key"), map.take("api_key_file")) {
            (Some(node), None) => self.string(node, "`api_key`").map(|k| (k, node.pos)),
            (None, Some(node)) => {
                let path = self.path(node, "`api_key_file`", base)?;
                match std::fs::read_to_string(&path) {
                    Ok(text) => Some((text.trim().to_string(), node.pos)),
                    Err(e) => {
                        let message = format!("cannot read `{}`: {e}", path.display());
                        self.reader.error(node.pos, message);
                        None
                    }
                }
            }
            (Some(node), Some(_)) => {
                let message = "give `api_key` or `api_key_file`, not both";
                self.reader.error(node.pos, message);
                None
            }
            (None, None) => {
                let message = "a source needs `api_key` or `api_key_file`";
                self.reader.error(map.pos, message);
                None
            }
        }
    }

    /// `verify: {SCHEME: {secret: ..., ...}}` with exactly one scheme.
    fn verify(&mut self, node: &Node) -> Option<Verifier> {
        let mut map = self.reader.map(node, "`verify`")?;
        let found: Vec<&str> = SCHEMES.iter().copied().filter(|s| map.has(s)).collect();
        let [scheme_name] = found[..] else {
            let message = format!(
                "`verify` needs exactly one of {}",
                crate::yaml::backticked(SCHEMES)
            );
            self.reader.error(map.pos, message);
            self.reader.finish(map, SCHEMES, "`verify`");
            return None;
        };
        let inner = map.take(scheme_name)?;
        self.reader.finish(map, SCHEMES, "`verify`");
        let what = format!("`verify.{scheme_name}`");
        let mut settings = self.reader.map(inner, &what)?;
        let secret = self.required(&mut settings, "secret", &what);
        let scheme = match scheme_name {
            "github" => Some(Scheme::Github),
            "stripe" => Some(Scheme::Stripe),
            "slack" => Some(Scheme::Slack),
            "standard_webhooks" => Some(Scheme::StandardWebhooks),
            _ => self.hmac_scheme(&mut settings, &what).map(Scheme::Hmac),
        };
        let tolerance = match settings.take("tolerance") {
            Some(n) if scheme_name != "github" && scheme_name != "hmac" => {
                self.duration(n, "`tolerance`")
            }
            _ => Some(DEFAULT_TOLERANCE),
        };
        let known = if scheme_name == "hmac" {
            HMAC_KEYS
        } else {
            SCHEME_KEYS
        };
        self.reader.finish(settings, known, &what);
        let (secret, pos) = secret?;
        match Verifier::new(scheme?, &secret, tolerance?) {
            Ok(verifier) => Some(verifier),
            Err(why) => {
                self.reader.error(pos, format!("{what}: {why}"));
                None
            }
        }
    }

    fn hmac_scheme(&mut self, map: &mut MapReader<'_>, what: &str) -> Option<HmacScheme> {
        let header = self
            .required(map, "header", what)
            .map(|(h, _)| h.to_ascii_lowercase());
        let algorithm = match map.take("algorithm") {
            None => Some(Algorithm::Sha256),
            Some(node) => match self.string(node, "`algorithm`")?.as_str() {
                "sha256" => Some(Algorithm::Sha256),
                "sha512" => Some(Algorithm::Sha512),
                other => {
                    let message =
                        format!("`algorithm` must be `sha256` or `sha512`, found `{other}`");
                    self.reader.error(node.pos, message);
                    None
                }
            },
        };
        let encoding = match map.take("encoding") {
            None => Some(Encoding::Hex),
            Some(node) => match self.string(node, "`encoding`")?.as_str() {
                "hex" => Some(Encoding::Hex),
                "base64" => Some(Encoding::Base64),
                other => {
                    let message = format!("`encoding` must be `hex` or `base64`, found `{other}`");
                    self.reader.error(node.pos, message);
                    None
                }
            },
        };
        let prefix = match map.take("prefix") {
            Some(node) => self.string(node, "`prefix`")?,
            None => String::new(),
        };
        Some(HmacScheme {
            header: header?,
            algorithm: algorithm?,
            encoding: encoding?,
            prefix,
        })
    }

    fn rate_limit(&mut self, node: &Node) -> Option<RateLimit> {
        let mut map = self.reader.map(node, "`rate_limit`")?;
        let requests = match map.take("requests") {
            Some(n) => self.reader.uint(n, "`rate_limit.requests`").and_then(|r| {
                let valid = u32::try_from(r).ok().filter(|r| *r > 0);
                if valid.is_none() {
                    self.reader
                        .error(n.pos, "`rate_limit.requests` must be 1 or more");
                }
                valid
            }),
            None => {
                self.reader.error(map.pos, "`rate_limit` needs `requests`");
                None
            }
        };
        let per = match map.take("per") {
            Some(n) => self.duration(n, "`rate_limit.per`"),
            None => Some(Duration::from_secs(1)),
        };
        self.reader.finish(map, RATE_KEYS, "`rate_limit`");
        Some(RateLimit {
            requests: requests?,
            per: per?,
        })
    }
}
