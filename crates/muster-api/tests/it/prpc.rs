//! pRPC protocol: negotiation, the code table, error responses, timeouts and
//! the client-side response parser (docs/client-api.md#prpc, #errors-and-codes).

use muster_api::pb;
use muster_api::prpc::{self, Code, Format, Status};
use std::time::Duration;

#[test]
fn request_content_type_selects_the_body_format() {
    let ok = [
        (None, Format::Binary),
        (Some(""), Format::Binary),
        (Some("application/prpc; encoding=binary"), Format::Binary),
        (Some("application/prpc"), Format::Binary),
        (Some("application/grpc"), Format::Binary),
        (Some("*/*"), Format::Binary),
        (Some("application/*"), Format::Binary),
        (Some("application/json"), Format::Json),
        (Some("application/json; charset=utf-8"), Format::Json),
        (Some("Application/JSON"), Format::Json),
        (Some("application/prpc; encoding=json"), Format::Json),
        (Some("application/prpc;encoding=\"json\""), Format::Json),
        (Some("application/prpc; encoding=text"), Format::Text),
    ];
    for (ct, want) in ok {
        assert_eq!(prpc::request_format(ct).map_err(|e| e.status), Ok(want), "{ct:?}");
    }
    let bad = [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/prpc; encoding=yaml",
        "application/prpc; encoding=json; foo=bar",
    ];
    for ct in bad {
        let e = prpc::request_format(Some(ct)).expect_err(ct);
        assert_eq!((e.status.code, e.http_status), (Code::InvalidArgument, 415), "{ct}");
        assert!(e.status.message.starts_with("prpc: bad Content-Type header"), "{}", e.status.message);
    }
}

#[test]
fn accept_negotiation_honours_weights_and_prefers_binary_on_ties() {
    let cases = [
        (None, Format::Binary),
        (Some(""), Format::Binary),
        (Some("application/json"), Format::Json),
        (Some("application/prpc; encoding=binary"), Format::Binary),
        (Some("application/prpc; encoding=json"), Format::Json),
        (Some("*/*"), Format::Binary),
        (Some("application/json, application/prpc; encoding=binary"), Format::Binary),
        (Some("application/prpc; encoding=binary, application/json"), Format::Binary),
        (Some("application/json;q=0.9, application/prpc; encoding=binary;q=0.5"), Format::Json),
        (Some("application/json, */*;q=0.1"), Format::Json),
        (Some("text/html, application/json"), Format::Json),
        (Some("application/prpc; encoding=text, application/json;q=0.2"), Format::Text),
        (Some("application/prpc; encoding=text"), Format::Text),
        (Some("application/prpc; encoding=text, application/json"), Format::Json),
        (Some("garbage;;, application/json"), Format::Json),
        (Some("application/json;q=0, application/grpc;q=0.3"), Format::Binary),
    ];
    for (accept, want) in cases {
        assert_eq!(prpc::response_format(accept).map_err(|e| e.status), Ok(want), "{accept:?}");
    }
    for accept in ["text/html", "application/json;q=0", "image/png, text/css"] {
        let e = prpc::response_format(Some(accept)).expect_err(accept);
        assert_eq!((e.status.code, e.http_status), (Code::InvalidArgument, 406), "{accept}");
    }
}

#[test]
fn text_format_round_trips_through_the_embedded_descriptors() {
    let req =
        muster_api::pb::TaskIdWithPerfRequest { task_id: "6663cfc78b41fb10".into(), include_performance_stats: true };
    let text = muster_api::text::to_text("swarming.v2.TaskIdWithPerfRequest", &req).expect("encodes");
    assert!(text.contains("task_id:\"6663cfc78b41fb10\"") || text.contains("task_id: \"6663cfc78b41fb10\""), "{text}");
    let back: muster_api::pb::TaskIdWithPerfRequest =
        muster_api::text::from_text("swarming.v2.TaskIdWithPerfRequest", &text).expect("decodes");
    assert_eq!(back, req);
    let bin =
        muster_api::text::request_to_binary("swarming.v2.Tasks", "GetResult", text.as_bytes()).expect("transcodes");
    assert_eq!(bin, prost::Message::encode_to_vec(&req));
    let e =
        muster_api::text::request_to_binary("swarming.v2.Tasks", "GetResult", b"task_id: 12 12").expect_err("bad text");
    assert_eq!(e.code, Code::InvalidArgument);
}

#[test]
fn every_code_maps_to_the_spec_http_status() {
    let table = [
        (0, "OK", 200),
        (1, "CANCELLED", 499),
        (2, "UNKNOWN", 500),
        (3, "INVALID_ARGUMENT", 400),
        (4, "DEADLINE_EXCEEDED", 504),
        (5, "NOT_FOUND", 404),
        (6, "ALREADY_EXISTS", 409),
        (7, "PERMISSION_DENIED", 403),
        (8, "RESOURCE_EXHAUSTED", 429),
        (9, "FAILED_PRECONDITION", 400),
        (10, "ABORTED", 409),
        (11, "OUT_OF_RANGE", 400),
        (12, "UNIMPLEMENTED", 501),
        (13, "INTERNAL", 500),
        (14, "UNAVAILABLE", 503),
        (15, "DATA_LOSS", 500),
        (16, "UNAUTHENTICATED", 401),
    ];
    for (n, name, http) in table {
        let code = Code::from_i32(n).expect("known code");
        assert_eq!((code.as_i32(), code.name(), code.http_status()), (n, name, http));
    }
    assert_eq!(Code::from_i32(17), None);
    assert_eq!(Code::from_i32(-1), None);
}

#[test]
fn server_errors_are_masked_and_client_errors_are_not() {
    let r = prpc::error_response(&Status::not_found("no such task"));
    assert_eq!((r.http_status, r.code, r.body.as_str()), (404, Code::NotFound, "no such task\n"));
    let headers = r.headers();
    assert!(headers.contains(&("X-Prpc-Grpc-Code", "5".to_string())));
    assert!(headers.contains(&("Content-Type", "text/plain; charset=utf-8".to_string())));

    let masked = [
        (Code::Internal, "Internal server error"),
        (Code::Unknown, "Unknown server error"),
        (Code::Unavailable, "Service unavailable"),
        (Code::DeadlineExceeded, "Request deadline exceeded"),
        (Code::Unimplemented, "API method not implemented by the server"),
        (Code::DataLoss, "Unrecoverable data loss or data corruption"),
    ];
    for (code, text) in masked {
        let r = prpc::error_response(&Status::new(code, "sqlite: database is locked at /secret/path"));
        assert_eq!(r.body, format!("{text}\n"), "{code}");
        assert_eq!(r.http_status, code.http_status());
    }
}

#[test]
fn protocol_errors_keep_their_text() {
    let e = prpc::check_method("swarming.v2.Nope", "X").expect_err("unknown service");
    let r = e.response();
    assert_eq!((r.http_status, r.code), (501, Code::Unimplemented));
    assert_eq!(r.body, "service \"swarming.v2.Nope\" is not implemented\n");
    let e = prpc::check_method("swarming.v2.Tasks", "Nope").expect_err("unknown method");
    assert_eq!(e.status.message, "method \"Nope\" in service \"swarming.v2.Tasks\" is not implemented");
    assert!(prpc::check_method("swarming.v2.Tasks", "NewTask").is_ok());
    assert!(prpc::check_method("swarming.v2.Bots", "GetBotDimensions").is_ok());
    assert!(prpc::check_method("swarming.v2.Swarming", "GetDetails").is_ok());
}

#[test]
fn paths_split_into_service_and_method() {
    assert_eq!(prpc::split_path("/prpc/swarming.v2.Tasks/NewTask"), Some(("swarming.v2.Tasks", "NewTask")));
    for bad in ["/prpc/swarming.v2.Tasks", "/prpc//X", "/api/a/b", "/prpc/a/b/c", "/prpc/a/"] {
        assert_eq!(prpc::split_path(bad), None, "{bad}");
    }
}

#[test]
fn json_responses_are_framed_and_the_client_strips_the_prefix() {
    let (ct, body) = prpc::encode(Format::Json, &pb::DeleteResponse { deleted: true }).expect("encodes");
    assert_eq!(ct, "application/json");
    assert_eq!(body, b")]}'\n{\"deleted\":true}\n");
    assert_eq!(prpc::strip_json_prefix(&body), b"{\"deleted\":true}\n");
    assert_eq!(prpc::strip_json_prefix(b"{}"), b"{}");
    // Requests never carry the prefix.
    let req = prpc::encode_request(Format::Json, &pb::BotRequest { bot_id: "b".into() }).expect("encodes");
    assert_eq!(req, b"{\"botId\":\"b\"}");
}

#[test]
fn the_client_decodes_a_successful_response_in_the_requested_format() {
    let msg = pb::BotInfo { bot_id: "bot-1".into(), is_dead: true, ..Default::default() };
    for format in [Format::Binary, Format::Json] {
        let (ct, body) = prpc::encode(format, &msg).expect("encodes");
        let got: pb::BotInfo = prpc::parse_response(format, 200, Some("0"), Some(ct), &body).expect("parses");
        assert_eq!(got, msg);
    }
    let (_, body) = prpc::encode(Format::Json, &msg).expect("encodes");
    let e = prpc::parse_response::<pb::BotInfo>(Format::Binary, 200, Some("0"), Some("application/json"), &body)
        .expect_err("format mismatch");
    assert_eq!(e.code, Code::Internal);
}

#[test]
fn the_client_trusts_the_code_header_over_the_http_status() {
    let e = prpc::parse_response::<pb::BotInfo>(Format::Json, 404, Some("5"), Some("text/plain"), b"no such bot: x\n")
        .expect_err("error");
    assert_eq!(e, Status::not_found("no such bot: x"));
    let e = prpc::parse_response::<pb::BotInfo>(Format::Json, 200, Some("7"), None, b"denied\n").expect_err("error");
    assert_eq!(e, Status::permission_denied("denied"));
    let e = prpc::parse_response::<pb::BotInfo>(Format::Json, 200, Some("abc"), None, b"").expect_err("error");
    assert_eq!(e.code, Code::Internal);
}

#[test]
fn without_a_code_header_the_client_derives_the_code_from_http_status() {
    let cases = [
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (503, Code::Unavailable),
        (502, Code::Internal),
        (500, Code::Internal),
        (404, Code::Internal),
        (200, Code::Internal),
    ];
    for (http, want) in cases {
        let e = prpc::parse_response::<pb::BotInfo>(Format::Json, http, None, Some("text/html"), b"<h1>Bad</h1>\n")
            .expect_err("error");
        assert_eq!(e.code, want, "HTTP {http}");
    }
    let e = prpc::parse_response::<pb::BotInfo>(Format::Json, 502, None, None, b"<html><b>Bad gateway</b></html>")
        .expect_err("error");
    assert_eq!(e.message, "HTTP 502: Bad gateway");
    let e = prpc::parse_response::<pb::BotInfo>(Format::Json, 404, None, None, b"").expect_err("error");
    assert!(e.message.contains("no X-Prpc-Grpc-Code header"), "{}", e.message);
}

#[test]
fn timeouts_parse_in_every_unit() {
    let cases = [
        ("1H", Duration::from_secs(3600)),
        ("2M", Duration::from_secs(120)),
        ("90S", Duration::from_secs(90)),
        ("1500m", Duration::from_millis(1500)),
        ("7u", Duration::from_micros(7)),
        ("99999999n", Duration::from_nanos(99_999_999)),
    ];
    for (s, want) in cases {
        assert_eq!(prpc::parse_timeout(s).map_err(|e| e.status), Ok(want), "{s}");
    }
    for bad in ["", "S", "10", "10s", "-1S", "123456789S", "1.5S", "1 S", "10Ĥ"] {
        let e = prpc::parse_timeout(bad).expect_err(bad);
        assert_eq!((e.status.code, e.http_status), (Code::InvalidArgument, 400), "{bad}");
    }
}

#[test]
fn timeouts_format_with_the_finest_unit_under_ten_to_the_eight() {
    assert_eq!(prpc::format_timeout(Duration::from_nanos(5)), "5n");
    assert_eq!(prpc::format_timeout(Duration::from_millis(50)), "50000000n");
    assert_eq!(prpc::format_timeout(Duration::from_secs(90)), "90000000u");
    assert_eq!(prpc::format_timeout(Duration::from_secs(1000)), "1000000m");
    assert_eq!(prpc::format_timeout(Duration::from_secs(200_000)), "200000S");
    for d in [Duration::from_millis(1), Duration::from_secs(90), Duration::from_secs(86_400 * 400)] {
        let s = prpc::format_timeout(d);
        let back = prpc::parse_timeout(&s).expect("own output parses");
        assert!(back >= d, "{s} must not shorten {d:?}");
    }
}

#[test]
fn max_response_size_must_be_positive() {
    assert_eq!(prpc::parse_max_response_size("1024").map_err(|e| e.status), Ok(1024));
    for bad in ["0", "-5", "abc", ""] {
        assert_eq!(prpc::parse_max_response_size(bad).map_err(|e| e.http_status), Err(400), "{bad}");
    }
}

#[test]
fn domain_errors_become_statuses_with_their_code() {
    let s: Status = muster_core::Error::not_found("no such task").into();
    assert_eq!(s, Status::not_found("no such task"));
    let s: Status = muster_core::Error::precondition("parent task has ended").into();
    assert_eq!(s.code.http_status(), 400);
}

#[test]
fn cors_exposes_the_prpc_headers() {
    let h = prpc::cors_headers("https://ui.example", false);
    assert!(h.contains(&("Access-Control-Allow-Origin", "https://ui.example".to_string())));
    assert!(h.contains(&("Access-Control-Expose-Headers", "X-Prpc-Grpc-Code, X-Prpc-Status-Details-Bin".to_string())));
    let p = prpc::cors_headers("https://ui.example", true);
    assert!(p.contains(&("Access-Control-Allow-Methods", "OPTIONS, POST".to_string())));
}
