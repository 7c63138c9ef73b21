//! tripline: a policy engine for webhook events.
//!
//! A message arrives over HTTP and becomes an [`event::Event`]; YAML policies decide
//! whether it matters; matching policies notify people. The modules, in the order a
//! message meets them:
//!
//! - [`config`]: `tripline.yaml` or the embedded defaults.
//! - [`ingest`]: the webhook routes, sender authentication and body limits.
//! - [`event`]: what one received message is.
//! - [`yaml`]: located YAML reading that reports every mistake at once.
//! - [`condition`] and [`policy`]: policy files read and compiled into a [`policy::PolicySet`].
//! - [`template`]: notification templates.
//! - [`engine`]: evaluates an event against the set and renders deliveries.
//! - [`store`]: durable events, deliveries (the outbox), incidents and mutes behind the
//!   [`store::Store`] trait.
//! - [`notify`]: the channels (email, webhook, Slack, PagerDuty, log), incidents, retries
//!   and the dispatcher that sends what the store holds.
//! - [`api`]: the operator API (events, the notification ledger, policies, mutes) and
//!   health endpoints.
//! - [`server`]: wires it all together.

pub mod api;
pub mod condition;
pub mod config;
pub mod engine;
pub mod event;
pub mod ingest;
pub mod notify;
pub mod policy;
pub mod server;
pub mod store;
pub mod template;
pub mod yaml;
