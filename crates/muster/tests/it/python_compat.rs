//! Compatibility with UNMODIFIED upstream Python Swarming bots (docs/bot-protocol.md#python-bot-code).
//!
//! Runs only when `MUSTER_PYTHON_BOT_DIR` points at a checkout of luci-py
//! `appengine/swarming/swarming_bot`: CI has none, so the test is ignored
//! with that reason and `scripts/test.sh` runs it (`--run-ignored all`) when
//! the variable is set, printing a "skipped" line otherwise. It starts a real `muster server --python-bot-dir`,
//! downloads `swarming_bot.zip` from `/bot_code?bot=python`, runs
//! `python3 swarming_bot.zip start_bot --test-mode` offline (docs/bot-protocol.md#python-bot-code) in
//! its own temp dir, and checks tasks that succeed, fail, time out and are
//! killed, then a self-update after the served zip changes.

use crate::common::{exe, submit, task, wait_bots};
use anyhow::Context;
use muster_testkit::{wait_for, Prpc, ServerProcess};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(240);
const BOT_ID: &str = "py-compat-bot";

/// The upstream bot process, in its own process group (it spawns
/// task_runner and run_isolated, and re-execs itself on update).
struct PythonBot {
    child: tokio::process::Child,
}

impl PythonBot {
    async fn start(home: &Path, bot_dir: &Path, zip: &[u8], go_client_dir: &Path) -> anyhow::Result<PythonBot> {
        std::fs::create_dir_all(bot_dir)?;
        std::fs::write(bot_dir.join("swarming_bot.zip"), zip)?;
        let log = std::fs::File::create(home.join("python-bot.log"))?;
        let child = tokio::process::Command::new("python3")
            .arg("swarming_bot.zip")
            .arg("start_bot")
            .arg("--test-mode")
            .current_dir(bot_dir)
            .env("SWARMING_BOT_ID", BOT_ID)
            .env("LUCI_GO_CLIENT_DIR", go_client_dir)
            // Never the real $HOME: the bot deletes files in its directory
            // and refuses to work from $HOME.
            .env("HOME", home)
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting python3 swarming_bot.zip start_bot")?;
        Ok(PythonBot { child })
    }

    /// SIGTERM to the bot's whole process group (the bot posts
    /// `bot_shutdown` and exits), then SIGKILL whatever is left.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let group = format!("-{pid}");
            let kill = |sig: &'static str| {
                let mut c = tokio::process::Command::new("kill");
                c.args([sig, "--", &group]).stderr(Stdio::null());
                c
            };
            let _ = kill("-TERM").status().await;
            let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
            // Whatever is left of the group (task processes), if anything.
            let _ = kill("-KILL").status().await;
        }
        let _ = self.child.wait().await;
    }
}

/// `/bot_code?bot=python` → 302 → the zip. Returns (digest, bytes).
async fn download_zip(server: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let r = http.get(format!("{server}/bot_code?bot=python")).send().await?;
    anyhow::ensure!(r.status() == 302, "/bot_code?bot=python answered {}", r.status());
    let loc = r.headers().get("location").context("no Location")?.to_str()?.to_string();
    let digest = loc.rsplit('/').next().unwrap_or_default().to_string();
    let bytes = http.get(format!("{server}{loc}")).send().await?.error_for_status()?.bytes().await?;
    Ok((digest, bytes.to_vec()))
}

/// A hooks file: the tree's default `bot_config.py` plus a marker line, so
/// two markers give two different zips.
fn bot_config(src: &Path, dir: &Path, marker: &str) -> anyhow::Result<PathBuf> {
    let default = std::fs::read_to_string(src.join("config/bot_config.py")).unwrap_or_default();
    let path = dir.join(format!("bot_config_{marker}.py"));
    std::fs::write(&path, format!("{default}\n# muster compat test: {marker}\n"))?;
    Ok(path)
}

/// The Python bot authenticates by address only: a bots.cfg default group
/// whose `ip_whitelist` names a loopback allowlist, with pool `default`.
fn write_bot_groups(data: &Path) -> anyhow::Result<()> {
    let dir = data.join("config");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("bots.cfg"),
        "trusted_dimensions: \"pool\"\nbot_group {\n  auth { ip_whitelist: \"local\" }\n  dimensions: \"pool:default\"\n}\n",
    )?;
    std::fs::write(
        dir.join("ip_allowlist.cfg"),
        "ip_allowlists {\n  name: \"local\"\n  subnets: \"127.0.0.0/8\"\n  subnets: \"::1/128\"\n}\n",
    )?;
    Ok(())
}

async fn start_server(data: &Path, port: u16, src: &Path, cfg: &Path) -> anyhow::Result<ServerProcess> {
    write_bot_groups(data)?;
    let src = src.to_str().context("non-UTF-8 bot dir")?;
    let cfg = cfg.to_str().context("non-UTF-8 path")?;
    ServerProcess::start(&exe(), data, port, &["--python-bot-dir", src, "--python-bot-config", cfg]).await
}

async fn bot_version(prpc: &Prpc) -> anyhow::Result<String> {
    let v = prpc.ok("Bots", "GetBot", &json!({"botId": BOT_ID})).await?;
    Ok(v["version"].as_str().unwrap_or_default().to_string())
}

async fn stdout_text(prpc: &Prpc, id: &str) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&prpc.stdout(id).await?).to_string())
}

fn show_log(home: &Path) {
    let log = std::fs::read_to_string(home.join("python-bot.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(60).collect();
    eprintln!("--- python bot output (last lines) ---");
    for l in tail.iter().rev() {
        eprintln!("{l}");
    }
}

#[tokio::test]
#[ignore = "needs the upstream Python bot (a luci-py checkout), set MUSTER_PYTHON_BOT_DIR to run"]
async fn an_unmodified_python_swarming_bot_runs_tasks_and_self_updates() -> anyhow::Result<()> {
    let src = std::env::var_os("MUSTER_PYTHON_BOT_DIR").map(PathBuf::from).context(
        "set MUSTER_PYTHON_BOT_DIR to a luci-py checkout's appengine/swarming/swarming_bot to run this test",
    )?;
    let tmp = tempfile::tempdir()?;
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home)?;
    let go_client = tmp.path().join("go-client");
    std::fs::create_dir_all(&go_client)?;
    std::fs::write(go_client.join("cas"), b"")?;
    let cfg_a = bot_config(&src, tmp.path(), "a")?;
    let cfg_b = bot_config(&src, tmp.path(), "b")?;
    let data = tmp.path().join("server");

    let srv = start_server(&data, 0, &src, &cfg_a).await?;
    let port = srv.port();
    let prpc = Prpc::new(&srv.url);
    let (v1, zip) = download_zip(&srv.url).await?;
    let bot = PythonBot::start(&home, &tmp.path().join("bot"), &zip, &go_client).await?;
    let outcome = run_checks(&prpc, srv, &data, port, &src, &cfg_b, &v1).await;
    if outcome.is_err() {
        show_log(&home);
    }
    bot.stop().await;
    let srv = outcome?;
    srv.stop().await?;
    Ok(())
}

async fn run_checks(
    prpc: &Prpc,
    srv: ServerProcess,
    data: &Path,
    port: u16,
    src: &Path,
    cfg_b: &Path,
    v1: &str,
) -> anyhow::Result<ServerProcess> {
    wait_bots(prpc, 1).await?;
    let dims = json!({"dimensions": [{"key": "pool", "value": "default"}, {"key": "id", "value": BOT_ID}]});

    // Success, with its output.
    let ok = submit(prpc, &task("py-ok", &["python3", "-c", "print('hi from python bot')"], dims.clone())).await?;
    let r = prpc.wait_final(&ok, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert!(r.get("exitCode").is_none_or(|c| c == "0"), "{r}");
    assert!(stdout_text(prpc, &ok).await?.contains("hi from python bot"));
    eprintln!("python_compat: success task passed");

    // Failure by exit code.
    let fail = submit(prpc, &task("py-fail", &["python3", "-c", "import sys; sys.exit(3)"], dims.clone())).await?;
    let r = prpc.wait_final(&fail, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert_eq!(r["exitCode"], "3", "{r}");
    assert_eq!(r["failure"], true, "{r}");
    eprintln!("python_compat: failing task passed");

    // Hard timeout.
    let mut t = dims.clone();
    t["executionTimeoutSecs"] = json!(30);
    t["gracePeriodSecs"] = json!(2);
    let slow = submit(prpc, &task("py-timeout", &["python3", "-c", "import time; time.sleep(120)"], t)).await?;
    let r = prpc.wait_final(&slow, LIMIT).await?;
    assert_eq!(r["state"], "TIMED_OUT", "{r}");
    eprintln!("python_compat: timeout task passed");

    // Killed while running (CancelTask kill_running → must_stop).
    let long = submit(
        prpc,
        &task(
            "py-kill",
            &["python3", "-u", "-c", "import time\nprint('running', flush=True)\ntime.sleep(120)"],
            dims.clone(),
        ),
    )
    .await?;
    prpc.wait_running(&long, "running", LIMIT).await?;
    let c = prpc.ok("Tasks", "CancelTask", &json!({"taskId": long, "killRunning": true})).await?;
    assert_eq!(c["canceled"], true, "{c}");
    let r = prpc.wait_final(&long, LIMIT).await?;
    assert_eq!(r["state"], "KILLED", "{r}");
    eprintln!("python_compat: killed task passed");

    // Self-update: the same server (same port, same data) with other hooks
    // serves another zip; the bot is told `update`, restarts on it, and
    // keeps running tasks.
    assert_eq!(bot_version(prpc).await?, v1);
    srv.stop().await?;
    let srv = start_server(data, port, src, cfg_b).await?;
    let (v2, _) = download_zip(&srv.url).await?;
    assert_ne!(v2, v1, "a different bot_config.py must give a different zip");
    wait_for(&format!("the bot to come back on version {v2}"), LIMIT, || async {
        Ok((bot_version(prpc).await.unwrap_or_default() == v2).then_some(()))
    })
    .await?;
    let after = submit(prpc, &task("py-after-update", &["python3", "-c", "print('updated')"], dims)).await?;
    let r = prpc.wait_final(&after, LIMIT).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert!(stdout_text(prpc, &after).await?.contains("updated"));
    eprintln!("python_compat: self-update passed");
    Ok(srv)
}
