//! ANSI SGR escape sequences → HTML spans (server side; `web/ui.js` has the
//! same renderer for output that arrives after the page loaded).
//!
//! Supported: reset, bold, dim, italic, underline, the 16 basic colors
//! (classes `fg1`…`fg15`/`bg…`), 256-color and truecolor (inline style).
//! Other escape sequences are dropped. Parsing is `vte`'s (the state machine
//! terminal emulators use), so any byte sequence renders without failing.
//! The renderer is resumable: it reports how far it got before an escape
//! sequence or a UTF-8 character cut by the end of the input, and the state
//! as an SGR parameter string, so the browser can continue.

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

    #[cfg(test)]
    fn apply(&mut self, params: &str) {
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

/// Renders raw output `bytes` starting in `state`; returns the HTML and how
/// many bytes were consumed: less than `bytes.len()` only when the input
/// ends inside an escape sequence or a UTF-8 character, so that the caller
/// (or `web/ui.js`) can resume from there with [`AnsiState::sgr`]. `state`
/// is left as it is after the consumed part. Never fails: invalid UTF-8
/// becomes U+FFFD, unknown sequences are dropped, and the HTML is always
/// escaped and balanced.
pub(crate) fn render(bytes: &[u8], state: &mut AnsiState) -> (String, usize) {
    let mut r = Renderer { out: String::with_capacity(bytes.len() + 64), state: *state, ..Renderer::default() };
    let mut parser = vte::Parser::new();
    let (mut pos, mut clean) = (0, 0);
    while pos < bytes.len() {
        r.done = false;
        // Never past an ESC in one call: what follows it is in a sequence.
        let end = bytes[pos..].iter().position(|&b| b == 0x1b).map_or(bytes.len(), |i| pos + i + 1);
        pos += parser.advance_until_terminated(&mut r, &bytes[pos..end]).clamp(1, end - pos);
        let ends_with_esc = bytes[pos - 1] == 0x1b;
        if r.done && !r.in_sequence {
            // The parser is back in its ground state here, except for an
            // ESC just read (which starts the next sequence) or the first
            // bytes of a UTF-8 character cut by the end of the input.
            clean = if ends_with_esc {
                pos - 1
            } else if pos == bytes.len() {
                pos - incomplete_utf8_tail(bytes)
            } else {
                pos
            };
        }
        if ends_with_esc {
            r.in_sequence = true;
        }
    }
    r.flush();
    if r.open {
        r.out.push_str("</span>");
    }
    *state = r.state;
    (r.out, clean)
}

/// How many bytes at the end of `b` are the start of a UTF-8 character
/// that more bytes could complete (0 when `b` ends on a boundary or with
/// bytes that can never be valid).
fn incomplete_utf8_tail(b: &[u8]) -> usize {
    (1..=b.len().min(3))
        .rev()
        .find(|&n| {
            matches!(std::str::from_utf8(&b[b.len() - n..]), Err(e) if e.valid_up_to() == 0 && e.error_len().is_none())
        })
        .unwrap_or(0)
}

/// The `vte` callbacks: printable text is collected in `run` and written
/// (escaped) inside a span for the rendition in effect; SGR sequences change
/// the rendition; every other control sequence is dropped.
#[derive(Default)]
struct Renderer {
    out: String,
    run: String,
    state: AnsiState,
    /// A span for `state` is open in `out`.
    open: bool,
    /// Something completed during the last `advance` call.
    done: bool,
    /// An escape sequence has started and not ended.
    in_sequence: bool,
}

impl Renderer {
    fn flush(&mut self) {
        if self.run.is_empty() {
            return;
        }
        if !self.state.is_plain() && !self.open {
            self.out.push_str(&self.state.open_tag());
            self.open = true;
        }
        self.out.push_str(&esc(&self.run));
        self.run.clear();
    }

    fn end_sequence(&mut self) {
        self.done = true;
        self.in_sequence = false;
    }
}

impl vte::Perform for Renderer {
    fn print(&mut self, c: char) {
        // DEL and C1 controls spelled as UTF-8 are not text either.
        if !c.is_control() {
            self.run.push(c);
        }
        self.end_sequence();
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            // CAN and SUB abort a sequence.
            0x18 | 0x1a => self.end_sequence(),
            _ if self.in_sequence => {}
            b'\n' | b'\t' | b'\r' => {
                self.run.push(byte as char);
                self.done = true;
            }
            // Other C0/C1 controls (BEL, BS, NUL...) are not text.
            _ => self.done = true,
        }
    }

    fn csi_dispatch(&mut self, params: &vte::Params, intermediates: &[u8], ignore: bool, action: char) {
        self.end_sequence();
        if action != 'm' || !intermediates.is_empty() || ignore {
            return;
        }
        let nums: Vec<u32> = params.iter().flatten().map(|&v| u32::from(v)).collect();
        let before = self.state;
        let mut after = before;
        after.apply_nums(if nums.is_empty() { &[0] } else { &nums });
        if after != before {
            self.flush();
            if self.open {
                self.out.push_str("</span>");
                self.open = false;
            }
            self.state = after;
        }
    }

    fn esc_dispatch(&mut self, _intermediates: &[u8], _ignore: bool, _byte: u8) {
        self.end_sequence();
    }

    fn osc_dispatch(&mut self, _params: &[&[u8]], _bell_terminated: bool) {
        self.end_sequence();
    }

    fn unhook(&mut self) {
        self.end_sequence();
    }

    fn terminated(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(s: &str) -> String {
        render(s.as_bytes(), &mut AnsiState::default()).0
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
        assert_eq!(r("a\x1b[2Kb\x1b(Bc\x1b]0;title\x07d\x1b]8;;u\x1b\\e\x1b=f\x07g\x00h"), "abcdefgh");
        assert_eq!(r("l1\r\nl2\tx"), "l1\r\nl2\tx");
    }

    #[test]
    fn a_cut_escape_sequence_is_left_for_the_next_chunk_with_the_state() {
        let mut st = AnsiState::default();
        let (html, used) = render(b"\x1b[33mwarn\x1b[0", &mut st);
        assert_eq!(html, "<span class=\"fg3\">warn</span>");
        assert_eq!(used, "\x1b[33mwarn".len());
        assert_eq!(st.sgr(), "38;5;3");
        let mut st2 = AnsiState::default();
        st2.apply(&st.sgr());
        assert_eq!(st2, st);
    }

    #[test]
    fn a_cut_utf8_character_is_not_consumed() {
        let s = "aé€".as_bytes();
        assert_eq!(render(s, &mut AnsiState::default()), ("aé€".to_string(), s.len()));
        assert_eq!(render(&s[..2], &mut AnsiState::default()), ("a".to_string(), 1));
        assert_eq!(render(&s[..5], &mut AnsiState::default()), ("aé".to_string(), 3));
        // Bytes that can never become valid are replaced, not held back.
        assert_eq!(render(b"a\xff", &mut AnsiState::default()), ("a\u{fffd}".to_string(), 2));
    }

    /// Regression: `ESC ] ESC é` (an OSC cut by an escape followed by a
    /// multi-byte character) made the old hand-written parser slice inside
    /// a character and panic, for ever, on the task page.
    #[test]
    fn osc_cut_by_escape_before_a_multibyte_character_renders() {
        let (html, used) = render(b"\x1b]\x1b\xc3\xa9", &mut AnsiState::default());
        assert_eq!(html, "");
        assert!(used <= 5);
        // After the ESC, the terminal state machine takes `o` as the final
        // byte of an escape sequence (ESC o), as a terminal would.
        assert_eq!(r("\x1b]\x1b\u{e9}ok\x1b[31mred"), "k<span class=\"fg1\">red</span>");
    }

    /// `html` is text with entities for the HTML specials, inside balanced
    /// spans the renderer made, with no control characters but \n, \r, \t.
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
            } else if matches!(c, '<' | '>' | '"' | '\'') || (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
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
            "\x1b\\[[0-9;:]{0,12}[mKHJ]".prop_map(String::into_bytes),
            "\x1b\\][0-9;a-z:/.]{0,12}(\x07|\x1b\\\\)?".prop_map(String::into_bytes),
            prop_oneof![Just(b"\x1b".to_vec()), Just(b"\x1b(B".to_vec()), Just(b"\x1bP1$r\x1b\\".to_vec())],
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn any_bytes_render_to_well_formed_html(bytes in output_bytes()) {
            let mut st = AnsiState::default();
            let (html, used) = render(&bytes, &mut st);
            prop_assert!(used <= bytes.len());
            check_well_formed(&html).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn arbitrary_bytes_render_to_well_formed_html(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (html, used) = render(&bytes, &mut AnsiState::default());
            prop_assert!(used <= bytes.len());
            check_well_formed(&html).map_err(TestCaseError::fail)?;
        }

        /// Rendering in two chunks (cut anywhere, resumed where the first
        /// call stopped, with its state) shows the same text as in one.
        #[test]
        fn rendering_resumes_where_it_stopped(bytes in output_bytes(), cut in any::<prop::sample::Index>()) {
            let whole = check_well_formed(&render(&bytes, &mut AnsiState::default()).0).map_err(TestCaseError::fail)?;
            let k = cut.index(bytes.len() + 1);
            let mut st = AnsiState::default();
            let (first, used) = render(&bytes[..k], &mut st);
            let (second, _) = render(&bytes[used..], &mut st);
            let joined = check_well_formed(&first).map_err(TestCaseError::fail)?
                + &check_well_formed(&second).map_err(TestCaseError::fail)?;
            prop_assert_eq!(joined, whole);
        }
    }
}
