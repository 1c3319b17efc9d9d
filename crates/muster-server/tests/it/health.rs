//! `/healthz` and `/readyz`.

use muster_core::time::SystemClock;
use muster_sched::SchedConfig;
use muster_server::health::ReadyCheck;
use muster_testkit::TestServer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct Flag(Arc<AtomicBool>);

impl ReadyCheck for Flag {
    fn name(&self) -> &str {
        "config"
    }
    fn check(&self) -> Result<String, String> {
        if self.0.load(Ordering::SeqCst) {
            Ok("valid".into())
        } else {
            Err("invalid: test says so".into())
        }
    }
}

async fn get(url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let r = reqwest::get(url).await?;
    Ok((r.status().as_u16(), r.json().await?))
}

#[tokio::test]
async fn readiness_reports_each_check_and_fails_when_one_fails_or_on_shutdown() -> anyhow::Result<()> {
    let ok = Arc::new(AtomicBool::new(true));
    let flag = Flag(ok.clone());
    let srv = TestServer::start_configured(Arc::new(SystemClock), SchedConfig::default(), |c| {
        c.ready_checks.push(Arc::new(flag));
    })
    .await?;
    let (code, v) = get(&format!("{}/healthz", srv.url)).await?;
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")));

    let (code, v) = get(&format!("{}/readyz", srv.url)).await?;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["ready"], true);
    assert_eq!(v["checks"]["store"]["ok"], true);
    assert_eq!(v["checks"]["index"]["detail"], "0 pending slices loaded");
    assert_eq!(v["checks"]["config"]["detail"], "valid");

    ok.store(false, Ordering::SeqCst);
    let (code, v) = get(&format!("{}/readyz", srv.url)).await?;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["checks"]["config"], serde_json::json!({"ok": false, "detail": "invalid: test says so"}));

    ok.store(true, Ordering::SeqCst);
    srv.sched.close();
    let (code, v) = get(&format!("{}/readyz", srv.url)).await?;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["checks"]["serving"]["detail"], "shutting down");
    // Still alive while draining.
    assert_eq!(get(&format!("{}/healthz", srv.url)).await?.0, 200);
    srv.stop().await;
    Ok(())
}
