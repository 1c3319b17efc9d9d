//! Dimension rules (docs/client-api.md#dimensions, docs/bot-protocol.md#dimensions-and-state) and
//! listing filters (docs/client-api.md#paging-and-filters).

use super::bad;
use crate::dims::{BotDimensions, DimFilter, TaskDimensions};
use crate::error::{Error, Result};

/// Longest dimension key.
pub const MAX_DIMENSION_KEY_LEN: usize = 64;
/// Longest dimension value (characters).
pub const MAX_DIMENSION_VALUE_CHARS: usize = 256;
/// Most elementary values (OR parts counted separately) in one slice.
pub const MAX_DIMENSION_VALUES: usize = 512;
/// Most alternatives (product of OR-list sizes) in one slice.
pub const MAX_DIMENSION_ALTERNATIVES: usize = 8;

const KEY_REGEX: &str = r"^[a-zA-Z\-\_\.][0-9a-zA-Z\-\_\.]*$";

/// Whether `key` matches `^[a-zA-Z\-\_\.][0-9a-zA-Z\-\_\.]*$` and is at most
/// 64 bytes long.
pub fn is_valid_dimension_key(key: &str) -> bool {
    key_problem(key).is_none()
}

fn key_problem(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '_' | '.'));
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Some(format!("must match {KEY_REGEX}"));
    }
    if key.len() > MAX_DIMENSION_KEY_LEN {
        return Some(format!("must be at most {MAX_DIMENSION_KEY_LEN} characters, got {}", key.len()));
    }
    None
}

/// What is wrong with one elementary value (no `|` handling) of `key`.
fn value_problem(key: &str, value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".to_string());
    }
    let n = value.chars().count();
    if n > MAX_DIMENSION_VALUE_CHARS {
        return Some(format!("must be at most {MAX_DIMENSION_VALUE_CHARS} characters, got {n}"));
    }
    if value.trim() != value {
        return Some("must not have leading or trailing whitespace".to_string());
    }
    if (key == "id" || key == "pool") && value.contains(':') {
        return Some(format!("{key} value must not contain ':'"));
    }
    None
}

/// Validates one elementary dimension value of `key` (no OR list): non-empty,
/// at most 256 characters, no leading/trailing whitespace, and no `:` for
/// `id` and `pool`. The error names `field`.
pub fn validate_dimension_value(field: &str, key: &str, value: &str) -> Result<()> {
    match value_problem(key, value) {
        Some(p) => Err(bad(field, p)),
        None => Ok(()),
    }
}

/// Validates a slice's requested dimensions (docs/client-api.md#dimensions). `field` is the path of the
/// list, e.g. `task_slices[0].properties.dimensions`. Pool presence and
/// uniqueness are checked by the caller (docs/client-api.md#new-task, item 1).
pub(crate) fn validate_task_dimensions(field: &str, dims: &TaskDimensions) -> Result<()> {
    let mut total_values = 0usize;
    let mut alternatives = 1usize;
    let mut ids = 0usize;
    let mut seen: Vec<(&str, Vec<&str>)> = Vec::with_capacity(dims.0.len());
    for (j, (k, v)) in dims.0.iter().enumerate() {
        if let Some(p) = key_problem(k) {
            return Err(bad(format!("{field}[{j}].key"), p));
        }
        let vfield = format!("{field}[{j}].value");
        let mut parts: Vec<&str> = v.split('|').collect();
        for part in &parts {
            if let Some(p) = value_problem(k, part) {
                let p = if parts.len() > 1 { format!("{p} (in OR list {v:?})") } else { p };
                return Err(bad(&vfield, p));
            }
        }
        parts.sort_unstable();
        if parts.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad(&vfield, format!("{v:?} has repeated values")));
        }
        if k == "id" {
            if parts.len() > 1 {
                return Err(bad(&vfield, "id must have exactly one value, not an OR list (|)"));
            }
            ids += 1;
            if ids > 1 {
                return Err(bad(format!("{field}[{j}]"), "id cannot be specified more than once"));
            }
        }
        if let Some(i) = seen.iter().position(|(sk, sv)| *sk == k.as_str() && *sv == parts) {
            return Err(bad(format!("{field}[{j}]"), format!("duplicate of {field}[{i}] ({k}:{v})")));
        }
        total_values += parts.len();
        alternatives = alternatives.saturating_mul(parts.len());
        seen.push((k.as_str(), parts));
    }
    if total_values > MAX_DIMENSION_VALUES {
        return Err(bad(field, format!("too many dimension values: {total_values} > {MAX_DIMENSION_VALUES}")));
    }
    if alternatives > MAX_DIMENSION_ALTERNATIVES {
        return Err(bad(
            field,
            format!(
                "too many alternatives: {alternatives} > {MAX_DIMENSION_ALTERNATIVES} (product of OR list sizes); reduce usage of |"
            ),
        ));
    }
    Ok(())
}

fn bad_bot(field: impl std::fmt::Display, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("bad bot dimensions: {field}: {msg}"))
}

/// Validates the dimensions a bot reports (docs/bot-protocol.md#dimensions-and-state, server side). An
/// error quarantines the bot; it is not a reason to reject the request.
pub fn validate_bot_dimensions(d: &BotDimensions) -> Result<()> {
    let ids = d.get("id").len();
    if ids != 1 {
        return Err(bad_bot("dimensions[\"id\"]", format!("id must have exactly one value, got {ids}")));
    }
    for (k, vs) in &d.0 {
        if let Some(p) = key_problem(k) {
            return Err(bad_bot(format!("dimensions key {k:?}"), p));
        }
        if vs.is_empty() {
            return Err(bad_bot(format!("dimensions[{k:?}]"), "must have at least one value"));
        }
        for (i, v) in vs.iter().enumerate() {
            if let Some(p) = value_problem(k, v) {
                return Err(bad_bot(format!("dimensions[{k:?}][{i}]"), p));
            }
            if vs[..i].contains(v) {
                return Err(bad_bot(format!("dimensions[{k:?}][{i}]"), format!("duplicate value {v:?}")));
            }
        }
    }
    Ok(())
}

/// Parses and validates `key:v1|v2` tag filters of listings
/// (docs/client-api.md#paging-and-filters). Key and every value must be non-empty without leading/trailing
/// whitespace; repeated values are silently de-duplicated.
pub fn validate_tag_filter(tags: &[String]) -> Result<Vec<DimFilter>> {
    let mut out = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let field = format!("tags[{i}]");
        let Some((k, v)) = t.split_once(':') else {
            return Err(bad(field, format!("{t:?} must be key:value")));
        };
        if k.is_empty() {
            return Err(bad(field, "key must not be empty"));
        }
        if k.trim() != k {
            return Err(bad(field, "key must not have leading or trailing whitespace"));
        }
        for part in v.split('|') {
            if part.is_empty() {
                return Err(bad(field, "values must not be empty"));
            }
            if part.trim() != part {
                return Err(bad(field, "values must not have leading or trailing whitespace"));
            }
        }
        out.push(DimFilter::new(k, v));
    }
    Ok(out)
}

/// Validates `(key, v1|v2)` dimension filters of listings (docs/client-api.md#paging-and-filters)
/// with the dimension key/value rules of #dimensions. Repeated keys are separate
/// constraints; repeated values in one OR list are de-duplicated.
pub fn validate_dimension_filter(pairs: &[(String, String)]) -> Result<Vec<DimFilter>> {
    let mut out = Vec::with_capacity(pairs.len());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if let Some(p) = key_problem(k) {
            return Err(bad(format!("dimensions[{i}].key"), p));
        }
        for part in v.split('|') {
            if let Some(p) = value_problem(k, part) {
                return Err(bad(format!("dimensions[{i}].value"), p));
            }
        }
        out.push(DimFilter::new(k, v));
    }
    Ok(out)
}
