//! The notification commands of the `tripline` binary: `notifications retry`, `mute`
//! and `notify-test`. Each answers the text to print, or the error to show.
//!
//! `retry` and `mute` write to the store directly, so they work whether or not a
//! server is running; a running server sees the change within a second.

use crate::config::Config;
use crate::notify::email::Mailer;
use crate::notify::send::Senders;
use crate::policy::PolicySet;
use crate::store::sqlite::SqliteStore;
use crate::store::{now_ms, RetryOutcome, Store};

/// What `tripline mute` is asked to do.
pub enum MuteChange {
    For(String),
    Until(String),
    Off,
}

fn open_store(config: &Config) -> Result<SqliteStore, String> {
    SqliteStore::open(&config.data_dir).map_err(|e| format!("cannot open the store: {e}"))
}

fn load_policies(config: &Config) -> Result<PolicySet, String> {
    let sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let known = (!config.embedded).then_some(sources.as_slice());
    PolicySet::load(std::slice::from_ref(&config.policies), known)
        .map_err(|d| format!("{d}\nthe policies have errors"))
}

/// `tripline notifications retry ID...`
pub fn retry(config: &Config, ids: &[String]) -> Result<String, String> {
    let store = open_store(config)?;
    let (mut done, mut errors) = (String::new(), String::new());
    for id in ids {
        match store.retry(id, now_ms()) {
            Ok(RetryOutcome::Queued) => done.push_str(&format!("queued `{id}`\n")),
            Ok(RetryOutcome::NotFound) => {
                errors.push_str(&format!("no notification has the id `{id}`\n"))
            }
            Ok(RetryOutcome::NotRetryable(status)) => errors.push_str(&format!(
                "`{id}` is `{}`; only `dead` and `failed` notifications can be retried\n",
                status.as_str()
            )),
            Err(e) => errors.push_str(&format!("cannot retry `{id}`: {e}\n")),
        }
    }
    if !done.is_empty() {
        done.push_str("a running tripline sends them within a second; otherwise they are sent when it starts\n");
    }
    if errors.is_empty() {
        Ok(done)
    } else {
        Err(format!("{done}{errors}"))
    }
}

/// `tripline mute POLICY --for 2h | --until TIME | --off`
pub fn mute(config: &Config, policy: &str, change: MuteChange) -> Result<String, String> {
    let set = load_policies(config)?;
    super::mute::check_policy(&set, policy)?;
    let now = now_ms();
    let until = match change {
        MuteChange::For(text) => Some(super::mute::until_for(&text, now)?),
        MuteChange::Until(text) => Some(super::mute::until_at(&text, now)?),
        MuteChange::Off => None,
    };
    let store = open_store(config)?;
    store
        .set_mute(policy, until)
        .map_err(|e| format!("cannot change the mute: {e}"))?;
    Ok(match until {
        Some(until) => format!(
            "muted `{policy}` until {}; its events are still recorded, its notifications stored as `muted`\n",
            super::mute::time_text(until)
        ),
        None => format!("`{policy}` is no longer muted\n"),
    })
}

/// `tripline notify-test --policy NAME [--action N]`
pub fn notify_test(config: &Config, policy: &str, action: Option<usize>) -> Result<String, String> {
    let set = load_policies(config)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let mailer = match &config.smtp {
        Some(smtp) => Mailer::smtp(smtp).map_err(|e| e.to_string())?,
        None => Mailer::folder(&config.data_dir.join("mail")),
    };
    let sent = runtime.block_on(async {
        let senders = Senders::new(mailer);
        super::test_send::run(&set, policy, action, &senders).await
    })?;
    let mut text = String::new();
    let mut failed = false;
    for s in &sent {
        let (word, reply) = match &s.outcome {
            Ok(reply) => ("sent", reply),
            Err(error) => {
                failed = true;
                ("failed", error)
            }
        };
        text.push_str(&format!(
            "action {} ({} to {}): {word}: {reply}\n",
            s.number, s.channel, s.recipient
        ));
    }
    if failed {
        Err(text)
    } else {
        Ok(text)
    }
}
