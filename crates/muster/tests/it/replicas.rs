//! Several `muster server` replicas on one real PostgreSQL, real `muster
//! bot` processes running real commands: every task runs exactly once
//! whichever replica it was submitted to, results read the same from either
//! replica, and killing one replica mid-load loses no acknowledged task
//! (bots and the CLI are given both URLs and move to the survivor).

use crate::common::{exe, start_server, task, wait_bots, BotProcess};
use anyhow::Context;
use muster_testkit::{Prpc, ServerProcess, TempPostgres};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Two replicas on a fresh database.
pub(crate) async fn two_replicas(pg: &TempPostgres, dir: &Path) -> anyhow::Result<(ServerProcess, ServerProcess)> {
    let url = pg.create_database().await;
    let db = pg.postgres_url(TempPostgres::db_name(&url));
    let a = start_server(&dir.join("replica-a"), &["--database", &db]).await?;
    let b = start_server(&dir.join("replica-b"), &["--database", &db]).await?;
    Ok((a, b))
}

/// The lines of the file every task appends its marker to.
fn markers(log: &Path) -> anyhow::Result<BTreeMap<String, usize>> {
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        *seen.entry(line.to_string()).or_insert(0) += 1;
    }
    Ok(seen)
}

fn marker_task(name: &str, log: &Path, extra: &str) -> Value {
    let script = format!("{extra}echo {name} >> {}", log.display());
    task(name, &["sh", "-c", &script], json!({}))
}

/// Waits until every task is final, as seen through `prpc` (hang guard).
async fn wait_all_final(prpc: &Prpc, ids: &[String], limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    for id in ids {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        prpc.wait_final(id, left.max(Duration::from_secs(1))).await.with_context(|| format!("task {id}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_a_thousand_tasks_exactly_once_and_agree_on_the_results() -> anyhow::Result<()> {
    let pg = TempPostgres::start();
    let dir = tempfile::tempdir()?;
    let (a, b) = two_replicas(&pg, dir.path()).await?;
    let (pa, pb) = (Prpc::new(&a.url), Prpc::new(&b.url));
    // The fleet is split: three bots talk only to a, three only to b.
    let mut bots = Vec::new();
    for i in 0..3 {
        bots.push(BotProcess::start(&a.url, &dir.path().join(format!("bot-a{i}")), &format!("bot-a{i}"), &[]).await?);
        bots.push(BotProcess::start(&b.url, &dir.path().join(format!("bot-b{i}")), &format!("bot-b{i}"), &[]).await?);
    }
    // Each replica knows every bot, including the other's.
    wait_bots(&pa, 6).await?;
    wait_bots(&pb, 6).await?;

    let log = dir.path().join("runs.log");
    let n = 1000usize;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut submitters = Vec::new();
    for _ in 0..8 {
        let (pa, pb, log, next) = (pa.clone(), pb.clone(), log.clone(), next.clone());
        submitters.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(ids);
                }
                let mut body = marker_task(&format!("t{i:04}"), &log, "");
                body["requestUuid"] = json!(format!("replicas-{i}"));
                let via = if i % 2 == 0 { &pa } else { &pb };
                let v = via.ok("Tasks", "NewTask", &body).await?;
                ids.push(v["taskId"].as_str().context("no taskId")?.to_string());
            }
        }));
    }
    let mut ids = Vec::new();
    for s in submitters {
        ids.extend(s.await??);
    }
    assert_eq!(ids.len(), n);
    wait_all_final(&pa, &ids, Duration::from_secs(600)).await?;

    let mut ran_on: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let (ra, rb) = (pa.result(id).await?, pb.result(id).await?);
        assert_eq!(ra["state"], "COMPLETED", "{ra}");
        assert_eq!(ra, rb, "the replicas disagree on {id}");
        assert_eq!(ra.get("exitCode").and_then(Value::as_i64).unwrap_or(0), 0, "{ra}");
        *ran_on.entry(ra["botId"].as_str().unwrap_or("").chars().take(5).collect()).or_insert(0) += 1;
    }
    // Both halves of the fleet did work: tasks crossed replicas.
    assert!(ran_on.get("bot-a").is_some_and(|c| *c > 0) && ran_on.get("bot-b").is_some_and(|c| *c > 0), "{ran_on:?}");
    // Exactly once: each task's marker is in the log once.
    let seen = markers(&log)?;
    assert_eq!(seen.len(), n, "{} distinct markers", seen.len());
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c != 1).collect();
    assert!(twice.is_empty(), "tasks that ran more than once: {twice:?}");
    a.stop().await?;
    b.stop().await?;
    Ok(())
}

/// `muster trigger -S A,B`: the task id on success, None when the CLI failed.
async fn trigger(servers: &str, name: &str, script: &str) -> anyhow::Result<Option<String>> {
    let out = tokio::process::Command::new(exe())
        .args(["trigger", "-S", servers, "-d", "pool=default", "--json", "--task-name", name, "--", "sh", "-c", script])
        .output()
        .await?;
    if !out.status.success() {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("trigger output: {}", String::from_utf8_lossy(&out.stdout)))?;
    let t = &v["tasks"][0];
    Ok(t.get("task_id").or(t.get("taskId")).and_then(Value::as_str).map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_replica_mid_load_loses_no_acknowledged_task() -> anyhow::Result<()> {
    let pg = TempPostgres::start();
    let dir = tempfile::tempdir()?;
    let (a, b) = two_replicas(&pg, dir.path()).await?;
    let both_ab = format!("{},{}", a.url, b.url);
    let both_ba = format!("{},{}", b.url, a.url);
    let mut bots = Vec::new();
    for i in 0..2 {
        // Half the bots prefer a, half prefer b; all know both.
        bots.push(
            BotProcess::start(&both_ab, &dir.path().join(format!("bot-ab{i}")), &format!("bot-ab{i}"), &[]).await?,
        );
        bots.push(
            BotProcess::start(&both_ba, &dir.path().join(format!("bot-ba{i}")), &format!("bot-ba{i}"), &[]).await?,
        );
    }
    let pb = Prpc::new(&b.url);
    wait_bots(&pb, 4).await?;

    let log = dir.path().join("runs.log");
    let total = 120usize;
    let kill_after = 40usize;
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut a = Some(a);
    for i in 0..total {
        if i == kill_after {
            if let Some(a) = a.take() {
                a.kill9().await?;
            }
        }
        let name = format!("k{i:03}");
        // Some tasks take a while, so some are running when a dies.
        let script = format!("sleep 0.{}; echo {name} >> {}", i % 4, log.display());
        if let Some(id) = trigger(&both_ab, &name, &script).await? {
            acked.push((id, name));
        }
    }
    // Before the kill every trigger succeeds; after it, the CLI moves to b.
    assert_eq!(acked.len(), total, "the CLI failed some triggers");
    let ids: Vec<String> = acked.iter().map(|(id, _)| id.clone()).collect();
    wait_all_final(&pb, &ids, Duration::from_secs(600)).await?;
    for (id, _) in &acked {
        let r = pb.result(id).await?;
        assert_eq!(r["state"], "COMPLETED", "acknowledged task {id} ended {r}");
    }
    let seen = markers(&log)?;
    for (id, name) in &acked {
        assert_eq!(seen.get(name).copied().unwrap_or(0), 1, "task {id} ({name}) ran {:?} times", seen.get(name));
    }
    b.stop().await?;
    Ok(())
}
