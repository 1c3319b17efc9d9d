//! The pRPC client and verbs over real HTTP on 127.0.0.1, against a small
//! scripted pRPC endpoint (the real server's end-to-end tests live in
//! crates/muster/tests).

use crate::fixtures::{completed_result, env, parse, Reply, Responder};
use muster_api::pb;
use muster_api::pb::batch_get_result_response::{result_or_error::Outcome, ResultOrError};
use muster_cli::client::Retry;
use muster_cli::{run_with, tasks, CliError, Command};
use prost::Message;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn fast() -> Retry {
    Retry { attempts: 3, initial: Duration::from_millis(10), max: Duration::from_millis(20) }
}

fn metadata(id: &str) -> pb::TaskRequestMetadataResponse {
    pb::TaskRequestMetadataResponse {
        task_id: id.into(),
        task_result: Some(pb::TaskResultResponse {
            task_id: id.into(),
            state: pb::TaskState::Pending as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run_cmd(argv: &[&str]) -> (Result<i32, CliError>, String) {
    let cmd = parse(argv).expect("parses");
    let mut out = Vec::new();
    let r = run_with(cmd, &env(), &mut out).await;
    (r, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn trigger_posts_binary_protobuf_with_a_token_and_a_request_uuid() {
    let srv = Responder::start(|m, _| match m {
        "NewTask" => Reply::ok(&metadata("6663cfc78b41fb10")),
        _ => Reply::err(12, "nope"),
    })
    .await;
    let (r, out) =
        run_cmd(&["trigger", "-S", &srv.url, "--token", "tok-1", "--json", "-d", "pool=p", "--", "true"]).await;
    assert_eq!(r.expect("trigger works"), 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json on stdout");
    assert_eq!(v["tasks"][0]["task_id"], "6663cfc78b41fb10");
    let calls = srv.calls.lock().expect("lock");
    let (path, headers, body) = &calls[0];
    assert_eq!(path, "/prpc/swarming.v2.Tasks/NewTask");
    assert_eq!(headers.get("content-type").map(String::as_str), Some("application/prpc; encoding=binary"));
    assert_eq!(headers.get("accept").map(String::as_str), Some("application/prpc; encoding=binary"));
    assert_eq!(headers.get("authorization").map(String::as_str), Some("Bearer tok-1"));
    let req = pb::NewTaskRequest::decode(body.as_slice()).expect("binary NewTaskRequest");
    assert_eq!(req.request_uuid.len(), 36, "a random UUID: {:?}", req.request_uuid);
}

#[tokio::test]
async fn a_retried_new_task_carries_the_same_request_uuid() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let srv = Responder::start(move |_, _| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::err(14, "Service unavailable")
        } else {
            Reply::ok(&metadata("a10"))
        }
    })
    .await;
    let client = srv.client().with_retry(fast());
    let Command::Trigger(a) = parse(&["trigger", "-d", "pool=p", "--", "true"]).expect("parses") else { panic!() };
    let mut out = Vec::new();
    tasks::trigger(&client, &env(), &a, &mut out).await.expect("second try succeeds");
    let calls = srv.calls.lock().expect("lock");
    assert_eq!(calls.len(), 2);
    let uuid = |i: usize| pb::NewTaskRequest::decode(calls[i].2.as_slice()).expect("decodes").request_uuid;
    assert!(!uuid(0).is_empty());
    assert_eq!(uuid(0), uuid(1));
}

#[tokio::test]
async fn a_missing_task_is_one_line_with_the_not_found_exit_code() {
    let srv = Responder::start(|_, _| Reply::err(5, "no such task")).await;
    let (r, _) = run_cmd(&["request-show", "-S", &srv.url, "abc0"]).await;
    let e = r.expect_err("not found");
    assert_eq!(e.exit_code(), 4);
    let msg = e.to_string();
    assert!(msg.contains("abc0") && msg.contains("no such task") && !msg.contains('\n'), "{msg}");
}

#[tokio::test]
async fn permission_denied_has_its_own_exit_code() {
    let srv = Responder::start(|_, _| Reply::err(7, "forbidden")).await;
    let (r, _) = run_cmd(&["tasks", "-S", &srv.url]).await;
    let e = r.expect_err("denied");
    assert_eq!(e.exit_code(), 5);
    assert!(e.to_string().contains("PERMISSION_DENIED"), "{e}");
}

#[tokio::test]
async fn a_server_that_is_down_is_reported_as_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let client = muster_cli::Client::new(&format!("http://127.0.0.1:{port}"), None).expect("client").with_retry(fast());
    let Command::Tasks(a) = parse(&["tasks"]).expect("parses") else { panic!() };
    let e = tasks::tasks(&client, &env(), &a, &mut Vec::new()).await.expect_err("down");
    assert_eq!(e.exit_code(), 3);
    assert!(e.to_string().contains("cannot reach"), "{e}");
}

/// A URL on 127.0.0.1 where nothing listens (connections are refused).
fn refusing_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_client_given_a_refusing_url_first_calls_the_next_and_sticks_to_it() {
    let srv = Responder::start(|m, _| match m {
        "GetResult" => Reply::ok(&completed_result("a10")),
        _ => Reply::err(12, "nope"),
    })
    .await;
    let dead = refusing_url();
    let client =
        muster_cli::Client::new(&format!("{dead}, {}/", srv.url), None).expect("client").with_retry(Retry::none());
    assert_eq!(client.servers(), [dead.clone(), srv.url.clone()]);
    assert_eq!(client.server(), dead);
    let r = client.get_result("a10", false).await.expect("the second URL answers, even with one attempt");
    assert_eq!(r.task_id, "a10");
    assert_eq!(client.server(), srv.url, "the current URL is the one that answered");
    assert_eq!(client.task_url("a10"), format!("{}/task?id=a10", srv.url));
    client.clone().get_result("a10", false).await.expect("still answers");
    assert_eq!(srv.methods(), ["GetResult", "GetResult"]);
}

#[tokio::test]
async fn a_client_whose_urls_all_refuse_names_every_url_in_its_error() {
    let (a, b) = (refusing_url(), refusing_url());
    let client = muster_cli::Client::new(&format!("{a},{b}"), None).expect("client").with_retry(fast());
    let Command::Tasks(args) = parse(&["tasks"]).expect("parses") else { panic!() };
    let e = tasks::tasks(&client, &env(), &args, &mut Vec::new()).await.expect_err("down");
    assert_eq!(e.exit_code(), 3);
    let msg = e.to_string();
    assert!(msg.contains(&a) && msg.contains(&b) && msg.contains("connection refused"), "{msg}");
}

#[tokio::test]
async fn a_refused_connection_fails_at_once_with_the_url_tried() {
    // A retry would sleep an hour: the call returning at all proves none happened.
    let patient = Retry { attempts: 5, initial: Duration::from_secs(3600), max: Duration::from_secs(3600) };
    let dead = refusing_url();
    let client = muster_cli::Client::new(&dead, None).expect("client").with_retry(patient);
    let e = tokio::time::timeout(Duration::from_secs(60), client.get_result("a10", false))
        .await
        .expect("no retry of a refused connection before any answer")
        .expect_err("nothing listens");
    let msg = e.to_string();
    assert!(msg.contains(&dead) && msg.contains("connection refused"), "{msg}");
}

#[tokio::test]
async fn https_to_a_plain_http_server_hints_at_http() {
    // A plain HTTP server answers a TLS hello with an HTTP 400, as hyper does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        }
    });
    let client = muster_cli::Client::new(&format!("https://{addr}"), None).expect("client").with_retry(Retry::none());
    let msg = client.get_result("a10", false).await.expect_err("TLS to plain HTTP").to_string();
    assert!(msg.contains(&format!("use -S http://{addr}")), "{msg}");
}

#[tokio::test]
async fn a_new_task_failing_over_on_503_keeps_its_request_uuid() {
    let down = Responder::start(|_, _| Reply::err(14, "replica is draining")).await;
    let up = Responder::start(|m, _| match m {
        "NewTask" => Reply::ok(&metadata("a20")),
        _ => Reply::err(12, "nope"),
    })
    .await;
    let client = muster_cli::Client::new(&format!("{},{}", down.url, up.url), None).expect("client").with_retry(fast());
    let Command::Trigger(a) = parse(&["trigger", "-d", "pool=p", "--", "true"]).expect("parses") else { panic!() };
    let mut out = Vec::new();
    tasks::trigger(&client, &env(), &a, &mut out).await.expect("the second replica takes it");
    assert_eq!(client.server(), up.url);
    let uuid = |r: &Responder| {
        let calls = r.calls.lock().expect("lock");
        assert_eq!(calls.len(), 1);
        pb::NewTaskRequest::decode(calls[0].2.as_slice()).expect("decodes").request_uuid
    };
    assert!(!uuid(&down).is_empty());
    assert_eq!(uuid(&down), uuid(&up));
}

#[tokio::test]
async fn an_unknown_host_is_reported_without_retrying() {
    let client = muster_cli::Client::new("http://no-such-host.invalid", None).expect("client");
    let Command::Tasks(a) = parse(&["tasks"]).expect("parses") else { panic!() };
    let e = tasks::tasks(&client, &env(), &a, &mut Vec::new()).await.expect_err("unknown host");
    assert_eq!(e.exit_code(), 3);
    assert!(e.to_string().contains("unknown host"), "{e}");
}

#[test]
fn no_server_is_a_usage_error() {
    let e = muster_cli::CommonArgs::default().client(&env()).expect_err("no server");
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--server"), "{e}");
}

/// A task that prints "hello\n" in two pieces then completes with `final_state`.
async fn running_task(final_state: pb::TaskState, exit_code: i64) -> Responder {
    let polls = Arc::new(AtomicUsize::new(0));
    Responder::start(move |m, body| match m {
        "NewTask" => Reply::ok(&metadata("a10")),
        "GetStdout" => {
            let req = pb::TaskIdWithOffsetRequest::decode(body).expect("decodes");
            let n = polls.fetch_add(1, Ordering::SeqCst);
            let all = b"hello\n";
            let (upto, state) = match n {
                0 => (3, pb::TaskState::Running),
                _ => (6, final_state),
            };
            let from = (req.offset as usize).min(upto);
            Reply::ok(&pb::TaskOutputResponse { output: all[from..upto].to_vec(), state: state as i32 })
        }
        "GetResult" => {
            let mut r = completed_result("a10");
            r.state = final_state as i32;
            r.exit_code = exit_code;
            Reply::ok(&r)
        }
        _ => Reply::err(12, "unexpected"),
    })
    .await
}

#[tokio::test]
async fn run_streams_the_output_and_exits_with_the_task_exit_code() {
    let srv = running_task(pb::TaskState::Completed, 3).await;
    let (r, out) = run_cmd(&["run", "-S", &srv.url, "-d", "pool=p", "--", "echo", "hello"]).await;
    assert_eq!(r.expect("runs"), 3);
    assert_eq!(out, "hello\n");
    let m = srv.methods();
    assert_eq!(m.first().map(String::as_str), Some("NewTask"));
    assert_eq!(m.last().map(String::as_str), Some("GetResult"));
}

#[tokio::test]
async fn run_of_a_timed_out_task_exits_124() {
    let srv = running_task(pb::TaskState::TimedOut, 0).await;
    let (r, out) = run_cmd(&["run", "-S", &srv.url, "-d", "pool=p", "--", "sleep", "1000"]).await;
    assert_eq!(r.expect("runs"), 124);
    assert_eq!(out, "hello\n");
}

#[tokio::test]
async fn collect_writes_the_summary_file_and_prints_the_console_view() {
    let srv = Responder::start(|m, _| match m {
        "BatchGetResult" => Reply::ok(&pb::BatchGetResultResponse {
            results: vec![
                ResultOrError { task_id: "a10".into(), outcome: Some(Outcome::Result(completed_result("a10"))) },
                ResultOrError {
                    task_id: "b20".into(),
                    outcome: Some(Outcome::Error(pb::google::rpc::Status {
                        code: 5,
                        message: "no such task".into(),
                        details: vec![],
                    })),
                },
            ],
        }),
        "GetStdout" => {
            Reply::ok(&pb::TaskOutputResponse { output: b"out\n".to_vec(), state: pb::TaskState::Completed as i32 })
        }
        _ => Reply::err(12, "unexpected"),
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.json");
    let summary_s = summary.to_string_lossy().into_owned();
    let (r, out) =
        run_cmd(&["collect", "-S", &srv.url, "--task-output-stdout", "all", "--json-output", &summary_s, "a10", "b20"])
            .await;
    assert_eq!(r.expect("collects"), 0, "a failed task does not fail collect");
    assert_eq!(out, "a10: COMPLETED (FAILURE), exit code 3\nout\nb20: error: no such task\n");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).expect("file")).expect("json");
    assert_eq!(v["a10"]["output"], "out\n");
    assert_eq!(v["a10"]["results"]["exit_code"], "3");
    assert_eq!(v["b20"]["error"], "no such task");
}

#[tokio::test]
async fn cancel_of_a_finished_task_says_so_with_the_refused_exit_code() {
    let srv = Responder::start(|_, _| Reply::ok(&pb::CancelResponse { canceled: false, was_running: false })).await;
    let (r, _) = run_cmd(&["cancel", "-S", &srv.url, "--kill-running", "a10"]).await;
    let e = r.expect_err("not canceled");
    assert_eq!(e.exit_code(), 9);
    assert!(e.to_string().contains("already ended"), "{e}");
    let calls = srv.calls.lock().expect("lock");
    let req = pb::TaskCancelRequest::decode(calls[0].2.as_slice()).expect("decodes");
    assert_eq!(req, pb::TaskCancelRequest { task_id: "a10".into(), kill_running: true });
}

#[tokio::test]
async fn tasks_pages_until_the_limit() {
    let srv = Responder::start(|m, body| match m {
        "ListTasks" => {
            let req = pb::TasksWithPerfRequest::decode(body).expect("decodes");
            let items = (0..req.limit.min(2)).map(|i| completed_result(&format!("{}{i}0", req.cursor.len()))).collect();
            Reply::ok(&pb::TaskListResponse { items, cursor: format!("{}x", req.cursor), now: None })
        }
        _ => Reply::err(12, "unexpected"),
    })
    .await;
    let (r, out) = run_cmd(&["tasks", "-S", &srv.url, "--limit", "5", "--json"]).await;
    assert_eq!(r.expect("lists"), 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(5));
    assert_eq!(srv.methods().len(), 3);
    let calls = srv.calls.lock().expect("lock");
    let first = pb::TasksWithPerfRequest::decode(calls[0].2.as_slice()).expect("decodes");
    assert_eq!(first.state, pb::StateQuery::QueryAll as i32);
}

/// A listing of `total` numbers served `page`-wise; records the limits asked.
async fn list_numbers(total: usize, limit: Option<u32>) -> (Vec<usize>, Vec<i32>) {
    let asked = std::sync::Mutex::new(Vec::new());
    let items = muster_cli::client::collect_pages(limit, |want, cursor| {
        asked.lock().expect("lock").push(want);
        let from: usize = cursor.parse().unwrap_or(0);
        let to = (from + want as usize).min(total);
        let next = if to < total { to.to_string() } else { String::new() };
        async move { Ok::<_, String>(((from..to).collect::<Vec<_>>(), next)) }
    })
    .await
    .expect("pages");
    (items, asked.into_inner().expect("lock"))
}

#[tokio::test]
async fn listings_page_until_the_limit_or_the_end() {
    let (items, asked) = list_numbers(2500, Some(1500)).await;
    assert_eq!(items, (0..1500).collect::<Vec<_>>());
    assert_eq!(asked, vec![1000, 500]);
    let (items, asked) = list_numbers(2500, None).await;
    assert_eq!(items.len(), 2500);
    assert_eq!(asked, vec![1000, 1000, 1000]);
    let (items, asked) = list_numbers(0, Some(10)).await;
    assert!(items.is_empty());
    assert_eq!(asked, vec![10]);
}

#[tokio::test]
async fn a_pending_task_is_described_by_how_many_bots_match_and_are_busy() {
    let counts = |count, busy, dead| pb::BotsCount { count, busy, dead, ..Default::default() };
    let cases = [
        (counts(2, 2, 0), "2 matching bots, both busy"),
        (counts(1, 1, 0), "1 matching bot, busy"),
        (counts(5, 5, 2), "3 matching bots, all busy"),
        (counts(4, 1, 0), "4 matching bots, 3 idle"),
        (counts(3, 0, 3), "no live bot matches its dimensions"),
    ];
    for (c, want) in cases {
        let srv = Responder::start(move |m, _| match m {
            "CountBots" => Reply::ok(&c),
            _ => Reply::err(12, "nope"),
        })
        .await;
        let client = muster_cli::Client::new(&srv.url, None).expect("client").with_retry(Retry::none());
        let dims = [pb::StringPair { key: "pool".into(), value: "default".into() }];
        let got = muster_cli::run::pending_detail(&client, &dims).await;
        assert_eq!(got.as_deref(), Some(want));
        let sent = srv.calls.lock().expect("lock")[0].2.clone();
        assert_eq!(pb::BotsCountRequest::decode(sent.as_slice()).expect("decodes").dimensions, dims.to_vec());
    }
}
