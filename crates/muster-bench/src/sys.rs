//! The operating system side: raising the open-files limit, reading a
//! process's memory and CPU from /proc, and describing the machine.

use anyhow::Context;
use serde_json::{json, Value};

/// Raises RLIMIT_NOFILE (soft, and hard when we may) to at least `want`.
/// Children inherit it, so call before starting the server.
pub fn raise_nofile(want: u64) -> anyhow::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft >= want {
        return Ok(soft);
    }
    // Try to raise the hard limit too (works as root); fall back to the hard limit.
    if setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard)).is_ok() {
        return Ok(want);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising RLIMIT_NOFILE")?;
    Ok(hard)
}

/// Clock ticks per second for /proc/<pid>/stat times.
fn clk_tck() -> f64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// Resident set size and cumulative CPU of one process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    pub rss_kib: u64,
    /// utime + stime, seconds.
    pub cpu_secs: f64,
}

/// Samples `/proc/<pid>` ("self" for this process).
pub fn sample(pid: &str) -> anyhow::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime/stime are fields 14/15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // `rest` starts at field 3 (state), so field n is index n-3.
    let cpu_secs = (ticks(11) + ticks(12)) as f64 / clk_tck();
    Ok(ProcSample { rss_kib, cpu_secs })
}

fn first_line_with(path: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .map(|l| l.split_once(':').map(|x| x.1).unwrap_or("").trim().to_string())
}

/// Cores, memory, kernel, CPU model.
pub fn machine() -> Value {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = first_line_with("/proc/meminfo", "MemTotal").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let cpu = first_line_with("/proc/cpuinfo", "model name").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string();
    json!({"cores": cores, "memory": mem, "kernel": kernel, "cpu_model": cpu, "loadavg_at_start": load})
}

/// `git rev-parse HEAD`, if git and a repository are at hand.
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}
