//! The `tripline` command: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tripline::config::Config;
use tripline::notify::cli;
use tripline::policy::PolicySet;

#[derive(Parser)]
#[command(
    name = "tripline",
    version,
    about = "Webhook policy engine: messages in, YAML policies decide, notifications out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Configuration file; without one, tripline runs on its embedded defaults.
        #[arg(long, env = "TRIPLINE_CONFIG")]
        config: Option<PathBuf>,
        /// Address and port to listen on, overriding the configuration.
        #[arg(long, env = "TRIPLINE_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate the configuration and policies; exit 1 on any error.
    Check {
        #[arg(long, env = "TRIPLINE_CONFIG")]
        config: Option<PathBuf>,
        /// Policy files or directories; by default the configured policies directory.
        paths: Vec<PathBuf>,
    },
    /// Work with the notification ledger.
    Notifications {
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// Silence a policy's notifications for a while; its events are still recorded.
    Mute {
        #[arg(long, env = "TRIPLINE_CONFIG")]
        config: Option<PathBuf>,
        /// The policy's name.
        policy: String,
        /// How long, such as `30m`, `2h` or `1d`.
        #[arg(long = "for", value_name = "DURATION", conflicts_with_all = ["until", "off"])]
        duration: Option<String>,
        /// Until an RFC 3339 time, such as `2026-01-01T12:00:00Z`.
        #[arg(long, conflicts_with = "off")]
        until: Option<String>,
        /// Lift the mute now.
        #[arg(long)]
        off: bool,
    },
    /// Render a policy's actions with a sample event and really send them.
    NotifyTest {
        #[arg(long, env = "TRIPLINE_CONFIG")]
        config: Option<PathBuf>,
        /// The policy whose actions are sent.
        #[arg(long)]
        policy: String,
        /// Only this action, counted from 1 in the policy's `notify:` list.
        #[arg(long)]
        action: Option<usize>,
    },
}

#[derive(Subcommand)]
enum NotificationsCommand {
    /// Send dead (or failed) notifications again, now, with a fresh retry schedule.
    Retry {
        #[arg(long, env = "TRIPLINE_CONFIG")]
        config: Option<PathBuf>,
        /// Notification ids, as `GET /api/notifications` lists them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
        Command::Check { config, paths } => check(config, paths),
        Command::Notifications {
            command: NotificationsCommand::Retry { config, ids },
        } => with_config(config, |c| cli::retry(c, &ids)),
        Command::Mute {
            config,
            policy,
            duration,
            until,
            off,
        } => with_config(config, |c| {
            let change = match (duration, until, off) {
                (_, _, true) => cli::MuteChange::Off,
                (Some(d), _, _) => cli::MuteChange::For(d),
                (None, Some(u), _) => cli::MuteChange::Until(u),
                (None, None, false) => {
                    return Err("say how long: `--for 2h`, `--until TIME`, or `--off`".into())
                }
            };
            cli::mute(c, &policy, change)
        }),
        Command::NotifyTest {
            config,
            policy,
            action,
        } => with_config(config, |c| cli::notify_test(c, &policy, action)),
    }
}

fn load_config(path: Option<PathBuf>) -> Result<Config, String> {
    match path {
        Some(path) => Config::load(&path).map_err(|d| d.to_string()),
        None => Ok(Config::embedded()),
    }
}

/// Runs a command that needs the configuration; its `Ok` text goes to stdout and its
/// `Err` text to stderr with exit status 1.
fn with_config(
    path: Option<PathBuf>,
    run: impl FnOnce(&Config) -> Result<String, String>,
) -> ExitCode {
    let outcome = load_config(path).and_then(|config| run(&config));
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(text) => {
            eprintln!("{}", text.trim_end());
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Option<PathBuf>, listen: Option<std::net::SocketAddr>) -> ExitCode {
    init_logging();
    let mut config = match load_config(config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}\nthe configuration has errors; tripline did not start");
            return ExitCode::FAILURE;
        }
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tripline::server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(config: Option<PathBuf>, paths: Vec<PathBuf>) -> ExitCode {
    let config = match load_config(config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let known = (!config.embedded).then_some(sources.as_slice());
    let paths = if paths.is_empty() {
        vec![config.policies.clone()]
    } else {
        paths
    };
    match PolicySet::load(&paths, known) {
        Ok(set) => {
            println!(
                "ok: {} policies in {} files",
                set.policies.len(),
                set.files.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{} error{}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
