//! A headless Chromium driven over the WebDriver protocol (Debian's `chromium` and
//! `chromium-driver`), with just the commands the web page tests need.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// Finds a program, or fails the test with what to install.
fn require(path: &str, package: &str) {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: the browser test needs Debian's `{package}` package \
         (apt-get install chromium chromium-driver; .ci/run installs them)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub async fn start() -> Browser {
        require("/usr/bin/chromium", "chromium");
        require("/usr/bin/chromedriver", "chromium-driver");
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            client,
            _profile: profile,
        };
        let created = browser.call("POST", "/session", Some(capabilities)).await;
        browser.session = created["sessionId"]
            .as_str()
            .expect("no session id")
            .to_string();
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self.client.post(url).json(&body.unwrap_or(json!({}))),
            "DELETE" => self.client.delete(url),
            _ => self.client.get(url),
        };
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        let value = response["value"].clone();
        assert!(value.get("error").is_none(), "{method} {path}: {value}");
        value
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.path("/url"), Some(json!({"url": url})))
            .await;
    }

    pub async fn title(&self) -> String {
        self.call("GET", &self.path("/title"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub async fn current_url(&self) -> String {
        self.call("GET", &self.path("/url"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The page's address once it contains `part`: a click that submits a form or
    /// follows a link can return before the browser has left the page it was on.
    pub async fn wait_for_url(&self, part: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.current_url().await;
            if url.contains(part) {
                return url;
            }
            assert!(Instant::now() < deadline, "still at {url}, not at `{part}`");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The ids of the elements matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        let body = json!({"using": "css selector", "value": css});
        let found = self.call("POST", &self.path("/elements"), Some(body)).await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        assert!(!all.is_empty(), "nothing on the page matches `{css}`");
        all[0].clone()
    }

    pub async fn text(&self, element: &str) -> String {
        let path = self.path(&format!("/element/{element}/text"));
        self.call("GET", &path, None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub async fn text_of(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.text(&element).await
    }

    pub async fn click(&self, element: &str) {
        let path = self.path(&format!("/element/{element}/click"));
        self.call("POST", &path, Some(json!({}))).await;
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        let path = self.path(&format!("/element/{element}/value"));
        self.call("POST", &path, Some(json!({"text": text}))).await;
    }

    /// A PNG of the window, for a person to look at.
    pub async fn screenshot(&self, file: &std::path::Path) {
        use base64::Engine as _;
        let png = self.call("GET", &self.path("/screenshot"), None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(file, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing chromedriver would leave its Chromium running: end the session first,
        // which closes the browser, with a plain request since `drop` cannot await.
        if !self.session.is_empty() {
            let _ = end_session(&self.base, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{id}`, waiting for chromedriver's answer, which comes once the
/// browser has quit (chromedriver may keep the connection open after it).
fn end_session(base: &str, session: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: {address}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = [0; 1024];
    stream.read(&mut answer).map(drop)
}
