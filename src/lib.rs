//! tripline: a policy engine for webhook events.
//!
//! A message arrives over HTTP and becomes an [`event::Event`]; YAML policies decide
//! whether it matters; matching policies notify people. The modules, in the order a
//! message meets them:
//!
//! - [`config`]: `tripline.yaml` or the embedded defaults.
//! - [`serve`]: accepts connections with header limits and stops gracefully.
//! - [`ingest`]: the webhook and structured-event routes, sender authentication, rate
//!   limits, body limits and idempotency.
//! - [`verify`]: signature schemes (GitHub, Stripe, Slack, Standard Webhooks, HMAC).
//! - [`event`]: what one received message is.
//! - [`yaml`]: located YAML reading that reports every mistake at once.
//! - [`extract`] and [`field`]: named fields found in a message, and how names resolve.
//! - [`condition`] and [`policy`]: policy files read and compiled into a [`policy::PolicySet`];
//!   [`pattern`]: their regexes.
//! - [`fixture`]: tests kept with policies; [`dryrun`]: `tripline test` on one message.
//! - [`template`]: notification templates.
//! - [`index`]: narrows the policies a message can match with one pass over it.
//! - [`engine`]: evaluates an event against the set and renders deliveries.
//! - [`store`]: durable events, deliveries (the outbox), incidents and mutes behind the
//!   [`store::Store`] trait.
//! - [`notify`]: the channels (email, webhook, Slack, PagerDuty, log), incidents, retries
//!   and the dispatcher that sends what the store holds.
//! - [`explain`]: why each policy did or did not match a stored event.
//! - [`api`]: the Event Explorer API, the notification ledger, mutes, and the operations
//!   endpoints.
//! - [`web`]: the Event Explorer and policies pages for people.
//! - [`metrics`]: Prometheus text exposition.
//! - [`reload`]: swapping in a new policy set (API, SIGHUP, directory watch).
//! - [`retention`]: removing old events in the background.
//! - [`server`]: wires it all together.

pub mod api;
pub mod condition;
pub mod config;
pub mod dryrun;
pub mod engine;
pub mod event;
pub mod explain;
pub mod extract;
pub mod field;
pub mod fixture;
pub mod index;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod pattern;
pub mod policy;
pub mod reload;
pub mod retention;
pub mod serve;
pub mod server;
pub mod store;
pub mod template;
pub mod verify;
pub mod web;
pub mod yaml;
