//! Proto3 JSON helpers beyond what pbjson generates.
//!
//! Owns: the snake_case output the `swarming` CLI writes (`-json-output` uses
//! the ORIGINAL proto field names, docs/client-api.md#the-cli). pbjson always writes
//! lowerCamelCase, so [`to_snake_value`] renames the keys afterwards. Every
//! swarming.v2 message is safe for this: none has a `map<>` field whose keys
//! would be data.

use serde::Serialize;
use serde_json::Value;

/// `casInputRoot` → `cas_input_root`. Names without upper-case letters are
/// returned unchanged.
pub fn camel_to_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames every object key of `v`, recursively, from lowerCamelCase to
/// snake_case.
pub fn snake_case_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (camel_to_snake(&k), snake_case_keys(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(snake_case_keys).collect()),
        other => other,
    }
}

/// A message as a JSON value with snake_case keys (int64 as strings, enums as
/// names, defaults omitted: everything else as pbjson writes it).
pub fn to_snake_value<M: Serialize>(msg: &M) -> Result<Value, serde_json::Error> {
    // Through text, not `to_value`: a `float` field must stay `0.0001`, not
    // become the f64 widening `0.00009999999747378752`.
    let text = serde_json::to_string(msg)?;
    Ok(snake_case_keys(serde_json::from_str(&text)?))
}

/// The CLI's file format: snake_case keys, 1-space indentation, trailing newline.
pub fn to_cli_json<M: Serialize>(msg: &M) -> Result<String, serde_json::Error> {
    let v = to_snake_value(msg)?;
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b" "));
    v.serialize(&mut ser)?;
    buf.push(b'\n');
    // serde_json only writes valid UTF-8.
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
