//! Drains in the UI: the "Drains" section of `/botlist` (every drain with
//! an Undrain button, and a button draining the bots the current filter
//! selects), the Drain/Undrain button of `/bot?id=`, and the two form
//! actions. Each calls the same scheduler op as muster.v1.Fleet.

use super::auth::{self, Perm};
use super::page::{esc, link, ts};
use super::{parse_filters, UiError, UiResult};
use crate::State;
use axum::extract::State as S;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use muster_core::{Drain, DrainTarget};
use serde::Deserialize;
use std::fmt::Write as _;

/// The drain target a bot-list filter (`key:value ...`) selects: a lone
/// `pool:X` is the pool, anything else a dimension filter.
fn filter_target(f: &str) -> UiResult<Option<DrainTarget>> {
    let filters = parse_filters(f)?;
    Ok(match filters.as_slice() {
        [] => None,
        [one] if one.key == "pool" && one.values.len() == 1 => Some(DrainTarget::Pool(one.values[0].clone())),
        many => Some(DrainTarget::dimensions(many.iter().map(|d| (d.key.clone(), d.values.join("|"))).collect())),
    })
}

/// The `/botlist` section: drains in force, and a drain button for the filter.
pub(crate) fn list_section(drains: &[Drain], filter: &str, can: bool) -> String {
    let mut b = String::from("<section id=\"drains\"><h2>Drains</h2>");
    if drains.is_empty() {
        b.push_str("<p class=\"note\" id=\"no-drains\">Nothing is drained.</p>");
    } else {
        b.push_str("<table class=\"list\" id=\"drain-list\"><thead><tr><th>Target</th><th>Reason</th><th>By</th><th>Since</th><th></th></tr></thead><tbody>");
        for d in drains {
            let button = if can {
                format!(
                    "<form method=\"post\" action=\"/ui/undrain\"><input type=\"hidden\" name=\"target\" value=\"{}\">\
                     <button class=\"undrain\">Undrain</button></form>",
                    esc(&d.target.key())
                )
            } else {
                String::new()
            };
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{button}</td></tr>",
                esc(&d.target.describe()),
                esc(&d.reason),
                esc(&d.created_by),
                ts(d.created)
            );
        }
        b.push_str("</tbody></table>");
    }
    if let (true, Ok(Some(t))) = (can, filter_target(filter)) {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/drain\" data-confirm=\"Drain {what}? Their running tasks finish; they take no new ones.\">\
             <input type=\"hidden\" name=\"target\" value=\"{key}\">\
             <label>Reason <input type=\"text\" name=\"reason\" size=\"30\"></label>\
             <button id=\"drain-filter\" class=\"danger\">Drain {what}</button></form>",
            what = esc(&t.describe()),
            key = esc(&t.key()),
        );
    }
    b.push_str("</section>");
    b
}

/// The bot page's Drain or Undrain button.
pub(crate) fn bot_button(bot_id: &str, drained: bool) -> String {
    let key = esc(&DrainTarget::Bot(bot_id.to_string()).key());
    if drained {
        format!(
            "<form method=\"post\" action=\"/ui/undrain\"><input type=\"hidden\" name=\"target\" value=\"{key}\">\
             <button id=\"undrain\">Undrain</button></form>"
        )
    } else {
        format!(
            "<form method=\"post\" action=\"/ui/drain\" data-confirm=\"Drain bot {id}? It finishes its current task and takes no other.\">\
             <input type=\"hidden\" name=\"target\" value=\"{key}\"><button id=\"drain\">Drain</button></form>",
            id = esc(bot_id)
        )
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DrainForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    reason: String,
}

fn target_of(f: &DrainForm) -> UiResult<DrainTarget> {
    DrainTarget::from_key(&f.target).ok_or_else(|| UiError::bad(format!("bad drain target {:?}", f.target)))
}

fn back(t: &DrainTarget) -> axum::response::Response {
    match t {
        DrainTarget::Bot(b) => Redirect::to(&link("/bot", &[("id", b)])).into_response(),
        _ => Redirect::to("/botlist").into_response(),
    }
}

pub(crate) async fn drain(S(app): S<State>, headers: HeaderMap, Form(f): Form<DrainForm>) -> UiResult {
    let caller = auth::check(&headers, Perm::TerminateBot)?;
    let t = target_of(&f)?;
    crate::access::check_drain(&app, &caller.ctx, &t)?;
    app.sched.drain(t.clone(), &f.reason, &caller.identity, app.clock.now()).await?;
    Ok(back(&t))
}

pub(crate) async fn undrain(S(app): S<State>, headers: HeaderMap, Form(f): Form<DrainForm>) -> UiResult {
    let caller = auth::check(&headers, Perm::TerminateBot)?;
    let t = target_of(&f)?;
    crate::access::check_drain(&app, &caller.ctx, &t)?;
    app.sched.undrain(t.clone(), &caller.identity, app.clock.now()).await?;
    Ok(back(&t))
}
