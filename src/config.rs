//! The server configuration: `tripline.yaml`, or the embedded defaults when there is none.
//!
//! Strings may name environment variables as `${NAME}`; an unset variable is an error at
//! the place it is used, never an empty string. Relative paths are taken from the
//! directory of the configuration file.

mod sources;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use sources::RateLimit;

use crate::notify::outbox::RetryPolicy;
use crate::store::Retention;
use crate::verify::Verifier;
use crate::yaml::{Diagnostics, MapReader, Node, Pos, Reader};

/// Where the server listens when nothing else is said.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The largest webhook body accepted unless `max_body` says otherwise: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// How often retention runs unless `retention.interval` says otherwise.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// How long a sender may take to send its whole body unless `read_timeout` says otherwise.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one SMTP conversation may take before it counts as failed.
pub const DEFAULT_SMTP_TIMEOUT_SECS: u64 = 30;

/// The whole server configuration, checked and with variables expanded.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub policies: PathBuf,
    pub data_dir: PathBuf,
    pub sources: Vec<SourceConfig>,
    pub smtp: Option<SmtpConfig>,
    pub max_body: usize,
    /// How long events are kept; nothing is removed by default.
    pub retention: Retention,
    pub retention_interval: Duration,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `info,tripline=debug`; `RUST_LOG` overrides it.
    pub log_level: Option<String>,
    /// Reload the policies when a file in their directory changes.
    pub watch: bool,
    /// The longest a sender may take to send its headers, and then its body.
    pub read_timeout: Duration,
    /// When failed notifications are retried.
    pub retry: RetryPolicy,
    /// True when no file was read; the server then creates a demo source.
    pub embedded: bool,
}

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines with `key=value` fields.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A sender that may post webhooks; `api_key` is the `{apiId}` in its URL.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub name: String,
    pub api_key: Secret,
    /// The signature every request must carry.
    pub verify: Option<Verifier>,
    pub rate_limit: Option<RateLimit>,
}

/// How to reach the SMTP relay.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    /// Extra CA certificate (PEM) trusted for the relay, for private CAs.
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: u64,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text; for a relay on the same host or a trusted network only.
    None,
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
}

/// A value that must never be printed: its `Debug` and `Display` are masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Config {
    /// The configuration used when no file is given.
    pub fn embedded() -> Self {
        Config {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default address is valid"),
            policies: PathBuf::from("policies"),
            data_dir: PathBuf::from("data"),
            sources: Vec::new(),
            smtp: None,
            max_body: DEFAULT_MAX_BODY,
            retention: Retention::default(),
            retention_interval: DEFAULT_RETENTION_INTERVAL,
            log_format: LogFormat::Text,
            log_level: None,
            watch: true,
            read_timeout: DEFAULT_READ_TIMEOUT,
            retry: RetryPolicy::default(),
            embedded: true,
        }
    }

    /// Reads and checks a configuration file, reporting every mistake at once.
    pub fn load(path: &Path) -> Result<Self, Diagnostics> {
        let mut reader = Reader::new(path.display().to_string());
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                reader.error(
                    Pos::default(),
                    format!("cannot read the configuration: {e}"),
                );
                return Err(reader.diagnostics);
            }
        };
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let config = Self::parse(&mut reader, &text, &base, |name| std::env::var(name).ok());
        match config {
            Some(config) if reader.diagnostics.is_empty() => Ok(config),
            _ => Err(reader.diagnostics),
        }
    }

    /// Reads a configuration from text; `env` looks up `${NAME}` variables.
    pub fn parse(
        reader: &mut Reader,
        text: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let root = reader.parse(text)?;
        let mut cx = ConfigReader { reader, env: &env };
        let config = cx.config(&root, base);
        reader.diagnostics.sort();
        config
    }
}

const CONFIG_KEYS: &[&str] = &[
    "listen",
    "policies",
    "data_dir",
    "sources",
    "smtp",
    "max_body",
    "retry",
    "retention",
    "log_format",
    "log_level",
    "watch",
    "read_timeout",
];
const RETENTION_KEYS: &[&str] = &["max_age", "max_events", "interval"];
const SMTP_KEYS: &[&str] = &[
    "host", "port", "tls", "username", "password", "from", "ca_file", "timeout",
];

/// Walks the configuration tree with variable expansion.
struct ConfigReader<'r, 'e> {
    reader: &'r mut Reader,
    env: &'e dyn Fn(&str) -> Option<String>,
}

impl ConfigReader<'_, '_> {
    fn config(&mut self, root: &Node, base: &Path) -> Option<Config> {
        if matches!(root.kind, crate::yaml::Kind::Null) {
            return Some(Config {
                embedded: false,
                ..Config::embedded()
            });
        }
        let mut map = self.reader.map(root, "the configuration")?;
        let mut config = Config {
            embedded: false,
            ..Config::embedded()
        };
        config.policies = base.join(&config.policies);
        config.data_dir = base.join(&config.data_dir);

        if let Some(node) = map.take("listen") {
            if let Some(addr) = self.string(node, "`listen`") {
                match addr.parse() {
                    Ok(addr) => config.listen = addr,
                    Err(_) => self.reader.error(
                        node.pos,
                        format!("`listen` must be an address and port such as `{DEFAULT_LISTEN}`, found `{addr}`"),
                    ),
                }
            }
        }
        if let Some(node) = map.take("policies") {
            config.policies = self
                .path(node, "`policies`", base)
                .unwrap_or(config.policies);
        }
        if let Some(node) = map.take("data_dir") {
            config.data_dir = self
                .path(node, "`data_dir`", base)
                .unwrap_or(config.data_dir);
        }
        if let Some(node) = map.take("max_body") {
            config.max_body = self.size(node, "`max_body`").unwrap_or(config.max_body);
        }
        if let Some(node) = map.take("sources") {
            config.sources = self.sources(node, base);
        }
        if let Some(node) = map.take("smtp") {
            config.smtp = self.smtp(node, base);
        }
        if let Some(node) = map.take("retry") {
            config.retry = RetryPolicy::read(self.reader, node).unwrap_or_default();
        }
        self.operations(&mut map, &mut config);
        self.reader.finish(map, CONFIG_KEYS, "the configuration");
        Some(config)
    }

    fn smtp(&mut self, node: &Node, base: &Path) -> Option<SmtpConfig> {
        let mut map = self.reader.map(node, "`smtp`")?;
        let host = self.required(&mut map, "host", "`smtp`");
        let from = self.required(&mut map, "from", "`smtp`");
        let tls = match map.take("tls") {
            Some(node) => self.tls(node),
            None => Some(TlsMode::Starttls),
        };
        let port = match map.take("port") {
            Some(node) => self.port(node),
            None => tls.map(default_port),
        };
        let username = map
            .take("username")
            .and_then(|n| self.string(n, "`smtp.username`"));
        let password = map
            .take("password")
            .and_then(|n| self.string(n, "`smtp.password`"));
        let ca_file = map
            .take("ca_file")
            .and_then(|n| self.path(n, "`smtp.ca_file`", base));
        let timeout_secs = match map.take("timeout") {
            Some(n) => self.reader.uint(n, "`smtp.timeout` (seconds)")?,
            None => DEFAULT_SMTP_TIMEOUT_SECS,
        };
        if username.is_some() != password.is_some() {
            let message = "`smtp.username` and `smtp.password` must be given together";
            self.reader.error(map.pos, message);
        }
        self.reader.finish(map, SMTP_KEYS, "`smtp`");
        Some(SmtpConfig {
            host: host?.0,
            port: port?,
            tls: tls?,
            username,
            password: password.map(Secret::new),
            from: from?.0,
            ca_file,
            timeout_secs,
        })
    }

    /// `retention`, logging, `watch` and `read_timeout`.
    fn operations(&mut self, map: &mut MapReader<'_>, config: &mut Config) {
        if let Some(node) = map.take("retention") {
            self.retention(node, config);
        }
        if let Some(node) = map.take("log_format") {
            match self.string(node, "`log_format`").as_deref() {
                Some("text") => config.log_format = LogFormat::Text,
                Some("json") => config.log_format = LogFormat::Json,
                Some(other) => self.reader.error(
                    node.pos,
                    format!("`log_format` must be `text` or `json`, found `{other}`"),
                ),
                None => {}
            }
        }
        if let Some(node) = map.take("log_level") {
            let level = self.string(node, "`log_level`");
            if let Some(level) = &level {
                if let Err(e) = tracing_subscriber::EnvFilter::try_new(level) {
                    let message = format!(
                        "`log_level` must be a level such as `info` or `info,tripline=debug`: {e}"
                    );
                    self.reader.error(node.pos, message);
                }
            }
            config.log_level = level;
        }
        if let Some(node) = map.take("watch") {
            config.watch = self.reader.bool(node, "`watch`").unwrap_or(true);
        }
        if let Some(node) = map.take("read_timeout") {
            config.read_timeout = self
                .duration(node, "`read_timeout`")
                .unwrap_or(config.read_timeout);
        }
    }

    fn retention(&mut self, node: &Node, config: &mut Config) {
        let Some(mut map) = self.reader.map(node, "`retention`") else {
            return;
        };
        if let Some(node) = map.take("max_age") {
            let age = self.duration(node, "`retention.max_age`");
            config.retention.max_age_ms = age.map(|d| d.as_millis() as i64);
        }
        if let Some(node) = map.take("max_events") {
            config.retention.max_events = self.reader.uint(node, "`retention.max_events`");
        }
        if let Some(node) = map.take("interval") {
            config.retention_interval = self
                .duration(node, "`retention.interval`")
                .unwrap_or(config.retention_interval);
        }
        self.reader.finish(map, RETENTION_KEYS, "`retention`");
    }

    /// A duration such as `500ms`, `30s`, `5m`, `1h` or `30d`.
    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = self.string(node, what)?;
        let parsed = parse_duration(&text).filter(|d| !d.is_zero());
        if parsed.is_none() {
            let message = format!(
                "{what} must be a duration such as `30s`, `5m`, `1h` or `30d`, found `{text}`"
            );
            self.reader.error(node.pos, message);
        }
        parsed
    }

    fn tls(&mut self, node: &Node) -> Option<TlsMode> {
        let text = self.string(node, "`smtp.tls`")?;
        match text.as_str() {
            "none" => Some(TlsMode::None),
            "starttls" => Some(TlsMode::Starttls),
            "implicit" => Some(TlsMode::Implicit),
            other => {
                let message =
                    format!("`smtp.tls` must be `none`, `starttls` or `implicit`, found `{other}`");
                self.reader.error(node.pos, message);
                None
            }
        }
    }

    fn port(&mut self, node: &Node) -> Option<u16> {
        let value = self.reader.uint(node, "`smtp.port`")?;
        match u16::try_from(value) {
            Ok(port) if port > 0 => Some(port),
            _ => {
                self.reader.error(
                    node.pos,
                    format!("`smtp.port` must be 1 to 65535, found {value}"),
                );
                None
            }
        }
    }

    /// A byte count: a whole number, or text such as `512KiB`, `1MiB`, `2MB`.
    fn size(&mut self, node: &Node, what: &str) -> Option<usize> {
        if let crate::yaml::Kind::Int(_) = node.kind {
            return self
                .reader
                .uint(node, what)
                .and_then(|n| usize::try_from(n).ok());
        }
        let text = self.string(node, what)?;
        let parsed = parse_size(&text);
        if parsed.is_none() {
            let message = format!(
                "{what} must be a size such as `1048576`, `512KiB` or `1MiB`, found `{text}`"
            );
            self.reader.error(node.pos, message);
        }
        parsed
    }

    fn required(
        &mut self,
        map: &mut crate::yaml::MapReader<'_>,
        key: &str,
        what: &str,
    ) -> Option<(String, Pos)> {
        match map.take(key) {
            Some(node) => self
                .string(node, &format!("`{key}`"))
                .map(|s| (s, node.pos)),
            None => {
                self.reader.error(map.pos, format!("{what} needs `{key}`"));
                None
            }
        }
    }

    fn path(&mut self, node: &Node, what: &str, base: &Path) -> Option<PathBuf> {
        self.string(node, what).map(|s| base.join(s))
    }

    /// A scalar as text with `${NAME}` replaced from the environment.
    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        let raw = self.reader.scalar_text(node, what)?;
        match expand_env(&raw, self.env) {
            Ok(value) => Some(value),
            Err(message) => {
                self.reader.error(node.pos, message);
                None
            }
        }
    }
}

fn default_port(tls: TlsMode) -> u16 {
    match tls {
        TlsMode::None => 25,
        TlsMode::Starttls => 587,
        TlsMode::Implicit => 465,
    }
}

/// A key travels in URLs and is the only thing that authenticates a sender.
fn check_api_key(key: &str) -> Result<(), &'static str> {
    if key.len() < 16 {
        return Err("is shorter than 16 characters; use a long random value");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    {
        return Err("may hold only letters, digits and `-_.~` so it can stand in a URL");
    }
    Ok(())
}

/// Replaces every `${NAME}` in `text`; `$$` stands for a literal `$`.
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or("`${` is not closed by `}`")?;
            let name = &body[..end];
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable name"
                ));
            }
            let value =
                env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a duration: a whole number and a unit, `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let number: u64 = text.get(..digits)?.parse().ok()?;
    let unit_ms: u64 = match text.get(digits..)?.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" => 60 * 1000,
        "h" => 60 * 60 * 1000,
        "d" => 24 * 60 * 60 * 1000,
        _ => return None,
    };
    number.checked_mul(unit_ms).map(Duration::from_millis)
}

/// Parses `1048576`, `512KiB`, `1MiB`, `2MB`, `64kb`.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: usize = text[..digits].parse().ok()?;
    let unit = match text[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1024,
        "mb" => 1000 * 1000,
        "mib" | "m" => 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("k".repeat(20)),
            "PASS" => Some("s3cret".into()),
            _ => None,
        }
    }

    fn load(text: &str) -> Result<Config, Vec<String>> {
        let mut reader = Reader::new("tripline.yaml");
        let config = Config::parse(&mut reader, text, Path::new("/etc/tripline"), env);
        match config {
            Some(c) if reader.diagnostics.is_empty() => Ok(c),
            _ => Err(reader
                .diagnostics
                .items
                .iter()
                .map(|d| d.to_string())
                .collect()),
        }
    }

    #[test]
    fn reads_a_full_file() {
        let text = "listen: 0.0.0.0:9000\npolicies: p\nmax_body: 2MiB\nsources:\n  - name: ci\n    api_key: ${KEY}\nsmtp:\n  host: mail\n  tls: implicit\n  username: u\n  password: ${PASS}\n  from: a@b.c\n";
        let c = load(text).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.policies, PathBuf::from("/etc/tripline/p"));
        assert_eq!(c.data_dir, PathBuf::from("/etc/tripline/data"));
        assert_eq!(c.max_body, 2 * 1024 * 1024);
        assert_eq!(c.sources[0].api_key.expose(), "k".repeat(20));
        let smtp = c.smtp.unwrap();
        assert_eq!((smtp.port, smtp.tls), (465, TlsMode::Implicit));
        assert_eq!(format!("{:?}", smtp.password), "Some(<redacted>)");
    }

    #[test]
    fn reports_every_mistake_with_its_position() {
        let text = "listen: nowhere\nsmtp:\n  host: mail\n  port: 99999\n  from: ${NOPE}\n  tsl: none\nsource: []\n";
        let errors = load(text).unwrap_err();
        assert_eq!(
            errors,
            [
                "tripline.yaml:1:9: `listen` must be an address and port such as `127.0.0.1:8080`, found `nowhere`",
                "tripline.yaml:4:9: `smtp.port` must be 1 to 65535, found 99999",
                "tripline.yaml:5:9: environment variable `NOPE` is not set",
                "tripline.yaml:6:3: unknown key `tsl` in `smtp`; did you mean `tls`?",
                "tripline.yaml:7:1: unknown key `source` in the configuration; did you mean `sources`?",
            ]
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let errors = load("sources: github\n").unwrap_err();
        assert_eq!(
            errors,
            ["tripline.yaml:1:10: `sources` must be a list, found the text `github`"]
        );
    }

    #[test]
    fn weak_and_shared_keys_are_refused() {
        let text = "sources:\n  - {name: a, api_key: short}\n  - {name: b, api_key: '${KEY}'}\n  - {name: c, api_key: '${KEY}'}\n";
        let errors = load(text).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("2:24: the `api_key` of source `a` is shorter than 16"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("4:24: two sources share one `api_key`"),
            "{errors:?}"
        );
    }

    #[test]
    fn env_expansion_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("${PASS}", Ok("s3cret")),
            ("a-${PASS}-b", Ok("a-s3cret-b")),
            ("cost $$5", Ok("cost $5")),
            ("lone $ sign", Ok("lone $ sign")),
            (
                "${MISSING}",
                Err("environment variable `MISSING` is not set"),
            ),
            ("${OPEN", Err("`${` is not closed by `}`")),
            ("${}", Err("`${}` is not a valid environment variable name")),
        ];
        for (input, want) in cases {
            let got = expand_env(input, &env);
            assert_eq!(got.as_deref().map_err(String::as_str), *want, "{input}");
        }
    }

    #[test]
    fn duration_table() {
        let ms = |n| Some(Duration::from_millis(n));
        for (text, want) in [
            ("500ms", ms(500)),
            ("30s", ms(30_000)),
            ("5m", ms(300_000)),
            ("1h", ms(3_600_000)),
            ("30d", ms(2_592_000_000)),
            ("1 h", ms(3_600_000)),
            ("1", None),
            ("h", None),
            ("1w", None),
            ("-1h", None),
            ("99999999999999999999d", None),
        ] {
            assert_eq!(parse_duration(text), want, "{text}");
        }
    }

    #[test]
    fn reads_sources_with_signatures_rate_limits_and_key_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), format!("{}\n", "f".repeat(20))).unwrap();
        let text = "sources:\n  - name: gh\n    api_key_file: key\n    verify: {github: {secret: '${PASS}'}}\n    rate_limit: {requests: 5, per: 1m}\n  - name: st\n    api_key: ${KEY}\n    verify: {stripe: {secret: x, tolerance: 1m}}\nretention: {max_age: 30d, max_events: 1000}\nlog_format: json\nlog_level: debug\nwatch: false\n";
        let mut reader = Reader::new("tripline.yaml");
        let c = Config::parse(&mut reader, text, dir.path(), env);
        let c = c.unwrap_or_else(|| panic!("{}", reader.diagnostics));
        assert!(reader.diagnostics.is_empty(), "{}", reader.diagnostics);
        assert_eq!(c.sources[0].api_key.expose(), "f".repeat(20));
        let gh = c.sources[0].verify.as_ref().unwrap();
        assert_eq!(gh.scheme, crate::verify::Scheme::Github);
        let limit = c.sources[0].rate_limit.unwrap();
        assert_eq!((limit.requests, limit.per), (5, Duration::from_secs(60)));
        assert_eq!(
            c.sources[1].verify.as_ref().unwrap().tolerance,
            Duration::from_secs(60)
        );
        assert_eq!(c.retention.max_age_ms, Some(30 * 86_400_000));
        assert_eq!(c.retention.max_events, Some(1000));
        assert_eq!(
            (c.log_format, c.log_level.as_deref(), c.watch),
            (LogFormat::Json, Some("debug"), false)
        );
    }

    #[test]
    fn source_mistakes_are_located() {
        let text = "sources:\n  - name: a\n    api_key_file: /nonexistent/key\n  - name: b\n    api_key: ${KEY}\n    verify: {githib: {secret: x}}\n  - name: c\n    api_key: cccccccccccccccccccc\n    verify: {hmac: {secret: x, header: X-Sig, algorithm: md5}}\n    rate_limit: {requests: 0}\nretention: {max_age: forever}\nlog_format: xml\n";
        let errors = load(text).unwrap_err();
        let want = [
            "tripline.yaml:3:19: cannot read `/nonexistent/key`: No such file or directory (os error 2)",
            "tripline.yaml:6:13: `verify` needs exactly one of `github`, `stripe`, `slack`, `standard_webhooks`, `hmac`",
            "tripline.yaml:6:14: unknown key `githib` in `verify`; did you mean `github`?",
            "tripline.yaml:9:58: `algorithm` must be `sha256` or `sha512`, found `md5`",
            "tripline.yaml:10:28: `rate_limit.requests` must be 1 or more",
            "tripline.yaml:11:22: `retention.max_age` must be a duration such as `30s`, `5m`, `1h` or `30d`, found `forever`",
            "tripline.yaml:12:13: `log_format` must be `text` or `json`, found `xml`",
        ];
        assert_eq!(errors, want);
    }

    #[test]
    fn size_table() {
        for (text, want) in [
            ("100", Some(100)),
            ("512KiB", Some(512 * 1024)),
            ("1MiB", Some(1 << 20)),
            ("2 MB", Some(2_000_000)),
            ("1GB", None),
            ("lots", None),
        ] {
            assert_eq!(parse_size(text), want, "{text}");
        }
    }
}
