//! Job definitions from a configuration directory:
//! - `<dir>/jobs.toml`: muster's own format ([`toml_file`]);
//! - `<dir>/luci-scheduler/<project>.cfg`: upstream LUCI Scheduler project
//!   configs, text protobuf, loaded unchanged ([`luci`]).
//!
//! Every problem is reported as `file:line:col: message`. A job with a
//! problem is still named in the result (so the engine disables it and shows
//! why); the other jobs are unaffected. A file that does not parse at all
//! stops the whole load (the previous definitions stay in force).
//!
//! This module only reads files; [`watch`] re-reads them when they change
//! and hands the result to the engine.

pub mod luci;
pub mod toml_file;

use crate::engine::{Catalog, Engine};
use crate::manager::Managers;
use crate::model::{Flavor, JobDef};
use crate::policy::{Policy, PolicyKind};
use crate::schedule::Schedule;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

/// Line and column (1-based) of byte `offset` in `src`.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

/// A job as a file defines it, before cross-job checks.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub def: JobDef,
    /// Where the job is defined (for cross-job problems).
    pub at: Problem,
    pub problems: Vec<Problem>,
}

impl Parsed {
    fn problem(&mut self, message: String) {
        self.problems.push(Problem { message, ..self.at.clone() });
    }
}

/// The fields every format shares, as raw values.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub project: String,
    pub id: String,
    pub flavor: Flavor,
    pub realm: String,
    pub schedule: Option<String>,
    pub disabled: bool,
    pub policy_kind: String,
    pub max_concurrent: i64,
    pub max_batch: i64,
    pub log_base: f64,
    pub pending_timeout: Option<String>,
    pub triggers: Vec<String>,
    pub task: Option<crate::model::TaskSpec>,
    pub invocation_timeout: Option<String>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || "_-. )(".contains(c))
}

fn valid_realm(r: &str) -> bool {
    r == "@root"
        || r == "@legacy"
        || (!r.is_empty()
            && r.len() <= 400
            && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-/".contains(c)))
}

/// Checks one job's own fields; `loc(field)` says where a field is.
pub fn build(f: Fields, managers: &Managers, at: Problem, loc: &dyn Fn(&str) -> Problem) -> Parsed {
    let mut errs: Vec<Problem> = Vec::new();
    let mut err = |field: &str, m: String| errs.push(Problem { message: m, ..loc(field) });
    if !valid_id(&f.id) {
        err("id", format!("bad id {:?}: use 1-100 of A-Z a-z 0-9 _ - . space ( )", f.id));
    }
    let realm = if f.realm.is_empty() { "@legacy".to_string() } else { f.realm.clone() };
    if !valid_realm(&realm) {
        err("realm", format!("bad realm {realm:?}: use lowercase letters, digits, _ . - / (or @root, @legacy)"));
    }
    let default_schedule = match f.flavor {
        Flavor::Job => "triggered",
        Flavor::Trigger => "with 30s interval",
    };
    let schedule = f.schedule.clone().unwrap_or_else(|| default_schedule.to_string());
    if let Err(e) = Schedule::parse(&schedule) {
        err("schedule", e);
    }
    let mut policy = Policy::default();
    match PolicyKind::parse(&f.policy_kind) {
        Ok(k) => policy.kind = k,
        Err(e) => err("triggering_policy", e),
    }
    if f.max_concurrent < 0 || f.max_batch < 0 {
        err("triggering_policy", "triggering_policy numbers must not be negative".into());
    }
    policy.max_concurrent_invocations = f.max_concurrent.max(0) as usize;
    policy.max_batch_size = f.max_batch.max(0) as usize;
    policy.log_base = f.log_base;
    if let Some(pt) = &f.pending_timeout {
        if policy.kind != PolicyKind::NewestFirst {
            err("triggering_policy", "pending_timeout is only for NEWEST_FIRST".into());
        }
        match crate::schedule::parse_go_duration(pt) {
            Ok(d) => policy.pending_timeout_secs = d.num_seconds(),
            Err(e) => err("triggering_policy", format!("pending_timeout: {e}")),
        }
    }
    let policy = match policy.clone().normalized() {
        Ok(p) => p,
        Err(e) => {
            err("triggering_policy", e);
            policy
        }
    };
    let mut timeout = None;
    if let Some(t) = &f.invocation_timeout {
        match crate::schedule::parse_go_duration(t) {
            Ok(d) if d > chrono::Duration::zero() => timeout = Some(d.num_seconds().max(1)),
            Ok(_) => err("invocation_timeout", "invocation_timeout must be positive".into()),
            Err(e) => err("invocation_timeout", format!("invocation_timeout: {e}")),
        }
    }
    for t in &f.triggers {
        if !valid_id(t) {
            err("triggers", format!("bad job id {t:?} in triggers"));
        }
    }
    let full_realm = format!("{}:{realm}", f.project);
    let task = match f.task.clone() {
        Some(t) => {
            if let Err(e) = managers.validate(&t, &full_realm) {
                err(&t.kind, e);
            }
            t
        }
        None => {
            err("id", format!("the job needs one task table, one of: {}", managers.names().join(", ")));
            crate::model::TaskSpec { kind: "noop".into(), params: serde_json::Value::Null }
        }
    };
    let def = JobDef {
        project: f.project.clone(),
        id: f.id.clone(),
        realm: full_realm,
        flavor: f.flavor,
        schedule,
        disabled: f.disabled,
        policy,
        triggers: f.triggers.clone(),
        task,
        invocation_timeout_secs: timeout,
    };
    Parsed { def, at, problems: errs }
}

/// The result of loading a directory.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub catalog: Catalog,
    /// Every problem found, `file:line:col: message`.
    pub problems: Vec<Problem>,
    /// A file did not parse: nothing should be applied.
    pub unusable: bool,
    pub files: Vec<PathBuf>,
}

/// The files a configuration directory holds, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let toml = dir.join("jobs.toml");
    if toml.is_file() {
        out.push(toml);
    }
    if let Ok(rd) = std::fs::read_dir(dir.join("luci-scheduler")) {
        let mut cfgs: Vec<PathBuf> =
            rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "cfg")).collect();
        cfgs.sort();
        out.extend(cfgs);
    }
    out
}

/// Reads and checks every job definition under `dir`.
pub fn load_dir(dir: &Path, managers: &Managers) -> Loaded {
    let mut loaded = Loaded::default();
    let mut parsed = Vec::new();
    let mut hash = Sha256::new();
    for path in files(dir) {
        let name = path.display().to_string();
        let src = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                loaded.problems.push(Problem { file: name, line: 1, col: 1, message: format!("cannot read: {e}") });
                loaded.unusable = true;
                continue;
            }
        };
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(src.as_bytes());
        hash.update([0]);
        let r = if path.extension().is_some_and(|x| x == "cfg") {
            let project = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            luci::parse(&name, &src, &project, managers)
        } else {
            toml_file::parse(&name, &src, managers)
        };
        match r {
            Ok(jobs) => parsed.extend(jobs),
            Err(p) => {
                loaded.problems.push(p);
                loaded.unusable = true;
            }
        }
        loaded.files.push(path);
    }
    cross_check(&mut parsed);
    for p in parsed {
        loaded.problems.extend(p.problems.iter().cloned());
        let problem =
            (!p.problems.is_empty()).then(|| p.problems.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; "));
        loaded.catalog.jobs.push((p.def, problem));
    }
    loaded.catalog.revision = format!("{:x}", hash.finalize())[..16].to_string();
    loaded
}

/// Unique ids per project, known trigger targets, no cycles.
pub(crate) fn cross_check(parsed: &mut [Parsed]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..parsed.len() {
        let id = parsed[i].def.job_id();
        if let Some(first) = seen.get(&id) {
            let prev = parsed[*first].at.clone();
            parsed[i].problem(format!(
                "job id {:?} is already defined at {}:{}:{}",
                parsed[i].def.id, prev.file, prev.line, prev.col
            ));
        } else {
            seen.insert(id, i);
        }
    }
    let known: BTreeSet<String> = seen.keys().cloned().collect();
    for p in parsed.iter_mut() {
        let missing: Vec<String> = p.def.triggered_job_ids().into_iter().filter(|t| !known.contains(t)).collect();
        if !missing.is_empty() {
            p.problem(format!("triggers unknown job(s): {}", missing.join(", ")));
        }
    }
    // Cycles: depth-first search over `triggers`.
    let edges: BTreeMap<String, Vec<String>> =
        parsed.iter().map(|p| (p.def.job_id(), p.def.triggered_job_ids())).collect();
    for p in parsed.iter_mut() {
        let start = p.def.job_id();
        if let Some(path) = find_cycle(&start, &edges) {
            p.problem(format!("jobs trigger each other in a cycle: {}", path.join(" → ")));
        }
    }
}

fn find_cycle(start: &str, edges: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn dfs(
        node: &str,
        start: &str,
        edges: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in edges.get(node).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if dfs(next, start, edges, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    dfs(start, start, edges, &mut path, &mut seen).then_some(path)
}

/// Re-reads `dir` every `every` and applies it when its content changed.
/// Problems are logged; an unusable load keeps the previous definitions.
pub async fn watch(engine: Arc<Engine>, dir: PathBuf, every: std::time::Duration, shutdown: CancellationToken) {
    let mut last: Option<String> = None;
    loop {
        let managers = engine.managers().clone();
        let d = dir.clone();
        let loaded = tokio::task::spawn_blocking(move || load_dir(&d, &managers)).await;
        match loaded {
            Ok(l) if last.as_deref() != Some(l.catalog.revision.as_str()) => {
                for p in &l.problems {
                    tracing::warn!("jobs config: {p}");
                }
                if l.unusable {
                    tracing::warn!("jobs config in {} not applied: fix the errors above", dir.display());
                } else {
                    let now = engine.clock().now();
                    match engine.apply_config(&l.catalog, now).await {
                        Ok(()) => {
                            tracing::info!(revision = %l.catalog.revision, jobs = l.catalog.jobs.len(), "jobs config applied");
                        }
                        Err(e) => {
                            tracing::warn!("applying jobs config failed: {}", e.message);
                            tokio::time::sleep(every).await;
                            continue;
                        }
                    }
                }
                last = Some(l.catalog.revision);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("loading jobs config failed: {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let s = "ab\ncde\nf";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 4), (2, 2));
        assert_eq!(line_col(s, 7), (3, 1));
    }
}
