//! The `http` manager against a real local HTTP server: success, a 500, a
//! target that never answers, and the idempotency key header.

use crate::harness::World;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use muster_jobs::model::Status;
use muster_store::{SqliteStore, Store};
use parking_lot::Mutex;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_jobs_succeed_fail_and_time_out_clearly() {
    let keys: Arc<Mutex<Vec<String>>> = Arc::default();
    let k = keys.clone();
    let app = Router::new()
        .route(
            "/ok",
            get(move |h: HeaderMap| async move {
                let key = h.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                k.lock().push(key);
                "all good"
            }),
        )
        .route("/boom", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "kaput") }))
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("m.db")).expect("open"));
    let w = World::new(store, "web");
    w.configure(&format!(
        "[[job]]\nid = \"ok\"\n[job.http]\nurl = \"http://{addr}/ok\"\n\
         [[job]]\nid = \"boom\"\n[job.http]\nurl = \"http://{addr}/boom\"\n\
         [[job]]\nid = \"hang\"\n[job.http]\nurl = \"http://{addr}/hang\"\ntimeout = \"1s\"\n"
    ))
    .await;
    for j in ["ok", "boom", "hang"] {
        w.engine.trigger_now(&w.job(j), "user:t", None, muster_jobs::model::Payload::Webui).await.expect("trigger");
    }
    w.step().await;
    let ok = w.invocations("ok").await.remove(0);
    assert_eq!(ok.status, Status::Succeeded, "{}", ok.data.debug_log);
    assert!(ok.data.debug_log.contains("all good"));
    assert_eq!(keys.lock().clone(), vec![format!("{}/{}", w.job("ok"), ok.id)]);
    let boom = w.invocations("boom").await.remove(0);
    assert_eq!(boom.status, Status::Failed);
    assert!(boom.data.summary.contains("HTTP 500"), "{}", boom.data.summary);
    assert!(boom.data.debug_log.contains("kaput"));
    let hang = w.invocations("hang").await.remove(0);
    assert_eq!(hang.status, Status::Failed);
    assert!(
        hang.data.summary.contains("no answer") && hang.data.summary.contains("within 1s"),
        "{}",
        hang.data.summary
    );
}
