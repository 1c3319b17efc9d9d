//! `muster token create|list|revoke` and `muster login`.
//!
//! Tokens are created by the server (muster.v1.Tokens) and shown once.
//! `muster login` stores a token in the credentials file
//! (`~/.config/muster/credentials`, mode 0600) after checking it with the
//! server; later commands send it automatically. When the server names an
//! identity provider with a device login (`crate::device`), `muster login`
//! signs in there (no browser needed on this machine) and stores the ID
//! token; otherwise, or with `--paste`, paste an API token.

use crate::args::{CommonArgs, Env};
use crate::error::CliError;
use clap::{Args, Subcommand};
use muster_api::tokens as t;
use std::io::{BufRead, Write};

#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster token create -S https://muster.example.com --identity service:ci-linux --expires 30d
  muster token list -S https://muster.example.com --all
  muster token revoke -S https://muster.example.com -- -Qm9vZ0J5ZXRoZUJvb2s   # `--` before ids starting with -")]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum TokenAction {
    /// Create a token and print it (once; only its hash is kept).
    Create {
        #[command(flatten)]
        common: CommonArgs,
        /// Whose token (administrators only for others) [default: yours].
        #[arg(long)]
        identity: Option<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Lifetime: `90d`, `12h`, `30m` or seconds [default: the server's maximum, 90 days].
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (yours; `--all` or `--identity` for administrators).
    List {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        identity: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token by id (yours, or anyone's for administrators).
    Revoke {
        #[command(flatten)]
        common: CommonArgs,
        /// The token id (the part after `mst_`, before the second `_`).
        id: String,
    },
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster login -S https://muster.example.com           # device login at the server's identity provider
  muster login -S https://muster.example.com --paste   # paste an API token (mst_...)")]
pub struct LoginArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Paste an API token instead of signing in at the identity provider.
    #[arg(long)]
    pub paste: bool,
}

fn paste_token() -> Result<String, CliError> {
    eprint!("Paste your muster API token (mst_…): ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::io("reading the token", e))?;
    let token = line.trim().to_string();
    if !token.starts_with("mst_") {
        return Err(CliError::usage("that is not a muster API token (it starts with mst_)"));
    }
    Ok(token)
}

/// The token to save: from the device login when the server's identity
/// provider offers one, else pasted.
async fn obtain_token(env: &Env, a: &LoginArgs) -> Result<String, CliError> {
    if a.paste {
        return paste_token();
    }
    let server = a.common.client(env)?.server().to_string();
    let Some(cfg) = crate::device::login_config(&server).await? else { return paste_token() };
    match crate::device::device_endpoints(&cfg.issuer).await? {
        Some((device, token)) => {
            crate::device::device_flow(&cfg, &device, &token, &mut |m: &str| eprintln!("{m}")).await
        }
        None => {
            eprintln!("{} offers no device login; paste an API token instead", cfg.issuer);
            paste_token()
        }
    }
}

fn rpc(context: &'static str) -> impl Fn(crate::error::RpcError) -> CliError {
    move |error| CliError::Rpc { context: context.to_string(), error }
}

/// `90d`, `12h`, `30m`, `45s` or plain seconds.
pub fn parse_lifetime(s: &str) -> Result<i64, CliError> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'd')) => (&s[..i], 86_400),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 's')) => (&s[..i], 1),
        _ => (s, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n * mult)
        .ok_or_else(|| CliError::usage(format!("bad lifetime {s:?}: use e.g. 30d, 12h, 3600")))
}

fn when(ts: i64) -> String {
    if ts == 0 {
        return "-".to_string();
    }
    chrono::DateTime::from_timestamp(ts, 0).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

fn json_line(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::Io(e.to_string()))?;
    writeln!(out, "{s}").map_err(|e| CliError::io("writing output", e))
}

pub async fn token(env: &Env, a: &TokenArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| CliError::io("writing output", e));
    match &a.action {
        TokenAction::Create { common, identity, description, expires } => {
            let client = common.client(env)?;
            let req = t::CreateTokenRequest {
                identity: identity.clone().unwrap_or_default(),
                description: description.clone(),
                expires_in_secs: expires.as_deref().map(parse_lifetime).transpose()?.unwrap_or(0),
            };
            let resp: t::CreateTokenResponse =
                client.call(t::SERVICE, "Create", &req).await.map_err(rpc("creating a token"))?;
            if common.json {
                json_line(out, &resp)?;
            } else {
                let info = resp.info.clone().unwrap_or_default();
                w(out, resp.token.clone())?;
                eprintln!(
                    "token {} for {} expires {} — shown once, store it now",
                    info.id,
                    info.identity,
                    when(info.expires_ts)
                );
            }
        }
        TokenAction::List { common, identity, all } => {
            let client = common.client(env)?;
            let ident = if *all { "*".to_string() } else { identity.clone().unwrap_or_default() };
            let resp: t::ListTokensResponse = client
                .call(t::SERVICE, "List", &t::ListTokensRequest { identity: ident })
                .await
                .map_err(rpc("listing tokens"))?;
            if common.json {
                json_line(out, &resp)?;
            } else {
                w(
                    out,
                    format!(
                        "{:<24} {:<32} {:<17} {:<17} {:<17} {}",
                        "ID", "IDENTITY", "EXPIRES", "LAST USED", "REVOKED", "DESCRIPTION"
                    ),
                )?;
                for i in &resp.tokens {
                    w(
                        out,
                        format!(
                            "{:<24} {:<32} {:<17} {:<17} {:<17} {}",
                            i.id,
                            i.identity,
                            when(i.expires_ts),
                            when(i.last_used_ts),
                            when(i.revoked_ts),
                            i.description
                        ),
                    )?;
                }
            }
        }
        TokenAction::Revoke { common, id } => {
            let client = common.client(env)?;
            let resp: t::RevokeTokenResponse = client
                .call(t::SERVICE, "Revoke", &t::RevokeTokenRequest { id: id.clone() })
                .await
                .map_err(rpc("revoking"))?;
            if common.json {
                json_line(out, &resp)?;
            } else if resp.revoked {
                w(out, format!("revoked {id}"))?;
            } else {
                w(out, format!("{id} was already revoked"))?;
            }
        }
    }
    Ok(0)
}

pub async fn login(env: &Env, a: &LoginArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let path =
        env.credentials_file.clone().ok_or_else(|| CliError::usage("no home directory for the credentials file"))?;
    let token = obtain_token(env, a).await?;
    // Check it with the server before saving.
    let mut common = a.common.clone();
    common.token = Some(token.clone());
    let client = common.client(env)?;
    let _: t::ListTokensResponse = client
        .call(t::SERVICE, "List", &t::ListTokensRequest::default())
        .await
        .map_err(rpc("checking the token with the server"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
    }
    write_private(&path, &format!("# written by muster login\ntoken = \"{token}\"\n"))?;
    writeln!(out, "saved to {}", path.display()).map_err(|e| CliError::io("writing output", e))?;
    Ok(0)
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| CliError::io(format!("writing {}", path.display()), e))?;
    f.write_all(text.as_bytes()).map_err(|e| CliError::io(format!("writing {}", path.display()), e))
}
