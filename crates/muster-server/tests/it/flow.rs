//! The whole path: submit over pRPC, a bot polls, streams output, completes.

use muster_testkit::{wait_until, within, TestBot, TestServer, PATIENCE};
use serde_json::json;
use std::time::Duration;

/// A task created through pRPC JSON runs on a polling bot; output sent in
/// several chunks (one retried) reads back byte for byte; the result is
/// COMPLETED with the bot's exit code.
#[tokio::test]
async fn a_task_submitted_over_prpc_json_runs_and_its_output_reads_back_exactly() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let prpc = srv.prpc();
    let mut bot = TestBot::new(&srv.url, "bot-1", "default", &[("os", &["Linux"])]);
    bot.handshake().await?;

    let id = prpc.new_task("hello", "default", &["echo", "hi"]).await?;
    assert!(id.ends_with('0'), "summary id {id}");
    let manifest = bot.poll_until_run(5).await?;
    let run_id = manifest["task_id"].as_str().unwrap_or_default().to_string();
    assert_eq!(run_id, format!("{}1", &id[..id.len() - 1]));
    assert_eq!(manifest["command"], json!(["echo", "hi"]));
    assert_eq!(manifest["bot_id"], "bot-1");

    let running = prpc.result(&id).await?;
    assert_eq!(running["state"], "RUNNING");
    assert_eq!(running["botId"], "bot-1");

    let part1 = b"hello ".to_vec();
    let part2: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let part3 = b"\nbye\n".to_vec();
    bot.output(&run_id, 0, &part1).await?;
    let off2 = part1.len() as u64;
    bot.output(&run_id, off2, &part2).await?;
    // A retry of the same packet must not duplicate bytes.
    bot.output(&run_id, off2, &part2).await?;
    let off3 = off2 + part2.len() as u64;
    bot.output(&run_id, off3, &part3).await?;
    let reply = bot.complete(&run_id, 7, 1.5).await?;
    assert_eq!(reply["ok"], true);

    let done = prpc.result(&id).await?;
    assert_eq!(done["state"], "COMPLETED");
    assert_eq!(done["exitCode"], "7");
    assert_eq!(done["failure"], true);
    let mut want = part1.clone();
    want.extend_from_slice(&part2);
    want.extend_from_slice(&part3);
    let got = prpc.stdout(&id).await?;
    assert_eq!(got.len(), want.len());
    assert!(got == want, "stdout differs");

    // A retried final packet is accepted and changes nothing.
    let again = bot.complete(&run_id, 7, 1.5).await?;
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(prpc.result(&id).await?["state"], "COMPLETED");
    srv.stop().await;
    Ok(())
}

/// A bot parked in a long poll gets a new matching task without waiting
/// for its next poll.
#[tokio::test]
async fn a_parked_bot_is_handed_a_new_task_at_once() -> anyhow::Result<()> {
    let srv = TestServer::start_with(
        std::sync::Arc::new(muster_core::time::SystemClock),
        muster_sched::SchedConfig { long_poll: Duration::from_secs(120), ..Default::default() },
    )
    .await?;
    let prpc = srv.prpc();
    let mut bot = TestBot::new(&srv.url, "bot-parked", "default", &[]);
    bot.handshake().await?;
    let poll = tokio::spawn(async move { bot.poll().await });
    // The poll is parked before the task exists: only the wake can answer it
    // (the long poll outlasts the wait below).
    wait_until("the poll to park", PATIENCE, || srv.sched.parked_count() == 1).await?;
    let id = prpc.new_task("wake", "default", &["true"]).await?;
    let reply = within("the parked poll to be woken", Duration::from_secs(30), poll).await???;
    assert_eq!(reply["cmd"], "run", "{reply}");
    assert_eq!(
        reply["manifest"]["task_id"].as_str().map(|s| s[..s.len() - 1].to_string()),
        Some(id[..id.len() - 1].to_string())
    );
    srv.stop().await;
    Ok(())
}
