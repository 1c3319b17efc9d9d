//! Conversions between pb and muster-core types (docs/client-api.md#stored-request, #result-view, #bots-and-events).

use chrono::{TimeZone, Utc};
use muster_api::convert::{self, PropertiesView};
use muster_api::pb;
use muster_api::prpc::{self, Code, Format};
use muster_core::bot::{BotEvent, BotInfo};
use muster_core::dims::{BotDimensions, TaskDimensions};
use muster_core::result::{OperationStats, PerformanceStats, TaskResult};
use muster_core::state::{NullableBool, SortQuery, StateQuery, TaskState};
use muster_core::task::{
    CacheEntry, CasReference, CipdInput, CipdPackage, Containment, Digest, NewTaskRequest, TaskProperties, TaskRequest,
    TaskSlice,
};
use muster_core::{TaskId, Time};

fn t(secs: i64) -> Time {
    Utc.timestamp_opt(1_714_557_600 + secs, 123_456_000).single().expect("valid time")
}

fn full_properties() -> TaskProperties {
    TaskProperties {
        caches: vec![CacheEntry { name: "git".into(), path: "cache/git".into() }],
        cipd_input: Some(CipdInput {
            server: "https://cipd.example".into(),
            client_package: Some(CipdPackage {
                package_name: "cipd/client".into(),
                version: "v1".into(),
                path: "".into(),
            }),
            packages: vec![CipdPackage {
                package_name: "tools/${platform}".into(),
                version: "v2".into(),
                path: "bin".into(),
            }],
        }),
        command: vec!["python3".into(), "-c".into(), "print(1)".into()],
        relative_cwd: "src".into(),
        dimensions: TaskDimensions::new(vec![
            ("pool".into(), "default".into()),
            ("os".into(), "Mac|Linux".into()),
            ("cpu".into(), "x86".into()),
        ]),
        env: vec![("FOO".into(), "bar".into()), ("A".into(), "".into())],
        env_prefixes: vec![("PATH".into(), vec!["bin".into(), "tools/bin".into()])],
        execution_timeout_secs: 600,
        grace_period_secs: 30,
        idempotent: true,
        cas_input_root: Some(CasReference {
            cas_instance: "projects/p/instances/default_instance".into(),
            digest: Some(Digest { hash: "abc".into(), size_bytes: 42 }),
        }),
        io_timeout_secs: 300,
        outputs: vec!["out/a.json".into()],
        secret_bytes: Some(b"hunter2".to_vec()),
        containment: Containment {
            lower_priority: true,
            containment_type: 2,
            limit_processes: 7,
            limit_total_committed_memory: 1 << 40,
        },
    }
}

fn full_new_task_request() -> NewTaskRequest {
    NewTaskRequest {
        expiration_secs: 0,
        name: "hello".into(),
        parent_task_id: "6663cfc78b41fb11".into(),
        priority: 100,
        properties: None,
        task_slices: vec![
            TaskSlice { properties: full_properties(), expiration_secs: 60, wait_for_capacity: true },
            TaskSlice {
                properties: TaskProperties { secret_bytes: None, ..full_properties() },
                expiration_secs: 3600,
                wait_for_capacity: false,
            },
        ],
        tags: vec!["purpose:demo".into()],
        user: "me".into(),
        service_account: "bot".into(),
        pubsub_topic: "projects/p/topics/t".into(),
        pubsub_auth_token: "token".into(),
        pubsub_userdata: "data".into(),
        evaluate_only: true,
        pool_task_template: 2,
        bot_ping_tolerance_secs: 600,
        request_uuid: "uuid-1".into(),
        resultdb_enable: true,
        realm: "p:ci".into(),
    }
}

fn stored_request() -> TaskRequest {
    let r = full_new_task_request();
    TaskRequest {
        id: TaskId::parse("6663cfc78b41fb10").expect("valid id"),
        created: t(0),
        name: r.name,
        parent_task_id: r.parent_task_id,
        priority: r.priority,
        slices: r.task_slices,
        tags: vec!["pool:default".into(), "purpose:demo".into()],
        user: r.user,
        authenticated: "user:me@example.com".into(),
        service_account: r.service_account,
        realm: r.realm,
        resultdb_enable: false,
        pubsub_topic: r.pubsub_topic,
        pubsub_auth_token: r.pubsub_auth_token,
        pubsub_userdata: r.pubsub_userdata,
        bot_ping_tolerance_secs: 1200,
        request_uuid: r.request_uuid,
    }
}

#[test]
fn a_new_task_request_survives_core_to_pb_to_core() {
    let core = full_new_task_request();
    let wire = convert::new_task_request_to_pb(&core);
    assert_eq!(convert::new_task_request_from_pb(wire.clone()), core);
    // Also through both encodings.
    for format in [Format::Binary, Format::Json] {
        let body = prpc::encode_request(format, &wire).expect("encodes");
        let decoded: pb::NewTaskRequest = prpc::decode(format, &body).expect("decodes");
        assert_eq!(convert::new_task_request_from_pb(decoded), core, "{format:?}");
    }
}

#[test]
fn the_spec_json_request_becomes_the_domain_request() {
    let wire: pb::NewTaskRequest =
        prpc::decode(Format::Json, &crate::fixture("new_task_request.json")).expect("decodes");
    let core = convert::new_task_request_from_pb(wire);
    let p = &core.task_slices[0].properties;
    assert_eq!(p.dimensions.0, [("os".to_string(), "Linux|Mac".to_string()), ("pool".into(), "default".into())]);
    assert_eq!(p.env, [("FOO".to_string(), "bar".to_string())]);
    assert_eq!(p.secret_bytes, None);
    assert_eq!(core.properties, None);
    assert!(!core.resultdb_enable);
}

#[test]
fn a_request_echo_redacts_secrets_and_sorts_dimensions() {
    let r = stored_request();
    let echo = convert::task_request_response(&r);
    assert_eq!(echo.task_id, "6663cfc78b41fb10");
    assert_eq!(echo.expiration_secs, 3660);
    let p0 = echo.task_slices[0].properties.as_ref().expect("slice 0 properties");
    assert_eq!(echo.properties.as_ref(), Some(p0), "properties is a copy of slice 0");
    assert_eq!(p0.secret_bytes, b"<REDACTED>");
    let p1 = echo.task_slices[1].properties.as_ref().expect("slice 1 properties");
    assert!(p1.secret_bytes.is_empty(), "no secret, nothing to redact");
    let dims: Vec<(&str, &str)> = p0.dimensions.iter().map(|d| (d.key.as_str(), d.value.as_str())).collect();
    assert_eq!(dims, [("cpu", "x86"), ("os", "Mac|Linux"), ("pool", "default")]);
    assert_eq!(p0.containment, Some(pb::Containment { containment_type: 2, ..Default::default() }));
    assert_eq!(echo.created_ts, Some(pb::Timestamp { seconds: 1_714_557_600, nanos: 123_456_000 }));
    assert_eq!(echo.authenticated, "user:me@example.com");
    assert_eq!(echo.bot_ping_tolerance_secs, 1200);

    let (_, body) = prpc::encode(Format::Json, &echo).expect("encodes");
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("hunter2") && !text.contains("aHVudGVyMg"), "secret leaked: {text}");
    assert!(!text.contains("token"), "pubsub auth token leaked: {text}");
    assert!(text.contains("\"secretBytes\":\"PFJFREFDVEVEPg==\""));
}

fn claimed_result() -> TaskResult {
    let id = TaskId::parse("6663cfc78b41fb10").expect("valid id");
    let mut r = TaskResult::pending(id, t(0), "hello", &["pool:default".to_string()], "me");
    r.state = TaskState::Completed;
    r.try_number = Some(1);
    r.bot_id = "bot-1".into();
    r.bot_dimensions =
        BotDimensions::from_map([("pool", vec!["default"]), ("id", vec!["bot-1"]), ("os", vec!["Ubuntu", "Linux"])]);
    r.started = Some(t(1));
    r.completed = Some(t(3));
    r.modified = t(3);
    r.exit_code = Some(1);
    r.failure = true;
    r.duration = Some(2.5);
    r.cost_usd = 0.25;
    r.current_slice = 1;
    r.server_versions = vec!["v1".into()];
    r.performance_stats = Some(PerformanceStats {
        bot_overhead: 0.5,
        isolated_download: Some(OperationStats { duration: 1.0 }),
        ..Default::default()
    });
    r
}

#[test]
fn the_summary_view_follows_the_spec() {
    let r = claimed_result();
    let v = convert::task_result_response(&r, false);
    assert_eq!(v.task_id, "6663cfc78b41fb10");
    assert_eq!(v.run_id, "6663cfc78b41fb11");
    assert_eq!(v.state, pb::TaskState::Completed as i32);
    assert_eq!(v.costs_usd, [0.25]);
    assert_eq!((v.exit_code, v.failure, v.duration, v.current_task_slice), (1, true, 2.5, 1));
    let keys: Vec<&str> = v.bot_dimensions.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["id", "os", "pool"]);
    assert_eq!(v.bot_dimensions[1].value, ["Linux", "Ubuntu"]);
    assert_eq!(v.performance_stats, None, "only when asked");
    let with = convert::task_result_response(&r, true);
    assert_eq!(with.performance_stats.as_ref().map(|p| p.bot_overhead), Some(0.5));
}

#[test]
fn a_pending_summary_has_no_run_id_and_no_cost() {
    let id = TaskId::parse("6663cfc78b41fb10").expect("valid id");
    let r = TaskResult::pending(id, t(0), "hello", &[], "me");
    let v = convert::task_result_response(&r, true);
    assert_eq!(v.run_id, "");
    assert!(v.costs_usd.is_empty());
    assert_eq!(v.started_ts, None);
    assert_eq!(v.state, pb::TaskState::Pending as i32);
}

#[test]
fn a_deduped_summary_points_at_the_original_run() {
    let mut r = claimed_result();
    r.try_number = Some(0);
    r.deduped_from = "1111111111111111".into();
    r.cost_usd = 0.0;
    r.cost_saved_usd = 0.25;
    let v = convert::task_result_response(&r, false);
    assert_eq!((v.run_id.as_str(), v.deduped_from.as_str()), ("1111111111111111", "1111111111111111"));
    assert_eq!(v.cost_saved_usd, 0.25);
    assert!(v.costs_usd.is_empty());
}

#[test]
fn the_run_view_has_a_run_id_and_exactly_one_cost() {
    let mut r = claimed_result();
    r.cost_usd = 0.0;
    r.cost_saved_usd = 0.5;
    r.deduped_from = "x".into();
    let v = convert::task_run_response(&r, false);
    assert_eq!(v.task_id, "6663cfc78b41fb10");
    assert_eq!(v.run_id, "6663cfc78b41fb11");
    assert_eq!(v.costs_usd, [0.0]);
    assert_eq!((v.cost_saved_usd, v.deduped_from.as_str()), (0.0, ""));
}

#[test]
fn bot_info_reports_the_run_id_and_sorted_dimensions() {
    let mut b = BotInfo::new("bot-1", t(0));
    b.dimensions = BotDimensions::from_map([("pool", vec!["default"]), ("id", vec!["bot-1"])]);
    b.task_id = Some(TaskId::parse("6663cfc78b41fb10").expect("valid id"));
    b.task_name = "hello".into();
    b.quarantined_msg = "disk full".into();
    b.state_json = r#"{"sleep_streak":3}"#.into();
    b.last_seen = t(5);
    let v = convert::bot_info(&b);
    assert_eq!(v.task_id, "6663cfc78b41fb11");
    assert!(v.quarantined);
    assert_eq!(v.state, r#"{"sleep_streak":3}"#);
    let keys: Vec<&str> = v.dimensions.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["id", "pool"]);
    assert_eq!(v.first_seen_ts.and_then(|ts| convert::time_from_pb(&ts).ok()), Some(t(0)));
    assert_eq!(v.last_seen_ts.and_then(|ts| convert::time_from_pb(&ts).ok()), Some(t(5)));

    b.task_id = None;
    b.deleted = true;
    let v = convert::bot_info(&b);
    assert_eq!((v.task_id.as_str(), v.deleted, v.first_seen_ts), ("", true, None));
}

#[test]
fn bot_events_copy_their_snapshot() {
    let b = BotInfo::new("bot-1", t(0));
    let mut e = BotEvent::of(&b, t(9), "task_completed", "done");
    e.task_id = "6663cfc78b41fb11".into();
    let v = convert::bot_event_response(&e);
    assert_eq!(
        (v.event_type.as_str(), v.message.as_str(), v.task_id.as_str()),
        ("task_completed", "done", e.task_id.as_str())
    );
    assert_eq!(v.ts, Some(convert::timestamp(t(9))));
    assert_eq!(v.state, "{}");
}

#[test]
fn every_task_state_maps_both_ways() {
    for s in TaskState::ALL.into_iter().chain([TaskState::Invalid]) {
        let wire = convert::task_state_to_pb(s);
        assert_eq!(wire as i32, s.as_i32());
        assert_eq!(wire.as_str_name(), s.name());
        assert_eq!(convert::task_state_from_pb(wire as i32), Ok(s));
    }
    assert_eq!(convert::task_state_from_pb(0x11).map_err(|e| e.code), Err(Code::InvalidArgument));
}

#[test]
fn filter_enums_reject_unknown_numbers() {
    assert_eq!(convert::state_query_from_pb(pb::StateQuery::QueryAll as i32), Ok(StateQuery::All));
    assert_eq!(convert::state_query_from_pb(0), Ok(StateQuery::Pending));
    assert_eq!(convert::sort_query_from_pb(pb::SortQuery::QueryStartedTs as i32), Ok(SortQuery::StartedTs));
    assert_eq!(convert::nullable_bool_from_pb(pb::NullableBool::True as i32), Ok(NullableBool::True));
    assert_eq!(convert::state_query_from_pb(15).map_err(|e| e.code), Err(Code::InvalidArgument));
    assert_eq!(convert::sort_query_from_pb(1).map_err(|e| e.code), Err(Code::InvalidArgument));
    assert_eq!(convert::nullable_bool_from_pb(3).map_err(|e| e.code), Err(Code::InvalidArgument));
}

#[test]
fn timestamps_round_trip_and_reject_bad_nanos() {
    let now = t(42);
    assert_eq!(convert::time_from_pb(&convert::timestamp(now)), Ok(now));
    let bad = pb::Timestamp { seconds: 0, nanos: -1 };
    assert_eq!(convert::time_from_pb(&bad).map_err(|e| e.code), Err(Code::InvalidArgument));
    let bad = pb::Timestamp { seconds: 0, nanos: 1_000_000_000 };
    assert!(convert::time_from_pb(&bad).is_err());
    assert_eq!(convert::opt_time_from_pb(None), Ok(None));
}

#[test]
fn dimension_filters_split_or_values() {
    let f = convert::dim_filters_from_pb(&[pb::StringPair { key: "os".into(), value: "Mac|Linux".into() }]);
    assert_eq!(f[0].key, "os");
    assert_eq!(f[0].values, ["Linux", "Mac"]);
}

#[test]
fn statuses_embed_as_google_rpc_status() {
    let s = convert::status_to_pb(&prpc::Status::not_found("no such task"));
    assert_eq!((s.code, s.message.as_str()), (5, "no such task"));
}

#[test]
fn full_properties_view_keeps_everything() {
    let p = full_properties();
    let wire = convert::task_properties_to_pb(&p, PropertiesView::Full);
    assert_eq!(wire.secret_bytes, b"hunter2");
    assert_eq!(convert::task_properties_from_pb(wire), p);
}
