//! muster client verbs over swarming.v2 (and muster.v1 for operator verbs).
//!
//! Owns: the client subcommands of the `muster` binary ([`Command`]), their
//! flags (upstream `swarming` CLI names, with `--long` spelling: clap cannot
//! parse `-json-output`, so write `--json-output`), the pRPC client
//! ([`client::Client`]), human and JSON output ([`format`]), and exit codes
//! ([`error::exit`]).
//!
//! How the binary uses it:
//! ```ignore
//! #[derive(clap::Subcommand)]
//! enum Cmd { /* server, bot, ... */ #[command(flatten)] Client(muster_cli::Command) }
//! // ...
//! Cmd::Client(muster_cli::Command::Completions(a)) =>
//!     muster_cli::completions(a.shell, &mut Cli::command(), &mut std::io::stdout()),
//! Cmd::Client(c) => match muster_cli::run(c).await {   // or muster_cli::run_blocking(c)
//!     Ok(code) => std::process::exit(code),
//!     Err(e) => { eprintln!("muster: {e}"); std::process::exit(e.exit_code()) }
//! }
//! ```
//! Every verb is also a plain `async fn(&Client, &Env, &Args, &mut dyn Write)
//! -> Result<i32, CliError>` so tests can drive it against a real server and
//! capture its output.
//!
//! Exit codes: 0 ok; 1 other; 2 usage; 3 server unreachable; 4 not found;
//! 5 permission denied / unauthenticated; 6 request rejected; 7 server error;
//! 8 local IO; 9 refused (not canceled / not deleted); 10 collect timeout.
//! `run` exits with the task's exit code, or 124 TIMED_OUT, 91 EXPIRED,
//! 92 NO_RESOURCE, 93 BOT_DIED, 94 CANCELED, 95 KILLED, 96 CLIENT_ERROR,
//! 130 interrupted. `reproduce` exits with the local command's exit code.
//!
//! [`swarming`] is another personality of the same verbs: exactly the
//! upstream Go CLI (its flag syntax, defaults, outputs and exit codes 0/1/2),
//! for scripts written against it.

pub mod args;
pub mod bots;
pub mod client;
pub mod collect;
pub mod device;
pub mod error;
pub mod format;
pub mod jobs;
pub mod notifications;
pub mod ops;
pub mod progress;
pub mod reproduce;
pub mod run;
pub mod swarming;
pub mod tasks;
pub mod tokens;

pub use args::{CommonArgs, Env, TaskArgs};
pub use client::Client;
pub use error::{exit, CliError, RpcError};

use clap::{Args, Subcommand};
use std::io::Write;

/// The client verbs of `muster`.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Command {
    /// Trigger a task (it runs on a bot; collect it later).
    Trigger(tasks::TriggerArgs),
    /// Wait for tasks and print their results and output.
    Collect(collect::CollectArgs),
    /// Trigger a task, stream its output and exit with its exit code.
    Run(run::RunArgs),
    /// List or count tasks.
    Tasks(tasks::TasksArgs),
    /// Show the request of a task.
    RequestShow(tasks::RequestShowArgs),
    /// List or count bots (`bots show <id>` for one bot).
    Bots(bots::BotsArgs),
    /// Show one bot with its recent events and tasks (also `bots show <id>`).
    BotShow(bots::BotShowArgs),
    /// List the tasks a bot ran.
    BotTasks(bots::BotTasksArgs),
    /// Cancel a task.
    Cancel(tasks::CancelArgs),
    /// Cancel all tasks with some tags.
    CancelTasks(tasks::CancelTasksArgs),
    /// Ask a bot to shut down gracefully.
    Terminate(bots::TerminateArgs),
    /// Forget bots.
    DeleteBots(bots::DeleteBotsArgs),
    /// Trigger tasks described in a JSON file.
    SpawnTasks(tasks::SpawnTasksArgs),
    /// Run a task's command locally.
    Reproduce(reproduce::ReproduceArgs),
    /// Put a bot, a pool or bots with some dimensions into maintenance.
    Drain(ops::DrainArgs),
    /// Lift a drain (same target as `drain`).
    Undrain(ops::UndrainArgs),
    /// List drains in force.
    Drains(ops::DrainsArgs),
    /// Explain why a task is pending.
    Why(ops::WhyArgs),
    /// Scheduled jobs: list, show, trigger, pause, resume, abort, runs, check.
    Jobs(jobs::JobsArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Create, list or revoke API tokens.
    Token(tokens::TokenArgs),
    /// Task notifications: list (`--dead`) and retry.
    Notifications(notifications::NotificationsArgs),
    /// Save an API token for this user (paste it when asked).
    Login(tokens::LoginArgs),
    /// Act exactly as the upstream `swarming` CLI (Go-style flags, its
    /// defaults, outputs and exit codes): `muster swarming help`.
    Swarming(SwarmingArgs),
    /// Make DIR/swarming a link to this executable: run as `swarming`, it
    /// is the upstream-compatible CLI.
    InstallSwarmingAlias(InstallAliasArgs),
}

/// `muster swarming <verb> [flags] [args]`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(
    disable_help_flag = true,
    after_help = "Everything after `swarming` is parsed the way the upstream Go CLI parses it
(-flag value, -flag=value, -wait=false; flags end at the first other word).
Defaults, JSON files and exit codes (0 ok, 1 error, 2 bad flags) are
upstream's. `muster swarming help` lists the verbs; `muster swarming help
collect` shows one.

Examples:
  muster swarming trigger -S http://127.0.0.1:8080 -d pool=default -json-output t.json echo hi
  muster swarming collect -S http://127.0.0.1:8080 -requests-json t.json -task-output-stdout console -timeout 10m"
)]
pub struct SwarmingArgs {
    /// The upstream command line: verb, flags, arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
    pub args: Vec<String>,
}

/// `muster install-swarming-alias DIR`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster install-swarming-alias ~/.local/bin
  swarming collect -S https://muster.example.com -timeout 10m 6663cfc78b41fb10")]
pub struct InstallAliasArgs {
    /// The directory to put the `swarming` link in (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
}

/// `muster completions`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster completions bash > /etc/bash_completion.d/muster
  muster completions zsh > \"${fpath[1]}/_muster\"
  muster completions fish > ~/.config/fish/completions/muster.fish")]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Writes the completion script of `cmd` (the binary's whole command) for
/// `shell`.
pub fn completions(shell: clap_complete::Shell, cmd: &mut clap::Command, out: &mut dyn Write) {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name()).to_string();
    clap_complete::generate(shell, cmd, name, out);
}

/// The client verbs alone as a `muster` command (for completions when the
/// binary does not pass its own).
pub fn client_command() -> clap::Command {
    Command::augment_subcommands(clap::Command::new("muster"))
}

/// Runs a verb with the process environment, writing to stdout. Returns the
/// exit code to use on success: 0, or for `run` the task's (see the crate
/// docs), for `reproduce` the local command's.
pub async fn run(cmd: Command) -> Result<i32, CliError> {
    let env = Env::from_process();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_with(cmd, &env, &mut out).await
}

/// [`run`] on a fresh tokio runtime, for a synchronous `main`.
pub fn run_blocking(cmd: Command) -> Result<i32, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("starting the async runtime: {e}")))?;
    rt.block_on(run(cmd))
}

/// Runs a verb with this environment and output.
pub async fn run_with(cmd: Command, env: &Env, out: &mut dyn Write) -> Result<i32, CliError> {
    let code = match &cmd {
        Command::Completions(a) => {
            completions(a.shell, &mut client_command(), out);
            return Ok(0);
        }
        Command::Swarming(a) => {
            let mut argv = vec!["swarming".to_string()];
            argv.extend(a.args.iter().cloned());
            let token = std::env::var("MUSTER_TOKEN").ok();
            let mut stderr = std::io::stderr();
            let mut stdin = std::io::stdin().lock();
            return Ok(swarming::run(&argv, env, token.as_deref(), out, &mut stderr, &mut stdin).await);
        }
        Command::InstallSwarmingAlias(a) => {
            let exe = std::env::current_exe().map_err(|e| CliError::io("finding this executable", e))?;
            let link = swarming::install_alias(&a.dir, &exe).map_err(CliError::Io)?;
            format::line(out, &format!("{} -> {}: run `swarming help`", link.display(), exe.display()))?;
            Ok(0)
        }
        Command::Trigger(a) => tasks::trigger(&a.common.client(env)?, env, a, out).await,
        Command::Collect(a) => collect::collect(&a.common.client(env)?, env, a, out).await,
        Command::Run(a) => run::run(&a.common.client(env)?, env, a, out).await,
        Command::Tasks(a) => {
            let mut a = a.clone();
            if let Some(tasks::TasksAction::Show(s)) = &mut a.action {
                merge_common(&mut s.common, &a.common);
            }
            let common = match &a.action {
                Some(tasks::TasksAction::Show(s)) => s.common.clone(),
                None => a.common.clone(),
            };
            tasks::tasks(&common.client(env)?, env, &a, out).await
        }
        Command::RequestShow(a) => tasks::request_show(&a.common.client(env)?, env, a, out).await,
        Command::Bots(a) => {
            let mut a = a.clone();
            if let Some(bots::BotsAction::Show(s)) = &mut a.action {
                merge_common(&mut s.common, &a.common);
            }
            let common = match &a.action {
                Some(bots::BotsAction::Show(s)) => s.common.clone(),
                None => a.common.clone(),
            };
            bots::bots(&common.client(env)?, env, &a, out).await
        }
        Command::BotShow(a) => bots::bot_show(&a.common.client(env)?, env, a, out).await,
        Command::BotTasks(a) => bots::bot_tasks(&a.common.client(env)?, env, a, out).await,
        Command::Cancel(a) => tasks::cancel(&a.common.client(env)?, env, a, out).await,
        Command::CancelTasks(a) => tasks::cancel_tasks(&a.common.client(env)?, env, a, out).await,
        Command::Terminate(a) => bots::terminate(&a.common.client(env)?, env, a, out).await,
        Command::DeleteBots(a) => bots::delete_bots(&a.common.client(env)?, env, a, out).await,
        Command::SpawnTasks(a) => tasks::spawn_tasks(&a.common.client(env)?, env, a, out).await,
        Command::Reproduce(a) => reproduce::reproduce(&a.common.client(env)?, env, a, out).await,
        Command::Drain(a) => ops::drain(&a.common.client(env)?, env, a, out).await,
        Command::Undrain(a) => ops::undrain(&a.common.client(env)?, env, a, out).await,
        Command::Drains(a) => ops::drains(&a.common.client(env)?, env, a, out).await,
        Command::Why(a) => ops::why(&a.common.client(env)?, env, a, out).await,
        Command::Token(a) => tokens::token(env, a, out).await,
        Command::Notifications(a) => notifications::notifications(env, a, out).await,
        Command::Login(a) => tokens::login(env, a, out).await,
        Command::Jobs(a) => match a.action.common() {
            Some(c) => jobs::jobs(&c.client(env)?, env, a, out).await,
            None => Err(CliError::usage("`muster jobs check` runs in the muster binary")),
        },
    }?;
    out.flush().map_err(|e| CliError::io("writing output", e))?;
    Ok(code)
}

/// `bots -S x show id`: flags given before `show` apply to it.
fn merge_common(inner: &mut CommonArgs, outer: &CommonArgs) {
    if inner.server.is_none() {
        inner.server = outer.server.clone();
    }
    if inner.token.is_none() {
        inner.token = outer.token.clone();
    }
    if inner.token_file.is_none() {
        inner.token_file = outer.token_file.clone();
    }
    inner.json |= outer.json;
}

/// Rewrites the upstream single-dash long flags (`-json-output x`,
/// `-kill-running`, `-wait=false`) to clap's `--` spelling, for the client
/// verbs only: an argument is rewritten when it follows a client verb, comes
/// before `--`, and its name is a long flag (or alias) of that verb or of one
/// of its subcommands. `cmd` is the binary's root command; `args` includes
/// the program name. Call before parsing to accept upstream command lines.
pub fn normalize_upstream_args(cmd: &clap::Command, args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut verb: Option<&clap::Command> = None;
    let mut ended = false;
    for (i, a) in args.into_iter().enumerate() {
        let Some(s) = a.to_str() else {
            out.push(a);
            continue;
        };
        if i == 0 || ended {
            out.push(a);
            continue;
        }
        if s == "--" {
            ended = true;
            out.push(a);
            continue;
        }
        match verb {
            None => {
                verb = cmd.find_subcommand(s).filter(|c| client_command().find_subcommand(c.get_name()).is_some());
                out.push(a);
            }
            Some(v) => {
                let name = s.strip_prefix('-').filter(|r| !r.starts_with('-') && r.len() > 1);
                let known = name.map(|n| n.split_once('=').map_or(n, |(k, _)| k)).is_some_and(|n| {
                    std::iter::once(v).chain(v.get_subcommands()).any(|c| {
                        c.get_arguments().any(|arg| {
                            arg.get_long() == Some(n) || arg.get_all_aliases().is_some_and(|al| al.contains(&n))
                        })
                    })
                });
                if known {
                    out.push(format!("-{s}").into());
                } else {
                    out.push(a);
                }
            }
        }
    }
    out
}
