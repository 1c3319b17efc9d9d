//! TaskProperties rules (docs/client-api.md#task-properties): command, timeouts, paths, env,
//! CAS input, outputs, named caches and CIPD input.

use super::dimensions::validate_task_dimensions;
use super::{bad, re};
use crate::error::Result;
use crate::task::{CasReference, CipdInput, CipdPackage, TaskProperties};
use regex::Regex;
use std::sync::LazyLock;

pub const MAX_COMMAND_ARGS: usize = 128;
pub const MIN_TIMEOUT_SECS: i32 = 30;
/// 7 days − 1 hour − 1 minute.
pub const MAX_TIMEOUT_SECS: i32 = 601_140;
pub const MAX_GRACE_PERIOD_SECS: i32 = 3600;
pub const MAX_ENV: usize = 64;
pub const MAX_ENV_KEY_LEN: usize = 64;
pub const MAX_ENV_VALUE_CHARS: usize = 1024;
pub const MAX_OUTPUTS: usize = 4096;
pub const MAX_CACHES: usize = 32;
pub const MAX_CIPD_PACKAGES: usize = 64;

const ENV_KEY_REGEX: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

static CAS_INSTANCE: LazyLock<Regex> = LazyLock::new(|| re(r"^projects/[a-z0-9-]+/instances/[a-z0-9-_]+$"));
static CIPD_TEMPLATE: LazyLock<Regex> = LazyLock::new(|| re(r"\$\{([^}]*)\}"));
static CIPD_TEMPLATE_BODY: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z_]+(=[A-Za-z0-9_\-,.]+)?$"));
static CIPD_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^([a-z0-9_\-\.]+/)*[a-z0-9_\-\.]+$"));
static CIPD_INSTANCE_ID: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:[0-9a-f]{40}|[A-Za-z0-9_\-]{44})$"));
static CIPD_TAG: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z0-9_\-]+:.+$"));
static CIPD_REF: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z0-9_./\-]{1,256}$"));

/// Whether `key` is a valid environment variable name:
/// `^[A-Za-z_][A-Za-z0-9_]*$`, at most 64 characters.
pub fn is_valid_env_key(key: &str) -> bool {
    env_key_problem(key).is_none()
}

fn env_key_problem(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(format!("must match {ENV_KEY_REGEX}"));
    }
    if key.len() > MAX_ENV_KEY_LEN {
        return Some(format!("must be at most {MAX_ENV_KEY_LEN} characters, got {}", key.len()));
    }
    None
}

/// How a relative path field is checked.
#[derive(Clone, Copy)]
struct PathRules {
    max_chars: usize,
    /// `\` is a separator (Windows-style paths), not an error.
    backslash: bool,
    /// `""` is accepted (optional field).
    empty: bool,
    /// `"."` (the run directory itself) is accepted.
    dot: bool,
}

fn path_problem(p: &str, r: PathRules) -> Option<String> {
    if p.is_empty() {
        return if r.empty { None } else { Some("is required".to_string()) };
    }
    let n = p.chars().count();
    if n > r.max_chars {
        return Some(format!("must be at most {} characters, got {n}", r.max_chars));
    }
    if p.contains('\0') {
        return Some("must not contain NUL".to_string());
    }
    if !r.backslash && p.contains('\\') {
        return Some("must not contain backslashes".to_string());
    }
    let is_sep = |c: char| c == '/' || (r.backslash && c == '\\');
    let b = p.as_bytes();
    let drive = r.backslash && b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
    if p.starts_with(is_sep) || drive {
        return Some(format!("must be a relative path, got {p:?}"));
    }
    if p == "." {
        return if r.dot { None } else { Some("must not be the run directory \".\"".to_string()) };
    }
    for seg in p.split(is_sep) {
        if seg == ".." {
            return Some(format!("must not contain \"..\", got {p:?}"));
        }
        if seg.is_empty() || seg == "." {
            return Some(format!("must be normalized, got {p:?}"));
        }
    }
    None
}

fn overlaps(a: &str, b: &str) -> bool {
    fn under(x: &str, dir: &str) -> bool {
        x.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
    }
    a == b || under(a, b) || under(b, a)
}

fn range(field: &str, v: i32, lo: i32, hi: i32) -> Result<()> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(bad(field, format!("must be between {lo} and {hi}, got {v}")))
    }
}

/// Validates one slice's properties; `f` is the field path of the
/// properties, e.g. `task_slices[0].properties`.
pub(crate) fn validate_properties(f: &str, p: &TaskProperties) -> Result<()> {
    if p.command.is_empty() {
        return Err(bad(format!("{f}.command"), "is required"));
    }
    if p.command.len() > MAX_COMMAND_ARGS {
        return Err(bad(
            format!("{f}.command"),
            format!("can have up to {MAX_COMMAND_ARGS} arguments, got {}", p.command.len()),
        ));
    }
    range(&format!("{f}.execution_timeout_secs"), p.execution_timeout_secs, MIN_TIMEOUT_SECS, MAX_TIMEOUT_SECS)?;
    if p.io_timeout_secs != 0 && !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&p.io_timeout_secs) {
        return Err(bad(
            format!("{f}.io_timeout_secs"),
            format!("must be 0 or between {MIN_TIMEOUT_SECS} and {MAX_TIMEOUT_SECS}, got {}", p.io_timeout_secs),
        ));
    }
    range(&format!("{f}.grace_period_secs"), p.grace_period_secs, 0, MAX_GRACE_PERIOD_SECS)?;
    let cwd_rules = PathRules { max_chars: 256, backslash: true, empty: true, dot: true };
    if let Some(e) = path_problem(&p.relative_cwd, cwd_rules) {
        return Err(bad(format!("{f}.relative_cwd"), e));
    }
    validate_env(f, p)?;
    if let Some(cas) = &p.cas_input_root {
        validate_cas(&format!("{f}.cas_input_root"), cas)?;
    }
    validate_outputs(f, &p.outputs)?;
    validate_caches_and_cipd(f, p)?;
    validate_task_dimensions(&format!("{f}.dimensions"), &p.dimensions)
}

fn validate_env(f: &str, p: &TaskProperties) -> Result<()> {
    if p.env.len() > MAX_ENV {
        return Err(bad(format!("{f}.env"), format!("can have up to {MAX_ENV} entries, got {}", p.env.len())));
    }
    for (i, (k, v)) in p.env.iter().enumerate() {
        if let Some(e) = env_key_problem(k) {
            return Err(bad(format!("{f}.env[{i}].key"), e));
        }
        if p.env[..i].iter().any(|(o, _)| o == k) {
            return Err(bad(format!("{f}.env[{i}].key"), format!("duplicate key {k:?}")));
        }
        let n = v.chars().count();
        if n > MAX_ENV_VALUE_CHARS {
            return Err(bad(
                format!("{f}.env[{i}].value"),
                format!("must be at most {MAX_ENV_VALUE_CHARS} characters, got {n}"),
            ));
        }
    }
    if p.env_prefixes.len() > MAX_ENV {
        return Err(bad(
            format!("{f}.env_prefixes"),
            format!("can have up to {MAX_ENV} entries, got {}", p.env_prefixes.len()),
        ));
    }
    let rules = PathRules { max_chars: 1024, backslash: false, empty: false, dot: true };
    for (i, (k, vs)) in p.env_prefixes.iter().enumerate() {
        if let Some(e) = env_key_problem(k) {
            return Err(bad(format!("{f}.env_prefixes[{i}].key"), e));
        }
        if p.env_prefixes[..i].iter().any(|(o, _)| o == k) {
            return Err(bad(format!("{f}.env_prefixes[{i}].key"), format!("duplicate key {k:?}")));
        }
        if vs.is_empty() {
            return Err(bad(format!("{f}.env_prefixes[{i}].value"), "must have at least one path"));
        }
        for (j, v) in vs.iter().enumerate() {
            if let Some(e) = path_problem(v, rules) {
                return Err(bad(format!("{f}.env_prefixes[{i}].value[{j}]"), e));
            }
        }
    }
    Ok(())
}

fn validate_cas(f: &str, cas: &CasReference) -> Result<()> {
    if cas.cas_instance.is_empty() {
        return Err(bad(format!("{f}.cas_instance"), "is required"));
    }
    if !CAS_INSTANCE.is_match(&cas.cas_instance) {
        return Err(bad(
            format!("{f}.cas_instance"),
            format!("must match {}, got {:?}", CAS_INSTANCE.as_str(), cas.cas_instance),
        ));
    }
    let Some(d) = &cas.digest else {
        return Err(bad(format!("{f}.digest"), "is required"));
    };
    if d.hash.is_empty() {
        return Err(bad(format!("{f}.digest.hash"), "is required"));
    }
    if d.size_bytes < 0 {
        return Err(bad(format!("{f}.digest.size_bytes"), format!("must be >= 0, got {}", d.size_bytes)));
    }
    Ok(())
}

fn validate_outputs(f: &str, outputs: &[String]) -> Result<()> {
    if outputs.len() > MAX_OUTPUTS {
        return Err(bad(format!("{f}.outputs"), format!("can have up to {MAX_OUTPUTS} paths, got {}", outputs.len())));
    }
    let rules = PathRules { max_chars: 512, backslash: false, empty: false, dot: false };
    for (i, o) in outputs.iter().enumerate() {
        if let Some(e) = path_problem(o, rules) {
            return Err(bad(format!("{f}.outputs[{i}]"), e));
        }
    }
    Ok(())
}

fn is_cache_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn validate_caches_and_cipd(f: &str, p: &TaskProperties) -> Result<()> {
    if p.caches.len() > MAX_CACHES {
        return Err(bad(format!("{f}.caches"), format!("can have up to {MAX_CACHES} entries, got {}", p.caches.len())));
    }
    let rules = PathRules { max_chars: 256, backslash: false, empty: false, dot: false };
    for (i, c) in p.caches.iter().enumerate() {
        let cf = format!("{f}.caches[{i}]");
        if c.name.is_empty() {
            return Err(bad(format!("{cf}.name"), "is required"));
        }
        if !is_cache_name(&c.name) {
            return Err(bad(format!("{cf}.name"), format!("must match ^[a-z0-9_]+$, got {:?}", c.name)));
        }
        if c.name.len() > 128 {
            return Err(bad(format!("{cf}.name"), format!("must be at most 128 characters, got {}", c.name.len())));
        }
        if let Some(j) = p.caches[..i].iter().position(|o| o.name == c.name) {
            return Err(bad(format!("{cf}.name"), format!("duplicate of {f}.caches[{j}].name {:?}", c.name)));
        }
        if let Some(e) = path_problem(&c.path, rules) {
            return Err(bad(format!("{cf}.path"), e));
        }
        if let Some(j) = p.caches[..i].iter().position(|o| overlaps(&o.path, &c.path)) {
            return Err(bad(
                format!("{cf}.path"),
                format!("{:?} overlaps {f}.caches[{j}].path {:?}", c.path, p.caches[j].path),
            ));
        }
    }
    if let Some(ci) = &p.cipd_input {
        validate_cipd(&format!("{f}.cipd_input"), ci, p.idempotent)?;
        for (i, c) in p.caches.iter().enumerate() {
            for (j, pkg) in ci.packages.iter().enumerate() {
                let root = pkg.path.is_empty() || pkg.path == ".";
                if !root && overlaps(&c.path, &pkg.path) {
                    return Err(bad(
                        format!("{f}.caches[{i}].path"),
                        format!("{:?} overlaps {f}.cipd_input.packages[{j}].path {:?}", c.path, pkg.path),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn cipd_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is required".to_string());
    }
    for caps in CIPD_TEMPLATE.captures_iter(name) {
        let body = caps.get(1).map_or("", |m| m.as_str());
        if !CIPD_TEMPLATE_BODY.is_match(body) {
            return Some(format!("bad template ${{{body}}} in {name:?}"));
        }
    }
    let expanded = CIPD_TEMPLATE.replace_all(name, "x");
    if !CIPD_NAME.is_match(&expanded) {
        return Some(format!("invalid package name {name:?}"));
    }
    None
}

fn cipd_version_problem(version: &str, pinned: bool) -> Option<String> {
    if version.is_empty() {
        return Some("is required".to_string());
    }
    let is_id = CIPD_INSTANCE_ID.is_match(version);
    let is_tag = version.len() <= 400 && CIPD_TAG.is_match(version);
    if is_id || is_tag {
        return None;
    }
    if !CIPD_REF.is_match(version) {
        return Some(format!("invalid version {version:?}"));
    }
    if pinned {
        return Some(format!("idempotent tasks must pin versions (instance id or key:value tag), got ref {version:?}"));
    }
    None
}

fn cipd_server_problem(server: &str) -> Option<String> {
    if server.len() > 1024 {
        return Some("must be at most 1024 characters".to_string());
    }
    let (rest, https) = if let Some(r) = server.strip_prefix("https://") {
        (r, true)
    } else if let Some(r) = server.strip_prefix("http://") {
        (r, false)
    } else {
        return Some(format!("must be an https:// URL, got {server:?}"));
    };
    let hostport = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if hostport.starts_with('[') {
        hostport.split_once(']').map_or(hostport, |(h, _)| h).trim_start_matches('[')
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Some(format!("has no host: {server:?}"));
    }
    if !https && !matches!(host, "localhost" | "127.0.0.1" | "::1") {
        return Some(format!("must be https:// (http only for localhost), got {server:?}"));
    }
    None
}

fn validate_package(f: &str, pkg: &CipdPackage, pinned: bool) -> Result<()> {
    if let Some(e) = cipd_name_problem(&pkg.package_name) {
        return Err(bad(format!("{f}.package_name"), e));
    }
    if let Some(e) = cipd_version_problem(&pkg.version, pinned) {
        return Err(bad(format!("{f}.version"), e));
    }
    Ok(())
}

fn validate_cipd(f: &str, ci: &CipdInput, idempotent: bool) -> Result<()> {
    if !ci.server.is_empty() {
        if let Some(e) = cipd_server_problem(&ci.server) {
            return Err(bad(format!("{f}.server"), e));
        }
    }
    if let Some(cp) = &ci.client_package {
        if !cp.path.is_empty() {
            return Err(bad(format!("{f}.client_package.path"), "must be empty"));
        }
        validate_package(&format!("{f}.client_package"), cp, idempotent)?;
    }
    if ci.packages.len() > MAX_CIPD_PACKAGES {
        return Err(bad(
            format!("{f}.packages"),
            format!("can have up to {MAX_CIPD_PACKAGES} packages, got {}", ci.packages.len()),
        ));
    }
    let rules = PathRules { max_chars: 256, backslash: false, empty: true, dot: true };
    let norm = |p: &str| {
        if p == "." {
            String::new()
        } else {
            p.to_string()
        }
    };
    for (i, pkg) in ci.packages.iter().enumerate() {
        let pf = format!("{f}.packages[{i}]");
        validate_package(&pf, pkg, idempotent)?;
        if let Some(e) = path_problem(&pkg.path, rules) {
            return Err(bad(format!("{pf}.path"), e));
        }
        let dup = ci.packages[..i]
            .iter()
            .position(|o| o.package_name == pkg.package_name && norm(&o.path) == norm(&pkg.path));
        if let Some(j) = dup {
            return Err(bad(
                &pf,
                format!("package {:?} at path {:?} is already listed in {f}.packages[{j}]", pkg.package_name, pkg.path),
            ));
        }
    }
    Ok(())
}
