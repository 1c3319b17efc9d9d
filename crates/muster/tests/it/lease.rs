//! The deployment-wide sweeps (here: declaring silent bots dead) run on one
//! replica, the holder of the database lease. When that replica's process
//! dies (kill -9, no goodbye), another replica takes the lease over and the
//! sweeps go on.

use crate::common::start_server;
use muster_testkit::{wait_for, Prpc, TempPostgres, TestBot, PATIENCE};
use serde_json::json;

/// Waits until the server reports `bot` dead.
async fn wait_dead(prpc: &Prpc, bot: &str) -> anyhow::Result<()> {
    wait_for(&format!("{bot} to be declared dead"), PATIENCE, || async {
        let b = prpc.ok("Bots", "GetBot", &json!({"botId": bot})).await?;
        Ok((b["isDead"] == true).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_replica_running_the_sweeps_hands_them_to_another() -> anyhow::Result<()> {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let db = pg.postgres_url(TempPostgres::db_name(&url));
    let dir = tempfile::tempdir()?;
    let flags = ["--database", db.as_str(), "--bot-death-timeout-secs", "10"];
    // A alone: it takes the lease, as its declaring a silent bot dead shows.
    let a = start_server(&dir.path().join("replica-a"), &flags).await?;
    let pa = Prpc::new(&a.url);
    TestBot::new(&a.url, "silent-on-a", "default", &[]).handshake().await?;
    wait_dead(&pa, "silent-on-a").await?;
    // B joins; A keeps the lease while it lives. Then A dies.
    let b = start_server(&dir.path().join("replica-b"), &flags).await?;
    let pb = Prpc::new(&b.url);
    a.kill9().await?;
    // Only a lease holder declares bots dead: this one is, only if B took over.
    TestBot::new(&b.url, "silent-on-b", "default", &[]).handshake().await?;
    wait_dead(&pb, "silent-on-b").await?;
    b.stop().await
}
