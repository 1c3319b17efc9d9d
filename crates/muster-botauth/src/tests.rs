use super::spec::{build, AuthSpec, BotsSpec, Context, GroupSpec, TokenAuthSpec};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn group(ids: &[&str], prefixes: &[&str], dims: &[&str]) -> GroupSpec {
    GroupSpec {
        bot_id: ids.iter().map(|s| s.to_string()).collect(),
        bot_id_prefix: prefixes.iter().map(|s| s.to_string()).collect(),
        auth: vec![AuthSpec { ip_whitelist: "lab".into(), ..Default::default() }],
        dimensions: dims.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn cx() -> Context<'static> {
    let mut cx = Context::default();
    cx.allowlists.insert("lab".into(), vec![cidr::Cidr::parse("10.0.0.0/8").expect("cidr")]);
    cx
}

#[test]
fn selection_follows_composite_exact_longest_prefix_then_default() {
    let spec = BotsSpec {
        trusted_dimensions: vec!["pool".into()],
        bot_group: vec![
            group(&["vm10-vlan2"], &[], &["pool:a"]),
            group(&["vm10-vlan2--007"], &[], &["pool:b"]),
            group(&[], &["vm1"], &["pool:c"]),
            group(&[], &["vm2-x"], &["pool:d"]),
            group(&[], &[], &["pool:e"]),
        ],
    };
    let g = build(&spec, &cx()).expect("valid").groups;
    assert_eq!(g.select("vm10-vlan2"), Some(0));
    assert_eq!(g.select("vm10-vlan2--001"), Some(0));
    assert_eq!(g.select("vm10-vlan2--007"), Some(1));
    assert_eq!(g.select("vm10-vlan3"), Some(2));
    assert_eq!(g.select("vm2-x9"), Some(3));
    assert_eq!(g.select("other"), Some(4));
}

#[test]
fn validation_rejects_ambiguous_prefixes_duplicate_ids_two_defaults_and_bad_auth() {
    let spec = BotsSpec {
        trusted_dimensions: vec!["pool".into()],
        bot_group: vec![
            group(&["a{1..3}"], &["vm"], &["pool:x"]),
            group(&["a2"], &["vm1"], &["pool:y"]),
            group(&[], &[], &[]),
            group(&[], &[], &["pool:a:b"]),
            GroupSpec {
                bot_id: vec!["z".into()],
                auth: vec![AuthSpec {
                    require_luci_machine_token: true,
                    require_service_account: vec!["x@y.com".into()],
                    ..Default::default()
                }],
                ..Default::default()
            },
            GroupSpec { bot_id: vec!["w".into()], auth: vec![AuthSpec::default()], ..Default::default() },
            GroupSpec {
                bot_id: vec!["v".into()],
                auth: vec![AuthSpec { ip_whitelist: "nope".into(), ..Default::default() }],
                ..Default::default()
            },
        ],
    };
    let errs = build(&spec, &cx()).err().expect("invalid");
    let text: Vec<String> = errs.iter().map(|p| p.to_string()).collect();
    let has = |s: &str| text.iter().any(|t| t.contains(s));
    assert!(has("bot_group[1].bot_id[0]: bot_id \"a2\" is already in group #0"), "{text:?}");
    assert!(has("ambiguous"), "{text:?}");
    assert!(has("bot_group[3]: group #2 is already set as default"), "{text:?}");
    assert!(has("may not contain ':'"), "{text:?}");
    assert!(has("can't be used at the same time"), "{text:?}");
    assert!(has("bot_group[5].auth[0]: an auth entry needs"), "{text:?}");
    assert!(has("unknown IP allowlist \"nope\""), "{text:?}");
}

#[test]
fn auth_alternatives_are_tried_in_order_and_all_failures_reported() {
    let spec = BotsSpec {
        trusted_dimensions: vec!["pool".into()],
        bot_group: vec![GroupSpec {
            bot_id_prefix: vec!["lab-".into()],
            auth: vec![
                AuthSpec { require_luci_machine_token: true, log_if_failed: true, ..Default::default() },
                AuthSpec { ip_whitelist: "lab".into(), ..Default::default() },
            ],
            dimensions: vec!["pool:lab".into()],
            ..Default::default()
        }],
    };
    let mut c = cx();
    c.token_auth.push(TokenAuthSpec {
        group: "bot_id_prefix:lab-".into(),
        token_sha256: vec![token::sha256_hex("old"), token::sha256_hex("new")],
        ip_allowlist: String::new(),
    });
    let g = build(&spec, &c).expect("valid").groups;
    let machine = Presented {
        peer: Some(ip("8.8.8.8")),
        machine: MachineCheck::Valid { host: "lab-1.example.com".into() },
        ..Default::default()
    };
    let ok = g.authorize("lab-1--a", &machine).expect("machine token passes");
    assert_eq!(ok.identity, "bot:lab-1.example.com");
    let other_host = Presented { machine: MachineCheck::Valid { host: "lab-2".into() }, ..machine.clone() };
    let by_ip = Presented { peer: Some(ip("10.1.2.3")), ..Default::default() };
    let a = g.authorize("lab-1", &by_ip).expect("allowlist passes");
    assert_eq!(a.identity, "bot:whitelisted-ip");
    assert_eq!(a.loud_failures.len(), 1);
    let by_token = Presented { peer: Some(ip("8.8.8.8")), bearer: Some("new".into()), ..Default::default() };
    assert_eq!(g.authorize("lab-1", &by_token).expect("rotated token").identity, "bot:group-token");
    let refused = g.authorize("lab-1", &other_host).expect_err("other host");
    let msg = refused.to_string();
    assert!(msg.contains("all auth methods failed") && msg.contains("bound to host \"lab-2\""), "{msg}");
    assert!(matches!(g.authorize("ci-1", &by_ip), Err(Refusal::UnknownBot(_))));
}

#[test]
fn group_dimensions_replace_trusted_and_group_keys_only() {
    let spec = BotsSpec {
        trusted_dimensions: vec!["pool".into(), "zone".into()],
        bot_group: vec![group(&["ci-1"], &[], &["pool:ci", "os:Linux"]), group(&[], &[], &[])],
    };
    let g = build(&spec, &cx()).expect("valid").groups;
    let reported: Dimensions = [
        ("pool".to_string(), vec!["lab".to_string()]),
        ("zone".to_string(), vec!["z".to_string()]),
        ("os".to_string(), vec!["Mac".to_string()]),
        ("cpu".to_string(), vec!["x86".to_string()]),
    ]
    .into();
    let m = g.merge_dimensions(0, &reported);
    assert_eq!(m.get("pool"), Some(&vec!["ci".to_string()]));
    assert_eq!(m.get("os"), Some(&vec!["Linux".to_string()]));
    assert_eq!(m.get("cpu"), Some(&vec!["x86".to_string()]));
    assert!(!m.contains_key("zone"));
    let d = g.merge_dimensions(1, &reported);
    assert!(!d.contains_key("pool"), "a group without pool gives no pool: {d:?}");
}

#[test]
fn single_default_group_trusts_only_its_own_keys() {
    let g = BotGroups::single_default(
        vec![AuthMethod { credential: Credential::IpOnly, ip_allowlist: None, log_if_failed: false }],
        Dimensions::new(),
        None,
    );
    let reported: Dimensions = [("pool".to_string(), vec!["default".to_string()])].into();
    assert_eq!(g.merge_dimensions(0, &reported), reported);
}

#[test]
fn service_account_and_gce_alternatives_warn_with_the_group_name_and_never_pass() {
    let spec = BotsSpec {
        trusted_dimensions: vec!["pool".into()],
        bot_group: vec![
            GroupSpec {
                bot_id_prefix: vec!["sa-".into()],
                auth: vec![AuthSpec { require_service_account: vec!["bot@example.com".into()], ..Default::default() }],
                dimensions: vec!["pool:sa".into()],
                ..Default::default()
            },
            GroupSpec {
                bot_id_prefix: vec!["gce-".into()],
                auth: vec![AuthSpec { require_gce_vm_token: Some("proj".into()), ..Default::default() }],
                dimensions: vec!["pool:gce".into()],
                ..Default::default()
            },
        ],
    };
    let built = build(&spec, &cx()).expect("loads, with warnings");
    let warnings: Vec<String> = built.warnings.iter().map(|p| p.to_string()).collect();
    let has = |s: &str| warnings.iter().any(|w| w.contains(s));
    assert!(has("bot_group[0].auth[0]") && has("bot group bot_id_prefix:sa- never passes"), "{warnings:?}");
    assert!(has("bot_group[1].auth[0]") && has("bot group bot_id_prefix:gce- never passes"), "{warnings:?}");
    let anyone = Presented { peer: Some(ip("10.1.2.3")), bearer: Some("x".into()), ..Default::default() };
    let sa = built.groups.authorize("sa-1", &anyone).expect_err("never passes").to_string();
    assert!(sa.contains("require_service_account never passes"), "{sa}");
    let gce = built.groups.authorize("gce-1", &anyone).expect_err("never passes").to_string();
    assert!(gce.contains("require_gce_vm_token is not supported"), "{gce}");
}

#[test]
fn the_config_version_changes_with_forced_dimensions_and_hooks_only() {
    let g = |dims: &[&str], hook: Option<&str>| BotGroup {
        name: "default".into(),
        auth: Vec::new(),
        dimensions: dims.iter().filter_map(|d| d.split_once(':')).fold(Dimensions::new(), |mut m, (k, v)| {
            m.entry(k.to_string()).or_default().push(v.to_string());
            m
        }),
        owners: Vec::new(),
        hook_script: hook.map(|h| ("hooks.py".to_string(), h.to_string())),
    };
    let base = g(&["pool:a"], None).config_version();
    assert_eq!(base, g(&["pool:a"], None).config_version());
    assert_ne!(base, g(&["pool:b"], None).config_version());
    assert_ne!(base, g(&["pool:a", "pool:b"], None).config_version());
    assert_ne!(base, g(&["pool:a"], Some("x")).config_version());
    let mut owners = g(&["pool:a"], None);
    owners.owners.push("o@example.com".into());
    assert_eq!(base, owners.config_version(), "owners are not sent to bots");
}
