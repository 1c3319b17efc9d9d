//! Page layout and the small HTML helpers every page uses: escaping, the
//! shared header/nav, time and duration formatting, state badges, and the
//! static assets (`web/ui.css`, `web/ui.js`) embedded at build time.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use muster_core::{TaskState, Time};
use std::fmt::Write as _;

/// The stylesheet, embedded in the binary.
pub(crate) const CSS: &str = include_str!("../../../../web/ui.css");
/// The script that enhances pages (live output, autocomplete, confirmations).
pub(crate) const JS: &str = include_str!("../../../../web/ui.js");

/// HTML-escapes text for element content and quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query parameter value.
pub(crate) fn qv(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Builds `path?k=v&…` skipping empty values.
pub(crate) fn link(path: &str, params: &[(&str, &str)]) -> String {
    let q: Vec<String> = params.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", qv(v))).collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// `2044-01-01 00:00:00` (UTC).
pub(crate) fn ts(t: Time) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn opt_ts(t: Option<Time>) -> String {
    t.map(ts).unwrap_or_else(|| "—".to_string())
}

/// `3s`, `4m 05s`, `2h 03m`.
pub(crate) fn dur(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "—".to_string();
    }
    if secs < 10.0 {
        return format!("{secs:.2}s");
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// "5s ago" relative to `now`.
pub(crate) fn ago(t: Time, now: Time) -> String {
    let secs = (now - t).num_milliseconds() as f64 / 1000.0;
    if secs < 0.0 {
        return ts(t);
    }
    format!("{} ago", dur(secs))
}

/// The CSS class of a task state's badge: every state has its own colour.
pub(crate) fn state_class(s: TaskState, failure: bool) -> &'static str {
    match s {
        TaskState::Pending => "pending",
        TaskState::Running => "running",
        TaskState::Completed if failure => "failure",
        TaskState::Completed => "success",
        TaskState::Expired => "expired",
        TaskState::TimedOut => "timed_out",
        TaskState::BotDied => "bot_died",
        TaskState::Canceled => "canceled",
        TaskState::Killed => "killed",
        TaskState::NoResource => "no_resource",
        TaskState::ClientError => "client_error",
        TaskState::Invalid => "exceptional",
    }
}

/// The words of a state's badge.
pub(crate) fn state_label(s: TaskState, failure: bool) -> &'static str {
    match s {
        TaskState::Completed if failure => "COMPLETED (FAILURE)",
        TaskState::Completed => "COMPLETED (SUCCESS)",
        TaskState::TimedOut => "TIMED OUT",
        TaskState::BotDied => "BOT DIED",
        TaskState::NoResource => "NO RESOURCE",
        TaskState::ClientError => "CLIENT ERROR",
        s => s.name(),
    }
}

/// A colored badge for a task state.
pub(crate) fn state_badge(s: TaskState, failure: bool) -> String {
    format!(
        "<span class=\"badge {}\" data-state=\"{}\">{}</span>",
        state_class(s, failure),
        s.name(),
        state_label(s, failure)
    )
}

/// A colored badge for a bot status.
pub(crate) fn bot_badge(status: &str) -> String {
    format!("<span class=\"badge bot-{status}\">{status}</span>", status = esc(status))
}

/// The pages in the header's navigation: (path, label).
const NAV: [(&str, &str); 5] =
    [("/", "Dashboard"), ("/botlist", "Bots"), ("/tasklist", "Tasks"), ("/newtask", "New task"), ("/jobs", "Jobs")];

/// The shared page header: brand, navigation (the page at `current`
/// marked), and on the right who is signed in. Add header items here.
pub(crate) fn header(current: &str) -> Markup {
    html! {
        header {
            a.brand href="/" { "muster" }
            nav aria-label="Main" {
                @for (href, label) in NAV {
                    @if href == current { a.current href=(href) aria-current="page" { (label) } }
                    @else { a href=(href) { (label) } }
                }
            }
            (PreEscaped(super::signin::header_html()))
        }
    }
}

/// Wraps a page body in the shared layout ([`header`] on top).
pub(crate) fn layout(title: &str, current: &str, body: &str) -> Html<String> {
    // Every state-changing form carries this browser's CSRF token.
    let body = insert_csrf(body);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · muster" }
                link rel="stylesheet" href="/ui/static/ui.css";
                script src="/ui/static/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (header(current))
                main #main { (PreEscaped(body)) }
            }
        }
    };
    Html(page.into_string())
}

/// Puts the CSRF field right after the opening tag of every POST form.
fn insert_csrf(body: &str) -> String {
    let field = super::csrf::field();
    let mut out = String::with_capacity(body.len() + 256);
    let mut rest = body;
    while let Some(i) = rest.find("<form") {
        let Some(close) = rest[i..].find('>') else { break };
        let tag_end = i + close + 1;
        out.push_str(&rest[..tag_end]);
        if rest[i..tag_end].contains("method=\"post\"") {
            out.push_str(&field);
        }
        rest = &rest[tag_end..];
    }
    out.push_str(rest);
    out
}

/// An error page with the given status.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>{} {}</h1><p class=\"error\">{}</p>",
        status.as_u16(),
        esc(status.canonical_reason().unwrap_or("")),
        esc(message)
    );
    (status, layout("Error", "", &body)).into_response()
}

pub(crate) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], CSS).into_response()
}

pub(crate) async fn js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], JS)
        .into_response()
}

/// A dimension/tag list as `key:value` chips.
pub(crate) fn chips<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let mut s = String::new();
    for i in items {
        let _ = write!(s, "<span class=\"chip\">{}</span>", esc(i));
    }
    s
}

/// A "Next page" link (cursor pagination), or nothing.
/// `cursor_param` names the query parameter the cursor travels in.
pub(crate) fn pager(path: &str, params: &[(&str, &str)], cursor_param: &str, cursor: Option<&str>) -> String {
    let mut s = String::from("<div class=\"pager\">");
    if let Some(c) = cursor {
        let mut p = params.to_vec();
        p.push((cursor_param, c));
        let _ = write!(s, "<a class=\"next\" href=\"{}\">Next page →</a>", esc(&link(path, &p)));
    }
    let first: Vec<(&str, &str)> = params.to_vec();
    let _ = write!(s, " <a href=\"{}\">First page</a></div>", esc(&link(path, &first)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_the_html_specials() {
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }

    #[test]
    fn links_encode_values_and_skip_empty_ones() {
        assert_eq!(link("/botlist", &[("f", "os:Linux pool:ci"), ("state", "")]), "/botlist?f=os%3ALinux+pool%3Aci");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(dur(1.5), "1.50s");
        assert_eq!(dur(65.0), "1m 05s");
        assert_eq!(dur(7300.0), "2h 01m");
    }
}
