//! The connection to the SMTP relay: lettre speaks SMTP over a socket that tripline
//! opens itself.
//!
//! lettre writes the end of a message (`<CRLF>.<CRLF>`) apart from the message, and
//! the sockets it opens keep Nagle's algorithm on, so that last small write waits for
//! the relay's delayed acknowledgement: about 40 ms a message, which caps sending at a
//! few hundred messages a second. Opening the socket here turns Nagle off. Each
//! message has a connection of its own, closed with QUIT once the relay has answered,
//! and the whole exchange has one deadline, the `smtp.timeout`.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::email::MailerError;
use super::Failure;
use crate::config::{SmtpConfig, TlsMode};

/// An SMTP relay and how to reach it.
pub struct Relay {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
}

enum Security {
    None,
    Starttls(TlsParameters),
    Implicit {
        connector: tokio_rustls::TlsConnector,
        name: ServerName<'static>,
    },
}

impl Relay {
    /// The relay of the `smtp` settings; reads the CA file and the system's roots.
    pub fn new(config: &SmtpConfig) -> Result<Self, MailerError> {
        let security = match config.tls {
            TlsMode::None => Security::None,
            TlsMode::Starttls => Security::Starttls(tls_parameters(config)?),
            TlsMode::Implicit => implicit(config)?,
        };
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            )),
            _ => None,
        };
        Ok(Relay {
            host: config.host.clone(),
            port: config.port,
            security,
            credentials,
            timeout: Duration::from_secs(config.timeout_secs),
            hello: ClientId::default(),
        })
    }

    /// `host:port`, for logs and replies.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Sends one message; answers the relay's reply to it.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<Response, Failure> {
        match tokio::time::timeout(self.timeout, self.session(envelope, message)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::temporary(format!(
                "the relay `{}` did not finish within {} s",
                self.address(),
                self.timeout.as_secs()
            ))),
        }
    }

    async fn session(&self, envelope: &Envelope, message: &[u8]) -> Result<Response, Failure> {
        let mut connection = self.connect().await?;
        let sent = connection.send(envelope, message).await;
        // The relay has taken or refused the message by now; QUIT is a courtesy.
        connection.abort().await;
        sent.map_err(|e| classify(&e))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let unreachable = |e: io::Error| {
            Failure::temporary(format!("cannot connect to `{}`: {e}", self.address()))
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(unreachable)?;
        tcp.set_nodelay(true).map_err(unreachable)?;

        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit { connector, name } => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    Failure::temporary(format!("TLS with `{}` failed: {e}", self.address()))
                })?;
                Box::new(Tls(tls))
            }
            _ => Box::new(tcp),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| classify(&e))?;

        if let Security::Starttls(parameters) = &self.security {
            connection
                .starttls(parameters.clone(), &self.hello)
                .await
                .map_err(|e| classify(&e))?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| classify(&e))?;
        }
        Ok(connection)
    }
}

/// A 5xx reply is permanent; everything else (4xx, the network, TLS) is worth retrying.
fn classify(error: &lettre::transport::smtp::Error) -> Failure {
    if error.is_permanent() {
        Failure::permanent(error_text(error))
    } else {
        Failure::temporary(error_text(error))
    }
}

/// The error with its causes, the relay's own words among them.
fn error_text(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // lettre repeats the server's words in its own message; keep them once.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The CA file's certificates, if the settings name one.
fn ca_certificates(config: &SmtpConfig) -> Result<Vec<CertificateDer<'static>>, MailerError> {
    let Some(path) = &config.ca_file else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(config, e))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(config, e))?;
    if certificates.is_empty() {
        return Err(ca_error(config, "it holds no PEM certificate"));
    }
    Ok(certificates)
}

fn ca_error(config: &SmtpConfig, reason: impl ToString) -> MailerError {
    let path = config.ca_file.as_deref().unwrap_or(Path::new(""));
    MailerError::CaFile {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// STARTTLS, done by lettre: the system's roots and the CA file.
fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, MailerError> {
    let mut builder = TlsParameters::builder(config.host.clone());
    for der in ca_certificates(config)? {
        let certificate = Certificate::from_der(der.to_vec()).map_err(|e| ca_error(config, e))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|e| MailerError::Tls {
        host: config.host.clone(),
        reason: e.to_string(),
    })
}

/// Implicit TLS, done here: the same roots as STARTTLS.
fn implicit(config: &SmtpConfig) -> Result<Security, MailerError> {
    let tls_error = |reason: String| MailerError::Tls {
        host: config.host.clone(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    for der in ca_certificates(config)? {
        roots.add(der).map_err(|e| tls_error(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(config.host.clone()).map_err(|e| tls_error(e.to_string()))?;
    Ok(Security::Implicit {
        connector: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        name,
    })
}

/// A TLS stream lettre can speak SMTP over.
#[derive(Debug)]
struct Tls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
