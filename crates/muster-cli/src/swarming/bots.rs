//! `swarming bots`: lists (ListBots, every page) or counts (CountBots) bots;
//! `-bare` prints the ids one a line; JSON to `-json-output` (alias `-json`,
//! default stdout; skipped when `-bare` already wrote to stdout).

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::{self, FlagSet};
use super::output::Sink;
use super::Verb;
use muster_api::pb;

pub(super) const VERB: Verb = Verb {
    name: "bots",
    usage_line: "bots -S <server>",
    short: "lists or counts bots matching a filter",
    long: "Lists or counts bots matching a filter.",
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
    fs.list("dimension", flags::map_entry, "Dimension to select the right kind of bot. In the form of `key=value`.");
    fs.list("field", flags::any_value, "This flag currently does nothing (kept for compatibility).");
    fs.bool("count", false, "Report the count of bots instead of listing them.");
    fs.bool("bare", false, "Print bot IDs to stdout as a list.");
}

/// A parsed `bots`.
pub(super) struct Bots {
    dimensions: Vec<pb::StringPair>,
    count: bool,
    bare: bool,
}

pub(super) fn parse(fs: &FlagSet) -> Result<Bots, String> {
    let count = fs.get_bool("count");
    let bare = fs.get_bool("bare");
    if count && !fs.get_list("field").is_empty() {
        return Err("-field cannot be used with -count".to_string());
    }
    if count && bare {
        return Err("-bare cannot be used with -count".to_string());
    }
    let dimensions = flags::sorted_map(&fs.get_list("dimension"))
        .into_iter()
        .map(|(key, value)| pb::StringPair { key, value })
        .collect();
    Ok(Bots { dimensions, count, bare })
}

impl Bots {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>, sink: &mut Sink) -> Result<(), String> {
        if self.count {
            let req = pb::BotsCountRequest { dimensions: self.dimensions.clone() };
            let count = ctx.client.count_bots(&req).await.map_err(|e| rpc_text(&e))?;
            return sink.proto(&count).map_err(|e| e.to_string());
        }
        let mut cursor = String::new();
        let mut bots = Vec::new();
        loop {
            let req = pb::BotsRequest {
                limit: 1000,
                cursor: cursor.clone(),
                dimensions: self.dimensions.clone(),
                ..Default::default()
            };
            let page = ctx.client.list_bots(&req).await.map_err(|e| rpc_text(&e))?;
            bots.extend(page.items);
            cursor = page.cursor;
            if cursor.is_empty() {
                break;
            }
        }
        if self.bare {
            for b in &bots {
                writeln!(ctx.out, "{}", b.bot_id).map_err(|e| e.to_string())?;
            }
            if ctx.output_json == "-" {
                return Ok(());
            }
        }
        sink.start_list();
        for b in &bots {
            sink.list_entry(b).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
