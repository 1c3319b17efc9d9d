//! The bot's main loop (docs/bot-protocol.md: handshake, poll, poll commands, events):
//! start-up (lock, clean, config), `server_ping`, `handshake`, then `poll`
//! forever and act on `sleep`, `run`, `terminate`, `update` and `bot_restart`.
//!
//! Each poll carries freshly gathered dimensions (auto-detected, extra, hook,
//! then server-enforced) and state (including health: low disk or a failing
//! health hook quarantine the bot). A poll is retried with the same
//! `request_uuid` until one succeeds. Failures of hooks, updates and the like
//! become `bot_error` events (each message at most once per 10 minutes); they
//! never stop the bot.

use crate::dirs::{self, DirLock};
use crate::hooks::{self, Hook};
use crate::host;
use crate::remote::{loop_backoff, NetError, Remote, Retry, TASK_UPDATE_BUDGET};
use crate::runner::{valid_task_id, SinkError, TaskRunner, UpdateSink};
use crate::{BotError, BotExit, BotOptions};
use async_trait::async_trait;
use muster_api::bot::{
    cmd, DimMap, EventRequest, HandshakeRequest, HandshakeResponse, Manifest, PollRequest, PollResponse,
    TaskErrorRequest, TaskUpdateRequest, TaskUpdateResponse,
};
use muster_core::time::{Clock as _, SystemClock};
use rand::Rng as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// An identical `bot_error` message is posted at most this often.
const ERROR_DEDUP: Duration = Duration::from_secs(600);
/// How long a failed self-update quarantines the bot and is not retried.
const UPDATE_QUARANTINE: Duration = Duration::from_secs(600);
/// Cap of the poll and handshake error backoff: low, so that bots are back
/// within seconds of a server restart.
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// Retry budget of events.
const EVENT_BUDGET: Duration = Duration::from_secs(60);
/// Longest sleep the bot honours from a `sleep` reply.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

pub(crate) async fn run(opts: BotOptions, shutdown: CancellationToken) -> Result<BotExit, BotError> {
    dirs::check_safe(&opts.dir)?;
    let lock = DirLock::acquire(&opts.dir)?;
    let dir = opts.dir.canonicalize().map_err(|e| BotError::io(format!("resolving {}", opts.dir.display()), e))?;
    let trailer = match crate::own_trailer() {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the config trailer of the running executable");
            Default::default()
        }
    };
    let servers: Vec<String> = if opts.servers.iter().all(|s| s.trim().is_empty()) {
        vec![trailer.server.clone()]
    } else {
        opts.servers.clone()
    };
    let bot_id = host::bot_id(opts.bot_id.as_deref());
    // The credential: given, else the machine token a bootstrap token was
    // exchanged for earlier, else the bootstrap token (exchanged at handshake).
    let mut token = opts.token.clone().filter(|t| !t.is_empty());
    let mut bootstrap = opts.bootstrap_token.clone().filter(|t| !t.is_empty());
    if token.is_none() {
        token = dirs::read_machine_token(&dir);
    }
    if token.is_some() && bootstrap.is_some() {
        tracing::info!("a credential is at hand: the bootstrap token is not used");
        bootstrap = None;
    }
    // Validates every URL (NoServer, BadServer) before the directory is touched.
    let remote = Remote::new(&servers, &bot_id, token, shutdown.clone())?
        .with_ca_file(opts.ca_file.as_deref())?
        .with_bootstrap(bootstrap);
    for problem in dirs::clean(&dir) {
        tracing::warn!(problem, "cleaning the bot directory");
    }
    let version = crate::own_version().map_err(|e| BotError::io("hashing the running executable", e))?;
    let hook_path = match (&opts.hook, &trailer.hook_script) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(script)) if !script.is_empty() => {
            let p = dir.join(dirs::HOOK_FILE);
            std::fs::write(&p, script).map_err(|e| BotError::io(format!("writing {}", p.display()), e))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| BotError::io(format!("making {} executable", p.display()), e))?;
            Some(p)
        }
        _ => None,
    };
    let mut runner = TaskRunner::new(dir.clone(), &bot_id, remote.server());
    runner.config = opts.runner.clone();
    let mut agent = Agent {
        base_dims: host::detect_dimensions(&bot_id, &opts.extra_dimensions),
        server_dims: trailer.dimensions.clone(),
        hook: hook_path.map(|p| Hook::new(p, opts.hook_timeout)),
        hook_dims: None,
        opts,
        dir,
        bot_id,
        version,
        remote,
        runner,
        shutdown,
        started: Instant::now(),
        started_ts: SystemClock.now().timestamp(),
        sleep_streak: 0,
        last_dims: Value::Null,
        last_state: Value::Null,
        posted_errors: HashMap::new(),
        update_failed: HashMap::new(),
        sticky_quarantine: None,
        warned_no_update: false,
        shutdown_posted: false,
    };
    let servers = agent.remote.servers().join(",");
    tracing::info!(bot_id = agent.bot_id, servers, version = agent.version, "bot starting");
    let res = agent.serve().await;
    drop(lock);
    Ok(res)
}

struct Agent {
    opts: BotOptions,
    dir: PathBuf,
    bot_id: String,
    version: String,
    remote: Remote,
    runner: TaskRunner,
    shutdown: CancellationToken,
    hook: Option<Hook>,
    /// Auto-detected + extra dimensions.
    base_dims: DimMap,
    /// Last good `get_dimensions` hook result.
    hook_dims: Option<DimMap>,
    /// Server-enforced dimensions (trailer, then handshake `bot_group_cfg`).
    server_dims: DimMap,
    started: Instant,
    started_ts: i64,
    sleep_streak: u64,
    last_dims: Value,
    last_state: Value,
    posted_errors: HashMap<String, Instant>,
    update_failed: HashMap<String, Instant>,
    sticky_quarantine: Option<(String, Instant)>,
    warned_no_update: bool,
    shutdown_posted: bool,
}

impl Agent {
    async fn serve(&mut self) -> BotExit {
        // server_ping: failure is only logged.
        tokio::select! {
            r = self.remote.ping(Retry::Budget(Duration::from_secs(30))) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "server_ping failed; is the network up?");
                }
            }
            _ = self.shutdown.cancelled() => {}
        }
        if let Some(exit) = self.handshake().await {
            return exit;
        }
        self.poll_loop().await
    }

    /// Handshakes until it succeeds; `Some(exit)` if shutdown came first.
    async fn handshake(&mut self) -> Option<BotExit> {
        let session_id = format!("{}/{}", hex::encode(rand::rng().random::<[u8; 16]>()), std::process::id());
        let mut failures = 0u32;
        loop {
            if self.shutdown.is_cancelled() {
                return Some(self.exit_on_shutdown().await);
            }
            let (dimensions, state) = self.gather().await;
            let req = HandshakeRequest {
                dimensions,
                state,
                version: self.version.clone(),
                session_id: Some(session_id.clone()),
            };
            let res = tokio::select! {
                r = self.remote.post_json::<_, HandshakeResponse>("/handshake", &req, Retry::Once) => r,
                _ = self.shutdown.cancelled() => continue,
            };
            match res {
                Ok(resp) => {
                    if let Some(machine) = resp.machine_token.as_deref().filter(|t| !t.is_empty()) {
                        self.store_machine_token(machine).await;
                    }
                    if let Some(script) = resp.bot_config.as_deref().filter(|s| !s.is_empty()) {
                        self.install_group_hook(&resp.bot_config_name, script);
                    }
                    for (k, v) in resp.bot_group_cfg.dimensions {
                        self.server_dims.insert(k, v);
                    }
                    // Not news: a bot started from the server's own build
                    // (muster dev) differs only by the trailer and is never
                    // told to update. A real update arrives as a poll command.
                    if !resp.bot_version.is_empty() && resp.bot_version != self.version {
                        tracing::debug!(server_has = resp.bot_version, "the server serves another bot version");
                    }
                    tracing::info!(server_version = resp.server_version, "handshake done");
                    return None;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "handshake failed");
                    self.pause(loop_backoff(failures + 1, 2.0, BACKOFF_CAP)).await;
                }
            }
        }
    }

    /// Keeps the machine token a bootstrap token was exchanged for: in
    /// `<dir>/machine.token` (mode 0600) for later starts, and for every call
    /// from now on. A failure to store it is reported: the bot then needs a
    /// new bootstrap token after its next restart.
    async fn store_machine_token(&mut self, machine: &str) {
        self.remote.adopt_machine_token(machine);
        match dirs::write_machine_token(&self.dir, machine) {
            Ok(()) => tracing::info!("bootstrap token exchanged; machine token stored in {}", dirs::MACHINE_TOKEN_FILE),
            Err(e) => {
                let msg =
                    format!("storing the machine token in {}: {e}", self.dir.join(dirs::MACHINE_TOKEN_FILE).display());
                self.bot_error(&msg).await;
            }
        }
    }

    /// Uses the hook script of the bot's group (bots.cfg
    /// `bot_config_script`, sent at handshake) unless `--hook` was given.
    fn install_group_hook(&mut self, name: &str, script: &str) {
        if self.opts.hook.is_some() {
            return;
        }
        let p = self.dir.join(dirs::HOOK_FILE);
        let written = std::fs::write(&p, script)
            .and_then(|_| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)));
        match written {
            Ok(()) => {
                tracing::info!(name, "using the bot group's hook script");
                self.hook = Some(Hook::new(p, self.opts.hook_timeout));
            }
            Err(e) => tracing::warn!(error = %e, name, "writing the bot group's hook script"),
        }
    }

    async fn poll_loop(&mut self) -> BotExit {
        let mut request_uuid = uuid::Uuid::new_v4().to_string();
        let mut errors = 0u32;
        loop {
            if self.shutdown.is_cancelled() {
                return self.exit_on_shutdown().await;
            }
            let (dimensions, state) = self.gather().await;
            let req = PollRequest {
                dimensions,
                state,
                // Without self-update, report no version so the server never asks to update
                // (an empty version is never compared, as in upstream Swarming).
                version: if self.opts.self_update { self.version.clone() } else { String::new() },
                session: self.remote.session(),
                request_uuid: Some(request_uuid.clone()),
                force: None,
            };
            let res = tokio::select! {
                r = self.remote.post_json::<_, PollResponse>("/poll", &req, Retry::Once) => r,
                _ = self.shutdown.cancelled() => continue,
            };
            let reply = match res {
                Ok(r) => {
                    request_uuid = uuid::Uuid::new_v4().to_string();
                    r
                }
                // Keep `request_uuid`: the retry (which may go to another replica after a
                // failover) must carry the same one, so that a task whose claim committed on
                // a replica that failed before replying is handed back instead of being lost.
                Err(e) => {
                    errors += 1;
                    tracing::warn!(error = %e, consecutive = errors, "poll failed");
                    self.pause(loop_backoff(errors, 1.4, BACKOFF_CAP)).await;
                    continue;
                }
            };
            match self.act(reply).await {
                Ok(None) => errors = 0,
                Ok(Some(exit)) => return exit,
                Err(msg) => {
                    errors += 1;
                    self.bot_error(&msg).await;
                    self.pause(loop_backoff(errors, 1.4, BACKOFF_CAP)).await;
                }
            }
        }
    }

    /// Acts on one poll reply. `Err` is a malformed reply (counts as a poll error).
    async fn act(&mut self, reply: PollResponse) -> Result<Option<BotExit>, String> {
        match reply.cmd.as_str() {
            cmd::SLEEP => {
                let d = reply.duration.filter(|d| d.is_finite() && *d >= 0.0).unwrap_or(1.0);
                self.sleep_streak += 1;
                self.pause(Duration::from_secs_f64(d).min(MAX_SLEEP)).await;
                Ok(None)
            }
            cmd::RUN => {
                let m = reply.manifest.ok_or("poll reply `run` has no manifest")?;
                self.run_task(m).await;
                self.sleep_streak = 0;
                Ok(None)
            }
            cmd::TERMINATE => {
                let task_id = reply.task_id.ok_or("poll reply `terminate` has no task_id")?;
                if valid_task_id(&task_id) {
                    let p = TaskUpdateRequest {
                        id: self.bot_id.clone(),
                        task_id: task_id.clone(),
                        session: self.remote.session(),
                        exit_code: Some(0),
                        duration: Some(0.0),
                        ..Default::default()
                    };
                    let path = format!("/task_update/{task_id}");
                    let r = self.remote.post_json::<_, Value>(&path, &p, Retry::Budget(EVENT_BUDGET)).await;
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "acknowledging terminate");
                    }
                }
                self.post_shutdown("Terminated by the server").await;
                Ok(Some(BotExit::Terminated))
            }
            cmd::UPDATE => {
                let v = reply.version.ok_or("poll reply `update` has no version")?;
                Ok(self.self_update(&v).await)
            }
            cmd::BOT_RESTART => {
                let msg = reply.message.unwrap_or_default();
                match std::env::current_exe() {
                    Ok(exe) => {
                        self.post_shutdown(&format!("About to restart: {msg}")).await;
                        Ok(Some(BotExit::Restart { exe }))
                    }
                    Err(e) => Err(format!("cannot restart ({msg}): finding the running executable: {e}")),
                }
            }
            other => Err(format!("unknown poll command {other:?}")),
        }
    }

    async fn self_update(&mut self, version: &str) -> Option<BotExit> {
        if !self.opts.self_update {
            if !self.warned_no_update {
                self.warned_no_update = true;
                let msg = format!("the server asks to update to {version} but self-update is disabled");
                self.bot_error(&msg).await;
            }
            self.pause(Duration::from_secs(60)).await;
            return None;
        }
        if version == self.version {
            self.pause(Duration::from_secs(10)).await;
            return None;
        }
        if self.update_failed.get(version).is_some_and(|until| Instant::now() < *until) {
            self.pause(Duration::from_secs(60)).await;
            return None;
        }
        let res = tokio::select! {
            r = crate::update::fetch_and_install(&self.remote, &self.dir, version) => r,
            _ = self.shutdown.cancelled() => return None,
        };
        match res {
            Ok(exe) => {
                self.post_shutdown(&format!("About to restart: Updating to {version}")).await;
                Some(BotExit::Restart { exe })
            }
            Err(e) => {
                let until = Instant::now() + UPDATE_QUARANTINE;
                self.update_failed.insert(version.to_string(), until);
                self.sticky_quarantine = Some((format!("self-update failed: {e}"), until));
                self.bot_error(&format!("self-update to {version} failed: {e}")).await;
                None
            }
        }
    }

    async fn run_task(&mut self, m: Manifest) {
        if !valid_task_id(&m.task_id) {
            self.bot_error(&format!("refusing a task with an invalid id {:?}", m.task_id)).await;
            return;
        }
        tracing::info!(task_id = m.task_id, "running task");
        if let Some(hook) = self.hook.clone() {
            if let Err(e) = hook.call("on_before_task", &json!({ "manifest": m })).await {
                self.bot_error(&e.to_string()).await;
            }
        }
        // The task sees the server the bot currently talks to.
        self.runner.server = self.remote.server().to_string();
        let sink = RemoteSink { remote: &self.remote };
        let summary = self.runner.run(&m, &sink, &self.shutdown).await;
        tracing::info!(task_id = m.task_id, exit_code = ?summary.exit_code, "task done");
        if let Some(e) = &summary.update_lost {
            self.bot_error(&format!("task {}: could not reach the server: {e}", m.task_id)).await;
        }
        if let Some(hook) = self.hook.clone() {
            if let Err(e) = hook.call("on_after_task", &json!({ "manifest": m, "result": summary })).await {
                self.bot_error(&e.to_string()).await;
            }
        }
    }

    /// Fresh dimensions and state (hooks and health included), remembered for events.
    async fn gather(&mut self) -> (Value, Value) {
        let mut errors: Vec<String> = Vec::new();
        let mut quarantine: Vec<String> = Vec::new();

        let mut dims = self.base_dims.clone();
        if let Some(hook) = self.hook.clone() {
            match hook.call("get_dimensions", &json!({ "dimensions": dims })).await {
                Ok(v) => match hooks::dimensions_from(&v) {
                    Ok(Some(d)) => self.hook_dims = Some(d),
                    Ok(None) => {}
                    Err(e) => errors.push(format!("hook get_dimensions: {e}")),
                },
                Err(e) => errors.push(e.to_string()),
            }
            if let Some(d) = &self.hook_dims {
                dims = d.clone();
            }
        }
        for (k, v) in &self.server_dims {
            dims.insert(k.clone(), v.clone());
        }
        dims.insert("id".into(), vec![self.bot_id.clone()]);

        let mut state = host::base_state(&host::StateInputs {
            bot_dir: &self.dir,
            running_time_secs: self.started.elapsed().as_secs_f64(),
            started_ts: self.started_ts,
            sleep_streak: self.sleep_streak,
        });
        if let Some(hook) = self.hook.clone() {
            match hook.call("get_state", &json!({ "state": state })).await {
                Ok(Value::Object(o)) => {
                    let extra = match o.get("state") {
                        Some(Value::Object(s)) => s.clone(),
                        _ => o,
                    };
                    state.extend(extra);
                }
                Ok(_) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }

        // Health.
        if let Some((free, _)) = host::disk_space(&self.dir) {
            let free_mb = free / (1024 * 1024);
            if free_mb < self.opts.min_free_disk_mb {
                quarantine.push(format!(
                    "low disk: {free_mb} MiB free in {}, need {} MiB",
                    self.dir.display(),
                    self.opts.min_free_disk_mb
                ));
            }
        }
        if let Some(hook) = self.hook.clone() {
            match hook.call("health", &json!({ "dimensions": dims, "state": state })).await {
                Ok(v) => {
                    if let Some(q) = v.get("quarantined").and_then(flag_text) {
                        quarantine.push(q);
                    }
                    if let Some(mt) = v.get("maintenance").and_then(flag_text) {
                        state.insert("maintenance".into(), json!(mt));
                    }
                }
                Err(e) => {
                    quarantine.push(format!("health check failed: {e}"));
                    errors.push(e.to_string());
                }
            }
        }
        if let Some((msg, until)) = &self.sticky_quarantine {
            if Instant::now() < *until {
                quarantine.push(msg.clone());
            }
        }
        if !quarantine.is_empty() {
            state.insert("quarantined".into(), json!(quarantine.join("; ")));
        }

        let dims_v = serde_json::to_value(&dims).unwrap_or(Value::Null);
        let state_v = Value::Object(state);
        self.last_dims = dims_v.clone();
        self.last_state = state_v.clone();
        for e in errors {
            self.bot_error(&e).await;
        }
        (dims_v, state_v)
    }

    async fn post_event(&mut self, event: &str, message: &str) {
        if self.last_dims.is_null() {
            // Before the first poll: the detected dimensions are good enough.
            let mut d = self.base_dims.clone();
            d.extend(self.server_dims.clone());
            self.last_dims = serde_json::to_value(&d).unwrap_or(Value::Null);
        }
        let req = EventRequest {
            dimensions: self.last_dims.clone(),
            state: self.last_state.clone(),
            version: self.version.clone(),
            event: event.to_string(),
            message: message.to_string(),
            session: self.remote.session(),
        };
        if let Err(e) = self.remote.post_json::<_, Value>("/event", &req, Retry::Budget(EVENT_BUDGET)).await {
            tracing::warn!(event, error = %e, "posting an event");
        }
    }

    /// Posts `bot_error` unless the same message went out in the last 10 minutes.
    async fn bot_error(&mut self, message: &str) {
        tracing::warn!(message, "bot error");
        let now = Instant::now();
        if self.posted_errors.get(message).is_some_and(|t| now.duration_since(*t) < ERROR_DEDUP) {
            return;
        }
        self.posted_errors.retain(|_, t| now.duration_since(*t) < ERROR_DEDUP);
        self.posted_errors.insert(message.to_string(), now);
        self.post_event("bot_error", message).await;
    }

    /// Posts the one `bot_shutdown` event of this process.
    async fn post_shutdown(&mut self, message: &str) {
        if self.shutdown_posted {
            return;
        }
        self.shutdown_posted = true;
        self.post_event("bot_shutdown", message).await;
    }

    async fn exit_on_shutdown(&mut self) -> BotExit {
        self.post_shutdown("Signal was received").await;
        BotExit::Shutdown
    }

    /// Sleeps `d`, or less if shutdown is requested.
    async fn pause(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.shutdown.cancelled() => {}
        }
    }
}

/// Text of a truthy `quarantined`/`maintenance` value.
fn flag_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Bool(true) => Some("quarantined by the health hook".to_string()),
        _ => None,
    }
}

/// The real [`UpdateSink`]: POSTs to the server.
struct RemoteSink<'a> {
    remote: &'a Remote,
}

fn sink_error(e: NetError) -> SinkError {
    if e.is_transient() {
        SinkError::Transient(e.to_string())
    } else {
        SinkError::Permanent(e.to_string())
    }
}

#[async_trait]
impl UpdateSink for RemoteSink<'_> {
    async fn update(&self, mut packet: TaskUpdateRequest) -> Result<bool, SinkError> {
        packet.session = self.remote.session();
        let path = format!("/task_update/{}", packet.task_id);
        let r: TaskUpdateResponse =
            self.remote.post_json(&path, &packet, Retry::Budget(TASK_UPDATE_BUDGET)).await.map_err(sink_error)?;
        if r.must_stop {
            tracing::info!(task_id = packet.task_id, reason = ?r.stop_reason, "server says must_stop");
        }
        Ok(r.must_stop)
    }

    async fn task_error(&self, task_id: &str, message: &str) -> Result<(), SinkError> {
        let req = TaskErrorRequest {
            id: self.remote.bot_id().to_string(),
            task_id: task_id.to_string(),
            session: self.remote.session(),
            message: message.to_string(),
            client_error: None,
        };
        let path = format!("/task_error/{task_id}");
        self.remote
            .post_json::<_, Value>(&path, &req, Retry::Budget(TASK_UPDATE_BUDGET))
            .await
            .map(|_| ())
            .map_err(sink_error)
    }
}
