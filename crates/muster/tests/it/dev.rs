//! `muster dev`: the first thing a new user runs.

use crate::common::{exe, submit, task, wait_bots};
use anyhow::Context;
use muster_testkit::Prpc;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn muster_dev_runs_a_task_out_of_the_box_and_stops_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(exe())
        .args(["dev", "--port", "0", "--bots", "2", "--data-dir"])
        .arg(dir.path())
        .env("MUSTER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting muster dev")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut url = None;
    let mut printed = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await?? {
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("muster dev: server ") {
            url = rest.split_whitespace().next().map(str::to_string);
        }
        if line.contains("muster run") {
            break;
        }
    }
    let url = url.with_context(|| format!("no server URL in {printed:?}"))?;
    assert!(printed.iter().any(|l| l.contains("web UI")), "{printed:?}");
    let prpc = Prpc::new(&url);
    wait_bots(&prpc, 2).await?;
    let id = submit(&prpc, &task("dev-hello", &["sh", "-c", "echo hello from $SWARMING_BOT_ID"], json!({}))).await?;
    let r = prpc.wait_final(&id, Duration::from_secs(120)).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let out = String::from_utf8_lossy(&prpc.stdout(&id).await?).to_string();
    assert!(out.contains("hello from dev-bot-"), "{out}");

    let pid = child.id().context("no pid")?;
    tokio::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await?;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await??;
    assert!(status.success(), "muster dev exit status {status}");
    Ok(())
}
