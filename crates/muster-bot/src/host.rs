//! What the bot learns about its machine: bot id, auto-detected dimensions and
//! the state dict (docs/bot-protocol.md#dimensions-and-state).
//!
//! Everything here is cheap and never fails: an unreadable source just leaves
//! its dimension or state key out (or at a neutral value).

use muster_api::bot::DimMap;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Short host name (up to the first dot), `localhost` if unknown.
pub fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let short = raw.trim().split('.').next().unwrap_or("").to_string();
    if short.is_empty() {
        "localhost".to_string()
    } else {
        short
    }
}

/// The bot id: explicit, else env `SWARMING_BOT_ID`, else the short host name.
pub fn bot_id(explicit: Option<&str>) -> String {
    if let Some(id) = explicit.filter(|s| !s.is_empty()) {
        return id.to_string();
    }
    match std::env::var("SWARMING_BOT_ID") {
        Ok(id) if !id.is_empty() => id,
        _ => hostname(),
    }
}

/// Auto-detected dimensions, then `extra` (whose keys replace detected ones).
/// Always has `id`, `os`, `cpu`, `cores`, `memory`, `gpu` and `pool`.
pub fn detect_dimensions(bot_id: &str, extra: &BTreeMap<String, Vec<String>>) -> DimMap {
    let mut d = DimMap::new();
    d.insert("os".into(), os_values(&read("/etc/os-release"), &read("/etc/debian_version")));
    d.insert("cpu".into(), cpu_values(std::env::consts::ARCH, &read("/proc/cpuinfo")));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    d.insert("cores".into(), vec![cores.to_string()]);
    if let Some(kib) = meminfo_kib("MemTotal") {
        let gib = (kib as f64 / (1024.0 * 1024.0)).round().max(1.0) as u64;
        d.insert("memory".into(), vec![gib.to_string()]);
    }
    d.insert("gpu".into(), gpu_values());
    d.insert("pool".into(), vec!["default".into()]);
    for (k, v) in extra {
        if !v.is_empty() {
            d.insert(k.clone(), v.clone());
        }
    }
    d.insert("id".into(), vec![bot_id.to_string()]);
    d
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `os` values from /etc/os-release (and /etc/debian_version): e.g.
/// `["Debian", "Debian-12", "Debian-12.11", "Linux"]`.
pub fn os_values(os_release: &str, debian_version: &str) -> Vec<String> {
    let mut fields = BTreeMap::new();
    for line in os_release.lines() {
        if let Some((k, v)) = line.split_once('=') {
            fields.insert(k.trim().to_string(), v.trim().trim_matches('"').trim_matches('\'').to_string());
        }
    }
    let mut out = vec![match std::env::consts::OS {
        "linux" => "Linux".to_string(),
        "macos" => "Mac".to_string(),
        other => other.to_string(),
    }];
    let name = match fields.get("ID").map(String::as_str) {
        Some("debian") => Some("Debian".to_string()),
        Some("ubuntu") => Some("Ubuntu".to_string()),
        Some("fedora") => Some("Fedora".to_string()),
        Some("centos") => Some("CentOS".to_string()),
        Some("rhel") => Some("RHEL".to_string()),
        Some("alpine") => Some("Alpine".to_string()),
        Some("arch") => Some("Arch".to_string()),
        _ => fields.get("NAME").and_then(|n| n.split_whitespace().next()).map(str::to_string),
    };
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        out.push(name.clone());
        if let Some(v) = fields.get("VERSION_ID").filter(|v| !v.is_empty()) {
            out.push(format!("{name}-{v}"));
        }
        let dv = debian_version.trim();
        if name == "Debian" && !dv.is_empty() && dv.chars().all(|c| c.is_ascii_digit() || c == '.') {
            out.push(format!("{name}-{dv}"));
        }
    }
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

/// `cpu` values for an architecture name (`std::env::consts::ARCH` spelling).
pub fn cpu_values(arch: &str, cpuinfo: &str) -> Vec<String> {
    let (family, bits) = match arch {
        "x86_64" => ("x86", "64"),
        "x86" => ("x86", "32"),
        "aarch64" => ("arm64", "64"),
        "arm" => ("arm", "32"),
        "riscv64" => ("riscv64", "64"),
        other => (other, ""),
    };
    let mut out = vec![family.to_string()];
    if !bits.is_empty() {
        out.push(format!("{family}-{bits}"));
    }
    if family == "x86" && bits == "64" {
        let has_avx2 =
            cpuinfo.lines().find(|l| l.starts_with("flags")).is_some_and(|l| l.split_whitespace().any(|f| f == "avx2"));
        if has_avx2 {
            out.push("x86-64-avx2".to_string());
        }
    }
    out
}

fn meminfo_kib(key: &str) -> Option<u64> {
    read("/proc/meminfo").lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// PCI vendors of emulated display adapters, which do not count as a GPU.
const VIRTUAL_GPU_VENDORS: [&str; 6] = ["1234", "1af4", "15ad", "1013", "1b36", "80ee"];

/// `gpu` values from PCI display controllers in sysfs (`vendor`, `vendor:device`),
/// `["none"]` when there is none.
fn gpu_values() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/bus/pci/devices") {
        for e in entries.flatten() {
            let p = e.path();
            let class = read(&p.join("class").to_string_lossy());
            if !class.trim().starts_with("0x03") {
                continue;
            }
            let vendor = read(&p.join("vendor").to_string_lossy()).trim().trim_start_matches("0x").to_string();
            let device = read(&p.join("device").to_string_lossy()).trim().trim_start_matches("0x").to_string();
            if vendor.is_empty() || VIRTUAL_GPU_VENDORS.contains(&vendor.as_str()) {
                continue;
            }
            out.push(vendor.clone());
            if !device.is_empty() {
                out.push(format!("{vendor}:{device}"));
            }
        }
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        out.push("none".to_string());
    }
    out
}

/// Free and total bytes of the file system holding `dir`.
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    let free = fs4::available_space(dir).ok()?;
    let total = fs4::total_space(dir).ok()?;
    Some((free, total))
}

/// The mount point holding `dir` (longest matching prefix in /proc/self/mounts).
fn mount_point(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut best = String::from("/");
    for line in read("/proc/self/mounts").lines() {
        if let Some(mp) = line.split_whitespace().nth(1) {
            if dir.starts_with(mp) && mp.len() > best.len() {
                best = mp.to_string();
            }
        }
    }
    best
}

/// Inputs of [`base_state`] that the agent tracks.
#[derive(Debug, Clone)]
pub struct StateInputs<'a> {
    pub bot_dir: &'a Path,
    pub running_time_secs: f64,
    pub started_ts: i64,
    pub sleep_streak: u64,
}

/// The state dict before hooks and health: disks, ram, uptime, running_time,
/// sleep_streak, started_ts, pid, hostname, cwd, nb_files_in_temp.
pub fn base_state(inp: &StateInputs<'_>) -> Map<String, Value> {
    let mut s = Map::new();
    if let Some((free, total)) = disk_space(inp.bot_dir) {
        let mb = |b: u64| (b as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0;
        s.insert("disks".into(), json!({ mount_point(inp.bot_dir): { "free_mb": mb(free), "size_mb": mb(total) } }));
    }
    if let Some(kib) = meminfo_kib("MemTotal") {
        s.insert("ram".into(), json!(kib / 1024));
    }
    if let Some(up) = read("/proc/uptime").split_whitespace().next().and_then(|u| u.parse::<f64>().ok()) {
        s.insert("uptime".into(), json!(up.round() as i64));
    }
    s.insert("running_time".into(), json!(inp.running_time_secs.round() as i64));
    s.insert("sleep_streak".into(), json!(inp.sleep_streak));
    s.insert("started_ts".into(), json!(inp.started_ts));
    s.insert("pid".into(), json!(std::process::id()));
    s.insert("hostname".into(), json!(hostname()));
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    s.insert("cwd".into(), json!(cwd));
    let nb = std::fs::read_dir(std::env::temp_dir()).map(|d| d.count()).unwrap_or(0);
    s.insert("nb_files_in_temp".into(), json!(nb));
    s.insert("rbe_instance".into(), Value::Null);
    // Which build the server must serve this bot on `update` (`<os>-<arch>`).
    s.insert("platform".into(), json!(format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)));
    s
}
