//! The six scenarios of bench/README.md. Each starts its own server (fresh data
//! dir), drives it, and returns a [`Report`]. Sizes default per scenario;
//! `--small` shrinks everything to a few hundred bots and a few seconds.

use crate::fleet::{BotCfg, BotSpec, DimsFn, Fleet, Packets, Recorder, Submitters};
use crate::http::Http;
use crate::report::{percentiles, round3, Report};
use crate::server::{default_exe, Launch, Server};
use crate::sys::ProcSample;
use crate::{BenchArgs, Scenario};
use anyhow::{anyhow, Context};
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resolved arguments shared by the scenarios.
pub struct Ctx {
    pub args: BenchArgs,
    pub exe: PathBuf,
    work: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    open_files: u64,
}

impl Ctx {
    pub fn new(args: BenchArgs, open_files: u64) -> anyhow::Result<Ctx> {
        let exe = default_exe(args.exe.as_deref())?;
        let (work, tmp) = match &args.work_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new().prefix("muster-bench-").tempdir().context("creating a temp dir")?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(Ctx { args, exe, work, _tmp: tmp, open_files })
    }

    fn pick<T>(&self, given: Option<T>, full: T, small: T) -> T {
        given.unwrap_or(if self.args.small { small } else { full })
    }

    /// `n` bots, capped so that the bench and the server (which inherits our
    /// RLIMIT_NOFILE) each keep one socket per bot plus some headroom.
    fn bots(&self, r: &mut Report, n: usize) -> usize {
        let max = (self.open_files as usize).saturating_sub(1000).max(1);
        if n <= max {
            return n;
        }
        r.note(format!(
            "asked for {n} bots but RLIMIT_NOFILE is {} and cannot be raised (no CAP_SYS_RESOURCE): one \
             connection per bot on both sides (and the HTTP pool may briefly open a few more), so ran {max} bots",
            self.open_files
        ));
        max
    }

    fn long_poll(&self) -> Option<u64> {
        self.args.long_poll_secs.or(if self.args.small { Some(2) } else { None })
    }

    fn launch(&self, name: &str) -> Launch {
        let n = uuid::Uuid::new_v4().simple().to_string();
        Launch {
            exe: self.exe.clone(),
            data_dir: self.work.join(format!("{name}-{}", &n[..8])),
            long_poll_secs: self.long_poll(),
            database: self.args.database.clone(),
        }
    }

    /// A fresh server child, or the `--server` one.
    async fn server(&self, name: &str) -> anyhow::Result<Server> {
        match &self.args.server {
            Some(url) => Ok(Server::remote(url, self.args.server_pid)),
            None => Server::start(&self.launch(name), 0).await,
        }
    }

    fn http(&self, url: &str) -> anyhow::Result<Http> {
        Http::new(url, Duration::from_secs(120))
    }

    fn common(&self, r: &mut Report, server: &Server) {
        r.param("small", self.args.small);
        r.param(
            "server",
            if self.args.server.is_some() { server.url.clone() } else { format!("child: {}", self.exe.display()) },
        );
        r.param("long_poll_secs", self.long_poll().map(Value::from).unwrap_or_else(|| "server default (25)".into()));
        r.param("open_files_limit", self.open_files);
        let engine = match &self.args.database {
            Some(db) if db.starts_with("postgres") => "postgresql",
            _ => "sqlite",
        };
        r.param("database", engine);
    }
}

/// Runs one scenario.
pub async fn run(ctx: &Ctx, s: Scenario) -> anyhow::Result<Report> {
    match s {
        Scenario::FleetIdle => fleet_idle(ctx).await,
        Scenario::DispatchLatency => dispatch_latency(ctx).await,
        Scenario::Throughput => throughput(ctx).await,
        Scenario::MixedDimensions => mixed_dimensions(ctx).await,
        Scenario::Restart => restart(ctx).await,
        Scenario::Ui => ui(ctx).await,
        Scenario::Metrics => metrics(ctx).await,
        Scenario::All => Err(anyhow!("`all` is not a single scenario")),
    }
}

fn bot_cfg(packets: Packets) -> BotCfg {
    BotCfg { packets, max_sleep: Duration::from_secs(60), ramp: 256 }
}

fn specs(prefix: &str, n: usize, pool: &str) -> Vec<BotSpec> {
    (0..n).map(|i| BotSpec::new(&format!("{prefix}-{i}"), pool, &[])).collect()
}

fn pool_dims(pool: &str) -> DimsFn {
    let pool = pool.to_string();
    Arc::new(move |_| vec![("pool".to_string(), pool.clone())])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fd_count(server: &Server) -> Option<usize> {
    server.pid.and_then(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok()).map(|d| d.count())
}

/// Server and bench CPU over a window.
struct Window {
    at: Instant,
    server: Option<ProcSample>,
    bench: Option<ProcSample>,
}

impl Window {
    fn open(server: &Server) -> Window {
        Window { at: Instant::now(), server: server.sample(), bench: crate::sys::sample("self").ok() }
    }
    /// (seconds, server CPU seconds, bench CPU seconds).
    fn close(&self, server: &Server) -> (f64, Option<f64>, Option<f64>) {
        let secs = self.at.elapsed().as_secs_f64();
        let s = match (self.server, server.sample()) {
            (Some(a), Some(b)) => Some(b.cpu_secs - a.cpu_secs),
            _ => None,
        };
        let b = match (self.bench, crate::sys::sample("self").ok()) {
            (Some(a), Some(b)) => Some(b.cpu_secs - a.cpu_secs),
            _ => None,
        };
        (secs, s, b)
    }
}

fn cpu_pct(cpu: Option<f64>, secs: f64) -> Value {
    cpu.map(|c| json!(round3(c / secs * 100.0))).unwrap_or(Value::Null)
}

fn errors(r: &mut Report, rec: &Recorder) {
    let n = rec.errors.load(Relaxed);
    r.fig("client_errors", n);
    if n > 0 {
        r.note(format!("last client error: {}", rec.last_error()));
    }
}

async fn start_fleet(
    ctx: &Ctx,
    http: &Http,
    specs: Vec<BotSpec>,
    packets: Packets,
    rec: &Arc<Recorder>,
) -> anyhow::Result<(Fleet, f64)> {
    let n = specs.len() as u64;
    let t = Instant::now();
    let fleet = Fleet::start(http, specs, &bot_cfg(packets), rec);
    let limit = Duration::from_secs(if ctx.args.small { 60 } else { 600 });
    if !Fleet::wait_polling(rec, n, limit).await {
        let got = rec.polling.load(Relaxed);
        fleet.stop();
        return Err(anyhow!("only {got} of {n} bots were polling after {limit:?}; last error: {}", rec.last_error()));
    }
    Ok((fleet, t.elapsed().as_secs_f64()))
}

/// Waits until every acknowledged task completed (or `limit`).
async fn drain(rec: &Recorder, limit: Duration) {
    let deadline = Instant::now() + limit;
    while rec.completed.load(Relaxed) < rec.submitted.load(Relaxed) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// created → delivered and created → completed, milliseconds.
fn latencies(rec: &Recorder) -> (Value, Value, u64) {
    let mut deliver = Vec::new();
    let mut complete = Vec::new();
    let mut undelivered = 0;
    for (_, t) in rec.snapshot() {
        let Some(c) = t.created else { continue };
        match t.delivered {
            Some(d) => deliver.push(ms(d.saturating_duration_since(c))),
            None => undelivered += 1,
        }
        if let Some(d) = t.completed {
            complete.push(ms(d.saturating_duration_since(c)));
        }
    }
    (percentiles(deliver), percentiles(complete), undelivered)
}

async fn fleet_idle(ctx: &Ctx) -> anyhow::Result<Report> {
    let n = ctx.pick(ctx.args.bots, 20_000, 200);
    let secs = ctx.pick(ctx.args.duration_secs, 30.0, 3.0);
    let server = ctx.server("fleet-idle").await?;
    let http = ctx.http(&server.url)?;
    let mut r = Report::new("fleet-idle");
    ctx.common(&mut r, &server);
    let n = ctx.bots(&mut r, n);
    r.param("bots", n);
    r.param("duration_secs", secs);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = server.sample();
    let rec = Arc::new(Recorder::default());
    let (fleet, ramp) = start_fleet(ctx, &http, specs("idle", n, "bench"), Packets::Single, &rec).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls0 = rec.polls.load(Relaxed);
    let w = Window::open(&server);
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let polls = rec.polls.load(Relaxed) - polls0;
    let (wsecs, scpu, bcpu) = w.close(&server);
    let after = server.sample();
    let fds = fd_count(&server);
    fleet.stop();
    r.fig("bots_polling", rec.polling.load(Relaxed));
    r.fig("ramp_up_secs", round3(ramp));
    r.fig("server_open_fds", fds.map(Value::from).unwrap_or(Value::Null));
    if let (Some(b), Some(a)) = (base, after) {
        let per_bot = (a.rss_kib as f64 - b.rss_kib as f64) / n as f64;
        r.fig("server_rss_mib_before_fleet", round3(b.rss_kib as f64 / 1024.0));
        r.fig("server_rss_mib_with_fleet", round3(a.rss_kib as f64 / 1024.0));
        r.fig("server_kib_per_idle_bot", round3(per_bot));
        r.target("server KiB per idle bot", per_bot, 10.0, false, "KiB");
    } else {
        r.note("server RSS not sampled (remote server without --server-pid)");
    }
    r.fig("polls_per_sec", round3(polls as f64 / wsecs));
    r.fig("server_cpu_pct", cpu_pct(scpu, wsecs));
    if let Some(c) = scpu {
        r.fig("server_cpu_us_per_poll", round3(c * 1e6 / polls.max(1) as f64));
    }
    r.fig("bench_cpu_pct", cpu_pct(bcpu, wsecs));
    if !ctx.args.small {
        r.target("bots connected", rec.polling.load(Relaxed) as f64, 20_000.0, true, "bots");
    }
    errors(&mut r, &rec);
    server.stop().await?;
    Ok(r)
}

async fn dispatch_latency(ctx: &Ctx) -> anyhow::Result<Report> {
    let n = ctx.pick(ctx.args.bots, 2_000, 200);
    let rate = ctx.pick(ctx.args.rate, 100.0, 50.0);
    let secs = ctx.pick(ctx.args.duration_secs, 30.0, 3.0);
    let server = ctx.server("dispatch").await?;
    let http = ctx.http(&server.url)?;
    let mut r = Report::new("dispatch-latency");
    ctx.common(&mut r, &server);
    let n = ctx.bots(&mut r, n);
    r.param("bots", n);
    r.param("rate_per_sec", rate);
    r.param("duration_secs", secs);
    r.param("task", "output chunk packet, then final packet (exit_code 0)");
    let rec = Arc::new(Recorder::default());
    let (fleet, _) = start_fleet(ctx, &http, specs("disp", n, "bench"), Packets::OutputThenFinal, &rec).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let w = Window::open(&server);
    let total = (rate * secs).round() as u64;
    Submitters::start(&http, 1, rate, Some(total), pool_dims("bench"), &rec).join().await;
    drain(&rec, Duration::from_secs(30)).await;
    let (wsecs, scpu, bcpu) = w.close(&server);
    fleet.stop();
    let (deliver, complete, undelivered) = latencies(&rec);
    r.fig("tasks_acknowledged", rec.submitted.load(Relaxed));
    r.fig("tasks_completed", rec.completed.load(Relaxed));
    r.fig("tasks_not_delivered", undelivered);
    r.fig("created_to_delivered_ms", deliver.clone());
    r.fig("created_to_completed_ms", complete);
    r.fig("server_cpu_pct", cpu_pct(scpu, wsecs));
    r.fig("bench_cpu_pct", cpu_pct(bcpu, wsecs));
    if let (Some(p50), Some(p99)) = (deliver["p50"].as_f64(), deliver["p99"].as_f64()) {
        r.target("dispatch p50", p50, 5.0, false, "ms");
        r.target("dispatch p99", p99, 50.0, false, "ms");
    }
    r.note("created = NewTask reply received; delivered = poll reply with `run` received; one monotonic clock");
    errors(&mut r, &rec);
    server.stop().await?;
    Ok(r)
}

async fn throughput(ctx: &Ctx) -> anyhow::Result<Report> {
    let n = ctx.pick(ctx.args.bots, 1_000, 100);
    let clients = ctx.pick(ctx.args.clients, 64, 8);
    let secs = ctx.pick(ctx.args.duration_secs, 20.0, 3.0);
    let warmup = if ctx.args.small { 1.0 } else { 3.0 };
    let server = ctx.server("throughput").await?;
    let http = ctx.http(&server.url)?;
    let mut r = Report::new("throughput");
    ctx.common(&mut r, &server);
    let n = ctx.bots(&mut r, n);
    r.param("bots", n);
    r.param("clients", clients);
    r.param("duration_secs", secs);
    r.param("warmup_secs", warmup);
    r.param("task", "no-op: one final packet with a 30-byte output and exit_code 0");
    let rec = Arc::new(Recorder::default());
    let (fleet, _) = start_fleet(ctx, &http, specs("thr", n, "bench"), Packets::Single, &rec).await?;
    let subs = Submitters::start(&http, clients, 0.0, None, pool_dims("bench"), &rec);
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let (c0, s0) = (rec.completed.load(Relaxed), rec.submitted.load(Relaxed));
    let w = Window::open(&server);
    let mut timeline = Vec::new();
    let mut last = c0;
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let c = rec.completed.load(Relaxed);
        timeline.push(c - last);
        last = c;
    }
    let (c1, s1) = (rec.completed.load(Relaxed), rec.submitted.load(Relaxed));
    let (wsecs, scpu, bcpu) = w.close(&server);
    subs.stop();
    fleet.stop();
    let done = c1 - c0;
    let rate = done as f64 / wsecs;
    r.fig("completed_tasks_per_sec", round3(rate));
    r.fig("submitted_tasks_per_sec", round3((s1 - s0) as f64 / wsecs));
    r.fig("completed_per_second_timeline", json!(timeline));
    r.fig("pending_backlog_at_end", s1.saturating_sub(c1));
    r.fig("server_cpu_pct", cpu_pct(scpu, wsecs));
    if let Some(c) = scpu {
        r.fig("server_cpu_ms_per_task", round3(c * 1000.0 / done.max(1) as f64));
    }
    r.fig("bench_cpu_pct", cpu_pct(bcpu, wsecs));
    r.target("completed no-op tasks/s", rate, 5000.0, true, "tasks/s");
    r.note("bench and server share the machine's cores; bench_cpu_pct shows the bench's share");
    errors(&mut r, &rec);
    server.stop().await?;
    Ok(r)
}

async fn mixed_dimensions(ctx: &Ctx) -> anyhow::Result<Report> {
    const SETS: usize = 500;
    let n = ctx.pick(ctx.args.bots, 2_000, 200);
    let rate = ctx.pick(ctx.args.rate, 200.0, 50.0);
    let secs = ctx.pick(ctx.args.duration_secs, 10.0, 1.5);
    let per_bot = 25;
    let phases: Vec<usize> = if ctx.args.small { vec![1, 50, 500] } else { vec![1, 10, 100, 250, 500] };
    let server = ctx.server("mixed").await?;
    let http = ctx.http(&server.url)?;
    let mut r = Report::new("mixed-dimensions");
    ctx.common(&mut r, &server);
    let n = ctx.bots(&mut r, n);
    r.param("bots", n);
    r.param("dimension_sets", SETS);
    r.param("sets_per_bot", per_bot);
    r.param("rate_per_sec", rate);
    r.param("phase_secs", secs);
    r.param("phases_queues", json!(phases));
    let mut rng = rand::rng();
    let all: Vec<usize> = (0..SETS).collect();
    let bots: Vec<BotSpec> = (0..n)
        .map(|i| {
            let mut caps: Vec<String> = all.choose_multiple(&mut rng, per_bot).map(|c| format!("c{c}")).collect();
            caps.push(format!("c{}", i % SETS));
            caps.sort();
            caps.dedup();
            BotSpec::new(&format!("mix-{i}"), "bench", &[("cap", caps)])
        })
        .collect();
    let rec = Arc::new(Recorder::default());
    let (fleet, _) = start_fleet(ctx, &http, bots, Packets::Single, &rec).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for q in &phases {
        let q = *q;
        rec.clear_tasks();
        let (c0, p0) = (rec.completed.load(Relaxed), rec.polls.load(Relaxed));
        let w = Window::open(&server);
        let dims: DimsFn = Arc::new(move |_| {
            let c = rand::rng().random_range(0..q);
            vec![("pool".to_string(), "bench".to_string()), ("cap".to_string(), format!("c{c}"))]
        });
        let total = (rate * secs).round() as u64;
        Submitters::start(&http, 1, rate, Some(total), dims, &rec).join().await;
        drain(&rec, Duration::from_secs(20)).await;
        let (wsecs, scpu, _) = w.close(&server);
        let done = rec.completed.load(Relaxed) - c0;
        let polls = rec.polls.load(Relaxed) - p0;
        let (deliver, _, undelivered) = latencies(&rec);
        let row = json!({
            "queues": q, "tasks_completed": done, "not_delivered": undelivered,
            "dispatch_p50_ms": deliver["p50"], "dispatch_p99_ms": deliver["p99"],
            "polls_per_sec": round3(polls as f64 / wsecs),
            "server_cpu_pct": cpu_pct(scpu, wsecs),
            "server_cpu_ms_per_task": scpu.map(|c| round3(c * 1000.0 / done.max(1) as f64)),
            "server_cpu_us_per_poll": scpu.map(|c| round3(c * 1e6 / polls.max(1) as f64)),
        });
        r.fig(&format!("queues_{q:03}"), row);
    }
    fleet.stop();
    r.note("flat = dispatch latency and server CPU per task/poll do not grow with the number of active queues");
    errors(&mut r, &rec);
    server.stop().await?;
    Ok(r)
}

/// Handshake + polls until one `run`; returns when it arrived.
async fn first_dispatch(http: &Http, spec: &BotSpec, limit: Duration) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + limit;
    let sid = format!("{}/1", uuid::Uuid::new_v4().simple());
    let hs = loop {
        match http
            .bot(
                &spec.id,
                "handshake",
                &json!({"dimensions": spec.dims, "state": {}, "version": "", "session_id": sid}),
            )
            .await
        {
            Ok(v) => break v,
            Err(e) if Instant::now() > deadline => return Err(e.context("handshake after restart")),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    let session = hs["session"].clone();
    while Instant::now() < deadline {
        let body = json!({"dimensions": spec.dims, "state": {}, "version": "", "session": session,
                          "request_uuid": uuid::Uuid::new_v4().to_string()});
        let v = http.bot(&spec.id, "poll", &body).await?;
        if v["cmd"] == "run" {
            return Ok(Instant::now());
        }
    }
    Err(anyhow!("no dispatch within {limit:?} of the restart"))
}

/// Every acknowledged task id must be found; every acknowledged completion must be COMPLETED.
async fn verify(http: &Http, rec: &Recorder) -> anyhow::Result<(u64, u64, u64, u64)> {
    let snap = rec.snapshot();
    let acked: Vec<(String, bool)> =
        snap.iter().filter(|(_, t)| t.created.is_some()).map(|(id, t)| (id.clone(), t.completed.is_some())).collect();
    let (mut lost, mut regressed, mut completed_acked) = (0u64, 0u64, 0u64);
    for chunk in acked.chunks(1000) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        let v = http.prpc("Tasks", "BatchGetResult", &json!({"taskIds": ids})).await?;
        let results = v["results"].as_array().cloned().unwrap_or_default();
        for (i, (_, done)) in chunk.iter().enumerate() {
            let res = results.get(i).map(|x| x["result"].clone()).unwrap_or(Value::Null);
            if res.is_null() {
                lost += 1;
                continue;
            }
            if *done {
                completed_acked += 1;
                if res["state"] != "COMPLETED" {
                    regressed += 1;
                }
            }
        }
    }
    Ok((acked.len() as u64, lost, completed_acked, regressed))
}

async fn restart(ctx: &Ctx) -> anyhow::Result<Report> {
    if ctx.args.server.is_some() {
        anyhow::bail!("restart kills and restarts its own server: do not pass --server");
    }
    let tasks = ctx.pick(ctx.args.tasks, 100_000, 2_000);
    let clients = ctx.pick(ctx.args.clients, 64, 8);
    let load_secs = ctx.pick(ctx.args.duration_secs, 5.0, 1.0);
    let bots = ctx.pick(ctx.args.bots, 200, 20);
    let launch = ctx.launch("restart");
    let mut r = Report::new("restart");
    r.param("pending_tasks", tasks);
    r.param("clients", clients);
    r.param("load_secs_before_kill", load_secs);
    let bots = ctx.bots(&mut r, bots);
    r.param("bots_during_load", bots);
    let server = Server::start(&launch, 0).await?;
    ctx.common(&mut r, &server);
    let port = server.port();
    let http = ctx.http(&server.url)?;
    // 1. Preload pending tasks nobody can run yet.
    let fill = Arc::new(Recorder::default());
    let t = Instant::now();
    Submitters::start(&http, clients, 0.0, Some(tasks), pool_dims("bench-pending"), &fill).join().await;
    let fill_secs = t.elapsed().as_secs_f64();
    let filled = fill.submitted.load(Relaxed);
    r.fig("preloaded_pending_tasks", filled);
    r.fig("preload_new_tasks_per_sec", round3(filled as f64 / fill_secs));
    if filled < tasks {
        r.note(format!("only {filled} of {tasks} preload NewTask calls were acknowledged: {}", fill.last_error()));
    }
    // 2. kill -9, restart, time to the first dispatch.
    server.kill9().await?;
    let server = Server::start(&launch, port).await?;
    let probe = BotSpec::new("restart-probe", "bench-pending", &[]);
    let first = first_dispatch(&http, &probe, Duration::from_secs(60)).await?;
    let to_listen = server.listening.duration_since(server.spawned);
    let to_first = first.duration_since(server.spawned);
    r.fig("start_to_listening_ms", round3(ms(to_listen)));
    r.fig("start_to_first_dispatch_ms", round3(ms(to_first)));
    r.fig("server_rss_mib_after_restart", server.sample().map(|s| round3(s.rss_kib as f64 / 1024.0)));
    r.target("restart to first dispatch", ms(to_first), 1000.0, false, "ms");
    // 3. Load, then kill -9 in the middle of it.
    let rec = Arc::new(Recorder::default());
    let (fleet, _) = start_fleet(ctx, &http, specs("rs", bots, "bench-load"), Packets::Single, &rec).await?;
    let subs = Submitters::start(&http, clients, 0.0, None, pool_dims("bench-load"), &rec);
    tokio::time::sleep(Duration::from_secs_f64(load_secs)).await;
    server.kill9().await?;
    subs.stop();
    fleet.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server = Server::start(&launch, port).await?;
    r.fig("restart_under_load_to_listening_ms", round3(ms(server.listening.duration_since(server.spawned))));
    let (acked, lost, completed_acked, regressed) = verify(&http, &rec).await?;
    r.fig("new_tasks_acknowledged_before_kill", acked);
    r.fig("completions_acknowledged_before_kill", completed_acked);
    r.fig("acknowledged_tasks_lost", lost);
    r.fig("acknowledged_completions_not_completed", regressed);
    r.target("acknowledged tasks lost", (lost + regressed) as f64, 0.0, false, "tasks");
    r.note("lost = NewTask replied but GetResult (BatchGetResult) finds nothing after kill -9 and restart");
    errors(&mut r, &rec);
    server.stop().await?;
    Ok(r)
}

async fn ui(ctx: &Ctx) -> anyhow::Result<Report> {
    let n = ctx.pick(ctx.args.bots, 20_000, 200);
    let tasks = ctx.pick(ctx.args.tasks, 100_000, 1_000);
    let clients = ctx.pick(ctx.args.clients, 64, 8);
    let reps = if ctx.args.small { 3 } else { 20 };
    let server = ctx.server("ui").await?;
    let http = ctx.http(&server.url)?;
    let mut r = Report::new("ui");
    ctx.common(&mut r, &server);
    let n = ctx.bots(&mut r, n);
    r.param("bots", n);
    r.param("tasks", tasks);
    r.param("repetitions", reps);
    let rec = Arc::new(Recorder::default());
    let (fleet, _) = start_fleet(ctx, &http, specs("ui", n, "bench"), Packets::Single, &rec).await?;
    let fill = Arc::new(Recorder::default());
    Submitters::start(&http, clients, 0.0, Some(tasks), pool_dims("bench-ui-pending"), &fill).join().await;
    r.fig("tasks_in_store", fill.submitted.load(Relaxed));
    let ids: Vec<String> = fill.snapshot().into_iter().map(|(id, _)| id).collect();
    let id = ids.choose(&mut rand::rng()).cloned().ok_or_else(|| anyhow!("no task was created"))?;
    let (probe, _) = http.get("/botlist").await?;
    let pages = probe != 404;
    if pages {
        for (name, path) in [
            ("botlist", "/botlist".to_string()),
            ("tasklist", "/tasklist".to_string()),
            ("task", format!("/task?id={id}")),
        ] {
            let mut times = Vec::new();
            let mut size = 0;
            let mut status = 0;
            for _ in 0..reps {
                let t = Instant::now();
                let (s, len) = http.get(&path).await?;
                times.push(ms(t.elapsed()));
                (status, size) = (s, len);
            }
            r.fig(&format!("{name}_page_ms"), percentiles(times));
            r.fig(&format!("{name}_page"), json!({"status": status, "bytes": size}));
        }
    } else {
        r.note("the web UI routes (/botlist, /tasklist, /task?id=) answered 404: measured the equivalent pRPC calls ListBots, ListTasks, GetResult instead");
        let calls = [
            ("ListBots", "Bots", "ListBots", json!({"limit": 100})),
            ("ListTasks", "Tasks", "ListTasks", json!({"limit": 100})),
            ("GetResult", "Tasks", "GetResult", json!({"taskId": id})),
        ];
        for (name, svc, method, body) in calls {
            let mut times = Vec::new();
            for _ in 0..reps {
                let t = Instant::now();
                http.prpc(svc, method, &body).await?;
                times.push(ms(t.elapsed()));
            }
            r.fig(&format!("{name}_ms"), percentiles(times));
        }
    }
    r.fig("mode", if pages { "web pages" } else { "pRPC (UI routes 404)" });
    fleet.stop();
    errors(&mut r, &rec);
    server.stop().await?;
    Ok(r)
}

/// The cost of a `/metrics` scrape with a big fleet spread over many pools
/// and pending tasks in some of them: scrape time, body size, series, and
/// the server CPU per scrape (gauges are computed at scrape time).
async fn metrics(ctx: &Ctx) -> anyhow::Result<Report> {
    let n = ctx.pick(ctx.args.bots, 20_000, 200);
    let pools = if ctx.args.small { 10 } else { 500 };
    let tasks = ctx.pick(ctx.args.tasks, 10_000, 200);
    let clients = ctx.pick(ctx.args.clients, 64, 8);
    let reps = if ctx.args.small { 5 } else { 50 };
    let server = ctx.server("metrics").await?;
    let http = ctx.http(&server.url)?;
    let mut r = Report::new("metrics");
    ctx.common(&mut r, &server);
    let n = ctx.bots(&mut r, n);
    r.param("bots", n);
    r.param("pools", pools);
    r.param("pending_tasks", tasks);
    r.param("repetitions", reps);
    let rec = Arc::new(Recorder::default());
    let specs: Vec<BotSpec> =
        (0..n).map(|i| BotSpec::new(&format!("metrics-{i}"), &format!("bench-pool-{}", i % pools), &[])).collect();
    let (fleet, _) = start_fleet(ctx, &http, specs, Packets::Single, &rec).await?;
    // Pending tasks in pools no bot serves (they stay pending), spread over 50 pools.
    let fill = Arc::new(Recorder::default());
    let dims: DimsFn = Arc::new(|i| vec![("pool".to_string(), format!("bench-pending-{}", i % 50))]);
    Submitters::start(&http, clients, 0.0, Some(tasks), dims, &fill).join().await;
    r.fig("tasks_pending", fill.submitted.load(Relaxed));
    let (status, text) = http.get_text("/metrics").await?;
    if status != 200 {
        return Err(anyhow!("GET /metrics answered {status}"));
    }
    let series = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
    r.fig("metrics_bytes", text.len());
    r.fig("metrics_series", series);
    let w = Window::open(&server);
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let (s, _) = http.get("/metrics").await?;
        if s != 200 {
            return Err(anyhow!("GET /metrics answered {s}"));
        }
        times.push(ms(t.elapsed()));
    }
    let (secs, server_cpu, _) = w.close(&server);
    r.fig("scrape_ms", percentiles(times));
    r.fig(
        "server_cpu_ms_per_scrape",
        server_cpu.map(|c| json!(round3(c * 1000.0 / reps as f64))).unwrap_or(Value::Null),
    );
    r.fig("server_cpu_pct_while_scraping", cpu_pct(server_cpu, secs));
    fleet.stop();
    errors(&mut r, &rec);
    server.stop().await?;
    Ok(r)
}
