//! Crash safety (docs/design.md#storage-and-durability): kill -9 the server between acknowledged calls;
//! after restart every acknowledged task and output byte is there and
//! pending tasks are dispatched again.

use crate::common::{start_server, submit, task};
use muster_testkit::{wait_until, within, Prpc, ServerProcess, TestBot, PATIENCE};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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

/// What one protocol-level bot had acknowledged when the server died.
struct Acked {
    bot: String,
    run_id: String,
    /// Output bytes acknowledged, from offset 0.
    bytes: Vec<u8>,
    completed: bool,
}

/// Claims tasks and streams their output as fast as the server answers,
/// until the server goes away; returns everything the server acknowledged.
async fn busy_bot(url: String, name: String, acks: Arc<AtomicUsize>) -> Vec<Acked> {
    let mut bot = TestBot::new(&url, &name, "default", &[]);
    let mut acked = Vec::new();
    if bot.handshake().await.is_err() {
        return acked;
    }
    loop {
        let Ok(v) = bot.poll().await else { return acked };
        if v["cmd"] != "run" {
            continue;
        }
        let run_id = v["manifest"]["task_id"].as_str().unwrap_or_default().to_string();
        acks.fetch_add(1, Ordering::SeqCst);
        acked.push(Acked { bot: name.clone(), run_id: run_id.clone(), bytes: Vec::new(), completed: false });
        let Some(current) = acked.last_mut() else { return acked };
        for k in 0..5u8 {
            let data: Vec<u8> = (0..20_000u32).map(|i| (i as u8) ^ k ^ run_id.as_bytes()[3]).collect();
            match bot.output(&run_id, current.bytes.len() as u64, &data).await {
                Ok(r) if r["ok"] == true => current.bytes.extend_from_slice(&data),
                _ => return acked,
            }
            acks.fetch_add(1, Ordering::SeqCst);
        }
        match bot.complete(&run_id, 0, 0.1).await {
            Ok(r) if r["ok"] == true => current.completed = true,
            _ => return acked,
        }
        acks.fetch_add(1, Ordering::SeqCst);
    }
}

/// kill -9 while four bots claim tasks and stream output: after the restart
/// every claim, output byte and completion the server acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_claims_and_output_in_flight_survive_kill_9() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(dir.path(), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    for i in 0..60 {
        // Waiting for capacity: the bots connect after the tasks exist.
        let mut t = task(&format!("busy-{i}"), &["true"], json!({}));
        t["taskSlices"][0]["waitForCapacity"] = json!(true);
        submit(&prpc, &t).await?;
    }
    let acks = Arc::new(AtomicUsize::new(0));
    let bots: Vec<_> =
        (0..4).map(|i| tokio::spawn(busy_bot(srv.url.clone(), format!("busy-bot-{i}"), acks.clone()))).collect();
    // Kill in the middle of the traffic.
    wait_until("the bots to get 40 acknowledgements", PATIENCE, || acks.load(Ordering::SeqCst) >= 40).await?;
    let port = srv.port();
    srv.kill9().await?;
    let mut acked = Vec::new();
    for b in bots {
        acked.extend(within("a bot to notice the server is gone", PATIENCE, b).await??);
    }
    assert!(acked.len() >= 4, "claims were in flight: {}", acked.len());

    let srv = ServerProcess::start(&crate::common::exe(), dir.path(), port, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    for a in &acked {
        let summary = format!("{}0", &a.run_id[..a.run_id.len() - 1]);
        let r = prpc.result(&summary).await?;
        // A completion sent but not acknowledged may or may not have landed.
        let completion_in_flight = !a.completed && a.bytes.len() == 5 * 20_000;
        let ok = match r["state"].as_str() {
            Some("COMPLETED") => a.completed || completion_in_flight,
            Some("RUNNING") => !a.completed,
            _ => false,
        };
        assert!(ok, "task {summary} (completion acknowledged: {}): {r}", a.completed);
        assert_eq!(r["botId"], a.bot.as_str(), "task {summary} kept its claim: {r}");
        let out = prpc.stdout(&summary).await?;
        assert!(out.len() >= a.bytes.len(), "task {summary}: {} of {} acknowledged bytes", out.len(), a.bytes.len());
        assert!(out[..a.bytes.len()] == a.bytes[..], "task {summary}: acknowledged output differs");
    }
    srv.stop().await?;
    Ok(())
}
