//! `muster reproduce`: runs a task's command locally.
//!
//! Owns: turning a stored request into a local process: the LAST slice's
//! properties, a cleared work dir and out dir, env (an empty value unsets),
//! env prefixes made absolute under the work dir, `${ISOLATED_OUTDIR}`
//! substituted, cwd = `work/<relative_cwd>`. CAS inputs and CIPD packages
//! are not downloaded (muster has neither); a warning says so.

use crate::args::{self, CommonArgs, Env};
use crate::client::Client;
use crate::error::{CliError, RpcContext};
use clap::Args;
use muster_api::pb;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `muster reproduce`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Runs the command of the task's last slice in ./work (cleared first) with
its env, and exits with the command's exit code.

Examples:
  muster reproduce 6663cfc78b41fb10
  muster reproduce --work /tmp/w --out /tmp/o 6663cfc78b41fb10")]
pub struct ReproduceArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Work directory (cleared first).
    #[arg(long, default_value = "work", value_name = "DIR")]
    pub work: PathBuf,
    /// Output directory, ${ISOLATED_OUTDIR} (cleared first).
    #[arg(long, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// The task.
    #[arg(value_parser = args::task_id, value_name = "TASK_ID")]
    pub task_id: String,
}

/// What to run: a command with its env changes and directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCommand {
    /// argv.
    pub argv: Vec<String>,
    /// Variables to set, in order.
    pub set: Vec<(String, String)>,
    /// Variables to unset.
    pub unset: Vec<String>,
    /// The working directory.
    pub cwd: PathBuf,
}

/// The local command for `props`, with `work` and `out` absolute. `base_env`
/// looks up current values for env prefixes.
pub fn local_command(
    props: &pb::TaskProperties,
    work: &Path,
    out: &Path,
    base_env: impl Fn(&str) -> Option<String>,
) -> LocalCommand {
    let out_s = out.to_string_lossy();
    let subst = |s: &str| s.replace("${ISOLATED_OUTDIR}", &out_s);
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for e in &props.env {
        if e.value.is_empty() {
            unset.push(e.key.clone());
        } else {
            set.push((e.key.clone(), subst(&e.value)));
        }
    }
    for p in &props.env_prefixes {
        let mut parts: Vec<String> = p.value.iter().map(|v| work.join(v).to_string_lossy().into_owned()).collect();
        let current = set.iter().find(|(k, _)| k == &p.key).map(|(_, v)| v.clone()).or_else(|| base_env(&p.key));
        if let Some(c) = current.filter(|c| !c.is_empty()) {
            parts.push(c);
        }
        let sep = if cfg!(windows) { ";" } else { ":" };
        set.retain(|(k, _)| k != &p.key);
        set.push((p.key.clone(), parts.join(sep)));
    }
    let cwd = if props.relative_cwd.is_empty() { work.to_path_buf() } else { work.join(&props.relative_cwd) };
    LocalCommand { argv: props.command.iter().map(|a| subst(a)).collect(), set, unset, cwd }
}

fn reset_dir(dir: &Path) -> Result<(), CliError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::io(format!("clearing {}", dir.display()), e)),
    }
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(format!("creating {}", dir.display()), e))
}

/// Runs a task's command locally; returns its exit code.
pub async fn reproduce(client: &Client, _env: &Env, a: &ReproduceArgs, _out: &mut dyn Write) -> Result<i32, CliError> {
    let req = client.get_request(&a.task_id).await.context(|| format!("getting request of task {}", a.task_id))?;
    let props = req
        .task_slices
        .last()
        .and_then(|s| s.properties.clone())
        .or(req.properties.clone())
        .ok_or_else(|| CliError::Refused(format!("task {} has no properties", a.task_id)))?;
    if props.command.is_empty() {
        return Err(CliError::Refused(format!("task {} has no command", a.task_id)));
    }
    if props.cas_input_root.is_some() {
        eprintln!("muster: warning: the task's CAS input root is not downloaded");
    }
    if props.cipd_input.as_ref().is_some_and(|c| !c.packages.is_empty()) {
        eprintln!("muster: warning: the task's CIPD packages are not installed");
    }
    reset_dir(&a.work)?;
    reset_dir(&a.out)?;
    let abs = |p: &Path| std::fs::canonicalize(p).map_err(|e| CliError::io(format!("resolving {}", p.display()), e));
    let (work, out) = (abs(&a.work)?, abs(&a.out)?);
    let lc = local_command(&props, &work, &out, |k| std::env::var(k).ok());
    std::fs::create_dir_all(&lc.cwd).map_err(|e| CliError::io(format!("creating {}", lc.cwd.display()), e))?;
    let (prog, rest) = lc.argv.split_first().ok_or_else(|| CliError::Refused("empty command".to_string()))?;
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(rest).current_dir(&lc.cwd);
    for k in &lc.unset {
        cmd.env_remove(k);
    }
    cmd.envs(lc.set.iter().map(|(k, v)| (k, v)));
    let status = cmd.status().await.map_err(|e| CliError::io(format!("running {prog}"), e))?;
    Ok(exit_status_code(status))
}

#[cfg(unix)]
fn exit_status_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().or_else(|| s.signal().map(|n| 128 + n)).unwrap_or(1)
}

#[cfg(not(unix))]
fn exit_status_code(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or(1)
}
