//! Power loss, not just process death: a kill -9 keeps the OS page cache,
//! so only a file system that drops what was never synced can show a
//! missing fsync. LazyFS (a FUSE file system with its own page cache) does
//! that on `lazyfs::clear-cache`. The server's data dir lives on it; after
//! tasks are acknowledged, the server is killed and the unsynced data is
//! dropped, and every acknowledged task must be there after a restart.
//!
//! Needs FUSE and a built LazyFS checkout, so it is ignored (and listed as
//! skipped by scripts/test.sh) unless `MUSTER_LAZYFS_DIR` names one. The
//! durability settings themselves are checked everywhere, on the live
//! connections (crates/muster-store/tests/it/durability.rs).

use crate::common::{exe, start_server, submit, task};
use anyhow::Context;
use muster_testkit::{wait_for, Prpc, ServerProcess, PATIENCE};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A mounted LazyFS; unmounted when dropped.
struct LazyFs {
    scripts: PathBuf,
    mount: PathBuf,
    fifo: PathBuf,
}

impl LazyFs {
    async fn mount(checkout: &Path, dir: &Path) -> anyhow::Result<LazyFs> {
        let scripts = checkout.join("lazyfs").join("scripts");
        let (mount, root, fifo) = (dir.join("mnt"), dir.join("root"), dir.join("faults.fifo"));
        std::fs::create_dir_all(&mount)?;
        std::fs::create_dir_all(&root)?;
        let config = dir.join("lazyfs.toml");
        std::fs::write(
            &config,
            format!(
                "[faults]\nfifo_path=\"{}\"\n[cache]\napply_eviction=false\n[cache.simple]\ncustom_size=\"0.5GB\"\n\
                 blocks_per_page=1\n[filesystem]\nlog_all_operations=false\nlogfile=\"{}\"\n",
                fifo.display(),
                dir.join("lazyfs.log").display()
            ),
        )?;
        let status = tokio::process::Command::new(scripts.join("mount-lazyfs.sh"))
            .arg("-c")
            .arg(&config)
            .arg("-m")
            .arg(&mount)
            .arg("-r")
            .arg(&root)
            .current_dir(checkout.join("lazyfs"))
            .status()
            .await
            .context("running mount-lazyfs.sh")?;
        anyhow::ensure!(status.success(), "mount-lazyfs.sh failed: {status}");
        let fs = LazyFs { scripts, mount: mount.clone(), fifo };
        let needle = mount.to_string_lossy().to_string();
        wait_for("LazyFS to be mounted", PATIENCE, || async {
            let mounts = std::fs::read_to_string("/proc/mounts")?;
            Ok(mounts.lines().any(|l| l.split(' ').nth(1) == Some(needle.as_str())).then_some(()))
        })
        .await?;
        Ok(fs)
    }

    /// Drops every write that was not synced: what a power cut does.
    async fn power_cut(&self) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let mut f = tokio::fs::OpenOptions::new().write(true).open(&self.fifo).await?;
        f.write_all(b"lazyfs::clear-cache\n").await?;
        Ok(())
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new(self.scripts.join("umount-lazyfs.sh")).arg("-m").arg(&self.mount).status();
    }
}

#[tokio::test]
#[ignore = "needs FUSE and a built LazyFS checkout (a file system that drops unsynced writes), set MUSTER_LAZYFS_DIR to run"]
async fn acknowledged_tasks_survive_a_power_cut() -> anyhow::Result<()> {
    let checkout = std::env::var_os("MUSTER_LAZYFS_DIR")
        .map(PathBuf::from)
        .context("set MUSTER_LAZYFS_DIR to a LazyFS checkout with lazyfs built (lazyfs/build.sh) to run this test")?;
    let tmp = tempfile::tempdir()?;
    let fs = LazyFs::mount(&checkout, tmp.path()).await?;
    let data = fs.mount.join("server");
    let srv = start_server(&data, &[]).await?;
    let port = srv.port();
    let prpc = Prpc::new(&srv.url);
    let mut ids = Vec::new();
    for i in 0..20 {
        // No bot: the tasks stay pending, each acknowledged as durable.
        let mut t = task(&format!("durable-{i}"), &["true"], json!({}));
        t["taskSlices"][0]["waitForCapacity"] = json!(true);
        ids.push(submit(&prpc, &t).await?);
    }
    srv.kill9().await?;
    fs.power_cut().await?;
    let srv = ServerProcess::start(&exe(), &data, port, &[]).await?;
    let prpc = Prpc::new(&srv.url);
    for id in &ids {
        let r = prpc.call("Tasks", "GetResult", &json!({"taskId": id})).await?;
        assert_eq!(r.code, 0, "acknowledged task {id} lost in the power cut: {}", r.text);
        assert_eq!(r.json["state"], "PENDING", "{}", r.text);
    }
    srv.stop().await?;
    drop(fs);
    Ok(())
}
