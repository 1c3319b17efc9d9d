//! Durability settings, read back from the live connections the stores
//! write through. A kill -9 keeps the OS page cache, so the crash tests
//! cannot notice a missing fsync; these fail as soon as someone weakens the
//! settings that make an acknowledged commit survive power loss.

use muster_store::{PostgresStore, SqliteStore};
use muster_testkit::TempPostgres;

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_through_the_wal_with_synchronous_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("muster.db")).expect("open");
    // FULL syncs the WAL at every commit; NORMAL would lose the last
    // commits on power loss.
    assert_eq!(
        store.durability().await.expect("read the pragmas"),
        pairs(&[("journal_mode", "wal"), ("synchronous", "full")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commits_wait_for_the_disk() {
    // A cluster configured as a deployment's (fsync on).
    let pg = TempPostgres::start_durable();
    let url = pg.create_database().await;
    let store = PostgresStore::connect(&url).await.expect("connect");
    assert_eq!(
        store.durability().await.expect("read the settings"),
        pairs(&[("synchronous_commit", "on"), ("fsync", "on"), ("full_page_writes", "on")])
    );
}

/// The check reads the live server, not a constant: the test harness's
/// usual cluster runs with fsync off, and the store reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_durability_is_read_from_the_server() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let store = PostgresStore::connect(&url).await.expect("connect");
    let got = store.durability().await.expect("read the settings");
    assert!(got.contains(&("fsync".to_string(), "off".to_string())), "{got:?}");
}
