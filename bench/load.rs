//! The load benchmark: tripline beside a bare axum handler and two peers, under the same
//! load, on loopback, printed as one table.
//!
//! It starts everything it needs and stops it again: the baseline (this program run as
//! `load baseline PORT`, a handler that reads the body and answers 202), tripline with
//! 10 and with 10,000 policies, adnanh/webhook with an equivalent JSON trigger rule,
//! Prometheus Alertmanager receiving equivalent alerts, and an SMTP sink for the end to
//! end run. The loads are wrk (64 connections, bounded in time) and, end to end, a
//! paced sender that measures from request to the email accepted by the sink.
//!
//! The servers of the rate table all start first and then take turns, one wrk run each
//! per round: every figure is the median of its rounds, and every ratio to the bare
//! handler the median of the ratios within a round, so that a machine whose speed
//! drifts during the benchmark does not favour whoever ran first.
//!
//! Run: `cargo build --release && cargo run --release --example load`
//! (options: `--seconds N` per wrk run, `--rounds N`, `--soak N` for the
//! 10,000-policy run that then watches memory, `--rate N` and `--e2e-seconds N` for
//! the end-to-end run, `--only ingest,peers,e2e` for some of the parts).
//! Needs `wrk`, and for the peers `webhook` and `prometheus-alertmanager` (Debian).

#[path = "generate.rs"]
mod generate;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use mailin_embedded::response::Response;

/// The API key of the benchmark source.
const KEY: &str = "bench-key-0123456789abcdef";

/// How many different messages wrk cycles through.
const MESSAGES: usize = 1024;

struct Options {
    tripline: PathBuf,
    seconds: u64,
    /// How many times each contender of the rate table runs, in turn with the others.
    rounds: usize,
    soak: u64,
    rate: u64,
    e2e_seconds: u64,
    connections: u32,
    /// The parts to run: `ingest`, `peers`, `e2e`.
    only: Vec<String>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let mut options = Options {
            tripline: PathBuf::from("target/release/tripline"),
            seconds: 10,
            rounds: 3,
            soak: 60,
            rate: 1000,
            e2e_seconds: 20,
            connections: 64,
            only: PARTS.iter().map(|p| p.to_string()).collect(),
        };
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("`{flag}` needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .with_context(|| format!("`{flag} {value}`"))
            };
            match flag.as_str() {
                "--tripline" => options.tripline = PathBuf::from(&value),
                "--seconds" => options.seconds = number()?,
                "--rounds" => options.rounds = number()?.max(1) as usize,
                "--soak" => options.soak = number()?,
                "--rate" => options.rate = number()?,
                "--e2e-seconds" => options.e2e_seconds = number()?,
                "--connections" => options.connections = number()? as u32,
                "--only" => {
                    options.only = value.split(',').map(str::to_string).collect();
                    if let Some(part) = options.only.iter().find(|p| !PARTS.contains(&p.as_str())) {
                        bail!("unknown part `{part}`; the parts are {}", PARTS.join(", "));
                    }
                }
                _ => bail!("unknown option `{flag}`"),
            }
        }
        Ok(options)
    }
}

/// The parts of the benchmark, in the order they run.
const PARTS: &[&str] = &["ingest", "peers", "e2e"];

impl Options {
    fn runs(&self, part: &str) -> bool {
        self.only.iter().any(|p| p == part)
    }
}

/// One line of the table.
#[derive(Default)]
struct Row {
    what: String,
    rps: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    errors: u64,
    note: String,
    /// Paced at a fixed rate rather than as fast as it goes: no ratio to the baseline.
    paced: bool,
    /// The median, over the rounds, of this rate over the bare handler's in that round.
    ratio: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("baseline") {
        let port = args.nth(1).context("baseline needs a port")?.parse()?;
        return baseline(port);
    }
    let options = Options::parse(args)?;
    // reqwest is built without a default TLS provider; plain HTTP still asks for one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if !options.tripline.exists() {
        bail!(
            "`{}` not found; run `cargo build --release` first",
            options.tripline.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let text_load = write_text_load(dir.path())?;
    let json_load = write_json_load(dir.path(), "PUT", json_body(), "")?;
    let mut notes = Vec::new();

    // Every contender runs once per round, in turn, so that a machine that speeds up
    // or slows down during the benchmark does so for all of them; each ratio to the
    // bare handler is taken within a round.
    let tripline = |subdir: &str, name: &str, generated, extra, script: &Path| {
        Contender::tripline(&options, dir.path(), subdir, name, generated, extra, script)
    };
    let mut contenders = vec![Contender::bare(&text_load)?];
    if options.runs("ingest") {
        contenders.push(tripline(
            "ten",
            "tripline, 10 policies",
            10,
            None,
            &text_load,
        )?);
        let many = tripline(
            "many",
            "tripline, 10,000 policies",
            10_000,
            None,
            &text_load,
        )?;
        if let Some(Running::Tripline(t)) = &many.running {
            notes.push(format!(
                "10,000 policies: ready {:.2} s after start; resident {} MB idle",
                t.ready_after.as_secs_f64(),
                rss_mb(t.service.pid())
            ));
        }
        contenders.push(many);
    }
    if options.runs("peers") {
        contenders.push(tripline(
            "json",
            "tripline, JSON rule",
            0,
            Some(JSON_POLICY),
            &json_load,
        )?);
        contenders.push(peer_webhook(dir.path())?);
        contenders.push(peer_alertmanager(dir.path())?);
    }
    for _ in 0..options.rounds {
        for contender in &mut contenders {
            contender.run(&options)?;
        }
    }
    let mut rows: Vec<Row> = contenders
        .iter()
        .map(|c| c.row(&contenders[0].runs))
        .collect();
    if let [_, ten, many, ..] = contenders.as_slice() {
        if options.runs("ingest") {
            notes.push(format!(
                "10,000 policies against 10, median of the rounds: {:.2}x",
                median_ratio(&many.runs, &ten.runs).unwrap_or(f64::NAN)
            ));
            if let Some(Running::Tripline(t)) = &many.running {
                let (row, samples) = wrk_watching(&options, &text_load, t)?;
                notes.push(format!(
                    "10,000 policies, {} s under load ({:.0} req/s): resident MB every 5 s {samples:?}",
                    options.soak,
                    row.rps.unwrap_or(0.0)
                ));
            }
        }
    }
    drop(contenders);
    if options.runs("ingest") {
        notes.push(check_figures(&options, dir.path())?);
    }
    if options.runs("e2e") {
        rows.push(end_to_end(&options, dir.path())?);
    }
    print_table(&rows, &notes);
    Ok(())
}

/// What a contender of the rate table runs on.
enum Running {
    /// Held only to be stopped when the contender is dropped.
    Service {
        _kept: Service,
    },
    Tripline(Tripline),
}

/// One line of the rate table: a running server, the load it gets, and its runs.
struct Contender {
    name: String,
    /// `None` when the program could not start; the note says why.
    running: Option<Running>,
    script: PathBuf,
    url: String,
    note: String,
    runs: Vec<Row>,
}

impl Contender {
    fn bare(script: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let service = Service::start(
            "baseline",
            Command::new(std::env::current_exe()?).args(["baseline", &port.to_string()]),
            port,
            "/",
        )?;
        Ok(Contender {
            name: "bare axum handler, 300 B body".into(),
            running: Some(Running::Service { _kept: service }),
            script: script.to_path_buf(),
            url: format!("http://127.0.0.1:{port}/webhook/{KEY}"),
            note: String::new(),
            runs: Vec::new(),
        })
    }

    /// tripline in `parent/dir` with `generated` generated policies and `extra`.
    fn tripline(
        options: &Options,
        parent: &Path,
        dir: &str,
        name: &str,
        generated: usize,
        extra: Option<&str>,
        script: &Path,
    ) -> anyhow::Result<Self> {
        let tripline = Tripline::start(options, parent, dir, generated, extra)?;
        Ok(Contender {
            name: name.into(),
            url: tripline.webhook_url(),
            running: Some(Running::Tripline(tripline)),
            script: script.to_path_buf(),
            note: String::new(),
            runs: Vec::new(),
        })
    }

    /// A peer at `url`, or a line saying it could not start.
    fn peer(name: &str, started: anyhow::Result<Service>, script: PathBuf, url: String) -> Self {
        let (running, note) = match started {
            Ok(service) => (Some(Running::Service { _kept: service }), String::new()),
            Err(e) => (None, format!("not run: {e:#}")),
        };
        Contender {
            name: name.into(),
            running,
            script,
            url,
            note,
            runs: Vec::new(),
        }
    }

    fn run(&mut self, options: &Options) -> anyhow::Result<()> {
        if self.running.is_some() {
            self.runs.push(wrk(options, &self.script, &self.url)?);
        }
        Ok(())
    }

    /// The median of each figure over the runs, and the median ratio to `bare`.
    fn row(&self, bare: &[Row]) -> Row {
        let figure = |f: fn(&Row) -> Option<f64>| {
            let mut values: Vec<f64> = self.runs.iter().filter_map(f).collect();
            values.sort_by(f64::total_cmp);
            percentile(&values, 0.5)
        };
        Row {
            what: self.name.clone(),
            rps: figure(|r| r.rps),
            p50_ms: figure(|r| r.p50_ms),
            p99_ms: figure(|r| r.p99_ms),
            errors: self.runs.iter().map(|r| r.errors).sum(),
            note: [self.note.as_str()]
                .into_iter()
                .chain(self.runs.iter().map(|r| r.note.as_str()))
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
            paced: false,
            ratio: median_ratio(&self.runs, bare),
        }
    }
}

/// The median over the rounds of `runs`' rate over `base`'s rate in the same round.
fn median_ratio(runs: &[Row], base: &[Row]) -> Option<f64> {
    let mut ratios: Vec<f64> = runs
        .iter()
        .zip(base)
        .filter_map(|(r, b)| Some(r.rps? / b.rps.filter(|b| *b > 0.0)?))
        .collect();
    ratios.sort_by(f64::total_cmp);
    percentile(&ratios, 0.5)
}

/// The bare baseline: reads the body and answers 202 with a small JSON body.
fn baseline(port: u16) -> anyhow::Result<()> {
    use axum::routing::put;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route(
                "/webhook/{key}",
                put(|body: axum::body::Bytes| async move {
                    let answer = format!("{{\"bytes\":{}}}", body.len());
                    (axum::http::StatusCode::ACCEPTED, answer)
                }),
            );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// A child process that is killed when dropped.
struct Service {
    child: Child,
}

impl Service {
    /// Spawns `command` and waits until `GET path` on `port` answers.
    fn start(name: &str, command: &mut Command, port: u16, path: &str) -> anyhow::Result<Self> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let mut service = Service { child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http_ok(port, path) {
            if let Some(status) = service.child.try_wait()? {
                bail!("{name} exited with {status} before answering");
            }
            if Instant::now() > deadline {
                bail!("{name} did not answer within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(service)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET path` answers 2xx.
fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 2")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A tripline server in its own directory.
struct Tripline {
    service: Service,
    port: u16,
    ready_after: Duration,
}

impl Tripline {
    /// Starts tripline with `generated` generated policies and, if given, one more file.
    fn start(
        options: &Options,
        parent: &Path,
        name: &str,
        generated: usize,
        extra: Option<&str>,
    ) -> anyhow::Result<Self> {
        let dir = parent.join(name);
        std::fs::create_dir_all(dir.join("policies"))?;
        if generated > 0 {
            let text = generate::policies(generated, &mut generate::policy_seed(generated), "");
            std::fs::write(dir.join("policies/generated.yaml"), text)?;
        }
        if let Some(extra) = extra {
            std::fs::write(dir.join("policies/extra.yaml"), extra)?;
        }
        let port = free_port()?;
        std::fs::write(dir.join("tripline.yaml"), config(port, ""))?;
        Self::run(options, &dir, port)
    }

    fn run(options: &Options, dir: &Path, port: u16) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut command = Command::new(&options.tripline);
        command
            .arg("serve")
            .arg("--config")
            .arg(dir.join("tripline.yaml"));
        let service = Service::start("tripline", &mut command, port, "/-/ready")?;
        Ok(Tripline {
            service,
            port,
            ready_after: started.elapsed(),
        })
    }

    fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/webhook/{KEY}", self.port)
    }
}

/// A tripline.yaml on `port`, with `more` appended.
fn config(port: u16, more: &str) -> String {
    format!(
        "listen: 127.0.0.1:{port}\npolicies: policies\ndata_dir: data\nlog_level: warn\n\
         watch: false\nsources:\n  - name: bench\n    api_key: {KEY}\n{more}"
    )
}

/// The policy tripline evaluates in the comparison with the peers.
const JSON_POLICY: &str = "\
name: workflow-failed
category: critical
extract:
  - json: {conclusion: $.workflow_run.conclusion, repo: $.repository.full_name}
conditions:
  - {field: conclusion, equals: failure}
";

/// A GitHub-like `workflow_run` body that the JSON rules evaluate and do not match.
fn json_body() -> String {
    serde_json::json!({
        "action": "completed",
        "workflow_run": {
            "id": 9_421_337, "name": "CI", "head_branch": "main", "conclusion": "success",
            "status": "completed", "html_url": "https://github.com/acme/api/actions/runs/9421337"
        },
        "repository": {"full_name": "acme/api", "private": true},
        "sender": {"login": "octocat"}
    })
    .to_string()
}

/// A wrk script that sends [`MESSAGES`] different text messages in turn.
fn write_text_load(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut rng = generate::message_seed();
    let mut script = String::from("wrk.method = \"PUT\"\n");
    script.push_str("wrk.headers[\"Content-Type\"] = \"text/plain\"\nlocal bodies = {\n");
    for _ in 0..MESSAGES {
        writeln!(script, "  {:?},", generate::message(&mut rng))?;
    }
    script.push_str("}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n");
    script.push_str("  return wrk.format(nil, nil, nil, bodies[i])\nend\n");
    let path = dir.join("text.lua");
    std::fs::write(&path, script)?;
    Ok(path)
}

/// A wrk script that sends one JSON body with `method`; `headers` is more Lua.
fn write_json_load(
    dir: &Path,
    method: &str,
    body: String,
    headers: &str,
) -> anyhow::Result<PathBuf> {
    let script = format!(
        "wrk.method = \"{method}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         {headers}wrk.body = {body:?}\n"
    );
    let path = dir.join(format!("json-{}.lua", fastrand::u32(..)));
    std::fs::write(&path, script)?;
    Ok(path)
}

/// Runs wrk for `options.seconds` against `url`.
fn wrk(options: &Options, script: &Path, url: &str) -> anyhow::Result<Row> {
    wrk_for(options, options.seconds, script, url)
}

fn wrk_for(options: &Options, seconds: u64, script: &Path, url: &str) -> anyhow::Result<Row> {
    let output = Command::new("wrk")
        .args(["-t2", &format!("-c{}", options.connections)])
        .args([&format!("-d{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .context("cannot run wrk; install it (Debian package `wrk`)")?;
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(parse_wrk(&String::from_utf8_lossy(&output.stdout)))
}

/// The 10,000-policy run: wrk for `options.soak` seconds while resident memory is
/// sampled every 5 seconds.
fn wrk_watching(
    options: &Options,
    script: &Path,
    tripline: &Tripline,
) -> anyhow::Result<(Row, Vec<u64>)> {
    let pid = tripline.service.pid();
    let samples = Arc::new(Mutex::new(vec![rss_mb(pid)]));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (samples, done) = (samples.clone(), done.clone());
        std::thread::spawn(move || {
            let mut next = Instant::now() + Duration::from_secs(5);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if Instant::now() >= next {
                    samples.lock().expect("not poisoned").push(rss_mb(pid));
                    next += Duration::from_secs(5);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let row = wrk_for(options, options.soak, script, &tripline.webhook_url());
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    let samples = samples.lock().expect("not poisoned").clone();
    Ok((row?, samples))
}

/// Requests/s, median and 99th percentile latency, and failed requests from wrk's report.
fn parse_wrk(report: &str) -> Row {
    let mut row = Row::default();
    for line in report.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(n)) => row.rps = n.parse().ok(),
            (Some("50%"), Some(t)) => row.p50_ms = parse_duration_ms(t),
            (Some("99%"), Some(t)) => row.p99_ms = parse_duration_ms(t),
            (Some("Non-2xx"), _) => {
                row.errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            }
            (Some("Socket"), _) => row.note = line.to_string(),
            _ => {}
        }
    }
    row
}

/// wrk's `1.23ms`, `456.00us` or `1.02s`, in milliseconds.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number / 1000.0),
        "ms" => Some(number),
        "s" => Some(number * 1000.0),
        "m" => Some(number * 60_000.0),
        _ => None,
    }
}

/// Resident memory of `pid` in MB.
fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// How long `tripline check` takes on 10,000 policies, and its peak memory.
fn check_figures(options: &Options, parent: &Path) -> anyhow::Result<String> {
    let dir = parent.join("many");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%e s, peak %M kB"])
        .arg(&options.tripline)
        .arg("check")
        .arg("--config")
        .arg(dir.join("tripline.yaml"))
        .output()
        .context("cannot run /usr/bin/time (Debian package `time`)")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let figures = stderr.lines().last().unwrap_or("").to_string();
    Ok(format!(
        "tripline check on 10,000 policies: {figures} ({})",
        String::from_utf8_lossy(&output.stdout).trim()
    ))
}

/// adnanh/webhook with a trigger rule on the same JSON field as tripline's policy.
fn peer_webhook(dir: &Path) -> anyhow::Result<Contender> {
    let hooks = serde_json::json!([{
        "id": "bench",
        "execute-command": "/bin/true",
        "trigger-rule": {"match": {
            "type": "value", "value": "failure",
            "parameter": {"source": "payload", "name": "workflow_run.conclusion"}
        }}
    }]);
    let hooks_file = dir.join("hooks.json");
    std::fs::write(&hooks_file, hooks.to_string())?;
    let port = free_port()?;
    let mut command = Command::new("webhook");
    command
        .arg("-hooks")
        .arg(&hooks_file)
        .args(["-ip", "127.0.0.1", "-port", &port.to_string()]);
    let started = Service::start("webhook", &mut command, port, "/")
        .context("install the Debian package `webhook`");
    Ok(Contender::peer(
        "adnanh/webhook, JSON rule (in memory)",
        started,
        write_json_load(dir, "POST", json_body(), "")?,
        format!("http://127.0.0.1:{port}/hooks/bench"),
    ))
}

/// Prometheus Alertmanager receiving one alert per request, routed to a receiver
/// that sends nothing.
fn peer_alertmanager(dir: &Path) -> anyhow::Result<Contender> {
    let config =
        "route: {receiver: quiet, group_by: [alertname, repo]}\nreceivers: [{name: quiet}]\n";
    let config_file = dir.join("alertmanager.yml");
    std::fs::write(&config_file, config)?;
    let port = free_port()?;
    let mut command = Command::new("prometheus-alertmanager");
    command
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.path={}",
            dir.join("alertmanager").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=");
    let started = Service::start("alertmanager", &mut command, port, "/-/ready")
        .context("install the Debian package `prometheus-alertmanager`");
    let alert = serde_json::json!([{
        "labels": {"alertname": "WorkflowFailed", "repo": "acme/api", "severity": "critical"},
        "annotations": {"summary": "CI failed on main", "url": "https://github.com/acme/api/actions/runs/9421337"}
    }]);
    Ok(Contender::peer(
        "Alertmanager, POST /api/v2/alerts (in memory)",
        started,
        write_json_load(dir, "POST", alert.to_string(), "")?,
        format!("http://127.0.0.1:{port}/api/v2/alerts"),
    ))
}

/// Arrival times of the end-to-end emails, by sequence number.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

/// An SMTP sink that notes when each `e2e N` subject arrives.
#[derive(Clone)]
struct Sink {
    arrivals: Arrivals,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for Sink {
    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> Response {
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let now = Instant::now();
        let text = String::from_utf8_lossy(&self.data);
        let seq = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: e2e "))
            .and_then(|n| n.trim().parse().ok());
        if let Some(seq) = seq {
            self.arrivals.lock().expect("not poisoned").insert(seq, now);
        }
        mailin_embedded::response::OK
    }
}

/// The end-to-end probe policy: each `e2e-probe seq=N` message sends one email.
const PROBE_POLICY: &str = "\
name: e2e-probe
extract: [{kv: {keys: [seq]}}]
conditions: [{field: message, contains: e2e-probe}]
notify:
  - email: {to: [oncall@example.com], subject: 'e2e {{ fields.seq }}'}
";

/// At `options.rate` messages/s with 100 policies: from request to email accepted.
fn end_to_end(options: &Options, parent: &Path) -> anyhow::Result<Row> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let smtp_port = listener.local_addr()?.port();
    let arrivals = Arrivals::default();
    let sink = Sink {
        arrivals: arrivals.clone(),
        data: Vec::new(),
    };
    let mut server = mailin_embedded::Server::new(sink);
    // One thread per connection; tripline sends up to 16 at once.
    server
        .with_name("localhost")
        .with_num_threads(64)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        if let Err(e) = server.serve() {
            eprintln!("the SMTP sink stopped: {e}");
        }
    });

    let dir = parent.join("e2e");
    std::fs::create_dir_all(dir.join("policies"))?;
    let generated = generate::policies(99, &mut generate::policy_seed(99), "");
    std::fs::write(dir.join("policies/generated.yaml"), generated)?;
    std::fs::write(dir.join("policies/probe.yaml"), PROBE_POLICY)?;
    let port = free_port()?;
    let smtp = format!(
        "smtp: {{host: 127.0.0.1, port: {smtp_port}, tls: none, from: 'tripline <bench@localhost>'}}\n"
    );
    std::fs::write(dir.join("tripline.yaml"), config(port, &smtp))?;
    let tripline = Tripline::run(options, &dir, port)?;

    let count = options.rate * options.e2e_seconds;
    let runtime = tokio::runtime::Runtime::new()?;
    let sent = runtime.block_on(send_paced(tripline.webhook_url(), options.rate, count))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().expect("not poisoned").len() < sent.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(tripline);

    let arrivals = arrivals.lock().expect("not poisoned");
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(seq, at)| Some(arrivals.get(seq)?.duration_since(*at).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let lost = count - latencies.len() as u64;
    Ok(Row {
        what: format!("end to end, {} msg/s, 100 policies, to SMTP", options.rate),
        rps: Some(sent.len() as f64 / options.e2e_seconds as f64),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        errors: lost,
        note: format!("{} emails received of {count}", latencies.len()),
        paced: true,
        ratio: None,
    })
}

/// Sends `count` probe messages at `rate` per second; answers when each was sent.
async fn send_paced(url: String, rate: u64, count: u64) -> anyhow::Result<Vec<(u64, Instant)>> {
    let client = reqwest::Client::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rng = generate::message_seed();
    let mut tasks = Vec::with_capacity(count as usize);
    for seq in 0..count {
        ticks.tick().await;
        let mut body = format!("e2e-probe seq={seq} ");
        body.push_str(&generate::message(&mut rng));
        body.truncate(300);
        let request = client.put(&url).body(body);
        let at = Instant::now();
        tasks.push(tokio::spawn(async move {
            let ok = matches!(request.send().await, Ok(r) if r.status().as_u16() == 202);
            (seq, at, ok)
        }));
    }
    let mut sent = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (seq, at, ok) = task.await?;
        if ok {
            sent.push((seq, at));
        }
    }
    Ok(sent)
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get(((last as f64) * q).round() as usize).copied()
}

fn print_table(rows: &[Row], notes: &[String]) {
    println!(
        "| {:<44} | {:>10} | {:>8} | {:>8} | {:>8} | {:>7} | note |",
        "what", "req/s", "vs bare", "p50 ms", "p99 ms", "errors"
    );
    println!(
        "|{:-<46}|{:->12}|{:->10}|{:->10}|{:->10}|{:->9}|------|",
        "", "", "", "", "", ""
    );
    let figure =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for row in rows {
        let ratio = row.ratio.filter(|_| !row.paced);
        println!(
            "| {:<44} | {:>10} | {:>8} | {:>8} | {:>8} | {:>7} | {} |",
            row.what,
            figure(row.rps, 0),
            figure(ratio, 2),
            figure(row.p50_ms, 2),
            figure(row.p99_ms, 2),
            row.errors,
            row.note
        );
    }
    println!();
    for note in notes {
        println!("- {note}");
    }
}
