//! `swarming tasks`: lists (ListTasks, pages of up to 1000) or counts
//! (CountTasks) tasks; JSON to `-json-output` (alias `-json`, default stdout).

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::{self, FlagSet};
use super::output::Sink;
use super::Verb;
use crate::client::collect_pages;
use muster_api::pb;

pub(super) const VERB: Verb = Verb {
    name: "tasks",
    usage_line: "tasks -S <server>",
    short: "lists or counts tasks matching a filter",
    long: "Lists or counts tasks matching a filter.",
    features: Features {
        min_args: 0,
        max_args: 0,
        measure_duration: false,
        uses_cas: false,
        output_json: OutputJson { enabled: true, alias: Some("json"), usage: None, default_stdout: true },
    },
    register,
};

/// The default `-limit` of tasks, bot-tasks and cancel-tasks.
pub(super) const DEFAULT_LIMIT: i64 = 200;

fn register(fs: &mut FlagSet) {
    fs.int("limit", DEFAULT_LIMIT, "Maximum number of tasks to retrieve.");
    fs.string("state", "ALL", "Only include tasks in the specified state.");
    fs.list("tag", flags::any_value, "Tag attached to the task. May be repeated.");
    fs.list("field", flags::any_value, "This flag currently does nothing (kept for compatibility).");
    fs.bool("count", false, "Report the count of tasks instead of listing them.");
    fs.float("start", 0.0, "Start time (in seconds since the epoch) for counting tasks.");
}

/// Upstream's `-state` names (any case; empty = PENDING).
pub(super) fn state_query(value: &str) -> Result<pb::StateQuery, String> {
    use pb::StateQuery as Q;
    Ok(match value.to_lowercase().as_str() {
        "pending" | "" => Q::QueryPending,
        "running" => Q::QueryRunning,
        "pending_running" => Q::QueryPendingRunning,
        "completed" => Q::QueryCompleted,
        "completed_success" => Q::QueryCompletedSuccess,
        "completed_failure" => Q::QueryCompletedFailure,
        "expired" => Q::QueryExpired,
        "timed_out" => Q::QueryTimedOut,
        "bot_died" => Q::QueryBotDied,
        "canceled" => Q::QueryCanceled,
        "all" => Q::QueryAll,
        "deduped" => Q::QueryDeduped,
        "killed" => Q::QueryKilled,
        "no_resource" => Q::QueryNoResource,
        "client_error" => Q::QueryClientError,
        other => return Err(format!("Invalid state {other}")),
    })
}

/// `-start` seconds as the request's timestamp (whole seconds, as upstream).
pub(super) fn start_ts(start: f64) -> Option<pb::Timestamp> {
    (start > 0.0).then_some(pb::Timestamp { seconds: start as i64, nanos: 0 })
}

/// A parsed `tasks`.
pub(super) struct Tasks {
    limit: i64,
    state: pb::StateQuery,
    tags: Vec<String>,
    count: bool,
    start: f64,
}

pub(super) fn parse(fs: &FlagSet) -> Result<Tasks, String> {
    let limit = fs.get_int("limit");
    if limit < 1 {
        return Err(format!("invalid -limit {limit}, must be positive"));
    }
    let count = fs.get_bool("count");
    let start = fs.get_float("start");
    if count {
        if !fs.get_list("field").is_empty() {
            return Err("-field cannot be used with -count".to_string());
        }
        if limit != DEFAULT_LIMIT {
            return Err("-limit cannot be used with -count".to_string());
        }
        if start <= 0.0 {
            return Err("with -count, must provide -start >0".to_string());
        }
    }
    let state = state_query(&fs.get_str("state")).map_err(|e| format!("bad -state: {e}"))?;
    Ok(Tasks { limit, state, tags: fs.get_list("tag"), count, start })
}

impl Tasks {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>, sink: &mut Sink) -> Result<(), String> {
        if self.count {
            let req = pb::TasksCountRequest {
                start: Some(pb::Timestamp { seconds: self.start as i64, nanos: 0 }),
                tags: self.tags.clone(),
                state: self.state as i32,
                ..Default::default()
            };
            let count = ctx.client.count_tasks(&req).await.map_err(|e| rpc_text(&e))?;
            return sink.proto(&count).map_err(|e| e.to_string());
        }
        let limit = u32::try_from(self.limit).unwrap_or(u32::MAX);
        let client = &ctx.client;
        let items = collect_pages(Some(limit), |limit, cursor| {
            let req = pb::TasksWithPerfRequest {
                cursor,
                limit,
                state: self.state as i32,
                tags: self.tags.clone(),
                start: start_ts(self.start),
                ..Default::default()
            };
            async move {
                let page = client.list_tasks(&req).await.map_err(|e| rpc_text(&e))?;
                Ok::<_, String>((page.items, page.cursor))
            }
        })
        .await?;
        sink.start_list();
        for t in &items {
            sink.list_entry(t).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
