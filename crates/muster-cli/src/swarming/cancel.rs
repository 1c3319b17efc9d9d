//! `swarming cancel`: cancels one task (CancelTask); an error when the
//! server did not cancel it.

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::FlagSet;
use super::Verb;

pub(super) const VERB: Verb = Verb {
    name: "cancel",
    usage_line: "cancel -S <server> <task ID>",
    short: "cancels a task",
    long: "Cancels a pending or running (if -kill-running is set) task.",
    features: Features {
        min_args: 1,
        max_args: 1,
        measure_duration: false,
        uses_cas: false,
        output_json: OutputJson { enabled: false, alias: None, usage: None, default_stdout: false },
    },
    register,
};

fn register(fs: &mut FlagSet) {
    fs.bool("kill-running", false, "Kill the task even if it's running.");
}

/// A parsed `cancel`.
pub(super) struct Cancel {
    task_id: String,
    kill_running: bool,
}

pub(super) fn parse(fs: &FlagSet, args: Vec<String>) -> Cancel {
    Cancel { task_id: args.into_iter().next().unwrap_or_default(), kill_running: fs.get_bool("kill-running") }
}

impl Cancel {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let why = match ctx.client.cancel_task(&self.task_id, self.kill_running).await {
            Ok(r) if r.canceled => None,
            Ok(r) => Some(format!("task was not canceled. running={}\n", r.was_running)),
            Err(e) => Some(rpc_text(&e)),
        };
        if let Some(why) = why {
            return Err(format!("failed to cancel task {}\n: {why}", self.task_id));
        }
        ctx.info(&format!("Canceled {}", self.task_id));
        Ok(())
    }
}
