//! The `swarming` personality against a scripted pRPC endpoint: Go flag
//! rules, the exact requests upstream sends, exit codes, outputs. The same
//! personality against a real server and real bots is tested end to end in
//! crates/muster/tests/it/swarming.rs.

use crate::fixtures::{completed_result, env, Reply, Responder};
use muster_api::pb;
use muster_api::pb::batch_get_result_response::{result_or_error::Outcome, ResultOrError};
use prost::Message;

struct Ran {
    code: i32,
    out: String,
    err: String,
}

async fn swarming_in(server: &str, args: &[&str], stdin: &str) -> Ran {
    let mut argv = vec!["swarming".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let mut e = env();
    e.swarming_server = Some(server.to_string());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
    let code = muster_cli::swarming::run(&argv, &e, None, &mut out, &mut err, &mut input).await;
    Ran { code, out: String::from_utf8_lossy(&out).into_owned(), err: String::from_utf8_lossy(&err).into_owned() }
}

async fn swarming(server: &str, args: &[&str]) -> Ran {
    swarming_in(server, args, "").await
}

fn metadata(id: &str) -> pb::TaskRequestMetadataResponse {
    pb::TaskRequestMetadataResponse {
        task_id: id.into(),
        request: Some(pb::TaskRequestResponse { task_id: id.into(), name: "n".into(), ..Default::default() }),
        task_result: Some(pb::TaskResultResponse {
            task_id: id.into(),
            state: pb::TaskState::Pending as i32,
            ..Default::default()
        }),
    }
}

fn new_task_server() -> impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static {
    |m, _| match m {
        "NewTask" => Reply::ok(&metadata("6663cfc78b41fb10")),
        _ => Reply::err(12, "nope"),
    }
}

fn sent_new_task(srv: &Responder) -> pb::NewTaskRequest {
    let calls = srv.calls.lock().expect("lock");
    let body = &calls.iter().find(|c| c.0.ends_with("/NewTask")).expect("a NewTask call").2;
    pb::NewTaskRequest::decode(body.as_slice()).expect("binary NewTaskRequest")
}

#[tokio::test]
async fn trigger_parses_go_style_flags_and_sends_what_upstream_sends() {
    let srv = Responder::start(new_task_server()).await;
    let digest = format!("{}/12", "a".repeat(64));
    let r = swarming(
        &srv.url,
        &[
            "trigger",
            "--dimension=pool=default",
            "-d",
            "os=Linux",
            "-idempotent=true",
            "-priority",
            "50",
            "-env",
            "ZED=1",
            "-env",
            "ALPHA=2",
            "-digest",
            &digest,
            "-cas-instance",
            "projects/p/instances/i",
            "-cipd-package",
            "bin:infra/tool=latest",
            "-named-cache",
            "git=cache/git",
            "-enable-resultdb=false",
            "-containment-type=auto",
            "-tag",
            "a:b",
            "echo",
            "-n",
            "-d",
            "hi",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "", "no JSON on stdout without -json-output");
    let req = sent_new_task(&srv);
    let p = req.task_slices[0].properties.clone().expect("properties");
    assert_eq!(p.command, ["echo", "-n", "-d", "hi"], "flags stop at the first non-flag word");
    let dims: Vec<_> = p.dimensions.iter().map(|d| format!("{}={}", d.key, d.value)).collect();
    assert_eq!(dims, ["os=Linux", "pool=default"], "sorted by key as upstream");
    let env: Vec<_> = p.env.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(env, ["ALPHA", "ZED"]);
    assert!(p.idempotent);
    assert_eq!(req.priority, 50);
    let cas = p.cas_input_root.expect("CAS input root");
    assert_eq!(cas.cas_instance, "projects/p/instances/i");
    assert_eq!(cas.digest.map(|d| (d.hash.len(), d.size_bytes)), Some((64, 12)));
    let cipd = p.cipd_input.expect("cipd");
    assert_eq!((cipd.packages[0].path.as_str(), cipd.packages[0].package_name.as_str()), ("bin", "infra/tool"));
    assert_eq!(p.caches[0].name, "git");
    assert_eq!(p.containment.map(|c| c.containment_type), Some(pb::containment::ContainmentType::Auto as i32));
    assert_eq!(req.resultdb, Some(pb::ResultDbCfg { enable: false }));
    assert_eq!(req.name, "alice/os=Linux_pool=default");
    assert_eq!(req.user, "alice");
    assert_eq!(req.tags, ["a:b"]);
    assert_eq!((p.execution_timeout_secs, p.io_timeout_secs, p.grace_period_secs), (3600, 1200, 30));
    assert_eq!(req.task_slices[0].expiration_secs, 21600);
}

#[tokio::test]
async fn trigger_sends_containment_none_by_default_and_a_double_dash_is_dropped() {
    let srv = Responder::start(new_task_server()).await;
    let r = swarming(&srv.url, &["trigger", "-d", "pool=p", "--", "true", "--", "x"]).await;
    assert_eq!(r.code, 0, "{}", r.err);
    let req = sent_new_task(&srv);
    let p = req.task_slices[0].properties.clone().expect("properties");
    assert_eq!(p.command, ["true", "--", "x"]);
    assert_eq!(p.containment.map(|c| c.containment_type), Some(pb::containment::ContainmentType::None as i32));
}

#[tokio::test]
async fn a_short_digest_is_the_digest_flag_not_a_dimension() {
    let srv = Responder::start(new_task_server()).await;
    let r = swarming(&srv.url, &["trigger", "-d", "pool=p", "-digest", "abc/12", "--", "true"]).await;
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("invalid digest: abc/12"), "{}", r.err);
    assert!(srv.methods().is_empty(), "nothing sent: {:?}", srv.methods());
}

#[tokio::test]
async fn trigger_reads_secret_bytes_and_writes_the_json_output_file() {
    let srv = Responder::start(new_task_server()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"s3cr3t").expect("write");
    let out = dir.path().join("t.json");
    let r = swarming(
        &srv.url,
        &[
            "trigger",
            "-d",
            "pool=p",
            "-secret-bytes-path",
            secret.to_str().unwrap_or_default(),
            "-dump-json",
            out.to_str().unwrap_or_default(),
            "true",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.err);
    let p = sent_new_task(&srv).task_slices[0].properties.clone().expect("properties");
    assert_eq!(p.secret_bytes, b"s3cr3t");
    let text = std::fs::read_to_string(&out).expect("json file");
    assert!(text.starts_with("{\n \"tasks\": [\n  {\n"), "{text}");
    assert!(text.ends_with("\n  }\n ]\n}\n"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["tasks"][0]["task_id"], "6663cfc78b41fb10");
    assert_eq!(v["tasks"][0]["task_result"]["state"], "PENDING");
    assert!(r.err.contains("collect -server"), "the hint: {}", r.err);
}

#[tokio::test]
async fn flag_errors_exit_2_and_other_errors_exit_1() {
    let srv = Responder::start(new_task_server()).await;
    let r = swarming(&srv.url, &["trigger", "-nope", "-d", "pool=p", "true"]).await;
    assert_eq!(r.code, 2);
    assert!(r.err.starts_with("flag provided but not defined: -nope\n"), "{}", r.err);
    assert!(r.err.contains("-dimension"), "usage follows: {}", r.err);
    let r = swarming(&srv.url, &["trigger", "-idempotent=maybe", "-d", "pool=p", "true"]).await;
    assert_eq!(r.code, 2, "{}", r.err);
    let r = swarming(&srv.url, &["trigger", "-d", "pool=p", "-d", "pool=q", "true"]).await;
    assert_eq!(r.code, 2, "a dimension key twice: {}", r.err);
    let r = swarming(&srv.url, &["trigger", "true"]).await;
    assert_eq!((r.code, r.err.as_str()), (1, "swarming: please specify at least one dimension via -dimension\n"));
    let r = swarming(&srv.url, &["trigger", "-d", "pool=p"]).await;
    assert_eq!(r.code, 1, "{}", r.err);
    let r = swarming(&srv.url, &["nosuchverb"]).await;
    assert_eq!(r.code, 2);
    let r = swarming(&srv.url, &[]).await;
    assert_eq!(r.code, 2);
    let r = swarming(&srv.url, &["request-show"]).await;
    assert_eq!((r.code, r.err.as_str()), (1, "swarming: expecting exactly 1 argument(s), but got 0\n"));
    let r = swarming(&srv.url, &["collect", "-timeout", "10", "abc0"]).await;
    assert_eq!(r.code, 2, "a duration needs a unit: {}", r.err);
    let r = swarming(&srv.url, &["collect", "-wait=false", "-timeout", "1m", "abc0"]).await;
    assert_eq!((r.code, r.err.as_str()), (1, "swarming: do not specify -timeout with -wait=false\n"));
    // Unique prefixes name verbs, as upstream.
    let r = swarming(&srv.url, &["trig", "-d", "pool=p", "true"]).await;
    assert_eq!(r.code, 0, "{}", r.err);
    // Server errors are exit 1 with gRPC's wording.
    let r = swarming(&srv.url, &["request-show", "abc0"]).await;
    assert_eq!(r.code, 1);
    assert!(r.err.contains("rpc error: code = Unimplemented desc = nope"), "{}", r.err);
}

#[tokio::test]
async fn common_flags_and_auth_flags_are_accepted() {
    let srv = Responder::start(|m, _| match m {
        "GetRequest" => Reply::ok(&pb::TaskRequestResponse { task_id: "abc0".into(), ..Default::default() }),
        _ => Reply::err(12, "nope"),
    })
    .await;
    let r = swarming(
        "http://unused.invalid",
        &["request-show", "-S", &srv.url, "-quiet", "-verbose=false", "-service-account-json", "sa.json", "abc0"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "{\n \"task_id\": \"abc0\"\n}\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("req.json");
    let r = swarming(&srv.url, &["request-show", "-json-output", f.to_str().unwrap_or_default(), "abc0"]).await;
    assert_eq!((r.code, r.out.as_str()), (0, ""), "{}", r.err);
    assert_eq!(std::fs::read_to_string(&f).expect("file"), "{\n \"task_id\": \"abc0\"\n}\n");
}

fn batch_server() -> impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static {
    |m, body| match m {
        "BatchGetResult" => {
            let req = pb::BatchGetResultRequest::decode(body).unwrap_or_default();
            let results = req
                .task_ids
                .iter()
                .map(|id| {
                    let outcome = if id == "dead0" {
                        Outcome::Error(pb::google::rpc::Status {
                            code: 5,
                            message: "no such task".into(),
                            details: vec![],
                        })
                    } else {
                        Outcome::Result(completed_result(id))
                    };
                    ResultOrError { task_id: id.clone(), outcome: Some(outcome) }
                })
                .collect();
            Reply::ok(&pb::BatchGetResultResponse { results })
        }
        "GetStdout" => Reply::ok(&pb::TaskOutputResponse {
            output: b"hello <&>\n".to_vec(),
            state: pb::TaskState::Completed as i32,
        }),
        _ => Reply::err(12, "nope"),
    }
}

#[tokio::test]
async fn collect_defaults_print_nothing_and_write_the_summary_keyed_by_id() {
    let srv = Responder::start(batch_server()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("s.json");
    let r =
        swarming(&srv.url, &["collect", "-task-summary-json", f.to_str().unwrap_or_default(), "abc0", "dead0"]).await;
    assert_eq!(r.code, 0, "a missing task is not a failure of collect: {}", r.err);
    assert_eq!(r.out, "", "-task-output-stdout defaults to none");
    assert!(!srv.methods().contains(&"GetStdout".to_string()), "no output fetched");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).expect("file")).expect("json");
    assert_eq!(v["dead0"], serde_json::json!({"error": "rpc error: code = NotFound desc = no such task"}));
    assert_eq!(v["abc0"]["results"]["exit_code"], "3");
    assert!(v["abc0"].get("output").is_none(), "no output key without json mode: {v}");
    assert!(v["abc0"].get("error").is_none());
}

#[tokio::test]
async fn collect_task_output_modes_console_json_and_dir() {
    let srv = Responder::start(batch_server()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let txt = dir.path().join("logs");
    let r = swarming(
        &srv.url,
        &[
            "collect",
            "-task-output-stdout",
            "console",
            "-task-output-stdout=json",
            "-task-output-stdout",
            &format!("dir:{}", txt.display()),
            "-json-output",
            "-",
            "-output-fetch-concurrency",
            "1",
            "-cas-addr",
            "cas.example.com:443",
            "abc0",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("abc0: COMPLETED, exit code 3\nhello <&>\n\n{\n \"abc0\": {\n  \"output\": \"hello <&>\\n\",\n  \"results\": {"), "{}", r.out);
    assert_eq!(std::fs::read(txt.join("abc0.txt")).expect("dir output"), b"hello <&>\n");
}

#[tokio::test]
async fn collect_task_summary_python_is_a_boolean_changing_the_format() {
    let srv = Responder::start(batch_server()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("s.json");
    let r = swarming(
        &srv.url,
        &[
            "collect",
            "-task-summary-python",
            "-task-output-stdout",
            "json",
            "-json-output",
            f.to_str().unwrap_or_default(),
            "abc0",
            "dead0",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!dir.path().join("true").exists());
    let text = std::fs::read_to_string(&f).expect("file");
    assert!(text.contains("\"output\": \"hello \\u003c\\u0026\\u003e\\n\""), "Go's encoding/json escapes: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["shards"][0]["task_id"], "abc0");
    assert_eq!(v["shards"][1], serde_json::Value::Null);
}

#[tokio::test]
async fn collect_output_dir_makes_a_directory_per_task() {
    let srv = Responder::start(batch_server()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("abc0")).expect("mkdir");
    std::fs::write(out.join("abc0").join("stale"), b"x").expect("write");
    let r = swarming(
        &srv.url,
        &["collect", "-output-dir", out.to_str().unwrap_or_default(), "-task-output-stdout", "dir", "abc0"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!out.join("abc0").join("stale").exists(), "cleared first");
    assert_eq!(std::fs::read(out.join("abc0.txt")).expect("stdout file"), b"hello <&>\n");
}

#[tokio::test]
async fn tasks_json_file_alias_and_json_on_stdout_by_default() {
    let srv = Responder::start(|m, _| match m {
        "ListTasks" => Reply::ok(&pb::TaskListResponse { items: vec![completed_result("abc0")], ..Default::default() }),
        "ListBots" => Reply::ok(&pb::BotInfoListResponse {
            items: vec![pb::BotInfo { bot_id: "b1".into(), ..Default::default() }],
            ..Default::default()
        }),
        _ => Reply::err(12, "nope"),
    })
    .await;
    let r = swarming(&srv.url, &["tasks", "-state", "completed", "-field", "x"]).await;
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("[\n {\n  \""), "{}", r.out);
    assert!(r.out.ends_with("\n }\n]\n"), "{}", r.out);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("t.json");
    let r = swarming(&srv.url, &["tasks", "-json", f.to_str().unwrap_or_default()]).await;
    assert_eq!((r.code, r.out.as_str()), (0, ""), "{}", r.err);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).expect("file")).expect("json");
    assert_eq!(v[0]["task_id"], "abc0");
    let r = swarming(&srv.url, &["bots", "-bare"]).await;
    assert_eq!((r.code, r.out.as_str()), (0, "b1\n"), "{}", r.err);
    let r = swarming(&srv.url, &["bots", "-json", f.to_str().unwrap_or_default()]).await;
    assert_eq!((r.code, r.out.as_str()), (0, ""), "{}", r.err);
    let r = swarming(&srv.url, &["tasks", "-count"]).await;
    assert_eq!((r.code, r.err.as_str()), (1, "swarming: with -count, must provide -start >0\n"));
}

#[tokio::test]
async fn delete_bots_takes_a_piped_answer() {
    let srv = Responder::start(|m, _| match m {
        "DeleteBot" => Reply::ok(&pb::DeleteResponse { deleted: true }),
        _ => Reply::err(12, "nope"),
    })
    .await;
    let r = swarming_in(&srv.url, &["delete-bots", "b1", "b2"], "y\n").await;
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "Delete the following bots?\nb1\nb2\nContinue? [y/N] \n");
    assert_eq!(srv.methods(), ["DeleteBot", "DeleteBot"]);
    let r = swarming_in(&srv.url, &["delete-bots", "b3"], "n\n").await;
    assert_eq!(r.code, 0);
    assert!(r.out.ends_with("canceled deleting bots, Goodbye\n"), "{}", r.out);
    let r = swarming_in(&srv.url, &["delete-bots", "b3"], "").await;
    assert_eq!(r.code, 1, "EOF is an error: {}", r.err);
    assert_eq!(srv.methods().len(), 2);
}

#[tokio::test]
async fn cancel_tasks_without_tags_goes_to_the_server_up_to_limit_200() {
    let srv = Responder::start(|m, _| match m {
        "CancelTasks" => Reply::ok(&pb::TasksCancelResponse { matched: 3, ..Default::default() }),
        _ => Reply::err(12, "nope"),
    })
    .await;
    let r = swarming(&srv.url, &["cancel-tasks"]).await;
    assert_eq!(r.code, 0, "{}", r.err);
    let r = swarming(&srv.url, &["cancel-tasks", "-limit", "201"]).await;
    assert_eq!(r.code, 1);
    assert!(r.err.contains("cannot be larger than 200 when no tags is specified"), "{}", r.err);
    let r =
        swarming(&srv.url, &["cancel-tasks", "-tag", "a:b", "-limit", "500", "-start", "2024-01-16T12:34:56Z"]).await;
    assert_eq!(r.code, 0, "{}", r.err);
    let calls = srv.calls.lock().expect("lock");
    let last = pb::TasksCancelRequest::decode(calls[calls.len() - 1].2.as_slice()).expect("decodes");
    assert_eq!((last.limit, last.tags.clone()), (500, vec!["a:b".to_string()]));
    assert_eq!(last.start.map(|t| t.seconds), Some(1_705_408_496));
}
