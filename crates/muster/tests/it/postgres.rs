//! `muster server --database postgres://...`: the same end-to-end flow on a
//! real PostgreSQL (started by the harness in a temp dir).

use crate::common::{start_server, submit, task, wait_bots, BotProcess};
use muster_store::Store as _;
use muster_testkit::{Prpc, ServerProcess, TempPostgres, PATIENCE};
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
/// events) into PostgreSQL: a server on the copy serves the same data, the
/// task that was running finishes there (its bot reconnects), the pending
/// one runs there, and a second run copies nothing twice.
#[tokio::test]
async fn muster_migrate_copies_a_sqlite_database_into_postgresql() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "migrating-bot", &["--no-self-update"]).await?;
    wait_bots(&prpc, 1).await?;
    let big = submit(&prpc, &task("big", &["sh", "-c", "seq 1 40000"], json!({}))).await?;
    let failed = submit(&prpc, &task("failed", &["sh", "-c", "echo bad; exit 5"], json!({}))).await?;
    for id in [&big, &failed] {
        prpc.wait_final(id, Duration::from_secs(120)).await?;
    }
    // Running on the bot while the server stops and the data moves.
    let gate = dir.path().join("gate");
    let running = submit(
        &prpc,
        &task(
            "running",
            &[
                "sh",
                "-c",
                &format!("echo started; while [ ! -e {} ]; do sleep 0.2; done; echo finished", gate.display()),
            ],
            json!({}),
        ),
    )
    .await?;
    prpc.wait_running(&running, "started", PATIENCE).await?;
    // Waiting for a bot that only the PostgreSQL server will have.
    let needs_gpu = json!({"dimensions": [{"key": "pool", "value": "default"}, {"key": "gpu", "value": "late"}]});
    let mut pending_body = task("waiting", &["sh", "-c", "echo ran after migration"], needs_gpu);
    pending_body["taskSlices"][0]["waitForCapacity"] = json!(true);
    let pending = submit(&prpc, &pending_body).await?;
    assert_eq!(prpc.result(&pending).await?["state"], "PENDING");
    let big_out = prpc.stdout(&big).await?;
    assert!(big_out.len() > 200_000, "output spans several chunks: {}", big_out.len());
    let events_before = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "migrating-bot", "limit": 1000})).await?;
    let port = srv.port();
    srv.stop().await?;

    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let db = pg.postgres_url(TempPostgres::db_name(&url));
    let from = format!("sqlite://{}", data.join("muster.db").display());
    let out = tokio::process::Command::new(crate::common::exe()).args(["migrate", &from, &db]).output().await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("migrated 4 tasks (0 already there), 1 bots"), "{text}");
    assert!(text.contains("and the bot session key"), "{text}");
    // Bots keep their sessions: the key moved with the data.
    let sqlite = muster_store::SqliteStore::open(&data.join("muster.db"))?;
    let postgres = muster_store::PostgresStore::connect(&db).await?;
    let (k1, k2) = (sqlite.get_meta("session_key").await?, postgres.get_meta("session_key").await?);
    assert!(k1.as_ref().is_some_and(|k| k.len() >= 32), "the server stored a session key");
    assert_eq!(k1, k2);
    drop((sqlite, postgres));
    let again = tokio::process::Command::new(crate::common::exe()).args(["migrate", &from, &db]).output().await?;
    assert!(String::from_utf8_lossy(&again.stdout).contains("migrated 0 tasks (4 already there)"));

    // The PostgreSQL server takes the old one's address: the bot comes back.
    let srv =
        ServerProcess::start(&crate::common::exe(), &dir.path().join("server-pg"), port, &["--database", &db]).await?;
    let prpc = Prpc::new(&srv.url);
    assert_eq!(prpc.result(&big).await?["state"], "COMPLETED");
    assert!(prpc.stdout(&big).await? == big_out, "output differs after migration");
    let r = prpc.result(&failed).await?;
    assert_eq!((r["state"].clone(), r["exitCode"].clone()), (json!("COMPLETED"), json!("5")));
    assert_eq!(prpc.result(&running).await?["state"], "RUNNING", "copied while running");
    std::fs::write(&gate, b"")?;
    let r = prpc.wait_final(&running, Duration::from_secs(120)).await?;
    assert_eq!(r["state"], "COMPLETED", "the running task finished on PostgreSQL: {r}");
    let out = String::from_utf8_lossy(&prpc.stdout(&running).await?).to_string();
    assert!(out.contains("started") && out.contains("finished"), "{out}");
    let _gpu_bot = BotProcess::start(
        &srv.url,
        &dir.path().join("gpu-bot"),
        "gpu-bot",
        &["--no-self-update", "--dimension", "gpu=late"],
    )
    .await?;
    let r = prpc.wait_final(&pending, Duration::from_secs(120)).await?;
    assert_eq!(r["state"], "COMPLETED", "the pending task ran on PostgreSQL: {r}");
    assert!(String::from_utf8_lossy(&prpc.stdout(&pending).await?).contains("ran after migration"));
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

/// A migration that stops partway (the destination fails after two tasks)
/// is finished by running it again: the copied tasks are skipped, the rest
/// copied, and nothing is there twice.
#[tokio::test]
async fn muster_migrate_run_again_after_an_interruption_copies_the_rest() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = task(&format!("m{i}"), &["true"], json!({}));
        body["taskSlices"][0]["waitForCapacity"] = json!(true);
        ids.push(submit(&prpc, &body).await?);
    }
    srv.stop().await?;

    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let db = pg.postgres_url(TempPostgres::db_name(&url));
    drop(muster_store::PostgresStore::connect(&db).await?);
    // The destination fails once it holds two tasks, like a disk filling up.
    let admin = pg.connect(TempPostgres::db_name(&url)).await;
    admin
        .batch_execute(
            "CREATE FUNCTION refuse_third() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF (SELECT count(*) FROM task_request) >= 2 THEN RAISE EXCEPTION 'no space left (test)'; END IF; \
               RETURN NEW; END $$; \
             CREATE TRIGGER refuse_third BEFORE INSERT ON task_request FOR EACH ROW EXECUTE FUNCTION refuse_third();",
        )
        .await?;
    let from = format!("sqlite://{}", data.join("muster.db").display());
    let migrate = || tokio::process::Command::new(crate::common::exe()).args(["migrate", &from, &db]).output();
    let out = migrate().await?;
    assert!(!out.status.success(), "the first run must be interrupted");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("writing task"), "it stopped at the refused task: {err}");

    admin.batch_execute("DROP TRIGGER refuse_third ON task_request").await?;
    let out = migrate().await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("migrated 3 tasks (2 already there)"), "{text}");
    let count: i64 = admin.query_one("SELECT count(*) FROM task_request", &[]).await?.get(0);
    assert_eq!(count, 5);
    let srv = start_server(&dir.path().join("server-pg"), &["--database", &db]).await?;
    let prpc = Prpc::new(&srv.url);
    for id in &ids {
        assert_eq!(prpc.result(id).await?["state"], "PENDING", "task {id}");
    }
    srv.stop().await?;
    Ok(())
}
