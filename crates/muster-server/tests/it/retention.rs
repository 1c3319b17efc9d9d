//! Retention runs in the server's sweeper: finished tasks older than the
//! retention period disappear with their output, recent and unfinished ones
//! stay, and with no retention (`--retention-days 0`) nothing is deleted.

use muster_testkit::{wait_for, FakeClock, Prpc, TestBot, TestServer, PATIENCE};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

async fn server(retention: Option<Duration>) -> anyhow::Result<(TestServer, Arc<FakeClock>)> {
    let clock = Arc::new(FakeClock::new());
    let srv = TestServer::start_configured(
        clock.clone(),
        muster_sched::SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() },
        |c| {
            c.retention = retention;
        },
    )
    .await?;
    Ok((srv, clock))
}

/// A task run to completion by a protocol-level bot, with some output.
async fn finished_task(srv: &TestServer, name: &str) -> anyhow::Result<String> {
    let prpc = srv.prpc();
    // The bot first: a task no live bot could run ends NO_RESOURCE at once.
    let mut bot = TestBot::new(&srv.url, &format!("{name}-bot"), "default", &[]);
    bot.handshake().await?;
    let id = prpc.new_task(name, "default", &["true"]).await?;
    let m = match bot.poll_until_run(5).await {
        Ok(m) => m,
        Err(e) => anyhow::bail!("{e}; task: {}; poll: {}", prpc.result(&id).await?, bot.poll().await?),
    };
    let run_id = m["task_id"].as_str().unwrap_or_default().to_string();
    bot.output(&run_id, 0, b"kept until retention\n").await?;
    bot.complete(&run_id, 0, 0.5).await?;
    assert_eq!(prpc.result(&id).await?["state"], "COMPLETED");
    Ok(id)
}

/// A task no bot will take, expiring 60 s after submission.
async fn canary(prpc: &Prpc, name: &str) -> anyhow::Result<String> {
    let v = prpc
        .ok(
            "Tasks",
            "NewTask",
            &json!({"name": name, "priority": 100, "taskSlices": [{"expirationSecs": 60, "waitForCapacity": true,
                "properties": {"command": ["true"], "dimensions": [{"key": "pool", "value": "nobody"}],
                               "executionTimeoutSecs": 60}}]}),
        )
        .await?;
    Ok(v["taskId"].as_str().unwrap_or_default().to_string())
}

/// Whether GetResult still finds the task.
async fn exists(prpc: &Prpc, id: &str) -> anyhow::Result<bool> {
    let r = prpc.call("Tasks", "GetResult", &json!({"taskId": id})).await?;
    match r.code {
        0 => Ok(true),
        5 => Ok(false),
        other => anyhow::bail!("GetResult({id}): code {other}: {}", r.text),
    }
}

#[tokio::test]
async fn the_sweeper_deletes_finished_tasks_past_retention_and_keeps_the_rest() -> anyhow::Result<()> {
    let (srv, clock) = server(Some(DAY)).await?;
    let prpc = srv.prpc();
    let old = finished_task(&srv, "old").await?;
    // Still waiting for a bot: unfinished tasks are never deleted.
    let waiting = {
        let v = prpc
            .ok(
                "Tasks",
                "NewTask",
                &json!({"name": "waiting", "priority": 100, "taskSlices": [{"expirationSecs": 604800,
                    "waitForCapacity": true, "properties": {"command": ["true"],
                    "dimensions": [{"key": "pool", "value": "nobody"}], "executionTimeoutSecs": 60}}]}),
            )
            .await?;
        v["taskId"].as_str().unwrap_or_default().to_string()
    };
    clock.advance(DAY * 2);
    let recent = finished_task(&srv, "recent").await?;
    wait_for("the sweeper to delete the 2-day-old task", PATIENCE, || async {
        Ok((!exists(&prpc, &old).await?).then_some(()))
    })
    .await?;
    assert!(prpc.call("Tasks", "GetStdout", &json!({"taskId": old})).await?.code != 0, "its output went with it");
    assert!(exists(&prpc, &recent).await?, "a task finished within the retention period was deleted");
    assert_eq!(prpc.result(&waiting).await?["state"], "PENDING", "an unfinished task was touched");
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn with_no_retention_the_sweeper_deletes_nothing() -> anyhow::Result<()> {
    let (srv, clock) = server(None).await?;
    let prpc = srv.prpc();
    let old = finished_task(&srv, "ancient").await?;
    clock.advance(DAY * 1000);
    // Two sweeps that saw the new time: the first expires canary one, the
    // second (a whole sweeper round after the first) expires canary two.
    for name in ["canary-1", "canary-2"] {
        let id = canary(&prpc, name).await?;
        clock.advance(Duration::from_secs(61));
        let r = prpc.wait_final(&id, PATIENCE).await?;
        assert_eq!(r["state"], "EXPIRED", "{r}");
    }
    assert!(exists(&prpc, &old).await?, "a 1000-day-old task was deleted with retention off");
    srv.stop().await;
    Ok(())
}
