//! The task page's "Why pending" box, shown while a task waits (its log is
//! still empty) or when it ended NO_RESOURCE: the same explanation as
//! `muster why` / muster.v1.Scheduler/WhyPending.

use super::page::{esc, ts};
use muster_core::why::WhyPending;
use std::fmt::Write as _;

pub(crate) fn section(w: &WhyPending) -> String {
    let mut b = String::from("<section id=\"why\"><h2>Why pending</h2>");
    let _ = write!(b, "<p id=\"why-summary\">{}</p>", esc(&w.summary));
    b.push_str(
        "<table class=\"list\" id=\"why-slices\"><thead><tr><th>Slice</th><th>Dimensions</th><th>Matching bots</th>\
         <th>Queue</th><th>Ahead</th><th>Estimated start</th><th>Why</th></tr></thead><tbody>",
    );
    for s in &w.slices {
        let dims: Vec<String> = s.dimensions.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let c = &s.bots;
        let _ = write!(
            b,
            "<tr{cls}><td>{i}{active}</td><td class=\"mono\">{dims}</td>\
             <td>{m} ({idle} idle, {busy} busy, {q} quarantined, {dead} dead, {dr} drained)</td>\
             <td>{queue}</td><td>{ahead} ({hp} higher priority)</td><td>{eta}</td><td>{sum}</td></tr>",
            cls = if s.active { " class=\"current\"" } else { "" },
            i = s.index,
            active = if s.active { " (waiting)" } else { "" },
            dims = esc(&dims.join(" ")),
            m = c.matching,
            idle = c.idle,
            busy = c.busy,
            q = c.quarantined,
            dead = c.dead,
            dr = c.drained,
            queue =
                if s.queue_length > 0 { format!("{} of {}", s.queue_position, s.queue_length) } else { "—".into() },
            ahead = s.ahead,
            hp = s.higher_priority_ahead,
            eta = s.estimated_start.map(ts).unwrap_or_else(|| "unknown".into()),
            sum = esc(&s.summary),
        );
    }
    b.push_str("</tbody></table></section>");
    b
}
