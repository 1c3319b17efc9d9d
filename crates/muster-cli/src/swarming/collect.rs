//! `swarming collect`: waits for tasks, then writes a summary keyed by task
//! id to `-json-output` (alias `-task-summary-json`; default none) and,
//! when `-task-output-stdout` asks, each task's console output to stdout,
//! the summary (`json`) or `<dir>/<task id>.txt` (`dir[:path]`).
//!
//! Waiting: BatchGetResult for the tasks not yet final, sleeping
//! `1 s + waited/30` (at most 15 s, plus up to a third of jitter). A
//! non-transient error of the whole call ends waiting: every remaining task
//! gets that error. `-timeout` ends waiting too: the remaining tasks get
//! `rpc_timeout` with their last known state, and collect still exits 0.
//! A task's failure on its bot is in its `results`, never an error of
//! collect.

use super::base::{go_code_name, rpc_text, Ctx, Features, Level, OutputJson, UNLIMITED};
use super::flags::{self, FlagSet};
use super::output::{proto_json, Sink};
use super::Verb;
use muster_api::pb;
use muster_api::pb::batch_get_result_response::result_or_error::Outcome;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(super) const VERB: Verb = Verb {
    name: "collect",
    usage_line: "collect -S <server> -requests-json <path> [<task ID> <task ID> ...])",
    short: "waits on a set of Swarming tasks",
    long: "Waits on a set of Swarming tasks given either as task IDs or via a file produced by \"trigger\" subcommand.

Behavior depends on combination of -eager and -wait flags:
  * -wait is set and -eager is unset (default): wait for all tasks to complete
    and report their results.
  * -wait is set and -eager is set: wait for at least one task to complete and
    then report the current state of all tasks.
  * -wait is unset (regardless if -eager is set or not): report the current
    state of all tasks, don't wait.

The JSON output has an entry for every requested task: its last known state
(\"results\") and, possibly, a local error (\"error\"). A task that failed on
its bot is not an error: see its \"results\".\"state\". On -timeout, tasks still
pending or running get the error \"rpc_timeout\" (and collect exits 0).

Flag -task-output-stdout controls where the console log of completed tasks
goes (repeatable): \"none\" (default), \"console\" (stdout), \"json\" (the
\"output\" field), \"dir:<path>\" (<path>/<task-ID>.txt), \"dir\" (in
-output-dir), \"all\" (console and json).

Flag -output-dir: <output-dir>/<task-ID> is created (cleared first) for every
task; downloading CAS outputs into it is not supported yet by muster.
",
    features: Features {
        min_args: 0,
        max_args: UNLIMITED,
        measure_duration: true,
        uses_cas: true,
        output_json: OutputJson {
            enabled: true,
            alias: Some("task-summary-json"),
            usage: Some("A file to write a summary of task results as json."),
            default_stdout: false,
        },
    },
    register,
};

fn task_output_option(so_far: &[String], v: &str) -> Result<(), String> {
    match v {
        "none" | "" | "console" | "json" | "all" => Ok(()),
        _ if v == "dir" || v.starts_with("dir:") => {
            if so_far.iter().any(|s| s == "dir" || s.starts_with("dir:")) && !so_far.iter().any(|s| s == v) {
                return Err("cannot have more than one \"dir\" destination".to_string());
            }
            Ok(())
        }
        _ => Err("invalid task output option".to_string()),
    }
}

fn duration(_: &[String], v: &str) -> Result<(), String> {
    signed_duration(v).map(|_| ())
}

/// A Go duration that may be negative: (negative, magnitude).
fn signed_duration(v: &str) -> Result<(bool, Duration), String> {
    match v.strip_prefix('-') {
        Some(rest) => flags::parse_duration(rest).map(|d| (!d.is_zero(), d)),
        None => flags::parse_duration(v).map(|d| (false, d)),
    }
}

fn register(fs: &mut FlagSet) {
    fs.bool("wait", true, "If set, wait for tasks to complete. Otherwise just poll their current state.");
    fs.list("timeout", duration, "Timeout to wait for tasks to complete when -wait is set (a Go duration: 90s, 10m, 1h). Set to 0 for no timeout.");
    fs.bool("eager", false, "If set, stop waiting whenever any task finishes, do not wait for all of them to finish.");
    fs.bool("task-summary-python", false, "Generate python client compatible task summary json.");
    fs.bool("perf", false, "Include performance statistics.");
    fs.list(
        "task-output-stdout",
        task_output_option,
        "Where to put each task's console output (combined stderr and stdout): none, json, console, dir[:<path>], all (a legacy alias for json+console). Can be specified multiple times.",
    );
    fs.string("output-dir", "", "Where to download outputs to.");
    fs.string("requests-json", "", "Load the task IDs from a .json file as saved by \"trigger -json-output\".");
    fs.int(
        "output-fetch-concurrency",
        8,
        "Limits how many concurrent result fetches are allowed (to avoid OOMs). 0 is unlimited.",
    );
}

/// Where console output goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OutputModes {
    console: bool,
    json: bool,
    /// `dir` / `dir:<path>`: the directory of `<task id>.txt`.
    dir: Option<String>,
}

impl OutputModes {
    fn any(&self) -> bool {
        self.console || self.json || self.dir.is_some()
    }
}

/// A parsed `collect`.
pub(super) struct Collect {
    task_ids: Vec<String>,
    wait: bool,
    eager: bool,
    timeout: Duration,
    perf: bool,
    python: bool,
    modes: OutputModes,
    output_dir: String,
    concurrency: usize,
}

/// The task ids of a trigger/spawn-tasks `-json-output` file.
fn ids_from_file(text: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let tasks = match v.get("tasks") {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(_) => return Err("\"tasks\" must be a list".to_string()),
    };
    Ok(tasks
        .iter()
        .map(|t| t.get("task_id").or_else(|| t.get("taskId")).and_then(|v| v.as_str()).unwrap_or("").to_string())
        .collect())
}

pub(super) fn parse(fs: &FlagSet, args: Vec<String>) -> Result<Collect, String> {
    let (negative, timeout) = match fs.get_list("timeout").last() {
        Some(t) => signed_duration(t)?,
        None => (false, Duration::ZERO),
    };
    if negative {
        return Err("negative timeout is not allowed".to_string());
    }
    let wait = fs.get_bool("wait");
    if !wait && !timeout.is_zero() {
        return Err("do not specify -timeout with -wait=false".to_string());
    }
    let mut modes = OutputModes::default();
    for m in fs.get_list("task-output-stdout") {
        match m.as_str() {
            "console" => modes.console = true,
            "json" => modes.json = true,
            "all" => {
                modes.console = true;
                modes.json = true;
            }
            "dir" => modes.dir = Some(String::new()),
            d if d.starts_with("dir:") => modes.dir = Some(d["dir:".len()..].to_string()),
            _ => {}
        }
    }
    let output_dir = fs.get_str("output-dir");
    if let Some(d) = &mut modes.dir {
        if d.is_empty() {
            d.clone_from(&output_dir);
        }
        if d.is_empty() {
            return Err("cannot figure out where to store task console output: either specify the directory as `-task-output-stdout dir:<path>` (if only console output is required) or pass `-output-dir` (if both text and isolated output are required)".to_string());
        }
    }
    let mut task_ids = args;
    let requests_json = fs.get_str("requests-json");
    if !requests_json.is_empty() {
        let text = std::fs::read_to_string(&requests_json).map_err(|e| format!("reading json input: {e}"))?;
        task_ids.extend(ids_from_file(&text).map_err(|e| format!("unmarshalling json input: {e}"))?);
    }
    if task_ids.is_empty() {
        return Err("must specify at least one task id, either directly or through -requests-json".to_string());
    }
    for id in &task_ids {
        if id.is_empty() || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!("task ID {id:?} must be hex ([a-f0-9])"));
        }
    }
    for (i, id) in task_ids.iter().enumerate() {
        if task_ids[..i].contains(id) {
            return Err(format!("task ID {id} is given more than once"));
        }
    }
    Ok(Collect {
        task_ids,
        wait,
        eager: fs.get_bool("eager"),
        timeout,
        perf: fs.get_bool("perf"),
        python: fs.get_bool("task-summary-python"),
        modes,
        output_dir,
        concurrency: usize::try_from(fs.get_int("output-fetch-concurrency")).unwrap_or(0),
    })
}

/// What collect learned about one task.
#[derive(Debug, Clone, Default)]
struct TaskEntry {
    task_id: String,
    result: Option<pb::TaskResultResponse>,
    error: Option<String>,
    output: Option<Vec<u8>>,
    outputs: Vec<String>,
}

impl TaskEntry {
    fn summary_line(&self) -> String {
        match (&self.error, &self.result) {
            (Some(e), _) => format!("{}: {e}", self.task_id),
            (None, Some(r)) if r.state == pb::TaskState::Completed as i32 => {
                format!("{}: COMPLETED, exit code {}", self.task_id, r.exit_code)
            }
            (None, Some(r)) => format!("{}: {}", self.task_id, crate::format::state_name(r.state)),
            (None, None) => format!("{}: unknown", self.task_id),
        }
    }

    fn is_final(&self) -> bool {
        self.result.as_ref().is_some_and(|r| crate::format::is_final(r.state))
    }
}

/// One summary entry (upstream's ResultSummaryEntry) in protojson order.
#[derive(serde::Serialize)]
struct SummaryEntry<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    error: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    output: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    outputs: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<&'a pb::TaskResultResponse>,
}

/// Go's strings.ToValidUTF8(s, "\uFFFD"): each run of invalid bytes becomes
/// one replacement character.
fn to_valid_utf8(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut prev_invalid = false;
    for chunk in b.utf8_chunks() {
        if !chunk.valid().is_empty() {
            out.push_str(chunk.valid());
            prev_invalid = false;
        }
        if !chunk.invalid().is_empty() {
            if !prev_invalid {
                out.push('\u{FFFD}');
            }
            prev_invalid = true;
        }
    }
    out
}

fn prepare_output_dir(output_dir: &str, task_id: &str) -> Result<PathBuf, String> {
    let dir = Path::new(output_dir).join(task_id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("failed to remove directory: {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("failed to create directory: {}: {e}", dir.display()))?;
    Ok(dir)
}

impl Collect {
    /// Polls until the tasks are final (or one is, with -eager; or once,
    /// with -wait=false) or the timeout; returns the entries in input order.
    async fn wait_for(&self, ctx: &mut Ctx<'_>) -> Vec<TaskEntry> {
        let mut items: Vec<TaskEntry> =
            self.task_ids.iter().map(|id| TaskEntry { task_id: id.clone(), ..Default::default() }).collect();
        let started = Instant::now();
        let deadline = (!self.timeout.is_zero()).then(|| started + self.timeout);
        let mut done = vec![false; items.len()];
        let flush = |items: &mut Vec<TaskEntry>, done: &mut Vec<bool>, err: &str| {
            for (i, c) in items.iter_mut().enumerate() {
                if !done[i] {
                    c.error = Some(err.to_string());
                    done[i] = true;
                }
            }
        };
        loop {
            let awaiting: Vec<usize> = (0..items.len()).filter(|i| !done[*i]).collect();
            let mut fatal = None;
            let mut fetched_ok = true;
            for chunk in awaiting.chunks(500) {
                let ids: Vec<String> = chunk.iter().map(|i| items[*i].task_id.clone()).collect();
                let call = ctx.client.batch_get_result(&ids, self.perf);
                let r = match deadline {
                    Some(d) => match tokio::time::timeout(d.saturating_duration_since(Instant::now()), call).await {
                        Ok(r) => r,
                        Err(_) => {
                            flush(&mut items, &mut done, "rpc_timeout");
                            return items;
                        }
                    },
                    None => call.await,
                };
                match r {
                    Ok(resp) => {
                        for (i, roe) in chunk.iter().zip(resp.results) {
                            match roe.outcome {
                                Some(Outcome::Result(res)) => items[*i].result = Some(res),
                                Some(Outcome::Error(s)) => {
                                    let code = muster_api::prpc::Code::from_i32(s.code)
                                        .map_or_else(|| format!("Code({})", s.code), |c| go_code_name(c).to_string());
                                    items[*i].error = Some(format!("rpc error: code = {code} desc = {}", s.message));
                                }
                                None => items[*i].error = Some("unexpected response format".to_string()),
                            }
                        }
                    }
                    Err(e) if e.is_transient() => {
                        ctx.debug(&format!("transient error, retrying: {}", rpc_text(&e)));
                        fetched_ok = false;
                    }
                    Err(e) => {
                        fatal = Some(rpc_text(&e));
                        break;
                    }
                }
            }
            if let Some(f) = fatal {
                flush(&mut items, &mut done, &f);
                return items;
            }
            if fetched_ok && !self.wait {
                for d in done.iter_mut() {
                    *d = true;
                }
                return items;
            }
            let mut completed = 0;
            for i in awaiting {
                if items[i].error.is_some() || items[i].is_final() {
                    done[i] = true;
                    if items[i].is_final() {
                        completed += 1;
                    }
                }
            }
            if done.iter().all(|d| *d) {
                return items;
            }
            if self.eager && completed > 0 {
                return items;
            }
            let mut delay = crate::collect::poll_delay(started.elapsed());
            delay += Duration::from_millis(rand_below(delay.as_millis() as u64 / 3));
            ctx.debug(&format!(
                "Sleeping {:.1}s, waiting for {} tasks",
                delay.as_secs_f64(),
                done.iter().filter(|d| !**d).count()
            ));
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left <= delay {
                    tokio::time::sleep(left).await;
                    flush(&mut items, &mut done, "rpc_timeout");
                    return items;
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    pub(super) async fn execute(self, ctx: &mut Ctx<'_>, sink: &mut Sink) -> Result<(), String> {
        let mut items = self.wait_for(ctx).await;
        // Prepare directories and files, then fetch outputs of final tasks.
        let mut jobs = Vec::new();
        for (i, it) in items.iter_mut().enumerate() {
            let mut out_dir = None;
            if !self.output_dir.is_empty() {
                match prepare_output_dir(&self.output_dir, &it.task_id) {
                    Ok(d) => out_dir = Some(d),
                    Err(e) => {
                        it.error.get_or_insert(e);
                    }
                }
            }
            if let Some(dir) = &self.modes.dir {
                let made = std::fs::create_dir_all(dir)
                    .map_err(|e| format!("failed to create directory: {dir}: {e}"))
                    .and_then(|()| {
                        std::fs::File::create(Path::new(dir).join(format!("{}.txt", it.task_id)))
                            .map_err(|e| format!("failed to create a file for storing console output: {e}"))
                    });
                if let Err(e) = made {
                    it.error.get_or_insert(e);
                }
            }
            if it.error.is_some() || !it.is_final() {
                continue;
            }
            let cas = out_dir.is_some() && it.result.as_ref().is_some_and(|r| r.cas_output_root.is_some());
            if cas {
                it.error =
                    Some(format!("fetching isolated output of {}: CAS is not supported yet by muster", it.task_id));
                continue;
            }
            if self.modes.any() {
                jobs.push(i);
            }
        }
        let limit = if self.concurrency == 0 { usize::MAX } else { self.concurrency };
        let mut set = tokio::task::JoinSet::new();
        let mut pending = jobs.into_iter();
        loop {
            while set.len() < limit {
                let Some(i) = pending.next() else { break };
                let c = ctx.client.clone();
                let id = items[i].task_id.clone();
                set.spawn(async move { (i, c.get_all_stdout(&id).await) });
            }
            let Some(j) = set.join_next().await else { break };
            match j {
                Ok((i, Ok(o))) => {
                    if let Some(dir) = &self.modes.dir {
                        let path = Path::new(dir).join(format!("{}.txt", items[i].task_id));
                        if let Err(e) = std::fs::write(&path, &o) {
                            items[i].error = Some(format!("fetching console output of {}: {e}", items[i].task_id));
                        }
                    }
                    items[i].output = Some(o);
                }
                Ok((i, Err(e))) => {
                    items[i].error = Some(format!("fetching console output of {}: {}", items[i].task_id, rpc_text(&e)));
                }
                Err(e) => return Err(format!("fetching console output: {e}")),
            }
        }
        for it in &items {
            let level = if it.error.is_some() { Level::Warning } else { Level::Info };
            ctx.log(level, &it.summary_line());
        }
        if self.modes.console {
            for it in &items {
                writeln!(ctx.out, "{}", it.summary_line()).map_err(|e| e.to_string())?;
                if let Some(o) = &it.output {
                    if !o.is_empty() {
                        ctx.out.write_all(o).and_then(|()| writeln!(ctx.out)).map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        if ctx.output_json.is_empty() {
            return Ok(());
        }
        if self.python {
            sink.json(&python_summary(&items, self.modes.json)?);
            return Ok(());
        }
        sink.start_map();
        for it in &items {
            let output = match (&it.output, &it.result) {
                (Some(o), Some(_)) if self.modes.json => to_valid_utf8(o),
                _ => String::new(),
            };
            let error = match &it.error {
                Some(e) if e.is_empty() => "unknown",
                Some(e) => e.as_str(),
                None => "",
            };
            let entry = SummaryEntry { error, output: &output, outputs: &it.outputs, results: it.result.as_ref() };
            let text = proto_json(&entry).map_err(|e| e.to_string())?;
            sink.map_entry_text(&it.task_id, &text);
        }
        Ok(())
    }
}

/// The legacy `-task-summary-python` summary: `{"shards": [result + "output"
/// | null]}` in input order, keys sorted (Go's encoding/json of a map).
fn python_summary(items: &[TaskEntry], with_output: bool) -> Result<serde_json::Value, String> {
    let mut shards = Vec::new();
    for it in items {
        let Some(r) = &it.result else {
            shards.push(serde_json::Value::Null);
            continue;
        };
        let mut v: serde_json::Value = serde_json::from_str(&proto_json(r).map_err(|e| e.to_string())?)
            .map_err(|e| format!("JSON deserializing results of {:?}: {e}", it.task_id))?;
        let output = match &it.output {
            Some(o) if with_output => to_valid_utf8(o),
            _ => String::new(),
        };
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("output".to_string(), serde_json::Value::String(output));
        }
        shards.push(v);
    }
    Ok(serde_json::json!({ "shards": shards }))
}

/// A cheap random number below `n` (poll jitter; not for secrets).
fn rand_below(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % n
}

#[cfg(test)]
mod tests {
    use super::super::output::go_html_escape;
    use super::*;

    #[test]
    fn go_utf8_replacement() {
        assert_eq!(to_valid_utf8(b"a\xff\xfeb"), "a\u{FFFD}b");
        assert_eq!(to_valid_utf8(b"ok"), "ok");
    }

    #[test]
    fn html_escaping_like_go() {
        assert_eq!(go_html_escape(r#"{"a":"<&>"}"#), r#"{"a":"\u003c\u0026\u003e"}"#);
    }
}
