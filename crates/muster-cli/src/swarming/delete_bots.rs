//! `swarming delete-bots`: forgets bots (DeleteBot each), after a `y`
//! answer on stdin (a terminal or a pipe) unless `-force`/`-f`.

use super::base::{rpc_text, Ctx, Features, OutputJson, UNLIMITED};
use super::flags::FlagSet;
use super::Verb;

pub(super) const VERB: Verb = Verb {
    name: "delete-bots",
    usage_line: "delete-bots -S <server> <bot ID> <bot ID> ...",
    short: "deletes bots given their IDs",
    long: "Deletes bots given their IDs.",
    features: Features {
        min_args: 1,
        max_args: UNLIMITED,
        measure_duration: false,
        uses_cas: false,
        output_json: OutputJson { enabled: false, alias: None, usage: None, default_stdout: false },
    },
    register,
};

fn register(fs: &mut FlagSet) {
    fs.bool("force", false, "If set, skip confirmation prompt.");
    fs.alias("f", "force", "Alias for -force.");
}

/// A parsed `delete-bots`.
pub(super) struct DeleteBots {
    force: bool,
    bot_ids: Vec<String>,
}

pub(super) fn parse(fs: &FlagSet, args: Vec<String>) -> DeleteBots {
    DeleteBots { force: fs.get_bool("force"), bot_ids: args }
}

/// The next whitespace-separated word of `input` (Go's `fmt.Scan` into a
/// string); `None` at end of input.
fn scan_word(input: &mut dyn std::io::BufRead) -> std::io::Result<Option<String>> {
    let mut word = Vec::new();
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok((!word.is_empty()).then(|| String::from_utf8_lossy(&word).into_owned()));
        }
        let mut used = 0;
        let mut done = false;
        for &b in buf {
            used += 1;
            if b.is_ascii_whitespace() {
                if !word.is_empty() {
                    done = true;
                    break;
                }
            } else {
                word.push(b);
            }
        }
        input.consume(used);
        if done {
            return Ok(Some(String::from_utf8_lossy(&word).into_owned()));
        }
    }
}

impl DeleteBots {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        if !self.force {
            let mut prompt = String::from("Delete the following bots?\n");
            for b in &self.bot_ids {
                prompt.push_str(b);
                prompt.push('\n');
            }
            prompt.push_str("Continue? [y/N] \n");
            ctx.out.write_all(prompt.as_bytes()).and_then(|()| ctx.out.flush()).map_err(|e| e.to_string())?;
            let answer = match scan_word(ctx.stdin) {
                Ok(Some(w)) => w,
                Ok(None) => return Err("error receiving your response: EOF".to_string()),
                Err(e) => return Err(format!("error receiving your response: {e}")),
            };
            if answer != "y" && answer != "Y" {
                writeln!(ctx.out, "canceled deleting bots, Goodbye").map_err(|e| e.to_string())?;
                return Ok(());
            }
        }
        for b in &self.bot_ids {
            let r = match ctx.client.delete_bot(b).await {
                Ok(r) => r,
                Err(e) => {
                    ctx.log(super::base::Level::Error, &format!("Failed deleting {b}"));
                    return Err(rpc_text(&e));
                }
            };
            if !r.deleted {
                return Err(format!("bot {b} was not deleted"));
            }
            ctx.info(&format!("Successfully deleted {b}"));
        }
        Ok(())
    }
}
