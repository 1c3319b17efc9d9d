use anyhow::{anyhow, Context};
use muster_core::time::SystemClock;
use muster_core::{Clock, Time};
use muster_sched::{SchedConfig, Scheduler};
use muster_server::{Deps, ServerConfig};
use muster_store::{SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

/// A real muster server running inside the test process, on 127.0.0.1:0,
/// with a real SQLite file in a temp dir.
pub struct TestServer {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub sched: Arc<Scheduler>,
    pub clock: Arc<dyn Clock>,
    pub shutdown: CancellationToken,
    pub dir: tempfile::TempDir,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts with the system clock and a short long-poll (1 s).
    pub async fn start() -> anyhow::Result<TestServer> {
        let cfg = SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() };
        TestServer::start_with(Arc::new(SystemClock), cfg).await
    }

    pub async fn start_with(clock: Arc<dyn Clock>, sched_cfg: SchedConfig) -> anyhow::Result<TestServer> {
        TestServer::start_configured(clock, sched_cfg, |_| {}).await
    }

    /// Like [`TestServer::start_with`], letting the test adjust the server config.
    pub async fn start_configured(
        clock: Arc<dyn Clock>,
        sched_cfg: SchedConfig,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> anyhow::Result<TestServer> {
        let dir = tempfile::tempdir().context("creating a temp dir")?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("muster.db"))?);
        let sched = Scheduler::start(store.clone(), sched_cfg, clock.now()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut config = ServerConfig::new(&url, b"test-session-secret-0123456789abcdef".to_vec());
        config.sweep_interval = Duration::from_millis(200);
        configure(&mut config);
        let shutdown = CancellationToken::new();
        let deps = Deps { store: store.clone(), sched: sched.clone(), clock: clock.clone(), config, feed: None };
        let sd = shutdown.clone();
        let handle = tokio::spawn(async move {
            if let Err(e) = muster_server::run(listener, deps, sd).await {
                eprintln!("test server stopped: {e}");
            }
        });
        Ok(TestServer { url, store, sched, clock, shutdown, dir, handle: Some(handle) })
    }

    pub fn now(&self) -> Time {
        self.clock.now()
    }

    pub fn prpc(&self) -> crate::Prpc {
        crate::Prpc::new(&self.url)
    }

    /// Stops serving and waits for the server task to end.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

/// A real `muster server` child process.
pub struct ServerProcess {
    pub url: String,
    pub data_dir: PathBuf,
    child: tokio::process::Child,
}

impl ServerProcess {
    /// Starts `exe server --listen 127.0.0.1:<port> --data-dir <dir>` and waits for
    /// its `listening on URL` line. Port 0 picks a free port.
    pub async fn start(exe: &Path, data_dir: &Path, port: u16, extra: &[&str]) -> anyhow::Result<ServerProcess> {
        let mut child = tokio::process::Command::new(exe)
            .arg("server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("MUSTER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("server did not print its address in 60 s")??
            .ok_or_else(|| anyhow!("server exited before printing its address"))?;
        let url = first
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("unexpected first line {first:?}"))?
            .trim()
            .to_string();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProcess { url, data_dir: data_dir.to_path_buf(), child })
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }

    /// SIGKILL, no chance to flush anything.
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM and wait.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY-free: libc-free signal via the kill command.
            let _ = tokio::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        self.child.wait().await?;
        Ok(())
    }
}
