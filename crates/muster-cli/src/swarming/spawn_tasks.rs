//! `swarming spawn-tasks`: the tasks of a `{"requests": [...]}` file, 8 at a
//! time; `{"tasks": [...]}` to `-json-output` (default stdout).

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::FlagSet;
use super::output::Sink;
use super::Verb;
use crate::args::Env;
use muster_api::pb;
use muster_api::prpc::{self, Format};

pub(super) const VERB: Verb = Verb {
    name: "spawn-tasks",
    usage_line: "spawn-tasks -S <server> -json-input <path>",
    short: "spawns a set of Swarming tasks defined in a JSON file",
    long: "Spawns a set of Swarming tasks defined in a JSON file.",
    features: Features {
        min_args: 0,
        max_args: 0,
        measure_duration: true,
        uses_cas: false,
        output_json: OutputJson { enabled: true, alias: None, usage: None, default_stdout: true },
    },
    register,
};

fn register(fs: &mut FlagSet) {
    fs.string("json-input", "", "(required) Read Swarming task requests from this file.");
    fs.bool("cancel-extra-tasks", false, "Legacy option that does absolutely nothing.");
}

/// A parsed `spawn-tasks`.
pub(super) struct SpawnTasks {
    requests: Vec<pb::NewTaskRequest>,
    warn: Option<String>,
}

/// The parent task of new tasks on `server`: `$SWARMING_TASK_ID` when
/// `server` is `$SWARMING_SERVER`; else none, with a warning when there was
/// one to set.
pub(super) fn parent_for(env: &Env, server: &str) -> (String, Option<String>) {
    if env.parent_task_id.is_empty() {
        return (String::new(), None);
    }
    let parent = env.parent_for(server);
    if parent.is_empty() {
        let w = format!(
            "Request is using {server} instead of this task's server, not setting parent task ID in the request"
        );
        return (parent, Some(w));
    }
    (parent, None)
}

/// The requests of a spawn-tasks input file (`requests` may be absent or
/// empty; camelCase or snake_case names).
pub(super) fn parse_input(text: &str) -> Result<Vec<pb::NewTaskRequest>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("decoding tasks file: {e}"))?;
    let Some(obj) = v.as_object() else {
        return Err("decoding tasks file: expected a JSON object".to_string());
    };
    let reqs = match obj.get("requests") {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => return Err("decoding tasks file: \"requests\" must be a list".to_string()),
    };
    reqs.iter()
        .map(|r| {
            let bytes = serde_json::to_vec(r).map_err(|e| e.to_string())?;
            prpc::decode::<pb::NewTaskRequest>(Format::Json, &bytes)
                .map_err(|e| format!("decoding tasks file: {}", e.message))
        })
        .collect()
}

pub(super) fn parse(fs: &FlagSet, env: &Env, server: &str) -> Result<SpawnTasks, String> {
    let path = fs.get_str("json-input");
    if path.is_empty() {
        return Err("input JSON file is required, pass it via -json-input".to_string());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("failed to open -json-input tasks file: {e}"))?;
    let mut requests = parse_input(&text)?;
    let (parent, warn) = parent_for(env, server);
    for r in &mut requests {
        if r.user.is_empty() {
            r.user = env.user.clone();
        }
        if r.parent_task_id.is_empty() {
            r.parent_task_id = parent.clone();
        }
        if r.request_uuid.is_empty() {
            // Makes the client's retries of NewTask safe.
            r.request_uuid = crate::args::new_request_uuid();
        }
    }
    Ok(SpawnTasks { requests, warn })
}

impl SpawnTasks {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>, sink: &mut Sink) -> Result<(), String> {
        if let Some(w) = &self.warn {
            ctx.warn(w);
        }
        let mut results = Vec::with_capacity(self.requests.len());
        let mut set = tokio::task::JoinSet::new();
        let mut first_error: Option<String> = None;
        let mut pending = self.requests.into_iter();
        loop {
            while set.len() < 8 {
                let Some(r) = pending.next() else { break };
                let c = ctx.client.clone();
                set.spawn(async move { c.new_task(&r).await });
            }
            let Some(j) = set.join_next().await else { break };
            match j {
                Ok(Ok(r)) => results.push(r),
                Ok(Err(e)) => {
                    first_error.get_or_insert(rpc_text(&e));
                }
                Err(e) => {
                    first_error.get_or_insert(format!("triggering a task: {e}"));
                }
            }
            if first_error.is_some() {
                set.abort_all();
                break;
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        sink.proto(&super::trigger::pb_tasks_output(results)).map_err(|e| e.to_string())
    }
}
