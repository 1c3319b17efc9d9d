//! bots.cfg into bot groups: the upstream example's meaning, error positions.

use muster_config::snapshot::LoadOptions;
use muster_config::{load_dir, ConfigHolder};

#[test]
fn the_upstream_example_yields_its_groups_with_the_hooks_script() {
    let dir = crate::copy_upstream();
    let snap = load_dir(dir.path(), LoadOptions::default()).expect("loads");
    let groups = snap.bot_groups.clone().expect("bots.cfg gives groups");
    let g = groups.select("build07-linux").expect("listed id");
    assert_eq!(groups.group(g).dimensions.get("pool"), Some(&vec!["ci".to_string()]));
    let (name, body) = groups.group(g).hook_script.clone().expect("hooks script");
    assert_eq!(name, "linux_hooks.py");
    assert!(body.contains("get_dimensions"));
    let d = groups.select("somebody-else").expect("default group");
    assert_eq!(groups.group(d).dimensions.get("pool"), Some(&vec!["unassigned".to_string()]));
}

#[test]
fn bad_groups_are_errors_with_a_file_position_and_a_reload_keeps_the_old_groups() {
    let dir = crate::copy_upstream();
    let holder = ConfigHolder::load(dir.path(), LoadOptions::default()).expect("loads");
    std::fs::write(
        dir.path().join("bots.cfg"),
        "bot_group {\n  bot_id_prefix: \"vm\"\n  auth { ip_whitelist: \"office\" }\n}\n\
         bot_group {\n  bot_id_prefix: \"vm1\"\n  auth { ip_whitelist: \"office\" }\n}\n",
    )
    .expect("write");
    let errors = holder.reload().expect_err("ambiguous prefixes refused");
    let text = errors.to_string();
    assert!(text.contains("bots.cfg:5:") && text.contains("ambiguous"), "{text}");
    assert!(holder.get().bot_groups.as_ref().is_some_and(|g| g.select("build01-linux").is_some()));
    std::fs::remove_file(dir.path().join("scripts/linux_hooks.py")).expect("rm");
    std::fs::write(
        dir.path().join("bots.cfg"),
        std::fs::read_to_string(crate::upstream_dir().join("bots.cfg")).expect("read"),
    )
    .expect("write");
    let errors = holder.reload().expect_err("missing hooks script refused");
    assert!(errors.to_string().contains("scripts/linux_hooks.py does not exist"), "{errors}");
}

/// Auth alternatives muster cannot check load (upstream files stay valid)
/// with a warning that places them in bots.cfg and names their group.
#[test]
fn a_service_account_alternative_loads_with_a_warning_naming_its_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bots.cfg"),
        "bot_group {\n  bot_id_prefix: \"sa-\"\n  auth { require_service_account: \"bot@example.com\" }\n  dimensions: \"pool:sa\"\n}\n",
    )
    .expect("write");
    let snap = load_dir(dir.path(), LoadOptions::default()).expect("loads");
    let text: Vec<String> = snap.warnings.iter().map(|w| w.to_string()).collect();
    let w = text.iter().find(|w| w.contains("require_service_account")).expect("a warning");
    assert!(w.starts_with("bots.cfg:") && w.contains("bot_group[0].auth[0]"), "{w}");
    assert!(w.contains("bot group bot_id_prefix:sa- never passes"), "{w}");
}
