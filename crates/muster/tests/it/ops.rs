//! Operating a server: the data-dir lock, restarts with real bots parked.

use crate::common::{exe, start_server, submit, task, wait_bots, BotProcess};
use muster_testkit::{Prpc, ServerProcess};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_second_server_on_a_data_dir_in_use_refuses_naming_the_holder() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = start_server(dir.path(), &[]).await?;
    let pid = first.pid().unwrap_or_default();
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(exe())
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("MUSTER_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await??;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second server started: {stderr}");
    assert!(stderr.contains(&format!("in use by another muster server (pid {pid})")), "{stderr}");
    assert!(!String::from_utf8_lossy(&second.stdout).contains("listening on"));
    // The first one is unaffected.
    Prpc::new(&first.url).ok("Bots", "CountBots", &json!({})).await?;
    first.stop().await?;
    Ok(())
}

/// SIGTERM answers the bots' parked polls at once, so the server exits well
/// before the 25 s long poll; a successor started with --wait-for-lock (as a
/// supervisor would, before the old one is gone) takes over the same bots.
#[tokio::test]
async fn sigterm_releases_parked_bots_and_a_successor_serves_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let old = start_server(&data, &[]).await?;
    let port = old.port();
    let prpc = Prpc::new(&old.url);
    let mut bots = Vec::new();
    for i in 1..=2 {
        bots.push(
            BotProcess::start(&old.url, &dir.path().join(format!("bot{i}")), &format!("ops-bot-{i}"), &[]).await?,
        );
    }
    wait_bots(&prpc, 2).await?;
    // Both bots are parked in a long poll now (nothing to do); make sure a
    // poll is really parked by letting a task run first.
    let first = submit(&prpc, &task("before", &["true"], json!({}))).await?;
    assert_eq!(prpc.wait_final(&first, Duration::from_secs(60)).await?["state"], "COMPLETED");

    let successor = tokio::spawn({
        let data = data.clone();
        async move { ServerProcess::start(&exe(), &data, port, &["--wait-for-lock"]).await }
    });
    // The successor cannot start while the old server holds the data dir.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!successor.is_finished(), "the successor started while the old server held the lock");

    tokio::time::timeout(Duration::from_secs(15), old.stop())
        .await
        .map_err(|_| anyhow::anyhow!("the server did not exit within 15 s of SIGTERM (parked polls held it?)"))??;
    let new = tokio::time::timeout(Duration::from_secs(60), successor).await???;
    let prpc = Prpc::new(&new.url);
    let after = submit(&prpc, &task("after", &["true"], json!({}))).await?;
    let r = prpc.wait_final(&after, Duration::from_secs(60)).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    let bot = r["botId"].as_str().unwrap_or_default();
    assert!(bot.starts_with("ops-bot-"), "ran on {bot:?}");
    new.stop().await?;
    Ok(())
}

/// Runs `muster <args> -S url` and returns (exit code, stdout, stderr).
async fn cli(url: &str, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(exe()).args(args).arg("-S").arg(url).stdin(std::process::Stdio::null()).output(),
    )
    .await??;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Waits until a task is RUNNING; returns its bot.
async fn wait_running(prpc: &Prpc, id: &str) -> anyhow::Result<String> {
    for _ in 0..600 {
        let r = prpc.result(id).await?;
        if r["state"] == "RUNNING" {
            return Ok(r["botId"].as_str().unwrap_or_default().to_string());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("task {id} did not start within 60 s")
}

/// Drain with real bots and the CLI: the running task finishes, nothing new
/// goes to the drained bot, a drained pool takes nothing (and `muster why`
/// says so), undrain resumes.
#[tokio::test]
async fn drained_bots_finish_their_task_and_take_no_more_until_undrained() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bots = [
        BotProcess::start(&srv.url, &dir.path().join("b1"), "drain-1", &[]).await?,
        BotProcess::start(&srv.url, &dir.path().join("b2"), "drain-2", &[]).await?,
    ];
    wait_bots(&prpc, 2).await?;

    let long = submit(&prpc, &task("long", &["sleep", "3"], json!({}))).await?;
    let drained = wait_running(&prpc, &long).await?;
    let other = if drained == "drain-1" { "drain-2" } else { "drain-1" };
    let (code, out, err) = cli(&srv.url, &["drain", "--bot", &drained, "--reason", "disk swap"]).await?;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("bot {drained}: drained (1 bot)\n"));
    let (code, out, _) = cli(&srv.url, &["drain", "--bot", &drained]).await?;
    assert_eq!((code, out), (0, format!("bot {drained}: already drained, nothing changed (1 bot)\n")));

    let mut after = Vec::new();
    for i in 0..3 {
        after.push(submit(&prpc, &task(&format!("after{i}"), &["true"], json!({}))).await?);
    }
    for id in &after {
        let r = prpc.wait_final(id, Duration::from_secs(60)).await?;
        assert_eq!((r["state"].as_str(), r["botId"].as_str()), (Some("COMPLETED"), Some(other)), "{r}");
    }
    let r = prpc.wait_final(&long, Duration::from_secs(60)).await?;
    assert_eq!((r["state"].as_str(), r["botId"].as_str()), (Some("COMPLETED"), Some(drained.as_str())), "{r}");
    let bot = prpc.ok("Bots", "GetBot", &json!({"botId": drained})).await?;
    assert_eq!(bot["maintenanceMsg"], format!("drained (bot {drained}): disk swap"));

    // The whole pool.
    let (code, out, err) = cli(&srv.url, &["drain", "--pool", "nope"]).await?;
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("no known bot is in pool \"nope\""), "{err}");
    let (code, out, _) = cli(&srv.url, &["drain", "--pool", "default"]).await?;
    assert_eq!((code, out.as_str()), (0, "pool default: drained (2 bots)\n"));
    let waiting = submit(&prpc, &task("waiting", &["true"], json!({}))).await?;
    let (code, out, _) = cli(&srv.url, &["why", "--json", &waiting]).await?;
    assert_eq!(code, 0, "{out}");
    let why: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(why["summary"], "all 2 matching bots are drained", "{why}");
    assert_eq!(why["slices"][0]["bots"]["drained"], 2, "{why}");
    // `tasks show` gives the same explanation under the task's facts.
    let (code, out, err) = cli(&srv.url, &["tasks", "show", &waiting]).await?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with(&format!("task {waiting}: waiting\n  state:    PENDING\n")), "{out}");
    assert!(out.contains(&format!("task {waiting} is PENDING: all 2 matching bots are drained\n")), "{out}");
    // Both bots keep polling (every second while in maintenance); give them
    // a few polls to prove they do not take it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(prpc.result(&waiting).await?["state"], "PENDING");

    let (code, out, _) = cli(&srv.url, &["undrain", "--pool", "default"]).await?;
    assert_eq!((code, out.as_str()), (0, "pool default: undrained (2 bots)\n"));
    let r = prpc.wait_final(&waiting, Duration::from_secs(60)).await?;
    assert_eq!((r["state"].as_str(), r["botId"].as_str()), (Some("COMPLETED"), Some(other)), "{r}");
    let (code, out, _) = cli(&srv.url, &["undrain", "--bot", &drained]).await?;
    assert_eq!((code, out), (0, format!("bot {drained}: undrained (1 bot)\n")));
    let (code, out, _) = cli(&srv.url, &["drains"]).await?;
    assert_eq!((code, out.as_str()), (0, "nothing is drained\n"));
    srv.stop().await?;
    Ok(())
}

/// One sample of the Prometheus text format: `name{k="v",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format (0.0.4): comments, metric names,
/// label values with `\\`, `\"` and `\n` escapes, float values (`+Inf`).
fn parse_exposition(text: &str) -> anyhow::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).ok_or_else(|| anyhow::anyhow!("no value in {line:?}"))?;
        let name = line[..name_end].to_string();
        anyhow::ensure!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        let mut labels = std::collections::BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            loop {
                let (start, c) = chars.next().ok_or_else(|| anyhow::anyhow!("unterminated labels in {line:?}"))?;
                if c == '}' {
                    rest = &r[start + 1..];
                    break;
                }
                if c == ',' {
                    continue;
                }
                let eq = r[start..].find('=').ok_or_else(|| anyhow::anyhow!("label without = in {line:?}"))? + start;
                let key = r[start..eq].to_string();
                while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                    chars.next();
                }
                anyhow::ensure!(chars.next().map(|(_, c)| c) == Some('"'), "unquoted label value in {line:?}");
                let mut value = String::new();
                loop {
                    match chars.next().map(|(_, c)| c) {
                        Some('"') => break,
                        Some('\\') => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(c @ ('\\' | '"')) => value.push(c),
                            other => anyhow::bail!("bad escape {other:?} in {line:?}"),
                        },
                        Some(c) => value.push(c),
                        None => anyhow::bail!("unterminated label value in {line:?}"),
                    }
                }
                labels.insert(key, value);
            }
        }
        let value_text = rest.split_whitespace().next().ok_or_else(|| anyhow::anyhow!("no value in {line:?}"))?;
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|e| anyhow::anyhow!("bad value {v:?} in {line:?}: {e}"))?,
        };
        out.push(Sample { name, labels, value });
    }
    Ok(out)
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
}

/// After a known workload, `/metrics` counts exactly it.
#[tokio::test]
async fn metrics_count_a_known_workload() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::start(&srv.url, &dir.path().join("b1"), "metrics-1", &[]).await?;
    wait_bots(&prpc, 1).await?;
    let mut ids = Vec::new();
    for (i, cmd) in [["true"], ["true"], ["false"]].iter().enumerate() {
        ids.push(submit(&prpc, &task(&format!("m{i}"), cmd, json!({}))).await?);
    }
    for id in &ids {
        assert_eq!(prpc.wait_final(id, Duration::from_secs(60)).await?["state"], "COMPLETED");
    }
    let mut nobody = task("nobody", &["true"], json!({}));
    nobody["taskSlices"][0]["properties"]["dimensions"] = json!([{"key": "pool", "value": "nope"}]);
    let r = prpc.ok("Tasks", "NewTask", &nobody).await?;
    assert_eq!(r["taskResult"]["state"], "NO_RESOURCE");

    let resp = reqwest::get(format!("{}/metrics", srv.url)).await?;
    assert_eq!(resp.status(), 200);
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = resp.text().await?;
    let s = parse_exposition(&text)?;
    let v = |name: &str, labels: &[(&str, &str)]| value_of(&s, name, labels);
    assert_eq!(v("muster_tasks_created_total", &[("pool", "default")]), Some(3.0), "{text}");
    assert_eq!(v("muster_tasks_finished_total", &[("pool", "default"), ("state", "COMPLETED")]), Some(3.0));
    assert_eq!(v("muster_tasks_created_total", &[("pool", "nope")]), Some(1.0));
    assert_eq!(v("muster_tasks_finished_total", &[("pool", "nope"), ("state", "NO_RESOURCE")]), Some(1.0));
    assert_eq!(v("muster_task_queue_wait_seconds_count", &[("pool", "default")]), Some(3.0));
    assert_eq!(v("muster_task_queue_wait_seconds_bucket", &[("pool", "default"), ("le", "+Inf")]), Some(3.0));
    assert_eq!(v("muster_task_dispatch_latency_seconds_count", &[("pool", "default")]), Some(3.0));
    assert_eq!(v("muster_tasks_pending", &[("pool", "default")]), None, "nothing pending was ever reported");
    assert_eq!(v("muster_bots", &[("pool", "default"), ("state", "idle")]), Some(1.0));
    assert_eq!(v("muster_config_reloads_total", &[]), Some(0.0));
    assert_eq!(v("muster_notification_backlog", &[]), Some(0.0));
    assert!(v("muster_store_commit_seconds_count", &[]).is_some_and(|n| n >= 7.0), "{text}");
    assert!(v("muster_store_batch_size_count", &[]).is_some_and(|n| n >= 1.0), "{text}");
    let newtask_ok = v("muster_http_requests_total", &[("route", "/prpc/{service}/{method}"), ("code", "200")]);
    assert!(newtask_ok.is_some_and(|n| n >= 4.0), "{text}");
    // Histogram buckets are cumulative.
    let mut buckets: Vec<(f64, f64)> = s
        .iter()
        .filter(|x| {
            x.name == "muster_task_queue_wait_seconds_bucket"
                && x.labels.get("pool").map(String::as_str) == Some("default")
        })
        .map(|x| (x.labels.get("le").map_or(f64::NAN, |le| le.parse().unwrap_or(f64::INFINITY)), x.value))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    // No series per bot or task.
    assert!(s.iter().all(|x| !x.labels.contains_key("bot_id") && !x.labels.contains_key("task_id")));
    srv.stop().await?;
    Ok(())
}

/// A backup taken while tasks are being created holds every task
/// acknowledged before it started; restored into a fresh data dir, a server
/// lists them all.
#[tokio::test]
async fn a_backup_under_load_restores_every_acknowledged_task() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let stop = tokio_util::sync::CancellationToken::new();
    let acked = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let load = {
        let (prpc, stop, acked) = (prpc.clone(), stop.clone(), acked.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                // No bot: every task stays PENDING (wait for capacity).
                let mut t = task(&format!("load{i}"), &["true"], json!({}));
                t["taskSlices"][0]["waitForCapacity"] = json!(true);
                match submit(&prpc, &t).await {
                    Ok(id) => acked.lock().await.push(id),
                    Err(e) => return Err(e),
                }
                i += 1;
            }
            Ok(())
        })
    };
    // Let some load build up, then back up in the middle of it.
    while acked.lock().await.len() < 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before: Vec<String> = acked.lock().await.clone();
    let file = dir.path().join("backup.db");
    let out = tokio::process::Command::new(exe()).args(["backup", "--data-dir"]).arg(&data).arg(&file).output().await?;
    assert!(out.status.success(), "backup failed: {}", String::from_utf8_lossy(&out.stderr));
    stop.cancel();
    load.await??;
    assert!(acked.lock().await.len() > before.len(), "the load ran during the backup");

    // Restore refuses while the server holds the data dir.
    let refused =
        tokio::process::Command::new(exe()).args(["restore", "--data-dir"]).arg(&data).arg(&file).output().await?;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("in use by another muster server"));
    srv.stop().await?;

    let restored = dir.path().join("restored");
    let out =
        tokio::process::Command::new(exe()).args(["restore", "--data-dir"]).arg(&restored).arg(&file).output().await?;
    assert!(out.status.success(), "restore failed: {}", String::from_utf8_lossy(&out.stderr));
    let srv = start_server(&restored, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let mut listed = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let page =
            prpc.ok("Tasks", "ListTasks", &json!({"state": "QUERY_ALL", "limit": 1000, "cursor": cursor})).await?;
        for t in page["items"].as_array().into_iter().flatten() {
            listed.insert(t["taskId"].as_str().unwrap_or_default().to_string());
        }
        cursor = page["cursor"].as_str().unwrap_or_default().to_string();
        if cursor.is_empty() {
            break;
        }
    }
    let missing: Vec<&String> = before.iter().filter(|id| !listed.contains(*id)).collect();
    assert!(missing.is_empty(), "{} acknowledged tasks missing after restore: {missing:?}", missing.len());
    srv.stop().await?;
    Ok(())
}
