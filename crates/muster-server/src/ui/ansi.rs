//! Task output → HTML lines, the way a terminal shows it (server side only:
//! the log viewer in `web/ui.js` fetches rendered slices, see `ui::log`).
//!
//! Supported: reset, bold, dim, italic, underline, the 16 basic colors
//! (classes `fg1`…`fg15`/`bg…`), 256-color and truecolor (inline style);
//! `\r`, backspace, erase-in-line and cursor-column moves within a line.
//! Other escape sequences are dropped. Parsing is `vte`'s (the state machine
//! terminal emulators use), so any byte sequence renders without failing.
//! Callers render from a line start; the rendition carried from one slice
//! to the next travels as an SGR parameter string ([`AnsiState::sgr`]).

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

    /// Applies SGR parameters as [`AnsiState::sgr`] writes them.
    pub(crate) fn apply(&mut self, params: &str) {
        let nums: Vec<u32> = params.split(';').map(|s| s.parse().unwrap_or(0)).collect();
        self.apply_nums(&nums);
    }

    /// Applies SGR parameters (`1;31` as `[1, 31]`).
    fn apply_nums(&mut self, nums: &[u32]) {
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

/// One rendered line: its HTML (escaped text in spans) and its plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub html: String,
    pub text: String,
}

/// Renders raw output `bytes` (which start at a line start, in rendition
/// `state`) as terminal lines: `\r` returns to the start of the line and
/// what follows overwrites it (so a progress bar redrawn with `\r` is one
/// line showing its last state), backspace steps back, `ESC[K` erases,
/// `ESC[nG` moves to a column, SGR sets the rendition, every other control
/// sequence is dropped. Returns the lines ended by `\n` and the unfinished
/// last line, if any text follows the last `\n`. `state` is left as it is
/// after the input. Never fails: invalid UTF-8 becomes U+FFFD and the HTML
/// is always escaped and balanced.
pub(crate) fn render_lines(bytes: &[u8], state: &mut AnsiState) -> (Vec<Line>, Option<Line>) {
    let mut t = Term { state: *state, ..Term::default() };
    let mut parser = vte::Parser::new();
    parser.advance(&mut t, bytes);
    *state = t.state;
    let partial = (!t.cells.is_empty()).then(|| t.line());
    (t.lines, partial)
}

/// The plain text of `bytes` as lines (see [`render_lines`]).
pub(crate) fn plain_lines(bytes: &[u8]) -> Vec<String> {
    let (lines, partial) = render_lines(bytes, &mut AnsiState::default());
    lines.into_iter().chain(partial).map(|l| l.text).collect()
}

/// A cursor on one line of cells; finished lines are rendered to HTML.
#[derive(Default)]
struct Term {
    cells: Vec<(char, AnsiState)>,
    cursor: usize,
    state: AnsiState,
    lines: Vec<Line>,
}

/// Longest line kept: what a line writes past this column is dropped (so
/// lines stay one per `\n`, which line numbers count).
const MAX_COLUMNS: usize = 64 * 1024;

impl Term {
    fn put(&mut self, c: char) {
        if self.cursor >= MAX_COLUMNS {
            return;
        }
        while self.cells.len() < self.cursor {
            self.cells.push((' ', AnsiState::default()));
        }
        if self.cursor < self.cells.len() {
            self.cells[self.cursor] = (c, self.state);
        } else {
            self.cells.push((c, self.state));
        }
        self.cursor += 1;
    }

    fn line(&self) -> Line {
        let mut html = String::with_capacity(self.cells.len() + 16);
        let mut text = String::with_capacity(self.cells.len());
        let mut i = 0;
        while i < self.cells.len() {
            let st = self.cells[i].1;
            let mut run = String::new();
            while i < self.cells.len() && self.cells[i].1 == st {
                run.push(self.cells[i].0);
                i += 1;
            }
            text.push_str(&run);
            if st.is_plain() {
                html.push_str(&esc(&run));
            } else {
                html.push_str(&st.open_tag());
                html.push_str(&esc(&run));
                html.push_str("</span>");
            }
        }
        Line { html, text }
    }

    fn newline(&mut self) {
        let l = self.line();
        self.lines.push(l);
        self.cells.clear();
        self.cursor = 0;
    }
}

impl vte::Perform for Term {
    fn print(&mut self, c: char) {
        // DEL and C1 controls spelled as UTF-8 are not text either.
        if !c.is_control() {
            self.put(c);
        }
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' => self.newline(),
            b'\r' => self.cursor = 0,
            b'\t' => {
                let to = ((self.cursor / 8 + 1) * 8).min(MAX_COLUMNS);
                while self.cursor < to {
                    self.put(' ');
                }
            }
            0x08 => self.cursor = self.cursor.saturating_sub(1),
            // Other C0/C1 controls (BEL, NUL...) are not text.
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &vte::Params, intermediates: &[u8], ignore: bool, action: char) {
        if !intermediates.is_empty() || ignore {
            return;
        }
        let nums: Vec<u32> = params.iter().flatten().map(|&v| u32::from(v)).collect();
        let first = nums.first().copied().unwrap_or(0);
        match action {
            'm' => self.state.apply_nums(if nums.is_empty() { &[0] } else { &nums }),
            'K' => match first {
                0 => self.cells.truncate(self.cursor),
                1 => {
                    for c in self.cells.iter_mut().take(self.cursor + 1) {
                        *c = (' ', AnsiState::default());
                    }
                }
                _ => self.cells.clear(),
            },
            'G' => self.cursor = (first.max(1) as usize - 1).min(MAX_COLUMNS - 1),
            'D' => self.cursor = self.cursor.saturating_sub(first.max(1) as usize),
            'C' => self.cursor = (self.cursor + first.max(1) as usize).min(MAX_COLUMNS - 1),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// All lines' HTML, joined with `\n`.
    fn r(s: &str) -> String {
        let (lines, partial) = render_lines(s.as_bytes(), &mut AnsiState::default());
        lines.into_iter().chain(partial).map(|l| l.html).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(r("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
    }

    #[test]
    fn basic_colors_become_classes_and_reset_closes_them() {
        assert_eq!(r("x\x1b[1;31mred\x1b[0m y"), "x<span class=\"ab fg1\">red</span> y");
        assert_eq!(r("\x1b[92mok\x1b[39m"), "<span class=\"fg10\">ok</span>");
        assert_eq!(r("\x1b[1mb\x1b[mn"), "<span class=\"ab\">b</span>n");
    }

    #[test]
    fn extended_colors_become_inline_styles() {
        assert_eq!(r("\x1b[38;2;1;2;3mz"), "<span style=\"color:rgb(1,2,3);\">z</span>");
        assert_eq!(r("\x1b[48;5;16mz"), "<span style=\"background-color:rgb(0,0,0);\">z</span>");
        assert_eq!(r("\x1b[38:5:16mz"), "<span style=\"color:rgb(0,0,0);\">z</span>");
    }

    #[test]
    fn other_escape_sequences_and_controls_are_dropped() {
        assert_eq!(r("ab\x1b(Bc\x1b]0;title\x07d\x1b]8;;u\x1b\\e\x1b=f\x07g\x00h"), "abcdefgh");
        assert_eq!(r("l1\r\nl2\tx"), "l1\nl2      x");
    }

    #[test]
    fn carriage_returns_overwrite_the_line_like_a_terminal() {
        assert_eq!(r("progress 10%\rprogress 55%\rprogress 100%\ndone\n"), "progress 100%\ndone");
        assert_eq!(r("abcdef\rxy\n"), "xycdef");
        assert_eq!(r("50%\r\x1b[Kok\n"), "ok");
        assert_eq!(r("ab\x08c\n"), "ac");
        let (lines, partial) = render_lines(b"one\ntwo\rthree", &mut AnsiState::default());
        assert_eq!(lines.len(), 1);
        assert_eq!(partial.map(|l| l.text), Some("three".to_string()));
    }

    #[test]
    fn the_rendition_carries_over_to_the_next_slice() {
        let mut st = AnsiState::default();
        let (lines, _) = render_lines(b"\x1b[33mwarn\n", &mut st);
        assert_eq!(lines[0].html, "<span class=\"fg3\">warn</span>");
        assert_eq!(st.sgr(), "38;5;3");
        let mut st2 = AnsiState::default();
        st2.apply(&st.sgr());
        assert_eq!(st2, st);
        assert_eq!(render_lines(b"more\n", &mut st2).0[0].html, "<span class=\"fg3\">more</span>");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(r("a\u{e9}\u{20ac}"), "a\u{e9}\u{20ac}");
        assert_eq!(render_lines(b"a\xff\n", &mut AnsiState::default()).0[0].text, "a\u{fffd}");
    }

    /// `html` is text with entities for the HTML specials, inside balanced
    /// spans the renderer made, with no control characters.
    /// Returns the text with tags removed and entities decoded.
    fn check_well_formed(html: &str) -> Result<String, String> {
        let mut depth = 0usize;
        let mut text = String::new();
        let mut rest = html;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("</span>") {
                depth = depth.checked_sub(1).ok_or("unbalanced </span>")?;
                rest = after;
            } else if rest.starts_with("<span") {
                let end = rest.find('>').ok_or("unterminated tag")?;
                let tag = &rest[..=end];
                let ok = tag.chars().all(|c| c.is_ascii_alphanumeric() || " <>=\"():;,-".contains(c));
                if !ok || depth > 0 {
                    return Err(format!("bad or nested tag {tag:?}"));
                }
                depth += 1;
                rest = &rest[end + 1..];
            } else if c == '&' {
                let (entity, ch) = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>'), ("&quot;", '"'), ("&#39;", '\'')]
                    .into_iter()
                    .find(|(e, _)| rest.starts_with(e))
                    .ok_or("bare &")?;
                text.push(ch);
                rest = &rest[entity.len()..];
            } else if matches!(c, '<' | '>' | '"' | '\'') || c.is_control() {
                return Err(format!("unescaped {c:?}"));
            } else {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if depth != 0 {
            return Err("unclosed span".into());
        }
        Ok(text)
    }

    /// Bytes that look like terminal output: text, UTF-8, controls, and
    /// fragments of escape sequences, mixed.
    fn output_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..8),
            "[a-z<>&\"' é€\n\t\r]{0,8}".prop_map(String::into_bytes),
            "\x1b\\[[0-9;:]{0,12}[mKHJGCD]".prop_map(String::into_bytes),
            "\x1b\\][0-9;a-z:/.]{0,12}(\x07|\x1b\\\\)?".prop_map(String::into_bytes),
            prop_oneof![Just(b"\x1b".to_vec()), Just(b"\x1b(B".to_vec()), Just(b"\x1bP1$r\x1b\\".to_vec())],
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    /// One line as programs write them: text, colours, `\r` and erases,
    /// ending in a newline.
    fn terminal_line() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            "[a-z<>&\"' é€\t\r]{0,8}".prop_map(String::into_bytes),
            "\x1b\\[[0-9;]{0,8}[mK]".prop_map(String::into_bytes),
        ];
        proptest::collection::vec(piece, 0..6).prop_map(|v| [v.concat(), b"\n".to_vec()].concat())
    }

    proptest! {
        #[test]
        fn any_bytes_render_to_well_formed_lines(bytes in output_bytes()) {
            let (lines, partial) = render_lines(&bytes, &mut AnsiState::default());
            for l in lines.iter().chain(partial.iter()) {
                let text = check_well_formed(&l.html).map_err(TestCaseError::fail)?;
                prop_assert_eq!(text, l.text.clone());
            }
        }

        #[test]
        fn arbitrary_bytes_render_to_well_formed_lines(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (lines, partial) = render_lines(&bytes, &mut AnsiState::default());
            for l in lines.iter().chain(partial.iter()) {
                check_well_formed(&l.html).map_err(TestCaseError::fail)?;
            }
        }

        /// Rendering in two slices cut at a line start (the second starting
        /// in the rendition the first ended in) gives the same lines.
        #[test]
        fn rendering_resumes_at_a_line_start(
            lines in proptest::collection::vec(terminal_line(), 1..12),
            tail in output_bytes(),
            cut in any::<prop::sample::Index>(),
        ) {
            let k = cut.index(lines.len() + 1);
            let head: Vec<u8> = lines[..k].concat();
            let rest: Vec<u8> = [lines[k..].concat(), tail].concat();
            let whole = render_lines(&[head.clone(), rest.clone()].concat(), &mut AnsiState::default());
            let mut st = AnsiState::default();
            let (mut first, _) = render_lines(&head, &mut st);
            let (second, partial) = render_lines(&rest, &mut st);
            first.extend(second);
            prop_assert_eq!(first, whole.0);
            prop_assert_eq!(partial, whole.1);
        }
    }
}
