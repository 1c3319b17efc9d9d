//! `swarming cancel-tasks`: cancels the tasks matching tags (CancelTasks,
//! pages of up to 1000, at most `-limit`). Without `-tag` the limit is at
//! most 200 and the server decides.

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::{self, FlagSet};
use super::tasks::DEFAULT_LIMIT;
use super::Verb;
use muster_api::pb;

pub(super) const VERB: Verb = Verb {
    name: "cancel-tasks",
    usage_line: "cancel-tasks -S <server> -tag t:v1 -tag t:v2",
    short: "cancels tasks matching tags",
    long: "Mass cancels tasks. Only cancels running tasks if -kill-running is set.",
    features: Features {
        min_args: 0,
        max_args: 0,
        measure_duration: false,
        uses_cas: false,
        output_json: OutputJson { enabled: false, alias: None, usage: None, default_stdout: false },
    },
    register,
};

fn rfc3339(_: &[String], v: &str) -> Result<(), String> {
    parse_time(v).map(|_| ())
}

fn parse_time(v: &str) -> Result<pb::Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| pb::Timestamp::from_datetime(t.with_timezone(&chrono::Utc)))
        .map_err(|e| format!("parsing time {v:?} as RFC 3339: {e}"))
}

fn register(fs: &mut FlagSet) {
    fs.bool("kill-running", false, "Kill the tasks even if it's running.");
    fs.int("limit", DEFAULT_LIMIT, "Maximum number of tasks to cancel.");
    fs.list("tag", flags::any_value, "Tag attached to the task. May be repeated.");
    fs.list(
        "start",
        rfc3339,
        "Only tasks later or equal to start will be cancelled. No effect if unset. e.g:2024-01-16T12:34:56Z",
    );
    fs.list(
        "end",
        rfc3339,
        "Only tasks earlier or equal to end will be cancelled. No effect if unset. e.g:2024-01-16T13:24:56Z",
    );
}

/// A parsed `cancel-tasks`.
pub(super) struct CancelTasks {
    kill_running: bool,
    limit: i64,
    tags: Vec<String>,
    start: Option<pb::Timestamp>,
    end: Option<pb::Timestamp>,
}

pub(super) fn parse(fs: &FlagSet) -> Result<CancelTasks, String> {
    let limit = fs.get_int("limit");
    let tags = fs.get_list("tag");
    if limit < 1 {
        return Err(format!("invalid -limit {limit}, must be positive"));
    }
    if limit > DEFAULT_LIMIT && tags.is_empty() {
        return Err(format!("invalid -limit {limit}, cannot be larger than {DEFAULT_LIMIT} when no tags is specified"));
    }
    let last = |n: &str| fs.get_list(n).last().map(|v| parse_time(v)).transpose();
    let (start, end) = (last("start")?, last("end")?);
    if let (Some(s), Some(e)) = (&start, &end) {
        if (s.seconds, s.nanos) > (e.seconds, e.nanos) {
            let (fs_, fe) = (fs.get_list("start"), fs.get_list("end"));
            return Err(format!(
                "invalid -start -end, start time {} cannot be after end time {}",
                fs_.last().map_or("", String::as_str),
                fe.last().map_or("", String::as_str)
            ));
        }
    }
    Ok(CancelTasks { kill_running: fs.get_bool("kill-running"), limit, tags, start, end })
}

impl CancelTasks {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let mut limit = self.limit;
        let mut request_limit = 1000i64;
        let mut cursor = String::new();
        loop {
            request_limit = request_limit.min(limit);
            let req = pb::TasksCancelRequest {
                limit: request_limit as i32,
                cursor: cursor.clone(),
                tags: self.tags.clone(),
                kill_running: self.kill_running,
                start: self.start,
                end: self.end,
            };
            let r = ctx
                .client
                .cancel_tasks(&req)
                .await
                .map_err(|e| format!("failed to cancel all tasks\n: {}", rpc_text(&e)))?;
            limit -= i64::from(r.matched);
            cursor = r.cursor;
            if cursor.is_empty() || limit <= 0 {
                break;
            }
        }
        ctx.info("Cancel tasks request submitted without error.");
        Ok(())
    }
}
