//! Task verbs: `trigger`, `tasks`, `request-show`, `cancel`, `cancel-tasks`,
//! `spawn-tasks`. (`collect`, `run` and `reproduce` have their own modules.)
//!
//! Each verb is `async fn(client, env, args, out) -> Result<i32, CliError>`:
//! the exit code on success, output written to `out`.

use crate::args::{self, CommonArgs, Env, TaskArgs};
use crate::client::{collect_pages, Client};
use crate::error::{CliError, RpcContext};
use crate::format::{self, Style, Table};
use clap::Args;
use muster_api::pb;
use muster_api::prpc::{self, Format};
use std::io::Write;

// ---------------------------------------------------------------------------
// trigger
// ---------------------------------------------------------------------------

/// `muster trigger`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster trigger -S localhost:8080 -d pool=default -d os=Linux -- echo hello
  muster trigger -d pool=default -d 'os=Linux|Mac' --tag purpose:demo \\
      --hard-timeout 600 --json-output tasks.json -- python3 -c 'print(1)'
  muster collect --requests-json tasks.json")]
pub struct TriggerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub task: TaskArgs,
    /// Write {\"tasks\": [TaskRequestMetadataResponse]} to this file (`-` = stdout).
    #[arg(long = "json-output", visible_alias = "dump-json", value_name = "PATH")]
    pub json_output: Option<String>,
}

/// Triggers one task; prints its id (or the `{"tasks": [...]}` JSON).
pub async fn trigger(client: &Client, env: &Env, a: &TriggerArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let req = args::new_task_request(&a.task, env, &client.servers().join(","), &args::new_request_uuid())?;
    let resp = client.new_task(&req).await.context(|| format!("triggering task {:?}", req.name))?;
    let v = format::tasks_output(std::slice::from_ref(&resp))?;
    if let Some(path) = &a.json_output {
        format::write_json_file(path, out, &v)?;
    }
    if a.common.json {
        if a.json_output.as_deref() != Some("-") {
            format::write_json(out, &v)?;
        }
    } else if a.json_output.as_deref() != Some("-") {
        let style = Style { color: env.color };
        let state = resp.task_result.as_ref().map(|r| style.state(r)).unwrap_or_default();
        format::line(out, &format!("Triggered task {} ({}) {state}", style.bold(&resp.task_id), req.name))?;
        format::line(out, &format!("  collect: muster collect -S {} {}", client.servers().join(","), resp.task_id))?;
        format::line(out, &format!("  view:    {}", client.task_url(&resp.task_id)))?;
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// tasks
// ---------------------------------------------------------------------------

/// A `--state` value (case-insensitive): pending, running, pending_running,
/// completed, completed_success, completed_failure, expired, timed_out,
/// bot_died, canceled, all, deduped, killed, no_resource, client_error.
pub fn state_query(s: &str) -> Result<i32, String> {
    let up = s.trim().to_ascii_uppercase().replace('-', "_");
    let name = if up.starts_with("QUERY_") { up } else { format!("QUERY_{up}") };
    pb::StateQuery::from_str_name(&name)
        .map(|q| q as i32)
        .ok_or_else(|| format!("bad state {s:?}: use all, pending, running, pending_running, completed, completed_success, completed_failure, expired, timed_out, bot_died, canceled, deduped, killed, no_resource or client_error"))
}

/// `muster tasks`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster tasks --state completed_failure --tag purpose:demo --limit 50
  muster tasks --state running --json
  muster tasks --count --start 24h --state all
  muster tasks show 6a1b2c3d4e5f6010")]
pub struct TasksArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// State filter: all, pending, running, pending_running, completed,
    /// completed_success, completed_failure, expired, timed_out, bot_died,
    /// canceled, deduped, killed, no_resource, client_error.
    #[arg(long, default_value = "all", value_parser = state_query)]
    pub state: i32,
    /// Only tasks with this tag, key:value; `|` ORs values (repeatable, ANDed).
    #[arg(long = "tag", value_name = "KEY:VALUE", value_parser = args::tag)]
    pub tags: Vec<String>,
    /// Maximum number of tasks listed.
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
    /// Only tasks created at or after: epoch seconds, RFC 3339 or an age (2h).
    /// Default for --count: 24h.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Only tasks created before this time.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Print the number of matching tasks instead.
    #[arg(long)]
    pub count: bool,
    /// Write the JSON output to this file (`-` = stdout).
    #[arg(long = "json-output", value_name = "PATH")]
    pub json_output: Option<String>,
    #[command(subcommand)]
    pub action: Option<TasksAction>,
}

/// Subcommands of `tasks`.
#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum TasksAction {
    /// Show one task: its state, bot, times and, while it is pending, why.
    Show(TaskShowArgs),
}

/// `muster tasks show <id>`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster tasks show 6a1b2c3d4e5f6010
  muster tasks show 6a1b2c3d4e5f6010 --json")]
pub struct TaskShowArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The task.
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,
}

/// Shows one task; a pending one with the scheduler's explanation of why it
/// waits (the same as `muster why`).
pub async fn task_show(client: &Client, env: &Env, a: &TaskShowArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let r = client.get_result(&a.task_id, false).await.context(|| format!("reading task {}", a.task_id))?;
    let pending = r.state == pb::TaskState::Pending as i32;
    let why = if pending { Some(crate::ops::why_pending(client, &a.task_id).await?) } else { None };
    if a.common.json {
        let mut v = format::snake(&r)?;
        if let (Some(w), Some(obj)) = (&why, v.as_object_mut()) {
            obj.insert("why_pending".to_string(), format::snake(w)?);
        }
        format::write_json(out, &v)?;
        return Ok(0);
    }
    let now = env.now();
    let style = Style { color: env.color };
    format::line(out, &format!("task {}: {}", r.task_id, r.name))?;
    format::line(out, &format!("  state:    {}", style.state(&r)))?;
    if !r.bot_id.is_empty() {
        format::line(out, &format!("  bot:      {}", r.bot_id))?;
    }
    format::line(out, &format!("  created:  {}", format::relative_ts(r.created_ts.as_ref(), now)))?;
    if r.started_ts.is_some() {
        format::line(out, &format!("  started:  {}", format::relative_ts(r.started_ts.as_ref(), now)))?;
    }
    if r.completed_ts.is_some() {
        format::line(out, &format!("  finished: {}", format::relative_ts(r.completed_ts.as_ref(), now)))?;
    }
    if r.duration > 0.0 {
        format::line(out, &format!("  duration: {}", format::duration(f64::from(r.duration))))?;
    }
    if r.state == pb::TaskState::Completed as i32 {
        format::line(out, &format!("  exit:     {}", r.exit_code))?;
    }
    if !r.tags.is_empty() {
        format::line(out, &format!("  tags:     {}", r.tags.join(" ")))?;
    }
    if let Some(reason) = crate::run::final_reason(&r) {
        format::line(out, &format!("  {reason}"))?;
    }
    if let Some(w) = &why {
        crate::ops::print_why(out, now, w)?;
    }
    Ok(0)
}

fn opt_time(s: Option<&str>, env: &Env) -> Result<Option<pb::Timestamp>, CliError> {
    s.map(|s| args::parse_time(s, env.now()).map(pb::Timestamp::from_datetime)).transpose().map_err(CliError::Usage)
}

/// Lists or counts tasks.
pub async fn tasks(client: &Client, env: &Env, a: &TasksArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    if let Some(TasksAction::Show(s)) = &a.action {
        return task_show(client, env, s, out).await;
    }
    let now = env.now();
    let end = opt_time(a.end.as_deref(), env)?;
    if a.count {
        let start = opt_time(Some(a.start.as_deref().unwrap_or("24h")), env)?;
        let req = pb::TasksCountRequest { start, end, state: a.state, tags: a.tags.clone() };
        let c = client.count_tasks(&req).await.context(|| "counting tasks".to_string())?;
        let v = format::snake(&c)?;
        return emit(&a.common, a.json_output.as_deref(), out, &v, |out| format::line(out, &c.count.to_string()));
    }
    let start = opt_time(a.start.as_deref(), env)?;
    let items = collect_pages(Some(a.limit), |limit, cursor| async move {
        let req = pb::TasksWithPerfRequest {
            limit,
            cursor,
            start,
            end,
            state: a.state,
            sort: pb::SortQuery::QueryCreatedTs as i32,
            tags: a.tags.clone(),
            include_performance_stats: false,
        };
        let r = client.list_tasks(&req).await.context(|| "listing tasks".to_string())?;
        Ok::<_, CliError>((r.items, r.cursor))
    })
    .await?;
    let v = format::list_output(&items)?;
    let style = Style { color: env.color };
    emit(&a.common, a.json_output.as_deref(), out, &v, |out| {
        let text = task_table(&items, now, style);
        out.write_all(text.as_bytes()).map_err(|e| CliError::io("writing output", e))
    })
}

/// The human table of task results.
pub fn task_table(items: &[pb::TaskResultResponse], now: muster_core::Time, style: Style) -> String {
    let mut t = Table::new(&["ID", "STATE", "NAME", "BOT", "CREATED", "DURATION", "EXIT"]);
    for r in items {
        let finished = r.state == pb::TaskState::Completed as i32;
        t.row(vec![
            r.task_id.clone(),
            style.state(r),
            r.name.clone(),
            if r.bot_id.is_empty() { "-".to_string() } else { r.bot_id.clone() },
            format::relative_ts(r.created_ts.as_ref(), now),
            if r.duration > 0.0 { format::duration(f64::from(r.duration)) } else { "-".to_string() },
            if finished { r.exit_code.to_string() } else { "-".to_string() },
        ]);
    }
    t.render()
}

/// Writes `v` to `--json-output` if given; then to stdout as JSON with
/// `--json`, else as text through `human` (unless the file was `-`).
pub(crate) fn emit(
    common: &CommonArgs,
    json_output: Option<&str>,
    out: &mut dyn Write,
    v: &serde_json::Value,
    human: impl FnOnce(&mut dyn Write) -> Result<(), CliError>,
) -> Result<i32, CliError> {
    if let Some(path) = json_output {
        format::write_json_file(path, out, v)?;
        if path == "-" {
            return Ok(0);
        }
    }
    if common.json {
        format::write_json(out, v)?;
    } else {
        human(out)?;
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// request-show
// ---------------------------------------------------------------------------

/// `muster request-show`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster request-show 6663cfc78b41fb10
  muster request-show --json 6663cfc78b41fb10 > request.json")]
pub struct RequestShowArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The task.
    #[arg(value_parser = args::task_id, value_name = "TASK_ID")]
    pub task_id: String,
}

/// Shows a task's request.
pub async fn request_show(
    client: &Client,
    env: &Env,
    a: &RequestShowArgs,
    out: &mut dyn Write,
) -> Result<i32, CliError> {
    let r = client.get_request(&a.task_id).await.context(|| format!("getting request of task {}", a.task_id))?;
    let v = format::snake(&r)?;
    emit(&a.common, None, out, &v, |out| {
        let text = request_text(&r, env.now());
        out.write_all(text.as_bytes()).map_err(|e| CliError::io("writing output", e))
    })
}

/// The human view of a task request.
pub fn request_text(r: &pb::TaskRequestResponse, now: muster_core::Time) -> String {
    let mut t = Table::default();
    let mut kv = |k: &str, v: String| t.row(vec![k.to_string(), v]);
    kv("Task", r.task_id.clone());
    kv("Name", r.name.clone());
    kv("User", r.user.clone());
    if !r.authenticated.is_empty() {
        kv("Authenticated", r.authenticated.clone());
    }
    kv("Priority", r.priority.to_string());
    if let Some(ts) = r.created_ts.as_ref().and_then(pb::Timestamp::to_datetime) {
        kv("Created", format!("{} ({})", format::relative_time(ts, now), ts.to_rfc3339()));
    }
    if !r.parent_task_id.is_empty() {
        kv("Parent", r.parent_task_id.clone());
    }
    if !r.service_account.is_empty() {
        kv("Service account", r.service_account.clone());
    }
    if !r.realm.is_empty() {
        kv("Realm", r.realm.clone());
    }
    kv("Tags", r.tags.join(" "));
    let mut text = t.render();
    for (i, s) in r.task_slices.iter().enumerate() {
        text.push_str(&format!("Slice {i}: expires after {}\n", format::duration(f64::from(s.expiration_secs))));
        let mut t = Table::default();
        if let Some(p) = &s.properties {
            let pairs = |v: &[pb::StringPair]| v.iter().map(|d| format!("{}={}", d.key, d.value)).collect::<Vec<_>>();
            t.row(vec!["  dimensions".into(), pairs(&p.dimensions).join(" ")]);
            t.row(vec!["  command".into(), format::shell_join(&p.command)]);
            if !p.relative_cwd.is_empty() {
                t.row(vec!["  relative cwd".into(), p.relative_cwd.clone()]);
            }
            if !p.env.is_empty() {
                t.row(vec!["  env".into(), pairs(&p.env).join(" ")]);
            }
            for e in &p.env_prefixes {
                t.row(vec!["  env prefix".into(), format!("{}={}", e.key, e.value.join(":"))]);
            }
            for c in &p.caches {
                t.row(vec!["  named cache".into(), format!("{}={}", c.name, c.path)]);
            }
            t.row(vec![
                "  timeouts".into(),
                format!(
                    "hard {}, io {}, grace {}",
                    format::duration(f64::from(p.execution_timeout_secs)),
                    format::duration(f64::from(p.io_timeout_secs)),
                    format::duration(f64::from(p.grace_period_secs))
                ),
            ]);
            if p.idempotent {
                t.row(vec!["  idempotent".into(), "yes".into()]);
            }
        }
        text.push_str(&t.render());
    }
    text
}

// ---------------------------------------------------------------------------
// cancel
// ---------------------------------------------------------------------------

/// `muster cancel`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster cancel 6663cfc78b41fb10
  muster cancel --kill-running 6663cfc78b41fb10

Exits 9 when the task was not canceled (already finished, or running
without --kill-running).")]
pub struct CancelArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Also kill the task if it is already running.
    #[arg(long = "kill-running")]
    pub kill_running: bool,
    /// The task.
    #[arg(value_parser = args::task_id, value_name = "TASK_ID")]
    pub task_id: String,
}

/// Cancels one task.
pub async fn cancel(client: &Client, _env: &Env, a: &CancelArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let r = client.cancel_task(&a.task_id, a.kill_running).await.context(|| format!("canceling task {}", a.task_id))?;
    if a.common.json {
        format::write_json(out, &format::snake(&r)?)?;
    }
    if !r.canceled {
        let why = if r.was_running {
            if a.kill_running {
                "it is already being killed"
            } else {
                "it is running (use --kill-running)"
            }
        } else {
            "it already ended"
        };
        return Err(CliError::Refused(format!("task {} was not canceled: {why}", a.task_id)));
    }
    if !a.common.json {
        let what = if r.was_running { " (it was running and will be killed)" } else { "" };
        format::line(out, &format!("Canceled task {}{what}", a.task_id))?;
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// cancel-tasks
// ---------------------------------------------------------------------------

/// `muster cancel-tasks`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster cancel-tasks --tag purpose:demo
  muster cancel-tasks --tag purpose:demo --kill-running --start 2h")]
pub struct CancelTasksArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Tasks with this tag, key:value (repeatable, ANDed; at least one).
    #[arg(long = "tag", value_name = "KEY:VALUE", value_parser = args::tag, required = true)]
    pub tags: Vec<String>,
    /// Maximum number of tasks canceled.
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
    /// Also kill running tasks (else only pending ones are canceled).
    #[arg(long = "kill-running")]
    pub kill_running: bool,
    /// Only tasks created at or after this time.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Only tasks created before this time.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
}

/// Cancels every task with the given tags.
pub async fn cancel_tasks(
    client: &Client,
    env: &Env,
    a: &CancelTasksArgs,
    out: &mut dyn Write,
) -> Result<i32, CliError> {
    let start = opt_time(a.start.as_deref(), env)?;
    let end = opt_time(a.end.as_deref(), env)?;
    let mut matched: u32 = 0;
    let mut cursor = String::new();
    while matched < a.limit {
        let req = pb::TasksCancelRequest {
            limit: (a.limit - matched).min(1000) as i32,
            cursor: cursor.clone(),
            tags: a.tags.clone(),
            kill_running: a.kill_running,
            start,
            end,
        };
        let r = client.cancel_tasks(&req).await.context(|| "canceling tasks".to_string())?;
        matched += u32::try_from(r.matched).unwrap_or(0);
        cursor = r.cursor;
        if cursor.is_empty() || r.matched == 0 {
            break;
        }
    }
    if a.common.json {
        format::write_json(out, &serde_json::json!({ "matched": matched }))?;
    } else {
        format::line(out, &format!("Canceling {matched} task(s)"))?;
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// spawn-tasks
// ---------------------------------------------------------------------------

/// `muster spawn-tasks`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "The input file is {\"requests\": [NewTaskRequest, ...]} in proto JSON
(camelCase or snake_case names). Empty `user` is filled from $USER and
empty `request_uuid` with a random one.

Examples:
  muster spawn-tasks --json-input reqs.json --json-output spawned.json
  muster collect --requests-json spawned.json")]
pub struct SpawnTasksArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The requests file.
    #[arg(long = "json-input", value_name = "PATH")]
    pub json_input: String,
    /// Write {\"tasks\": [TaskRequestMetadataResponse]} to this file (`-` = stdout).
    #[arg(long = "json-output", value_name = "PATH")]
    pub json_output: Option<String>,
}

/// Parses a spawn-tasks input file's text.
pub fn parse_spawn_input(text: &str) -> Result<Vec<pb::NewTaskRequest>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let reqs = v
        .get("requests")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| "expected {\"requests\": [...]}".to_string())?;
    if reqs.is_empty() {
        return Err("no requests".to_string());
    }
    reqs.iter()
        .enumerate()
        .map(|(i, r)| {
            let bytes = serde_json::to_vec(r).map_err(|e| e.to_string())?;
            prpc::decode::<pb::NewTaskRequest>(Format::Json, &bytes).map_err(|e| format!("request {i}: {}", e.message))
        })
        .collect()
}

/// Triggers every request of a file, 8 at a time; output in input order.
pub async fn spawn_tasks(client: &Client, env: &Env, a: &SpawnTasksArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let text =
        std::fs::read_to_string(&a.json_input).map_err(|e| CliError::io(format!("reading {}", a.json_input), e))?;
    let mut reqs = parse_spawn_input(&text).map_err(|e| CliError::Usage(format!("{}: {e}", a.json_input)))?;
    let parent = env.parent_for(&client.servers().join(","));
    for r in &mut reqs {
        if r.user.is_empty() {
            r.user = env.user.clone();
        }
        if r.parent_task_id.is_empty() {
            r.parent_task_id = parent.clone();
        }
        if r.request_uuid.is_empty() {
            r.request_uuid = args::new_request_uuid();
        }
    }
    let mut results: Vec<Option<pb::TaskRequestMetadataResponse>> = vec![None; reqs.len()];
    let mut set = tokio::task::JoinSet::new();
    let mut first_error = None;
    for (i, r) in reqs.into_iter().enumerate() {
        if set.len() >= 8 {
            collect_spawn(set.join_next().await, &mut results, &mut first_error);
        }
        let c = client.clone();
        set.spawn(async move {
            let name = r.name.clone();
            (i, c.new_task(&r).await.context(|| format!("triggering task {name:?}")))
        });
    }
    while let Some(j) = set.join_next().await {
        collect_spawn(Some(j), &mut results, &mut first_error);
    }
    let done: Vec<pb::TaskRequestMetadataResponse> = results.into_iter().flatten().collect();
    let v = format::tasks_output(&done)?;
    let style = Style { color: env.color };
    emit(&a.common, a.json_output.as_deref(), out, &v, |out| {
        for t in &done {
            let name = t.request.as_ref().map(|r| r.name.as_str()).unwrap_or("");
            format::line(out, &format!("Triggered task {} ({name})", style.bold(&t.task_id)))?;
        }
        Ok(())
    })?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

type SpawnJoin = Result<(usize, Result<pb::TaskRequestMetadataResponse, CliError>), tokio::task::JoinError>;

fn collect_spawn(
    j: Option<SpawnJoin>,
    results: &mut [Option<pb::TaskRequestMetadataResponse>],
    first_error: &mut Option<CliError>,
) {
    match j {
        Some(Ok((i, Ok(r)))) => {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(r);
            }
        }
        Some(Ok((_, Err(e)))) => {
            first_error.get_or_insert(e);
        }
        Some(Err(e)) => {
            first_error.get_or_insert(CliError::Io(format!("spawning a task: {e}")));
        }
        None => {}
    }
}
