//! The server under test: a `muster server` child process started by the
//! bench (killable with SIGKILL and restartable on the same data dir and
//! port), or an existing server given by URL.

use crate::sys::{sample, ProcSample};
use anyhow::{anyhow, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How to start a server child.
#[derive(Debug, Clone)]
pub struct Launch {
    pub exe: PathBuf,
    pub data_dir: PathBuf,
    pub long_poll_secs: Option<u64>,
    /// `--database` of the started server (None: SQLite in its data dir).
    pub database: Option<String>,
}

/// A running server: a child we own, or a remote URL (then `pid` may be given).
pub struct Server {
    pub url: String,
    pub pid: Option<u32>,
    child: Option<tokio::process::Child>,
    /// When the child was spawned and when it printed its address.
    pub spawned: Instant,
    pub listening: Instant,
}

impl Server {
    /// A server we do not own.
    pub fn remote(url: &str, pid: Option<u32>) -> Server {
        let now = Instant::now();
        Server { url: url.trim_end_matches('/').to_string(), pid, child: None, spawned: now, listening: now }
    }

    /// Spawns `exe server --listen 127.0.0.1:<port> --data-dir <dir>` and waits
    /// for its `listening on URL` line. Port 0 picks a free port.
    pub async fn start(l: &Launch, port: u16) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&l.data_dir).with_context(|| format!("creating {}", l.data_dir.display()))?;
        let log_path = l.data_dir.join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = tokio::process::Command::new(&l.exe);
        cmd.arg("server").arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--data-dir").arg(&l.data_dir);
        // Every simulated client shares one address: no per-caller NewTask rate.
        cmd.arg("--new-task-rate").arg("0");
        if let Some(s) = l.long_poll_secs {
            cmd.arg("--long-poll-secs").arg(s.to_string());
        }
        if let Some(db) = &l.database {
            cmd.arg("--database").arg(db);
        }
        let spawned = Instant::now();
        let mut child = cmd
            .env("MUSTER_LOG", std::env::var("MUSTER_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", l.exe.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("server child has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .context("the server did not print its address in 120 s")?
            .context("reading the server's stdout")?
            .ok_or_else(|| anyhow!("the server exited before printing its address (see {})", log_path.display()))?;
        let listening = Instant::now();
        let url = first
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("unexpected first server line {first:?}"))?
            .trim()
            .to_string();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id();
        Ok(Server { url, pid, child: Some(child), spawned, listening })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }

    /// RSS and CPU of the server process, if it is local.
    pub fn sample(&self) -> Option<ProcSample> {
        self.pid.and_then(|p| sample(&p.to_string()).ok())
    }

    /// SIGKILL: no chance to flush anything.
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.start_kill().context("killing the server")?;
            c.wait().await.context("waiting for the killed server")?;
        }
        Ok(())
    }

    /// SIGTERM and wait (SIGKILL after 10 s).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut c) = self.child.take() else { return Ok(()) };
        if let Some(pid) = c.id() {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), c.wait()).await.is_err() {
            c.start_kill().context("killing the server")?;
            c.wait().await.context("waiting for the server")?;
        }
        Ok(())
    }
}

/// The muster executable: `--exe`, else this process (the bench runs inside `muster`).
pub fn default_exe(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => std::env::current_exe().context("finding the muster executable (pass --exe)"),
    }
}
