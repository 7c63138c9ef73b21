//! The email channel: the `email:` action, the message it renders, and the mailer that
//! sends it over SMTP through lettre, or writes `.eml` files in a folder when no relay
//! is configured, so a fresh install shows its mail without any server.

use std::path::{Path, PathBuf};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, MultiPart};
use lettre::Message;
use serde::{Deserialize, Serialize};

use super::action::{one_line, optional, render_headers, ActionReader, Render};
use super::relay::Relay;
use super::Failure;
use crate::config::SmtpConfig;
use crate::template::TemplateId;
use crate::yaml::Node;

/// The sender used when writing mail to a folder.
pub const FOLDER_FROM: &str = "tripline <tripline@localhost>";

/// The subject used when an email action gives none.
pub const DEFAULT_SUBJECT: &str =
    "[{{ category }}]{% if status == 'cleared' %} cleared:{% endif %} {{ policy }}";

/// The body used when an email action gives none.
pub const DEFAULT_BODY: &str =
    "Policy: {{ policy }}\nStatus: {{ status }}\nCategory: {{ category }}\n\
Source: {{ source }}\nReceived: {{ received_at }}\nEvent: {{ event_id }}\n\
{% if title %}Title: {{ title }}\n{% endif %}\n{{ message }}\n";

const EMAIL_KEYS: &[&str] = &[
    "to", "cc", "bcc", "reply_to", "subject", "body", "html", "headers",
];

/// Headers tripline writes itself; an action's `headers:` may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "message-id",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// An `email:` action; every text is a template.
#[derive(Debug)]
pub struct EmailAction {
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub bcc: Vec<Recipient>,
    pub reply_to: Vec<Recipient>,
    pub subject: TemplateId,
    pub body: TemplateId,
    pub html: Option<TemplateId>,
    pub headers: Vec<(String, TemplateId)>,
}

/// An address as written: checked at load, or a template checked when rendered.
#[derive(Debug)]
pub enum Recipient {
    Fixed(String),
    Template(TemplateId),
}

/// A rendered email, as stored in the outbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailMessage {
    /// Each entry is one address or a comma-separated list.
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<String>,
    pub subject: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl EmailMessage {
    /// The visible recipients, for the ledger; Bcc is left out as it is in the mail.
    pub fn recipients_summary(&self) -> String {
        self.to
            .iter()
            .chain(&self.cc)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads an `email:` mapping.
pub fn read(cx: &mut ActionReader<'_>, node: &Node) -> Option<EmailAction> {
    let mut map = cx.reader.map(node, "`email`")?;
    let to = match map.take("to") {
        Some(n) => recipients(cx, n, "`to`"),
        None => {
            cx.reader
                .error(map.pos, "`email` needs `to`: one address or a list");
            None
        }
    };
    let mut listed = |key: &str, what: &str| match map.take(key) {
        Some(n) => recipients(cx, n, what),
        None => Some(Vec::new()),
    };
    let (cc, bcc, reply_to) = (
        listed("cc", "`cc`"),
        listed("bcc", "`bcc`"),
        listed("reply_to", "`reply_to`"),
    );
    let subject = cx.template_or(map.take("subject"), map.pos, "`subject`", DEFAULT_SUBJECT);
    let body = cx.template_or(map.take("body"), map.pos, "`body`", DEFAULT_BODY);
    let html = map.take("html").map(|n| cx.template(n, "`html`"));
    let headers = match map.take("headers") {
        Some(n) => cx.headers(n, "`email`", RESERVED_HEADERS),
        None => Some(Vec::new()),
    };
    cx.reader.finish(map, EMAIL_KEYS, "`email`");
    Some(EmailAction {
        to: to?,
        cc: cc?,
        bcc: bcc?,
        reply_to: reply_to?,
        subject: subject?,
        body: body?,
        html: optional(html)?,
        headers: headers?,
    })
}

/// Reads addresses; one holding `{{` or `{%` is a template, e.g. `{{ fields.owner }}`.
fn recipients(cx: &mut ActionReader<'_>, node: &Node, what: &str) -> Option<Vec<Recipient>> {
    let list = cx.reader.str_list(node, what)?;
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for (text, pos) in list {
        if text.contains("{{") || text.contains("{%") {
            match cx.templates.add(cx.reader, pos, what, &text) {
                Some(id) => out.push(Recipient::Template(id)),
                None => ok = false,
            }
        } else if text.parse::<Mailboxes>().is_ok() {
            out.push(Recipient::Fixed(text));
        } else {
            let message = format!("`{text}` is not an email address; write `name@example.com` or `Name <name@example.com>`");
            cx.reader.error(pos, message);
            ok = false;
        }
    }
    if out.is_empty() && ok {
        cx.reader
            .error(node.pos, format!("{what} needs at least one address"));
        return None;
    }
    ok.then_some(out)
}

impl EmailAction {
    /// Renders subject, bodies, headers and any templated recipients.
    pub fn render(&self, r: &Render<'_>) -> Result<EmailMessage, String> {
        let addresses = |list: &[Recipient], what: &str| -> Result<Vec<String>, String> {
            list.iter()
                .map(|rcpt| render_recipient(r, rcpt, what))
                .collect()
        };
        Ok(EmailMessage {
            to: addresses(&self.to, "to")?,
            cc: addresses(&self.cc, "cc")?,
            bcc: addresses(&self.bcc, "bcc")?,
            reply_to: addresses(&self.reply_to, "reply_to")?,
            subject: one_line(
                &r.text(&self.subject)
                    .map_err(|e| format!("`subject`: {e}"))?,
            ),
            text: r.text(&self.body).map_err(|e| format!("`body`: {e}"))?,
            html: self
                .html
                .as_ref()
                .map(|h| r.text(h).map_err(|e| format!("`html`: {e}")))
                .transpose()?,
            headers: render_headers(r, &self.headers)?,
        })
    }
}

fn render_recipient(r: &Render<'_>, recipient: &Recipient, what: &str) -> Result<String, String> {
    let text = match recipient {
        Recipient::Fixed(text) => return Ok(text.clone()),
        Recipient::Template(id) => r.text(id).map_err(|e| format!("`{what}`: {e}"))?,
    };
    let text = text.trim().to_string();
    match text.parse::<Mailboxes>() {
        Ok(_) if !text.is_empty() => Ok(text),
        _ => Err(format!(
            "`{what}` rendered `{text}`, which is not an email address"
        )),
    }
}

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
    Smtp { relay: Relay, from: Mailbox },
    Folder { dir: PathBuf, from: Mailbox },
}

impl Mailer {
    /// An SMTP mailer from the `smtp` settings.
    pub fn smtp(config: &SmtpConfig) -> Result<Self, MailerError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| MailerError::From(config.from.clone()))?;
        Ok(Mailer::Smtp {
            relay: Relay::new(config)?,
            from,
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
            Mailer::Smtp { relay, .. } => format!("smtp://{}", relay.address()),
            Mailer::Folder { dir, .. } => dir.display().to_string(),
        }
    }

    /// Sends one message; `id` is the delivery's, and makes its stable Message-ID.
    /// Answers the server's reply, or why it failed and whether to retry.
    pub async fn send(&self, id: &str, email: &EmailMessage) -> Result<String, Failure> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Folder { from, .. } => from.clone(),
        };
        let message = build_message(id, email, from).map_err(Failure::permanent)?;
        match self {
            Mailer::Smtp { relay, .. } => {
                let response = relay.send(message.envelope(), &message.formatted()).await?;
                Ok(reply_text(response.code(), response.message()))
            }
            Mailer::Folder { dir, .. } => write_eml(dir, id, &message.formatted())
                .await
                .map_err(Failure::temporary),
        }
    }
}

fn reply_text<'a>(code: impl std::fmt::Display, lines: impl Iterator<Item = &'a str>) -> String {
    let text: Vec<&str> = lines.collect();
    format!("{code} {}", text.join(" ")).trim().to_string()
}

/// The message for a delivery; its Message-ID is stable so a resend is recognisable.
fn build_message(id: &str, email: &EmailMessage, from: Mailbox) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(from)
        .subject(one_line(&email.subject))
        .message_id(Some(format!("<{id}@tripline>")));
    for (field, list) in [
        ("to", &email.to),
        ("cc", &email.cc),
        ("bcc", &email.bcc),
        ("reply_to", &email.reply_to),
    ] {
        for entry in list {
            let mailboxes: Mailboxes = entry
                .parse()
                .map_err(|e| format!("recipient `{entry}` is not valid: {e}"))?;
            for mailbox in mailboxes {
                builder = match field {
                    "to" => builder.to(mailbox),
                    "cc" => builder.cc(mailbox),
                    "bcc" => builder.bcc(mailbox),
                    _ => builder.reply_to(mailbox),
                };
            }
        }
    }
    for (name, value) in &email.headers {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    let built = match &email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            html.clone(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(email.text.clone()),
    };
    built.map_err(|e| format!("cannot build the message: {e}"))
}

/// Writes atomically: a reader of the folder never sees half a message.
async fn write_eml(dir: &Path, id: &str, bytes: &[u8]) -> Result<String, String> {
    let fail = |e: std::io::Error| format!("cannot write to `{}`: {e}", dir.display());
    tokio::fs::create_dir_all(dir).await.map_err(fail)?;
    let temp = dir.join(format!(".{id}.tmp"));
    let path = dir.join(format!("{id}.eml"));
    tokio::fs::write(&temp, bytes).await.map_err(fail)?;
    tokio::fs::rename(&temp, &path).await.map_err(fail)?;
    Ok(format!("written to `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> EmailMessage {
        EmailMessage {
            to: vec!["ops@example.com, Lead <lead@example.com>".into()],
            cc: vec!["cc@example.com".into()],
            bcc: vec!["hidden@example.com".into()],
            reply_to: vec!["desk@example.com".into()],
            subject: "[critical]\n deploy failed".into(),
            text: "body ü".into(),
            html: Some("<p>body</p>".into()),
            headers: vec![("X-Tripline-Policy".into(), "deploys".into())],
        }
    }

    #[tokio::test]
    async fn the_folder_mailer_writes_one_eml_per_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::folder(&dir.path().join("mail"));
        let reply = mailer.send("d1", &email()).await.unwrap();
        assert!(reply.starts_with("written to"), "{reply}");
        let text = std::fs::read_to_string(dir.path().join("mail/d1.eml")).unwrap();
        for want in [
            "Subject: [critical] deploy failed\r\n",
            "To: ops@example.com, Lead <lead@example.com>\r\n",
            "Cc: cc@example.com\r\n",
            "Reply-To: desk@example.com\r\n",
            "X-Tripline-Policy: deploys\r\n",
            "Message-ID: <d1@tripline>\r\n",
            "Content-Type: multipart/alternative",
            "<p>body</p>",
        ] {
            assert!(text.contains(want), "missing {want:?} in {text}");
        }
        assert!(!text.contains("hidden@example.com"), "Bcc leaked: {text}");
    }

    #[test]
    fn a_bad_recipient_is_reported() {
        let mut e = email();
        e.to = vec!["nobody".into()];
        let from: Mailbox = FOLDER_FROM.parse().unwrap();
        let err = build_message("d1", &e, from).unwrap_err();
        assert!(err.starts_with("recipient `nobody` is not valid"), "{err}");
    }
}
