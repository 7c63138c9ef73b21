//! The `tripline` command: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tripline::config::{Config, LogFormat};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
        Command::Check { config, paths } => check(config, paths),
    }
}

fn load_config(path: Option<PathBuf>) -> Result<Config, String> {
    match path {
        Some(path) => Config::load(&path).map_err(|d| d.to_string()),
        None => Ok(Config::embedded()),
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
