//! One immutable, validated view of the configuration directory.
//!
//! [`load_dir`] reads every file, parses each, validates each and across
//! files, and compiles what requests need (groups flattened, globs compiled,
//! realms expanded into permission → principals) so a request never walks
//! the raw files.

use crate::access_toml::{self, AccessToml};
use crate::error::{ConfigError, Errors};
use crate::pb;
use crate::roles;
use crate::text;
use ipnet::IpNet;
use regex::Regex;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const ACCESS_TOML: &str = "access.toml";
pub const POOLS_CFG: &str = "pools.cfg";
pub const SETTINGS_CFG: &str = "settings.cfg";
pub const REALMS_CFG: &str = "realms.cfg";
pub const BOTS_CFG: &str = "bots.cfg";
pub const IP_ALLOWLIST_CFG: &str = "ip_allowlist.cfg";
pub const NOTIFICATIONS_TOML: &str = "notifications.toml";
pub const REALMS_DIR: &str = "realms";

/// Built-in groups: every identity / every identity but anonymous.
pub const GROUP_ALL: &str = "all";
pub const GROUP_AUTHENTICATED: &str = "authenticated-users";
pub const ADMINISTRATORS: &str = "administrators";
pub const ANONYMOUS: &str = "anonymous:anonymous";

/// How the directory is interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Project of `realms.cfg` and of `[[pool]]` shorthand realms.
    pub default_project: String,
    /// `muster dev`: anonymous callers are administrators and `group:all`
    /// may use every pool.
    pub dev: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { default_project: "muster".to_string(), dev: false }
    }
}

/// A pool as the access checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEntry {
    /// `<project>:<realm>` holding the pool permissions (none: server-level grants only).
    pub realm: Option<String>,
    /// Realm of tasks submitted without one.
    pub default_task_realm: Option<String>,
    pub informational_dimension_re: Vec<String>,
}

/// Server-level group names from settings.cfg `auth` (upstream Go defaults:
/// the admins group is `administrators`, every other unset one is the admins group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerGroups {
    pub admins: String,
    pub bot_bootstrap: String,
    pub privileged_users: String,
    pub users: String,
    pub view_all_bots: String,
    pub view_all_tasks: String,
}

/// A group with nesting flattened.
#[derive(Debug, Clone, Default)]
pub struct FlatGroup {
    pub members: BTreeSet<String>,
    pub globs: Vec<Regex>,
    /// This group and every group nested in it, transitively.
    pub includes: BTreeSet<String>,
}

/// The validated configuration. Never changes once built.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// SHA-256 over the sorted (path, length, content) of the files read.
    pub digest: String,
    pub options: LoadOptions,
    /// Whether `access.toml` exists (without it a server trusts loopback only).
    pub has_access_toml: bool,
    pub access: AccessToml,
    pub settings: pb::SettingsCfg,
    pub server_groups: ServerGroups,
    pub pools_cfg: pb::PoolsCfg,
    pub pools: BTreeMap<String, PoolEntry>,
    /// `bots.cfg` as parsed, if present.
    pub bots: Option<pb::BotsCfg>,
    /// The bot groups of bots.cfg and `[[bot_auth]]`, validated; None when
    /// neither exists (the server's bot flags then make the default group).
    pub bot_groups: Option<std::sync::Arc<muster_botauth::BotGroups>>,
    /// Named IP allowlists from `ip_allowlist.cfg` and `access.toml`, includes resolved.
    pub ip_allowlists: BTreeMap<String, Vec<IpNet>>,
    pub groups: BTreeMap<String, FlatGroup>,
    /// `<project>:<realm>` → permission → principals (`group:…` or identities),
    /// with `@root` and `extends` folded in.
    pub realms: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Problems that do not block loading ("ignored by muster").
    pub warnings: Vec<ConfigError>,
    /// `notifications.toml` (no sinks when absent).
    pub notifications: crate::notifications_toml::Notifications,
}

impl Snapshot {
    /// The snapshot of an empty directory.
    pub fn empty(options: LoadOptions) -> Snapshot {
        #[allow(clippy::expect_used)]
        build(&Files::default(), options).expect("an empty configuration is valid")
    }

    /// Whether `identity` (plus groups granted by the connection, e.g. a
    /// loopback administrator) is in `group`.
    pub fn is_member(&self, identity: &str, extra_groups: &[String], group: &str) -> bool {
        if group == GROUP_ALL {
            return true;
        }
        if group == GROUP_AUTHENTICATED {
            return identity != ANONYMOUS;
        }
        if extra_groups.iter().any(|g| g == group) {
            return true;
        }
        let Some(g) = self.groups.get(group) else { return false };
        if g.members.contains(identity) || g.globs.iter().any(|r| r.is_match(identity)) {
            return true;
        }
        extra_groups.iter().any(|e| g.includes.contains(e))
    }

    /// Whether a principal (`group:x` or an identity) covers the caller.
    pub fn principal_matches(&self, principal: &str, identity: &str, extra_groups: &[String]) -> bool {
        match principal.strip_prefix("group:") {
            Some(g) => self.is_member(identity, extra_groups, g),
            None => principal == identity,
        }
    }

    /// Whether the caller has `perm` in `realm` (`<project>:<name>`); a realm
    /// that does not exist falls back to its project's `@root`.
    pub fn has_realm_permission(&self, identity: &str, extra_groups: &[String], realm: &str, perm: &str) -> bool {
        let perms = match self.realms.get(realm) {
            Some(p) => Some(p),
            None => {
                let project = realm.split_once(':').map(|(p, _)| p).unwrap_or(realm);
                self.realms.get(&format!("{project}:@root"))
            }
        };
        perms
            .and_then(|p| p.get(perm))
            .is_some_and(|principals| principals.iter().any(|p| self.principal_matches(p, identity, extra_groups)))
    }

    /// The pool's entry; a pool no file names lives in the default project's
    /// `@root` realm only when no pool is configured at all (zero-config).
    pub fn pool(&self, name: &str) -> Option<PoolEntry> {
        if let Some(p) = self.pools.get(name) {
            return Some(p.clone());
        }
        if self.pools.is_empty() {
            let root = format!("{}:@root", self.options.default_project);
            return Some(PoolEntry {
                realm: Some(root.clone()),
                default_task_realm: None,
                informational_dimension_re: Vec::new(),
            });
        }
        None
    }

    /// Whether an address is in a named allowlist.
    pub fn ip_in_allowlist(&self, name: &str, ip: IpAddr) -> Option<bool> {
        self.ip_allowlists.get(name).map(|nets| nets.iter().any(|n| n.contains(&ip)))
    }
}

/// The raw files of a directory: name (relative) → content.
#[derive(Debug, Clone, Default)]
pub struct Files(pub BTreeMap<String, String>);

impl Files {
    /// Reads the known files of `dir` (a missing directory is an empty set).
    pub fn read(dir: &Path) -> Result<Files, Errors> {
        let mut files = BTreeMap::new();
        let mut errors = Errors::default();
        let mut names: Vec<(String, PathBuf)> =
            [ACCESS_TOML, POOLS_CFG, SETTINGS_CFG, REALMS_CFG, BOTS_CFG, IP_ALLOWLIST_CFG, NOTIFICATIONS_TOML]
                .iter()
                .map(|n| (n.to_string(), dir.join(n)))
                .collect();
        if let Ok(rd) = std::fs::read_dir(dir.join(crate::bots::SCRIPTS_DIR)) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.ends_with(".py") {
                    names.push((format!("{}/{n}", crate::bots::SCRIPTS_DIR), e.path()));
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(dir.join(REALMS_DIR)) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.ends_with(".cfg") {
                    names.push((format!("{REALMS_DIR}/{n}"), e.path()));
                }
            }
        }
        for (name, path) in names {
            match std::fs::read_to_string(&path) {
                Ok(t) => {
                    files.insert(name, t);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(ConfigError::file(path.display().to_string(), format!("cannot read: {e}"))),
            }
        }
        if errors.is_empty() {
            Ok(Files(files))
        } else {
            Err(errors)
        }
    }

    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (name, content) in &self.0 {
            h.update((name.len() as u64).to_be_bytes());
            h.update(name.as_bytes());
            h.update((content.len() as u64).to_be_bytes());
            h.update(content.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Reads, parses, validates and compiles the directory.
pub fn load_dir(dir: &Path, options: LoadOptions) -> Result<Snapshot, Errors> {
    let files = Files::read(dir)?;
    build(&files, options)
}

fn realm_name_ok(realm: &str) -> bool {
    static PROJECT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    static NAME: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    #[allow(clippy::expect_used)]
    let project = PROJECT.get_or_init(|| Regex::new(r"^([a-z0-9\-_]{1,100}|@internal)$").expect("regex"));
    #[allow(clippy::expect_used)]
    let name = NAME.get_or_init(|| Regex::new(r"^([a-z0-9_.\-/]{1,400}|@root|@legacy|@project)$").expect("regex"));
    match realm.split_once(':') {
        Some((p, r)) => project.is_match(p) && name.is_match(r),
        None => false,
    }
}

/// Checks an identity's syntax (`kind:value`).
pub fn identity_ok(id: &str) -> bool {
    match id.split_once(':') {
        Some(("anonymous", v)) => v == "anonymous",
        Some(("user" | "bot" | "project" | "service", v)) => {
            !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "._:/@+-".contains(c))
        }
        _ => false,
    }
}

fn glob_regex(glob: &str) -> Option<Regex> {
    let (kind, pattern) = glob.split_once(':')?;
    if !matches!(kind, "user" | "bot" | "project" | "service") {
        return None;
    }
    let parts: Vec<String> = pattern.split('*').map(regex::escape).collect();
    Regex::new(&format!("^{}:{}$", regex::escape(kind), parts.join(".*"))).ok()
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Validates and compiles a set of files.
pub fn build(files: &Files, options: LoadOptions) -> Result<Snapshot, Errors> {
    let mut errors = Errors::default();
    let mut warnings = Vec::new();
    let get = |n: &str| files.0.get(n).map(String::as_str);

    // 1. Parse every file.
    let access = match get(ACCESS_TOML) {
        Some(t) => access_toml::parse(ACCESS_TOML, t).map_err(|e| errors.push(e)).unwrap_or_default(),
        None => AccessToml::default(),
    };
    let settings: pb::SettingsCfg = parse_or(&mut errors, SETTINGS_CFG, get(SETTINGS_CFG));
    let pools_cfg: pb::PoolsCfg = parse_or(&mut errors, POOLS_CFG, get(POOLS_CFG));
    let bots: Option<pb::BotsCfg> = get(BOTS_CFG).map(|t| parse_or(&mut errors, BOTS_CFG, Some(t)));
    let ip_cfg: pb::IpAllowlistConfig = parse_or(&mut errors, IP_ALLOWLIST_CFG, get(IP_ALLOWLIST_CFG));
    let mut realms_files: BTreeMap<String, (String, pb::RealmsCfg)> = BTreeMap::new();
    for (name, t) in &files.0 {
        let project = if name == REALMS_CFG {
            options.default_project.clone()
        } else if let Some(p) = name.strip_prefix(&format!("{REALMS_DIR}/")).and_then(|n| n.strip_suffix(".cfg")) {
            p.to_string()
        } else {
            continue;
        };
        if realms_files.contains_key(&project) {
            errors.push(ConfigError::file(
                name,
                format!("realms of project {project:?} are also defined in another file (one source per project)"),
            ));
            continue;
        }
        let cfg: pb::RealmsCfg = parse_or(&mut errors, name, Some(t));
        realms_files.insert(project, (name.clone(), cfg));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let access_text = get(ACCESS_TOML).unwrap_or("");

    // 2. Settings.
    let server_groups = server_groups(&settings);
    let st = get(SETTINGS_CFG).unwrap_or("");
    if settings.reusable_task_age_secs < 0 {
        errors.push(ConfigError::near(
            SETTINGS_CFG,
            st,
            "reusable_task_age_secs",
            "reusable_task_age_secs must be >= 0",
        ));
    }
    if settings.bot_death_timeout_secs < 0 {
        errors.push(ConfigError::near(
            SETTINGS_CFG,
            st,
            "bot_death_timeout_secs",
            "bot_death_timeout_secs must be >= 0",
        ));
    }
    let tmpl = &settings.display_server_url_template;
    if !tmpl.is_empty() && (tmpl.matches("%s").count() != 1 || !tmpl.starts_with("https://")) {
        errors.push(ConfigError::near(
            SETTINGS_CFG,
            st,
            tmpl,
            "display_server_url_template must be an https:// URL with exactly one %s",
        ));
    }

    // 3. Groups: access.toml plus dev overlay, flattened.
    let mut group_defs = access.groups.clone();
    if options.dev {
        group_defs.entry(ADMINISTRATORS.to_string()).or_default().members.push(ANONYMOUS.to_string());
    }
    for (name, g) in &group_defs {
        if name == GROUP_ALL || name == GROUP_AUTHENTICATED {
            errors.push(ConfigError::near(ACCESS_TOML, access_text, name, format!("group {name:?} is built in")));
        }
        for m in &g.members {
            if !identity_ok(m) {
                errors.push(ConfigError::near(
                    ACCESS_TOML,
                    access_text,
                    m,
                    format!("group {name:?}: {m:?} is not an identity (user:…, bot:…, project:…, service:…)"),
                ));
            }
        }
        for gl in &g.globs {
            if glob_regex(gl).is_none() {
                errors.push(ConfigError::near(
                    ACCESS_TOML,
                    access_text,
                    gl,
                    format!("group {name:?}: bad glob {gl:?}"),
                ));
            }
        }
        for n in &g.nested {
            if !group_defs.contains_key(n) && n != GROUP_ALL && n != GROUP_AUTHENTICATED {
                errors.push(ConfigError::near(
                    ACCESS_TOML,
                    access_text,
                    n,
                    format!("group {name:?} nests unknown group {n:?}"),
                ));
            }
        }
    }
    let mut groups = BTreeMap::new();
    for name in group_defs.keys() {
        let mut includes = BTreeSet::new();
        let mut stack = vec![(name.clone(), vec![name.clone()])];
        let mut cycle = None;
        while let Some((g, path)) = stack.pop() {
            if !includes.insert(g.clone()) {
                continue;
            }
            if let Some(def) = group_defs.get(&g) {
                for n in &def.nested {
                    if path.contains(n) {
                        let mut p = path.clone();
                        p.push(n.clone());
                        cycle = Some(p.join(" → "));
                    } else {
                        let mut p = path.clone();
                        p.push(n.clone());
                        stack.push((n.clone(), p));
                    }
                }
            }
        }
        if let Some(c) = cycle {
            errors.push(ConfigError::near(ACCESS_TOML, access_text, name, format!("group nesting cycle: {c}")));
            continue;
        }
        let mut flat = FlatGroup { includes: includes.clone(), ..Default::default() };
        for g in &includes {
            if let Some(def) = group_defs.get(g) {
                flat.members.extend(def.members.iter().cloned());
                flat.globs.extend(def.globs.iter().filter_map(|g| glob_regex(g)));
            }
        }
        groups.insert(name.clone(), flat);
    }
    let known_group = |g: &str| {
        g == GROUP_ALL
            || g == GROUP_AUTHENTICATED
            || g == ADMINISTRATORS
            || group_defs.contains_key(g)
            || [
                &server_groups.admins,
                &server_groups.bot_bootstrap,
                &server_groups.privileged_users,
                &server_groups.users,
                &server_groups.view_all_bots,
                &server_groups.view_all_tasks,
            ]
            .iter()
            .any(|s| s.as_str() == g)
    };

    // 4. IP allowlists: ip_allowlist.cfg and access.toml, one source per name.
    let it = get(IP_ALLOWLIST_CFG).unwrap_or("");
    let mut raw_lists: BTreeMap<String, (Vec<String>, Vec<String>, &'static str)> = BTreeMap::new();
    for l in &ip_cfg.ip_allowlists {
        if raw_lists.insert(l.name.clone(), (l.subnets.clone(), l.includes.clone(), IP_ALLOWLIST_CFG)).is_some() {
            errors.push(ConfigError::near(
                IP_ALLOWLIST_CFG,
                it,
                &l.name,
                format!("IP allowlist {:?} defined twice", l.name),
            ));
        }
    }
    for (name, nets) in &access.ip_allowlists {
        if raw_lists.contains_key(name) {
            errors.push(ConfigError::near(
                ACCESS_TOML,
                access_text,
                name,
                format!(
                    "IP allowlist {name:?} is defined in both ip_allowlist.cfg and access.toml (one source per name)"
                ),
            ));
        }
        raw_lists.insert(name.clone(), (nets.clone(), Vec::new(), ACCESS_TOML));
    }
    let mut ip_allowlists = BTreeMap::new();
    for (name, (_, _, file)) in &raw_lists {
        let text = if *file == ACCESS_TOML { access_text } else { it };
        let mut seen = BTreeSet::new();
        let mut stack = vec![name.clone()];
        let mut nets = Vec::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            match raw_lists.get(&n) {
                Some((subnets, includes, _)) => {
                    for s in subnets {
                        match parse_net(s) {
                            Some(net) => nets.push(net),
                            None if n == *name => errors.push(ConfigError::near(
                                *file,
                                text,
                                s,
                                format!("IP allowlist {name:?}: {s:?} is not a subnet or address"),
                            )),
                            None => {}
                        }
                    }
                    stack.extend(includes.iter().cloned());
                }
                None => errors.push(ConfigError::near(
                    *file,
                    text,
                    &n,
                    format!("IP allowlist {name:?} includes unknown allowlist {n:?}"),
                )),
            }
        }
        ip_allowlists.insert(name.clone(), nets);
    }

    // 5. OIDC, proxy.
    for o in &access.oidc {
        let local = o.issuer.starts_with("http://127.0.0.1") || o.issuer.starts_with("http://localhost");
        if !(o.issuer.starts_with("https://") || local) {
            errors.push(ConfigError::near(ACCESS_TOML, access_text, &o.issuer, "oidc issuer must be an https:// URL"));
        }
        if o.audiences.is_empty() {
            errors.push(ConfigError::near(ACCESS_TOML, access_text, &o.issuer, "oidc: audiences must not be empty"));
        }
        let kind = o.identity.split_once(':').map(|(k, _)| k);
        if !matches!(kind, Some("user" | "service" | "project" | "bot")) || !o.identity.contains('{') {
            errors.push(ConfigError::near(
                ACCESS_TOML,
                access_text,
                &o.identity,
                "oidc identity must look like \"user:{email}\" or \"service:<prefix>{claim}\"",
            ));
        }
    }
    for o in access.oidc.iter().filter(|o| o.client_id.is_some()) {
        let rest = o.redirect_path.strip_prefix("/ui/signin/").unwrap_or("");
        let ok = !rest.is_empty()
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'.'));
        if !ok {
            errors.push(ConfigError::near(
                ACCESS_TOML,
                access_text,
                &o.redirect_path,
                "oidc redirect_path must be a path under /ui/signin/ (default /ui/signin/callback)",
            ));
        }
        if !o.scopes.iter().any(|s| s == "openid") {
            errors.push(ConfigError::near(ACCESS_TOML, access_text, &o.issuer, "oidc scopes must include \"openid\""));
        }
    }
    if access.oidc.iter().map(|o| &o.issuer).collect::<BTreeSet<_>>().len() != access.oidc.len() {
        errors.push(ConfigError::file(ACCESS_TOML, "oidc: each issuer may be listed once"));
    }
    if let Some(p) = &access.proxy {
        for c in &p.trusted_cidrs {
            if parse_net(c).is_none() {
                errors.push(ConfigError::near(ACCESS_TOML, access_text, c, format!("proxy: {c:?} is not a subnet")));
            }
        }
    }

    // 6. Pools: pools.cfg or [[pool]] shorthand, never both.
    let pt = get(POOLS_CFG).unwrap_or("");
    let mut pools = BTreeMap::new();
    let mut shorthand_realms: Vec<pb::auth_service::Realm> = Vec::new();
    if get(POOLS_CFG).is_some() && !access.pool.is_empty() {
        errors.push(ConfigError::near(
            ACCESS_TOML,
            access_text,
            "[[pool]]",
            "[[pool]] shorthand cannot be combined with pools.cfg (one source per concept)",
        ));
    }
    for p in &pools_cfg.pool {
        let first = p.name.first().cloned().unwrap_or_default();
        if p.name.is_empty() {
            errors.push(ConfigError::near(POOLS_CFG, pt, "pool", "pool: at least one name is required"));
        }
        if let Some(r) = p.realm.as_str().into() {
            if !r.is_empty() && !realm_name_ok(r) {
                errors.push(ConfigError::near(POOLS_CFG, pt, r, format!("pool {first:?}: bad realm name {r:?}")));
            }
            if r.is_empty() {
                warnings.push(ConfigError::near(
                    POOLS_CFG,
                    pt,
                    &first,
                    format!("pool {first:?} has no realm: only server-level grants reach it"),
                ));
            }
        }
        let dtr = &p.default_task_realm;
        if !dtr.is_empty() && !realm_name_ok(dtr) {
            errors.push(ConfigError::near(
                POOLS_CFG,
                pt,
                dtr,
                format!("pool {first:?}: bad default_task_realm {dtr:?}"),
            ));
        }
        for re in &p.informational_dimension_re {
            if Regex::new(re).is_err() {
                errors.push(ConfigError::near(POOLS_CFG, pt, re, format!("pool {first:?}: bad regexp {re:?}")));
            }
        }
        let ignored = [
            (p.schedulers.is_some(), "schedulers"),
            (!p.bot_monitoring.is_empty(), "bot_monitoring"),
            (!p.enforced_realm_permissions.is_empty(), "enforced_realm_permissions"),
            (!p.external_schedulers.is_empty(), "external_schedulers"),
            (p.rbe_migration.is_some(), "rbe_migration"),
            (!p.allowed_service_account.is_empty(), "allowed_service_account"),
            (!p.allowed_service_account_group.is_empty(), "allowed_service_account_group"),
        ];
        for (set, field) in ignored {
            if set {
                warnings.push(ConfigError::near(
                    POOLS_CFG,
                    pt,
                    field,
                    format!("pool {first:?}: {field} is ignored by muster"),
                ));
            }
        }
        for n in &p.name {
            let entry = PoolEntry {
                realm: (!p.realm.is_empty()).then(|| p.realm.clone()),
                default_task_realm: (!dtr.is_empty()).then(|| dtr.clone()),
                informational_dimension_re: p.informational_dimension_re.clone(),
            };
            if n.is_empty() || n.contains(':') || n.trim() != n {
                errors.push(ConfigError::near(POOLS_CFG, pt, n, format!("bad pool name {n:?}")));
            }
            if pools.insert(n.clone(), entry).is_some() {
                errors.push(ConfigError::near(POOLS_CFG, pt, n, format!("pool {n:?} is defined more than once")));
            }
        }
    }
    let project = &options.default_project;
    for p in &access.pool {
        let realm_name = p.realm.clone().unwrap_or_else(|| format!("pool/{}", p.name));
        let realm = format!("{project}:{realm_name}");
        if !realm_name_ok(&realm) {
            errors.push(ConfigError::near(
                ACCESS_TOML,
                access_text,
                &p.name,
                format!("pool {:?}: bad realm {realm:?}", p.name),
            ));
        }
        let entry = PoolEntry {
            realm: Some(realm.clone()),
            default_task_realm: Some(realm.clone()),
            informational_dimension_re: Vec::new(),
        };
        if pools.insert(p.name.clone(), entry).is_some() {
            errors.push(ConfigError::near(
                ACCESS_TOML,
                access_text,
                &p.name,
                format!("pool {:?} is defined more than once", p.name),
            ));
        }
        let bind = |role: &str, who: &[String]| pb::auth_service::Binding {
            role: role.to_string(),
            principals: who.to_vec(),
            conditions: Vec::new(),
        };
        let mut bindings = Vec::new();
        for role in [roles::POOL_OWNER_ROLE, roles::POOL_USER_ROLE, roles::TASK_TRIGGERER_ROLE] {
            bindings.push(bind(role, &p.owners));
        }
        for role in [roles::POOL_USER_ROLE, roles::TASK_TRIGGERER_ROLE] {
            bindings.push(bind(role, &p.submitters));
        }
        for role in [roles::POOL_VIEWER_ROLE, roles::TASK_VIEWER_ROLE] {
            bindings.push(bind(role, &p.viewers));
        }
        bindings.retain(|b| !b.principals.is_empty());
        shorthand_realms.push(pb::auth_service::Realm {
            name: realm_name,
            extends: Vec::new(),
            bindings,
            enforce_in_service: Vec::new(),
        });
    }

    // 7. Realms: per project, @root implicit, extends and custom roles expanded.
    let default_realms_file = realms_files.get(project).map(|(f, _)| f.clone());
    let mut projects: BTreeMap<String, (String, pb::RealmsCfg)> = realms_files;
    if !shorthand_realms.is_empty() {
        let entry =
            projects.entry(project.clone()).or_insert_with(|| (ACCESS_TOML.to_string(), pb::RealmsCfg::default()));
        for r in shorthand_realms {
            if entry.1.realms.iter().any(|x| x.name == r.name) {
                errors.push(ConfigError::near(
                    ACCESS_TOML,
                    access_text,
                    &r.name,
                    format!(
                        "realm {:?} is defined by both [[pool]] shorthand and {} (one source per concept)",
                        r.name,
                        default_realms_file.clone().unwrap_or_default()
                    ),
                ));
            } else {
                entry.1.realms.push(r);
            }
        }
    }
    // Zero-config defaults: dev lets everyone use every pool; a server
    // without access.toml and realms lets its (loopback) administrators.
    let zero_config = projects.is_empty() && get(ACCESS_TOML).is_none();
    if options.dev || zero_config {
        let principal = if options.dev { format!("group:{GROUP_ALL}") } else { format!("group:{ADMINISTRATORS}") };
        let entry =
            projects.entry(project.clone()).or_insert_with(|| ("(built-in)".to_string(), pb::RealmsCfg::default()));
        let root = match entry.1.realms.iter_mut().position(|r| r.name == "@root") {
            Some(i) => i,
            None => {
                entry.1.realms.push(pb::auth_service::Realm { name: "@root".to_string(), ..Default::default() });
                entry.1.realms.len() - 1
            }
        };
        for role in [roles::POOL_OWNER_ROLE, roles::POOL_USER_ROLE, roles::TASK_TRIGGERER_ROLE] {
            entry.1.realms[root].bindings.push(pb::auth_service::Binding {
                role: role.to_string(),
                principals: vec![principal.clone()],
                conditions: Vec::new(),
            });
        }
    }
    let mut realms = BTreeMap::new();
    for (project, (file, cfg)) in &projects {
        let text = get(file).unwrap_or("");
        compile_project(project, file, text, cfg, &known_group, &mut realms, &mut errors, &mut warnings);
    }
    let scripts: BTreeMap<String, String> = files
        .0
        .iter()
        .filter_map(|(n, t)| {
            n.strip_prefix(&format!("{}/", crate::bots::SCRIPTS_DIR)).map(|s| (s.to_string(), t.clone()))
        })
        .collect();
    let bot_groups = crate::bots::build(
        bots.as_ref(),
        get(BOTS_CFG).unwrap_or(""),
        &access,
        get(ACCESS_TOML).unwrap_or(""),
        &ip_allowlists,
        &scripts,
        &mut errors,
        &mut warnings,
    );
    let notifications = match get(NOTIFICATIONS_TOML) {
        Some(t) => crate::notifications_toml::parse(NOTIFICATIONS_TOML, t).unwrap_or_else(|es| {
            for e in es {
                errors.push(e);
            }
            Default::default()
        }),
        None => Default::default(),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Snapshot {
        notifications,
        digest: files.digest(),
        options,
        has_access_toml: get(ACCESS_TOML).is_some(),
        access,
        settings,
        server_groups,
        pools_cfg,
        pools,
        bots,
        bot_groups,
        ip_allowlists,
        groups,
        realms,
        warnings,
    })
}

fn parse_or<T: text::ConfigMessage>(errors: &mut Errors, file: &str, t: Option<&str>) -> T {
    match t {
        Some(t) => text::parse::<T>(file, t).map_err(|e| errors.push(e)).unwrap_or_default(),
        None => T::default(),
    }
}

fn server_groups(s: &pb::SettingsCfg) -> ServerGroups {
    let a = s.auth.clone().unwrap_or_default();
    let admins = if a.admins_group.is_empty() { ADMINISTRATORS.to_string() } else { a.admins_group };
    let or_admins = |g: String| if g.is_empty() { admins.clone() } else { g };
    ServerGroups {
        bot_bootstrap: or_admins(a.bot_bootstrap_group),
        privileged_users: or_admins(a.privileged_users_group),
        users: or_admins(a.users_group),
        view_all_bots: or_admins(a.view_all_bots_group),
        view_all_tasks: or_admins(a.view_all_tasks_group),
        admins,
    }
}

#[allow(clippy::too_many_arguments)]
fn compile_project(
    project: &str,
    file: &str,
    text: &str,
    cfg: &pb::RealmsCfg,
    known_group: &dyn Fn(&str) -> bool,
    out: &mut BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    errors: &mut Errors,
    warnings: &mut Vec<ConfigError>,
) {
    // Custom roles → permissions.
    let custom: BTreeMap<&str, &pb::auth_service::CustomRole> =
        cfg.custom_roles.iter().map(|r| (r.name.as_str(), r)).collect();
    for r in &cfg.custom_roles {
        if !r.name.starts_with("customRole/") {
            errors.push(ConfigError::near(
                file,
                text,
                &r.name,
                format!("custom role {:?} must start with customRole/", r.name),
            ));
        }
    }
    let role_perms = |role: &str, errors: &mut Errors| -> Option<BTreeSet<String>> {
        let mut perms = BTreeSet::new();
        let mut stack = vec![(role.to_string(), vec![role.to_string()])];
        let mut seen = BTreeSet::new();
        while let Some((r, path)) = stack.pop() {
            if !seen.insert(r.clone()) {
                continue;
            }
            if let Some(p) = roles::builtin(&r) {
                perms.extend(p.iter().map(|s| s.to_string()));
            } else if let Some(c) = custom.get(r.as_str()) {
                perms.extend(c.permissions.iter().cloned());
                for e in &c.extends {
                    if path.contains(e) {
                        errors.push(ConfigError::near(
                            file,
                            text,
                            e,
                            format!("custom role cycle: {} → {e}", path.join(" → ")),
                        ));
                        return None;
                    }
                    let mut p = path.clone();
                    p.push(e.clone());
                    stack.push((e.clone(), p));
                }
            } else {
                errors.push(ConfigError::near(file, text, &r, format!("unknown role {r:?}")));
                return None;
            }
        }
        Some(perms)
    };
    // Direct grants per realm.
    let mut direct: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut names = BTreeSet::new();
    for realm in &cfg.realms {
        if !names.insert(realm.name.clone()) {
            errors.push(ConfigError::near(file, text, &realm.name, format!("realm {:?} is defined twice", realm.name)));
        }
        if !realm_name_ok(&format!("{project}:{}", realm.name)) {
            errors.push(ConfigError::near(file, text, &realm.name, format!("bad realm name {:?}", realm.name)));
        }
        let grants = direct.entry(realm.name.clone()).or_default();
        for b in &realm.bindings {
            let Some(perms) = role_perms(&b.role, errors) else { continue };
            for p in &b.principals {
                match p.strip_prefix("group:") {
                    Some(g) if !known_group(g) => errors.push(ConfigError::near(
                        file,
                        text,
                        p,
                        format!("unknown group {g:?} in realm {:?}", realm.name),
                    )),
                    None if !identity_ok(p) => errors.push(ConfigError::near(
                        file,
                        text,
                        p,
                        format!("{p:?} is neither an identity nor group:<name>"),
                    )),
                    _ => {}
                }
            }
            if !b.conditions.is_empty() {
                warnings.push(ConfigError::near(
                    file,
                    text,
                    &b.role,
                    format!("realm {:?}: conditional binding never grants swarming permissions", realm.name),
                ));
                continue;
            }
            for perm in perms {
                grants.entry(perm).or_default().extend(b.principals.iter().cloned());
            }
        }
        for e in &realm.extends {
            if !cfg.realms.iter().any(|r| &r.name == e) && e != "@root" {
                errors.push(ConfigError::near(
                    file,
                    text,
                    e,
                    format!("realm {:?} extends unknown realm {e:?}", realm.name),
                ));
            }
        }
    }
    direct.entry("@root".to_string()).or_default();
    let extends: BTreeMap<&str, Vec<&str>> =
        cfg.realms.iter().map(|r| (r.name.as_str(), r.extends.iter().map(String::as_str).collect())).collect();
    for name in direct.keys() {
        let mut all: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut stack = vec![(name.as_str(), vec![name.as_str()])];
        let mut seen = BTreeSet::new();
        let mut cyclic = false;
        if name != "@root" {
            stack.push(("@root", vec![name.as_str(), "@root"]));
        }
        while let Some((r, path)) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            if let Some(g) = direct.get(r) {
                for (perm, who) in g {
                    all.entry(perm.clone()).or_default().extend(who.iter().cloned());
                }
            }
            for e in extends.get(r).into_iter().flatten() {
                if path.contains(e) {
                    if !cyclic {
                        errors.push(ConfigError::near(
                            file,
                            text,
                            e,
                            format!("realm extends cycle: {} → {e}", path.join(" → ")),
                        ));
                    }
                    cyclic = true;
                    continue;
                }
                let mut p = path.clone();
                p.push(e);
                stack.push((e, p));
            }
        }
        out.insert(format!("{project}:{name}"), all);
    }
}
