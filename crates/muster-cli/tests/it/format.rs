//! Human formatting: relative times, durations, tables, exit codes.

use crate::fixtures::{completed_result, now, pending_result};
use chrono::Duration;
use muster_api::pb;
use muster_cli::format::{self, Style, Table};
use muster_cli::run::{final_reason, task_exit_code};

#[test]
fn relative_times_read_like_a_human_would_say_them() {
    let n = now();
    assert_eq!(format::relative_time(n, n), "just now");
    assert_eq!(format::relative_time(n - Duration::seconds(42), n), "42s ago");
    assert_eq!(format::relative_time(n - Duration::seconds(200), n), "3m ago");
    assert_eq!(format::relative_time(n - Duration::hours(5), n), "5h ago");
    assert_eq!(format::relative_time(n - Duration::days(12), n), "12d ago");
    assert_eq!(format::relative_time(n + Duration::minutes(3), n), "in 3m");
    assert_eq!(format::relative_ts(None, n), "-");
}

#[test]
fn durations_pick_a_readable_unit() {
    assert_eq!(format::duration(0.85), "850ms");
    assert_eq!(format::duration(12.34), "12.3s");
    assert_eq!(format::duration(184.0), "3m04s");
    assert_eq!(format::duration(7500.0), "2h05m");
}

#[test]
fn table_columns_are_aligned_and_lines_not_padded_at_the_end() {
    let mut t = Table::new(&["ID", "STATE", "NAME"]);
    t.row(vec!["a".into(), "COMPLETED".into(), "x".into()]);
    t.row(vec!["bbbbbb".into(), "PENDING".into(), "".into()]);
    assert_eq!(t.render(), "ID      STATE      NAME\na       COMPLETED  x\nbbbbbb  PENDING\n");
}

#[test]
fn table_alignment_ignores_color_codes() {
    let style = Style { color: true };
    let mut t = Table::new(&["STATE", "X"]);
    t.row(vec![style.good("OK"), "1".into()]);
    t.row(vec!["PENDING".into(), "2".into()]);
    let text = t.render();
    let plain: String = text.replace("\x1b[32m", "").replace("\x1b[0m", "");
    assert_eq!(plain, "STATE    X\nOK       1\nPENDING  2\n");
    assert!(text.contains("\x1b[32mOK\x1b[0m"));
}

#[test]
fn no_color_means_no_escape_codes() {
    let text = muster_cli::tasks::task_table(&[completed_result("a10")], now(), Style { color: false });
    assert!(!text.contains('\x1b'));
}

#[test]
fn the_task_table_shows_state_bot_age_duration_and_exit_code() {
    let items = [completed_result("6663cfc78b41fb10"), pending_result("6663cfc78b41fc20")];
    let text = muster_cli::tasks::task_table(&items, now(), Style { color: false });
    let want = "\
ID                STATE                NAME                     BOT    CREATED  DURATION  EXIT
6663cfc78b41fb10  COMPLETED (FAILURE)  alice/pool=default       bot-1  5m ago   9.5s      3
6663cfc78b41fc20  PENDING              a-much-longer-task-name  -      30s ago  -         -
";
    assert_eq!(text, want);
}

#[test]
fn the_bot_table_shows_status_and_main_dimensions() {
    let bots = [
        pb::BotInfo {
            bot_id: "bot-1".into(),
            task_id: "abc1".into(),
            last_seen_ts: Some(crate::fixtures::ts(5)),
            dimensions: vec![
                pb::StringListPair { key: "id".into(), value: vec!["bot-1".into()] },
                pb::StringListPair { key: "os".into(), value: vec!["Linux".into(), "Ubuntu".into()] },
                pb::StringListPair { key: "pool".into(), value: vec!["default".into()] },
            ],
            ..Default::default()
        },
        pb::BotInfo { bot_id: "bot-22".into(), is_dead: true, ..Default::default() },
    ];
    let text = muster_cli::bots::bot_table(&bots, now(), Style { color: false });
    let want = "\
ID      STATUS  TASK  LAST SEEN  DIMENSIONS
bot-1   busy    abc1  5s ago     pool=default os=Linux|Ubuntu
bot-22  dead    -     -
";
    assert_eq!(text, want);
}

#[test]
fn collect_console_lines_match_upstream() {
    use muster_cli::collect::{console_line, Collected};
    let style = Style { color: false };
    let c = Collected { task_id: "a10".into(), result: Some(completed_result("a10")), ..Default::default() };
    assert_eq!(console_line(&c, style), "a10: COMPLETED (FAILURE), exit code 3");
    let c = Collected { task_id: "b10".into(), result: Some(pending_result("b10")), ..Default::default() };
    assert_eq!(console_line(&c, style), "b10: PENDING");
}

#[test]
fn run_exit_codes_follow_the_task() {
    let mut r = completed_result("a10");
    assert_eq!(task_exit_code(&r), 3);
    r.exit_code = 0;
    assert_eq!(task_exit_code(&r), 0);
    r.exit_code = -9;
    assert_eq!(task_exit_code(&r), 137, "killed by SIGKILL");
    r.exit_code = 70000;
    assert_eq!(task_exit_code(&r), 1);
    assert_eq!(final_reason(&r), None);
    let codes: Vec<(pb::TaskState, i32)> = vec![
        (pb::TaskState::TimedOut, 124),
        (pb::TaskState::Expired, 91),
        (pb::TaskState::NoResource, 92),
        (pb::TaskState::BotDied, 93),
        (pb::TaskState::Canceled, 94),
        (pb::TaskState::Killed, 95),
        (pb::TaskState::ClientError, 96),
    ];
    for (state, code) in codes {
        r.state = state as i32;
        assert_eq!(task_exit_code(&r), code, "{state:?}");
        let reason = final_reason(&r).expect("a reason");
        assert!(reason.contains(state.as_str_name()), "{reason}");
    }
}

#[test]
fn collect_polls_slower_as_time_passes_but_at_most_every_15s() {
    use muster_cli::collect::poll_delay;
    use std::time::Duration;
    assert_eq!(poll_delay(Duration::ZERO), Duration::from_secs(1));
    assert_eq!(poll_delay(Duration::from_secs(60)), Duration::from_secs(3));
    assert_eq!(poll_delay(Duration::from_secs(3600)), Duration::from_secs(15));
}

#[test]
fn shell_join_gives_back_the_same_words_through_a_real_shell() {
    let words: Vec<String> =
        ["sh", "-c", "echo hello from $SWARMING_BOT_ID", "it's", "", "a b", "x;y", "plain-1.2/x=y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let line = format::shell_join(&words);
    assert!(line.starts_with("sh -c 'echo hello from $SWARMING_BOT_ID' "), "{line}");
    // printf prints each word NUL-terminated: the shell must split `line`
    // back into exactly `words`.
    let out =
        std::process::Command::new("sh").arg("-c").arg(format!("printf '%s\\0' {line}")).output().expect("running sh");
    let got: Vec<String> = out.stdout.split(|b| *b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    assert_eq!(&got[..got.len() - 1], &words[..], "{line}");
}
