//! `muster collect`: waits for tasks and gathers their results and output.
//!
//! Owns: the polling loop (BatchGetResult in chunks of 500, sleeping
//! `1 s + waited/30` capped at 15 s), the console output
//! (`<id>: COMPLETED, exit code N` + log), and the summary files: the
//! `--json-output` map keyed by task id (`{"results", "output", "error"}`)
//! and the legacy `--task-summary-python` `{"shards": [...]}`.

use crate::args::{self, CommonArgs, Env};
use crate::client::Client;
use crate::error::{CliError, RpcContext};
use crate::format::{self, Style};
use crate::progress::Progress;
use clap::{ArgAction, Args};
use muster_api::pb;
use muster_api::pb::batch_get_result_response::result_or_error::Outcome;
use serde_json::{Map, Value};
use std::io::Write;
use std::time::Duration;

/// `muster collect`.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(after_help = "Examples:
  muster collect 6663cfc78b41fb10
  muster collect --requests-json tasks.json --json-output summary.json
  muster collect --wait=false 6663cfc78b41fb10
  muster collect --eager --timeout 600 6663cfc78b41fb10 6663d0a1c2b3e410

A task that failed does not make collect fail; exit 10 means --timeout
elapsed before every task finished.")]
pub struct CollectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Task ids.
    #[arg(value_parser = args::task_id, value_name = "TASK_ID")]
    pub task_ids: Vec<String>,
    /// Also collect the tasks of this file (the output of trigger/spawn-tasks).
    #[arg(long = "requests-json", value_name = "PATH")]
    pub requests_json: Option<String>,
    /// Wait for the tasks to finish (`--wait=false`: report current state).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub wait: bool,
    /// Give up waiting after SECS seconds (0 = never).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub timeout: f64,
    /// Return as soon as one task finishes.
    #[arg(long)]
    pub eager: bool,
    /// Include performance stats.
    #[arg(long)]
    pub perf: bool,
    /// Where task output goes: none, console, json or all (= console+json).
    /// Default: console, or json with --json.
    #[arg(long = "task-output-stdout", value_name = "MODE", value_parser = ["none", "console", "json", "all"])]
    pub task_output_stdout: Vec<String>,
    /// Write the summary {"<task id>": {"results", "output", "error"}} to this file (`-` = stdout).
    #[arg(long = "json-output", visible_alias = "task-summary-json", value_name = "PATH")]
    pub json_output: Option<String>,
    /// Write the legacy {"shards": [...]} summary to this file.
    #[arg(long = "task-summary-python", value_name = "PATH")]
    pub task_summary_python: Option<String>,
}

/// What collect learned about one task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    /// The task id as given.
    pub task_id: String,
    /// Its result, if it could be fetched.
    pub result: Option<pb::TaskResultResponse>,
    /// Its output, when asked for and the task is final.
    pub output: Option<Vec<u8>>,
    /// Why there is no result (`no such task`, `rpc_timeout`, ...).
    pub error: Option<String>,
}

/// The task ids of a trigger/spawn-tasks output file.
pub fn ids_from_requests_json(text: &str) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let tasks = v.get("tasks").and_then(Value::as_array).ok_or_else(|| "expected {\"tasks\": [...]}".to_string())?;
    tasks
        .iter()
        .map(|t| {
            t.get("task_id")
                .or_else(|| t.get("taskId"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| "a task has no task_id".to_string())
        })
        .collect()
}

/// The `--json-output` summary: an object keyed by task id.
pub fn summary_json(items: &[Collected]) -> Result<Value, CliError> {
    let mut m = Map::new();
    for c in items {
        let mut e = Map::new();
        if let Some(err) = &c.error {
            e.insert("error".into(), Value::String(err.clone()));
        }
        if let Some(o) = &c.output {
            e.insert("output".into(), Value::String(String::from_utf8_lossy(o).into_owned()));
        }
        if let Some(r) = &c.result {
            e.insert("results".into(), format::snake(r)?);
        }
        m.insert(c.task_id.clone(), Value::Object(e));
    }
    Ok(Value::Object(m))
}

/// The legacy `--task-summary-python` summary: `{"shards": [result + "output" | null]}`.
pub fn summary_python(items: &[Collected]) -> Result<Value, CliError> {
    let mut shards = Vec::new();
    for c in items {
        match &c.result {
            Some(r) if c.error.is_none() => {
                let mut v = format::snake(r)?;
                if let Value::Object(m) = &mut v {
                    let o = c.output.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                    m.insert("output".into(), Value::String(o.into_owned()));
                }
                shards.push(v);
            }
            _ => shards.push(Value::Null),
        }
    }
    Ok(serde_json::json!({ "shards": shards }))
}

/// The console line of one task: `<id>: COMPLETED, exit code N` or `<id>: <STATE>`.
pub fn console_line(c: &Collected, style: Style) -> String {
    match (&c.result, &c.error) {
        (_, Some(e)) => format!("{}: {}", c.task_id, style.bad(&format!("error: {e}"))),
        (Some(r), None) if r.state == pb::TaskState::Completed as i32 => {
            format!("{}: {}, exit code {}", c.task_id, style.state(r), r.exit_code)
        }
        (Some(r), None) => format!("{}: {}", c.task_id, style.state(r)),
        (None, None) => format!("{}: unknown", c.task_id),
    }
}

/// The sleep between polls after `waited` seconds of waiting.
pub fn poll_delay(waited: Duration) -> Duration {
    (Duration::from_secs(1) + waited / 30).min(Duration::from_secs(15))
}

/// Polls until the tasks are final (or one is, with `eager`; or once, without
/// `wait`), then fetches output when `with_output`. Returns the entries in
/// input order and whether the timeout elapsed.
pub async fn wait_for_tasks(
    client: &Client,
    ids: &[String],
    wait: bool,
    eager: bool,
    perf: bool,
    timeout: Option<Duration>,
    progress: &Progress,
) -> Result<(Vec<Collected>, bool), CliError> {
    let mut items: Vec<Collected> =
        ids.iter().map(|id| Collected { task_id: id.clone(), ..Default::default() }).collect();
    let mut waited = Duration::ZERO;
    let mut timed_out = false;
    let mut dims: Option<Vec<pb::StringPair>> = None;
    loop {
        let pending: Vec<usize> = (0..items.len()).filter(|i| !is_done(&items[*i])).collect();
        for chunk in pending.chunks(500) {
            let chunk_ids: Vec<String> = chunk.iter().map(|i| items[*i].task_id.clone()).collect();
            let r = client.batch_get_result(&chunk_ids, perf).await.context(|| "getting task results".to_string())?;
            for (i, roe) in chunk.iter().zip(r.results) {
                match roe.outcome {
                    Some(Outcome::Result(res)) => items[*i].result = Some(res),
                    Some(Outcome::Error(s)) => items[*i].error = Some(s.message),
                    None => items[*i].error = Some("empty answer".to_string()),
                }
            }
        }
        let done = items.iter().filter(|c| is_done(c)).count();
        progress.set_position(done as u64);
        if progress.is_visible() && items.len() == 1 {
            if let Some(r) = items[0].result.as_ref().filter(|r| !format::is_final(r.state)) {
                let detail = wait_detail(client, r, &mut dims).await;
                progress.set_message(&format!("waiting for {}: {detail}", r.task_id));
            }
        }
        if !wait || done == items.len() || (eager && done > 0) {
            break;
        }
        if let Some(t) = timeout {
            if waited >= t {
                timed_out = true;
                for c in items.iter_mut().filter(|c| !is_done(c)) {
                    c.error = Some("rpc_timeout".to_string());
                }
                break;
            }
        }
        let mut d = poll_delay(waited);
        if let Some(t) = timeout {
            d = d.min(t.saturating_sub(waited)).max(Duration::from_millis(10));
        }
        tokio::time::sleep(d).await;
        waited += d;
    }
    Ok((items, timed_out))
}

/// What a live task is waiting for, for the progress line: the state, the
/// bot, a pending kill, or how many bots could take it.
async fn wait_detail(client: &Client, r: &pb::TaskResultResponse, dims: &mut Option<Vec<pb::StringPair>>) -> String {
    let state = format::state_name(r.state);
    if r.state == pb::TaskState::Pending as i32 {
        if dims.is_none() {
            *dims = client.get_request(&r.task_id).await.ok().map(|q| {
                q.task_slices
                    .first()
                    .and_then(|s| s.properties.as_ref())
                    .map(|p| p.dimensions.clone())
                    .unwrap_or_default()
            });
        }
        let more = match dims.as_deref() {
            Some(d) => crate::run::pending_detail(client, d).await,
            None => None,
        };
        return more.map_or_else(|| state.to_string(), |m| format!("{state}, {m}"));
    }
    if r.abandoned_ts.is_some() {
        return format!("{state} on {}, kill requested: waiting for the bot to stop it", r.bot_id);
    }
    format!("{state} on {}", r.bot_id)
}

fn is_done(c: &Collected) -> bool {
    c.error.is_some() || c.result.as_ref().is_some_and(|r| format::is_final(r.state))
}

/// Collects tasks.
pub async fn collect(client: &Client, env: &Env, a: &CollectArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let mut ids = a.task_ids.clone();
    if let Some(path) = &a.requests_json {
        let text = std::fs::read_to_string(path).map_err(|e| CliError::io(format!("reading {path}"), e))?;
        ids.extend(ids_from_requests_json(&text).map_err(|e| CliError::Usage(format!("{path}: {e}")))?);
    }
    if ids.is_empty() {
        return Err(CliError::usage("no task ids: pass task ids or --requests-json"));
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(CliError::usage(format!("task id {id} is given twice")));
        }
    }
    if !a.wait && a.timeout > 0.0 {
        return Err(CliError::usage("--timeout cannot be used with --wait=false"));
    }
    let modes: Vec<&str> = if a.task_output_stdout.is_empty() {
        vec![if a.common.json { "json" } else { "console" }]
    } else {
        a.task_output_stdout.iter().map(String::as_str).collect()
    };
    let console = modes.iter().any(|m| *m == "console" || *m == "all");
    let json_output = modes.iter().any(|m| *m == "json" || *m == "all");
    let timeout = (a.timeout > 0.0).then(|| Duration::from_secs_f64(a.timeout));
    let progress = if ids.len() > 1 {
        Progress::bar(env.progress && a.wait, ids.len() as u64, "collecting")
    } else {
        Progress::spinner(env.progress && a.wait, &format!("waiting for {}", ids[0]))
    };
    let (mut items, timed_out) = wait_for_tasks(client, &ids, a.wait, a.eager, a.perf, timeout, &progress).await?;
    progress.finish();
    let want_output = (console && !a.common.json) || json_output || a.task_summary_python.is_some();
    if want_output {
        for c in items.iter_mut() {
            let ran = c.result.as_ref().is_some_and(|r| format::is_final(r.state) && !r.run_id.is_empty());
            if ran && c.error.is_none() {
                let o = client
                    .get_all_stdout(&c.task_id)
                    .await
                    .context(|| format!("getting output of task {}", c.task_id))?;
                c.output = Some(o);
            }
        }
    }
    let style = Style { color: env.color };
    if console && !a.common.json && a.json_output.as_deref() != Some("-") {
        for c in &items {
            format::line(out, &console_line(c, style))?;
            if let Some(o) = &c.output {
                format::write_bytes(out, o)?;
                if !o.is_empty() && !o.ends_with(b"\n") {
                    format::line(out, "")?;
                }
            }
        }
    }
    let json_items: Vec<Collected> = items
        .iter()
        .map(|c| Collected { output: if json_output { c.output.clone() } else { None }, ..c.clone() })
        .collect();
    let summary = summary_json(&json_items)?;
    if let Some(path) = &a.json_output {
        format::write_json_file(path, out, &summary)?;
    }
    if a.common.json && a.json_output.as_deref() != Some("-") {
        format::write_json(out, &summary)?;
    }
    if let Some(path) = &a.task_summary_python {
        format::write_json_file(path, out, &summary_python(&items)?)?;
    }
    if timed_out {
        return Err(CliError::Timeout(format!("timed out after {}s waiting for the tasks", a.timeout)));
    }
    Ok(0)
}
