//! `swarming bot-tasks`: the tasks a bot ran (ListBotTasks, pages of up to
//! 1000); JSON to `-json-output` (alias `-json`, default stdout).

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::{self, FlagSet};
use super::output::Sink;
use super::tasks::{start_ts, state_query, DEFAULT_LIMIT};
use super::Verb;
use crate::client::collect_pages;
use muster_api::pb;

pub(super) const VERB: Verb = Verb {
    name: "bot-tasks",
    usage_line: "bot-tasks -S <server> -id <bot ID>",
    short: "lists tasks executed by a bot",
    long: "List details of tasks executed by a particular bot.",
    features: Features {
        min_args: 0,
        max_args: 0,
        measure_duration: false,
        uses_cas: false,
        output_json: OutputJson { enabled: true, alias: Some("json"), usage: None, default_stdout: true },
    },
    register,
};

fn register(fs: &mut FlagSet) {
    fs.string("id", "", "Bot ID to query tasks from.");
    fs.int("limit", DEFAULT_LIMIT, "Max number of tasks to return.");
    fs.string("state", "ALL", "Task state to filter on.");
    fs.list("field", flags::any_value, "This flag currently does nothing (kept for compatibility).");
    fs.float("start", 0.0, "Start time (in seconds since the epoch) for counting tasks.");
}

/// A parsed `bot-tasks`.
pub(super) struct BotTasks {
    bot_id: String,
    limit: i64,
    state: pb::StateQuery,
    start: f64,
}

pub(super) fn parse(fs: &FlagSet) -> Result<BotTasks, String> {
    let bot_id = fs.get_str("id");
    if bot_id.is_empty() {
        return Err("non-empty -id required".to_string());
    }
    let limit = fs.get_int("limit");
    if limit < 1 {
        return Err(format!("invalid -limit {limit}, must be positive"));
    }
    let state = state_query(&fs.get_str("state"))?;
    Ok(BotTasks { bot_id, limit, state, start: fs.get_float("start") })
}

impl BotTasks {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>, sink: &mut Sink) -> Result<(), String> {
        let limit = u32::try_from(self.limit).unwrap_or(u32::MAX);
        let client = &ctx.client;
        let items = collect_pages(Some(limit), |limit, cursor| {
            let req = pb::BotTasksRequest {
                bot_id: self.bot_id.clone(),
                cursor,
                limit,
                state: self.state as i32,
                start: start_ts(self.start),
                ..Default::default()
            };
            async move {
                let page = client.list_bot_tasks(&req).await.map_err(|e| rpc_text(&e))?;
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
