use muster_config::load_dir;
use muster_config::roles;
use muster_config::snapshot::{build, Files, LoadOptions};
use std::collections::BTreeMap;

fn files(list: &[(&str, &str)]) -> Files {
    Files(list.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect::<BTreeMap<_, _>>())
}

fn errors_of(list: &[(&str, &str)]) -> String {
    build(&files(list), LoadOptions::default()).expect_err("must be invalid").to_string()
}

#[test]
fn upstream_examples_load_with_their_meaning() {
    let snap = load_dir(&crate::upstream_dir(), LoadOptions::default()).expect("examples load");
    assert_eq!(snap.pools.len(), 3);
    assert_eq!(snap.pools["ci"].default_task_realm.as_deref(), Some("infra:tasks/ci"));
    assert_eq!(snap.server_groups.view_all_bots, "fleet-viewers");
    assert_eq!(snap.server_groups.privileged_users, "administrators");
    let ci_user = "user:bob@ci.example.com";
    assert!(snap.is_member(ci_user, &[], "ci-submitters"));
    assert!(snap.has_realm_permission(ci_user, &[], "infra:pool/ci", roles::POOLS_CREATE_TASK));
    assert!(!snap.has_realm_permission(ci_user, &[], "infra:pool/ci", roles::POOLS_CANCEL_TASK));
    // Nested: administrators are ci-submitters; @root makes them owners everywhere.
    assert!(snap.has_realm_permission("user:alice@example.com", &[], "infra:pool/ci", roles::POOLS_CANCEL_TASK));
    assert!(snap.has_realm_permission("user:alice@example.com", &[], "infra:no/such", roles::POOLS_DELETE_BOT));
    // Custom role + extends.
    assert!(snap.has_realm_permission("user:release@example.com", &[], "infra:pool/release", roles::POOLS_CANCEL_TASK));
    assert!(snap.has_realm_permission(ci_user, &[], "infra:pool/release", roles::POOLS_CREATE_TASK));
    assert!(!snap.has_realm_permission("anonymous:anonymous", &[], "infra:pool/ci", roles::POOLS_LIST_BOTS));
    assert!(snap.has_realm_permission("user:x@y.z", &[], "infra:pool/ci", roles::POOLS_LIST_BOTS));
    assert_eq!(snap.ip_in_allowlist("office", "10.8.3.4".parse().expect("ip")), Some(true));
    assert_eq!(snap.ip_in_allowlist("lab-bots", "10.20.1.1".parse().expect("ip")), Some(true));
    assert!(snap.bots.is_some());
    assert_eq!(snap.digest.len(), 64);
}

#[test]
fn unknown_role_is_named_with_its_place() {
    let e = errors_of(&[(
        "realms.cfg",
        "realms {\n  name: \"x\"\n  bindings { role: \"role/nope\" principals: \"user:a@b.c\" }\n}\n",
    )]);
    assert!(e.contains("realms.cfg:3:") && e.contains("unknown role \"role/nope\""), "{e}");
}

#[test]
fn group_cycle_is_refused() {
    let e = errors_of(&[("access.toml", "[groups.a]\nnested = [\"b\"]\n[groups.b]\nnested = [\"a\"]\n")]);
    assert!(e.contains("access.toml:") && e.contains("cycle"), "{e}");
}

#[test]
fn unknown_key_in_access_toml_is_refused() {
    let e = errors_of(&[("access.toml", "[groups.a]\nmembrs = [\"user:a@b.c\"]\n")]);
    assert!(e.starts_with("access.toml:2:1: ") || e.starts_with("access.toml:2:"), "{e}");
    assert!(e.contains("membrs"), "{e}");
}

#[test]
fn duplicate_sources_are_refused() {
    let e = errors_of(&[
        (
            "access.toml",
            "[ip_allowlists]\noffice = [\"10.0.0.0/8\"]\n[[pool]]\nname = \"ci\"\nowners = [\"user:a@b.c\"]\n",
        ),
        ("ip_allowlist.cfg", "ip_allowlists { name: \"office\" subnets: \"10.0.0.0/8\" }"),
        ("pools.cfg", "pool { name: \"x\" realm: \"p:r\" }"),
    ]);
    assert!(e.contains("both ip_allowlist.cfg and access.toml"), "{e}");
    assert!(e.contains("cannot be combined with pools.cfg"), "{e}");
}

#[test]
fn realm_extends_cycle_and_unknown_group_are_refused() {
    let e = errors_of(&[(
        "realms.cfg",
        "realms { name: \"a\" extends: \"b\" }\nrealms { name: \"b\" extends: \"a\" bindings { role: \"role/swarming.poolUser\" principals: \"group:ghosts\" } }",
    )]);
    assert!(e.contains("cycle"), "{e}");
    assert!(e.contains("unknown group \"ghosts\""), "{e}");
}

#[test]
fn pool_shorthand_expands_into_roles() {
    let snap = build(
        &files(&[(
            "access.toml",
            "[groups.ci]\nmembers = [\"service:ci\"]\n[[pool]]\nname = \"ci\"\nowners = [\"user:o@x.y\"]\nsubmitters = [\"group:ci\"]\nviewers = [\"group:authenticated-users\"]\n",
        )]),
        LoadOptions::default(),
    )
    .expect("valid");
    let realm = snap.pools["ci"].realm.clone().expect("realm");
    assert_eq!(realm, "muster:pool/ci");
    assert!(snap.has_realm_permission("service:ci", &[], &realm, roles::POOLS_CREATE_TASK));
    assert!(snap.has_realm_permission("service:ci", &[], &realm, roles::TASKS_CREATE_IN_REALM));
    assert!(!snap.has_realm_permission("service:ci", &[], &realm, roles::POOLS_CANCEL_TASK));
    assert!(snap.has_realm_permission("user:o@x.y", &[], &realm, roles::POOLS_TERMINATE_BOT));
    assert!(snap.has_realm_permission("user:v@x.y", &[], &realm, roles::TASKS_GET));
    assert!(!snap.has_realm_permission("anonymous:anonymous", &[], &realm, roles::TASKS_GET));
}

#[test]
fn zero_config_and_dev_defaults() {
    let server = build(&Files::default(), LoadOptions::default()).expect("empty is valid");
    assert!(!server.has_access_toml);
    let realm = server.pool("anything").and_then(|p| p.realm).expect("zero-config pool realm");
    assert!(!server.has_realm_permission("anonymous:anonymous", &[], &realm, roles::POOLS_CREATE_TASK));
    let admin = vec!["administrators".to_string()];
    assert!(server.has_realm_permission("anonymous:anonymous", &admin, &realm, roles::POOLS_CREATE_TASK));
    let dev = build(&Files::default(), LoadOptions { dev: true, ..Default::default() }).expect("dev");
    assert!(dev.is_member("anonymous:anonymous", &[], "administrators"));
    assert!(dev.has_realm_permission("anonymous:anonymous", &[], &realm, roles::POOLS_CANCEL_TASK));
}
