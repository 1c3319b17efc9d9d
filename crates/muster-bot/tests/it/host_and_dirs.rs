//! Dimensions detection, the directory lock and cleaning.

use muster_bot::dirs::{clean, DirLock};
use muster_bot::host::{cpu_values, detect_dimensions, os_values};
use muster_bot::{BotError, BotOptions};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

#[test]
fn detected_dimensions_have_id_os_cpu_cores_and_pool() {
    let mut extra = BTreeMap::new();
    extra.insert("pool".to_string(), vec!["ci".to_string()]);
    extra.insert("zone".to_string(), vec!["lab1".to_string()]);
    let d = detect_dimensions("bot7", &extra);
    assert_eq!(d["id"], vec!["bot7"]);
    assert!(d["os"].contains(&"Linux".to_string()), "{:?}", d["os"]);
    assert!(!d["cpu"].is_empty());
    let cores: usize = d["cores"][0].parse().expect("cores is a number");
    assert!(cores >= 1);
    assert_eq!(d["pool"], vec!["ci"], "extra dimensions replace detected ones");
    assert_eq!(d["zone"], vec!["lab1"]);
    assert!(!d["gpu"].is_empty());
    let no_extra = detect_dimensions("bot7", &BTreeMap::new());
    assert_eq!(no_extra["pool"], vec!["default"]);
}

#[test]
fn os_release_gives_distribution_names() {
    let release =
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
    assert_eq!(os_values(release, "12.11\n"), vec!["Debian", "Debian-12", "Debian-12.11", "Linux"]);
    let ubuntu = "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\n";
    assert_eq!(os_values(ubuntu, ""), vec!["Linux", "Ubuntu", "Ubuntu-22.04"]);
    assert_eq!(os_values("", ""), vec!["Linux"]);
}

#[test]
fn cpu_names_follow_swarming() {
    assert_eq!(cpu_values("x86_64", "flags\t: fpu avx2 sse"), vec!["x86", "x86-64", "x86-64-avx2"]);
    assert_eq!(cpu_values("x86_64", "flags\t: fpu"), vec!["x86", "x86-64"]);
    assert_eq!(cpu_values("aarch64", ""), vec!["arm64", "arm64-64"]);
}

#[test]
fn the_lock_refuses_a_second_bot_in_the_same_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = DirLock::acquire(dir.path()).expect("first lock");
    assert!(matches!(DirLock::acquire(dir.path()), Err(BotError::AlreadyRunning(_))));
    drop(first);
    DirLock::acquire(dir.path()).expect("the lock is free again once the first bot is gone");
}

#[tokio::test]
async fn run_fails_fast_when_another_bot_holds_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _held = DirLock::acquire(dir.path()).expect("lock");
    std::fs::write(dir.path().join("keep-me"), b"x").expect("write");
    let opts = BotOptions::new("http://127.0.0.1:9", dir.path());
    let err = muster_bot::run(opts, CancellationToken::new()).await.expect_err("must refuse");
    assert!(matches!(err, BotError::AlreadyRunning(_)), "{err}");
    assert!(err.to_string().contains("already running"));
    assert!(dir.path().join("keep-me").exists(), "a refused bot must not clean the directory");
}

#[test]
fn cleaning_keeps_the_lock_caches_logs_and_binary_slots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for keep in ["c/cache1/f", "logs/bot.log", "muster-bot.1", "muster-bot.lkg", "muster-bot.lck"] {
        let p = d.join(keep);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"x").expect("write");
    }
    for junk in ["w/old-task/out", "stray.txt", "hook"] {
        let p = d.join(junk);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"x").expect("write");
    }
    assert!(clean(d).is_empty());
    for keep in ["c/cache1/f", "logs/bot.log", "muster-bot.1", "muster-bot.lkg", "muster-bot.lck"] {
        assert!(d.join(keep).exists(), "{keep} must be kept");
    }
    for junk in ["w", "stray.txt", "hook"] {
        assert!(!d.join(junk).exists(), "{junk} must be removed");
    }
}

#[test]
fn own_version_is_the_sha256_of_the_running_executable() {
    let v = muster_bot::own_version().expect("version");
    let bytes = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
    assert_eq!(v, muster_bot::update::digest_hex(&bytes));
    assert_eq!(v.len(), 64);
}

#[test]
fn the_trailer_is_read_from_the_end_of_the_executable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = muster_api::trailer::BotConfig { server: "http://127.0.0.1:9".into(), ..Default::default() };
    let path = dir.path().join("with-trailer");
    std::fs::write(&path, muster_api::trailer::append(&vec![0x7f; 300_000], &cfg)).expect("write");
    assert_eq!(muster_bot::read_trailer(&path).expect("read"), Some(cfg));
    let bare = dir.path().join("bare");
    std::fs::write(&bare, b"no trailer here, just bytes").expect("write");
    assert_eq!(muster_bot::read_trailer(&bare).expect("read"), None);
}
