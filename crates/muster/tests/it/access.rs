//! Access control through the real binary: `muster config check` exit codes,
//! `muster admin init`, and `muster token create|list|revoke` against a real
//! `muster server` process.

use crate::common::exe;
use muster_testkit::ServerProcess;
use std::process::Command;

fn muster(args: &[&str]) -> std::process::Output {
    Command::new(exe()).args(args).env("MUSTER_LOG", "warn").output().expect("running muster")
}

#[test]
fn config_check_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("access.toml"), "[groups.administrators]\nmembers = [\"user:a@example.com\"]\n")
        .expect("write");
    std::fs::write(dir.path().join("pools.cfg"), "pool { name: \"ci\" realm: \"muster:pool/ci\" }\n").expect("write");
    let ok = muster(&["config", "check", dir.path().to_str().expect("utf-8")]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: 1 pools"));

    std::fs::write(
        dir.path().join("realms.cfg"),
        "realms {\n  name: \"pool/ci\"\n  bindings { role: \"role/swarming.nope\" principals: \"group:administrators\" }\n}\n",
    )
    .expect("write");
    let bad = muster(&["config", "check", dir.path().to_str().expect("utf-8")]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("realms.cfg:3:") && err.contains("unknown role"), "{err}");
}

#[tokio::test]
async fn admin_init_then_tokens_through_the_binary() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path().to_str().expect("utf-8").to_string();
    let init = muster(&["admin", "init", "--identity", "user:me@example.com", "--data-dir", &d]);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let admin_token = String::from_utf8_lossy(&init.stdout).trim().to_string();
    assert!(admin_token.starts_with("mst_"), "{admin_token}");
    let toml = std::fs::read_to_string(data.path().join("config/access.toml")).expect("access.toml");
    assert!(toml.contains("user:me@example.com"), "{toml}");
    assert!(muster(&["admin", "init", "--identity", "user:x@example.com", "--data-dir", &d]).status.code() == Some(1));

    let server = ServerProcess::start(&exe(), data.path(), 0, &[]).await.expect("server");
    let url = server.url.clone();
    let run = |args: Vec<String>, token: Option<&str>| {
        let mut c = Command::new(exe());
        c.args(&args).env("MUSTER_LOG", "warn").env("HOME", data.path()).env_remove("MUSTER_TOKEN");
        if let Some(t) = token {
            c.env("MUSTER_TOKEN", t);
        }
        c.output().expect("running muster")
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let created =
        run(s(&["token", "create", "-S", &url, "--identity", "service:ci", "--expires", "1d"]), Some(&admin_token));
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let ci_token = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert!(ci_token.starts_with("mst_"));
    let id = ci_token["mst_".len().."mst_".len() + 22].to_string();

    // A token file works like the environment variable.
    let file = data.path().join("ci.token");
    std::fs::write(&file, format!("{ci_token}\n")).expect("write token file");
    let mine = run(s(&["token", "list", "-S", &url, "--json", "--token-file", file.to_str().expect("utf-8")]), None);
    assert!(mine.status.success(), "{}", String::from_utf8_lossy(&mine.stderr));
    assert!(String::from_utf8_lossy(&mine.stdout).contains(&id));

    // Not an administrator: cannot mint for others (exit 5 = permission).
    let denied = run(s(&["token", "create", "-S", &url, "--identity", "user:x@example.com"]), Some(&ci_token));
    assert_eq!(denied.status.code(), Some(5), "{}", String::from_utf8_lossy(&denied.stderr));

    let all = run(s(&["token", "list", "-S", &url, "--all"]), Some(&admin_token));
    let listing = String::from_utf8_lossy(&all.stdout).to_string();
    assert!(listing.contains("service:ci") && listing.contains("user:me@example.com"), "{listing}");

    let revoked = run(s(&["token", "revoke", "-S", &url, "--", &id]), Some(&admin_token));
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let after = run(s(&["token", "list", "-S", &url]), Some(&ci_token));
    assert_eq!(after.status.code(), Some(5), "a revoked token is refused");
    server.stop().await.expect("stop");
}
