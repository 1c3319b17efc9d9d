//! Tiny inline-SVG charts for the dashboard (no script needed).

use super::page::esc;
use std::fmt::Write as _;

const W: f64 = 360.0;
const H: f64 = 120.0;
const PAD: f64 = 24.0;

/// A bar chart of `(label, value)`; labels are drawn under every third bar.
pub(crate) fn bars(id: &str, title: &str, data: &[(String, f64)]) -> String {
    let max = data.iter().map(|d| d.1).fold(0.0_f64, f64::max).max(1e-9);
    let n = data.len().max(1) as f64;
    let bw = (W - PAD) / n;
    let mut s = svg_open(id, title);
    for (i, (label, v)) in data.iter().enumerate() {
        let h = (H - PAD) * v / max;
        let x = PAD + i as f64 * bw;
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\"><title>{t}: {v:.2}</title></rect>",
            y = H - PAD - h,
            w = (bw - 2.0).max(1.0),
            t = esc(label),
        );
        if i % 3 == 0 {
            let _ = write!(s, "<text class=\"axis\" x=\"{x:.1}\" y=\"{}\">{}</text>", H - 8.0, esc(label));
        }
    }
    axis(&mut s, max);
    s.push_str("</svg>");
    s
}

/// Line chart of several named series over the same x labels.
pub(crate) fn lines(id: &str, title: &str, labels: &[String], series: &[(&str, Vec<Option<f64>>)]) -> String {
    let max = series.iter().flat_map(|(_, v)| v.iter().flatten()).fold(0.0_f64, |a, b| a.max(*b)).max(1e-9);
    let n = labels.len().max(2) as f64;
    let step = (W - PAD) / (n - 1.0);
    let mut s = svg_open(id, title);
    for (si, (name, vals)) in series.iter().enumerate() {
        let mut path = String::new();
        for (i, v) in vals.iter().enumerate() {
            let Some(v) = v else { continue };
            let x = PAD + i as f64 * step;
            let y = H - PAD - (H - PAD) * v / max;
            let _ = write!(path, "{}{x:.1},{y:.1} ", if path.is_empty() { "M" } else { "L" });
            let _ = write!(
                s,
                "<circle class=\"s{si}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>{}: {v:.2}s</title></circle>",
                esc(name)
            );
        }
        if !path.is_empty() {
            let _ = write!(s, "<path class=\"line s{si}\" d=\"{}\"/>", path.trim_end());
        }
        let _ = write!(
            s,
            "<text class=\"legend s{si}\" x=\"{}\" y=\"12\">{}</text>",
            W - 70.0 - 50.0 * si as f64,
            esc(name)
        );
    }
    for (i, l) in labels.iter().enumerate() {
        if i % 3 == 0 {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\">{}</text>",
                PAD + i as f64 * step,
                H - 8.0,
                esc(l)
            );
        }
    }
    axis(&mut s, max);
    s.push_str("</svg>");
    s
}

fn svg_open(id: &str, title: &str) -> String {
    format!(
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = esc(title)
    )
}

fn axis(s: &mut String, max: f64) {
    let _ = write!(
        s,
        "<line class=\"axisline\" x1=\"{PAD}\" y1=\"{y}\" x2=\"{W}\" y2=\"{y}\"/>\
         <text class=\"axis\" x=\"0\" y=\"10\">{m}</text><text class=\"axis\" x=\"0\" y=\"{y}\">0</text>",
        y = H - PAD,
        m = if max >= 10.0 {
            format!("{max:.0}")
        } else if max >= 1.0 {
            format!("{max:.1}")
        } else {
            format!("{max:.3}")
        },
    );
}
