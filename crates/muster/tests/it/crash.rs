//! Crash safety (docs/design.md#storage-and-durability): kill -9 the server between acknowledged calls;
//! after restart every acknowledged task and output byte is there and
//! pending tasks are dispatched again.

use crate::common::{start_server, submit, task};
use muster_testkit::{Prpc, ServerProcess, TestBot};
use serde_json::json;

#[tokio::test]
async fn acknowledged_tasks_and_output_survive_kill_9() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(dir.path(), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let mut bot = TestBot::new(&srv.url, "crash-bot", "default", &[]);
    bot.handshake().await?;

    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(submit(&prpc, &task(&format!("t{i}"), &["echo", "x"], json!({}))).await?);
    }
    let manifest = bot.poll_until_run(5).await?;
    let run_id = manifest["task_id"].as_str().unwrap_or_default().to_string();
    let running_summary = format!("{}0", &run_id[..run_id.len() - 1]);
    let out: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    bot.output(&run_id, 0, &out).await?;

    let port = srv.port();
    srv.kill9().await?;
    let srv = ServerProcess::start(&crate::common::exe(), dir.path(), port, &[]).await?;
    let prpc = Prpc::new(&srv.url);

    // Every acknowledged task is there.
    let mut pending = 0;
    for id in &ids {
        let r = prpc.result(id).await?;
        match r["state"].as_str() {
            Some("PENDING") => pending += 1,
            Some("RUNNING") => assert_eq!(id, &running_summary),
            other => panic!("task {id} in unexpected state {other:?}"),
        }
    }
    assert_eq!(pending, ids.len() - 1);
    // Every acknowledged output byte is there.
    assert!(prpc.stdout(&running_summary).await? == out, "output lost across kill -9");

    // The running task can still be completed by its bot (session key persisted).
    let reply = bot.complete(&run_id, 0, 1.0).await?;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(prpc.result(&running_summary).await?["state"], "COMPLETED");

    // Pending tasks are dispatched again.
    let mut other = TestBot::new(&srv.url, "after-restart", "default", &[]);
    other.handshake().await?;
    let m = other.poll_until_run(5).await?;
    let got = m["task_id"].as_str().unwrap_or_default();
    assert!(ids.iter().any(|id| id[..id.len() - 1] == got[..got.len() - 1]));
    srv.stop().await?;
    Ok(())
}
