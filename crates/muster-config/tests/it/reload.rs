use muster_config::reload::Reloaded;
use muster_config::snapshot::LoadOptions;
use muster_config::ConfigHolder;

#[test]
fn a_broken_file_keeps_the_old_snapshot_and_a_fixed_one_swaps() {
    let dir = crate::copy_upstream();
    let holder = ConfigHolder::load(dir.path(), LoadOptions::default()).expect("loads");
    let first = holder.get();
    assert_eq!(holder.reload().expect("same files"), Reloaded::Unchanged);

    std::fs::write(dir.path().join("pools.cfg"), "pool { name: \"ci\" realm: \"infra:pool/ci\"\n").expect("write");
    let errors = holder.reload().expect_err("broken file refused");
    assert!(errors.to_string().contains("pools.cfg:"), "{errors}");
    assert!(!holder.is_valid());
    assert_eq!(holder.get().digest, first.digest, "old snapshot stays in force");
    assert_eq!(holder.get().pools.len(), 3);

    std::fs::write(dir.path().join("pools.cfg"), "pool { name: \"ci\" realm: \"infra:pool/ci\" }\n").expect("write");
    match holder.reload().expect("fixed file loads") {
        Reloaded::Swapped { digest } => assert_ne!(digest, first.digest),
        other => panic!("expected a swap, got {other:?}"),
    }
    assert!(holder.is_valid());
    assert_eq!(holder.get().pools.len(), 1);
    // The snapshot taken before the swap is unchanged (immutable).
    assert_eq!(first.pools.len(), 3);
}

#[test]
fn stamp_change_is_noticed() {
    let dir = crate::copy_upstream();
    let holder = ConfigHolder::load(dir.path(), LoadOptions::default()).expect("loads");
    assert!(holder.reload_if_changed().is_none(), "nothing changed");
    std::fs::write(dir.path().join("settings.cfg"), "bot_death_timeout_secs: 60\n").expect("write");
    let r = holder.reload_if_changed().expect("size changed, so noticed");
    assert!(matches!(r, Ok(Reloaded::Swapped { .. })), "{r:?}");
    assert_eq!(holder.get().settings.bot_death_timeout_secs, 60);
}
