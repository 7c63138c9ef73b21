//! The email channel: SMTP through lettre, or `.eml` files in a folder when no relay
//! is configured, so a fresh install shows its mail without any server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpConfig, TlsMode};
use crate::store::Delivery;

/// The sender used when writing mail to a folder.
pub const FOLDER_FROM: &str = "tripline <tripline@localhost>";

/// Why the mailer could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("`smtp.from` is not an email address: `{0}`")]
    From(String),
    #[error("cannot read `smtp.ca_file` `{path}`: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot set up TLS for `{host}`: {reason}")]
    Tls { host: String, reason: String },
}

/// Where emails go.
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        relay: String,
    },
    Folder {
        dir: PathBuf,
        from: Mailbox,
    },
}

impl Mailer {
    /// An SMTP mailer from the `smtp` settings.
    pub fn smtp(config: &SmtpConfig) -> Result<Self, MailerError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| MailerError::From(config.from.clone()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(Duration::from_secs(config.timeout_secs)));
        builder = match config.tls {
            TlsMode::None => builder.tls(Tls::None),
            TlsMode::Starttls => builder.tls(Tls::Required(tls_parameters(config)?)),
            TlsMode::Implicit => builder.tls(Tls::Wrapper(tls_parameters(config)?)),
        };
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        let relay = format!("{}:{}", config.host, config.port);
        Ok(Mailer::Smtp {
            transport: builder.build(),
            from,
            relay,
        })
    }

    /// A mailer that writes each message to `dir/<delivery id>.eml`.
    pub fn folder(dir: &Path) -> Self {
        let from = FOLDER_FROM
            .parse()
            .expect("the folder sender is a valid address");
        Mailer::Folder {
            dir: dir.to_path_buf(),
            from,
        }
    }

    /// Where mail goes, for the startup log.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { relay, .. } => format!("smtp://{relay}"),
            Mailer::Folder { dir, .. } => dir.display().to_string(),
        }
    }

    /// Sends one delivery. The error is the server's reply or the local failure.
    pub async fn send(&self, delivery: &Delivery) -> Result<(), String> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Folder { from, .. } => from.clone(),
        };
        let message = build_message(delivery, from)?;
        match self {
            Mailer::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|e| smtp_error_text(&e)),
            Mailer::Folder { dir, .. } => write_eml(dir, &delivery.id, &message.formatted()).await,
        }
    }
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, MailerError> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| MailerError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| MailerError::Tls {
        host: config.host.clone(),
        reason: e.to_string(),
    })
}

/// The message for a delivery; its Message-ID is stable so a resend is recognisable.
fn build_message(delivery: &Delivery, from: Mailbox) -> Result<Message, String> {
    let to: Mailboxes = delivery
        .recipient
        .parse()
        .map_err(|e| format!("recipient `{}` is not valid: {e}", delivery.recipient))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(one_line(&delivery.subject))
        .message_id(Some(format!("<{}@tripline>", delivery.id)))
        .header(ContentType::TEXT_PLAIN);
    for mailbox in to {
        builder = builder.to(mailbox);
    }
    builder
        .body(delivery.body.clone())
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// A subject must be one line; a template may have produced several.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// lettre's error with the server's reply when there is one.
fn smtp_error_text(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Writes atomically: a reader of the folder never sees half a message.
async fn write_eml(dir: &Path, id: &str, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write to `{}`: {e}", dir.display());
    tokio::fs::create_dir_all(dir).await.map_err(fail)?;
    let temp = dir.join(format!(".{id}.tmp"));
    tokio::fs::write(&temp, bytes).await.map_err(fail)?;
    tokio::fs::rename(&temp, dir.join(format!("{id}.eml")))
        .await
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryStatus;

    fn delivery() -> Delivery {
        Delivery {
            id: "d1".into(),
            event_id: "e1".into(),
            policy: "p".into(),
            channel: "email".into(),
            recipient: "ops@example.com, Lead <lead@example.com>".into(),
            subject: "[critical]\n deploy failed".into(),
            body: "body ü".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[tokio::test]
    async fn the_folder_mailer_writes_one_eml_per_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::folder(&dir.path().join("mail"));
        mailer.send(&delivery()).await.unwrap();
        let text = std::fs::read_to_string(dir.path().join("mail/d1.eml")).unwrap();
        assert!(
            text.contains("Subject: [critical] deploy failed\r\n"),
            "{text}"
        );
        assert!(
            text.contains("To: ops@example.com, Lead <lead@example.com>\r\n"),
            "{text}"
        );
        assert!(text.contains("Message-ID: <d1@tripline>\r\n"), "{text}");
    }

    #[test]
    fn a_bad_recipient_is_reported() {
        let mut d = delivery();
        d.recipient = "nobody".into();
        let from: Mailbox = FOLDER_FROM.parse().unwrap();
        let err = build_message(&d, from).unwrap_err();
        assert!(err.starts_with("recipient `nobody` is not valid"), "{err}");
    }
}
