//! `muster config check`, `muster admin init`, and loading the access
//! configuration at server start.

use anyhow::Context;
use clap::{Args, Subcommand};
use muster_access::{token, Identity};
use muster_config::snapshot::LoadOptions;
use muster_config::ConfigHolder;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Loads the config directory for a server; refuses to start on errors.
pub(crate) fn load_config(dir: &Path, dev: bool, loopback: bool) -> anyhow::Result<ConfigHolder> {
    let holder = ConfigHolder::load(dir, LoadOptions { dev, ..Default::default() })
        .map_err(|e| anyhow::anyhow!("invalid configuration in {}:\n{e}", dir.display()))?;
    let snap = holder.get();
    for w in &snap.warnings {
        tracing::warn!(warning = %w, "config");
    }
    if dev {
        tracing::info!("muster dev: every local caller is an administrator");
    } else if !snap.has_access_toml {
        tracing::warn!(
            config_dir = %dir.display(),
            "no access.toml: only callers on this machine (loopback) are served, as administrators; \
             every other client call is refused. Run `muster admin init --identity user:you@example.com` to set up access"
        );
    } else {
        tracing::info!(config_dir = %dir.display(), digest = %snap.digest, pools = snap.pools.len(), "access configuration loaded");
    }
    let open_to_all = snap.realms.values().flat_map(|r| r.values()).any(|who| who.contains("group:all"));
    if open_to_all && !loopback && !dev {
        tracing::warn!("the configuration grants permissions to group:all (everyone, including anonymous callers)");
    }
    Ok(holder)
}

/// Check a configuration directory with the server's own validator.
///
/// Example (a CI presubmit):
///   muster config check ./muster-config
#[derive(Args, Debug)]
pub(crate) struct ConfigArgs {
    #[command(subcommand)]
    action: ConfigAction,
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Parse and validate every file; print `file:line:col: message` per problem; exit 1 on error.
    Check {
        /// The directory (access.toml, pools.cfg, realms.cfg, settings.cfg, ...).
        dir: PathBuf,
        /// Project of realms.cfg and of [[pool]] shorthand realms.
        #[arg(long, default_value = "muster")]
        default_project: String,
    },
}

pub(crate) fn config_main(a: ConfigArgs) -> ExitCode {
    let ConfigAction::Check { dir, default_project } = a.action;
    if !dir.is_dir() {
        eprintln!("muster: {} is not a directory", dir.display());
        return ExitCode::FAILURE;
    }
    match muster_config::load_dir(&dir, LoadOptions { default_project, dev: false }) {
        Ok(snap) => {
            for w in &snap.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "ok: {} pools, {} groups, {} realms, digest {}",
                snap.pools.len(),
                snap.groups.len(),
                snap.realms.len(),
                snap.digest
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Set up access control on a server's machine.
#[derive(Args, Debug)]
pub(crate) struct AdminArgs {
    #[command(subcommand)]
    action: AdminAction,
}

#[derive(Subcommand, Debug)]
enum AdminAction {
    /// Write a minimal access.toml (you as administrator, one pool entry per
    /// pool the fleet reports) and print your first API token.
    ///
    /// Example:
    ///   muster admin init --identity user:me@example.com --data-dir /var/lib/muster
    Init {
        /// Your identity (user:<email> or service:<name>).
        #[arg(long)]
        identity: String,
        /// The server's data directory [default: ./muster-data].
        #[arg(long, env = "MUSTER_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The server's database (as for `muster server`).
        #[arg(long, env = "MUSTER_DATABASE", hide_env_values = true)]
        database: Option<String>,
        /// The server's configuration directory [default: <data-dir>/config].
        #[arg(long, env = "MUSTER_CONFIG_DIR")]
        config_dir: Option<PathBuf>,
        /// Token lifetime in days.
        #[arg(long, default_value_t = 90)]
        expires_days: i64,
        /// Overwrite an existing access.toml.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn admin_main(a: AdminArgs) -> anyhow::Result<()> {
    let AdminAction::Init { identity, data_dir, database, config_dir, expires_days, force } = a.action;
    let identity = Identity::parse(&identity).map_err(anyhow::Error::msg)?;
    if identity.is_anonymous() {
        anyhow::bail!("the administrator cannot be anonymous:anonymous");
    }
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from("muster-data"));
    let config_dir = config_dir.unwrap_or_else(|| data_dir.join("config"));
    let path = config_dir.join("access.toml");
    if path.exists() && !force {
        anyhow::bail!("{} exists; pass --force to overwrite it", path.display());
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let store = crate::server::open_store(database.as_deref(), &data_dir).await?;
        let mut pools: Vec<String> =
            store.load_bots().await?.iter().flat_map(|b| b.dimensions.get("pool").to_vec()).collect();
        pools.sort();
        pools.dedup();
        if pools.is_empty() {
            pools.push("default".to_string());
        }
        let mut text = format!(
            "# Written by `muster admin init`. See docs/access-control.md.\n\
             [groups.administrators]\nmembers = [\"{identity}\"]\n"
        );
        for p in &pools {
            text.push_str(&format!("\n[[pool]]\nname = \"{p}\"\nowners = [\"group:administrators\"]\n"));
        }
        // Validate before writing: never leave a broken file behind.
        let files = muster_config::snapshot::Files([("access.toml".to_string(), text.clone())].into_iter().collect());
        muster_config::snapshot::build(&files, LoadOptions::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
        std::fs::create_dir_all(&config_dir).with_context(|| format!("creating {}", config_dir.display()))?;
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        let now = muster_core::Clock::now(&muster_core::time::SystemClock);
        let issued =
            token::create(store.as_ref(), &identity, "first token (admin init)", &identity, now, expires_days * 86_400)
                .await
                .map_err(|e| anyhow::anyhow!("creating the token: {}", e.message))?;
        eprintln!("wrote {} (administrators: {identity}; pools: {})", path.display(), pools.join(", "));
        eprintln!("your API token (shown once; save it with `muster login` or pass --token):");
        println!("{}", issued.token);
        Ok(())
    })
}
