//! `/newtask`: a form for a one-slice task (dimensions, command, timeouts,
//! priority, tags) that POSTs to `/ui/task/new`.

use super::auth::{self, Perm};
use super::page::{esc, layout};
use super::UiResult;
use crate::State;
use axum::extract::{Query, State as S};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    /// Prefill for the dimensions box (e.g. from a bot page).
    #[serde(default)]
    dimensions: String,
}

pub(crate) async fn page(S(app): S<State>, headers: HeaderMap, Query(p): Query<Params>) -> UiResult {
    auth::check(&headers, Perm::NewTask)?;
    let mut suggest: Vec<String> = Vec::new();
    for (k, vs) in app.sched.bot_dimensions(None) {
        if k != "id" {
            suggest.extend(vs.iter().take(200).map(|v| format!("{k}:{v}")));
        }
    }
    let body = format!(
        "<h1>New task</h1>\
         <form class=\"newtask\" method=\"post\" action=\"/ui/task/new\">\
         <input type=\"hidden\" name=\"request_uuid\" value=\"{uuid}\">\
         <label>Name <input type=\"text\" name=\"name\" id=\"name\" required></label>\
         <label>Dimensions <input type=\"text\" name=\"dimensions\" id=\"dimensions\" value=\"{dims}\" \
         placeholder=\"pool:default os:Linux\" required autocomplete=\"off\" data-suggest=\"{sugg}\"></label>\
         <label>Command <input type=\"text\" name=\"command\" id=\"command\" placeholder=\"python3 -c 'print(1)'\" required></label>\
         <label>Tags <input type=\"text\" name=\"tags\" id=\"tags\" placeholder=\"purpose:test\"></label>\
         <div class=\"row\">\
         <label>Priority <input type=\"number\" name=\"priority\" value=\"100\" min=\"1\" max=\"255\"></label>\
         <label>Expiration (s) <input type=\"number\" name=\"expiration_secs\" value=\"3600\" min=\"1\"></label>\
         <label>Execution timeout (s) <input type=\"number\" name=\"execution_timeout_secs\" value=\"3600\" min=\"1\"></label>\
         <label>I/O timeout (s) <input type=\"number\" name=\"io_timeout_secs\" value=\"1200\" min=\"0\"></label>\
         <label>Grace period (s) <input type=\"number\" name=\"grace_period_secs\" value=\"30\" min=\"0\"></label>\
         </div><button type=\"submit\" id=\"submit\">Create task</button></form>",
        uuid = uuid::Uuid::new_v4(),
        dims = esc(&p.dimensions),
        sugg = esc(&serde_json::to_string(&suggest).unwrap_or_else(|_| "[]".into())),
    );
    Ok(layout("New task", "/newtask", &body).into_response())
}
