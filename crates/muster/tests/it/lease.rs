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

/// The value of `muster_sweeps_total{lease="<lease>"}` on a server.
async fn sweeps(url: &str, lease: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    let prefix = format!("muster_sweeps_total{{lease=\"{lease}\"}} ");
    Ok(text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0))
}

async fn wait_sweeps(url: &str, lease: &str, n: f64, what: &str) -> anyhow::Result<()> {
    wait_for(what, PATIENCE, || async { Ok((sweeps(url, lease).await? >= n).then_some(())) }).await
}

/// Whether GetResult still finds the task.
async fn exists(prpc: &Prpc, id: &str) -> anyhow::Result<bool> {
    let r = prpc.call("Tasks", "GetResult", &json!({"taskId": id})).await?;
    anyhow::ensure!(r.code == 0 || r.code == 5, "GetResult: {}", r.text);
    Ok(r.code == 0)
}

/// Retention is a deployment-wide sweep: only the replica holding the lease
/// deletes. Replica B, configured to keep one day, runs its sweep rounds
/// without the lease and deletes nothing while A (keeping everything) holds
/// it; once A's process is killed, B takes the lease and its retention
/// deletes the month-old task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_only_on_the_replica_holding_the_sweep_lease() -> anyhow::Result<()> {
    use muster_core::{Clock as _, TaskId, TaskState};
    use muster_store::{conformance, Store as _, Txn, Write};
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let db = pg.postgres_url(TempPostgres::db_name(&url));
    // A task that finished a month ago, as on a deployment that ran for a while.
    let old = muster_core::time::SystemClock.now() - chrono::Duration::days(30);
    let req = conformance::request(TaskId::new(old, 7), old, &["story:retention"]);
    let mut res = conformance::pending(&req);
    res.state = TaskState::Completed;
    res.bot_id = "gone-bot".to_string();
    res.try_number = Some(1);
    res.started = Some(old + chrono::Duration::seconds(1));
    res.completed = Some(old + chrono::Duration::seconds(2));
    let store = muster_store::PostgresStore::connect(&db).await?;
    let txn = Txn::new().with(Write::InsertTask { request: Box::new(req.clone()), result: Box::new(res) });
    store.commit(txn).await?;
    drop(store);
    let id = req.id.summary_id();

    let dir = tempfile::tempdir()?;
    let a = start_server(&dir.path().join("replica-a"), &["--database", db.as_str(), "--retention-days", "0"]).await?;
    wait_sweeps(&a.url, "held", 1.0, "replica A to hold the sweep lease").await?;
    let b = start_server(&dir.path().join("replica-b"), &["--database", db.as_str(), "--retention-days", "1"]).await?;
    let pb = Prpc::new(&b.url);
    wait_sweeps(&b.url, "not_held", 3.0, "replica B to run three sweep rounds without the lease").await?;
    assert_eq!(sweeps(&b.url, "held").await?, 0.0, "B held the lease while A lived");
    assert!(exists(&pb, &id).await?, "a replica without the lease deleted an old task");

    a.kill9().await?;
    wait_for("B to take the lease and delete the old task", PATIENCE, || async {
        Ok((!exists(&pb, &id).await?).then_some(()))
    })
    .await?;
    assert!(sweeps(&b.url, "held").await? >= 1.0);
    b.stop().await
}
