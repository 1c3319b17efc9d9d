//! `/newtask`: a form for a one-slice task (dimensions, command, timeouts,
//! priority, tags) that POSTs to `/ui/task/new`. The inputs carry the
//! server's own limits (`muster_core::validate`), and a request the server
//! refuses comes back as this form, filled in, with the server's message
//! next to the field it is about ([`refused`]).

use super::actions::NewTaskForm;
use super::auth::{self, Perm};
use super::page::layout;
use super::UiResult;
use crate::State;
use axum::extract::{Query, State as S};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use muster_core::validate as v;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    /// Prefill for the dimensions box (e.g. from a bot page).
    #[serde(default)]
    dimensions: String,
}

pub(crate) async fn page(S(_app): S<State>, headers: HeaderMap, Query(p): Query<Params>) -> UiResult {
    auth::check(&headers, Perm::NewTask)?;
    let f = NewTaskForm { dimensions: p.dimensions, ..Default::default() };
    Ok(layout("New task", "/newtask", &form(&f, None).into_string()).into_response())
}

/// The form again after the server refused it (400), the message placed
/// at the field it names (else above the form).
pub(crate) fn refused(_app: &State, f: &NewTaskForm, message: &str) -> Response {
    let field = field_of(message);
    let body = form(f, Some((field, message))).into_string();
    (StatusCode::BAD_REQUEST, layout("New task", "/newtask", &body)).into_response()
}

/// The form field a validation message is about: the last part of the
/// field path it starts with (`bad request: task_slices[0].expiration_secs: …`
/// → `expiration_secs`), or "" when it names none of the form's fields.
fn field_of(message: &str) -> &'static str {
    let m = message.strip_prefix("bad request: ").unwrap_or(message);
    let path = m.split(": ").next().unwrap_or_default();
    let last = path.rsplit('.').next().unwrap_or_default();
    let last = last.split('[').next().unwrap_or_default();
    FIELDS.iter().map(|(name, ..)| *name).find(|n| *n == last).unwrap_or("")
}

/// Number fields: (name, label, min, max).
const NUMBERS: [(&str, &str, i32, i32); 5] = [
    ("priority", "Priority", v::MIN_PRIORITY, v::MAX_PRIORITY),
    ("expiration_secs", "Expiration (s)", v::MIN_EXPIRATION_SECS, v::MAX_EXPIRATION_SECS),
    ("execution_timeout_secs", "Execution timeout (s)", v::MIN_TIMEOUT_SECS, v::MAX_TIMEOUT_SECS),
    ("io_timeout_secs", "I/O timeout (s, 0: none)", 0, v::MAX_TIMEOUT_SECS),
    ("grace_period_secs", "Grace period (s)", 0, v::MAX_GRACE_PERIOD_SECS),
];

/// Every field errors can point at: (name, label).
const FIELDS: [(&str, &str); 9] = [
    ("name", "Name"),
    ("dimensions", "Dimensions"),
    ("command", "Command"),
    ("tags", "Tags"),
    ("priority", ""),
    ("expiration_secs", ""),
    ("execution_timeout_secs", ""),
    ("io_timeout_secs", ""),
    ("grace_period_secs", ""),
];

fn value<'a>(f: &'a NewTaskForm, name: &str) -> &'a str {
    match name {
        "name" => &f.name,
        "dimensions" => &f.dimensions,
        "command" => &f.command,
        "tags" => &f.tags,
        "priority" => &f.priority,
        "expiration_secs" => &f.expiration_secs,
        "execution_timeout_secs" => &f.execution_timeout_secs,
        "io_timeout_secs" => &f.io_timeout_secs,
        "grace_period_secs" => &f.grace_period_secs,
        _ => "",
    }
}

fn default_of(name: &str) -> &'static str {
    match name {
        "priority" => "100",
        "expiration_secs" | "execution_timeout_secs" => "3600",
        "io_timeout_secs" => "1200",
        "grace_period_secs" => "30",
        _ => "",
    }
}

fn form(f: &NewTaskForm, error: Option<(&str, &str)>) -> Markup {
    let err_for = |name: &str| error.filter(|(field, _)| *field == name).map(|(_, m)| m);
    let text = |name: &str, label: &str, placeholder: &str, required: bool| {
        let err = err_for(name);
        html! {
            label for=(name) { (label) }
            input type="text" name=(name) id=(name) value=(value(f, name)) placeholder=(placeholder)
                required[required] autocomplete="off" aria-invalid=[err.map(|_| "true")]
                aria-describedby=[err.map(|_| format!("{name}-error"))]
                data-suggest-url=[(name == "dimensions").then_some("/botlist/suggest")];
            @if let Some(m) = err { p.field-error id={ (name) "-error" } role="alert" { (m) } }
        }
    };
    html! {
        h1 { "New task" }
        @if let Some((field, m)) = error {
            @if field.is_empty() { p.error #form-error role="alert" { (m) } }
        }
        form.newtask method="post" action="/ui/task/new" novalidate {
            input type="hidden" name="request_uuid" value=(if f.request_uuid.is_empty() { uuid::Uuid::new_v4().to_string() } else { f.request_uuid.clone() });
            div.field { (text("name", "Name", "", true)) }
            div.field { (text("dimensions", "Dimensions (key=value, space-separated; pool is required)", "pool=default os=Linux", true)) }
            div.field { (text("command", "Command", "python3 -c 'print(1)'", true)) }
            div.field { (text("tags", "Tags (key:value)", "purpose:test", false)) }
            div.row {
                @for (name, label, min, max) in NUMBERS {
                    @let err = err_for(name);
                    @let val = if value(f, name).is_empty() { default_of(name) } else { value(f, name) };
                    div.field {
                        label for=(name) { (label) }
                        input type="number" name=(name) id=(name) value=(val) min=(min) max=(max)
                            aria-invalid=[err.map(|_| "true")] aria-describedby=[err.map(|_| format!("{name}-error"))];
                        @if let Some(m) = err { p.field-error id={ (name) "-error" } role="alert" { (m) } }
                    }
                }
            }
            button #submit type="submit" { "Create task" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_find_their_field() {
        assert_eq!(
            field_of("bad request: task_slices[0].expiration_secs: must be between 30 and 604800"),
            "expiration_secs"
        );
        assert_eq!(field_of("bad request: priority: must be between 1 and 255, got 0"), "priority");
        assert_eq!(field_of("bad request: task_slices[0].properties.dimensions[pool]: missing"), "dimensions");
        assert_eq!(field_of("dimensions: \"x\" is not key=value"), "dimensions");
        assert_eq!(field_of("something else entirely"), "");
    }
}
