//! The client verbs against a real server and real bots.

use crate::common::{exe, start_server, wait_bots, BotProcess};
use muster_testkit::Prpc;
use serde_json::{json, Value};
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

#[tokio::test]
async fn client_verbs_work_against_a_real_server_and_real_bots() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _b1 = BotProcess::start(&srv.url, &dir.path().join("b1"), "cli-bot-1", &[]).await?;
    let _b2 = BotProcess::start(&srv.url, &dir.path().join("b2"), "cli-bot-2", &[]).await?;
    wait_bots(&prpc, 2).await?;
    let url = srv.url.as_str();

    // run: live output, the task's exit code.
    let out = muster(url, &["run", "-d", "pool=default", "--", "sh", "-c", "echo hi; exit 3"]).await?;
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hi"), "{}", text(&out.stdout));

    // trigger + collect with the upstream JSON shapes.
    let trig = dir.path().join("trigger.json");
    let out = muster(
        url,
        &[
            "trigger",
            "-d",
            "pool=default",
            "--tag",
            "purpose:cli",
            "--json-output",
            trig.to_str().unwrap_or_default(),
            "--",
            "sh",
            "-c",
            "echo collected",
        ],
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
            trig.to_str().unwrap_or_default(),
            "--task-summary-json",
            summary.to_str().unwrap_or_default(),
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

    // tasks: list and count.
    let out = muster(url, &["tasks", "--state", "all", "--tag", "purpose:cli", "--json"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let out = muster(url, &["tasks", "--state", "all", "--count", "--start", "1h"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // bots: list, bare, count.
    let out = muster(url, &["bots", "--bare"]).await?;
    let bare = text(&out.stdout);
    assert!(bare.contains("cli-bot-1") && bare.contains("cli-bot-2"), "{bare}");
    let out = muster(url, &["bots", "-d", "pool=default", "--count", "--json"]).await?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["count"], 2, "{v}");
    let out = muster(url, &["bots"]).await?;
    assert!(text(&out.stdout).contains("cli-bot-1"), "human table: {}", text(&out.stdout));

    // spawn-tasks of 100 tasks, then cancel-tasks by tag (they wait on a missing dimension).
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
    let out =
        muster(url, &["spawn-tasks", "--json-input", input.to_str().unwrap_or_default(), "--json-output", "-"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["tasks"].as_array().map(Vec::len), Some(100));
    let out = muster(url, &["cancel-tasks", "--tag", "batch:spawn", "--limit", "1000"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut canceled = 0;
    for _ in 0..100 {
        let c = prpc
            .ok(
                "Tasks",
                "CountTasks",
                &json!({"start": "2020-01-01T00:00:00Z", "state": "QUERY_CANCELED", "tags": ["batch:spawn"]}),
            )
            .await?;
        canceled = c["count"].as_i64().unwrap_or(0);
        if canceled == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(canceled, 100);

    // cancel one running task with --kill-running.
    let out = muster(url, &["trigger", "-d", "pool=default", "--json", "--", "sh", "-c", "echo up; sleep 100"]).await?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let long = v["tasks"][0]["task_id"].as_str().unwrap_or_default().to_string();
    for _ in 0..600 {
        if prpc.result(&long).await?["state"] == "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = muster(url, &["cancel", "--kill-running", &long]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(prpc.wait_final(&long, Duration::from_secs(120)).await?["state"], "KILLED");

    // reproduce runs the task's command locally.
    let work = dir.path().join("work");
    let out = tokio::process::Command::new(exe())
        .args(["reproduce", "--work"])
        .arg(&work)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg(&id)
        .env("SWARMING_SERVER", url)
        .output()
        .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("collected"), "{}", text(&out.stdout));

    // Bad input: one clear line, a distinct exit code.
    let out = muster(url, &["request-show", "00000000000010"]).await?;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("muster: "), "{}", text(&out.stderr));
    let out = muster(url, &["run", "-d", "poolnovalue", "--", "true"]).await?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = muster("http://127.0.0.1:1", &["tasks"]).await?;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    srv.stop().await?;
    Ok(())
}
