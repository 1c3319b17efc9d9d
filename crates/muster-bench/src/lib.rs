//! muster-bench: the load generator behind `muster bench` (bench/README.md).
//!
//! It starts `muster server` as a child process (or targets `--server URL`),
//! drives it over real HTTP with thousands of simulated bots (the real bot
//! protocol, long polls included) and submitting pRPC clients, samples the
//! server's RSS and CPU from /proc, prints a table and writes one JSON file
//! per run under `--out-dir` (default `bench/results`). Scenarios are in
//! [`scenarios`]; `bench/README.md` explains them.

pub mod fleet;
pub mod http;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod sys;

use anyhow::Context;
use muster_core::Clock;
use std::path::PathBuf;

/// A benchmark scenario.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// N bots connected and long-polling: server RSS per bot, CPU, polls/s.
    FleetIdle,
    /// Idle fleet, tasks at a steady rate: created → delivered / completed.
    DispatchLatency,
    /// No-op tasks as fast as they go: completed tasks/s, server CPU per task.
    Throughput,
    /// Up to 500 distinct dimension sets: dispatch cost as queues grow.
    MixedDimensions,
    /// 100,000 pending tasks: start to first dispatch; kill -9 under load loses nothing.
    Restart,
    /// Fleet, task list and task pages at 20,000 bots / 100,000 tasks.
    Ui,
    /// `GET /metrics` at 20,000 bots in 500 pools with pending tasks: time, size, series.
    Metrics,
    /// Every scenario in turn.
    All,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FleetIdle => "fleet-idle",
            Scenario::DispatchLatency => "dispatch-latency",
            Scenario::Throughput => "throughput",
            Scenario::MixedDimensions => "mixed-dimensions",
            Scenario::Restart => "restart",
            Scenario::Ui => "ui",
            Scenario::Metrics => "metrics",
            Scenario::All => "all",
        }
    }
}

/// `muster bench` arguments.
///
/// Examples:
///   muster bench fleet-idle
///   muster bench dispatch-latency --bots 2000 --rate 100 --duration-secs 30
///   muster bench all --small --out-dir /tmp/bench
///   muster bench throughput --server http://127.0.0.1:8080 --server-pid 1234
///   muster bench throughput --database postgres://muster@127.0.0.1:5432/bench
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Scenario to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Small configuration (a few hundred bots, a few seconds): what CI runs.
    #[arg(long)]
    pub small: bool,
    /// Target an existing server instead of starting one (restart needs its own child).
    #[arg(long)]
    pub server: Option<String>,
    /// PID of the `--server` process, to sample its RSS and CPU.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The muster executable to start as the server [default: this executable].
    #[arg(long, env = "MUSTER_EXE")]
    pub exe: Option<PathBuf>,
    /// Number of simulated bots [default: per scenario].
    #[arg(long)]
    pub bots: Option<usize>,
    /// Number of concurrent submitting clients [default: per scenario].
    #[arg(long)]
    pub clients: Option<usize>,
    /// Task submission rate, tasks/s [default: per scenario].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measurement time, seconds [default: per scenario].
    #[arg(long)]
    pub duration_secs: Option<f64>,
    /// Number of tasks to preload (restart, ui) [default: 100000, 1000 with --small].
    #[arg(long)]
    pub tasks: Option<u64>,
    /// `--long-poll-secs` passed to the started server [default: server's, 2 with --small].
    #[arg(long)]
    pub long_poll_secs: Option<u64>,
    /// Database of the started server, e.g. `postgres://user@host/db` (use an
    /// empty database; what the run writes stays) [default: SQLite in its data dir].
    #[arg(long, env = "MUSTER_BENCH_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// Directory for the result JSON files.
    #[arg(long, default_value = "bench/results")]
    pub out_dir: PathBuf,
    /// Parent directory for the servers' data dirs [default: a temp dir, removed after].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// Runs the benchmark described by `args`.
pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    let limit = sys::raise_nofile(1 << 20).context("raising the open-files limit")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(async move {
        let ctx = scenarios::Ctx::new(args, limit)?;
        let list = match ctx.args.scenario {
            Scenario::All => vec![
                Scenario::FleetIdle,
                Scenario::DispatchLatency,
                Scenario::Throughput,
                Scenario::MixedDimensions,
                Scenario::Restart,
                Scenario::Ui,
                Scenario::Metrics,
            ],
            s => vec![s],
        };
        let mut failed = Vec::new();
        for s in list {
            let started = muster_core::time::SystemClock.now();
            match scenarios::run(&ctx, s).await {
                Ok(mut report) => {
                    report.param("open_files_limit", limit);
                    report.print();
                    let path = report.write(&ctx.args.out_dir, started)?;
                    println!("  result: {}", path.display());
                }
                Err(e) => {
                    eprintln!("muster bench {}: {e:#}", s.name());
                    failed.push(s.name());
                }
            }
        }
        if !failed.is_empty() {
            anyhow::bail!("scenario(s) failed: {}", failed.join(", "));
        }
        Ok(())
    })
}
