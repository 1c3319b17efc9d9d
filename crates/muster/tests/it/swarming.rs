//! The `swarming` personality end to end: the binary linked as `swarming`
//! (by `muster install-swarming-alias`) against a real server and real
//! bots, with the JSON files, stdout and exit codes the upstream Go CLI
//! produces. Expected outputs follow upstream's source, field by field:
//! - trigger / spawn-tasks: `{"tasks": [TaskRequestMetadataResponse]}`;
//! - collect: `{"<id>": {"error"?, "output"?, "outputs"?, "results"?}}`,
//!   `output` only with `-task-output-stdout json` and never empty,
//!   `error` = `rpc_timeout` or gRPC's `rpc error: code = X desc = Y`;
//!   console lines `<id>: COMPLETED, exit code N` / `<id>: <STATE>`;
//! - tasks / bots / bot-tasks: a JSON list on stdout; request-show: one
//!   object on stdout;
//! - messages with the original proto field names, int64 as strings, enums
//!   as names, defaults omitted, one-space indentation, a final newline;
//! - exit 0 unless a command fails (1) or its flags are bad (2); a task's
//!   failure, a timeout of collect or a missing task do not fail collect.

use crate::common::{exe, start_server, wait_bots, BotProcess};
use muster_testkit::Prpc;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

struct Swarming {
    exe: PathBuf,
    server: String,
    cwd: PathBuf,
}

impl Swarming {
    async fn run_in(&self, args: &[&str], stdin: &str) -> anyhow::Result<Out> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.exe)
            .args(args)
            .current_dir(&self.cwd)
            .env("SWARMING_SERVER", &self.server)
            .env("USER", "tester")
            .env_remove("SWARMING_TASK_ID")
            .env_remove("MUSTER_TOKEN")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes()).await?;
        }
        let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
            .await
            .map_err(|_| anyhow::anyhow!("swarming {args:?} did not finish within 180 s"))??;
        Ok(Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<Out> {
        self.run_in(args, "").await
    }

    fn path(&self, name: &str) -> String {
        self.cwd.join(name).to_string_lossy().into_owned()
    }
}

/// A server reply (camelCase JSON) with the CLI's snake_case names.
fn snake(v: Value) -> Value {
    muster_api::json::snake_case_keys(v)
}

fn read_json(path: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)?;
    check_format(&text);
    Ok(serde_json::from_str(&text)?)
}

/// One-space indentation and a final newline, as Go's json.Indent writes.
fn check_format(text: &str) {
    assert!(text.ends_with('\n'), "final newline: {text:?}");
    for line in text.lines().skip(1) {
        let indent = line.len() - line.trim_start().len();
        assert!(line.starts_with(' ') || line == "}" || line == "]", "indented by spaces: {line:?}");
        assert!(!line[..indent].contains('\t'));
    }
}

async fn result_of(prpc: &Prpc, id: &str) -> anyhow::Result<Value> {
    Ok(snake(prpc.ok("Tasks", "GetResult", &json!({"taskId": id})).await?))
}

async fn request_of(prpc: &Prpc, id: &str) -> anyhow::Result<Value> {
    Ok(snake(prpc.ok("Tasks", "GetRequest", &json!({"taskId": id})).await?))
}

/// Triggers with `-json-output FILE` and returns the task id.
async fn trigger(sw: &Swarming, file: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut a = vec!["trigger", "-json-output", file];
    a.extend_from_slice(args);
    let o = sw.run(&a).await?;
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(o.stdout, "", "{o}");
    let v = read_json(file)?;
    Ok(v["tasks"][0]["task_id"].as_str().unwrap_or_default().to_string())
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test]
async fn scripts_for_the_upstream_swarming_cli_run_unchanged() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _b1 = BotProcess::start(&srv.url, &dir.path().join("b1"), "sw-bot-1", &[]).await?;
    let _b2 = BotProcess::start(&srv.url, &dir.path().join("b2"), "sw-bot-2", &[]).await?;
    let mut b3 =
        BotProcess::start(&srv.url, &dir.path().join("b3"), "sw-bot-3", &["--dimension", "role=spare"]).await?;
    wait_bots(&prpc, 3).await?;

    // The link: `muster install-swarming-alias DIR`.
    let bin = dir.path().join("bin");
    let o = tokio::process::Command::new(exe()).arg("install-swarming-alias").arg(&bin).output().await?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cwd = dir.path().join("work");
    std::fs::create_dir_all(&cwd)?;
    let sw = Swarming { exe: bin.join("swarming"), server: srv.url.clone(), cwd };

    // --- trigger + collect: success, output in the JSON summary.
    let t1 = sw.path("t1.json");
    let o = sw
        .run(&[
            "trigger",
            "-d",
            "pool=default",
            "-tag",
            "purpose:sw",
            "-json-output",
            &t1,
            "--",
            "sh",
            "-c",
            "echo hello",
        ])
        .await?;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{o}");
    let text = std::fs::read_to_string(&t1)?;
    assert!(text.starts_with("{\n \"tasks\": [\n  {\n"), "{text}");
    let t = read_json(&t1)?;
    let id1 = t["tasks"][0]["task_id"].as_str().unwrap_or_default().to_string();
    assert_eq!(keys(&t["tasks"][0]), ["request", "task_id", "task_result"], "{t}");
    assert_eq!(t["tasks"][0]["request"], request_of(&prpc, &id1).await?, "the request as stored");
    let tr = &t["tasks"][0]["task_result"];
    assert_eq!((tr["task_id"].as_str(), tr["state"].as_str()), (Some(id1.as_str()), Some("PENDING")), "{t}");
    let props = &t["tasks"][0]["request"]["task_slices"][0]["properties"];
    assert_eq!(props["containment"], json!({"containment_type": "NONE"}), "trigger sends containment NONE: {props}");
    assert_eq!(props["execution_timeout_secs"], 3600);
    assert_eq!(t["tasks"][0]["request"]["name"], "tester/pool=default");
    let s1 = sw.path("s1.json");
    let o = sw
        .run(&["collect", "-requests-json", &t1, "-task-output-stdout", "json", "-json-output", &s1, "-timeout", "2m"])
        .await?;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{o}");
    let s = read_json(&s1)?;
    assert_eq!(s, json!({ &id1: {"output": "hello\n", "results": result_of(&prpc, &id1).await?} }));
    assert_eq!(s[&id1]["results"]["state"], "COMPLETED");
    assert!(s[&id1]["results"].get("exit_code").is_none(), "0 is omitted: {s}");

    // --- exit 3: the command right after the flags (no `--`), console output.
    let t3 = sw.path("t3.json");
    let id3 =
        trigger(&sw, &t3, &["-d", "pool=default", "-idempotent=false", "sh", "-c", "echo failing; exit 3"]).await?;
    let s3 = sw.path("s3.json");
    let o = sw.run(&["collect", "-task-output-stdout", "console", "-task-summary-json", &s3, &id3]).await?;
    assert_eq!(o.code, 0, "a task failure is not a collect failure: {o}");
    assert_eq!(o.stdout, format!("{id3}: COMPLETED, exit code 3\nfailing\n\n"), "{o}");
    let s = read_json(&s3)?;
    assert_eq!(s, json!({ &id3: {"results": result_of(&prpc, &id3).await?} }), "no output key without json mode");
    assert_eq!(
        (s[&id3]["results"]["exit_code"].as_str(), s[&id3]["results"]["failure"].as_bool()),
        (Some("3"), Some(true))
    );

    // --- NO_RESOURCE.
    let tn = sw.path("tn.json");
    let idn = trigger(&sw, &tn, &["-d", "pool=default", "-d", "gpu=none-such", "true"]).await?;
    let o = sw.run(&["collect", "-task-output-stdout", "all", "-json-output", "-", &idn]).await?;
    assert_eq!(o.code, 0, "{o}");
    let (line, json_text) = o.stdout.split_once('\n').unwrap_or_default();
    assert_eq!(line, format!("{idn}: NO_RESOURCE"));
    let v: Value = serde_json::from_str(json_text)?;
    assert_eq!(v, json!({ &idn: {"results": result_of(&prpc, &idn).await?} }), "nothing ran, no output: {o}");

    // --- timeout: exit 0, the summary written, rpc_timeout with the last state.
    let ts = sw.path("ts.json");
    let ids = trigger(&sw, &ts, &["-d", "pool=default", "-hard-timeout", "120", "--", "sleep", "60"]).await?;
    let st = sw.path("st.json");
    let o = sw.run(&["collect", "-timeout", "2s", "-task-output-stdout", "console", "-json-output", &st, &ids]).await?;
    assert_eq!(o.code, 0, "upstream exits 0 on timeout: {o}");
    assert_eq!(o.stdout, format!("{ids}: rpc_timeout\n"));
    let s = read_json(&st)?;
    assert_eq!(s[&ids]["error"], "rpc_timeout", "{s}");
    assert!(matches!(s[&ids]["results"]["state"].as_str(), Some("PENDING" | "RUNNING")), "{s}");
    let o = sw.run(&["cancel", "-kill-running", &ids]).await?;
    assert_eq!(o.code, 0, "{o}");

    // --- dedup: the same idempotent task twice.
    let d1 = trigger(&sw, &sw.path("d1.json"), &["-d", "pool=default", "-idempotent", "--", "echo", "same"]).await?;
    let o = sw.run(&["collect", &d1]).await?;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{o}");
    let d2 = trigger(&sw, &sw.path("d2.json"), &["-d", "pool=default", "-idempotent", "--", "echo", "same"]).await?;
    assert_ne!(d1, d2);
    let o = sw.run(&["collect", "-task-output-stdout", "json", "-json-output", "-", &d2]).await?;
    assert_eq!(o.code, 0, "{o}");
    let v: Value = serde_json::from_str(&o.stdout)?;
    assert_eq!(v, json!({ &d2: {"output": "same\n", "results": result_of(&prpc, &d2).await?} }));
    assert!(v[&d2]["results"]["deduped_from"].as_str().is_some_and(|s| !s.is_empty()), "{v}");

    // --- several tasks: spawn-tasks (JSON on stdout), collect them all.
    let reqs: Vec<Value> = (0..3)
        .map(|i| {
            json!({"name": format!("spawned-{i}"), "priority": 100, "tags": ["purpose:sw"],
            "task_slices": [{"expiration_secs": 600, "properties": {
                "command": ["sh", "-c", format!("echo spawned {i}")], "execution_timeout_secs": 60,
                "dimensions": [{"key": "pool", "value": "default"}]}}]})
        })
        .collect();
    let input = sw.path("reqs.json");
    std::fs::write(&input, serde_json::to_vec(&json!({"requests": reqs}))?)?;
    let o = sw.run(&["spawn-tasks", "-json-input", &input, "-cancel-extra-tasks"]).await?;
    assert_eq!(o.code, 0, "{o}");
    check_format(&o.stdout);
    let spawned: Value = serde_json::from_str(&o.stdout)?;
    assert_eq!(spawned["tasks"].as_array().map(Vec::len), Some(3), "{spawned}");
    let spawned_file = sw.path("spawned.json");
    std::fs::write(&spawned_file, &o.stdout)?;
    let o = sw
        .run(&["collect", "-requests-json", &spawned_file, "-json-output", "-", "-task-output-stdout", "json"])
        .await?;
    assert_eq!(o.code, 0, "{o}");
    let v: Value = serde_json::from_str(&o.stdout)?;
    assert_eq!(v.as_object().map(|m| m.len()), Some(3), "{v}");
    for t in spawned["tasks"].as_array().into_iter().flatten() {
        let id = t["task_id"].as_str().unwrap_or_default();
        assert_eq!(v[id]["results"], result_of(&prpc, id).await?);
        assert!(v[id]["output"].as_str().is_some_and(|s| s.starts_with("spawned ")), "{v}");
    }

    // --- a missing task: an entry with gRPC's error text, exit 0.
    let o = sw.run(&["collect", "-json-output", "-", "1230", &id1]).await?;
    assert_eq!(o.code, 0, "{o}");
    let v: Value = serde_json::from_str(&o.stdout)?;
    let e = v["1230"]["error"].as_str().unwrap_or_default();
    assert!(e.starts_with("rpc error: code = NotFound desc = "), "{v}");
    assert_eq!(keys(&v["1230"]), ["error"]);
    assert_eq!(v[&id1]["results"]["state"], "COMPLETED");

    // --- tasks: a JSON list on stdout; -json FILE; -count.
    let o = sw.run(&["tasks", "-tag", "purpose:sw", "-state", "completed"]).await?;
    assert_eq!(o.code, 0, "{o}");
    check_format(&o.stdout);
    let v: Value = serde_json::from_str(&o.stdout)?;
    assert_eq!(v.as_array().map(Vec::len), Some(4), "trigger 1 + 3 spawned: {v}");
    assert!(v.as_array().into_iter().flatten().all(|t| t["state"] == "COMPLETED"));
    let tf = sw.path("tasks.json");
    let o = sw.run(&["tasks", "-json", &tf, "-limit", "2", "-state", "all"]).await?;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{o}");
    assert_eq!(read_json(&tf)?.as_array().map(Vec::len), Some(2));
    let o = sw.run(&["tasks", "-count", "-start", "1000000000", "-tag", "purpose:sw"]).await?;
    assert_eq!(o.code, 0, "{o}");
    let v: Value = serde_json::from_str(&o.stdout)?;
    assert_eq!(v["count"], 4, "{v}");

    // --- bots, bot-tasks.
    let o = sw.run(&["bots", "-dimension", "pool=default"]).await?;
    assert_eq!(o.code, 0, "{o}");
    let v: Value = serde_json::from_str(&o.stdout)?;
    let ids: Vec<&str> = v.as_array().into_iter().flatten().filter_map(|b| b["bot_id"].as_str()).collect();
    assert_eq!(ids, ["sw-bot-1", "sw-bot-2", "sw-bot-3"], "{v}");
    let o = sw.run(&["bots", "-bare"]).await?;
    assert_eq!((o.code, o.stdout.as_str()), (0, "sw-bot-1\nsw-bot-2\nsw-bot-3\n"), "{o}");
    let o = sw.run(&["bots", "-count", "-dimension", "role=spare"]).await?;
    let v: Value = serde_json::from_str(&o.stdout)?;
    assert_eq!(v["count"], 1, "{v}");
    let o = sw.run(&["bot-tasks", "-id", "sw-bot-1", "-limit", "100"]).await?;
    assert_eq!(o.code, 0, "{o}");
    let v: Value = serde_json::from_str(&o.stdout)?;
    assert!(v.as_array().is_some_and(|a| a.iter().all(|t| t["bot_id"] == "sw-bot-1")), "{v}");

    // --- request-show: stdout by default, -json-output FILE.
    let o = sw.run(&["request-show", &id1]).await?;
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(serde_json::from_str::<Value>(&o.stdout)?, request_of(&prpc, &id1).await?);
    let rf = sw.path("req.json");
    let o = sw.run(&["request-show", "-json-output", &rf, &id1]).await?;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{o}");
    assert_eq!(read_json(&rf)?, request_of(&prpc, &id1).await?);
    let o = sw.run(&["request-show", "1230"]).await?;
    assert_eq!(o.code, 1, "{o}");
    assert!(o.stderr.contains("rpc error: code = NotFound"), "{o}");

    // --- reproduce: 0 when the command succeeds, 1 when it fails.
    let o = sw.run(&["reproduce", &id1]).await?;
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(o.stdout, "hello\n");
    let o = sw.run(&["reproduce", "-work", "w3", &id3]).await?;
    assert_eq!(o.code, 1, "upstream exits 1, not the command's 3: {o}");
    assert!(o.stderr.contains("exit status 3"), "{o}");

    // --- cancel of a finished task fails; cancel-tasks.
    let o = sw.run(&["cancel", &id1]).await?;
    assert_eq!(o.code, 1, "{o}");
    assert!(o.stderr.contains("task was not canceled"), "{o}");
    let o = sw.run(&["cancel-tasks"]).await?;
    assert_eq!(o.code, 1, "no local refusal; the server wants tags, as upstream's: {o}");
    assert!(o.stderr.contains("tags are required"), "{o}");
    let o = sw.run(&["cancel-tasks", "-tag", "purpose:sw", "-kill-running"]).await?;
    assert_eq!(o.code, 0, "{o}");

    // --- terminate -wait, then delete-bots with a piped answer.
    let o = sw.run(&["terminate", "-wait", "-reason", "swap", "sw-bot-3"]).await?;
    assert_eq!(o.code, 0, "{o}");
    b3.wait_exit(Duration::from_secs(60)).await?;
    let o = sw.run_in(&["delete-bots", "sw-bot-3"], "y\n").await?;
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(o.stdout, "Delete the following bots?\nsw-bot-3\nContinue? [y/N] \n");
    let v = prpc.ok("Bots", "GetBot", &json!({"botId": "sw-bot-3"})).await?;
    assert_eq!(v["deleted"], true, "{v}");

    // --- flag errors exit 2; `muster swarming` is the same personality.
    let o = sw.run(&["collect", "-timeout", "10", &id1]).await?;
    assert_eq!(o.code, 2, "{o}");
    let o = tokio::process::Command::new(exe()).args(["swarming", "bots", "-S", &srv.url, "-bare"]).output().await?;
    assert_eq!(String::from_utf8_lossy(&o.stdout), "sw-bot-1\nsw-bot-2\n", "{}", String::from_utf8_lossy(&o.stderr));
    let o = sw.run(&["help"]).await?;
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("spawn-tasks") && o.stdout.contains("bot-tasks"), "{o}");
    assert!(Path::new(&sw.exe).exists());
    Ok(())
}
