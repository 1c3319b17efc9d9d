//! The task runner against real processes.

use crate::support::{runner, shell, MemorySink};
use muster_api::bot::ManifestCache;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn output_is_streamed_in_order_with_contiguous_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::default();
    let m = shell("a1", "seq 1 60000; echo done >&2");
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;

    let mut expected: String = (1..=60000).map(|i| format!("{i}\n")).collect();
    expected.push_str("done\n");
    assert_eq!(String::from_utf8(sink.output()).expect("utf8"), expected);
    let packets = sink.packets();
    let with_output = packets.iter().filter(|p| p.output.is_some()).count();
    assert!(with_output >= 3, "{} bytes must not fit in fewer than 3 packets of 100 KiB", expected.len());
    assert_eq!(packets[0].output, None, "the start packet carries no output");
    assert_eq!(packets[0].cost_usd, Some(0.0));
    assert_eq!(packets[0].exit_code, None);
    assert!(packets[..packets.len() - 1].iter().all(|p| p.exit_code.is_none()));
    let last = sink.last();
    assert_eq!(last.exit_code, Some(0));
    assert_eq!(last.hard_timeout, Some(false));
    assert_eq!(last.io_timeout, Some(false));
    assert!(last.duration.is_some() && last.bot_overhead.is_some());
    assert_eq!(s.exit_code, Some(0));
    assert_eq!(s.output_bytes, expected.len() as u64);
    assert!(!dir.path().join("w").join("a1").exists(), "the work dir is removed");
}

#[tokio::test]
async fn a_packet_the_server_did_not_take_is_resent_from_the_same_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink { fail_output_packets: 3.into(), ..Default::default() };
    let m = shell("a2", "seq 1 40000; sleep 1; echo tail");
    runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    let mut expected: String = (1..=40000).map(|i| format!("{i}\n")).collect();
    expected.push_str("tail\n");
    assert_eq!(String::from_utf8(sink.output()).expect("utf8"), expected);
    assert_eq!(*sink.fail_output_packets.lock().expect("lock"), 0, "the failures were exercised");
}

#[tokio::test]
async fn the_exit_code_is_reported_and_a_signal_is_negative() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::default();
    let s = runner(dir.path()).run(&shell("b1", "echo out; exit 3"), &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(3));
    assert_eq!(sink.last().exit_code, Some(3));
    assert_eq!(sink.output(), b"out\n");

    let sink = MemorySink::default();
    let s = runner(dir.path()).run(&shell("b2", "kill -9 $$"), &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(-9));
    assert_eq!(sink.last().exit_code, Some(-9));
}

#[tokio::test]
async fn a_task_past_its_hard_timeout_gets_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::default();
    let mut m = shell("c1", "echo started; sleep 30");
    m.hard_timeout = 1.0;
    m.grace_period = 10.0;
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(-15));
    assert!(s.hard_timeout && !s.io_timeout);
    let last = sink.last();
    assert_eq!(last.exit_code, Some(-15));
    assert_eq!(last.hard_timeout, Some(true));
    assert_eq!(last.io_timeout, Some(false));
    assert_eq!(sink.output(), b"started\n");
}

#[tokio::test]
async fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    // must_stop arrives once "ready" was sent, i.e. after the trap is set.
    let sink = MemorySink { stop_on_output: true, ..Default::default() };
    let mut m = shell("c2", "trap '' TERM; echo ready; sleep 30; echo survived");
    m.grace_period = 1.0;
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(-9));
    assert!(s.killed);
    assert_eq!(sink.last().exit_code, Some(-9));
    assert_eq!(sink.output(), b"ready\n");
}

#[tokio::test]
async fn a_silent_task_hits_its_io_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::default();
    let mut m = shell("c3", "echo hi; sleep 30");
    m.io_timeout = 1.0;
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert!(s.io_timeout && !s.hard_timeout);
    assert_eq!(s.exit_code, Some(-15));
    let last = sink.last();
    assert_eq!(last.io_timeout, Some(true));
    assert_eq!(last.hard_timeout, Some(false));
    assert_eq!(sink.output(), b"hi\n");
}

#[tokio::test]
async fn must_stop_from_the_server_kills_the_task_and_the_final_packet_follows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink { stop_on_output: true, ..Default::default() };
    let m = shell("d1", "echo working; sleep 30");
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert!(s.killed);
    assert_eq!(s.exit_code, Some(-15));
    let last = sink.last();
    assert_eq!(last.exit_code, Some(-15));
    assert_eq!(last.hard_timeout, Some(false));
    assert_eq!(last.io_timeout, Some(false));
}

#[tokio::test]
async fn must_stop_on_the_start_packet_cancels_without_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let sink = MemorySink { stop_at_start: true, ..Default::default() };
    let m = shell("d2", &format!("touch {}", marker.display()));
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert!(s.canceled);
    assert_eq!(s.exit_code, None);
    let packets = sink.packets();
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[1].canceled, Some(true));
    assert_eq!(packets[1].exit_code, None);
    assert!(!marker.exists(), "the command must not run");
}

#[tokio::test]
async fn the_environment_has_env_prefixes_relative_cwd_and_swarming_vars() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The test runner (cargo or nextest) sets these for every test process:
    // read, never written, since setting variables in a multi-threaded test
    // binary races with the other tests' child processes.
    let inherited = std::env::var("CARGO_PKG_NAME").expect("the test runner sets CARGO_PKG_NAME");
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some(), "the test runner sets CARGO_MANIFEST_DIR");
    let sink = MemorySink::default();
    let mut m = shell(
        "e1",
        "echo \"$FOO|$CARGO_PKG_NAME|${CARGO_MANIFEST_DIR-unset}|$SWARMING_TASK_ID|$SWARMING_BOT_ID|$SWARMING_SERVER\"; \
         echo \"$MYPATH\"; pwd -P",
    );
    m.env.insert("FOO".into(), "bar".into());
    m.env.insert("CARGO_MANIFEST_DIR".into(), String::new());
    m.env.insert("MYPATH".into(), "/old".into());
    m.env_prefixes.insert("MYPATH".into(), vec!["bin".into(), "tools/x".into()]);
    m.relative_cwd = "sub/dir".into();
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(0), "{:?}", String::from_utf8_lossy(&sink.output()));
    let out = String::from_utf8(sink.output()).expect("utf8");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("bar|{inherited}|unset|e1|bot1|http://127.0.0.1:9"));
    let work = dir.path().canonicalize().expect("canon").join("w").join("e1");
    assert_eq!(lines[1], format!("{}:{}:/old", work.join("bin").display(), work.join("tools/x").display()));
    assert_eq!(lines[2], work.join("sub/dir").display().to_string());
}

#[tokio::test]
async fn a_named_cache_persists_across_two_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = ManifestCache { name: "git_cache".into(), path: "cache/git".into(), hint: "-1".into() };
    let mut first = shell("f1", "echo remembered > cache/git/note");
    first.caches = vec![cache.clone()];
    let sink = MemorySink::default();
    let s = runner(dir.path()).run(&first, &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(0));
    assert!(dir.path().join("c/git_cache/note").exists(), "the cache lives under <dir>/c/<name>");

    let mut second = shell("f2", "cat cache/git/note");
    second.caches = vec![cache];
    let sink = MemorySink::default();
    let s = runner(dir.path()).run(&second, &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(0));
    assert_eq!(sink.output(), b"remembered\n");
    assert!(dir.path().join("c/git_cache/note").exists(), "removing the work dir keeps the cache");
}

#[tokio::test]
async fn a_command_that_cannot_start_fails_with_exit_code_1_and_the_reason_in_its_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::default();
    let mut m = shell("g1", "");
    m.command = vec!["/nonexistent/muster-bot-test-binary".into()];
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(1));
    assert_eq!(s.internal_error, None);
    assert!(sink.errors.lock().expect("lock").is_empty(), "not a task_error");
    assert_eq!(sink.last().exit_code, Some(1));
    let out = String::from_utf8_lossy(&sink.output()).into_owned();
    assert!(
        out.contains("starting \"/nonexistent/muster-bot-test-binary\": No such file or directory"),
        "the reason is in the task's output: {out:?}"
    );
}

#[tokio::test]
async fn a_task_the_bot_cannot_set_up_is_a_task_error_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::default();
    let mut m = shell("g2", "echo never");
    m.relative_cwd = "../outside".into();
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, None);
    let errors = sink.errors.lock().expect("lock").clone();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "g2");
    assert!(errors[0].1.contains("relative_cwd"), "{errors:?}");
    assert!(sink.packets().iter().all(|p| p.exit_code.is_none()));
}

#[tokio::test]
async fn a_background_process_left_behind_does_not_hold_the_task_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::default();
    let m = shell("h1", "sleep 60 & echo done");
    let s = runner(dir.path()).run(&m, &sink, &CancellationToken::new()).await;
    assert_eq!(s.exit_code, Some(0));
    assert_eq!(sink.output(), b"done\n");
}

#[tokio::test]
async fn shutdown_kills_the_running_task_and_reports_it_as_a_task_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::default();
    let token = CancellationToken::new();
    let m = shell("i1", "echo running; sleep 30");
    let r = runner(dir.path());
    let cancel = token.clone();
    let (s, ()) = tokio::join!(r.run(&m, &sink, &token), async {
        // Shut down once the command has really started.
        let started = muster_testkit::wait_until("the task to print", muster_testkit::PATIENCE, || {
            sink.output().starts_with(b"running")
        })
        .await;
        cancel.cancel();
        started.expect("the task started");
    });
    assert!(s.shutdown);
    assert_eq!(s.exit_code, Some(-15), "the process was stopped with SIGTERM");
    // Not a completion: the output is flushed without an exit code and the
    // reason goes to task_error (the server ends the task BOT_DIED).
    assert!(sink.packets().iter().all(|p| p.exit_code.is_none()), "no completion packet");
    let errors = sink.errors.lock().expect("lock").clone();
    assert_eq!(errors, vec![("i1".to_string(), muster_bot::runner::SHUT_DOWN_MESSAGE.to_string())]);
}
