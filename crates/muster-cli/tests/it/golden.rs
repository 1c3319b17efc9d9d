//! Golden tests of the JSON outputs and summary files. Expected files live
//! in tests/data/; `UPDATE_GOLDEN=1 cargo test -p muster-cli` rewrites them
//! (review the diff!).

use crate::fixtures::{completed_result, env, parse, pending_result, ts};
use muster_api::pb;
use muster_cli::collect::{summary_json, summary_python, Collected};
use muster_cli::format;
use muster_cli::Command;
use std::path::PathBuf;

fn check(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(got, want, "golden {name} differs");
}

fn metadata() -> pb::TaskRequestMetadataResponse {
    let Command::Trigger(a) =
        parse(&["trigger", "-d", "pool=default", "--tag", "purpose:demo", "--", "echo", "hi"]).expect("parses")
    else {
        panic!()
    };
    let req = muster_cli::args::new_task_request(&a.task, &env(), "https://x", "uuid-1").expect("valid");
    let slice = req.task_slices[0].clone();
    pb::TaskRequestMetadataResponse {
        task_id: "6663cfc78b41fb10".into(),
        request: Some(pb::TaskRequestResponse {
            task_id: "6663cfc78b41fb10".into(),
            expiration_secs: slice.expiration_secs,
            name: req.name.clone(),
            priority: req.priority,
            properties: slice.properties.clone(),
            tags: vec!["pool:default".into(), "priority:200".into(), "purpose:demo".into(), "user:alice".into()],
            created_ts: Some(ts(0)),
            user: "alice".into(),
            authenticated: "user:alice@example.com".into(),
            task_slices: vec![slice],
            service_account: "none".into(),
            bot_ping_tolerance_secs: 1200,
            ..Default::default()
        }),
        task_result: Some(pb::TaskResultResponse {
            task_id: "6663cfc78b41fb10".into(),
            created_ts: Some(ts(0)),
            modified_ts: Some(ts(0)),
            state: pb::TaskState::Pending as i32,
            name: req.name,
            user: "alice".into(),
            ..Default::default()
        }),
    }
}

#[test]
fn the_new_task_request_from_flags_matches_its_golden() {
    let Command::Trigger(a) = parse(&[
        "trigger",
        "-d",
        "pool=default",
        "-d",
        "os=Linux|Mac",
        "--env",
        "FOO=bar",
        "--env-prefix",
        "PATH=bin",
        "--named-cache",
        "git=cache/git",
        "--",
        "echo",
        "hi",
    ])
    .expect("parses") else {
        panic!()
    };
    let req = muster_cli::args::new_task_request(&a.task, &env(), "https://x", "uuid-1").expect("valid");
    check("new_task_request.json", &format::json_text(&format::snake(&req).expect("json")));
}

#[test]
fn trigger_json_output_matches_its_golden() {
    let v = format::tasks_output(&[metadata()]).expect("json");
    check("trigger_output.json", &format::json_text(&v));
}

#[test]
fn collect_summary_json_matches_its_golden() {
    let items = vec![
        Collected {
            task_id: "6663cfc78b41fb10".into(),
            result: Some(completed_result("6663cfc78b41fb10")),
            output: Some(b"hello\nworld\n".to_vec()),
            error: None,
        },
        Collected { task_id: "6663cfc78b41fc20".into(), error: Some("no such task".into()), ..Default::default() },
        Collected {
            task_id: "6663cfc78b41fd30".into(),
            result: Some(pending_result("6663cfc78b41fd30")),
            ..Default::default()
        },
    ];
    check("collect_summary.json", &format::json_text(&summary_json(&items).expect("json")));
    check("collect_summary_python.json", &format::json_text(&summary_python(&items).expect("json")));
}

#[test]
fn tasks_list_json_matches_its_golden() {
    let v =
        format::list_output(&[completed_result("6663cfc78b41fb10"), pending_result("6663cfc78b41fc20")]).expect("json");
    check("tasks_list.json", &format::json_text(&v));
}

#[test]
fn bots_list_json_matches_its_golden() {
    let bots = [pb::BotInfo {
        bot_id: "bot-1".into(),
        dimensions: vec![pb::StringListPair { key: "pool".into(), value: vec!["default".into()] }],
        first_seen_ts: Some(ts(86_400)),
        last_seen_ts: Some(ts(5)),
        version: "abc".into(),
        state: "{\"sleep_streak\": 3}".into(),
        ..Default::default()
    }];
    check("bots_list.json", &format::json_text(&format::list_output(&bots).expect("json")));
}

#[test]
fn json_files_are_snake_case_with_one_space_indent_and_int64_strings() {
    let text = format::json_text(&format::list_output(&[completed_result("a10")]).expect("json"));
    assert!(text.starts_with("[\n {\n  \""), "{text}");
    assert!(text.contains("\"exit_code\": \"3\""), "{text}");
    assert!(text.contains("\"state\": \"COMPLETED\""), "{text}");
    assert!(!text.contains("exitCode"));
    assert!(text.ends_with("}\n]\n"));
}

#[test]
fn collect_reads_task_ids_from_a_trigger_output_file() {
    let text = format::json_text(&format::tasks_output(&[metadata()]).expect("json"));
    assert_eq!(muster_cli::collect::ids_from_requests_json(&text), Ok(vec!["6663cfc78b41fb10".to_string()]));
    assert!(muster_cli::collect::ids_from_requests_json("{}").is_err());
}
