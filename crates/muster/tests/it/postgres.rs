//! `muster server --database postgres://...`: the same end-to-end flow on a
//! real PostgreSQL (started by the harness in a temp dir).

use crate::common::{start_server, submit, task, wait_bots, BotProcess};
use muster_store::Store as _;
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

/// `muster migrate` copies a real SQLite database (tasks, output, bots,
/// events) into PostgreSQL; a server on the copy serves the same data, and a
/// second run copies nothing twice.
#[tokio::test]
async fn muster_migrate_copies_a_sqlite_database_into_postgresql() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "migrating-bot", &[]).await?;
    wait_bots(&prpc, 1).await?;
    let big = submit(&prpc, &task("big", &["sh", "-c", "seq 1 40000"], json!({}))).await?;
    let failed = submit(&prpc, &task("failed", &["sh", "-c", "echo bad; exit 5"], json!({}))).await?;
    for id in [&big, &failed] {
        prpc.wait_final(id, Duration::from_secs(120)).await?;
    }
    let pending = submit(
        &prpc,
        &task(
            "waiting",
            &["true"],
            json!({"dimensions": [{"key": "pool", "value": "default"}, {"key": "gpu", "value": "none-here"}]}),
        ),
    )
    .await;
    // With no matching bot the task ends NO_RESOURCE at once: copied as is.
    let pending = pending?;
    let big_out = prpc.stdout(&big).await?;
    assert!(big_out.len() > 200_000, "output spans several chunks: {}", big_out.len());
    let events_before = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "migrating-bot", "limit": 1000})).await?;
    srv.stop().await?;

    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let db = pg.postgres_url(TempPostgres::db_name(&url));
    let from = format!("sqlite://{}", data.join("muster.db").display());
    let out = tokio::process::Command::new(crate::common::exe()).args(["migrate", &from, &db]).output().await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("migrated 3 tasks (0 already there), 1 bots"), "{text}");
    assert!(text.contains("and the bot session key"), "{text}");
    // Bots keep their sessions: the key moved with the data.
    let sqlite = muster_store::SqliteStore::open(&data.join("muster.db"))?;
    let postgres = muster_store::PostgresStore::connect(&db).await?;
    let (k1, k2) = (sqlite.get_meta("session_key").await?, postgres.get_meta("session_key").await?);
    assert!(k1.as_ref().is_some_and(|k| k.len() >= 32), "the server stored a session key");
    assert_eq!(k1, k2);
    drop((sqlite, postgres));
    let again = tokio::process::Command::new(crate::common::exe()).args(["migrate", &from, &db]).output().await?;
    assert!(String::from_utf8_lossy(&again.stdout).contains("migrated 0 tasks (3 already there)"));

    let srv = start_server(&dir.path().join("server-pg"), &["--database", &db]).await?;
    let prpc = Prpc::new(&srv.url);
    assert_eq!(prpc.result(&big).await?["state"], "COMPLETED");
    assert!(prpc.stdout(&big).await? == big_out, "output differs after migration");
    let r = prpc.result(&failed).await?;
    assert_eq!((r["state"].clone(), r["exitCode"].clone()), (json!("COMPLETED"), json!("5")));
    assert_eq!(prpc.result(&pending).await?["name"], "waiting");
    let bot = prpc.ok("Bots", "GetBot", &json!({"botId": "migrating-bot"})).await?;
    assert_eq!(bot["botId"], "migrating-bot");
    let events_after = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "migrating-bot", "limit": 1000})).await?;
    let kinds = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["eventType"].as_str().map(str::to_string))
            .collect()
    };
    let (before, after) = (kinds(&events_before), kinds(&events_after));
    assert!(!after.is_empty());
    assert!(after.len() >= before.len(), "{before:?} -> {after:?}");
    assert_eq!(after[after.len() - before.len()..], before[..], "history kept in order");
    srv.stop().await?;
    Ok(())
}
