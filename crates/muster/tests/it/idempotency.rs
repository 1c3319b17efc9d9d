//! NewTask is idempotent by request_uuid even when the retries race: calls
//! sent at the same moment, to one server or to two replicas of one
//! deployment, create one task and all get its id.

use crate::common::{start_server, task};
use crate::replicas::two_replicas;
use muster_testkit::{Prpc, TempPostgres};
use serde_json::{json, Value};

fn with_uuid(name: &str, uuid: &str) -> Value {
    let mut t = task(name, &["true"], json!({}));
    t["requestUuid"] = json!(uuid);
    // No bot: the task stays pending (and so stays one row to count).
    t["taskSlices"][0]["waitForCapacity"] = json!(true);
    t
}

async fn new_task(prpc: &Prpc, body: &Value) -> anyhow::Result<String> {
    let v = prpc.ok("Tasks", "NewTask", body).await?;
    Ok(v["taskId"].as_str().unwrap_or_default().to_string())
}

/// How many tasks carry this name (ListTasks over everything).
async fn count_named(prpc: &Prpc, name: &str) -> anyhow::Result<usize> {
    let v = prpc
        .ok("Tasks", "ListTasks", &json!({"start": "2020-01-01T00:00:00Z", "state": "QUERY_ALL", "limit": 1000}))
        .await?;
    Ok(v["items"].as_array().into_iter().flatten().filter(|t| t["name"] == name).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_new_tasks_with_one_request_uuid_create_one_task() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    for round in 0..5 {
        let name = format!("same-{round}");
        let body = with_uuid(&name, &format!("uuid-one-replica-{round}"));
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (prpc, body) = (prpc.clone(), body.clone());
                tokio::spawn(async move { new_task(&prpc, &body).await })
            })
            .collect();
        let mut ids = Vec::new();
        for c in calls {
            ids.push(c.await??);
        }
        assert!(!ids[0].is_empty());
        assert!(ids.iter().all(|id| id == &ids[0]), "round {round}: {ids:?}");
        assert_eq!(count_named(&prpc, &name).await?, 1, "round {round}");
    }
    srv.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_new_tasks_with_one_request_uuid_on_two_replicas_create_one_task() -> anyhow::Result<()> {
    let pg = TempPostgres::start();
    let dir = tempfile::tempdir()?;
    let (a, b) = two_replicas(&pg, dir.path()).await?;
    let (pa, pb) = (Prpc::new(&a.url), Prpc::new(&b.url));
    for round in 0..10 {
        let name = format!("twin-{round}");
        let body = with_uuid(&name, &format!("uuid-two-replicas-{round}"));
        let (ra, rb) = tokio::join!(new_task(&pa, &body), new_task(&pb, &body));
        let (ida, idb) = (ra?, rb?);
        assert!(!ida.is_empty());
        assert_eq!(ida, idb, "round {round}: each replica created its own task");
        assert_eq!(count_named(&pa, &name).await?, 1, "round {round}");
    }
    a.stop().await?;
    b.stop().await
}
