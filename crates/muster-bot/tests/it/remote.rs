//! Failover of [`Remote`] between server replicas, against two scripted HTTP
//! servers on 127.0.0.1:0 that can be told to answer 503.

use crate::support::refusing_url;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use muster_bot::remote::{Remote, Retry};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One replica: counts the calls it answered with 200 and fails with 503 while `down`.
#[derive(Default)]
struct Replica {
    down: AtomicBool,
    served: AtomicUsize,
    refused: AtomicUsize,
}

async fn answer(r: &Replica) -> (StatusCode, Json<Value>) {
    if r.down.load(Ordering::SeqCst) {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "replica is draining"})));
    }
    r.served.fetch_add(1, Ordering::SeqCst);
    (StatusCode::OK, Json(json!({"cmd": "sleep", "duration": 1.0})))
}

async fn start(replica: Arc<Replica>) -> String {
    let app = Router::new()
        .route("/swarming/api/v1/bot/server_ping", get(|State(r): State<Arc<Replica>>| async move { answer(&r).await }))
        .route("/swarming/api/v1/bot/poll", post(|State(r): State<Arc<Replica>>| async move { answer(&r).await }))
        .with_state(replica);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn served(r: &Replica) -> usize {
    r.served.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_remote_whose_server_starts_failing_with_503_moves_to_the_next_and_stays_there() {
    let (a, b) = (Arc::new(Replica::default()), Arc::new(Replica::default()));
    let (url_a, url_b) = (start(a.clone()).await, start(b.clone()).await);
    let remote = Remote::new(&[url_a.clone(), url_b.clone()], "bot1", None, CancellationToken::new()).expect("remote");
    let budget = Retry::Budget(Duration::from_secs(60));

    remote.ping(budget).await.expect("a answers");
    assert_eq!((served(&a), served(&b)), (1, 0));
    assert_eq!(remote.server(), url_a);

    // A starts failing: the retry goes to B at once.
    a.down.store(true, Ordering::SeqCst);
    let reply: Value = remote.post_json("/poll", &json!({}), budget).await.expect("b answers");
    assert_eq!(reply["cmd"], "sleep");
    assert_eq!(a.refused.load(Ordering::SeqCst), 1);
    assert_eq!(served(&b), 1);
    assert_eq!(remote.server(), url_b);

    // A is back, but the remote sticks to B while B works.
    a.down.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        let _: Value = remote.post_json("/poll", &json!({}), Retry::Once).await.expect("b answers");
    }
    remote.ping(budget).await.expect("b answers");
    assert_eq!((served(&a), served(&b)), (1, 5));
    assert_eq!(remote.server(), url_b);
}

#[tokio::test]
async fn a_single_failed_poll_sends_the_next_poll_to_the_other_server() {
    let (a, b) = (Arc::new(Replica::default()), Arc::new(Replica::default()));
    let (url_a, url_b) = (start(a.clone()).await, start(b.clone()).await);
    let remote = Remote::new(&[url_a.clone(), url_b.clone()], "bot1", None, CancellationToken::new()).expect("remote");
    a.down.store(true, Ordering::SeqCst);

    let err = remote.post_json::<_, Value>("/poll", &json!({}), Retry::Once).await.expect_err("a is down");
    assert!(err.is_transient(), "{err}");
    assert_eq!(remote.server(), url_b, "the failure moved the remote on");
    let _: Value = remote.post_json("/poll", &json!({}), Retry::Once).await.expect("b answers");
    assert_eq!((served(&a), served(&b)), (0, 1));
}

#[tokio::test]
async fn a_remote_given_only_dead_servers_gives_up_within_its_budget() {
    let servers = vec![refusing_url(), refusing_url()];
    let remote = Remote::new(&servers, "bot1", None, CancellationToken::new()).expect("remote");
    let err = remote.ping(Retry::Budget(Duration::from_secs(3))).await.expect_err("nobody answers");
    assert!(err.is_transient(), "{err}");
}

#[test]
fn a_remote_refuses_a_bad_url_or_an_empty_list() {
    let err = Remote::new(&["http://ok".into(), "replica-2:8080".into()], "bot1", None, CancellationToken::new())
        .expect_err("bad url");
    assert!(matches!(&err, muster_bot::BotError::BadServer(s) if s == "replica-2:8080"), "{err}");
    let err = Remote::new(&[" ".into()], "bot1", None, CancellationToken::new()).expect_err("no url");
    assert!(matches!(err, muster_bot::BotError::NoServer), "{err}");
}
