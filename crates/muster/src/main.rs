//! The `muster` binary: server, bot, client and dev in one executable.
//! Thin: flags and config → the library crates.

mod access;
mod backup;
mod bot;
mod bot_token;
mod config;
mod dev;
mod edge;
mod jobs;
mod lock;
mod migrate;
mod server;
mod signals;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// muster: a distributed task execution system compatible with LUCI Swarming.
///
/// Start here: `muster dev` runs a server, two local bots and the web UI on
/// this machine. Then `muster run -S http://127.0.0.1:8080 -d pool=default -- echo hi`.
#[derive(Parser)]
#[command(name = "muster", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the coordinator: bot API, swarming.v2 API, web UI.
    Server(server::ServerArgs),
    /// Run a bot agent that executes tasks for a server.
    Bot(bot::BotArgs),
    /// Server + local bots on this machine, zero configuration.
    Dev(dev::DevArgs),
    /// Create, list and revoke per-machine bot tokens.
    BotToken(bot_token::BotTokenArgs),
    /// Copy a whole database into another one (e.g. SQLite to PostgreSQL).
    Migrate(migrate::MigrateArgs),
    /// Copy the SQLite database to a file while the server runs.
    Backup(backup::BackupArgs),
    /// Replace the SQLite database with a backup (server stopped).
    Restore(backup::RestoreArgs),
    /// Measure a server: thousands of simulated bots and clients over real HTTP.
    Bench(muster_bench::BenchArgs),
    /// Print the version and this executable's bot digest.
    Version,
    /// Check a configuration directory (for CI presubmits; exit 1 on error).
    Config(access::ConfigArgs),
    /// Set up access control: `admin init --identity user:you@example.com`.
    Admin(access::AdminArgs),
    #[command(flatten)]
    Client(muster_cli::Command),
}

fn main() -> ExitCode {
    // An executable fetched from /bot_code runs as a bot when started bare.
    if std::env::args_os().len() == 1 && bot::own_trailer().is_some() {
        return exit(bot::main(bot::BotArgs::default()));
    }
    // Started as `swarming` (a link) or `muster swarming ...`: the upstream CLI.
    if let Some(code) = muster_cli::swarming::from_process_args() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    // Accept the upstream CLI's single-dash long flags (`-json-output`).
    let args = muster_cli::normalize_upstream_args(&Cli::command(), std::env::args_os().collect());
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Version => {
            let digest = muster_bot::own_version().unwrap_or_default();
            println!("muster {} {}", env!("CARGO_PKG_VERSION"), digest);
            ExitCode::SUCCESS
        }
        Command::Server(a) => exit(server::main(a)),
        Command::Bot(a) => exit(bot::main(a)),
        Command::Dev(a) => exit(dev::main(a)),
        Command::Bench(a) => exit(muster_bench::main(a)),
        Command::Migrate(a) => exit(migrate::main(a)),
        Command::Backup(a) => exit(backup::backup(a)),
        Command::Restore(a) => exit(backup::restore(a)),
        Command::Config(a) => access::config_main(a),
        Command::Admin(a) => exit(access::admin_main(a)),
        Command::BotToken(a) => exit(bot_token::main(a)),
        Command::Client(muster_cli::Command::Completions(a)) => {
            muster_cli::completions(a.shell, &mut Cli::command(), &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Client(muster_cli::Command::Jobs(muster_cli::jobs::JobsArgs {
            action: muster_cli::jobs::JobsAction::Check(a),
        })) => exit(jobs::check(&a.dir)),
        Command::Client(c) => match muster_cli::run_blocking(c) {
            Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
            Err(e) => {
                eprintln!("muster: {e}");
                if let Some(h) = e.hint() {
                    eprintln!("muster: hint: {h}");
                }
                ExitCode::from(e.exit_code().clamp(1, 255) as u8)
            }
        },
    }
}

fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("muster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log line format (`--log-format`, `MUSTER_LOG_FORMAT`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LogFormat {
    /// One line per event for people; colors only on a terminal.
    #[default]
    Text,
    /// One JSON object per line (with the request span's fields) for log collectors.
    Json,
}

/// Sets up logging with the format from `MUSTER_LOG_FORMAT` (text or json).
pub(crate) fn init_tracing(default_level: &str) {
    let json = std::env::var("MUSTER_LOG_FORMAT").is_ok_and(|v| v == "json");
    init_tracing_as(default_level, if json { LogFormat::Json } else { LogFormat::Text });
}

/// Sets up logging on stderr: level from `MUSTER_LOG` (else `default_level`).
pub(crate) fn init_tracing_as(default_level: &str, format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MUSTER_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => b.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// The README promises an environment variable for every server flag.
    #[test]
    fn every_server_flag_has_an_environment_variable() {
        let cmd = Cli::command();
        let server = cmd.find_subcommand("server").expect("a server subcommand");
        let missing: Vec<String> = server
            .get_arguments()
            .filter(|a| !a.is_positional() && a.get_env().is_none())
            .map(|a| a.get_id().to_string())
            .filter(|id| id != "help" && id != "version")
            .collect();
        assert!(missing.is_empty(), "server flags without an environment variable: {missing:?}");
    }
}
