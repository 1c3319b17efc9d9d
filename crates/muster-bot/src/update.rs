//! Self-update by content digest (docs/bot-protocol.md#bot-code).
//!
//! The new code is downloaded from `bot_code/<version>` into whichever of
//! `<dir>/muster-bot.1` / `<dir>/muster-bot.2` is not the running executable,
//! must hash to exactly `version` (SHA-256 hex), must run `<new> version`
//! successfully within 30 s, and the running executable is kept as
//! `<dir>/muster-bot.lkg` (last known good) before the caller re-execs.

use crate::remote::{Remote, Retry, TASK_UPDATE_BUDGET};
use sha2::{Digest as _, Sha256};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Time the sanity check `<new> version` may take.
pub const SANITY_TIMEOUT: Duration = Duration::from_secs(30);

/// SHA-256 hex of `bytes`.
pub fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The slot to download into: the one `current` is not.
pub fn pick_slot(dir: &Path, current: &Path) -> PathBuf {
    let one = dir.join(crate::dirs::SLOTS[0]);
    let two = dir.join(crate::dirs::SLOTS[1]);
    let cur = current.canonicalize().unwrap_or_else(|_| current.to_path_buf());
    if one.canonicalize().is_ok_and(|p| p == cur) {
        two
    } else {
        one
    }
}

fn valid_version(v: &str) -> bool {
    v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// Downloads, verifies and installs `version`; returns the executable to re-exec.
pub async fn fetch_and_install(remote: &Remote, dir: &Path, version: &str) -> Result<PathBuf, String> {
    if !valid_version(version) {
        return Err(format!("refusing to update to {version:?}: not a sha256 hex digest"));
    }
    let current = std::env::current_exe().map_err(|e| format!("finding the running executable: {e}"))?;
    let bytes = remote
        .download(&format!("/bot_code/{version}"), Retry::Budget(TASK_UPDATE_BUDGET))
        .await
        .map_err(|e| format!("downloading bot code {version}: {e}"))?;
    let got = digest_hex(&bytes);
    if got != version {
        return Err(format!("downloaded bot code hashes to {got}, expected {version}; discarded"));
    }
    let slot = pick_slot(dir, &current);
    install(&bytes, &slot)?;
    if let Err(e) = sanity_check(&slot).await {
        let _ = std::fs::remove_file(&slot);
        return Err(e);
    }
    keep_last_known_good(&current, dir);
    Ok(slot)
}

/// Writes `bytes` to `dest` atomically (temp file + rename), mode 755.
pub fn install(bytes: &[u8], dest: &Path) -> Result<(), String> {
    let tmp = dest.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        std::fs::write(&tmp, bytes)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, dest)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("installing {}: {e}", dest.display())
    })
}

/// Runs `<exe> version`; it must exit 0 within [`SANITY_TIMEOUT`].
pub async fn sanity_check(exe: &Path) -> Result<(), String> {
    let mut tries = 0;
    let mut child = loop {
        tries += 1;
        let spawned = tokio::process::Command::new(exe)
            .arg("version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(c) => break c,
            // A just-written file can be briefly "busy" if another thread forked meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 10 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("new bot code {} does not start: {e}", exe.display())),
        }
    };
    match tokio::time::timeout(SANITY_TIMEOUT, child.wait()).await {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(format!("new bot code `{} version` failed: {s}", exe.display())),
        Ok(Err(e)) => Err(format!("waiting for `{} version`: {e}", exe.display())),
        Err(_) => Err(format!("new bot code `{} version` hung", exe.display())),
    }
}

/// Copies the running executable to `<dir>/muster-bot.lkg` (best effort).
fn keep_last_known_good(current: &Path, dir: &Path) {
    let lkg = dir.join(crate::dirs::SLOTS[2]);
    if current.canonicalize().ok() == lkg.canonicalize().ok() {
        return;
    }
    let res = std::fs::read(current).map_err(|e| e.to_string()).and_then(|b| install(&b, &lkg));
    if let Err(e) = res {
        tracing::warn!(error = %e, "keeping the last known good bot code");
    }
}
