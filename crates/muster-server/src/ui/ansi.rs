//! ANSI SGR escape sequences → HTML spans (server side; `web/ui.js` has the
//! same renderer for output that arrives after the page loaded).
//!
//! Supported: reset, bold, dim, italic, underline, the 16 basic colors
//! (classes `fg1`…`fg15`/`bg…`), 256-color and truecolor (inline style).
//! Other escape sequences are dropped. The renderer is resumable: it stops
//! before an escape sequence cut by the end of the input and reports the
//! state as an SGR parameter string so the browser can continue.

use super::page::esc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Color {
    Idx(u8),
    Rgb(u8, u8, u8),
}

/// The graphic rendition in effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AnsiState {
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    fg: Option<Color>,
    bg: Option<Color>,
}

impl AnsiState {
    fn is_plain(&self) -> bool {
        *self == AnsiState::default()
    }

    /// The state as SGR parameters (`1;31`), empty when plain.
    pub(crate) fn sgr(&self) -> String {
        let mut p: Vec<String> = Vec::new();
        if self.bold {
            p.push("1".into());
        }
        if self.dim {
            p.push("2".into());
        }
        if self.italic {
            p.push("3".into());
        }
        if self.underline {
            p.push("4".into());
        }
        for (c, base) in [(self.fg, 38), (self.bg, 48)] {
            match c {
                Some(Color::Idx(i)) => p.push(format!("{base};5;{i}")),
                Some(Color::Rgb(r, g, b)) => p.push(format!("{base};2;{r};{g};{b}")),
                None => {}
            }
        }
        p.join(";")
    }

    fn apply(&mut self, params: &str) {
        let nums: Vec<u32> = params.split(';').map(|s| s.parse().unwrap_or(0)).collect();
        let mut i = 0;
        while i < nums.len() {
            let n = nums[i];
            match n {
                0 => *self = AnsiState::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => {
                    self.bold = false;
                    self.dim = false
                }
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some(Color::Idx((n - 30) as u8)),
                90..=97 => self.fg = Some(Color::Idx((n - 90 + 8) as u8)),
                39 => self.fg = None,
                40..=47 => self.bg = Some(Color::Idx((n - 40) as u8)),
                100..=107 => self.bg = Some(Color::Idx((n - 100 + 8) as u8)),
                49 => self.bg = None,
                38 | 48 => {
                    let c = match nums.get(i + 1) {
                        Some(5) => {
                            let c = nums.get(i + 2).map(|v| Color::Idx((*v).min(255) as u8));
                            i += 2;
                            c
                        }
                        Some(2) => {
                            let ch = |k: usize| nums.get(i + k).copied().unwrap_or(0).min(255) as u8;
                            let c = Some(Color::Rgb(ch(2), ch(3), ch(4)));
                            i += 4;
                            c
                        }
                        _ => None,
                    };
                    if n == 38 {
                        self.fg = c;
                    } else {
                        self.bg = c;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn open_tag(&self) -> String {
        let mut classes = Vec::new();
        let mut style = String::new();
        if self.bold {
            classes.push("ab".to_string());
        }
        if self.dim {
            classes.push("ad".to_string());
        }
        if self.italic {
            classes.push("ai".to_string());
        }
        if self.underline {
            classes.push("au".to_string());
        }
        for (c, prefix, prop) in [(self.fg, "fg", "color"), (self.bg, "bg", "background-color")] {
            match c {
                Some(Color::Idx(i)) if i < 16 => classes.push(format!("{prefix}{i}")),
                Some(Color::Idx(i)) => {
                    let (r, g, b) = xterm_rgb(i);
                    style.push_str(&format!("{prop}:rgb({r},{g},{b});"));
                }
                Some(Color::Rgb(r, g, b)) => style.push_str(&format!("{prop}:rgb({r},{g},{b});")),
                None => {}
            }
        }
        let mut tag = String::from("<span");
        if !classes.is_empty() {
            tag.push_str(&format!(" class=\"{}\"", classes.join(" ")));
        }
        if !style.is_empty() {
            tag.push_str(&format!(" style=\"{style}\""));
        }
        tag.push('>');
        tag
    }
}

/// The RGB of xterm 256-color index `i` (16..=255).
fn xterm_rgb(i: u8) -> (u8, u8, u8) {
    if i >= 232 {
        let v = 8 + (i - 232) * 10;
        return (v, v, v);
    }
    let i = i.saturating_sub(16);
    let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
    (level(i / 36), level((i / 6) % 6), level(i % 6))
}

/// Renders `text` starting in `state`; returns the HTML and how many bytes
/// of `text` were consumed (less than `text.len()` only when it ends inside
/// an escape sequence). `state` is left as it is after the consumed part.
pub(crate) fn render(text: &str, state: &mut AnsiState) -> (String, usize) {
    let mut out = String::with_capacity(text.len() + 64);
    let mut open = false;
    let mut run = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut consumed = text.len();
    let flush = |out: &mut String, run: &mut String, open: &mut bool, st: &AnsiState| {
        if run.is_empty() {
            return;
        }
        if !st.is_plain() && !*open {
            out.push_str(&st.open_tag());
            *open = true;
        }
        out.push_str(&esc(run));
        run.clear();
    };
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            // Copy up to the next ESC (ESC is ASCII, so this is a char boundary).
            let next = text[i..].find('\x1b').map_or(text.len(), |p| i + p);
            run.push_str(&text[i..next]);
            i = next;
            continue;
        }
        // An escape sequence.
        let Some(&kind) = bytes.get(i + 1) else {
            consumed = i;
            break;
        };
        match kind {
            b'[' => {}
            b']' => {
                // OSC (window title, hyperlinks): up to BEL or ESC \, dropped.
                let rest = &text[i + 2..];
                match rest.find(['\x07', '\x1b']) {
                    Some(p) if rest.as_bytes()[p] == 0x07 => i += 2 + p + 1,
                    Some(p) if p + 1 < rest.len() => i += 2 + p + 2,
                    _ => {
                        consumed = i;
                        break;
                    }
                }
                continue;
            }
            b'(' | b')' | b'*' | b'+' => {
                // Charset designation: three bytes, dropped.
                if i + 2 >= bytes.len() {
                    consumed = i;
                    break;
                }
                i += 3;
                continue;
            }
            _ => {
                // Other two-byte escapes: dropped.
                i += 2;
                continue;
            }
        }
        let mut j = i + 2;
        while j < bytes.len() && !(0x40..=0x7e).contains(&bytes[j]) {
            j += 1;
        }
        if j >= bytes.len() {
            consumed = i;
            break;
        }
        if bytes[j] == b'm' {
            let before = *state;
            state.apply(&text[i + 2..j]);
            if *state != before {
                flush(&mut out, &mut run, &mut open, &before);
                if open {
                    out.push_str("</span>");
                    open = false;
                }
            }
        }
        i = j + 1;
    }
    flush(&mut out, &mut run, &mut open, state);
    if open {
        out.push_str("</span>");
    }
    (out, consumed)
}

/// The length of the longest prefix of `b` that does not end inside a
/// UTF-8 sequence (bytes may be cut anywhere by a streaming bot).
pub(crate) fn complete_utf8(b: &[u8]) -> usize {
    let len = b.len();
    for back in 1..=len.min(3) {
        let i = len - back;
        let c = b[i];
        if c & 0xC0 == 0x80 {
            continue;
        }
        let need = match c {
            0xF0..=0xFF => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if need > back { i } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        render(s, &mut AnsiState::default()).0
    }

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(r("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
    }

    #[test]
    fn basic_colors_become_classes_and_reset_closes_them() {
        assert_eq!(r("x\x1b[1;31mred\x1b[0m y"), "x<span class=\"ab fg1\">red</span> y");
        assert_eq!(r("\x1b[92mok\x1b[39m"), "<span class=\"fg10\">ok</span>");
    }

    #[test]
    fn extended_colors_become_inline_styles() {
        assert_eq!(r("\x1b[38;2;1;2;3mz"), "<span style=\"color:rgb(1,2,3);\">z</span>");
        assert_eq!(r("\x1b[48;5;16mz"), "<span style=\"background-color:rgb(0,0,0);\">z</span>");
    }

    #[test]
    fn other_escape_sequences_are_dropped() {
        assert_eq!(r("a\x1b[2Kb\x1b(Bc\x1b]0;title\x07d\x1b]8;;u\x1b\\e\x1b=f"), "abcdef");
    }

    #[test]
    fn a_cut_escape_sequence_is_left_for_the_next_chunk_with_the_state() {
        let mut st = AnsiState::default();
        let (html, used) = render("\x1b[33mwarn\x1b[0", &mut st);
        assert_eq!(html, "<span class=\"fg3\">warn</span>");
        assert_eq!(used, "\x1b[33mwarn".len());
        assert_eq!(st.sgr(), "38;5;3");
        let mut st2 = AnsiState::default();
        st2.apply(&st.sgr());
        assert_eq!(st2, st);
    }

    #[test]
    fn a_cut_utf8_sequence_is_not_consumed() {
        let s = "é€".as_bytes();
        assert_eq!(complete_utf8(s), s.len());
        assert_eq!(complete_utf8(&s[..3]), 2);
        assert_eq!(complete_utf8(&s[..4]), 2);
        assert_eq!(complete_utf8(b"abc"), 3);
    }
}
