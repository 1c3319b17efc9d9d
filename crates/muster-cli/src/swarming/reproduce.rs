//! `swarming reproduce`: runs a task's command (its last slice) locally in
//! `-work` with the task's env; exits 1 when the command fails.

use super::base::{rpc_text, Ctx, Features, OutputJson};
use super::flags::FlagSet;
use super::Verb;
use std::path::{Path, PathBuf};

pub(super) const VERB: Verb = Verb {
    name: "reproduce",
    usage_line: "reproduce -S <server> <task ID>",
    short: "fetches the task command and runs it locally",
    long: "Fetches a TaskRequest and runs the same commands that were run on the bot.",
    features: Features {
        min_args: 1,
        max_args: 1,
        measure_duration: false,
        uses_cas: true,
        output_json: OutputJson { enabled: false, alias: None, usage: None, default_stdout: false },
    },
    register,
};

fn register(fs: &mut FlagSet) {
    fs.string("work", "work", "Directory to map the task input files into and execute the task. Will be cleared!");
    fs.string("out", "out", "Directory that will hold the task results. Will be cleared!");
    fs.string("realm", "", "Realm to create invocation in if ResultDB is enabled.");
    fs.string(
        "results-host",
        "results.api.cr.dev",
        "Hostname of the ResultDB service to use. e.g. 'results.api.luci.app'.",
    );
}

/// A parsed `reproduce`.
pub(super) struct Reproduce {
    work: PathBuf,
    out: PathBuf,
    realm: String,
    task_id: String,
}

fn absolute(p: &str, what: &str) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("failed to get absolute representation of {what} directory: {e}"))
}

pub(super) fn parse(fs: &FlagSet, args: Vec<String>) -> Result<Reproduce, String> {
    Ok(Reproduce {
        work: absolute(&fs.get_str("work"), "work")?,
        out: absolute(&fs.get_str("out"), "out")?,
        realm: fs.get_str("realm"),
        task_id: args.into_iter().next().unwrap_or_default(),
    })
}

fn prepare_dir(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("failed to remove directory: {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("failed to create directory: {}: {e}", dir.display()))
}

impl Reproduce {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let tr = ctx
            .client
            .get_request(&self.task_id)
            .await
            .map_err(|e| format!("failed to get task request: {}: {}", self.task_id, rpc_text(&e)))?;
        let props = tr
            .task_slices
            .last()
            .and_then(|s| s.properties.clone())
            .or_else(|| tr.properties.clone())
            .unwrap_or_default();
        let lc = crate::reproduce::local_command(&props, &self.work, &self.out, |k| std::env::var(k).ok());
        let prepared: Result<(), String> = (|| {
            prepare_dir(&lc.cwd)?;
            prepare_dir(&self.out)?;
            if props.cas_input_root.is_some() {
                return Err("failed to fetch files from RBE-CAS: CAS is not supported yet by muster".to_string());
            }
            if props.cipd_input.as_ref().is_some_and(|c| !c.packages.is_empty()) {
                return Err("failed to install CIPD packages: CIPD is not supported yet by muster".to_string());
            }
            if lc.argv.is_empty() {
                return Err("failed to process command in properties: empty command".to_string());
            }
            Ok(())
        })();
        prepared.map_err(|e| format!("failed to create command from task request: {e}"))?;
        if tr.resultdb.as_ref().is_some_and(|r| r.enable) {
            if self.realm.is_empty() {
                return Err("must provide -realm if task request has ResultDB enabled".to_string());
            }
            return Err("failed to create Invocation: ResultDB is not supported yet by muster".to_string());
        }
        let shown = lc.argv.join(" ");
        let mut cmd = tokio::process::Command::new(&lc.argv[0]);
        cmd.args(&lc.argv[1..]).current_dir(&lc.cwd);
        for k in &lc.unset {
            cmd.env_remove(k);
        }
        cmd.envs(lc.set.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().map_err(|e| format!("failed to start command: {shown}: {e}"))?;
        let status = child.wait().await.map_err(|e| format!("failed to complete command: {shown}: {e}"))?;
        if !status.success() {
            let why = match status.code() {
                Some(c) => format!("exit status {c}"),
                None => format!("{status}"),
            };
            return Err(format!("failed to complete command: {shown}: {why}"));
        }
        Ok(())
    }
}
