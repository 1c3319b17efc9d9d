//! `muster bot`, and the no-argument start of an executable fetched from
//! `/bot_code` (its config trailer names the server).

use anyhow::Context;
use clap::Args;
use muster_api::trailer::BotConfig;
use std::path::{Path, PathBuf};

/// Run a bot agent.
///
/// Examples:
///   muster bot --server http://127.0.0.1:8080 --dir /var/lib/muster-bot
///   muster bot --server http://replica-a:8080,http://replica-b:8080
///   curl -o muster-bot http://SERVER/bot_code && chmod +x muster-bot && ./muster-bot
///   MUSTER_BOT_TOKEN_FILE=/etc/muster/bot.token ./muster-bot
///
/// An executable downloaded from a server's /bot_code knows its server and
/// needs no flags. It carries no credential: unless the server accepts the
/// machine's address, give the bot its group token or machine token with
/// --token-file (or $MUSTER_BOT_TOKEN_FILE, $MUSTER_BOT_TOKEN), or a one-time
/// bootstrap token with --bootstrap-token-file ($MUSTER_BOT_BOOTSTRAP_TOKEN_FILE).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct BotArgs {
    /// Server URL [default: from the executable's config trailer]. Repeat the
    /// flag or separate URLs with commas: several URLs = replicas of one muster
    /// deployment; the bot sticks to one and moves to the next when it cannot
    /// reach it.
    #[arg(short = 'S', long, env = "SWARMING_SERVER", value_name = "URL", value_delimiter = ',')]
    pub server: Vec<String>,
    /// Bot working directory (one bot per directory) [default: ./muster-bot-dir].
    #[arg(long, env = "MUSTER_BOT_DIR")]
    pub dir: Option<PathBuf>,
    /// Bot id [default: $SWARMING_BOT_ID, else the short hostname].
    #[arg(long, env = "SWARMING_BOT_ID")]
    pub id: Option<String>,
    /// Extra dimension key=value (repeatable).
    #[arg(short = 'd', long = "dimension", value_name = "KEY=VALUE")]
    pub dimensions: Vec<String>,
    /// Hook executable called with JSON on stdin (get_dimensions, get_state, ...).
    #[arg(long)]
    pub hook: Option<PathBuf>,
    /// Credential sent as `Authorization: Bearer`: the bot group's token or a
    /// machine token (`muster bot-token create --host NAME`). Prefer
    /// --token-file or the env var: a flag shows in `ps`.
    #[arg(long, env = "MUSTER_BOT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the credential (first line; e.g. mode 0600, owned by the bot's user).
    #[arg(long, env = "MUSTER_BOT_TOKEN_FILE", value_name = "PATH", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// One-time bootstrap token (`muster bot-token bootstrap`, or the
    /// swarming.v2 GetToken call): exchanged at the first handshake for a
    /// machine token, which the bot keeps in `<dir>/machine.token` (mode 0600)
    /// and uses from then on. Ignored once that file exists.
    #[arg(long, env = "MUSTER_BOT_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// File holding the bootstrap token (first line).
    #[arg(long, env = "MUSTER_BOT_BOOTSTRAP_TOKEN_FILE", value_name = "PATH", conflicts_with = "bootstrap_token")]
    pub bootstrap_token_file: Option<PathBuf>,
    /// Do not replace this executable when the server serves another version.
    #[arg(long)]
    pub no_self_update: bool,
    /// PEM file of CA certificates to trust for an https:// server, besides
    /// the system's (e.g. the private CA that signed the server's certificate).
    #[arg(long, env = "MUSTER_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// The trailer of the running executable, if it has one.
pub(crate) fn own_trailer() -> Option<BotConfig> {
    muster_bot::own_trailer().ok().flatten()
}

pub(crate) fn main(args: BotArgs) -> anyhow::Result<()> {
    crate::init_tracing("info");
    let trailer = own_trailer().unwrap_or_default();
    let mut servers: Vec<String> =
        args.server.iter().map(|s| s.trim().trim_end_matches('/').to_string()).filter(|s| !s.is_empty()).collect();
    if servers.is_empty() && !trailer.server.is_empty() {
        servers.push(trailer.server.trim_end_matches('/').to_string());
    }
    if servers.is_empty() {
        anyhow::bail!("no server: pass --server URL (or run an executable fetched from the server's /bot_code)");
    }
    let mut extra = crate::config::parse_dims(&args.dimensions)?;
    for (k, v) in &trailer.dimensions {
        extra.insert(k.clone(), v.clone());
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("muster-bot-dir"));
    let mut opts = muster_bot::BotOptions::with_servers(servers, dir.clone());
    opts.bot_id = args.id.clone();
    opts.extra_dimensions = extra;
    opts.hook = args.hook.clone();
    // A bare start of a fetched executable parses no flags: read the env too.
    let token_file = args.token_file.clone().or_else(|| std::env::var_os("MUSTER_BOT_TOKEN_FILE").map(PathBuf::from));
    opts.token = match &token_file {
        Some(path) => Some(read_token_file(path)?),
        None => args.token.clone().or_else(|| std::env::var("MUSTER_BOT_TOKEN").ok()),
    };
    let bootstrap_file = args
        .bootstrap_token_file
        .clone()
        .or_else(|| std::env::var_os("MUSTER_BOT_BOOTSTRAP_TOKEN_FILE").map(PathBuf::from));
    opts.bootstrap_token = match &bootstrap_file {
        Some(path) => Some(read_token_file(path)?),
        None => args.bootstrap_token.clone().or_else(|| std::env::var("MUSTER_BOT_BOOTSTRAP_TOKEN").ok()),
    };
    opts.self_update = !args.no_self_update;
    opts.ca_file = args.ca_file.clone();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let exit = rt.block_on(async move {
        let shutdown = crate::signals::shutdown_token();
        muster_bot::run(opts, shutdown).await
    })?;
    match exit {
        muster_bot::BotExit::Restart { exe } => {
            let Err(err) = reexec(&exe) else { return Ok(()) };
            // The new copy could not even start: fall back to the last known good one.
            let lkg = dir.join("muster-bot.lkg");
            if lkg.exists() {
                eprintln!("muster: {err:#}; falling back to {}", lkg.display());
                return reexec(&lkg);
            }
            Err(err)
        }
        _ => Ok(()),
    }
}

/// The credential in `path`: its first line, trimmed.
fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading the bot token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        anyhow::bail!("the bot token file {} is empty", path.display());
    }
    Ok(token)
}

/// Replaces this process with `exe`, keeping the arguments. Returns only on failure.
fn reexec(exe: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let err = std::process::Command::new(exe).args(&args).exec();
    Err(anyhow::anyhow!("re-executing {}: {err}", exe.display()))
}
