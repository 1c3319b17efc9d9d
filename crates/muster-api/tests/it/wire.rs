//! Wire goldens: hand-written JSON shaped as docs/client-api.md
//! describes decodes into pb types and
//! re-encodes in the canonical proto3 JSON shape.

use crate::{fixture, response_json};
use muster_api::prpc::{self, Format};
use muster_api::{json, pb};
use serde_json::json;

fn decode_json<M: prpc::Message>(s: &[u8]) -> M {
    prpc::decode(Format::Json, s).expect("fixture decodes")
}

fn encode_json<M: prpc::Message>(m: &M) -> serde_json::Value {
    let (ct, body) = prpc::encode(Format::Json, m).expect("encodes");
    assert_eq!(ct, "application/json");
    response_json(&body)
}

#[test]
fn the_spec_get_result_example_round_trips_in_the_canonical_shape() {
    let r: pb::TaskResultResponse = decode_json(&fixture("get_result_response.json"));
    assert_eq!(r.task_id, "6663cfc78b41fb10");
    assert_eq!(r.run_id, "6663cfc78b41fb11");
    assert_eq!(r.state, pb::TaskState::Completed as i32);
    assert_eq!(r.costs_usd, vec![0.0001f32]);
    assert_eq!(r.exit_code, 0);
    let completed = r.completed_ts.expect("completedTs set");
    assert_eq!((completed.seconds, completed.nanos), (1_714_557_603, 500_000_000));

    // exitCode, failure, currentTaskSlice are omitted because they are 0/false.
    let expected = json!({
        "taskId": "6663cfc78b41fb10", "botId": "bot-1", "completedTs": "2024-05-01T10:00:03.500Z",
        "createdTs": "2024-05-01T09:59:00.100Z", "duration": 2.1, "modifiedTs": "2024-05-01T10:00:03.600Z",
        "state": "COMPLETED", "runId": "6663cfc78b41fb11", "name": "hello", "tags": ["pool:p", "user:me"],
        "user": "me", "serverVersions": ["v1"], "costsUsd": [0.0001]
    });
    assert_eq!(encode_json(&r), expected);
}

#[test]
fn the_spec_minimal_new_task_request_decodes() {
    let r: pb::NewTaskRequest = decode_json(&fixture("new_task_request.json"));
    assert_eq!(r.name, "hello");
    assert_eq!(r.priority, 100);
    assert_eq!(r.request_uuid, "6f2c3d5e-0000-4000-8000-000000000000");
    assert_eq!(r.task_slices.len(), 1);
    let s = &r.task_slices[0];
    assert_eq!(s.expiration_secs, 3600);
    let p = s.properties.as_ref().expect("properties");
    assert_eq!(p.command, ["python3", "-c", "print('hi')"]);
    assert_eq!(p.dimensions[0], pb::StringPair { key: "os".into(), value: "Linux|Mac".into() });
    assert_eq!((p.execution_timeout_secs, p.io_timeout_secs, p.grace_period_secs), (600, 300, 30));
    let cas = p.cas_input_root.as_ref().expect("casInputRoot");
    assert_eq!(cas.cas_instance, "projects/p/instances/default_instance");
    assert_eq!(cas.digest.as_ref().map(|d| d.size_bytes), Some(0));
}

#[test]
fn snake_case_input_decodes_like_camel_case() {
    let camel: pb::NewTaskRequest = decode_json(&fixture("new_task_request.json"));
    let snake: pb::NewTaskRequest = decode_json(&fixture("new_task_request_snake.json"));
    assert_eq!(camel, snake);
}

#[test]
fn output_uses_lower_camel_case_names() {
    let r: pb::NewTaskRequest = decode_json(&fixture("new_task_request_snake.json"));
    let v = encode_json(&r);
    assert_eq!(v["taskSlices"][0]["properties"]["executionTimeoutSecs"], json!(600));
    assert_eq!(v["requestUuid"], json!("6f2c3d5e-0000-4000-8000-000000000000"));
    assert!(v.get("task_slices").is_none());
}

#[test]
fn int64_is_a_string_on_output_and_a_string_or_number_on_input() {
    let d: pb::Digest = decode_json(br#"{"hash":"h","sizeBytes":123}"#);
    assert_eq!(d.size_bytes, 123);
    let d2: pb::Digest = decode_json(br#"{"hash":"h","sizeBytes":"123"}"#);
    assert_eq!(d, d2);
    assert_eq!(encode_json(&d), json!({"hash": "h", "sizeBytes": "123"}));
    let r = pb::TaskResultResponse { exit_code: 1, ..Default::default() };
    assert_eq!(encode_json(&r), json!({"exitCode": "1"}));
}

#[test]
fn enums_are_names_on_output_and_names_or_numbers_on_input() {
    let by_name: pb::TaskOutputResponse = decode_json(br#"{"state":"COMPLETED"}"#);
    let by_number: pb::TaskOutputResponse = decode_json(br#"{"state":112}"#);
    assert_eq!(by_name.state, pb::TaskState::Completed as i32);
    assert_eq!(by_name, by_number);
    assert_eq!(encode_json(&by_name), json!({"state": "COMPLETED"}));
    let q: pb::TasksWithPerfRequest = decode_json(br#"{"state":"QUERY_ALL","sort":"QUERY_COMPLETED_TS"}"#);
    assert_eq!(q.state, pb::StateQuery::QueryAll as i32);
    assert_eq!(q.sort, pb::SortQuery::QueryCompletedTs as i32);
    let b: pb::BotsRequest = decode_json(br#"{"isDead":"TRUE","quarantined":"FALSE"}"#);
    assert_eq!((b.is_dead, b.quarantined), (pb::NullableBool::True as i32, pb::NullableBool::False as i32));
    assert!(prpc::decode::<pb::TaskOutputResponse>(Format::Json, br#"{"state":"NOT_A_STATE"}"#).is_err());
}

#[test]
fn default_values_are_omitted() {
    assert_eq!(encode_json(&pb::TaskResultResponse::default()), json!({}));
    let r = pb::TaskResultResponse {
        state: pb::TaskState::Pending as i32,
        failure: false,
        current_task_slice: 0,
        tags: vec![],
        ..Default::default()
    };
    assert_eq!(encode_json(&r), json!({"state": "PENDING"}));
    let (_, body) = prpc::encode(Format::Json, &pb::Empty {}).expect("encodes");
    assert_eq!(body, b")]}'\n{}\n");
}

#[test]
fn unknown_fields_and_nulls_are_ignored_on_input() {
    let r: pb::TaskIdWithPerfRequest =
        decode_json(br#"{"taskId":"6663cfc78b41fb10","futureField":{"x":[1,2]},"includePerformanceStats":null}"#);
    assert_eq!(r, pb::TaskIdWithPerfRequest { task_id: "6663cfc78b41fb10".into(), include_performance_stats: false });
}

#[test]
fn an_empty_json_body_is_the_default_message() {
    let r: pb::BotsRequest = decode_json(b"");
    assert_eq!(r, pb::BotsRequest::default());
}

#[test]
fn malformed_json_is_invalid_argument() {
    for body in [&b"{"[..], b"[1]", b"{\"taskId\": 5}", b"\"x\""] {
        let e = prpc::decode::<pb::TaskIdRequest>(Format::Json, body).expect_err("must fail");
        assert_eq!(e.code, prpc::Code::InvalidArgument, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn bytes_are_standard_base64() {
    let o = pb::TaskOutputResponse { output: b"<REDACTED>".to_vec(), state: 0 };
    assert_eq!(encode_json(&o), json!({"output": "PFJFREFDVEVEPg=="}));
    let back: pb::TaskOutputResponse = decode_json(br#"{"output":"PFJFREFDVEVEPg=="}"#);
    assert_eq!(back.output, b"<REDACTED>");
}

#[test]
fn timestamps_are_utc_with_z_and_0_3_6_or_9_fraction_digits() {
    let cases = [
        (0, "2024-01-02T03:04:05Z"),
        (123_000_000, "2024-01-02T03:04:05.123Z"),
        (123_456_000, "2024-01-02T03:04:05.123456Z"),
        (123_456_789, "2024-01-02T03:04:05.123456789Z"),
    ];
    for (nanos, text) in cases {
        let m = pb::TasksCount { count: 0, now: Some(pb::Timestamp { seconds: 1_704_164_645, nanos }) };
        assert_eq!(encode_json(&m), json!({"now": text}));
        let back: pb::TasksCount = decode_json(format!(r#"{{"now":"{text}"}}"#).as_bytes());
        assert_eq!(back, m);
    }
    let offset: pb::TasksCount = decode_json(br#"{"now":"2024-01-02T05:04:05+02:00"}"#);
    assert_eq!(offset.now.map(|t| t.seconds), Some(1_704_164_645));
}

#[test]
fn batch_results_carry_either_a_result_or_a_status() {
    let r: pb::BatchGetResultResponse = decode_json(&fixture("batch_get_result_response.json"));
    use pb::batch_get_result_response::result_or_error::Outcome;
    assert!(matches!(&r.results[0].outcome, Some(Outcome::Result(x)) if x.state == pb::TaskState::Pending as i32));
    assert!(matches!(&r.results[1].outcome, Some(Outcome::Error(s)) if s.code == 5 && s.message == "no such task"));
    let v = encode_json(&r);
    assert_eq!(v["results"][1], json!({"taskId": "6663cfc78b41fb20", "error": {"code": 5, "message": "no such task"}}));
}

#[test]
fn task_states_request_takes_a_list_named_task_id() {
    let r: pb::TaskStatesRequest = decode_json(br#"{"taskId":["a0","b0"]}"#);
    assert_eq!(r.task_id, ["a0", "b0"]);
}

#[test]
fn binary_round_trip_preserves_every_field() {
    let r: pb::NewTaskRequest = decode_json(&fixture("new_task_request.json"));
    let (ct, body) = prpc::encode(Format::Binary, &r).expect("encodes");
    assert_eq!(ct, "application/prpc; encoding=binary");
    let back: pb::NewTaskRequest = prpc::decode(Format::Binary, &body).expect("decodes");
    assert_eq!(back, r);
}

#[test]
fn a_binary_field_number_matches_the_spec() {
    // TaskResultResponse.run_id is field 28 (length-delimited): tag = 28 << 3 | 2.
    let r = pb::TaskResultResponse { run_id: "a1".into(), ..Default::default() };
    let (_, body) = prpc::encode(Format::Binary, &r).expect("encodes");
    assert_eq!(body, [0xe2, 0x01, 2, b'a', b'1']);
}

#[test]
fn cli_json_uses_the_original_snake_case_names() {
    let r: pb::TaskResultResponse = decode_json(&fixture("get_result_response.json"));
    let text = json::to_cli_json(&r).expect("serializes");
    assert!(text.ends_with("}\n"));
    assert!(text.contains("\n \"task_id\": \"6663cfc78b41fb10\""), "1-space indentation: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["costs_usd"], json!([0.0001]));
    assert_eq!(v["completed_ts"], json!("2024-05-01T10:00:03.500Z"));
    assert!(v.get("taskId").is_none());
    // And it reads back (parsers accept snake_case).
    let back: pb::TaskResultResponse = decode_json(text.as_bytes());
    assert_eq!(back, r);
}

#[test]
fn camel_to_snake_handles_every_field_shape() {
    assert_eq!(json::camel_to_snake("casInputRoot"), "cas_input_root");
    assert_eq!(json::camel_to_snake("resultdbInfo"), "resultdb_info");
    assert_eq!(json::camel_to_snake("name"), "name");
    assert_eq!(json::camel_to_snake("@type"), "@type");
}

#[test]
fn bytes_accept_unpadded_and_url_safe_base64() {
    let unpadded: pb::TaskOutputResponse = decode_json(br#"{"output":"PFJFREFDVEVEPg"}"#);
    assert_eq!(unpadded.output, b"<REDACTED>");
    let url_safe: pb::TaskOutputResponse = decode_json(br#"{"output":"-_8"}"#);
    assert_eq!(url_safe.output, [0xfb, 0xff]);
}

#[test]
fn int32_accepts_numbers_in_strings() {
    let r: pb::TaskSlice = decode_json(br#"{"expirationSecs":"600"}"#);
    assert_eq!(r.expiration_secs, 600);
}

#[test]
fn the_descriptor_set_declares_the_three_services_with_spec_methods() {
    use prost::Message as _;
    let fds = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("valid descriptor set");
    let file = fds.file.iter().find(|f| f.package() == "swarming.v2").expect("swarming.v2 file");
    let services: Vec<(&str, usize)> = file.service.iter().map(|s| (s.name(), s.method.len())).collect();
    assert_eq!(services, [("Swarming", 3), ("Bots", 8), ("Tasks", 11)]);
    for (svc, methods) in prpc::SERVICES.iter().filter(|(s, _)| s.starts_with("swarming.v2.")) {
        let name = svc.trim_start_matches("swarming.v2.");
        let desc = file.service.iter().find(|s| s.name() == name).expect("service in descriptor");
        let names: Vec<&str> = desc.method.iter().map(|m| m.name()).collect();
        assert_eq!(&names, methods, "{svc}");
    }
    let trr = file.message_type.iter().find(|m| m.name() == "TaskResultResponse").expect("TaskResultResponse");
    assert_eq!(trr.reserved_range.first().map(|r| (r.start(), r.end())), Some((7, 8)));
}
