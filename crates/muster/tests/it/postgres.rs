//! `muster server --database postgres://...`: the same end-to-end flow on a
//! real PostgreSQL (started by the harness in a temp dir).

use crate::common::{start_server, submit, task, wait_bots, BotProcess};
use muster_testkit::{Prpc, ServerProcess, TempPostgres};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_server_on_postgresql_runs_tasks_and_keeps_them_across_a_restart() -> anyhow::Result<()> {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let db = pg.postgres_url(TempPostgres::db_name(&url));
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &["--database", &db]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "pg-bot", &[]).await?;
    wait_bots(&prpc, 1).await?;
    let id = submit(&prpc, &task("on-pg", &["sh", "-c", "echo stored in postgres"], json!({}))).await?;
    let r = prpc.wait_final(&id, Duration::from_secs(120)).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");

    let port = srv.port();
    srv.kill9().await?;
    let srv =
        ServerProcess::start(&crate::common::exe(), &dir.path().join("server"), port, &["--database", &db]).await?;
    let prpc = Prpc::new(&srv.url);
    assert_eq!(prpc.result(&id).await?["state"], "COMPLETED");
    let out = String::from_utf8_lossy(&prpc.stdout(&id).await?).to_string();
    assert!(out.contains("stored in postgres"), "{out}");
    srv.stop().await?;
    Ok(())
}
