//! Flags shared by several verbs and their parsing.
//!
//! Owns: [`CommonArgs`] (server, token, output mode), [`TaskArgs`] (the flags
//! that describe a new task, shared by `trigger` and `run`) and the pure
//! function that turns them into a `pb::NewTaskRequest` ([`new_task_request`]),
//! the `key=value` / `key:value` / time parsers, and [`Env`]: everything the
//! verbs read from the process environment, passed in so tests control it.

use crate::client::{self, Client};
use crate::error::CliError;
use clap::Args;
use muster_api::pb;
use muster_core::{Clock, Time};
use std::io::IsTerminal;
use std::sync::Arc;

/// Flags every client verb takes.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonArgs {
    /// Server URL; a bare host means https://host. A comma-separated list
    /// (`-S http://a:8080,http://b:8080`) names replicas of one muster
    /// deployment: calls stick to one URL and move to the next when it cannot
    /// be reached.
    #[arg(short = 'S', long = "server", env = "SWARMING_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token (else $MUSTER_TOKEN, else ~/.config/muster/credentials:
    /// a line `token = "..."` or the token alone).
    #[arg(long, env = "MUSTER_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Read the bearer token from this file (e.g. a mounted secret), when
    /// --token / $MUSTER_TOKEN are not given.
    #[arg(long, env = "MUSTER_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// PEM file of CA certificates to trust for an https:// server, besides
    /// the system's (e.g. a private CA).
    #[arg(long, env = "MUSTER_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl CommonArgs {
    /// A client for these flags; the credentials file comes from `env`.
    pub fn client(&self, env: &Env) -> Result<Client, CliError> {
        let server = self
            .server
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| CliError::usage("no server: pass -S/--server URL or set SWARMING_SERVER"))?;
        let token = match (&self.token, &self.token_file) {
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| CliError::io(format!("reading {}", file.display()), e))?;
                Some(
                    client::parse_credentials(&text)
                        .ok_or_else(|| CliError::usage(format!("{} holds no token", file.display())))?,
                )
            }
            _ => client::find_token(self.token.as_deref(), env.credentials_file.as_deref()).map_err(CliError::Io)?,
        };
        Client::new(server, token).and_then(|c| c.with_ca_file(self.ca_file.as_deref())).map_err(CliError::Usage)
    }
}

/// Everything the verbs take from the process: the clock, `$USER`,
/// `$SWARMING_TASK_ID`, whether stdout/stderr/stdin are terminals, colors.
#[derive(Clone)]
pub struct Env {
    /// The clock (relative times, `--start 2h`).
    pub clock: Arc<dyn Clock>,
    /// `$USER` (default `user` of new tasks).
    pub user: String,
    /// `$SWARMING_TASK_ID` (the parent of new tasks when set).
    pub parent_task_id: String,
    /// `$SWARMING_SERVER` (one URL or a comma-separated list): the parent
    /// task id is used only on that server.
    pub swarming_server: Option<String>,
    /// The credentials file to read a token from.
    pub credentials_file: Option<std::path::PathBuf>,
    /// stdout is a terminal: human output may use colors.
    pub color: bool,
    /// stderr is a terminal: show spinners and progress bars.
    pub progress: bool,
    /// stdin and stderr are terminals: questions may be asked.
    pub interactive: bool,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("user", &self.user)
            .field("parent_task_id", &self.parent_task_id)
            .field("color", &self.color)
            .field("progress", &self.progress)
            .field("interactive", &self.interactive)
            .finish_non_exhaustive()
    }
}

impl Env {
    /// The real process environment.
    pub fn from_process() -> Env {
        let var = |k: &str| std::env::var(k).ok();
        Env {
            clock: Arc::new(muster_core::time::SystemClock),
            user: var("USER").or_else(|| var("USERNAME")).unwrap_or_default(),
            parent_task_id: var("SWARMING_TASK_ID").unwrap_or_default(),
            swarming_server: var("SWARMING_SERVER"),
            credentials_file: client::credentials_path(var("XDG_CONFIG_HOME").as_deref(), var("HOME").as_deref()),
            color: std::io::stdout().is_terminal() && var("NO_COLOR").is_none_or(|v| v.is_empty()),
            progress: std::io::stderr().is_terminal(),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    /// A quiet environment for tests and scripts: no colors, no progress, no
    /// questions, this clock and user.
    pub fn plain(clock: Arc<dyn Clock>, user: &str) -> Env {
        Env {
            clock,
            user: user.to_string(),
            parent_task_id: String::new(),
            swarming_server: None,
            credentials_file: None,
            color: false,
            progress: false,
            interactive: false,
        }
    }

    /// The parent of tasks created on `server`: `$SWARMING_TASK_ID` when
    /// `server` is `$SWARMING_SERVER` (a task triggering on its own server),
    /// else none. Either may be a comma-separated list of replica URLs: one
    /// URL in common means the same deployment.
    pub fn parent_for(&self, server: &str) -> String {
        let ours = client::normalize_servers(server).unwrap_or_default();
        let same = self
            .swarming_server
            .as_deref()
            .and_then(|s| client::normalize_servers(s).ok())
            .is_some_and(|env| env.iter().any(|s| ours.contains(s)));
        if same {
            self.parent_task_id.clone()
        } else {
            String::new()
        }
    }

    /// Now.
    pub fn now(&self) -> Time {
        self.clock.now()
    }
}

// ---------------------------------------------------------------------------
// Value parsers
// ---------------------------------------------------------------------------

/// `key=value` with a non-empty key and value (`--env`, `--named-cache`).
pub fn key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?} is not key=value"))?;
    if k.trim().is_empty() {
        return Err(format!("{s:?}: empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A dimension `key=value`; the value may OR several values with `|`
/// (`os=Linux|Mac`). Keys follow `^[a-zA-Z\-_.][0-9a-zA-Z\-_.]*$`; values
/// and each OR part are non-empty without surrounding spaces.
pub fn dimension(s: &str) -> Result<pb::StringPair, String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("bad dimension {s:?}: expected key=value"))?;
    let key_ok = k
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || "-_.".contains(c) || (i > 0 && c.is_ascii_digit()));
    if k.is_empty() || !key_ok || k.len() > 64 {
        return Err(format!("bad dimension {s:?}: bad key {k:?}"));
    }
    if v.is_empty() {
        return Err(format!("bad dimension {s:?}: empty value"));
    }
    for part in v.split('|') {
        if part.is_empty() || part.trim() != part {
            return Err(format!("bad dimension {s:?}: empty or padded value in {v:?}"));
        }
    }
    Ok(pb::StringPair { key: k.to_string(), value: v.to_string() })
}

/// A tag `key:value` (non-empty key; the value may be empty).
pub fn tag(s: &str) -> Result<String, String> {
    match s.split_once(':') {
        Some((k, _)) if !k.trim().is_empty() => Ok(s.to_string()),
        _ => Err(format!("bad tag {s:?}: expected key:value")),
    }
}

/// A lowercase-hex task id (at least 2 characters).
pub fn task_id(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() >= 2 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(t.to_string())
    } else {
        Err(format!("bad task ID {s:?}: must be lowercase hex"))
    }
}

/// A point in time: seconds since the epoch (`1714500000`, float allowed),
/// RFC 3339 (`2024-05-01T10:00:00Z`), or an age (`30m`, `2h`, `7d` = that
/// long before `now`).
pub fn parse_time(s: &str, now: Time) -> Result<Time, String> {
    let s = s.trim();
    let bad = || format!("bad time {s:?}: use epoch seconds, RFC 3339 or an age like 2h");
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs <= 0.0 {
            return Err(bad());
        }
        let us = (secs * 1e6) as i64;
        return chrono::DateTime::from_timestamp_micros(us).ok_or_else(bad);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    Ok(now - chrono::Duration::seconds(secs))
}

// ---------------------------------------------------------------------------
// New task flags
// ---------------------------------------------------------------------------

/// Flags describing a new task (`trigger`, `run`). Names and defaults are
/// those of the upstream `swarming trigger`.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskArgs {
    /// Dimension a bot must have, key=value (repeatable; `os=Linux|Mac` ORs values).
    #[arg(short = 'd', long = "dimension", value_name = "KEY=VALUE", value_parser = dimension)]
    pub dimensions: Vec<pb::StringPair>,
    /// Extra dimension tried first for SECS seconds: key=value:SECS.
    #[arg(long = "optional-dimension", value_name = "KEY=VALUE:SECS")]
    pub optional_dimensions: Vec<String>,
    /// Tag of the task, key:value (repeatable).
    #[arg(long = "tag", value_name = "KEY:VALUE", value_parser = tag)]
    pub tags: Vec<String>,
    /// Priority, 1 (highest) to 255.
    #[arg(long, default_value_t = 200)]
    pub priority: i32,
    /// Seconds the task may wait for a bot before it EXPIRES.
    #[arg(long, default_value_t = 21600, value_name = "SECS")]
    pub expiration: i32,
    /// Seconds the task may run (then TIMED_OUT).
    #[arg(long = "hard-timeout", default_value_t = 3600, value_name = "SECS")]
    pub hard_timeout: i32,
    /// Seconds the task may stay silent on stdout/stderr (0 = no limit).
    #[arg(long = "io-timeout", default_value_t = 1200, value_name = "SECS")]
    pub io_timeout: i32,
    /// Seconds between SIGTERM and SIGKILL on timeout or kill.
    #[arg(long = "grace-period", default_value_t = 30, value_name = "SECS")]
    pub grace_period: i32,
    /// Reuse the result of an identical earlier task.
    #[arg(long)]
    pub idempotent: bool,
    /// Environment variable KEY=VALUE (repeatable; an empty value unsets it).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// Path prepended to a PATH-like variable, KEY=relpath (repeatable).
    #[arg(long = "env-prefix", value_name = "KEY=PATH", value_parser = key_value)]
    pub env_prefixes: Vec<(String, String)>,
    /// Named cache kept on the bot across tasks, name=path (repeatable).
    #[arg(long = "named-cache", value_name = "NAME=PATH", value_parser = key_value)]
    pub named_caches: Vec<(String, String)>,
    /// Output file the task produces, relative path (repeatable).
    #[arg(long = "output", value_name = "PATH")]
    pub outputs: Vec<String>,
    /// Working directory of the command, relative to the task's run dir.
    #[arg(long = "relative-cwd", value_name = "DIR")]
    pub relative_cwd: Option<String>,
    /// Task name (default `<user>/<k1=v1_k2=v2>`).
    #[arg(long = "task-name", value_name = "NAME")]
    pub task_name: Option<String>,
    /// Requesting user (default $USER).
    #[arg(long)]
    pub user: Option<String>,
    /// Service account of the task: `bot`, `none` or an email.
    #[arg(long = "service-account", value_name = "ACCOUNT")]
    pub service_account: Option<String>,
    /// Realm of the task, project:realm.
    #[arg(long)]
    pub realm: Option<String>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn optional_dimension(s: &str) -> Result<(pb::StringPair, i32), String> {
    let (kv, secs) =
        s.rsplit_once(':').ok_or_else(|| format!("bad optional dimension {s:?}: expected key=value:secs"))?;
    let secs: i32 = secs.parse().map_err(|_| format!("bad optional dimension {s:?}: bad expiration {secs:?}"))?;
    if secs <= 0 {
        return Err(format!("bad optional dimension {s:?}: expiration must be positive"));
    }
    Ok((dimension(kv)?, secs))
}

/// The default task name: `<user>/<k1=v1_k2=v2>` over the dimensions in
/// order given.
pub fn default_task_name(user: &str, dims: &[pb::StringPair]) -> String {
    let d = dims.iter().map(|p| format!("{}={}", p.key, p.value)).collect::<Vec<_>>().join("_");
    format!("{user}/{d}")
}

/// Builds the NewTaskRequest of `trigger`/`run` for `server` (the normalized
/// URL, or the comma-separated URLs of the replicas). `request_uuid` is the idempotency key (the caller passes a fresh
/// random UUID, kept across retries).
pub fn new_task_request(
    a: &TaskArgs,
    env: &Env,
    server: &str,
    request_uuid: &str,
) -> Result<pb::NewTaskRequest, CliError> {
    if a.dimensions.is_empty() {
        return Err(CliError::usage("at least one --dimension is required (e.g. -d pool=default)"));
    }
    if a.command.is_empty() {
        return Err(CliError::usage("a command is required after `--`"));
    }
    for (i, d) in a.dimensions.iter().enumerate() {
        if a.dimensions[..i].contains(d) {
            return Err(CliError::usage(format!("dimension {}={} is given twice", d.key, d.value)));
        }
    }
    let mut env_vars: Vec<pb::StringPair> = Vec::new();
    for (k, v) in &a.env {
        if env_vars.iter().any(|p| &p.key == k) {
            return Err(CliError::usage(format!("--env {k} is given twice")));
        }
        env_vars.push(pb::StringPair { key: k.clone(), value: v.clone() });
    }
    let mut prefixes: Vec<pb::StringListPair> = Vec::new();
    for (k, v) in &a.env_prefixes {
        match prefixes.iter_mut().find(|p| &p.key == k) {
            Some(p) => p.value.push(v.clone()),
            None => prefixes.push(pb::StringListPair { key: k.clone(), value: vec![v.clone()] }),
        }
    }
    let user = a.user.clone().unwrap_or_else(|| env.user.clone());
    let properties = pb::TaskProperties {
        caches: a.named_caches.iter().map(|(n, p)| pb::CacheEntry { name: n.clone(), path: p.clone() }).collect(),
        command: a.command.clone(),
        relative_cwd: a.relative_cwd.clone().unwrap_or_default(),
        dimensions: a.dimensions.clone(),
        env: env_vars,
        env_prefixes: prefixes,
        execution_timeout_secs: a.hard_timeout,
        grace_period_secs: a.grace_period,
        idempotent: a.idempotent,
        io_timeout_secs: a.io_timeout,
        outputs: a.outputs.clone(),
        ..Default::default()
    };
    let mut slices = Vec::new();
    let mut base_expiration = a.expiration;
    if !a.optional_dimensions.is_empty() {
        let mut extra = Vec::new();
        let mut secs_total = 0;
        for o in &a.optional_dimensions {
            let (d, secs) = optional_dimension(o).map_err(CliError::Usage)?;
            extra.push(d);
            secs_total = secs_total.max(secs);
        }
        let mut p = properties.clone();
        p.dimensions.extend(extra);
        slices.push(pb::TaskSlice { properties: Some(p), expiration_secs: secs_total, wait_for_capacity: false });
        base_expiration = (a.expiration - secs_total).max(60);
    }
    slices.push(pb::TaskSlice {
        properties: Some(properties),
        expiration_secs: base_expiration,
        wait_for_capacity: false,
    });
    Ok(pb::NewTaskRequest {
        name: a.task_name.clone().unwrap_or_else(|| default_task_name(&user, &a.dimensions)),
        parent_task_id: env.parent_for(server),
        priority: a.priority,
        task_slices: slices,
        tags: a.tags.clone(),
        user,
        service_account: a.service_account.clone().unwrap_or_default(),
        realm: a.realm.clone().unwrap_or_default(),
        request_uuid: request_uuid.to_string(),
        ..Default::default()
    })
}

/// A fresh random request UUID.
pub fn new_request_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
