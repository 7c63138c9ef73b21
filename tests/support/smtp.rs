//! A real SMTP server on loopback for tests: mailin-embedded, spoken to over TCP, with
//! optional STARTTLS (a CA and leaf certificate made per test) and AUTH. It can be
//! scripted to answer a recipient or a message with any reply, such as 451 or 550.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::response::{self, Response};
use mailin_embedded::{AuthMechanism, Handler, Server, SslConfig};

/// One message as the server received it.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// The user that authenticated on the session, if any.
    pub user: Option<String>,
}

impl Mail {
    /// The value of a header in the raw message.
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }

    /// The body with quoted-printable soft line breaks undone.
    pub fn body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("");
        decode_quoted_printable(body)
    }
}

/// Where in the conversation a scripted reply is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// To `RCPT TO`: a refused recipient.
    Rcpt,
    /// After the message data: the message refused as a whole.
    DataEnd,
}

type Script = Arc<Mutex<VecDeque<(Stage, u16, String)>>>;

#[derive(Clone)]
struct Recorder {
    mail: Arc<Mutex<Vec<Mail>>>,
    script: Script,
    credentials: Option<(String, String)>,
    user: Option<String>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn rcpt(&mut self, _to: &str) -> Response {
        self.scripted(Stage::Rcpt).unwrap_or(response::OK)
    }

    fn data_end(&mut self) -> Response {
        if let Some(reply) = self.scripted(Stage::DataEnd) {
            return reply;
        }
        let mail = Mail {
            from: self.from.clone(),
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
            user: self.user.clone(),
        };
        self.mail.lock().unwrap().push(mail);
        response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.check(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check(user, password)
    }
}

impl Recorder {
    /// The next scripted reply, when the script's head is for `stage`.
    fn scripted(&mut self, stage: Stage) -> Option<Response> {
        let mut script = self.script.lock().unwrap();
        if script.front().is_some_and(|(s, _, _)| *s == stage) {
            let (_, code, text) = script.pop_front()?;
            let mut reply = Response::custom(code, text);
            // mailin stays in its DATA state after refusing a message, so a client's
            // next command would be read as message text; close instead, as many
            // servers do after a refusal at this stage.
            if stage == Stage::DataEnd {
                reply.action = mailin_embedded::Action::Close;
            }
            return Some(reply);
        }
        None
    }

    fn check(&mut self, user: &str, password: &str) -> Response {
        match &self.credentials {
            Some((u, p)) if u == user && p == password => {
                self.user = Some(user.to_string());
                response::AUTH_OK
            }
            _ => response::INVALID_CREDENTIALS,
        }
    }
}

/// A running SMTP server; it lives until the test process ends.
pub struct SmtpServer {
    pub port: u16,
    /// The CA certificate (PEM file) that signed the server's certificate, for STARTTLS.
    pub ca_file: Option<PathBuf>,
    mail: Arc<Mutex<Vec<Mail>>>,
    script: Script,
}

impl SmtpServer {
    /// Plain SMTP, no TLS, no AUTH.
    pub fn plain() -> Self {
        Self::start(None, None)
    }

    /// Plain SMTP on `port`, e.g. one that was down until now.
    pub fn plain_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        Self::start_on(listener, None, None)
    }

    /// Queues replies given instead of the usual `250`, in order, each at its stage.
    pub fn script(&self, replies: &[(Stage, u16, &str)]) {
        let mut script = self.script.lock().unwrap();
        for (stage, code, text) in replies {
            script.push_back((*stage, *code, text.to_string()));
        }
    }

    /// STARTTLS with a certificate for `localhost` signed by a fresh CA written under
    /// `dir`, and AUTH PLAIN/LOGIN required for `user` / `password`.
    pub fn starttls(dir: &Path, user: &str, password: &str) -> Self {
        let tls = make_certificates(dir);
        Self::start(Some(tls), Some((user.to_string(), password.to_string())))
    }

    fn start(
        tls: Option<(PathBuf, PathBuf, PathBuf)>,
        credentials: Option<(String, String)>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::start_on(listener, tls, credentials)
    }

    fn start_on(
        listener: TcpListener,
        tls: Option<(PathBuf, PathBuf, PathBuf)>,
        credentials: Option<(String, String)>,
    ) -> Self {
        super::install_tls_provider();
        let port = listener.local_addr().unwrap().port();
        let mail = Arc::new(Mutex::new(Vec::new()));
        let script = Script::default();
        let recorder = Recorder {
            mail: mail.clone(),
            script: script.clone(),
            credentials: credentials.clone(),
            user: None,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(recorder);
        // One thread per connection; tripline sends up to 16 at once.
        server
            .with_name("localhost")
            .with_num_threads(32)
            .with_tcp_listener(listener);
        let mut ca_file = None;
        if let Some((ca, cert, key)) = tls {
            let ssl = SslConfig::SelfSigned {
                cert_path: cert.display().to_string(),
                key_path: key.display().to_string(),
            };
            server.with_ssl(ssl).unwrap();
            ca_file = Some(ca);
        }
        if credentials.is_some() {
            server
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
        }
        std::thread::spawn(move || {
            if let Err(e) = server.serve() {
                eprintln!("the test SMTP server stopped: {e}");
            }
        });
        SmtpServer {
            port,
            ca_file,
            mail,
            script,
        }
    }

    /// Waits until at least `count` messages arrived, or panics after 20 s.
    pub fn wait_for(&self, count: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mail = self.mail.lock().unwrap().clone();
            if mail.len() >= count {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} messages, got {}",
                mail.len()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The messages received so far.
    pub fn received(&self) -> Vec<Mail> {
        self.mail.lock().unwrap().clone()
    }
}

/// An SMTPS front (TLS from the first byte, as on port 465) for a plain SMTP server:
/// a real TLS listener that relays each connection to `inner_port`. Returns the TLS
/// port and the CA file to trust.
pub fn implicit_tls_front(dir: &Path, inner_port: u16) -> (u16, PathBuf) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let (ca, cert, key) = make_certificates(dir);
    let certs = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut inner) =
                        tokio::net::TcpStream::connect(("127.0.0.1", inner_port)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
                });
            }
        });
    });
    (port, ca)
}

/// Writes `ca.pem`, `cert.pem` and `key.pem` under `dir`; returns their paths.
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tripline test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

/// Undoes quoted-printable encoding (soft breaks and `=XX` escapes).
pub fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}
