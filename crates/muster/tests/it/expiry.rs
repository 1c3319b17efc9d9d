//! Deadlines that pass while the server is down: after a restart the task
//! moves on to its next slice (and runs there), or expires if it has none.

use crate::common::{exe, start_server, submit, BotProcess};
use muster_testkit::{Prpc, ServerProcess, PATIENCE};
use serde_json::{json, Value};
use std::time::Duration;

fn slice(expiration_secs: u64, dims: Value) -> Value {
    json!({"expirationSecs": expiration_secs, "waitForCapacity": true, "properties": {
        "command": ["sh", "-c", "echo ran"], "dimensions": dims,
        "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 2}})
}

#[tokio::test]
async fn a_slice_deadline_passing_while_the_server_is_down_falls_back_or_expires() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let nobody = json!([{"key": "pool", "value": "default"}, {"key": "gpu", "value": "none-here"}]);
    let anybody = json!([{"key": "pool", "value": "default"}]);
    // First slice: 30 s (the shortest allowed) for a bot nobody has; then
    // any bot of the pool.
    let submitted = tokio::time::Instant::now();
    let fallback = submit(
        &prpc,
        &json!({"name": "fallback", "priority": 100,
                "taskSlices": [slice(30, nobody.clone()), slice(600, anybody)]}),
    )
    .await?;
    let lone = submit(&prpc, &json!({"name": "lone", "priority": 100, "taskSlices": [slice(30, nobody)]})).await?;
    assert_eq!(prpc.result(&fallback).await?["state"], "PENDING");
    assert_eq!(prpc.result(&lone).await?["state"], "PENDING");
    let port = srv.port();
    srv.kill9().await?;
    // Let the 30 s deadlines pass with no server running.
    tokio::time::sleep_until(submitted + Duration::from_secs(32)).await;

    let srv = ServerProcess::start(&exe(), &data, port, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let r = prpc.wait_final(&lone, PATIENCE).await?;
    assert_eq!(r["state"], "EXPIRED", "{r}");
    let _bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "fallback-bot", &["--no-self-update"]).await?;
    let r = prpc.wait_final(&fallback, PATIENCE).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert_eq!(r["currentTaskSlice"], 1, "it ran on its second slice: {r}");
    srv.stop().await
}
