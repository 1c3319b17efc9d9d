//! Shared helpers: start a server process, fetch and start bots.

use anyhow::Context;
use muster_testkit::{wait_for, Prpc, ServerProcess, PATIENCE};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_muster"))
}

/// The bot's log goes to `<dir>/<id>.log` (printed by a failing test).
fn log_file(dir: &Path, id: &str) -> anyhow::Result<Stdio> {
    std::fs::create_dir_all(dir)?;
    Ok(Stdio::from(std::fs::File::create(dir.join(format!("{id}.log")))?))
}

/// A `muster bot` child process.
pub struct BotProcess {
    child: tokio::process::Child,
}

impl BotProcess {
    /// Downloads `/bot_code` into `home` and starts it with no flags (the
    /// trailer names the server); the bot dir is `<home>/muster-bot-dir`.
    pub async fn fetch_and_start(server: &str, home: &Path, id: &str) -> anyhow::Result<BotProcess> {
        std::fs::create_dir_all(home)?;
        let bytes = reqwest::get(format!("{server}/bot_code")).await?.error_for_status()?.bytes().await?;
        let path = home.join("muster-bot");
        std::fs::write(&path, &bytes)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        let child = tokio::process::Command::new(&path)
            .current_dir(home)
            .env("SWARMING_BOT_ID", id)
            .env("MUSTER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(home, id)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        Ok(BotProcess { child })
    }

    /// Starts `muster bot --server URL --dir DIR --id ID` from the test binary.
    pub async fn start(server: &str, dir: &Path, id: &str, extra: &[&str]) -> anyhow::Result<BotProcess> {
        let child = tokio::process::Command::new(exe())
            .arg("bot")
            .arg("--server")
            .arg(server)
            .arg("--dir")
            .arg(dir)
            .arg("--id")
            .arg(id)
            .args(extra)
            .env("MUSTER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(dir.parent().unwrap_or(dir), id)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting muster bot")?;
        Ok(BotProcess { child })
    }

    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Waits for the process to exit on its own (hang guard `limit`).
    pub async fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
        Ok(tokio::time::timeout(limit, self.child.wait()).await.context("bot did not exit")??)
    }
}

/// A NewTask request body with one slice.
pub fn task(name: &str, command: &[&str], props: Value) -> Value {
    let mut p = json!({
        "command": command,
        "dimensions": [{"key": "pool", "value": "default"}],
        "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 2,
    });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), props.as_object()) {
        for (k, v) in extra {
            p.insert(k.clone(), v.clone());
        }
    }
    json!({"name": name, "priority": 100, "taskSlices": [{"expirationSecs": 600, "properties": p}]})
}

pub async fn submit(prpc: &Prpc, body: &Value) -> anyhow::Result<String> {
    let v = prpc.ok("Tasks", "NewTask", body).await?;
    v["taskId"].as_str().map(str::to_string).context("no taskId")
}

pub async fn start_server(dir: &Path, extra: &[&str]) -> anyhow::Result<ServerProcess> {
    ServerProcess::start(&exe(), dir, 0, extra).await
}

/// Waits until `n` live bots are known to the server.
pub async fn wait_bots(prpc: &Prpc, n: usize) -> anyhow::Result<()> {
    wait_for(&format!("{n} bots to connect"), PATIENCE, || async {
        let v = prpc.ok("Bots", "CountBots", &json!({})).await?;
        let count = v["count"].as_i64().unwrap_or(0) as usize;
        let dead = v["dead"].as_i64().unwrap_or(0) as usize;
        Ok((count - dead.min(count) >= n).then_some(()))
    })
    .await
}

/// A `muster dev` child process: a server on a free loopback port and its
/// local bots, all real processes.
pub struct DevProcess {
    pub child: tokio::process::Child,
    pub url: String,
    /// What it printed before serving.
    pub printed: Vec<String>,
}

impl DevProcess {
    /// Starts `muster dev --port 0 --bots <bots> --data-dir <dir>` and waits
    /// until it serves and `bots` bots are connected. Its log (server and
    /// bots, at info level) is appended to `<dir>/dev.log`.
    pub async fn start(dir: &Path, bots: usize) -> anyhow::Result<DevProcess> {
        use tokio::io::{AsyncBufReadExt, BufReader};
        std::fs::create_dir_all(dir)?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("dev.log"))?;
        let mut child = tokio::process::Command::new(exe())
            .args(["dev", "--port", "0", "--bots", &bots.to_string(), "--data-dir"])
            .arg(dir)
            .env("MUSTER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("starting muster dev")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        let mut printed = Vec::new();
        while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("muster dev printed nothing for 60 s")??
        {
            printed.push(line.clone());
            if let Some(rest) = line.strip_prefix("muster dev: server ") {
                url = rest.split_whitespace().next().map(str::to_string);
            }
            if line.contains("muster run") {
                break;
            }
        }
        let url = url.with_context(|| format!("no server URL in {printed:?}"))?;
        wait_bots(&Prpc::new(&url), bots).await?;
        Ok(DevProcess { child, url, printed })
    }

    /// Stops it as Ctrl-C would (SIGTERM to the dev process) and waits for
    /// a clean exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("muster dev already exited")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM)?;
        let status = tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .context("muster dev did not stop within 120 s")??;
        anyhow::ensure!(status.success(), "muster dev exit status {status}");
        Ok(())
    }
}
