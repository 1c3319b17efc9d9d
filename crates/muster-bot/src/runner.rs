//! Runs one task (docs/bot-protocol.md#task-updates, #kill-and-cancel, #timeouts; docs/design.md#the-bot).
//!
//! [`TaskRunner::run`] takes a manifest and an [`UpdateSink`] (the server's
//! `task_update`/`task_error` endpoints; tests record packets in memory) and:
//! sends the start packet (obeying `must_stop` by cancelling), prepares a fresh
//! work dir `<bot dir>/w/<run id>` with named caches linked from
//! `<bot dir>/c/<name>`, starts the command as its own process group with
//! stdout and stderr on one pipe, streams that output in packets whose
//! `output_chunk_start` is the count of bytes the server already acknowledged
//! (a failed packet is re-sent from the same offset, so bytes are never lost or
//! duplicated), enforces the hard and I/O timeouts and `must_stop` with the
//! SIGTERM → grace period → SIGKILL dance on the whole group, and finally
//! sends the completion packet, retrying it until the server takes it.

use async_trait::async_trait;
use muster_api::bot::{encode_b64, Manifest, TaskUpdateRequest};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::future::Future;
use std::io::Read as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A failed send to the server.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The server may take it later (network down, 5xx, ...).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (the server rejected the packet).
    #[error("{0}")]
    Permanent(String),
}

/// Where task updates go. The real one POSTs to the server; tests record.
#[async_trait]
pub trait UpdateSink: Send + Sync {
    /// Sends one `task_update` packet; `Ok(true)` means the server says `must_stop`.
    async fn update(&self, packet: TaskUpdateRequest) -> Result<bool, SinkError>;
    /// Sends `task_error` for `task_id` (an internal failure; no exit code).
    async fn task_error(&self, task_id: &str, message: &str) -> Result<(), SinkError>;
}

/// Packet cadence and limits. The defaults are what the bot uses.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Send buffered output at least this often while it flows.
    pub flush_interval: Duration,
    /// Largest `output` per packet; a full buffer is sent at once.
    pub max_chunk: usize,
    /// Keep-alive packet (no output) after this long without a packet.
    pub keepalive: Duration,
    /// How often timeouts and cadence are checked.
    pub tick: Duration,
    /// After the command exits, wait this long for the pipe to close.
    pub drain_timeout: Duration,
    /// Pause before re-sending a packet that failed.
    pub retry_pause: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            flush_interval: Duration::from_secs(1),
            max_chunk: 100 * 1024,
            keepalive: Duration::from_secs(10),
            tick: Duration::from_millis(100),
            drain_timeout: Duration::from_secs(2),
            retry_pause: Duration::from_secs(2),
        }
    }
}

/// How a task ended, from the bot's side. Serialized as the `result` given to
/// the `on_after_task` hook.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskSummary {
    pub task_id: String,
    /// `None` when the command never ran (canceled, internal error).
    pub exit_code: Option<i64>,
    /// Seconds the command ran.
    pub duration: f64,
    pub hard_timeout: bool,
    pub io_timeout: bool,
    /// Stopped because the server said `must_stop`.
    pub killed: bool,
    /// Stopped because the bot is shutting down.
    pub shutdown: bool,
    /// The start packet got `must_stop`: the command never started.
    pub canceled: bool,
    /// An internal failure reported with `task_error`.
    pub internal_error: Option<String>,
    /// The final packet could not be delivered.
    pub update_lost: Option<String>,
    /// Output bytes the server acknowledged.
    pub output_bytes: u64,
}

/// The exit code reported for a command that could not be started (a
/// missing executable, no permission), as upstream Swarming does.
pub const SPAWN_FAILED_EXIT_CODE: i64 = 1;

/// The task_error message of a task stopped because the bot shut down.
pub const SHUT_DOWN_MESSAGE: &str = "the bot was shut down";

/// Why a task could not be started.
enum StartError {
    /// The bot could not set the task up: reported with `task_error`.
    Internal(String),
    /// The command itself could not be started: the task's own failure.
    Spawn(String),
}

/// A task ready to start: its working directory and environment.
struct Prepared {
    cwd: PathBuf,
    env: BTreeMap<OsString, OsString>,
}

/// Runs tasks for one bot directory.
#[derive(Debug, Clone)]
pub struct TaskRunner {
    pub bot_id: String,
    pub server: String,
    /// The bot directory; work dirs go under `w/`, named caches under `c/`.
    pub bot_dir: PathBuf,
    pub config: RunnerConfig,
}

type Inflight<'a> = Pin<Box<dyn Future<Output = (Result<bool, SinkError>, usize)> + Send + 'a>>;

/// Why the kill dance started.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KillReason {
    HardTimeout,
    IoTimeout,
    MustStop,
    Shutdown,
}

impl TaskRunner {
    pub fn new(bot_dir: impl Into<PathBuf>, bot_id: &str, server: &str) -> Self {
        TaskRunner {
            bot_id: bot_id.to_string(),
            server: server.to_string(),
            bot_dir: bot_dir.into(),
            config: RunnerConfig::default(),
        }
    }

    fn packet(&self, task_id: &str) -> TaskUpdateRequest {
        TaskUpdateRequest {
            id: self.bot_id.clone(),
            task_id: task_id.to_string(),
            cost_usd: Some(0.0),
            ..Default::default()
        }
    }

    /// Runs `m` to completion, reporting to `sink`. Never panics on task or
    /// network failures: everything ends up in the returned summary.
    pub async fn run<S: UpdateSink + ?Sized>(
        &self,
        m: &Manifest,
        sink: &S,
        shutdown: &CancellationToken,
    ) -> TaskSummary {
        let begin = Instant::now();
        let task_id = m.task_id.clone();
        let mut summary = TaskSummary { task_id: task_id.clone(), ..Default::default() };

        // 1. Start packet: tells the server the bot accepted the task.
        match sink.update(self.packet(&task_id)).await {
            Ok(false) => {}
            Ok(true) => {
                let mut p = self.packet(&task_id);
                p.canceled = Some(true);
                if let Err(e) = self.send_final(sink, p, shutdown).await {
                    summary.update_lost = Some(e);
                }
                summary.canceled = true;
                return summary;
            }
            Err(e) => {
                summary.update_lost = Some(format!("start packet: {e}"));
                return summary;
            }
        }

        // 2. Work dir, caches, environment, spawn.
        let work = self.bot_dir.join("w").join(&task_id);
        let started = match self.start(m, &work) {
            Ok(s) => s,
            Err(StartError::Spawn(msg)) => {
                // As upstream Swarming: a command that cannot be started is
                // the task's failure (exit code 1, the reason in its output),
                // not the bot's.
                let _ = std::fs::remove_dir_all(&work);
                let line = format!("muster bot: {msg}\n");
                let mut p = self.packet(&task_id);
                p.output = Some(encode_b64(line.as_bytes()));
                p.output_chunk_start = Some(0);
                p.exit_code = Some(SPAWN_FAILED_EXIT_CODE);
                p.duration = Some(0.0);
                p.hard_timeout = Some(false);
                p.io_timeout = Some(false);
                p.bot_overhead = Some(begin.elapsed().as_secs_f64());
                summary.exit_code = Some(SPAWN_FAILED_EXIT_CODE);
                match self.send_final(sink, p, shutdown).await {
                    Ok(_) => summary.output_bytes = line.len() as u64,
                    Err(e) => summary.update_lost = Some(e),
                }
                return summary;
            }
            Err(StartError::Internal(msg)) => {
                let _ = std::fs::remove_dir_all(&work);
                summary.internal_error = Some(msg.clone());
                if let Err(e) = self.send_task_error(sink, &task_id, &msg, shutdown).await {
                    summary.update_lost = Some(e);
                }
                return summary;
            }
        };

        // 3. Stream output and enforce timeouts.
        let streamed = self.stream(m, sink, shutdown, started).await;
        summary.exit_code = Some(streamed.exit_code);
        summary.duration = streamed.duration;
        summary.hard_timeout = streamed.reason == Some(KillReason::HardTimeout);
        summary.io_timeout = streamed.reason == Some(KillReason::IoTimeout);
        summary.killed = streamed.reason == Some(KillReason::MustStop);
        summary.shutdown = streamed.reason == Some(KillReason::Shutdown);
        let mut sent = streamed.sent;
        let mut buf = streamed.buf;

        // 4. Clean up, then flush what is left and send the final packet.
        if let Err(e) = std::fs::remove_dir_all(&work) {
            tracing::warn!(task_id, error = %e, "removing the work dir");
        }
        while buf.len() > self.config.max_chunk {
            let n = self.config.max_chunk;
            let mut p = self.packet(&task_id);
            p.output = Some(encode_b64(&buf[..n]));
            p.output_chunk_start = Some(sent);
            if let Err(e) = self.send_final(sink, p, shutdown).await {
                summary.update_lost = Some(e);
                summary.output_bytes = sent;
                return summary;
            }
            buf.drain(..n);
            sent += n as u64;
        }
        let mut p = self.packet(&task_id);
        if !buf.is_empty() {
            p.output = Some(encode_b64(&buf));
            p.output_chunk_start = Some(sent);
        }
        if summary.shutdown {
            // The task did not end on its own: flush its output without an
            // exit code, then report why (the server ends it BOT_DIED with
            // this message), as upstream's task runner does on a signal.
            match self.send_final(sink, p, shutdown).await {
                Ok(_) => sent += buf.len() as u64,
                Err(e) => {
                    summary.update_lost = Some(e);
                    summary.output_bytes = sent;
                    return summary;
                }
            }
            summary.output_bytes = sent;
            summary.internal_error = Some(SHUT_DOWN_MESSAGE.to_string());
            if let Err(e) = self.send_task_error(sink, &task_id, SHUT_DOWN_MESSAGE, shutdown).await {
                summary.update_lost = Some(e);
            }
            return summary;
        }
        p.exit_code = Some(streamed.exit_code);
        p.duration = Some(streamed.duration);
        p.hard_timeout = Some(summary.hard_timeout);
        p.io_timeout = Some(summary.io_timeout);
        p.bot_overhead = Some((begin.elapsed().as_secs_f64() - streamed.duration).max(0.0));
        match self.send_final(sink, p, shutdown).await {
            Ok(_) => sent += buf.len() as u64,
            Err(e) => summary.update_lost = Some(e),
        }
        summary.output_bytes = sent;
        summary
    }

    /// Sends a packet that must arrive: transient failures are retried until
    /// the server takes it (the server may be restarting), or a few times once
    /// the bot is shutting down.
    async fn send_final<S: UpdateSink + ?Sized>(
        &self,
        sink: &S,
        p: TaskUpdateRequest,
        shutdown: &CancellationToken,
    ) -> Result<bool, String> {
        let mut after_shutdown = 0;
        loop {
            match sink.update(p.clone()).await {
                Ok(ms) => return Ok(ms),
                Err(SinkError::Permanent(e)) => return Err(e),
                Err(SinkError::Transient(e)) => {
                    if shutdown.is_cancelled() {
                        after_shutdown += 1;
                        if after_shutdown >= 3 {
                            return Err(e);
                        }
                    }
                    tracing::warn!(task_id = p.task_id, error = %e, "task update failed; will retry");
                    tokio::time::sleep(self.config.retry_pause).await;
                }
            }
        }
    }

    async fn send_task_error<S: UpdateSink + ?Sized>(
        &self,
        sink: &S,
        task_id: &str,
        msg: &str,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let mut after_shutdown = 0;
        loop {
            match sink.task_error(task_id, msg).await {
                Ok(()) => return Ok(()),
                Err(SinkError::Permanent(e)) => return Err(e),
                Err(SinkError::Transient(e)) => {
                    if shutdown.is_cancelled() {
                        after_shutdown += 1;
                        if after_shutdown >= 3 {
                            return Err(e);
                        }
                    }
                    tokio::time::sleep(self.config.retry_pause).await;
                }
            }
        }
    }

    /// Prepares the work dir and starts the command.
    fn start(&self, m: &Manifest, work: &Path) -> Result<Started, StartError> {
        let prepared = self.prepare(m, work).map_err(StartError::Internal)?;
        self.spawn(m, prepared)
    }

    /// Checks the manifest, makes the work dir, caches and environment.
    fn prepare(&self, m: &Manifest, work: &Path) -> Result<Prepared, String> {
        if !valid_task_id(&m.task_id) {
            return Err(format!("invalid task id {:?}", m.task_id));
        }
        if m.cas_input_root.is_some() {
            return Err("cas_input_root is not supported by the muster bot".to_string());
        }
        if m.cipd_input.as_ref().is_some_and(|c| !c.packages.is_empty()) {
            return Err("cipd_input packages are not supported by the muster bot".to_string());
        }
        if m.command.is_empty() || m.command[0].is_empty() {
            return Err("the task has an empty command".to_string());
        }
        if work.exists() {
            std::fs::remove_dir_all(work).map_err(|e| format!("removing stale work dir {}: {e}", work.display()))?;
        }
        std::fs::create_dir_all(work).map_err(|e| format!("creating work dir {}: {e}", work.display()))?;
        let work = work.canonicalize().map_err(|e| format!("resolving work dir {}: {e}", work.display()))?;
        self.install_caches(m, &work)?;
        let cwd = if m.relative_cwd.is_empty() {
            work.clone()
        } else {
            let rel =
                safe_relative(&m.relative_cwd).ok_or_else(|| format!("invalid relative_cwd {:?}", m.relative_cwd))?;
            let cwd = work.join(rel);
            std::fs::create_dir_all(&cwd).map_err(|e| format!("creating {}: {e}", cwd.display()))?;
            cwd
        };
        let env = self.environment(m, &work)?;
        Ok(Prepared { cwd, env })
    }

    /// Starts the command of a prepared task.
    fn spawn(&self, m: &Manifest, Prepared { cwd, env }: Prepared) -> Result<Started, StartError> {
        let internal = |what: &str, e: std::io::Error| StartError::Internal(format!("{what}: {e}"));
        let (read_end, write_end) =
            nix::unistd::pipe().map_err(|e| StartError::Internal(format!("creating the output pipe: {e}")))?;
        let write_err = write_end.try_clone().map_err(|e| internal("creating the output pipe", e))?;
        let mut cmd = tokio::process::Command::new(&m.command[0]);
        cmd.args(&m.command[1..])
            .current_dir(&cwd)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(write_end))
            .stderr(Stdio::from(write_err))
            .process_group(0)
            .kill_on_drop(true);
        let spawned = cmd.spawn();
        // Close our copies of the write end so EOF means "all writers gone".
        drop(cmd);
        let child = spawned.map_err(|e| StartError::Spawn(format!("starting {:?}: {e}", m.command[0])))?;
        let pid = child.id().unwrap_or(0);

        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let reader = std::fs::File::from(read_end);
        let spawn_res = std::thread::Builder::new().name(format!("output-{}", m.task_id)).spawn(move || {
            let mut reader = reader;
            let mut b = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut b) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(b[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });
        if let Err(e) = spawn_res {
            signal_group(pid, Signal::SIGKILL);
            return Err(internal("starting the output reader", e));
        }
        Ok(Started { child, pid, rx, started: Instant::now() })
    }

    fn install_caches(&self, m: &Manifest, work: &Path) -> Result<(), String> {
        for c in &m.caches {
            if c.name.is_empty()
                || !c.name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
            {
                return Err(format!("invalid named cache name {:?}", c.name));
            }
            let rel = safe_relative(&c.path).ok_or_else(|| format!("invalid named cache path {:?}", c.path))?;
            let store = self.bot_dir.join("c").join(&c.name);
            std::fs::create_dir_all(&store).map_err(|e| format!("creating named cache {}: {e}", store.display()))?;
            let store = store.canonicalize().map_err(|e| format!("resolving {}: {e}", store.display()))?;
            let link = work.join(rel);
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
            }
            std::os::unix::fs::symlink(&store, &link)
                .map_err(|e| format!("linking named cache {} at {}: {e}", c.name, link.display()))?;
        }
        Ok(())
    }

    /// The child's environment: the bot's, then the manifest's `env` (an empty
    /// value unsets), then `env_prefixes` (absolute under the work dir,
    /// prepended with `:`), then the `SWARMING_*` variables.
    fn environment(&self, m: &Manifest, work: &Path) -> Result<BTreeMap<OsString, OsString>, String> {
        let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        for (k, v) in &m.env {
            if k.is_empty() || k.contains('=') {
                return Err(format!("invalid environment variable name {k:?}"));
            }
            if v.is_empty() {
                env.remove(&OsString::from(k));
            } else {
                env.insert(k.into(), v.into());
            }
        }
        for (k, paths) in &m.env_prefixes {
            if k.is_empty() || k.contains('=') {
                return Err(format!("invalid environment variable name {k:?}"));
            }
            let mut parts = Vec::with_capacity(paths.len() + 1);
            for p in paths {
                let rel = safe_relative(p).ok_or_else(|| format!("invalid env_prefixes path {p:?} for {k}"))?;
                parts.push(work.join(rel).into_os_string());
            }
            if let Some(old) = env.get(&OsString::from(k)).filter(|o| !o.is_empty()) {
                parts.push(old.clone());
            }
            let mut joined = OsString::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    joined.push(":");
                }
                joined.push(p);
            }
            env.insert(k.into(), joined);
        }
        env.insert("SWARMING_TASK_ID".into(), m.task_id.clone().into());
        env.insert("SWARMING_BOT_ID".into(), self.bot_id.clone().into());
        env.insert("SWARMING_SERVER".into(), self.server.clone().into());
        env.insert("SWARMING_HEADLESS".into(), "1".into());
        Ok(env)
    }

    /// The streaming loop: output, packets, timeouts, kill dance, exit.
    async fn stream<'a, S: UpdateSink + ?Sized>(
        &'a self,
        m: &Manifest,
        sink: &'a S,
        shutdown: &CancellationToken,
        st: Started,
    ) -> Streamed {
        let cfg = &self.config;
        let Started { mut child, pid, mut rx, started } = st;
        let hard = secs(m.hard_timeout);
        let io = secs(m.io_timeout);
        let grace = secs(m.grace_period).unwrap_or(Duration::ZERO);

        let mut buf: Vec<u8> = Vec::new();
        let mut sent: u64 = 0;
        let mut last_output = started;
        let mut last_send = Instant::now();
        let mut retry_after: Option<Instant> = None;
        let mut inflight: Option<Inflight<'a>> = None;
        let mut exit: Option<(i64, Instant)> = None;
        let mut rx_open = true;
        let mut must_stop = false;
        let mut reason: Option<KillReason> = None;
        let mut term_at: Option<Instant> = None;
        let mut killed = false;
        let mut tick = tokio::time::interval(cfg.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            if let Some((_, at)) = exit {
                if inflight.is_none() && (!rx_open || at.elapsed() >= cfg.drain_timeout) {
                    break;
                }
            }
            tokio::select! {
                chunk = rx.recv(), if rx_open => match chunk {
                    Some(b) => {
                        buf.extend_from_slice(&b);
                        last_output = Instant::now();
                    }
                    None => rx_open = false,
                },
                status = child.wait(), if exit.is_none() => {
                    let code = match status {
                        Ok(s) => exit_code_of(s),
                        Err(_) => -1,
                    };
                    exit = Some((code, Instant::now()));
                    // Whatever the command left behind in its group goes too.
                    signal_group(pid, Signal::SIGKILL);
                }
                res = poll_inflight(&mut inflight), if inflight.is_some() => {
                    inflight = None;
                    last_send = Instant::now();
                    match res {
                        (Ok(stop), n) => {
                            buf.drain(..n);
                            sent += n as u64;
                            must_stop |= stop;
                        }
                        (Err(e), _) => {
                            tracing::warn!(task_id = m.task_id, error = %e, "task update failed; will re-send");
                            retry_after = Some(Instant::now() + cfg.retry_pause);
                        }
                    }
                }
                _ = shutdown.cancelled(), if reason.is_none() && exit.is_none() => {}
                _ = tick.tick() => {}
            }

            let now = Instant::now();
            if exit.is_none() {
                if reason.is_none() {
                    reason = if must_stop {
                        Some(KillReason::MustStop)
                    } else if shutdown.is_cancelled() {
                        Some(KillReason::Shutdown)
                    } else if hard.is_some_and(|h| now.duration_since(started) >= h) {
                        Some(KillReason::HardTimeout)
                    } else if io.is_some_and(|t| now.duration_since(last_output) >= t) {
                        Some(KillReason::IoTimeout)
                    } else {
                        None
                    };
                    if let Some(r) = reason {
                        tracing::info!(task_id = m.task_id, reason = ?r, "stopping the task");
                        signal_group(pid, Signal::SIGTERM);
                        term_at = Some(now);
                    }
                } else if !killed && term_at.is_some_and(|t| now.duration_since(t) >= grace) {
                    signal_group(pid, Signal::SIGKILL);
                    killed = true;
                }
            }

            // Progress packets, only while the command runs (the rest goes
            // with the final packet).
            let may_send = inflight.is_none() && exit.is_none() && retry_after.is_none_or(|t| now >= t);
            if may_send {
                let since = now.duration_since(last_send);
                let due = (!buf.is_empty() && (since >= cfg.flush_interval || buf.len() >= cfg.max_chunk))
                    || since >= cfg.keepalive;
                if due {
                    retry_after = None;
                    let n = buf.len().min(cfg.max_chunk);
                    let mut p = self.packet(&m.task_id);
                    if n > 0 {
                        p.output = Some(encode_b64(&buf[..n]));
                        p.output_chunk_start = Some(sent);
                    }
                    inflight = Some(Box::pin(async move { (sink.update(p).await, n) }));
                }
            }
        }
        let (exit_code, exited_at) = exit.unwrap_or((-1, Instant::now()));
        Streamed { exit_code, duration: exited_at.duration_since(started).as_secs_f64(), reason, sent, buf }
    }
}

struct Started {
    child: tokio::process::Child,
    pid: u32,
    rx: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    started: Instant,
}

struct Streamed {
    exit_code: i64,
    duration: f64,
    reason: Option<KillReason>,
    /// Bytes acknowledged by the server.
    sent: u64,
    /// Bytes not yet acknowledged (from offset `sent`).
    buf: Vec<u8>,
}

async fn poll_inflight<'a>(f: &mut Option<Inflight<'a>>) -> (Result<bool, SinkError>, usize) {
    match f.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn secs(s: f64) -> Option<Duration> {
    if s.is_finite() && s > 0.0 {
        Some(Duration::from_secs_f64(s.min(1e9)))
    } else {
        None
    }
}

/// Exit code convention: the code, or minus the signal number (-15 SIGTERM,
/// -9 SIGKILL), or -1 when unknown.
pub fn exit_code_of(s: std::process::ExitStatus) -> i64 {
    s.code().map(i64::from).or_else(|| s.signal().map(|sig| -i64::from(sig))).unwrap_or(-1)
}

/// Sends `sig` to the process group `pgid` (no error if it is gone).
pub fn signal_group(pgid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    if raw <= 1 {
        return;
    }
    if let Err(e) = nix::sys::signal::killpg(Pid::from_raw(raw), sig) {
        if e != nix::errno::Errno::ESRCH {
            tracing::warn!(pgid, signal = ?sig, error = %e, "signalling the task's process group");
        }
    }
}

/// Task ids become path components: ASCII alphanumerics, `-` and `_` only.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `p` if it is a non-empty relative path without `..`.
fn safe_relative(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    if p.is_empty() || path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    }
}
