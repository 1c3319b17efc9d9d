//! Real `muster bot` processes running real commands, one behaviour per test.

use crate::common::{start_server, submit, task, wait_bots, BotProcess};
use muster_testkit::{wait_for, Prpc, ServerProcess, PATIENCE};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(180);

async fn stdout_text(prpc: &Prpc, id: &str) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&prpc.stdout(id).await?).to_string())
}

/// A server and one bot fetched from its /bot_code (started with no flags).
async fn server_and_fetched_bot(dir: &Path, bot_id: &str) -> anyhow::Result<(ServerProcess, Prpc, BotProcess)> {
    let srv = start_server(&dir.join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let bot = BotProcess::fetch_and_start(&srv.url, &dir.join("home"), bot_id).await?;
    wait_bots(&prpc, 1).await?;
    Ok((srv, prpc, bot))
}

#[tokio::test]
async fn a_task_past_its_execution_timeout_ends_timed_out_with_its_output() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bot) = server_and_fetched_bot(dir.path(), "e2e-hard").await?;
    let hard =
        submit(&prpc, &task("hard", &["sh", "-c", "echo start; sleep 100"], json!({"executionTimeoutSecs": 30})))
            .await?;
    let r = prpc.wait_final(&hard, LIMIT).await?;
    assert_eq!(r["state"], "TIMED_OUT", "{r}");
    assert!(stdout_text(&prpc, &hard).await?.contains("start"));
    srv.stop().await
}

#[tokio::test]
async fn a_task_ignoring_sigterm_is_ended_by_sigkill_after_its_grace_period() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bot) = server_and_fetched_bot(dir.path(), "e2e-stubborn").await?;
    let stubborn = submit(
        &prpc,
        &task(
            "stubborn",
            &["sh", "-c", "trap '' TERM; echo armed; while true; do sleep 1; done"],
            json!({"executionTimeoutSecs": 30, "ioTimeoutSecs": 0, "gracePeriodSecs": 2}),
        ),
    )
    .await?;
    let r = prpc.wait_final(&stubborn, LIMIT).await?;
    assert_eq!(r["state"], "TIMED_OUT", "{r}");
    assert_eq!(r["exitCode"], "-9", "a process ignoring SIGTERM ends by SIGKILL: {r}");
    srv.stop().await
}

#[tokio::test]
async fn a_task_silent_past_its_io_timeout_ends_timed_out() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bot) = server_and_fetched_bot(dir.path(), "e2e-silent").await?;
    let silent =
        submit(&prpc, &task("silent", &["sh", "-c", "echo once; sleep 100"], json!({"ioTimeoutSecs": 30}))).await?;
    let r = prpc.wait_final(&silent, LIMIT).await?;
    assert_eq!(r["state"], "TIMED_OUT", "{r}");
    assert!(stdout_text(&prpc, &silent).await?.contains("once"));
    srv.stop().await
}

#[tokio::test]
async fn a_task_completes_with_stdout_stderr_and_its_swarming_env() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bot) = server_and_fetched_bot(dir.path(), "e2e-print").await?;
    let print = submit(
        &prpc,
        &task("print", &["sh", "-c", "echo hello; echo oops >&2; echo \"id=$SWARMING_TASK_ID\""], json!({})),
    )
    .await?;
    let r = prpc.wait_final(&print, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert!(r.get("exitCode").is_none(), "exit code 0 is omitted: {r}");
    let out = stdout_text(&prpc, &print).await?;
    assert!(out.contains("hello") && out.contains("oops"), "{out}");
    assert!(out.contains(&format!("id={}1", &print[..print.len() - 1])), "{out}");
    srv.stop().await
}

#[tokio::test]
async fn a_failing_command_completes_with_its_exit_code_and_failure() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bot) = server_and_fetched_bot(dir.path(), "e2e-fail").await?;
    let fail = submit(&prpc, &task("fail", &["sh", "-c", "exit 3"], json!({}))).await?;
    let r = prpc.wait_final(&fail, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert_eq!(r["exitCode"], "3");
    assert_eq!(r["failure"], true);
    srv.stop().await
}

#[tokio::test]
async fn canceling_a_running_task_with_kill_ends_it_killed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bot) = server_and_fetched_bot(dir.path(), "e2e-cancel").await?;
    let long = submit(&prpc, &task("long", &["sh", "-c", "echo running; sleep 100"], json!({}))).await?;
    prpc.wait_running(&long, "running", LIMIT).await?;
    let c = prpc.ok("Tasks", "CancelTask", &json!({"taskId": long, "killRunning": true})).await?;
    assert_eq!(c["canceled"], true);
    assert_eq!(c["wasRunning"], true);
    let r = prpc.wait_final(&long, LIMIT).await?;
    assert_eq!(r["state"], "KILLED", "{r}");
    srv.stop().await
}

#[tokio::test]
async fn a_named_cache_written_by_one_task_is_read_by_the_next() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (srv, prpc, _bot) = server_and_fetched_bot(dir.path(), "e2e-cache").await?;
    let cache = json!({"caches": [{"name": "shared", "path": "cache"}]});
    let w = submit(&prpc, &task("write-cache", &["sh", "-c", "echo persisted > cache/file"], cache.clone())).await?;
    assert_eq!(prpc.wait_final(&w, LIMIT).await?["state"], "COMPLETED");
    let rd = submit(&prpc, &task("read-cache", &["cat", "cache/file"], cache)).await?;
    assert_eq!(prpc.wait_final(&rd, LIMIT).await?["state"], "COMPLETED");
    assert!(stdout_text(&prpc, &rd).await?.contains("persisted"));
    srv.stop().await
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
    prpc.wait_running(&id, "", LIMIT).await?;
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
    prpc.wait_running(&id, "", LIMIT).await?;
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
    wait_for(&format!("the bot to update to {new_version}"), LIMIT, || async {
        let b = prpc.call("Bots", "GetBot", &json!({"botId": "updating-bot"})).await?;
        Ok((b.json["version"].as_str() == Some(new_version.as_str())).then_some(()))
    })
    .await?;
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
    wait_for("the hook's dimension to show up", PATIENCE, || async {
        let b = prpc.ok("Bots", "GetBot", &json!({"botId": "hooked-bot"})).await?;
        Ok(b["dimensions"].as_array().into_iter().flatten().any(|p| p["key"] == "hooked").then_some(()))
    })
    .await?;
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

/// The server starts serving bot code that fails its start-up check
/// (`<new> version` exits 1): the bot does not switch to it, says why in a
/// bot_error event, and keeps running its current code, still connected.
#[tokio::test]
async fn a_bot_keeps_its_working_code_when_the_new_code_fails_its_check() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::fetch_and_start(&srv.url, &dir.path().join("home"), "lkg-bot").await?;
    wait_bots(&prpc, 1).await?;
    let good_version = wait_for("lkg-bot to report its version", PATIENCE, || async {
        let b = prpc.ok("Bots", "GetBot", &json!({"botId": "lkg-bot"})).await?;
        Ok(b["version"].as_str().filter(|v| !v.is_empty()).map(str::to_string))
    })
    .await?;

    let broken = dir.path().join("broken-bot");
    std::fs::write(&broken, "#!/bin/sh\nexit 1\n")?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755))?;
    let port = srv.port();
    srv.stop().await?;
    let broken_arg = broken.to_str().unwrap_or_default();
    let srv = ServerProcess::start(&crate::common::exe(), &data, port, &["--bot-exe", broken_arg]).await?;
    let prpc = Prpc::new(&srv.url);
    let message = wait_for("lkg-bot to report the failed update", LIMIT, || async {
        let events = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "lkg-bot", "limit": 100})).await?;
        Ok(events["items"].as_array().into_iter().flatten().find_map(|e| {
            let m = e["message"].as_str().unwrap_or_default();
            (e["eventType"] == "bot_error" && m.contains("self-update")).then(|| m.to_string())
        }))
    })
    .await?;
    assert!(message.contains("version` failed"), "the start-up check is what failed: {message}");
    let b = prpc.ok("Bots", "GetBot", &json!({"botId": "lkg-bot"})).await?;
    assert_eq!(b["version"], good_version.as_str(), "the bot still runs its working code: {b}");
    assert_ne!(b["isDead"], true, "{b}");
    srv.stop().await
}
