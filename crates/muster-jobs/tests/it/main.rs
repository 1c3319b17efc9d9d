//! Engine scenarios with a fake clock, on a real SQLite file and on a real
//! PostgreSQL (a fresh database per scenario), plus the `http` manager
//! against a real local HTTP server.

mod harness;
mod http;
mod scenarios;

use muster_store::{PostgresStore, SqliteStore, Store};
use muster_testkit::TempPostgres;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut n = 0;
    scenarios::run_all(|| {
        n += 1;
        let path = dir.path().join(format!("m{n}.db"));
        async move {
            let s: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("open sqlite"));
            s
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_on_postgres() {
    let pg = TempPostgres::start();
    scenarios::run_all(|| async {
        let s: Arc<dyn Store> =
            Arc::new(PostgresStore::connect(&pg.create_database().await).await.expect("connect postgres"));
        s
    })
    .await;
}
