//! The `tripline` command: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tripline::config::{Config, LogFormat};
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
    /// Dry-run one message against the policies (nothing is sent), or run their fixtures.
    Test(TestArgs),
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

#[derive(clap::Args)]
struct TestArgs {
    #[arg(long, env = "TRIPLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Run the `tests:` fixtures kept in the policy files instead of one message.
    #[arg(long, conflicts_with_all = ["message", "message_file", "stdin"])]
    fixtures: bool,
    /// The message text.
    #[arg(long, conflicts_with_all = ["message_file", "stdin"])]
    message: Option<String>,
    /// Read the message from a file.
    #[arg(long, conflicts_with = "stdin")]
    message_file: Option<PathBuf>,
    /// `-` reads the message from standard input.
    #[arg(value_parser = ["-"])]
    stdin: Option<String>,
    /// The sending source's name [default: test].
    #[arg(long)]
    source: Option<String>,
    /// The event title.
    #[arg(long)]
    title: Option<String>,
    /// A request header as `Name: value`; repeat for more.
    #[arg(long = "header", value_parser = tripline::dryrun::parse_header)]
    headers: Vec<(String, String)>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints a line to standard output; a closed pipe (`tripline test | head`) is not an error.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Prints to standard output without a newline, like [`say!`].
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
        Command::Check { config, paths } => check(config, paths),
        Command::Test(args) => test(args),
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
    let mut config = match load_config(config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}\nthe configuration has errors; tripline did not start");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config);
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
    let Some(set) = load_policies(&config, paths) else {
        return ExitCode::FAILURE;
    };
    let fixtures: usize = set.policies.iter().map(|p| p.fixtures.len()).sum();
    let (policies, files) = (set.policies.len(), set.files.len());
    say!("ok: {policies} policies in {files} files, {fixtures} fixture tests");
    ExitCode::SUCCESS
}

/// Loads the policies named by the configuration, printing errors.
fn load_policies(config: &Config, paths: Vec<PathBuf>) -> Option<PolicySet> {
    let sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let known = (!config.embedded).then_some(sources.as_slice());
    let paths = if paths.is_empty() {
        vec![config.policies.clone()]
    } else {
        paths
    };
    match PolicySet::load(&paths, known) {
        Ok(set) => Some(set),
        Err(errors) => {
            eprintln!("{errors}");
            let plural = if errors.len() == 1 { "" } else { "s" };
            eprintln!("{} error{plural}", errors.len());
            None
        }
    }
}

fn test(args: TestArgs) -> ExitCode {
    let config = match load_config(args.config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let Some(set) = load_policies(&config, Vec::new()) else {
        return ExitCode::FAILURE;
    };
    if args.fixtures {
        return run_fixtures(&set, args.json);
    }
    let message = match (args.message, args.message_file, args.stdin) {
        (Some(text), _, _) => Ok(text),
        (_, Some(path), _) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display())),
        (_, _, Some(_)) => std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}")),
        _ => Err("give the message with `--message TEXT`, `--message-file FILE` or `-` for standard input, or use `--fixtures`".to_string()),
    };
    let message = match message {
        Ok(message) => message,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let input = tripline::dryrun::Input {
        message,
        source: args.source,
        title: args.title,
        headers: args.headers,
    };
    let report = tripline::dryrun::run(&set, &input);
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        say_raw!("{}", report.to_text());
    }
    ExitCode::SUCCESS
}

fn run_fixtures(set: &PolicySet, json: bool) -> ExitCode {
    let (count, failures) = tripline::fixture::run_all(set);
    if json {
        let report = serde_json::json!({ "run": count, "failed": failures });
        say!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for f in &failures {
            say!("FAIL {} / {} ({})", f.policy, f.fixture, f.at);
            for problem in &f.problems {
                say!("  {problem}");
            }
        }
        say!(
            "{} passed, {} failed",
            count - failures.len(),
            failures.len()
        );
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Logs go to standard error, as text or JSON lines. `RUST_LOG` (when set and not
/// empty) wins over `log_level`, so an operator can turn up detail without an edit.
fn init_logging(config: &Config) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let level = from_env.or_else(|| config.log_level.clone());
    let filter = level
        .and_then(|l| tracing_subscriber::EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_ansi(ansi).init()
        }
    }
}
