//! Routes a delivery's message to its channel. This is the one interface the
//! dispatcher and `tripline notify-test` send through.

use super::email::{EmailMessage, Mailer};
use super::{log, pagerduty, slack, webhook, Failure, Message};
use crate::store::Delivery;

/// Everything needed to reach every channel.
pub struct Senders {
    pub mailer: Mailer,
    pub http: reqwest::Client,
}

impl Senders {
    pub fn new(mailer: Mailer) -> Self {
        Senders {
            mailer,
            http: super::http::client(),
        }
    }

    /// Sends one delivery; `Ok` is the server's reply.
    pub async fn send(&self, delivery: &Delivery) -> Result<String, Failure> {
        let legacy;
        let message = match &delivery.message {
            Some(message) => message,
            None => {
                legacy = legacy_email(delivery);
                &legacy
            }
        };
        self.send_message(delivery, message).await
    }

    /// Sends `message` on behalf of `delivery` (whose id makes the stable id).
    pub async fn send_message(
        &self,
        delivery: &Delivery,
        message: &Message,
    ) -> Result<String, Failure> {
        match message {
            Message::Email(m) => self.mailer.send(&delivery.id, m).await,
            Message::Webhook(m) => webhook::send(&self.http, &delivery.id, m).await,
            Message::Slack(m) => slack::send(&self.http, m).await,
            Message::Pagerduty(m) => pagerduty::send(&self.http, m).await,
            Message::Log(m) => Ok(log::send(
                &delivery.id,
                &delivery.policy,
                &delivery.event_id,
                m,
            )),
        }
    }
}

/// Rows stored before messages were kept whole were emails with subject and body.
fn legacy_email(delivery: &Delivery) -> Message {
    Message::Email(EmailMessage {
        to: vec![delivery.recipient.clone()],
        subject: delivery.subject.clone(),
        text: delivery.body.clone(),
        ..EmailMessage::default()
    })
}
