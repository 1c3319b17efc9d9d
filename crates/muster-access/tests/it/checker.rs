use muster_access::checker::TaskAcl;
use muster_access::{perms, AuthMethod, Caller, Checker, Identity};
use muster_core::ErrorKind;

fn caller(id: &str) -> Caller {
    Caller {
        identity: Identity::parse(id).expect("id"),
        extra_groups: vec![],
        method: AuthMethod::Anonymous,
        peer: None,
    }
}

const ACCESS: &str = r#"
[groups.administrators]
members = ["user:admin@x.com"]
[groups.viewers]
members = ["user:viewer@x.com"]
[[pool]]
name = "a"
submitters = ["user:sub@x.com"]
viewers = ["group:viewers"]
[[pool]]
name = "b"
owners = ["user:owner@x.com"]
"#;

#[test]
fn upstream_rules() {
    let snap = crate::snapshot(&[("access.toml", ACCESS)]);
    let (admin, viewer, sub, owner, anon) = (
        caller("user:admin@x.com"),
        caller("user:viewer@x.com"),
        caller("user:sub@x.com"),
        caller("user:owner@x.com"),
        Caller::anonymous(None),
    );
    let c = |who| Checker::new(&snap, who);
    assert!(c(&admin).check_server(perms::SERVERS_PEEK).is_ok());
    let e = c(&anon).check_server(perms::SERVERS_PEEK).expect_err("denied");
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    assert_eq!(
        e.message,
        "the caller \"anonymous:anonymous\" doesn't have server-level permission \"swarming.servers.peek\""
    );
    // Admins cannot create tasks without realm bindings (upstream).
    assert!(c(&admin).check_pool("a", perms::POOLS_CREATE_TASK).is_err());
    assert!(c(&sub).check_pool("a", perms::POOLS_CREATE_TASK).is_ok());
    assert!(c(&sub).check_pool("b", perms::POOLS_CREATE_TASK).is_err());
    let e = c(&sub).check_pool("nope", perms::POOLS_CREATE_TASK).expect_err("unknown pool");
    assert!(e.message.ends_with("in the pool \"nope\" or the pool doesn't exist"), "{}", e.message);
    assert!(c(&viewer).check_listing(&["a".into()], perms::POOLS_LIST_TASKS).is_ok());
    assert!(c(&viewer).check_listing(&["a".into(), "b".into()], perms::POOLS_LIST_TASKS).is_err());
    assert!(c(&viewer).check_listing(&[], perms::POOLS_LIST_TASKS).is_err(), "no pool filter: server level");
    assert!(c(&admin).check_listing(&[], perms::POOLS_LIST_TASKS).is_ok());
    // Tasks: own tasks, realm, paired pool permission.
    let t = TaskAcl {
        id: "t1",
        authenticated: "user:sub@x.com",
        realm: Some("muster:pool/a"),
        pool: Some("a"),
        ..Default::default()
    };
    assert!(c(&sub).check_task(&t, perms::TASKS_CANCEL).is_ok());
    assert!(c(&viewer).check_task(&t, perms::TASKS_GET).is_ok());
    assert!(c(&viewer).check_task(&t, perms::TASKS_CANCEL).is_err());
    assert!(c(&owner).check_task(&t, perms::TASKS_GET).is_err());
    let tb = TaskAcl { id: "t2", authenticated: "user:x@x.com", realm: None, pool: Some("b"), ..Default::default() };
    assert!(c(&owner).check_task(&tb, perms::TASKS_CANCEL).is_ok());
    assert!(c(&admin).check_task(&tb, perms::TASKS_CANCEL).is_ok());
    // Bots: any pool of the bot.
    assert!(c(&owner).check_bot("bot1", &["b".into()], perms::POOLS_TERMINATE_BOT).is_ok());
    let e = c(&sub).check_bot("bot1", &["b".into()], perms::POOLS_LIST_BOTS).expect_err("denied");
    assert!(e.message.contains("in the pool that contains bot \"bot1\""), "{}", e.message);
    assert_eq!(c(&viewer).pools_with(perms::POOLS_LIST_BOTS), vec!["a".to_string()]);
    assert_eq!(c(&admin).pools_with(perms::POOLS_LIST_BOTS), vec!["a".to_string(), "b".to_string()]);
}
