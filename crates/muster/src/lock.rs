//! One server per SQLite database: an exclusive advisory lock (`flock`) on
//! `muster.lock` beside the database, holding the owner's PID. The kernel
//! releases it when the process exits, even on `kill -9`.

use anyhow::Context;
use fs4::fs_std::FileExt;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A held lock; released on drop (or process exit).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// The lock file guarding the SQLite database at `db`.
pub(crate) fn lock_path_for(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join("muster.lock")
}

/// Takes the lock at `path`. If another process holds it: fails with a
/// message naming that process, or with `wait` polls until it is free.
pub(crate) async fn acquire(path: &Path, wait: bool) -> anyhow::Result<DirLock> {
    let mut announced = false;
    loop {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        if file.try_lock_exclusive().with_context(|| format!("locking {}", path.display()))? {
            file.set_len(0).and_then(|_| file.rewind()).with_context(|| format!("writing {}", path.display()))?;
            writeln!(file, "{}", std::process::id())
                .and_then(|_| file.flush())
                .with_context(|| format!("writing {}", path.display()))?;
            return Ok(DirLock { _file: file });
        }
        let holder = holder_of(&mut file);
        let dir = path.parent().unwrap_or(Path::new(".")).display().to_string();
        if !wait {
            anyhow::bail!(
                "the data dir {dir} is in use by another muster server ({holder}); stop it first, \
                 or pass --wait-for-lock to start once it has exited"
            );
        }
        if !announced {
            eprintln!(
                "muster: the data dir {dir} is in use by another muster server ({holder}); waiting for it to exit"
            );
            announced = true;
        }
        drop(file);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn holder_of(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.read_to_string(&mut s);
    match s.trim().parse::<u32>() {
        Ok(pid) => format!("pid {pid}"),
        Err(_) => "pid unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_lock_on_the_same_file_is_refused_with_the_holders_pid() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("muster.lock");
        let held = acquire(&path, false).await?;
        // flock locks belong to the open file description: a second open in
        // the same process conflicts like another process would.
        let err = acquire(&path, false).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(held);
        acquire(&path, false).await?;
        Ok(())
    }
}
