//! `muster jobs check DIR`: validates job definitions offline, with the
//! same loader the server uses.

use muster_jobs::manager::muster::Muster;
use muster_jobs::Managers;
use std::path::Path;
use std::sync::Arc;

/// Prints every problem as `file:line:col: message`; fails if there is one.
pub(crate) fn check(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mut managers = Managers::builtin();
    managers.register(Arc::new(Muster::offline()));
    let loaded = muster_jobs::config::load_dir(dir, &managers);
    if loaded.files.is_empty() {
        anyhow::bail!("no job definitions in {} (expected jobs.toml or luci-scheduler/*.cfg)", dir.display());
    }
    for p in &loaded.problems {
        eprintln!("{p}");
    }
    if !loaded.problems.is_empty() {
        anyhow::bail!("{} problem(s) in {}", loaded.problems.len(), dir.display());
    }
    println!("OK: {} job(s) in {} file(s)", loaded.catalog.jobs.len(), loaded.files.len());
    Ok(())
}
