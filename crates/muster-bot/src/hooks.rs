//! The hook executable (docs/design.md#the-bot): called as `<hook> <name>` with JSON on
//! stdin and JSON (or nothing) on stdout, for `get_dimensions`, `get_state`,
//! `on_before_task`, `on_after_task` and `health`.
//!
//! A hook that cannot start, exits non-zero, prints something that is not a
//! JSON object or runs past its timeout is an [`HookError`]: the caller reports
//! it as a `bot_error` event and carries on. A hook never kills the bot. A hung
//! hook is killed with its whole process group.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Default time a hook may run.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed hook call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HookError {
    #[error("hook {name}: cannot start {path}: {msg}")]
    Spawn { name: String, path: String, msg: String },
    #[error("hook {name} exited with {code}: {stderr}")]
    Failed { name: String, code: i64, stderr: String },
    #[error("hook {name} did not finish within {secs} s and was killed")]
    Timeout { name: String, secs: u64 },
    #[error("hook {name} printed something that is not a JSON object: {snippet:?}")]
    BadOutput { name: String, snippet: String },
}

/// The hook executable and its time limit.
#[derive(Debug, Clone)]
pub struct Hook {
    path: PathBuf,
    timeout: Duration,
}

impl Hook {
    pub fn new(path: impl Into<PathBuf>, timeout: Duration) -> Self {
        Hook { path: path.into(), timeout }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `<hook> <name>` with `input` on stdin. Returns the stdout JSON object,
    /// or `Value::Null` when the hook printed nothing.
    pub async fn call(&self, name: &str, input: &Value) -> Result<Value, HookError> {
        let mut child = tokio::process::Command::new(&self.path)
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HookError::Spawn {
                name: name.to_string(),
                path: self.path.display().to_string(),
                msg: e.to_string(),
            })?;
        let pid = child.id();
        let stdin_bytes = serde_json::to_vec(input).unwrap_or_default();
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let work = async {
            let feed = async {
                if let Some(mut w) = stdin.take() {
                    // A hook that does not read its stdin is fine.
                    let _ = w.write_all(&stdin_bytes).await;
                    let _ = w.shutdown().await;
                }
            };
            let read_out = async {
                let mut buf = Vec::new();
                if let Some(r) = stdout.as_mut() {
                    let _ = r.read_to_end(&mut buf).await;
                }
                buf
            };
            let read_err = async {
                let mut buf = Vec::new();
                if let Some(r) = stderr.as_mut() {
                    let _ = r.take(64 * 1024).read_to_end(&mut buf).await;
                }
                buf
            };
            let ((), out, err) = tokio::join!(feed, read_out, read_err);
            let status = child.wait().await;
            (status, out, err)
        };
        let (status, out, err) = match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => {
                if let Some(pid) = pid {
                    crate::runner::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                }
                return Err(HookError::Timeout { name: name.to_string(), secs: self.timeout.as_secs() });
            }
        };
        let code = match status {
            Ok(s) => crate::runner::exit_code_of(s),
            Err(_) => -1,
        };
        if code != 0 {
            let stderr: String = String::from_utf8_lossy(&err).trim().chars().take(500).collect();
            return Err(HookError::Failed { name: name.to_string(), code, stderr });
        }
        parse_output(name, &out)
    }
}

fn parse_output(name: &str, out: &[u8]) -> Result<Value, HookError> {
    let text = String::from_utf8_lossy(out);
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(HookError::BadOutput { name: name.to_string(), snippet: text.chars().take(200).collect() }),
    }
}

/// Validates a `{"dimensions": {str: [str]}}` reply of `get_dimensions`.
/// `Ok(None)` when the hook printed nothing.
pub fn dimensions_from(reply: &Value) -> Result<Option<muster_api::bot::DimMap>, String> {
    let d = match reply {
        Value::Null => return Ok(None),
        Value::Object(o) => match o.get("dimensions") {
            Some(d) => d,
            None => return Err("get_dimensions reply has no \"dimensions\" key".to_string()),
        },
        _ => return Err("get_dimensions reply is not an object".to_string()),
    };
    let obj = d.as_object().ok_or("dimensions must be a dict")?;
    let mut out = muster_api::bot::DimMap::new();
    for (k, vs) in obj {
        let arr = vs.as_array().ok_or_else(|| format!("dimension {k:?} must be a list of strings"))?;
        let mut vals = Vec::with_capacity(arr.len());
        for v in arr {
            vals.push(v.as_str().ok_or_else(|| format!("dimension {k:?} must be a list of strings"))?.to_string());
        }
        out.insert(k.clone(), vals);
    }
    Ok(Some(out))
}
