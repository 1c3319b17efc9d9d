//! muster-access: tokens against a real SQLite store, OIDC against a real
//! local issuer, request authentication and the checker's rules.

mod authn;
mod checker;
mod oidc;
mod token;

use muster_config::snapshot::{build, Files, LoadOptions};
use muster_config::Snapshot;

pub fn snapshot(files: &[(&str, &str)]) -> Snapshot {
    let files = Files(files.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect());
    build(&files, LoadOptions::default()).expect("valid config")
}

pub fn store() -> (tempfile::TempDir, std::sync::Arc<dyn muster_store::Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = muster_store::SqliteStore::open(&dir.path().join("t.db")).expect("open sqlite");
    (dir, std::sync::Arc::new(store))
}
