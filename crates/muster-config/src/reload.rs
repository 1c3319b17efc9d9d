//! The current snapshot behind an atomic swap, and hot reload.
//!
//! Every 2 s the holder compares the directory's (name, mtime, length)
//! stamp with the last one; on a change (or SIGHUP, or [`ConfigHolder::reload`])
//! it reads all files, builds a new snapshot and swaps it in. An invalid set
//! keeps the old snapshot, logs every error and reports itself invalid.

use crate::error::Errors;
use crate::snapshot::{build, Files, LoadOptions, Snapshot};
use parking_lot::{Mutex, RwLock};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the directory is checked for changes.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

/// Holds the snapshot requests use. Cheap to share (`Arc<ConfigHolder>`).
#[derive(Debug)]
pub struct ConfigHolder {
    dir: Option<PathBuf>,
    options: LoadOptions,
    current: RwLock<Arc<Snapshot>>,
    stamp: Mutex<Stamp>,
    valid: AtomicBool,
    last_errors: Mutex<Option<Errors>>,
}

/// The outcome of a reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// Files unchanged (same digest): nothing swapped.
    Unchanged,
    /// A new snapshot is in force.
    Swapped { digest: String },
}

impl ConfigHolder {
    /// Loads `dir` (must be valid: a server does not start on a broken config).
    pub fn load(dir: &Path, options: LoadOptions) -> Result<ConfigHolder, Errors> {
        let stamp = stamp(dir);
        let files = Files::read(dir)?;
        let snap = build(&files, options.clone())?;
        Ok(ConfigHolder {
            dir: Some(dir.to_path_buf()),
            options,
            current: RwLock::new(Arc::new(snap)),
            stamp: Mutex::new(stamp),
            valid: AtomicBool::new(true),
            last_errors: Mutex::new(None),
        })
    }

    /// A fixed snapshot with no directory behind it (tests, embedded use).
    pub fn fixed(snapshot: Snapshot) -> ConfigHolder {
        ConfigHolder {
            dir: None,
            options: snapshot.options.clone(),
            current: RwLock::new(Arc::new(snapshot)),
            stamp: Mutex::new(Vec::new()),
            valid: AtomicBool::new(true),
            last_errors: Mutex::new(None),
        }
    }

    /// The snapshot in force; hold it for the whole request.
    pub fn get(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether the files on disk were valid at the last attempt.
    pub fn is_valid(&self) -> bool {
        self.valid.load(Ordering::Relaxed)
    }

    /// Errors of the last failed attempt (cleared by a good one).
    pub fn last_errors(&self) -> Option<Errors> {
        self.last_errors.lock().clone()
    }

    /// Reads the directory again; swaps only a valid, different set.
    pub fn reload(&self) -> Result<Reloaded, Errors> {
        let Some(dir) = &self.dir else { return Ok(Reloaded::Unchanged) };
        *self.stamp.lock() = stamp(dir);
        let result = Files::read(dir).and_then(|files| {
            if files.digest() == self.get().digest {
                return Ok(None);
            }
            build(&files, self.options.clone()).map(Some)
        });
        match result {
            Ok(None) => {
                self.mark_valid();
                Ok(Reloaded::Unchanged)
            }
            Ok(Some(snap)) => {
                let digest = snap.digest.clone();
                for w in &snap.warnings {
                    tracing::warn!(warning = %w, "config");
                }
                *self.current.write() = Arc::new(snap);
                self.mark_valid();
                tracing::info!(%digest, dir = %dir.display(), "configuration reloaded");
                metrics::counter!("muster_config_reloads_total").increment(1);
                Ok(Reloaded::Swapped { digest })
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(error = %e, "invalid configuration; keeping the previous one");
                }
                self.valid.store(false, Ordering::Relaxed);
                metrics::gauge!("muster_config_valid").set(0.0);
                *self.last_errors.lock() = Some(errors.clone());
                Err(errors)
            }
        }
    }

    fn mark_valid(&self) {
        self.valid.store(true, Ordering::Relaxed);
        metrics::gauge!("muster_config_valid").set(1.0);
        *self.last_errors.lock() = None;
    }

    /// Reloads when the directory's stamp changed since the last look.
    pub fn reload_if_changed(&self) -> Option<Result<Reloaded, Errors>> {
        let dir = self.dir.as_ref()?;
        if stamp(dir) == *self.stamp.lock() {
            return None;
        }
        Some(self.reload())
    }

    /// Polls every [`POLL_EVERY`] and reloads on SIGHUP until `shutdown` completes.
    pub async fn watch(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hup_fut = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hup_fut = std::future::pending::<()>();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {
                    let this = self.clone();
                    let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
                }
                _ = hup_fut => {
                    tracing::info!("SIGHUP: reloading configuration");
                    let this = self.clone();
                    let _ = tokio::task::spawn_blocking(move || this.reload()).await;
                }
            }
        }
    }
}

fn stamp(dir: &Path) -> Stamp {
    let mut out = Vec::new();
    let mut visit = |p: PathBuf| {
        if let Ok(m) = std::fs::metadata(&p) {
            out.push((p, m.modified().ok(), m.len()));
        }
    };
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            visit(e.path());
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir.join(crate::bots::SCRIPTS_DIR)) {
        for e in rd.flatten() {
            visit(e.path());
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir.join(crate::snapshot::REALMS_DIR)) {
        for e in rd.flatten() {
            visit(e.path());
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
