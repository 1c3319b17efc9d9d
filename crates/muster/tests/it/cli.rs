//! The client verbs against a real server and real bots, one verb (or pair)
//! per test.

use crate::common::{exe, start_server, submit, task, wait_bots, BotProcess};
use muster_testkit::{wait_for, Prpc, ServerProcess, PATIENCE};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// Runs `muster <args>` with SWARMING_SERVER set.
async fn muster(server: &str, args: &[&str]) -> anyhow::Result<Output> {
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(exe()).args(args).env("SWARMING_SERVER", server).env("USER", "tester").output(),
    )
    .await??;
    Ok(out)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A server with `n` bots (`cli-bot-1`…) started from the test binary.
async fn server_with_bots(dir: &Path, n: usize) -> anyhow::Result<(ServerProcess, Prpc, Vec<BotProcess>)> {
    let srv = start_server(&dir.join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let mut bots = Vec::new();
    for i in 1..=n {
        bots.push(BotProcess::start(&srv.url, &dir.join(format!("b{i}")), &format!("cli-bot-{i}"), &[]).await?);
    }
    wait_bots(&prpc, n).await?;
    Ok((srv, prpc, bots))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[tokio::test]
async fn run_streams_the_output_and_exits_with_the_task_exit_code() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, _prpc, _bots) = server_with_bots(dir.path(), 1).await?;
    let out = muster(&srv.url, &["run", "-d", "pool=default", "--", "sh", "-c", "echo hi; exit 3"]).await?;
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hi"), "{}", text(&out.stdout));
    srv.stop().await
}

#[tokio::test]
async fn trigger_then_collect_write_the_upstream_json_shapes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, _prpc, _bots) = server_with_bots(dir.path(), 1).await?;
    let url = srv.url.as_str();
    let trig = dir.path().join("trigger.json");
    let out = muster(
        url,
        &["trigger", "-d", "pool=default", "--json-output", path(&trig), "--", "sh", "-c", "echo collected"],
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t: Value = serde_json::from_slice(&std::fs::read(&trig)?)?;
    let id = t["tasks"][0]["task_id"].as_str().unwrap_or_default().to_string();
    assert!(id.ends_with('0'), "{t}");
    assert_eq!(t["tasks"][0]["request"]["name"].as_str().map(|s| s.starts_with("tester/")), Some(true), "{t}");
    let summary = dir.path().join("summary.json");
    let out = muster(
        url,
        &[
            "collect",
            "--requests-json",
            path(&trig),
            "--task-summary-json",
            path(&summary),
            "--task-output-stdout",
            "json",
        ],
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: Value = serde_json::from_slice(&std::fs::read(&summary)?)?;
    assert_eq!(s[&id]["results"]["state"], "COMPLETED", "{s}");
    assert_eq!(s[&id]["results"]["task_id"], id.as_str(), "snake_case keys: {s}");
    assert!(s[&id]["output"].as_str().is_some_and(|o| o.contains("collected")), "{s}");
    srv.stop().await
}

#[tokio::test]
async fn tasks_lists_by_tag_and_counts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bots) = server_with_bots(dir.path(), 0).await?;
    let url = srv.url.as_str();
    let mut tagged = task("tagged", &["true"], json!({}));
    tagged["tags"] = json!(["purpose:cli"]);
    submit(&prpc, &tagged).await?;
    submit(&prpc, &task("untagged", &["true"], json!({}))).await?;
    let out = muster(url, &["tasks", "--state", "all", "--tag", "purpose:cli", "--json"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let out = muster(url, &["tasks", "--state", "all", "--count", "--start", "1h"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "2", "two tasks counted");
    srv.stop().await
}

#[tokio::test]
async fn bots_lists_bare_counts_and_prints_a_table() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, _prpc, _bots) = server_with_bots(dir.path(), 2).await?;
    let url = srv.url.as_str();
    let out = muster(url, &["bots", "--bare"]).await?;
    let bare = text(&out.stdout);
    assert!(bare.contains("cli-bot-1") && bare.contains("cli-bot-2"), "{bare}");
    let out = muster(url, &["bots", "-d", "pool=default", "--count", "--json"]).await?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["count"], 2, "{v}");
    let out = muster(url, &["bots"]).await?;
    assert!(text(&out.stdout).contains("cli-bot-1"), "human table: {}", text(&out.stdout));
    srv.stop().await
}

/// spawn-tasks of 100 tasks, then cancel-tasks by tag (they wait on a missing dimension).
#[tokio::test]
async fn spawn_tasks_submits_a_batch_and_cancel_tasks_cancels_it_by_tag() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bots) = server_with_bots(dir.path(), 0).await?;
    let url = srv.url.as_str();
    let reqs: Vec<Value> = (0..100)
        .map(|i| {
            json!({"name": format!("spawned-{i}"), "priority": 100, "tags": ["batch:spawn"],
            "task_slices": [{"expiration_secs": 600, "wait_for_capacity": true, "properties": {
                "command": ["true"], "execution_timeout_secs": 60,
                "dimensions": [{"key": "pool", "value": "default"}, {"key": "never", "value": "there"}]}}]})
        })
        .collect();
    let input = dir.path().join("spawn.json");
    std::fs::write(&input, serde_json::to_vec(&json!({"requests": reqs}))?)?;
    let out = muster(url, &["spawn-tasks", "--json-input", path(&input), "--json-output", "-"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["tasks"].as_array().map(Vec::len), Some(100));
    let out = muster(url, &["cancel-tasks", "--tag", "batch:spawn", "--limit", "1000"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_for("the 100 spawned tasks to be canceled", PATIENCE, || async {
        let c = prpc
            .ok(
                "Tasks",
                "CountTasks",
                &json!({"start": "2020-01-01T00:00:00Z", "state": "QUERY_CANCELED", "tags": ["batch:spawn"]}),
            )
            .await?;
        Ok((c["count"].as_i64() == Some(100)).then_some(()))
    })
    .await?;
    srv.stop().await
}

#[tokio::test]
async fn cancel_with_kill_running_ends_a_running_task_killed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bots) = server_with_bots(dir.path(), 1).await?;
    let url = srv.url.as_str();
    let out = muster(url, &["trigger", "-d", "pool=default", "--json", "--", "sh", "-c", "echo up; sleep 100"]).await?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let long = v["tasks"][0]["task_id"].as_str().unwrap_or_default().to_string();
    prpc.wait_running(&long, "", PATIENCE).await?;
    let out = muster(url, &["cancel", "--kill-running", &long]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(prpc.wait_final(&long, Duration::from_secs(120)).await?["state"], "KILLED");
    srv.stop().await
}

#[tokio::test]
async fn reproduce_runs_a_task_command_locally() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bots) = server_with_bots(dir.path(), 0).await?;
    // No bot: the task stays pending, and reproduce only needs its request.
    let mut t = task("to-reproduce", &["sh", "-c", "echo reproduced"], json!({}));
    t["taskSlices"][0]["waitForCapacity"] = json!(true);
    let id = submit(&prpc, &t).await?;
    let work = dir.path().join("work");
    let out = tokio::process::Command::new(exe())
        .args(["reproduce", "--work"])
        .arg(&work)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg(&id)
        .env("SWARMING_SERVER", &srv.url)
        .output()
        .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("reproduced"), "{}", text(&out.stdout));
    srv.stop().await
}

/// Bad input: one clear line, a distinct exit code.
#[tokio::test]
async fn bad_input_gives_one_clear_line_and_a_distinct_exit_code() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, _prpc, _bots) = server_with_bots(dir.path(), 0).await?;
    let url = srv.url.as_str();
    let out = muster(url, &["request-show", "00000000000010"]).await?;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("muster: "), "{}", text(&out.stderr));
    let out = muster(url, &["run", "-d", "poolnovalue", "--", "true"]).await?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = muster("http://127.0.0.1:1", &["tasks"]).await?;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    srv.stop().await
}
