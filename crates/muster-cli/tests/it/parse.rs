//! Flag parsing: command lines become the exact wire request.

use crate::fixtures::{env, parse};
use muster_api::pb;
use muster_cli::args::{self, new_task_request};
use muster_cli::Command;

fn pair(k: &str, v: &str) -> pb::StringPair {
    pb::StringPair { key: k.into(), value: v.into() }
}

fn trigger_request(argv: &[&str]) -> pb::NewTaskRequest {
    let Command::Trigger(a) = parse(argv).expect("parses") else { panic!("not a trigger") };
    new_task_request(&a.task, &env(), "https://example.com", "uuid-1").expect("valid request")
}

#[test]
fn trigger_flags_become_the_exact_new_task_request() {
    let got = trigger_request(&[
        "trigger",
        "-S",
        "example.com",
        "-d",
        "pool=default",
        "--dimension",
        "os=Linux|Mac",
        "--tag",
        "purpose:demo",
        "--env",
        "FOO=bar",
        "--env",
        "UNSET=",
        "--env-prefix",
        "PATH=bin",
        "--env-prefix",
        "PATH=tools/bin",
        "--named-cache",
        "git=cache/git",
        "--relative-cwd",
        "src",
        "--idempotent",
        "--priority",
        "50",
        "--hard-timeout",
        "600",
        "--io-timeout",
        "60",
        "--grace-period",
        "10",
        "--expiration",
        "300",
        "--",
        "python3",
        "-c",
        "print(1)",
    ]);
    let want = pb::NewTaskRequest {
        name: "alice/pool=default_os=Linux|Mac".into(),
        priority: 50,
        tags: vec!["purpose:demo".into()],
        user: "alice".into(),
        request_uuid: "uuid-1".into(),
        task_slices: vec![pb::TaskSlice {
            expiration_secs: 300,
            wait_for_capacity: false,
            properties: Some(pb::TaskProperties {
                command: vec!["python3".into(), "-c".into(), "print(1)".into()],
                dimensions: vec![pair("pool", "default"), pair("os", "Linux|Mac")],
                env: vec![pair("FOO", "bar"), pair("UNSET", "")],
                env_prefixes: vec![pb::StringListPair {
                    key: "PATH".into(),
                    value: vec!["bin".into(), "tools/bin".into()],
                }],
                caches: vec![pb::CacheEntry { name: "git".into(), path: "cache/git".into() }],
                relative_cwd: "src".into(),
                idempotent: true,
                execution_timeout_secs: 600,
                io_timeout_secs: 60,
                grace_period_secs: 10,
                ..Default::default()
            }),
        }],
        ..Default::default()
    };
    assert_eq!(got, want);
}

#[test]
fn trigger_defaults_are_the_upstream_ones() {
    let got = trigger_request(&["trigger", "-d", "pool=p", "--", "true"]);
    let s = &got.task_slices[0];
    let p = s.properties.as_ref().expect("properties");
    assert_eq!(
        (got.priority, s.expiration_secs, p.execution_timeout_secs, p.io_timeout_secs, p.grace_period_secs),
        (200, 21600, 3600, 1200, 30)
    );
    assert_eq!(got.name, "alice/pool=p");
    assert_eq!(got.user, "alice");
    assert!(got.parent_task_id.is_empty(), "no $SWARMING_TASK_ID in the test env");
}

#[test]
fn user_and_task_name_flags_override_the_defaults() {
    let got = trigger_request(&["trigger", "-d", "pool=p", "--user", "bob", "--task-name", "hello", "--", "true"]);
    assert_eq!((got.user.as_str(), got.name.as_str()), ("bob", "hello"));
}

#[test]
fn an_optional_dimension_adds_a_first_slice_and_shortens_the_base_one() {
    let got = trigger_request(&["trigger", "-d", "pool=p", "--optional-dimension", "gpu=nvidia:600", "--", "true"]);
    assert_eq!(got.task_slices.len(), 2);
    let first = got.task_slices[0].properties.as_ref().expect("properties");
    assert_eq!(first.dimensions, vec![pair("pool", "p"), pair("gpu", "nvidia")]);
    assert_eq!(got.task_slices[0].expiration_secs, 600);
    assert_eq!(got.task_slices[1].expiration_secs, 21600 - 600);
}

#[test]
fn the_parent_task_is_used_only_on_the_same_server() {
    let Command::Trigger(a) = parse(&["trigger", "-d", "pool=p", "--", "true"]).expect("parses") else {
        panic!("not a trigger")
    };
    let mut e = env();
    e.parent_task_id = "1234561".into();
    e.swarming_server = Some("example.com".into());
    let same = new_task_request(&a.task, &e, "https://example.com", "u").expect("valid");
    let other = new_task_request(&a.task, &e, "https://other.example.com", "u").expect("valid");
    assert_eq!(same.parent_task_id, "1234561");
    assert_eq!(other.parent_task_id, "");
}

#[test]
fn bad_dimension_syntax_is_a_usage_error() {
    for bad in ["pool", "=x", "pool=", "pool=a||b", "po ol=x", "os=Linux| Mac"] {
        let e = parse(&["trigger", "-d", bad, "--", "true"]).expect_err(bad);
        assert_eq!(e.exit_code(), 2, "{bad}");
        assert!(e.to_string().contains("dimension"), "{bad}: {e}");
    }
}

#[test]
fn trigger_without_a_command_or_dimension_is_a_usage_error() {
    let Command::Trigger(a) = parse(&["trigger", "-d", "pool=p"]).expect("parses") else { panic!() };
    let e = new_task_request(&a.task, &env(), "https://x", "u").expect_err("no command");
    assert_eq!(e.exit_code(), 2);
    let Command::Trigger(a) = parse(&["trigger", "--", "true"]).expect("parses") else { panic!() };
    let e = new_task_request(&a.task, &env(), "https://x", "u").expect_err("no dimension");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn a_repeated_env_key_is_rejected() {
    let Command::Trigger(a) =
        parse(&["trigger", "-d", "pool=p", "--env", "A=1", "--env", "A=2", "--", "true"]).expect("parses")
    else {
        panic!()
    };
    assert!(new_task_request(&a.task, &env(), "https://x", "u").is_err());
}

#[test]
fn bots_dimension_filters_keep_or_values() {
    let Command::Bots(a) = parse(&["bots", "-d", "pool=p", "-d", "os=Linux|Mac", "--bare"]).expect("parses") else {
        panic!()
    };
    assert_eq!(a.dimensions, vec![pair("pool", "p"), pair("os", "Linux|Mac")]);
    assert!(a.bare);
}

#[test]
fn states_parse_case_insensitively() {
    use muster_cli::tasks::state_query;
    assert_eq!(state_query("completed_failure"), Ok(pb::StateQuery::QueryCompletedFailure as i32));
    assert_eq!(state_query("ALL"), Ok(pb::StateQuery::QueryAll as i32));
    assert_eq!(state_query("Pending-Running"), Ok(pb::StateQuery::QueryPendingRunning as i32));
    assert!(state_query("finished").is_err());
    let Command::Tasks(a) = parse(&["tasks"]).expect("parses") else { panic!() };
    assert_eq!(a.state, pb::StateQuery::QueryAll as i32, "default is all, not the wire default pending");
}

#[test]
fn times_accept_epoch_rfc3339_and_ages() {
    let now = crate::fixtures::now();
    assert_eq!(args::parse_time("2h", now), Ok(now - chrono::Duration::hours(2)));
    assert_eq!(args::parse_time("1714500000", now).map(|t| t.timestamp()), Ok(1_714_500_000));
    assert_eq!(args::parse_time("2024-05-01T10:00:00Z", now).map(|t| t.timestamp()), Ok(1_714_557_600));
    assert!(args::parse_time("yesterday", now).is_err());
}

#[test]
fn collect_accepts_wait_false_and_aliases() {
    let Command::Collect(a) =
        parse(&["collect", "--wait=false", "--task-summary-json", "s.json", "abc0"]).expect("parses")
    else {
        panic!()
    };
    assert!(!a.wait);
    assert_eq!(a.json_output.as_deref(), Some("s.json"));
    assert_eq!(a.task_ids, vec!["abc0".to_string()]);
    assert!(parse(&["collect", "NOT-HEX"]).is_err());
}

#[test]
fn bots_show_takes_the_server_given_before_show() {
    let Command::Bots(a) = parse(&["bots", "-S", "h", "show", "bot-1"]).expect("parses") else { panic!() };
    assert_eq!(a.common.server.as_deref(), Some("h"));
    assert!(matches!(a.action, Some(muster_cli::bots::BotsAction::Show(ref s)) if s.bot_id == "bot-1"));
}

#[test]
fn the_command_tree_is_consistent() {
    muster_cli::client_command().debug_assert();
}

#[test]
fn every_verb_has_examples_in_its_help() {
    let cmd = muster_cli::client_command();
    for sub in cmd.get_subcommands() {
        let help = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        assert!(help.contains("Examples:"), "{} has no examples", sub.get_name());
    }
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        let mut out = Vec::new();
        muster_cli::completions(shell, &mut muster_cli::client_command(), &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("collect") && text.contains("spawn-tasks"), "{shell:?}");
    }
}

#[test]
fn server_urls_are_normalized() {
    use muster_cli::client::normalize_server;
    assert_eq!(normalize_server("example.com").as_deref(), Ok("https://example.com"));
    assert_eq!(normalize_server("http://localhost:8080/ui/").as_deref(), Ok("http://localhost:8080"));
    assert!(normalize_server("ftp://x").is_err());
    // A bare loopback address is a local plain-HTTP server (muster dev).
    assert_eq!(normalize_server("127.0.0.1:8080").as_deref(), Ok("http://127.0.0.1:8080"));
    assert_eq!(normalize_server("localhost:8080").as_deref(), Ok("http://localhost:8080"));
    assert_eq!(normalize_server("[::1]:8080").as_deref(), Ok("http://[::1]:8080"));
    assert_eq!(normalize_server("10.0.0.1:8080").as_deref(), Ok("https://10.0.0.1:8080"));
    assert!(normalize_server("").is_err());
}

#[test]
fn a_comma_separated_server_list_is_normalized_in_order() {
    use muster_cli::client::normalize_servers;
    assert_eq!(
        normalize_servers("http://a:1/, b.example.com,,http://a:1").expect("valid"),
        ["http://a:1", "https://b.example.com"]
    );
    let e = normalize_servers("http://a:1,ftp://b").expect_err("bad second URL");
    assert!(e.contains("ftp://b"), "{e}");
    assert!(normalize_servers(" , ").is_err());
}

#[test]
fn the_server_flag_takes_a_list_of_replicas() {
    let Command::Tasks(a) = parse(&["tasks", "-S", "http://a:1,http://b:2"]).expect("parses") else { panic!() };
    let client = a.common.client(&env()).expect("client");
    assert_eq!(client.servers(), ["http://a:1", "http://b:2"]);
    assert_eq!(client.server(), "http://a:1");
}

#[test]
fn the_parent_task_is_used_when_the_server_lists_share_a_replica() {
    let Command::Trigger(a) = parse(&["trigger", "-d", "pool=p", "--", "true"]).expect("parses") else {
        panic!("not a trigger")
    };
    let mut e = env();
    e.parent_task_id = "1234561".into();
    e.swarming_server = Some("http://b:2".into());
    let same = new_task_request(&a.task, &e, "http://a:1,http://b:2", "u").expect("valid");
    let other = new_task_request(&a.task, &e, "http://a:1,http://c:3", "u").expect("valid");
    assert_eq!(same.parent_task_id, "1234561");
    assert_eq!(other.parent_task_id, "");
}

#[test]
fn credentials_files_hold_a_token_line_or_a_bare_token() {
    use muster_cli::client::parse_credentials;
    assert_eq!(parse_credentials("# mine\ntoken = \"abc\"\n").as_deref(), Some("abc"));
    assert_eq!(parse_credentials("abc123\n").as_deref(), Some("abc123"));
    assert_eq!(parse_credentials("# nothing\n"), None);
}

#[test]
fn the_token_flag_wins_over_the_credentials_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("credentials");
    std::fs::write(&file, "token = \"from-file\"\n").expect("write");
    use muster_cli::client::find_token;
    assert_eq!(find_token(Some("flag"), Some(&file)), Ok(Some("flag".into())));
    assert_eq!(find_token(None, Some(&file)), Ok(Some("from-file".into())));
    assert_eq!(find_token(None, Some(&dir.path().join("missing"))), Ok(None));
}

#[test]
fn spawn_input_accepts_snake_and_camel_case() {
    let text = r#"{"requests": [
        {"name": "a", "task_slices": [{"expiration_secs": 60, "properties": {"command": ["true"]}}]},
        {"name": "b", "taskSlices": [{"expirationSecs": 60}], "requestUuid": "u"}
    ]}"#;
    let reqs = muster_cli::tasks::parse_spawn_input(text).expect("parses");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].task_slices[0].expiration_secs, 60);
    assert_eq!(reqs[0].task_slices[0].properties.as_ref().map(|p| p.command.clone()), Some(vec!["true".into()]));
    assert_eq!(reqs[1].request_uuid, "u");
    assert!(muster_cli::tasks::parse_spawn_input("{\"requests\": []}").is_err());
}

#[test]
fn upstream_single_dash_long_flags_are_accepted_after_normalization() {
    let root = muster_cli::client_command();
    let argv =
        ["muster", "collect", "-S", "h", "-task-summary-json", "s.json", "-wait=false", "-d", "abc0", "--", "-eager"];
    let norm = muster_cli::normalize_upstream_args(&root, argv.iter().map(Into::into).collect());
    let norm: Vec<String> = norm.into_iter().map(|s| s.into_string().expect("utf-8")).collect();
    assert_eq!(
        norm,
        ["muster", "collect", "-S", "h", "--task-summary-json", "s.json", "--wait=false", "-d", "abc0", "--", "-eager"]
    );
    let argv = ["muster", "cancel", "-kill-running", "abc0"];
    let norm = muster_cli::normalize_upstream_args(&root, argv.iter().map(Into::into).collect());
    let Command::Cancel(a) =
        parse(&norm.iter().skip(1).map(|s| s.to_str().expect("utf-8")).collect::<Vec<_>>()).expect("parses")
    else {
        panic!()
    };
    assert!(a.kill_running);
}
