//! Real `muster bot` processes running real commands.

use crate::common::{start_server, submit, task, wait_bots, BotProcess};
use muster_testkit::{Prpc, ServerProcess};
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(180);

async fn stdout_text(prpc: &Prpc, id: &str) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&prpc.stdout(id).await?).to_string())
}

/// Two bots fetched from /bot_code run tasks that print, fail, time out,
/// go silent, ignore SIGTERM, get killed, and share a named cache.
#[tokio::test]
async fn fetched_bots_run_real_tasks_to_the_right_final_state() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let mut bots = Vec::new();
    for i in 1..=3 {
        bots.push(
            BotProcess::fetch_and_start(&srv.url, &dir.path().join(format!("home{i}")), &format!("e2e-bot-{i}"))
                .await?,
        );
    }
    wait_bots(&prpc, 3).await?;

    // Long ones first so they overlap.
    let hard =
        submit(&prpc, &task("hard", &["sh", "-c", "echo start; sleep 100"], json!({"executionTimeoutSecs": 30})))
            .await?;
    let stubborn = submit(
        &prpc,
        &task(
            "stubborn",
            &["sh", "-c", "trap '' TERM; echo armed; while true; do sleep 1; done"],
            json!({"executionTimeoutSecs": 30, "ioTimeoutSecs": 0, "gracePeriodSecs": 2}),
        ),
    )
    .await?;
    let silent =
        submit(&prpc, &task("silent", &["sh", "-c", "echo once; sleep 100"], json!({"ioTimeoutSecs": 30}))).await?;

    let r = prpc.wait_final(&hard, LIMIT).await?;
    assert_eq!(r["state"], "TIMED_OUT", "{r}");
    assert!(stdout_text(&prpc, &hard).await?.contains("start"));
    let r = prpc.wait_final(&stubborn, LIMIT).await?;
    assert_eq!(r["state"], "TIMED_OUT", "{r}");
    assert_eq!(r["exitCode"], "-9", "a process ignoring SIGTERM ends by SIGKILL: {r}");
    let r = prpc.wait_final(&silent, LIMIT).await?;
    assert_eq!(r["state"], "TIMED_OUT", "{r}");
    assert!(stdout_text(&prpc, &silent).await?.contains("once"));

    let print = submit(
        &prpc,
        &task("print", &["sh", "-c", "echo hello; echo oops >&2; echo \"id=$SWARMING_TASK_ID\""], json!({})),
    )
    .await?;
    let fail = submit(&prpc, &task("fail", &["sh", "-c", "exit 3"], json!({}))).await?;
    let r = prpc.wait_final(&print, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert!(r.get("exitCode").is_none(), "exit code 0 is omitted: {r}");
    let out = stdout_text(&prpc, &print).await?;
    assert!(out.contains("hello") && out.contains("oops"), "{out}");
    assert!(out.contains(&format!("id={}1", &print[..print.len() - 1])), "{out}");
    let r = prpc.wait_final(&fail, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED");
    assert_eq!(r["exitCode"], "3");
    assert_eq!(r["failure"], true);

    // Cancel while running: KILLED.
    let long = submit(&prpc, &task("long", &["sh", "-c", "echo running; sleep 100"], json!({}))).await?;
    for _ in 0..600 {
        if prpc.result(&long).await?["state"] == "RUNNING" && stdout_text(&prpc, &long).await?.contains("running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = prpc.ok("Tasks", "CancelTask", &json!({"taskId": long, "killRunning": true})).await?;
    assert_eq!(c["canceled"], true);
    assert_eq!(c["wasRunning"], true);
    let r = prpc.wait_final(&long, LIMIT).await?;
    assert_eq!(r["state"], "KILLED", "{r}");

    // Named cache: the second task sees what the first wrote (pin both to one bot).
    let cache = json!({"caches": [{"name": "shared", "path": "cache"}],
                       "dimensions": [{"key": "pool", "value": "default"}, {"key": "id", "value": "e2e-bot-1"}]});
    let w = submit(&prpc, &task("write-cache", &["sh", "-c", "echo persisted > cache/file"], cache.clone())).await?;
    assert_eq!(prpc.wait_final(&w, LIMIT).await?["state"], "COMPLETED");
    let rd = submit(&prpc, &task("read-cache", &["cat", "cache/file"], cache)).await?;
    assert_eq!(prpc.wait_final(&rd, LIMIT).await?["state"], "COMPLETED");
    assert!(stdout_text(&prpc, &rd).await?.contains("persisted"));

    drop(bots);
    srv.stop().await?;
    Ok(())
}

/// Restarting the server during a long task loses nothing: the bot keeps
/// retrying and the final result is stored.
#[tokio::test]
async fn a_server_restart_during_a_task_keeps_its_result() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "restart-bot", &["--no-self-update"]).await?;
    wait_bots(&prpc, 1).await?;
    let id = submit(&prpc, &task("survivor", &["sh", "-c", "echo begin; sleep 4; echo end"], json!({}))).await?;
    for _ in 0..600 {
        if prpc.result(&id).await?["state"] == "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let port = srv.port();
    srv.kill9().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let srv = ServerProcess::start(&crate::common::exe(), &data, port, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let r = prpc.wait_final(&id, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let out = stdout_text(&prpc, &id).await?;
    assert!(out.contains("begin") && out.contains("end"), "{out}");
    srv.stop().await?;
    Ok(())
}

/// A bot killed mid-task: the server ends the task BOT_DIED in bounded time.
#[tokio::test]
async fn killing_a_bot_mid_task_ends_the_task_bot_died() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &["--bot-death-timeout-secs", "10"]).await?;
    let prpc = Prpc::new(&srv.url);
    let mut bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "doomed-bot", &["--no-self-update"]).await?;
    wait_bots(&prpc, 1).await?;
    let id = submit(&prpc, &task("orphan", &["sh", "-c", "sleep 100"], json!({}))).await?;
    for _ in 0..600 {
        if prpc.result(&id).await?["state"] == "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bot.kill9().await?;
    let r = prpc.wait_final(&id, LIMIT).await?;
    assert_eq!(r["state"], "BOT_DIED", "{r}");
    assert_eq!(r["internalFailure"], true);
    srv.stop().await?;
    Ok(())
}

/// The served binary changes (another config trailer): bots update
/// themselves to the new digest and keep running tasks.
#[tokio::test]
async fn bots_update_themselves_when_the_served_binary_changes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::fetch_and_start(&srv.url, &dir.path().join("home"), "updating-bot").await?;
    wait_bots(&prpc, 1).await?;
    let id = submit(&prpc, &task("before", &["true"], json!({}))).await?;
    assert_eq!(prpc.wait_final(&id, LIMIT).await?["state"], "COMPLETED");

    let port = srv.port();
    srv.stop().await?;
    let srv = ServerProcess::start(&crate::common::exe(), &data, port, &["--bot-dimension", "zone=b"]).await?;
    let prpc = Prpc::new(&srv.url);
    let new_version =
        reqwest::get(format!("{}/bot_code", srv.url)).await?.headers()["x-muster-bot-version"].to_str()?.to_string();
    let mut seen = String::new();
    for _ in 0..1200 {
        let b = prpc.call("Bots", "GetBot", &json!({"botId": "updating-bot"})).await?;
        seen = b.json["version"].as_str().unwrap_or_default().to_string();
        if seen == new_version {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, new_version, "bot did not update");
    let id = submit(&prpc, &task("after", &["sh", "-c", "echo updated"], json!({}))).await?;
    let r = prpc.wait_final(&id, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    srv.stop().await?;
    Ok(())
}

/// TerminateBot: the bot picks up its termination task, exits gracefully,
/// and the termination task completes.
#[tokio::test]
async fn a_terminated_bot_exits_and_its_termination_task_completes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let mut bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "leaving-bot", &[]).await?;
    wait_bots(&prpc, 1).await?;
    let t = prpc.ok("Bots", "TerminateBot", &json!({"botId": "leaving-bot", "reason": "disk swap"})).await?;
    let task_id = t["taskId"].as_str().unwrap_or_default().to_string();
    assert!(task_id.ends_with('0'), "{t}");
    let status = bot.wait_exit(LIMIT).await?;
    assert!(status.success(), "bot exit status {status}");
    let r = prpc.wait_final(&task_id, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let events = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "leaving-bot"})).await?;
    let kinds: Vec<&str> =
        events["items"].as_array().into_iter().flatten().filter_map(|e| e["eventType"].as_str()).collect();
    assert!(kinds.contains(&"bot_shutdown"), "{kinds:?}");
    srv.stop().await?;
    Ok(())
}

/// A hook delivered by the server (`--bot-hook`) reaches bots fetched from
/// /bot_code and shapes their dimensions; tasks can target them.
#[tokio::test]
async fn a_server_delivered_hook_adds_dimensions_that_tasks_can_target() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let hook = dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\ncase \"$1\" in\n  get_dimensions) python3 -c 'import json,sys; d=json.load(sys.stdin); \
         d[\"dimensions\"][\"hooked\"]=[\"yes\"]; print(json.dumps(d))' ;;\n  *) cat >/dev/null; echo '{}' ;;\nesac\n",
    )?;
    let srv = start_server(&dir.path().join("server"), &["--bot-hook", hook.to_str().unwrap_or_default()]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::fetch_and_start(&srv.url, &dir.path().join("home"), "hooked-bot").await?;
    wait_bots(&prpc, 1).await?;
    let mut hooked = false;
    for _ in 0..300 {
        let b = prpc.ok("Bots", "GetBot", &json!({"botId": "hooked-bot"})).await?;
        hooked = b["dimensions"].as_array().into_iter().flatten().any(|p| p["key"] == "hooked");
        if hooked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hooked, "the hook's dimension never showed up");
    let t = task(
        "needs-hook",
        &["true"],
        json!({"dimensions": [{"key": "pool", "value": "default"}, {"key": "hooked", "value": "yes"}]}),
    );
    let id = submit(&prpc, &t).await?;
    assert_eq!(prpc.wait_final(&id, LIMIT).await?["state"], "COMPLETED");
    srv.stop().await?;
    Ok(())
}
