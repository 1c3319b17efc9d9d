use muster_config::pb;
use muster_config::text::parse;

#[test]
fn text_format_features_parse() {
    let cfg: pb::PoolsCfg = parse(
        "pools.cfg",
        r#"
        # comment
        pool { name: ["a", "b"] realm: "p:" "r" }
        pool < name: "c" scheduling_algorithm: 2 >
        pool { name: "d" scheduling_algorithm: SCHEDULING_ALGORITHM_LIFO }
        "#,
    )
    .expect("parses");
    assert_eq!(cfg.pool[0].name, vec!["a", "b"]);
    assert_eq!(cfg.pool[0].realm, "p:r");
    assert_eq!(cfg.pool[1].scheduling_algorithm, 2);
    assert_eq!(cfg.pool[2].scheduling_algorithm, 2);
}

#[test]
fn unknown_field_is_an_error_with_position() {
    let e =
        parse::<pb::PoolsCfg>("pools.cfg", "pool {\n  name: \"a\"\n  colour: \"red\"\n}\n").expect_err("unknown field");
    assert_eq!((e.file.as_str(), e.line, e.col), ("pools.cfg", 3, 3), "{e}");
    assert!(e.to_string().starts_with("pools.cfg:3:3: "), "{e}");
}

#[test]
fn duplicate_singular_field_is_an_error() {
    let e = parse::<pb::PoolsCfg>("pools.cfg", "pool { realm: \"a:b\" realm: \"a:c\" }").expect_err("duplicate");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn syntax_error_is_placed() {
    let e = parse::<pb::SettingsCfg>("settings.cfg", "auth {\n  admins_group: \"x\"\n").expect_err("unclosed");
    assert_eq!(e.file, "settings.cfg");
    assert!(e.line >= 2, "{e}");
}

#[test]
fn upstream_reserved_names_load_and_reserved_numbers_do_not() {
    let cfg: pb::PoolsCfg = parse("pools.cfg", "pool { name: \"a\" allowed_service_account: \"x@example.com\" }")
        .expect("reserved name tolerated");
    assert_eq!(cfg.pool[0].allowed_service_account, vec!["x@example.com"]);
    // settings.cfg field 5 (isolate) is reserved by number only: an error.
    assert!(parse::<pb::SettingsCfg>("settings.cfg", "isolate { server: \"x\" }").is_err());
}

#[test]
fn bots_and_ip_allowlist_parse() {
    let bots: pb::BotsCfg = parse(
        "bots.cfg",
        "trusted_dimensions: \"pool\"\nbot_group { bot_id_prefix: \"mac-\" auth { require_service_account: \"a@b.c\" } \
         auth { require_luci_machine_token_secure { ca_id: [1, 2] } } dimensions: \"pool:ci\" }",
    )
    .expect("bots.cfg");
    assert_eq!(bots.bot_group[0].auth.len(), 2);
    let ip: pb::IpAllowlistConfig =
        parse("ip_allowlist.cfg", "ip_allowlists { name: \"x\" subnets: \"10.0.0.0/8\" }").expect("ip");
    assert_eq!(ip.ip_allowlists[0].subnets, vec!["10.0.0.0/8"]);
}
