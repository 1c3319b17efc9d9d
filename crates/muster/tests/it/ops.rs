//! Operating a server: the data-dir lock, restarts with real bots parked.

use crate::common::{exe, start_server, submit, task, wait_bots, BotProcess};
use muster_testkit::{Prpc, ServerProcess};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_second_server_on_a_data_dir_in_use_refuses_naming_the_holder() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = start_server(dir.path(), &[]).await?;
    let pid = first.pid().unwrap_or_default();
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(exe())
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("MUSTER_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await??;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second server started: {stderr}");
    assert!(stderr.contains(&format!("in use by another muster server (pid {pid})")), "{stderr}");
    assert!(!String::from_utf8_lossy(&second.stdout).contains("listening on"));
    // The first one is unaffected.
    Prpc::new(&first.url).ok("Bots", "CountBots", &json!({})).await?;
    first.stop().await?;
    Ok(())
}

/// SIGTERM answers the bots' parked polls at once, so the server exits well
/// before the 25 s long poll; a successor started with --wait-for-lock (as a
/// supervisor would, before the old one is gone) takes over the same bots.
#[tokio::test]
async fn sigterm_releases_parked_bots_and_a_successor_serves_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let old = start_server(&data, &[]).await?;
    let port = old.port();
    let prpc = Prpc::new(&old.url);
    let mut bots = Vec::new();
    for i in 1..=2 {
        bots.push(BotProcess::start(&old.url, &dir.path().join(format!("bot{i}")), &format!("ops-bot-{i}"), &[]).await?);
    }
    wait_bots(&prpc, 2).await?;
    // Both bots are parked in a long poll now (nothing to do); make sure a
    // poll is really parked by letting a task run first.
    let first = submit(&prpc, &task("before", &["true"], json!({}))).await?;
    assert_eq!(prpc.wait_final(&first, Duration::from_secs(60)).await?["state"], "COMPLETED");

    let successor = tokio::spawn({
        let data = data.clone();
        async move { ServerProcess::start(&exe(), &data, port, &["--wait-for-lock"]).await }
    });
    // The successor cannot start while the old server holds the data dir.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!successor.is_finished(), "the successor started while the old server held the lock");

    tokio::time::timeout(Duration::from_secs(15), old.stop())
        .await
        .map_err(|_| anyhow::anyhow!("the server did not exit within 15 s of SIGTERM (parked polls held it?)"))??;
    let new = tokio::time::timeout(Duration::from_secs(60), successor).await???;
    let prpc = Prpc::new(&new.url);
    let after = submit(&prpc, &task("after", &["true"], json!({}))).await?;
    let r = prpc.wait_final(&after, Duration::from_secs(60)).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let bot = r["botId"].as_str().unwrap_or_default();
    assert!(bot.starts_with("ops-bot-"), "ran on {bot:?}");
    new.stop().await?;
    Ok(())
}
