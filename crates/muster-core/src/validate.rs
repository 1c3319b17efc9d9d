//! Validation of client input (docs/client-api.md#new-task) and bot input (docs/bot-protocol.md#dimensions-and-state),
//! and the server-side shaping of a new request (defaults, auto tags, docs/client-api.md#stored-request).
//!
//! Every violation is an INVALID_ARGUMENT whose message names the field:
//! `bad request: <field path>: <what is wrong>`. Rules that need storage,
//! configuration or ACLs (parent existence, realm/pool permissions, the
//! pool's default realm) are left to the caller.

mod dimensions;
mod properties;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::ids::TaskId;
use crate::task::{NewTaskRequest, TaskRequest};
use crate::time::Time;
use regex::Regex;
use std::fmt::Display;
use std::sync::LazyLock;

pub use dimensions::{
    is_valid_dimension_key, validate_bot_dimensions, validate_dimension_filter, validate_dimension_value,
    validate_tag_filter,
};
pub use properties::{is_valid_env_key, MAX_GRACE_PERIOD_SECS, MAX_TIMEOUT_SECS, MIN_TIMEOUT_SECS};

/// Default `bot_ping_tolerance_secs` when the request leaves it 0.
pub const DEFAULT_BOT_PING_TOLERANCE_SECS: i32 = 1200;

/// Most slices a request may have.
pub const MAX_SLICES: usize = 8;
/// Per-slice expiration bounds (seconds).
pub const MIN_EXPIRATION_SECS: i32 = 30;
pub const MAX_EXPIRATION_SECS: i32 = 7 * 24 * 3600;
/// Most tags a request may carry (before auto tags).
pub const MAX_TAGS: usize = 256;
/// Most secret bytes per task.
pub const MAX_SECRET_BYTES: usize = 20 * 1024;
/// Lowest priority value a caller may use (0 is reserved for termination tasks).
pub const MIN_PRIORITY: i32 = 1;
pub const MAX_PRIORITY: i32 = 255;
/// Priorities below this need the high-priority permission.
pub const HIGH_PRIORITY_THRESHOLD: i32 = 20;
/// Explicit `bot_ping_tolerance_secs` bounds.
pub const MIN_BOT_PING_TOLERANCE_SECS: i32 = 60;
pub const MAX_BOT_PING_TOLERANCE_SECS: i32 = 1200;
/// Longest TerminateBot reason (after CR/LF are replaced).
pub const MAX_TERMINATE_REASON_CHARS: usize = 1000;

/// `bad request: <field>: <msg>`.
pub(crate) fn bad(field: impl Display, msg: impl Display) -> Error {
    Error::invalid(format!("bad request: {field}: {msg}"))
}

/// A compiled constant regex.
pub(crate) fn re(pattern: &str) -> Regex {
    // The patterns are string literals of this module; a failure is a bug
    // caught by the tests, never a consequence of input.
    Regex::new(pattern).expect("constant regex compiles")
}

static PUBSUB_TOPIC: LazyLock<Regex> = LazyLock::new(|| re(r"^projects/(.*)/topics/(.*)$"));
static PUBSUB_PROJECT: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z]([a-z0-9-]){4,28}[a-z0-9]$"));
static PUBSUB_TOPIC_ID: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z]([0-9A-Za-z\._\-~+%]){3,255}$"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+$"));
static REALM_PROJECT: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z0-9\-_]{1,100}$"));
static REALM_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:[a-z0-9_\.\-/]{1,400}|@root|@legacy|@project)$"));

/// Validates a NewTaskRequest (everything that needs no storage lookup),
/// in the order of docs/client-api.md#new-task. Returns the first violation.
pub fn validate_new_task(req: &NewTaskRequest) -> Result<()> {
    // 1. Slices and their pool.
    if req.task_slices.is_empty() {
        return Err(bad("task_slices", "task_slices is required"));
    }
    let mut first_pool: Option<&str> = None;
    for (i, s) in req.task_slices.iter().enumerate() {
        let field = format!("task_slices[{i}].properties.dimensions");
        let pools: Vec<&str> = s.properties.dimensions.get("pool").collect();
        let pool = match pools.as_slice() {
            [] => return Err(bad(field, "pool is required")),
            [p] => *p,
            _ => return Err(bad(field, "pool cannot be specified more than once")),
        };
        if pool.contains('|') {
            return Err(bad(field, "pool must have exactly one value, not an OR list (|)"));
        }
        match first_pool {
            None => first_pool = Some(pool),
            Some(p) if p != pool => {
                return Err(bad(field, "each task slice must use the same pool dimensions"));
            }
            Some(_) => {}
        }
    }
    // 2. (pool ACL: caller.)
    // 3. Name.
    if req.name.is_empty() {
        return Err(bad("name", "name is required"));
    }
    // 4. Deprecated fields.
    if req.properties.is_some() {
        return Err(bad("properties", "properties is deprecated, use task_slices instead."));
    }
    if req.expiration_secs != 0 {
        return Err(bad("expiration_secs", "expiration_secs is deprecated, set it per task slice instead."));
    }
    // 5. Slice count.
    if req.task_slices.len() > MAX_SLICES {
        return Err(bad("task_slices", format!("can have up to {MAX_SLICES} slices, got {}", req.task_slices.len())));
    }
    // 6. Parent (syntax only).
    if !req.parent_task_id.is_empty() {
        TaskId::parse(&req.parent_task_id).map_err(|e| bad("parent_task_id", e.message))?;
    }
    // 7. Priority.
    if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&req.priority) {
        return Err(bad(
            "priority",
            format!("must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {}", req.priority),
        ));
    }
    // 8. Service account.
    validate_service_account(&req.service_account)?;
    // 9. Pub/Sub.
    validate_pubsub(req)?;
    // 10. Bot ping tolerance.
    let bpt = req.bot_ping_tolerance_secs;
    if bpt != 0 && !(MIN_BOT_PING_TOLERANCE_SECS..=MAX_BOT_PING_TOLERANCE_SECS).contains(&bpt) {
        return Err(bad(
            "bot_ping_tolerance_secs",
            format!(
                "must be 0 (default) or between {MIN_BOT_PING_TOLERANCE_SECS} and {MAX_BOT_PING_TOLERANCE_SECS}, got {bpt}"
            ),
        ));
    }
    // 11. Realm (syntax only; the pool default and ACLs need config).
    validate_realm(&req.realm)?;
    // 12. Tags.
    validate_tags(&req.tags)?;
    // 13. Slices.
    let mut secret: Option<(usize, &Vec<u8>)> = None;
    for (i, s) in req.task_slices.iter().enumerate() {
        let slice = format!("task_slices[{i}]");
        if let Some(sb) = &s.properties.secret_bytes {
            if sb.len() > MAX_SECRET_BYTES {
                return Err(bad(
                    format!("{slice}.properties.secret_bytes"),
                    format!("must be at most {MAX_SECRET_BYTES} bytes, got {}", sb.len()),
                ));
            }
            match secret {
                None => secret = Some((i, sb)),
                Some((j, first)) if first != sb => {
                    return Err(bad(
                        format!("{slice}.properties.secret_bytes"),
                        format!("must be identical to task_slices[{j}].properties.secret_bytes (one secret per task)"),
                    ));
                }
                Some(_) => {}
            }
        }
        if !(MIN_EXPIRATION_SECS..=MAX_EXPIRATION_SECS).contains(&s.expiration_secs) {
            return Err(bad(
                format!("{slice}.expiration_secs"),
                format!("must be between {MIN_EXPIRATION_SECS} and {MAX_EXPIRATION_SECS}, got {}", s.expiration_secs),
            ));
        }
        properties::validate_properties(&format!("{slice}.properties"), &s.properties)?;
    }
    for (i, s) in req.task_slices.iter().enumerate() {
        if let Some(j) = req.task_slices[..i].iter().position(|o| o.properties == s.properties) {
            return Err(bad(
                format!("task_slices[{i}]"),
                format!("cannot request duplicate task slice (same properties as task_slices[{j}])"),
            ));
        }
    }
    // 14. pool_task_template is an enum AUTO..SKIP; the rest is free-form.
    if !(0..=3).contains(&req.pool_task_template) {
        return Err(bad("pool_task_template", format!("unknown value {}", req.pool_task_template)));
    }
    Ok(())
}

fn validate_service_account(sa: &str) -> Result<()> {
    if sa.is_empty() || sa == "none" || sa == "bot" {
        return Ok(());
    }
    if sa.chars().count() > 128 {
        return Err(bad("service_account", "must be at most 128 characters"));
    }
    if !EMAIL.is_match(sa) {
        return Err(bad("service_account", "must be \"none\", \"bot\" or an email address"));
    }
    Ok(())
}

fn validate_pubsub(req: &NewTaskRequest) -> Result<()> {
    if req.pubsub_topic.is_empty() {
        if !req.pubsub_auth_token.is_empty() {
            return Err(bad("pubsub_auth_token", "requires pubsub_topic"));
        }
        if !req.pubsub_userdata.is_empty() {
            return Err(bad("pubsub_userdata", "requires pubsub_topic"));
        }
        return Ok(());
    }
    if req.pubsub_userdata.len() > 1024 {
        return Err(bad("pubsub_userdata", format!("must be at most 1024 bytes, got {}", req.pubsub_userdata.len())));
    }
    let topic = &req.pubsub_topic;
    if topic.len() > 1024 {
        return Err(bad("pubsub_topic", "must be at most 1024 bytes"));
    }
    let Some(caps) = PUBSUB_TOPIC.captures(topic) else {
        return Err(bad("pubsub_topic", "must be projects/<project>/topics/<topic>"));
    };
    let project = caps.get(1).map_or("", |m| m.as_str());
    let id = caps.get(2).map_or("", |m| m.as_str());
    if !project.starts_with("google.com:") && !PUBSUB_PROJECT.is_match(project) {
        return Err(bad("pubsub_topic", format!("invalid project {project:?}")));
    }
    if !PUBSUB_TOPIC_ID.is_match(id) {
        return Err(bad("pubsub_topic", format!("invalid topic id {id:?}")));
    }
    if id.starts_with("goog") {
        return Err(bad("pubsub_topic", "topic id must not start with \"goog\""));
    }
    Ok(())
}

fn validate_realm(realm: &str) -> Result<()> {
    if realm.is_empty() {
        return Ok(());
    }
    let Some((project, name)) = realm.split_once(':') else {
        return Err(bad("realm", "must be <project>:<realm>"));
    };
    if !REALM_PROJECT.is_match(project) {
        return Err(bad("realm", format!("bad project name {project:?}")));
    }
    if !REALM_NAME.is_match(name) {
        return Err(bad("realm", format!("bad realm name {name:?}")));
    }
    Ok(())
}

/// Tags of a new request (docs/client-api.md#new-task, item 8).
pub fn validate_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(bad("tags", format!("can have up to {MAX_TAGS} tags, got {}", tags.len())));
    }
    for (i, t) in tags.iter().enumerate() {
        let field = format!("tags[{i}]");
        let Some((k, v)) = t.split_once(':') else {
            return Err(bad(field, "must be key:value"));
        };
        if k.is_empty() {
            return Err(bad(field, "key must not be empty"));
        }
        if k.chars().count() > 64 {
            return Err(bad(field, "key must be at most 64 characters"));
        }
        if v.chars().count() > 256 {
            return Err(bad(field, "value must be at most 256 characters"));
        }
        if v.trim() != v {
            return Err(bad(field, "value must not have leading or trailing whitespace"));
        }
        if k == "swarming.terminate" {
            return Err(bad(field, "key swarming.terminate is reserved"));
        }
    }
    Ok(())
}

/// TerminateBot reason (docs/client-api.md#bots-service): CR/LF become spaces, then at most
/// 1000 characters.
pub fn validate_terminate_reason(reason: &str) -> Result<String> {
    let r: String = reason.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
    let n = r.chars().count();
    if n > MAX_TERMINATE_REASON_CHARS {
        return Err(bad("reason", format!("must be at most {MAX_TERMINATE_REASON_CHARS} characters, got {n}")));
    }
    Ok(r)
}

/// What the server adds to a request it stores.
#[derive(Debug, Clone)]
pub struct CreateContext {
    pub now: Time,
    /// 16 random bits for the task id.
    pub random16: u16,
    /// Caller identity, e.g. `user:a@b.com` or `anonymous:anonymous`.
    pub authenticated: String,
    /// Whether the caller may use priority < 20.
    pub high_priority_allowed: bool,
}

/// Applies defaults and automatic tags (docs/client-api.md#stored-request) to a validated
/// request. Call [`validate_new_task`] first.
///
/// Priority 0 (termination tasks, built by the server itself) is kept as is.
pub fn build_request(req: &NewTaskRequest, ctx: &CreateContext) -> TaskRequest {
    let mut priority = req.priority;
    if (1..HIGH_PRIORITY_THRESHOLD).contains(&priority) && !ctx.high_priority_allowed {
        priority = HIGH_PRIORITY_THRESHOLD;
    }
    let service_account = if req.service_account.is_empty() { "none".to_string() } else { req.service_account.clone() };
    let bot_ping_tolerance_secs =
        if req.bot_ping_tolerance_secs == 0 { DEFAULT_BOT_PING_TOLERANCE_SECS } else { req.bot_ping_tolerance_secs };
    let mut tags = req.tags.clone();
    tags.push(format!("priority:{priority}"));
    tags.push(format!("realm:{}", if req.realm.is_empty() { "none" } else { &req.realm }));
    tags.push(format!("service_account:{service_account}"));
    tags.push(format!("user:{}", if req.user.is_empty() { "none" } else { &req.user }));
    tags.push(format!("authenticated:{}", ctx.authenticated));
    if !req.parent_task_id.is_empty() {
        tags.push(format!("parent_task_id:{}", req.parent_task_id));
    }
    let mut slices = req.task_slices.clone();
    for s in &mut slices {
        s.properties.dimensions = s.properties.dimensions.canonical();
        for (k, v) in &s.properties.dimensions.0 {
            for alt in v.split('|') {
                tags.push(format!("{k}:{alt}"));
            }
        }
    }
    tags.push("swarming.pool.task_template:none".to_string());
    tags.sort();
    tags.dedup();
    // Stored timestamps have microsecond precision.
    let created = crate::time::from_micros(crate::time::to_micros(ctx.now));
    TaskRequest {
        id: TaskId::new(created, ctx.random16),
        created,
        name: req.name.clone(),
        parent_task_id: req.parent_task_id.clone(),
        priority,
        slices,
        tags,
        user: req.user.clone(),
        authenticated: ctx.authenticated.clone(),
        service_account,
        realm: req.realm.clone(),
        resultdb_enable: req.resultdb_enable,
        pubsub_topic: req.pubsub_topic.clone(),
        pubsub_auth_token: req.pubsub_auth_token.clone(),
        pubsub_userdata: req.pubsub_userdata.clone(),
        bot_ping_tolerance_secs,
        request_uuid: req.request_uuid.clone(),
    }
}
