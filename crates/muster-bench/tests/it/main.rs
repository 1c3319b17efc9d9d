//! Runs every `muster bench` scenario in its small configuration against a
//! real `muster server` child process, so the harness cannot rot. The
//! figures are not asserted (no timed assertions); what is asserted is that
//! each scenario did its work and that nothing acknowledged was lost.

use clap::Parser;
use muster_bench::BenchArgs;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// The muster binary: $MUSTER_EXE, else `$CARGO_TARGET_DIR/debug/muster`,
/// else `<workspace>/target/debug/muster` (build it with `cargo build -p muster`).
fn muster_exe() -> PathBuf {
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("MUSTER_EXE") {
        return PathBuf::from(p);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let p = PathBuf::from(t).join("debug/muster");
        if p.is_file() {
            return p;
        }
        tried.push(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/muster");
    if p.is_file() {
        return p;
    }
    tried.push(p);
    panic!("muster executable not found (tried {tried:?}): run `cargo build -p muster` first or set MUSTER_EXE");
}

/// Runs `muster bench <scenario> --small` and returns its result JSON.
fn run_small(scenario: &str) -> Value {
    let out = tempfile::tempdir().expect("creating a temp dir for results");
    let exe = muster_exe();
    let out_dir = out.path().to_str().expect("utf-8 temp path").to_string();
    let exe_s = exe.to_str().expect("utf-8 exe path").to_string();
    let cli = Cli::try_parse_from(["bench", scenario, "--small", "--out-dir", &out_dir, "--exe", &exe_s])
        .expect("parsing bench arguments");
    muster_bench::main(cli.bench).expect("the scenario runs to the end");
    let files: Vec<PathBuf> = std::fs::read_dir(out.path())
        .expect("listing results")
        .map(|e| e.expect("reading a dir entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one result file per run: {files:?}");
    let text = std::fs::read_to_string(&files[0]).expect("reading the result file");
    let v: Value = serde_json::from_str(&text).expect("the result file is JSON");
    assert_eq!(v["scenario"], scenario);
    assert!(v["machine"]["cores"].as_u64().unwrap_or(0) > 0, "machine info recorded: {v}");
    assert!(v["parameters"]["small"] == true, "parameters recorded: {v}");
    v
}

fn fig(v: &Value, k: &str) -> Value {
    v["figures"][k].clone()
}

#[test]
fn fleet_idle_connects_every_bot_and_samples_the_server() {
    let v = run_small("fleet-idle");
    assert_eq!(fig(&v, "bots_polling"), 200, "{v}");
    assert!(fig(&v, "server_rss_mib_with_fleet").as_f64().unwrap_or(0.0) > 0.0, "{v}");
    assert!(fig(&v, "polls_per_sec").as_f64().unwrap_or(0.0) > 0.0, "{v}");
}

#[test]
fn dispatch_latency_delivers_and_completes_every_task() {
    let v = run_small("dispatch-latency");
    let acked = fig(&v, "tasks_acknowledged").as_u64().unwrap_or(0);
    assert!(acked > 0, "{v}");
    assert_eq!(fig(&v, "tasks_completed").as_u64(), Some(acked), "{v}");
    assert_eq!(fig(&v, "created_to_delivered_ms")["n"].as_u64(), Some(acked), "{v}");
}

#[test]
fn throughput_completes_tasks() {
    let v = run_small("throughput");
    assert!(fig(&v, "completed_tasks_per_sec").as_f64().unwrap_or(0.0) > 0.0, "{v}");
    assert!(fig(&v, "server_cpu_ms_per_task").is_number(), "{v}");
}

#[test]
fn mixed_dimensions_measures_every_phase() {
    let v = run_small("mixed-dimensions");
    for q in ["queues_001", "queues_050", "queues_500"] {
        assert!(fig(&v, q)["tasks_completed"].as_u64().unwrap_or(0) > 0, "{q}: {v}");
        assert_eq!(fig(&v, q)["not_delivered"], 0, "{q}: {v}");
    }
}

#[test]
fn restart_after_kill_9_loses_no_acknowledged_task() {
    let v = run_small("restart");
    assert_eq!(fig(&v, "preloaded_pending_tasks"), 2000, "{v}");
    assert!(fig(&v, "start_to_first_dispatch_ms").is_number(), "{v}");
    assert!(fig(&v, "new_tasks_acknowledged_before_kill").as_u64().unwrap_or(0) > 0, "{v}");
    assert_eq!(fig(&v, "acknowledged_tasks_lost"), 0, "{v}");
    assert_eq!(fig(&v, "acknowledged_completions_not_completed"), 0, "{v}");
}

#[test]
fn ui_measures_the_fleet_and_task_views() {
    let v = run_small("ui");
    assert_eq!(fig(&v, "tasks_in_store"), 1000, "{v}");
    let pages = fig(&v, "mode") == "web pages";
    let keys: &[&str] = if pages {
        &["botlist_page_ms", "tasklist_page_ms", "task_page_ms"]
    } else {
        &["ListBots_ms", "ListTasks_ms", "GetResult_ms"]
    };
    for k in keys {
        assert_eq!(fig(&v, k)["n"], 3, "{k}: {v}");
    }
}

#[test]
fn metrics_measures_the_scrape() {
    let v = run_small("metrics");
    assert_eq!(fig(&v, "tasks_pending"), 200, "{v}");
    assert!(fig(&v, "metrics_series").as_u64().unwrap_or(0) > 10, "{v}");
    assert_eq!(fig(&v, "scrape_ms")["n"], 5, "{v}");
}
