//! Scheduled jobs end to end (docs/jobs.md): real server processes reading
//! `<config-dir>/jobs.toml`, a real `muster bot` running the jobs' tasks,
//! the `muster jobs` verbs, kill -9 in the middle of a launch, and two
//! replicas on one PostgreSQL.

use crate::common::{exe, start_server, BotProcess};
use muster_testkit::{wait_for, Prpc, ServerProcess, TempPostgres, PATIENCE};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const SCHED: &str = "scheduler.Scheduler";

fn write_config(dir: &Path, toml: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("jobs.toml"), toml)?;
    Ok(())
}

async fn invocations(prpc: &Prpc, project: &str, job: &str) -> anyhow::Result<Vec<Value>> {
    let r = prpc.call_full(SCHED, "GetInvocations", &json!({"jobRef": {"project": project, "job": job}})).await?;
    if r.code == 5 {
        return Ok(vec![]); // not loaded yet
    }
    anyhow::ensure!(r.code == 0, "GetInvocations {project}/{job}: {}", r.text);
    Ok(r.json["invocations"].as_array().cloned().unwrap_or_default())
}

async fn wait_runs(prpc: &Prpc, job: &str, status: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    wait_for(&format!("{n} {status} run(s) of {job}"), PATIENCE, || async {
        let invs = invocations(prpc, "e2e", job).await?;
        let done: Vec<Value> = invs.into_iter().filter(|i| i["status"] == status).collect();
        Ok((done.len() >= n).then_some(done))
    })
    .await
}

async fn cli(server: &str, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = tokio::process::Command::new(exe()).arg("jobs").args(args).arg("-S").arg(server).output().await?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    ))
}

async fn job_state(prpc: &Prpc, job: &str) -> anyhow::Result<Value> {
    let r = prpc.call_full(SCHED, "GetJobs", &json!({"project": "e2e"})).await?;
    let jobs = r.json["jobs"].as_array().cloned().unwrap_or_default();
    jobs.into_iter()
        .find(|j| j["jobRef"]["job"] == job)
        .ok_or_else(|| anyhow::anyhow!("job {job} not listed: {}", r.text))
}

const CONFIG: &str = r#"
project = "e2e"

[[job]]
id = "tick"
schedule = "with 2s interval"
triggers = ["after"]
[job.muster]
pool = "default"
command = ["sh", "-c", "echo tick-output"]
execution_timeout = "60s"

[[job]]
id = "after"
[job.noop]

[[job]]
id = "long"
[job.muster]
pool = "default"
command = ["sleep", "300"]
grace_period = "1s"
"#;

#[tokio::test]
async fn a_scheduled_job_runs_on_a_real_bot_chains_and_obeys_the_cli() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    write_config(&config, CONFIG)?;
    let cfg = config.to_string_lossy().to_string();
    let srv = start_server(&dir.path().join("server"), &["--config-dir", &cfg, "--jobs-reload-secs", "1"]).await?;
    let prpc = Prpc::new(&srv.url);
    let _bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "jobs-bot", &[]).await?;

    // Two runs of the 2 s job, each a task on the bot.
    let runs = wait_runs(&prpc, "tick", "SUCCEEDED", 2).await?;
    let view = runs[0]["viewUrl"].as_str().unwrap_or_default().to_string();
    let task_id = view.rsplit('=').next().unwrap_or_default().to_string();
    assert_eq!(prpc.result(&task_id).await?["state"], "COMPLETED", "{view}");
    assert!(String::from_utf8_lossy(&prpc.stdout(&task_id).await?).contains("tick-output"));
    // Each success triggered "after".
    wait_runs(&prpc, "after", "SUCCEEDED", 1).await?;

    // Pause: state PAUSED, manual triggering refused; resume: runs again.
    let (code, out, err) = cli(&srv.url, &["pause", "e2e/tick", "--reason", "e2e"]).await?;
    assert_eq!(code, 0, "{out}{err}");
    let paused = wait_for("tick paused and idle", PATIENCE, || async {
        let j = job_state(&prpc, "tick").await?;
        Ok((j["paused"] == true && j["state"]["uiStatus"] == "PAUSED").then_some(()))
    })
    .await;
    paused?;
    let before = invocations(&prpc, "e2e", "tick").await?.len();
    let (code, _, err) = cli(&srv.url, &["trigger", "e2e/tick"]).await?;
    assert_eq!(code, 9, "triggering a paused job is refused: {err}");
    assert!(err.contains("paused"), "{err}");
    let (code, out, err) = cli(&srv.url, &["resume", "e2e/tick"]).await?;
    assert_eq!(code, 0, "{out}{err}");
    wait_for("a run after resume", PATIENCE, || async {
        Ok((invocations(&prpc, "e2e", "tick").await?.len() > before).then_some(()))
    })
    .await?;

    // Trigger by hand, with an id: once even if repeated.
    for _ in 0..2 {
        let (code, out, err) = cli(&srv.url, &["trigger", "e2e/long", "--id", "manual-1", "--prop", "k=v"]).await?;
        assert_eq!(code, 0, "{out}{err}");
    }
    let running = wait_runs(&prpc, "long", "RUNNING", 1).await?;
    let inv_id = running[0]["invocationRef"]["invocationId"].as_str().map(str::to_string).unwrap_or_default();
    let (code, out, err) = cli(&srv.url, &["abort", "e2e/long"]).await?;
    assert_eq!(code, 0, "{out}{err}");
    let aborted = wait_runs(&prpc, "long", "ABORTED", 1).await?;
    assert_eq!(aborted[0]["invocationRef"]["invocationId"].as_str(), Some(inv_id.as_str()));
    assert_eq!(invocations(&prpc, "e2e", "long").await?.len(), 1, "the repeated trigger id ran once");
    let long_task =
        aborted[0]["viewUrl"].as_str().unwrap_or_default().rsplit('=').next().unwrap_or_default().to_string();
    let state = prpc.wait_final(&long_task, PATIENCE).await?;
    assert!(state["state"] == "KILLED" || state["state"] == "CANCELED", "{state}");

    let (code, out, err) = cli(&srv.url, &["runs", "e2e/after"]).await?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    let (code, out, _) = cli(&srv.url, &["list"]).await?;
    assert_eq!(code, 0);
    assert!(out.contains("e2e/tick") && out.contains("with 2s interval"), "{out}");

    // The UI lists the job and shows its page.
    let page = reqwest::get(format!("{}/jobs", srv.url)).await?.text().await?;
    assert!(page.contains("e2e/tick"), "{page}");
    let page = reqwest::get(format!("{}/jobs/e2e/long/{inv_id}", srv.url)).await?.text().await?;
    assert!(page.contains("Aborted by") && page.contains("ABORTED"), "{page}");

    // A bad edit: reported, the job disabled with the reason, the others untouched.
    write_config(&config, &CONFIG.replace("with 2s interval", "61 * * * *"))?;
    let (code, _, err) = tokio::process::Command::new(exe())
        .args(["jobs", "check"])
        .arg(&config)
        .output()
        .await
        .map(|o| (o.status.code().unwrap_or(-1), String::new(), String::from_utf8_lossy(&o.stderr).to_string()))?;
    assert_ne!(code, 0);
    assert!(err.contains("jobs.toml:6:1: bad schedule \"61 * * * *\""), "{err}");
    wait_for("tick disabled by the bad schedule", PATIENCE, || async {
        let r = prpc.call_full(SCHED, "GetJobs", &json!({"project": "e2e"})).await?;
        let ids: BTreeSet<String> = r.json["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|j| j["jobRef"]["job"].as_str().map(str::to_string))
            .collect();
        Ok((!ids.contains("tick") && ids.contains("after")).then_some(()))
    })
    .await?;
    let page = reqwest::get(format!("{}/jobs", srv.url)).await?.text().await?;
    assert!(page.contains("minute"), "the job list shows why tick is disabled");
    srv.stop().await?;
    Ok(())
}

/// The server dies right after a launch created the task and before it
/// recorded that: after restart the launch is repeated with the same
/// idempotency key and finds the same task. One task for the one trigger.
#[tokio::test]
async fn kill_9_between_launch_and_commit_gives_exactly_one_task() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    write_config(
        &config,
        "project = \"e2e\"\n[[job]]\nid = \"once\"\n[job.muster]\npool = \"default\"\ncommand = [\"echo\", \"once\"]\n",
    )?;
    let cfg = config.to_string_lossy().to_string();
    let data = dir.path().join("server");
    let common = ["--config-dir", cfg.as_str(), "--jobs-reload-secs", "1", "--jobs-launch-lease-secs", "1"];
    let mut args = common.to_vec();
    args.extend(["--jobs-failpoint", "exit-after-launch"]);
    let srv = start_server(&data, &args).await?;
    let prpc = Prpc::new(&srv.url);
    // The bot outlives the server: it reconnects to the restarted one.
    let _bot = BotProcess::start(&srv.url, &dir.path().join("bot"), "once-bot", &[]).await?;
    crate::common::wait_bots(&prpc, 1).await?;
    wait_for("job loaded", PATIENCE, || async { Ok(job_state(&prpc, "once").await.ok()) }).await?;
    let emit = json!({"batches": [{"trigger": {"id": "t1", "noop": {}}, "jobs": [{"project": "e2e", "job": "once"}]}]});
    let r = prpc.call_full(SCHED, "EmitTriggers", &emit).await?;
    assert_eq!(r.code, 0, "{}", r.text);
    // The failpoint makes the server exit after launching.
    let url = srv.url.clone();
    wait_for("the server to die at the failpoint", PATIENCE, || async {
        Ok(reqwest::get(format!("{url}/healthz")).await.is_err().then_some(()))
    })
    .await?;
    let port = srv.port();
    let _ = srv.kill9().await; // already gone: this only reaps it
    let srv = ServerProcess::start(&exe(), &data, port, &common).await?;
    let prpc = Prpc::new(&srv.url);
    let done = wait_runs(&prpc, "once", "SUCCEEDED", 1).await?;
    assert_eq!(invocations(&prpc, "e2e", "once").await?.len(), 1);
    let tasks = prpc
        .ok(
            "Tasks",
            "ListTasks",
            &json!({"tags": ["scheduler_job_id:e2e/once"], "state": "QUERY_ALL", "start": "2020-01-01T00:00:00Z"}),
        )
        .await?;
    let items = tasks["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "one task for one trigger: {tasks}");
    let view = done[0]["viewUrl"].as_str().unwrap_or_default();
    assert!(view.ends_with(items[0]["taskId"].as_str().unwrap_or("?")), "{view} vs {tasks}");
    let inv = done[0]["invocationRef"]["invocationId"].as_str().unwrap_or_default();
    let page = reqwest::get(format!("{}/jobs/e2e/once/{inv}", srv.url)).await?.text().await?;
    assert!(page.contains("(attempt 2)"), "the launch ran again after the crash: {page}");
    srv.stop().await?;
    Ok(())
}

/// Two replicas on one PostgreSQL, both running the engine on the same
/// definitions: every tick becomes exactly one invocation.
#[tokio::test]
async fn two_replicas_on_postgres_never_run_a_tick_twice() -> anyhow::Result<()> {
    let pg = TempPostgres::start();
    let db = pg.postgres_url(TempPostgres::db_name(&pg.create_database().await));
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    write_config(&config, "project = \"e2e\"\n[[job]]\nid = \"every\"\nschedule = \"* * * * * * *\"\n[job.noop]\n")?;
    let cfg = config.to_string_lossy().to_string();
    let args = ["--database", db.as_str(), "--config-dir", cfg.as_str(), "--jobs-reload-secs", "1"];
    let a = start_server(&dir.path().join("a"), &args).await?;
    let b = start_server(&dir.path().join("b"), &args).await?;
    let prpc = Prpc::new(&a.url);
    let invs = wait_for("12 runs of the every-second job", Duration::from_secs(120), || async {
        let r = prpc
            .call_full(SCHED, "GetInvocations", &json!({"jobRef": {"project": "e2e", "job": "every"}, "pageSize": 50}))
            .await?;
        let invs = r.json["invocations"].as_array().cloned().unwrap_or_default();
        Ok((invs.iter().filter(|i| i["status"] == "SUCCEEDED").count() >= 12).then_some(invs))
    })
    .await?;
    // Each invocation consumed its own tick: read the debug log of each.
    let mut ticks = BTreeSet::new();
    for inv in &invs {
        let id = inv["invocationRef"]["invocationId"].as_str().unwrap_or_default();
        let page = reqwest::get(format!("{}/jobs/e2e/every/{id}", b.url)).await?.text().await?;
        let tick = page
            .split("cron:v1:")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("invocation {id} has no cron trigger"))?;
        assert!(ticks.insert(tick.clone()), "tick cron:v1:{tick} ran twice");
    }
    a.stop().await?;
    b.stop().await?;
    Ok(())
}

/// An upstream LUCI Scheduler project config, unchanged, in
/// `<config-dir>/luci-scheduler/<project>.cfg`: its noop trigger feeds its
/// url_fetch job, which calls a real HTTP endpoint; a buildbucket job is
/// imported disabled; `muster jobs check` accepts the directory.
#[tokio::test]
async fn an_upstream_luci_scheduler_config_runs_its_jobs() -> anyhow::Result<()> {
    // The url_fetch target: a real HTTP server counting its calls.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = format!("http://{}/ping", listener.local_addr()?);
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong").await;
            });
        }
    });
    let cfg_text = format!(
        r#"# upstream format
job {{
  id: "ping"
  realm: "ci"
  acl_sets: "default"
  url_fetch {{ url: "{target}" timeout_sec: 10 }}
}}
job {{
  id: "build"
  schedule: "with 1s interval"
  buildbucket {{ server: "cr-buildbucket.appspot.com" bucket: "ci" builder: "linux" }}
}}
trigger {{
  id: "every-second"
  schedule: "with 1s interval"
  triggers: "ping"
  noop {{ triggers_count: 1 }}
}}
acl_sets {{ name: "default" acls {{ role: READER granted_to: "group:all" }} }}
"#
    );
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("luci-scheduler"))?;
    std::fs::write(config.join("luci-scheduler/lab.cfg"), cfg_text)?;
    let check = tokio::process::Command::new(exe()).args(["jobs", "check"]).arg(&config).output().await?;
    let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(said.contains("buildbucket tasks cannot run on muster"), "{said}");

    let cfg = config.to_string_lossy().to_string();
    let srv = start_server(&dir.path().join("server"), &["--config-dir", &cfg, "--jobs-reload-secs", "1"]).await?;
    let prpc = Prpc::new(&srv.url);
    let runs = wait_for("2 SUCCEEDED runs of lab/ping", PATIENCE, || async {
        let invs = invocations(&prpc, "lab", "ping").await?;
        let done: Vec<Value> = invs.into_iter().filter(|i| i["status"] == "SUCCEEDED").collect();
        Ok((done.len() >= 2).then_some(done))
    })
    .await?;
    assert!(runs.len() >= 2);
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 2, "each run called the endpoint");
    let r = prpc.call_full(SCHED, "GetJobs", &json!({"project": "lab"})).await?;
    let ids: BTreeSet<String> = r.json["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["jobRef"]["job"].as_str().map(str::to_string))
        .collect();
    assert!(ids.contains("ping") && !ids.contains("build"), "the buildbucket job is disabled: {ids:?}");
    srv.stop().await?;
    Ok(())
}
