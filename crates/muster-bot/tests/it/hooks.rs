//! Hooks: JSON in, JSON out; failures, garbage and hangs are errors, never panics.

use muster_bot::{Hook, HookError};
use muster_testkit::PATIENCE;
use serde_json::json;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn script(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("hook");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write hook");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

#[tokio::test]
async fn a_hook_gets_its_name_and_json_and_its_json_reply_is_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = script(
        dir.path(),
        r#"input=$(cat); case "$1" in get_dimensions) echo "{\"dimensions\": {\"echo\": [\"$1\"]}, \"len\": ${#input}}";; *) exit 0;; esac"#,
    );
    let hook = Hook::new(p, Duration::from_secs(10));
    let input = json!({"dimensions": {"id": ["bot1"]}});
    let v = hook.call("get_dimensions", &input).await.expect("hook ok");
    assert_eq!(v["dimensions"]["echo"], json!(["get_dimensions"]));
    assert_eq!(v["len"], json!(input.to_string().len()));
    let dims = muster_bot::hooks::dimensions_from(&v).expect("valid").expect("some");
    assert_eq!(dims["echo"], vec!["get_dimensions".to_string()]);
    // A command the hook does not implement: no output, success.
    assert_eq!(hook.call("on_before_task", &json!({})).await, Ok(serde_json::Value::Null));
}

#[tokio::test]
async fn a_failing_hook_is_an_error_with_its_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Hook::new(script(dir.path(), "echo broken >&2; exit 4"), Duration::from_secs(10));
    match hook.call("health", &json!({})).await {
        Err(HookError::Failed { code, stderr, .. }) => {
            assert_eq!(code, 4);
            assert_eq!(stderr, "broken");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_hook_printing_garbage_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Hook::new(script(dir.path(), "echo 'not json {'"), Duration::from_secs(10));
    assert!(matches!(hook.call("get_state", &json!({})).await, Err(HookError::BadOutput { .. })));
    let hook = Hook::new(script(dir.path(), "echo '[1,2]'"), Duration::from_secs(10));
    assert!(matches!(hook.call("get_state", &json!({})).await, Err(HookError::BadOutput { .. })));
}

#[tokio::test]
async fn a_hanging_hook_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The hook starts a child that would live for 5 minutes and says who it is.
    let pid_file = dir.path().join("child.pid");
    let hook = Hook::new(
        script(dir.path(), &format!("sleep 300 & echo $! > {}; wait", pid_file.display())),
        Duration::from_millis(500),
    );
    assert!(matches!(hook.call("get_dimensions", &json!({})).await, Err(HookError::Timeout { .. })));
    let pid = std::fs::read_to_string(&pid_file).expect("the hook started its child");
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    // Gone, or a zombie waiting for init to reap it: either way not running.
    let alive = || {
        std::fs::read_to_string(proc_dir.join("stat"))
            .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    muster_testkit::wait_until("the hook's child to be killed with its process group", PATIENCE, || !alive())
        .await
        .expect("the hook's process group is killed");
}

#[tokio::test]
async fn a_missing_hook_is_an_error() {
    let hook = Hook::new("/nonexistent/muster-hook", Duration::from_secs(1));
    assert!(matches!(hook.call("health", &json!({})).await, Err(HookError::Spawn { .. })));
}

#[test]
fn invalid_dimensions_from_a_hook_are_rejected() {
    use muster_bot::hooks::dimensions_from;
    assert!(dimensions_from(&json!({"dimensions": {"a": "b"}})).is_err());
    assert!(dimensions_from(&json!({"dimensions": {"a": [1]}})).is_err());
    assert!(dimensions_from(&json!({"other": 1})).is_err());
    assert_eq!(dimensions_from(&serde_json::Value::Null), Ok(None));
}
