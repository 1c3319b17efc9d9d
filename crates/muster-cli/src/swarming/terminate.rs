//! `swarming terminate`: asks a bot to shut down (TerminateBot); with
//! `-wait`, waits for the termination task and fails unless it COMPLETED.

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::FlagSet;
use super::Verb;
use muster_api::pb;

pub(super) const VERB: Verb = Verb {
    name: "terminate",
    usage_line: "terminate -S <server> <bot ID>",
    short: "asks a bot to gracefully terminate",
    long: "Asks a bot to gracefully terminate.",
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
    fs.bool("wait", false, "Wait for the bot to terminate.");
    fs.string("reason", "", "A human defined reason given for terminating bot,");
}

/// A parsed `terminate`.
pub(super) struct Terminate {
    bot_id: String,
    wait: bool,
    reason: String,
}

pub(super) fn parse(fs: &FlagSet, args: Vec<String>) -> Terminate {
    Terminate {
        bot_id: args.into_iter().next().unwrap_or_default(),
        wait: fs.get_bool("wait"),
        reason: fs.get_str("reason"),
    }
}

impl Terminate {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let r = ctx
            .client
            .terminate_bot(&self.bot_id, &self.reason)
            .await
            .map_err(|e| format!("failed to terminate bot {}: {}", self.bot_id, rpc_text(&e)))?;
        if self.wait {
            ctx.info("Waiting for the bot to terminate...");
            let started = std::time::Instant::now();
            let state = loop {
                match ctx.client.get_result(&r.task_id, false).await {
                    Ok(res) if crate::format::is_final(res.state) => break res.state,
                    Ok(_) => {}
                    Err(e) if e.is_transient() => {}
                    Err(e) => return Err(format!("failed when polling task {}: {}", r.task_id, rpc_text(&e))),
                }
                let d = crate::collect::poll_delay(started.elapsed());
                tokio::time::sleep(d).await;
            };
            if state != pb::TaskState::Completed as i32 {
                return Err(format!(
                    "failed to terminate bot ID {} with task state {}",
                    self.bot_id,
                    crate::format::state_name(state)
                ));
            }
        }
        ctx.info(&format!("Successfully terminated {}", self.bot_id));
        Ok(())
    }
}
