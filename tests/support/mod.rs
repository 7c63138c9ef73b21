//! Test support: the real `tripline` binary started on loopback port 0 in a temporary
//! directory, and real peers for it to talk to.

#![allow(dead_code)]

pub mod browser;
pub mod http;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API key of the `ci` source in [`TestServer::config`].
pub const KEY: &str = "test-key-0123456789abcdef";

/// Picks the TLS provider for the test process's own clients and servers, as the
/// binary does for itself; several are compiled in, so none is chosen by default.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The path of the built binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tripline")
}

/// A working directory with a config file, a policies folder and a data folder.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `tripline.yaml`; `extra` is appended as more top-level YAML.
    pub fn config(&self, extra: &str) -> PathBuf {
        let text = format!(
            "listen: 127.0.0.1:0\npolicies: policies\ndata_dir: data\nsources:\n  - name: ci\n    api_key: {KEY}\n{extra}"
        );
        let path = self.path().join("tripline.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes a policy file.
    pub fn policy(&self, name: &str, text: &str) {
        std::fs::write(self.path().join("policies").join(name), text).unwrap();
    }
}

/// Runs `tripline ARGS` in `dir` to completion.
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// A running `tripline serve`; killed when dropped.
pub struct TestServer {
    child: Child,
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl TestServer {
    /// Starts `tripline serve --config <workspace>/tripline.yaml`.
    pub fn start(workspace: &Workspace, env: &[(&str, &str)]) -> Self {
        let config = workspace.path().join("tripline.yaml");
        Self::spawn(
            workspace.path(),
            &["serve", "--config", config.to_str().unwrap()],
            env,
        )
    }

    /// Starts the binary with `args` in `dir` and waits until it listens.
    pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        // Callers may override RUST_LOG (an empty value leaves `log_level` in charge).
        install_tls_provider();
        let mut child = Command::new(binary())
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info,tripline=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    let _ = addr_tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("tripline did not start:\n{}", log.lock().unwrap());
            }
        };
        TestServer {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// The process id, for sending signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal such as `TERM` or `HUP` to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The host and port, for raw TCP connections.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Waits until the log contains `text`, or panics after 20 s.
    pub fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "`{text}` never logged:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts `body` to `/webhook/{KEY}` and returns the event id from the 202.
    pub async fn send(&self, body: &str) -> String {
        let response = reqwest::Client::new()
            .post(self.url(&format!("/webhook/{KEY}")))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let json: serde_json::Value = response.json().await.unwrap();
        json["event_id"].as_str().unwrap().to_string()
    }

    /// Posts `body` to `/webhook/{KEY}` with extra headers; returns the event id.
    pub async fn send_with(&self, body: &str, headers: &[(&str, &str)]) -> String {
        let mut request = reqwest::Client::new()
            .post(self.url(&format!("/webhook/{KEY}")))
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 202);
        let json: serde_json::Value = response.json().await.unwrap();
        json["event_id"].as_str().unwrap().to_string()
    }

    /// Sends `method path` with an optional JSON body; returns status and JSON answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new().request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = reqwest::get(self.url(path)).await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Waits until `GET path` satisfies `ready`, or panics after 20 s.
    pub async fn wait_json(
        &self,
        path: &str,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let json = self.get_json(path).await;
            if ready(&json) {
                return json;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {path}: {json}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The address in the "listening" log line, in text (`addr=...`) or JSON format.
fn listening_addr(line: &str) -> Option<String> {
    if !line.contains("listening") {
        return None;
    }
    if let Some(addr) = line.split("addr=").nth(1) {
        return Some(addr.trim().to_string());
    }
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    json["fields"]["addr"].as_str().map(str::to_string)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
