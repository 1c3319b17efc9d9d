//! pRPC conformance with upstream found by comparing replies with
//! upstream-generated messages: signed cursors, one creation time per new
//! task, absent unset containment, env sorted by key, the text encoding and
//! the timeout header.

use base64::Engine as _;
use muster_testkit::TestServer;
use serde_json::json;

fn task(env: serde_json::Value, containment: Option<serde_json::Value>) -> serde_json::Value {
    let mut props = json!({"command": ["true"], "dimensions": [{"key": "pool", "value": "default"}],
        "executionTimeoutSecs": 60, "env": env});
    if let Some(c) = containment {
        props["containment"] = c;
    }
    json!({"name": "conf", "priority": 100, "taskSlices": [{"expirationSecs": 300, "properties": props}]})
}

#[tokio::test]
async fn a_forged_or_altered_cursor_is_invalid_argument_not_an_internal_error() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let p = srv.prpc();
    for _ in 0..3 {
        p.ok("Tasks", "NewTask", &task(json!([]), None)).await?;
    }
    let v = p.ok("Tasks", "ListTasks", &json!({"limit": 1, "state": "QUERY_ALL"})).await?;
    let cursor = v["cursor"].as_str().unwrap_or_default().to_string();
    assert!(!cursor.is_empty(), "{v}");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let raw = b64.decode(&cursor)?;
    let unsigned = b64.decode(b64.encode(&raw[..raw.len() - 16]))?;
    assert!(unsigned.starts_with(b"lt:") && raw.len() > unsigned.len(), "a position and its 16-byte signature");
    // The genuine cursor pages on.
    let v2 = p.ok("Tasks", "ListTasks", &json!({"limit": 1, "cursor": cursor, "state": "QUERY_ALL"})).await?;
    assert_eq!(v2["items"].as_array().map(Vec::len), Some(1));
    // Well-formed, plausible, unsigned cursors (the old format), and a
    // genuine cursor with one byte changed: all INVALID_ARGUMENT / 400.
    let mut altered = raw.clone();
    altered[3] ^= 1;
    let forged = [
        b64.encode("lt:zzzz"),
        b64.encode("lt:not-a-position"),
        b64.encode("lb:bot-1"),
        b64.encode(altered),
        b64.encode(&raw[..raw.len() - 1]),
    ];
    for c in forged {
        for (service, method) in [("Tasks", "ListTasks"), ("Bots", "ListBots"), ("Tasks", "ListTaskRequests")] {
            let r = p.call(service, method, &json!({"cursor": c})).await?;
            assert_eq!((r.code, r.http_status), (3, 400), "{method} with {c}: {}", r.text);
            assert_eq!(r.text.trim(), "bad pagination cursor");
        }
    }
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn new_task_reports_one_creation_time_for_request_and_result() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let v = srv.prpc().ok("Tasks", "NewTask", &task(json!([]), None)).await?;
    let req_ts = v["request"]["createdTs"].as_str().unwrap_or_default().to_string();
    assert!(!req_ts.is_empty(), "{v}");
    assert_eq!(v["taskResult"]["createdTs"].as_str(), Some(req_ts.as_str()), "{v}");
    let got = srv.prpc().ok("Tasks", "GetResult", &json!({"taskId": v["taskId"]})).await?;
    assert_eq!(got["createdTs"].as_str(), Some(req_ts.as_str()), "the stored time is the one returned");
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn unset_containment_is_absent_and_env_is_sorted_by_key() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let p = srv.prpc();
    let env = json!([{"key": "ZED", "value": "1"}, {"key": "ALPHA", "value": "2"}, {"key": "MID", "value": "3"}]);
    let v = p.ok("Tasks", "NewTask", &task(env, None)).await?;
    let id = v["taskId"].as_str().unwrap_or_default().to_string();
    for req in [v["request"].clone(), p.ok("Tasks", "GetRequest", &json!({"taskId": id})).await?] {
        let props = &req["taskSlices"][0]["properties"];
        assert!(props.get("containment").is_none(), "unset containment must be absent: {props}");
        let keys: Vec<&str> = props["env"].as_array().into_iter().flatten().filter_map(|e| e["key"].as_str()).collect();
        assert_eq!(keys, ["ALPHA", "MID", "ZED"], "{props}");
    }
    // A set containment type is echoed.
    let v = p.ok("Tasks", "NewTask", &task(json!([]), Some(json!({"containmentType": "NONE"})))).await?;
    assert_eq!(v["request"]["taskSlices"][0]["properties"]["containment"]["containmentType"], "NONE", "{v}");
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_text_encoding_is_served_both_ways() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let id = srv.prpc().ok("Tasks", "NewTask", &task(json!([]), None)).await?["taskId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let http = reqwest::Client::new();
    let url = format!("{}/prpc/swarming.v2.Tasks/GetResult", srv.url);
    let r = http
        .post(&url)
        .header("content-type", "application/prpc; encoding=text")
        .header("accept", "application/prpc; encoding=text")
        .body(format!("task_id: \"{id}\""))
        .send()
        .await?;
    assert_eq!(r.headers()["x-prpc-grpc-code"], "0");
    assert_eq!(r.headers()["content-type"], "application/prpc; encoding=text");
    let text = r.text().await?;
    let back: muster_api::pb::TaskResultResponse =
        muster_api::text::from_text("swarming.v2.TaskResultResponse", &text)?;
    assert_eq!(back.task_id, id, "{text}");
    let json_state = srv.prpc().ok("Tasks", "GetResult", &json!({"taskId": id})).await?["state"].clone();
    assert_eq!(json!(muster_api::pb::TaskState::try_from(back.state)?.as_str_name()), json_state);
    // Text in, JSON out.
    let r = http
        .post(&url)
        .header("content-type", "application/prpc; encoding=text")
        .header("accept", "application/json")
        .body(format!("task_id: \"{id}\""))
        .send()
        .await?;
    assert_eq!(r.headers()["x-prpc-grpc-code"], "0");
    assert!(r.text().await?.contains(&id));
    // Malformed text is INVALID_ARGUMENT.
    let r = http.post(&url).header("content-type", "application/prpc; encoding=text").body("task_id: {").send().await?;
    assert_eq!((r.headers()["x-prpc-grpc-code"].to_str()?, r.status().as_u16()), ("3", 400));
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_malformed_timeout_header_is_invalid_argument() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let http = reqwest::Client::new();
    let url = format!("{}/prpc/swarming.v2.Swarming/GetDetails", srv.url);
    for bad in ["soon", "10", "10x", "S", "1.5S"] {
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("x-prpc-grpc-timeout", bad)
            .body("{}")
            .send()
            .await?;
        assert_eq!((r.headers()["x-prpc-grpc-code"].to_str()?, r.status().as_u16()), ("3", 400), "{bad}");
        let text = r.text().await?;
        assert!(text.contains("X-Prpc-Grpc-Timeout"), "{bad}: {text}");
    }
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("x-prpc-grpc-timeout", "30S")
        .body("{}")
        .send()
        .await?;
    assert_eq!(r.headers()["x-prpc-grpc-code"], "0");
    srv.stop().await;
    Ok(())
}
