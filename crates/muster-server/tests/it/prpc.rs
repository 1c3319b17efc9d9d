//! The pRPC surface: binary protobuf flow, idempotent NewTask, error codes.

use muster_api::pb;
use muster_testkit::{TestBot, TestServer};
use prost::Message;
use serde_json::json;

/// Calls a method with binary protobuf; returns (grpc code, body bytes).
async fn call_bin<M: Message>(url: &str, service: &str, method: &str, req: &M) -> anyhow::Result<(i32, Vec<u8>)> {
    let r = reqwest::Client::new()
        .post(format!("{url}/prpc/swarming.v2.{service}/{method}"))
        .header("content-type", "application/prpc; encoding=binary")
        .header("accept", "application/prpc; encoding=binary")
        .body(req.encode_to_vec())
        .send()
        .await?;
    let code = r.headers().get("x-prpc-grpc-code").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = r.bytes().await?.to_vec();
    let code = code.ok_or_else(|| anyhow::anyhow!("no code header"))?;
    if code == 0 {
        assert_eq!(ct, "application/prpc; encoding=binary");
    }
    Ok((code, body))
}

#[tokio::test]
async fn the_whole_flow_works_in_binary_protobuf() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut bot = TestBot::new(&srv.url, "bin-bot", "default", &[]);
    bot.handshake().await?;
    let req = pb::NewTaskRequest {
        name: "binary".into(),
        priority: 50,
        task_slices: vec![pb::TaskSlice {
            expiration_secs: 300,
            properties: Some(pb::TaskProperties {
                command: vec!["echo".into(), "bin".into()],
                dimensions: vec![pb::StringPair { key: "pool".into(), value: "default".into() }],
                execution_timeout_secs: 60,
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let (code, body) = call_bin(&srv.url, "Tasks", "NewTask", &req).await?;
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&body));
    let created = pb::TaskRequestMetadataResponse::decode(body.as_slice())?;
    let id = created.task_id.clone();
    assert_eq!(created.task_result.as_ref().map(|r| r.state), Some(pb::TaskState::Pending as i32));
    assert_eq!(created.request.as_ref().map(|r| r.priority), Some(50));

    let manifest = bot.poll_until_run(5).await?;
    let run_id = manifest["task_id"].as_str().unwrap_or_default().to_string();
    bot.output(&run_id, 0, b"bin\n").await?;
    bot.complete(&run_id, 0, 0.1).await?;

    let (code, body) = call_bin(
        &srv.url,
        "Tasks",
        "GetResult",
        &pb::TaskIdWithPerfRequest { task_id: id.clone(), include_performance_stats: true },
    )
    .await?;
    assert_eq!(code, 0);
    let r = pb::TaskResultResponse::decode(body.as_slice())?;
    assert_eq!(r.state, pb::TaskState::Completed as i32);
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.bot_id, "bin-bot");
    assert_eq!(r.run_id, run_id);
    assert!(r.performance_stats.is_some());
    let (code, body) = call_bin(
        &srv.url,
        "Tasks",
        "GetStdout",
        &pb::TaskIdWithOffsetRequest { task_id: id.clone(), offset: 0, length: 0 },
    )
    .await?;
    assert_eq!(code, 0);
    assert_eq!(pb::TaskOutputResponse::decode(body.as_slice())?.output, b"bin\n".to_vec());
    // Offsets slice the stream.
    let (_, body) =
        call_bin(&srv.url, "Tasks", "GetStdout", &pb::TaskIdWithOffsetRequest { task_id: id, offset: 1, length: 2 })
            .await?;
    assert_eq!(pb::TaskOutputResponse::decode(body.as_slice())?.output, b"in".to_vec());
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn new_task_with_the_same_request_uuid_returns_the_same_task() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut bot = TestBot::new(&srv.url, "cap-bot", "default", &[]);
    bot.handshake().await?;
    let body = json!({"name": "once", "priority": 100, "requestUuid": "7f1c7a2e-0000-4000-8000-000000000001",
        "taskSlices": [{"expirationSecs": 300, "properties": {"command": ["true"],
        "dimensions": [{"key": "pool", "value": "default"}], "executionTimeoutSecs": 60}}]});
    let a = srv.prpc().ok("Tasks", "NewTask", &body).await?;
    let b = srv.prpc().ok("Tasks", "NewTask", &body).await?;
    assert_eq!(a["taskId"], b["taskId"]);
    let listed = srv.prpc().ok("Tasks", "ListTasks", &json!({"state": "QUERY_ALL"})).await?;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn errors_carry_the_grpc_code_and_the_http_status() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let p = srv.prpc();
    // Validation names the field.
    let r = p.call("Tasks", "NewTask", &json!({"name": "x", "taskSlices": []})).await?;
    assert_eq!((r.code, r.http_status), (3, 400));
    assert!(r.text.contains("task_slices"), "{}", r.text);
    // Unknown task.
    let r = p.call("Tasks", "GetResult", &json!({"taskId": "1230"})).await?;
    assert_eq!((r.code, r.http_status), (5, 404));
    // Malformed id.
    let r = p.call("Tasks", "GetResult", &json!({"taskId": "zz"})).await?;
    assert_eq!(r.code, 3);
    // Unknown enum value.
    let r = p.call("Tasks", "ListTasks", &json!({"state": 999})).await?;
    assert_eq!(r.code, 3);
    // Limits.
    let r = p.call("Tasks", "ListTasks", &json!({"limit": 1001})).await?;
    assert_eq!(r.code, 3);
    // CountTasks needs start.
    let r = p.call("Tasks", "CountTasks", &json!({})).await?;
    assert_eq!(r.code, 3);
    // Unknown method / service.
    let r = p.call("Tasks", "Nope", &json!({})).await?;
    assert_eq!((r.code, r.http_status), (12, 501));
    // Malformed JSON.
    let resp = reqwest::Client::new()
        .post(format!("{}/prpc/swarming.v2.Tasks/GetResult", srv.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(resp.headers()["x-prpc-grpc-code"], "3");
    // Unsupported content type.
    let resp = reqwest::Client::new()
        .post(format!("{}/prpc/swarming.v2.Tasks/GetResult", srv.url))
        .header("content-type", "text/html")
        .body("x")
        .send()
        .await?;
    assert_eq!(resp.status(), 415);
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_the_server_keeps_serving() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let big = vec![b'x'; 17 * 1024 * 1024];
    let resp = reqwest::Client::new()
        .post(format!("{}/swarming/api/v1/bot/poll", srv.url))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await?;
    assert_eq!(resp.status(), 413);
    let r = reqwest::get(format!("{}/swarming/api/v1/bot/server_ping", srv.url)).await?;
    assert_eq!(r.status(), 200);
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn listings_and_counts_follow_the_spec_defaults() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let p = srv.prpc();
    let mut bot = TestBot::new(&srv.url, "list-bot", "default", &[("os", &["Linux"])]);
    bot.handshake().await?;
    for i in 0..3 {
        let body = json!({"name": format!("l{i}"), "priority": 100, "tags": [format!("n:{i}")],
            "taskSlices": [{"expirationSecs": 300, "properties": {"command": ["true"],
            "dimensions": [{"key": "pool", "value": "default"}], "executionTimeoutSecs": 60}}]});
        p.ok("Tasks", "NewTask", &body).await?;
    }
    // Default state is QUERY_PENDING.
    let v = p.ok("Tasks", "ListTasks", &json!({"limit": 2})).await?;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    let cursor = v["cursor"].as_str().unwrap_or_default().to_string();
    assert!(!cursor.is_empty());
    let v2 = p.ok("Tasks", "ListTasks", &json!({"limit": 2, "cursor": cursor})).await?;
    assert_eq!(v2["items"].as_array().map(Vec::len), Some(1));
    // A cursor of another RPC is refused.
    let r = p.call("Tasks", "ListTaskRequests", &json!({"cursor": cursor})).await?;
    assert_eq!(r.code, 3);
    let v = p.ok("Tasks", "ListTasks", &json!({"tags": ["n:1|n:2"]})).await?;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "`|` splits values of one key: n=1 or n=\"n:2\"");
    let v = p.ok("Tasks", "ListTasks", &json!({"tags": ["n:1|2"]})).await?;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    let v = p.ok("Tasks", "CountTasks", &json!({"start": "2020-01-01T00:00:00Z", "state": "QUERY_ALL"})).await?;
    assert_eq!(v["count"], 3);
    let v = p.ok("Bots", "ListBots", &json!({})).await?;
    assert_eq!(v["items"][0]["botId"], "list-bot");
    assert_eq!(v["deathTimeout"], 600);
    let v = p.ok("Bots", "GetBotDimensions", &json!({})).await?;
    assert!(v["botsDimensions"].as_array().is_some_and(|a| a.iter().any(|p| p["key"] == "os")));
    let v = p.ok("Swarming", "GetDetails", &json!({})).await?;
    assert!(v["botVersion"].as_str().is_some_and(|s| s.len() == 64));
    let r = p.call("Bots", "ListBotTasks", &json!({"botId": "list-bot"})).await?;
    assert_eq!(r.code, 3, "QUERY_PENDING is refused for bot tasks");
    let r = p.call("Bots", "GetBot", &json!({"botId": "ghost"})).await?;
    assert_eq!(r.code, 5);
    let v = p.ok("Bots", "DeleteBot", &json!({"botId": "list-bot"})).await?;
    assert_eq!(v["deleted"], true);
    let v = p.ok("Bots", "GetBot", &json!({"botId": "list-bot"})).await?;
    assert_eq!(v["deleted"], true, "a deleted bot is reconstructed from its events");
    srv.stop().await;
    Ok(())
}
