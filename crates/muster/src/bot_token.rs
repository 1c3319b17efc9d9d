//! `muster bot-token create|list|revoke|bootstrap`: per-machine bot credentials,
//! written straight into the server's database (like `muster migrate`), so
//! only someone who can reach the database can mint them.

use anyhow::Context;
use clap::{Args, Subcommand};
use muster_core::bot::BotToken;
use muster_core::time::SystemClock;
use muster_core::Clock;
use muster_store::{Store, Txn, Write};
use std::io::Write as _;
use std::path::PathBuf;

/// Manage per-machine bot tokens (`msm_<id>_<secret>`).
///
/// A machine token lets the bots of one host (bot id `HOST` or `HOST--suffix`)
/// pass a bot group whose auth says `require_luci_machine_token: true`. Only
/// its SHA-256 is stored; the token is printed once.
///
/// Examples:
///   muster bot-token create --host vm12 --out /tmp/vm12.token
///   scp /tmp/vm12.token vm12:/etc/muster/bot.token   # then: muster bot --token-file /etc/muster/bot.token
///   muster bot-token list
///   muster bot-token revoke 3f9a0c1b2d4e
///   muster bot-token bootstrap --out /tmp/boot.token   # then: muster bot --bootstrap-token-file /tmp/boot.token
#[derive(Args, Debug, Clone)]
pub(crate) struct BotTokenArgs {
    #[command(subcommand)]
    pub command: BotTokenCommand,
    /// Database: `sqlite://PATH` or `postgres://...` [default: sqlite://<data-dir>/muster.db].
    #[arg(long, env = "MUSTER_DATABASE", hide_env_values = true, global = true)]
    pub database: Option<String>,
    /// The server's data directory (for the default SQLite database) [default: ./muster-data].
    #[arg(long, env = "MUSTER_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum BotTokenCommand {
    /// Create a token for one host; prints it once (stdout, or --out).
    Create {
        /// Host the token is bound to: the bot id (or its host part before `--`), or its FQDN.
        #[arg(long)]
        host: String,
        /// Write the token to this new file (mode 0600) instead of stdout.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Recorded as the creator [default: $USER].
        #[arg(long)]
        created_by: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; bots using it are refused from their next call.
    Revoke { id: String },
    /// Issue a one-time bootstrap token (valid 1 h): a new bot presents it at
    /// its first handshake and gets a machine token of its own.
    Bootstrap {
        /// Write the token to this new file (mode 0600) instead of stdout.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Recorded as the creator [default: $USER].
        #[arg(long)]
        created_by: Option<String>,
    },
}

fn valid_host(h: &str) -> bool {
    !h.is_empty() && h.len() <= 253 && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(crate) fn main(args: BotTokenArgs) -> anyhow::Result<()> {
    crate::init_tracing("warn");
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let data_dir = args.data_dir.clone().unwrap_or_else(|| PathBuf::from("muster-data"));
        if args.database.is_none() && !data_dir.join("muster.db").exists() {
            anyhow::bail!(
                "no database at {}: pass --data-dir of the server (or --database URL)",
                data_dir.join("muster.db").display()
            );
        }
        let store = crate::server::open_store(args.database.as_deref(), &data_dir).await?;
        run(store.as_ref(), args.command).await
    })
}

async fn run(store: &dyn Store, cmd: BotTokenCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match cmd {
        BotTokenCommand::Create { host, out, created_by } => {
            if !valid_host(&host) {
                anyhow::bail!("invalid --host {host:?}: letters, digits, '-', '_' and '.' only");
            }
            let t = muster_botauth::token::new_machine_token();
            let record = BotToken {
                id: t.id.clone(),
                host: host.clone(),
                secret_sha256: t.secret_sha256,
                created: now,
                created_by: created_by.or_else(|| std::env::var("USER").ok()).unwrap_or_default(),
                revoked: None,
            };
            if let Some(path) = &out {
                write_new_private_file(path, &format!("{}\n", t.token))?;
            }
            store.commit(Txn::new().with(Write::PutBotToken(Box::new(record)))).await.context("storing the token")?;
            match &out {
                Some(path) => eprintln!("machine token {} for host {host} written to {}", t.id, path.display()),
                None => {
                    println!("{}", t.token);
                    eprintln!(
                        "machine token {} for host {host}: shown once; give it to the bot with --token-file",
                        t.id
                    );
                }
            }
        }
        BotTokenCommand::List => {
            let tokens = store.list_bot_tokens().await.context("listing tokens")?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<14} {:<30} {:<22} {:<16} STATE", "ID", "HOST", "CREATED", "BY")?;
            for t in tokens {
                let state = match t.revoked {
                    Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M:%S")),
                    None => "active".to_string(),
                };
                writeln!(
                    out,
                    "{:<14} {:<30} {:<22} {:<16} {state}",
                    t.id,
                    t.host,
                    t.created.format("%Y-%m-%d %H:%M:%S").to_string(),
                    t.created_by
                )?;
            }
        }
        BotTokenCommand::Bootstrap { out, created_by } => {
            let Some(key) = store.get_meta(crate::server::SESSION_KEY).await.context("reading the server key")? else {
                anyhow::bail!("the database has no server key yet: start the server once first");
            };
            let by = format!("user:{}", created_by.or_else(|| std::env::var("USER").ok()).unwrap_or_default());
            let (token, exp) =
                muster_access::bootstrap::issue(&key, &by, now).context("issuing the bootstrap token")?;
            let exp = exp.format("%Y-%m-%d %H:%M:%S UTC");
            match &out {
                Some(path) => {
                    write_new_private_file(path, &format!("{token}\n"))?;
                    eprintln!("bootstrap token written to {} (one use, valid until {exp})", path.display());
                }
                None => {
                    println!("{token}");
                    eprintln!(
                        "bootstrap token: one use, valid until {exp}; give it to the bot with --bootstrap-token-file"
                    );
                }
            }
        }
        BotTokenCommand::Revoke { id } => match store.get_bot_token(&id).await.context("reading the token")? {
            None => anyhow::bail!("no machine token {id:?} (see `muster bot-token list`)"),
            Some(t) if t.revoked.is_some() => println!("machine token {id} (host {}) was already revoked", t.host),
            Some(t) => {
                store
                    .commit(Txn::new().with(Write::RevokeBotToken { id: id.clone(), at: now }))
                    .await
                    .context("revoking the token")?;
                println!("machine token {id} (host {}) revoked", t.host);
            }
        },
    }
    Ok(())
}

/// Creates `path` (which must not exist) readable by its owner only.
fn write_new_private_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
