//! A task printing more than the 100 MiB a task's output keeps: the task
//! completes normally, the first 100 MiB are stored byte for byte and
//! nothing past the cap.

use crate::common::{start_server, submit, task, wait_bots, BotProcess};
use muster_testkit::Prpc;
use serde_json::json;
use std::time::Duration;

const CAP: u64 = muster_store::OUTPUT_CHUNK_SIZE * muster_store::OUTPUT_MAX_CHUNKS;
const LINE: &[u8] = b"0123456789abcdef\n";

async fn stdout_at(prpc: &Prpc, id: &str, offset: u64, length: u64) -> anyhow::Result<Vec<u8>> {
    let v = prpc.ok("Tasks", "GetStdout", &json!({"taskId": id, "offset": offset, "length": length})).await?;
    muster_api::bot::decode_b64(v["output"].as_str().unwrap_or_default()).map_err(|e| anyhow::anyhow!(e))
}

#[tokio::test]
async fn output_past_the_cap_is_dropped_and_the_task_completes() -> anyhow::Result<()> {
    assert_eq!(CAP, 100 * 1024 * 1024);
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "cap-bot", &["--no-self-update"]).await?;
    wait_bots(&prpc, 1).await?;
    // 110 MiB of numbered-free, position-checkable lines.
    let total = CAP + 10 * 1024 * 1024;
    let script = format!("yes 0123456789abcdef | head -c {total}");
    let id = submit(&prpc, &task("flood", &["sh", "-c", &script], json!({"executionTimeoutSecs": 600}))).await?;
    let r = prpc.wait_final(&id, Duration::from_secs(600)).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert!(r.get("exitCode").is_none(), "the command succeeded: {r}");

    let expect = |from: u64, n: u64| -> Vec<u8> { (from..from + n).map(|i| LINE[(i % 17) as usize]).collect() };
    assert_eq!(stdout_at(&prpc, &id, 0, 1000).await?, expect(0, 1000), "the start is stored as printed");
    assert_eq!(stdout_at(&prpc, &id, CAP - 1000, 4000).await?, expect(CAP - 1000, 1000), "stored up to the cap");
    assert!(stdout_at(&prpc, &id, CAP, 1000).await?.is_empty(), "nothing past the cap is stored");
    srv.stop().await
}
