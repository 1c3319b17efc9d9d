//! `muster dev`: the first thing a new user runs.

use crate::common::{exe, submit, task, DevProcess};
use muster_testkit::Prpc;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn muster_dev_runs_a_task_out_of_the_box_and_stops_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let dev = DevProcess::start(dir.path(), 2).await?;
    assert!(dev.printed.iter().any(|l| l.contains("web UI")), "{:?}", dev.printed);
    let prpc = Prpc::new(&dev.url);
    let id = submit(&prpc, &task("dev-hello", &["sh", "-c", "echo hello from $SWARMING_BOT_ID"], json!({}))).await?;
    let r = prpc.wait_final(&id, Duration::from_secs(120)).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let out = String::from_utf8_lossy(&prpc.stdout(&id).await?).to_string();
    assert!(out.contains("hello from dev-bot-"), "{out}");
    dev.stop().await?;
    // Written to a file, the log is plain text, and a dev bot does not
    // complain about its version at every start.
    let log = std::fs::read_to_string(dir.path().join("dev.log"))?;
    assert!(log.contains("handshake done"), "the log has the bots' lines: {log}");
    assert!(!log.contains('\u{1b}'), "no colour codes in a log file: {log:?}");
    assert!(!log.contains("another bot version"), "{log}");
    Ok(())
}

/// Stopping `muster dev` while a task runs: the bot stops the task and says
/// why; the task ends BOT_DIED (as upstream Swarming ends a task whose bot
/// was signalled), never COMPLETED with the signal's exit code.
#[tokio::test]
async fn a_task_running_when_muster_dev_stops_ends_bot_died_because_the_bot_was_shut_down() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let dev = DevProcess::start(dir.path(), 1).await?;
    let prpc = Prpc::new(&dev.url);
    let id = submit(&prpc, &task("dev-long", &["sh", "-c", "echo started; sleep 300"], json!({}))).await?;
    // Running and its first output arrived: the process is up.
    let mut started = false;
    for _ in 0..600 {
        if String::from_utf8_lossy(&prpc.stdout(&id).await?).contains("started") {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(started, "the task printed nothing within 60 s: {}", prpc.result(&id).await?);
    dev.stop().await?;

    // The state is in the dev data directory: look at it with a new dev.
    let dev = DevProcess::start(dir.path(), 1).await?;
    let prpc = Prpc::new(&dev.url);
    let r = prpc.result(&id).await?;
    assert_eq!(r["state"], "BOT_DIED", "{r}");
    assert_eq!(r["internalFailure"], true, "{r}");
    let out = String::from_utf8_lossy(&prpc.stdout(&id).await?).into_owned();
    assert!(out.starts_with("started\n"), "the output before the stop is kept: {out:?}");
    assert!(out.contains("could not run the task: the bot was shut down"), "{out:?}");
    let run_id = r["runId"].as_str().unwrap_or_default().to_string();
    let events = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "dev-bot-1"})).await?;
    let items = events["items"].as_array().cloned().unwrap_or_default();
    assert!(
        items.iter().any(|e| e["eventType"] == "task_error"
            && e["taskId"] == run_id
            && e["message"] == "the bot was shut down"),
        "{events}"
    );
    dev.stop().await
}

/// `muster run` of a command the bot cannot start: the reason is printed
/// and run exits 1 (the task failed: COMPLETED, exit code 1, as upstream).
#[tokio::test]
async fn muster_run_of_a_missing_executable_prints_why_and_exits_1() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let dev = DevProcess::start(dir.path(), 1).await?;
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(exe())
            .args(["run", "-S", &dev.url, "-d", "pool=default", "--", "no-such-binary"])
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stdout {stdout:?} stderr {stderr:?}");
    assert!(
        stdout.contains("starting \"no-such-binary\": No such file or directory"),
        "the reason is printed: stdout {stdout:?} stderr {stderr:?}"
    );
    dev.stop().await
}
