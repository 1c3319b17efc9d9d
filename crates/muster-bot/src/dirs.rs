//! The bot directory: one bot per directory (an exclusive `flock` on
//! `<dir>/muster-bot.lck`), cleaning at start, and the names of what lives
//! there (`c/` named caches, `w/` work dirs, `logs/`, the binary slots
//! `muster-bot.1`, `muster-bot.2`, `muster-bot.lkg`, the `hook`, and the
//! machine token a bootstrap token was exchanged for, `machine.token`).

use crate::BotError;
use fs4::fs_std::FileExt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Lock file name.
pub const LOCK_FILE: &str = "muster-bot.lck";
/// Named caches, kept across tasks and restarts.
pub const CACHES_DIR: &str = "c";
/// Task work dirs, `w/<run id>`.
pub const WORK_DIR: &str = "w";
/// Logs, kept.
pub const LOGS_DIR: &str = "logs";
/// Self-update slots and the last known good copy.
pub const SLOTS: [&str; 3] = ["muster-bot.1", "muster-bot.2", "muster-bot.lkg"];
/// The usual name of the binary fetched from `/bot_code`, kept.
pub const BOOTSTRAP_NAME: &str = "muster-bot";
/// The machine token received for a bootstrap token (mode 0600), kept.
pub const MACHINE_TOKEN_FILE: &str = "machine.token";
/// Where a hook script delivered in the trailer is written.
pub const HOOK_FILE: &str = "hook";

/// Holds the directory lock; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock, failing at once if another
    /// bot holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, BotError> {
        std::fs::create_dir_all(dir).map_err(|e| BotError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| BotError::io(format!("opening {}", path.display()), e))?;
        match FileExt::try_lock_exclusive(&file) {
            Ok(true) => Ok(DirLock { _file: file, path }),
            Ok(false) => Err(BotError::AlreadyRunning(dir.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(BotError::AlreadyRunning(dir.to_path_buf())),
            Err(e) => Err(BotError::io(format!("locking {}", path.display()), e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Refuses directories whose cleaning would destroy a user's files: `/` and `$HOME`.
pub fn check_safe(dir: &Path) -> Result<(), BotError> {
    let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if canon == Path::new("/") {
        return Err(BotError::UnsafeDir(dir.to_path_buf(), "it is the root directory".into()));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        let home = home.canonicalize().unwrap_or(home);
        if canon == home {
            return Err(BotError::UnsafeDir(dir.to_path_buf(), "it is the home directory".into()));
        }
    }
    Ok(())
}

/// Deletes everything in `dir` except the lock, caches, logs, binary slots,
/// the machine token and the running executable. Returns what could not be removed.
pub fn clean(dir: &Path) -> Vec<String> {
    let me = std::env::current_exe().ok().and_then(|p| p.canonicalize().ok());
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return vec![format!("listing {}: {e}", dir.display())],
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name_s = name.to_string_lossy();
        let keep = name_s == LOCK_FILE
            || name_s == CACHES_DIR
            || name_s == LOGS_DIR
            || name_s == BOOTSTRAP_NAME
            || name_s == MACHINE_TOKEN_FILE
            || SLOTS.contains(&name_s.as_ref());
        let path = entry.path();
        if keep || path.canonicalize().ok().is_some_and(|p| Some(p) == me) {
            continue;
        }
        let res = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if let Err(e) = res {
            problems.push(format!("removing {}: {e}", path.display()));
        }
    }
    problems
}

/// The machine token stored in `dir` by an earlier bootstrap exchange.
pub fn read_machine_token(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(MACHINE_TOKEN_FILE)).ok()?;
    let t = text.lines().next().unwrap_or("").trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// Stores `token` as `<dir>/machine.token`, readable by the bot's user only:
/// written to a temporary file created with mode 0600, synced, then renamed.
pub fn write_machine_token(dir: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = dir.join(format!("{MACHINE_TOKEN_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(format!("{token}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(MACHINE_TOKEN_FILE))?;
    File::open(dir)?.sync_all()
}
