//! Bot code for UNMODIFIED upstream Python Swarming bots (docs/bot-protocol.md#python-bot-code).
//!
//! Owns the `swarming_bot.zip` built from the operator's checkout of luci-py
//! `appengine/swarming/swarming_bot` (`--python-bot-dir`), with a generated
//! `config/config.json` naming this server and an optional operator
//! `config/bot_config.py` (`--python-bot-config`), and its version digest.
//!
//! Rebuilds are on demand: whenever a Python bot polls, handshakes or asks
//! for code, and the last check is older than [`CHECK_EVERY`], the source
//! files' names, sizes and mtimes (and the bot_config file's) are compared
//! with those of the current build; if anything changed the zip is rebuilt
//! off the async threads. A rebuild that fails keeps serving the old zip.

pub mod archive;

use crate::config::ServerConfig;
use crate::error::StartError;
use archive::{ArchiveError, SourceFile};
use bytes::Bytes;
use muster_core::Time;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the source directory is re-examined (at most; only on demand).
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// One built zip.
pub struct PythonZip {
    /// The bytes served at `/swarming/api/v1/bot/bot_code/<version>`.
    pub bytes: Bytes,
    /// The docs/bot-protocol.md#python-bot-code digest of `bytes` (what the bot reports as `version`).
    pub version: String,
    fingerprint: Fingerprint,
}

/// What a rebuild depends on: every source file's name, size and mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    files: Vec<(String, u64, Option<SystemTime>)>,
    bot_config: Option<(u64, Option<SystemTime>)>,
}

#[derive(Clone)]
struct Source {
    dir: PathBuf,
    bot_config: Option<PathBuf>,
    config_json: Vec<u8>,
}

impl Source {
    fn scan(&self) -> Result<(Vec<SourceFile>, Fingerprint), ArchiveError> {
        let files = archive::list_files(&self.dir)?;
        let bot_config = match &self.bot_config {
            Some(p) => {
                let m = std::fs::metadata(p)
                    .map_err(|e| ArchiveError::Io { path: p.display().to_string(), message: e.to_string() })?;
                Some((m.len(), m.modified().ok()))
            }
            None => None,
        };
        let fp = Fingerprint { files: files.iter().map(|f| (f.name.clone(), f.len, f.modified)).collect(), bot_config };
        Ok((files, fp))
    }

    fn build(&self) -> Result<PythonZip, ArchiveError> {
        let (files, fingerprint) = self.scan()?;
        let bot_config = match &self.bot_config {
            Some(p) => Some(
                std::fs::read(p)
                    .map_err(|e| ArchiveError::Io { path: p.display().to_string(), message: e.to_string() })?,
            ),
            None => None,
        };
        let entries = archive::collect(&files, &self.config_json, bot_config.as_deref())?;
        let bytes = archive::build_zip(&entries)?;
        let version = archive::zip_digest(&bytes)?;
        Ok(PythonZip { bytes: Bytes::from(bytes), version, fingerprint })
    }
}

/// The Python bot code of a server, rebuilt when its sources change.
pub struct PythonBotCode {
    source: Source,
    current: RwLock<Arc<PythonZip>>,
    /// When the sources were last examined (the lock serializes rebuilds).
    checked: tokio::sync::Mutex<Checked>,
}

#[derive(Default)]
struct Checked {
    at: Option<Time>,
    /// A changed fingerprint seen once, built if the next check sees it again.
    pending: Option<Fingerprint>,
}

enum Scan {
    Unchanged,
    Changing(Fingerprint),
    Built(PythonZip),
}

impl PythonBotCode {
    /// Builds the zip from `cfg.python_bot_dir`; None when it is not set.
    pub fn load(cfg: &ServerConfig) -> Result<Option<PythonBotCode>, StartError> {
        let Some(dir) = &cfg.python_bot_dir else { return Ok(None) };
        let code = PythonBotCode::build(
            dir,
            cfg.python_bot_config.as_deref(),
            &archive::config_json(&cfg.external_url, &cfg.server_version),
        )
        .map_err(|e| StartError::BotCode(format!("building swarming_bot.zip: {e}")))?;
        Ok(Some(code))
    }

    /// Builds from explicit parts.
    pub fn build(dir: &Path, bot_config: Option<&Path>, config_json: &[u8]) -> Result<PythonBotCode, ArchiveError> {
        let source = Source {
            dir: dir.to_path_buf(),
            bot_config: bot_config.map(Path::to_path_buf),
            config_json: config_json.to_vec(),
        };
        let zip = source.build()?;
        tracing::info!(version = %zip.version, bytes = zip.bytes.len(), dir = %dir.display(), "built swarming_bot.zip");
        Ok(PythonBotCode {
            source,
            current: RwLock::new(Arc::new(zip)),
            checked: tokio::sync::Mutex::new(Checked::default()),
        })
    }

    /// The current zip without looking at the sources.
    pub fn peek(&self) -> Arc<PythonZip> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current zip, first rebuilding it if the sources changed since the
    /// last build (examined at most every [`CHECK_EVERY`]). A change is built
    /// once two consecutive checks saw the same files, so a checkout being
    /// updated is not served half-written.
    pub async fn current(&self, now: Time) -> Arc<PythonZip> {
        let mut checked = self.checked.lock().await;
        let due = match checked.at {
            None => true,
            Some(t) => (now - t).to_std().map(|d| d >= CHECK_EVERY).unwrap_or(true),
        };
        if !due {
            return self.peek();
        }
        checked.at = Some(now);
        let old = self.peek();
        let source = self.source.clone();
        let old_fp = old.fingerprint.clone();
        let pending = checked.pending.take();
        let scanned = tokio::task::spawn_blocking(move || -> Result<Scan, ArchiveError> {
            let (_, fp) = source.scan()?;
            if fp == old_fp {
                return Ok(Scan::Unchanged);
            }
            if pending.as_ref() != Some(&fp) {
                return Ok(Scan::Changing(fp));
            }
            source.build().map(Scan::Built)
        })
        .await;
        match scanned {
            Ok(Ok(Scan::Unchanged)) => old,
            Ok(Ok(Scan::Changing(fp))) => {
                checked.pending = Some(fp);
                old
            }
            Ok(Ok(Scan::Built(zip))) => {
                tracing::info!(old = %old.version, new = %zip.version, "python bot sources changed: rebuilt swarming_bot.zip");
                let zip = Arc::new(zip);
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = zip.clone();
                zip
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "rebuilding swarming_bot.zip failed; serving the previous build");
                old
            }
            Err(e) => {
                tracing::warn!(error = %e, "rebuilding swarming_bot.zip panicked; serving the previous build");
                old
            }
        }
    }
}
