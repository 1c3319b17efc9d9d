//! `swarming request-show`: a task's request (GetRequest) as JSON to
//! `-json-output` (default stdout).

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::FlagSet;
use super::output::Sink;
use super::Verb;

pub(super) const VERB: Verb = Verb {
    name: "request-show",
    usage_line: "request-show -S <server> <task ID>",
    short: "shows task request details",
    long: "Shows the properties, what, when, by who, about a task request.",
    features: Features {
        min_args: 1,
        max_args: 1,
        measure_duration: false,
        uses_cas: false,
        output_json: OutputJson { enabled: true, alias: None, usage: None, default_stdout: true },
    },
    register,
};

fn register(_: &mut FlagSet) {}

/// A parsed `request-show`.
pub(super) struct RequestShow {
    task_id: String,
}

pub(super) fn parse(args: Vec<String>) -> RequestShow {
    RequestShow { task_id: args.into_iter().next().unwrap_or_default() }
}

impl RequestShow {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>, sink: &mut Sink) -> Result<(), String> {
        let r = ctx
            .client
            .get_request(&self.task_id)
            .await
            .map_err(|e| format!("failed to get task request. task ID = {}: {}", self.task_id, rpc_text(&e)))?;
        sink.proto(&r).map_err(|e| e.to_string())
    }
}
