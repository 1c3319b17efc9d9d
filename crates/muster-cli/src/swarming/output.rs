//! The JSON the upstream CLI writes, byte for byte where it matters.
//!
//! Messages are written like Go's protojson with the original proto field
//! names (snake_case), in declaration order, then re-indented like Go's
//! `json.Indent` with one space: a single message is one object; a list is
//! `[\n {...},\n {...}\n]`; a map is `{\n "id": {...}\n}`; empty ones are
//! `[]` / `{}`; every output ends with a newline.
//!
//! Where the output goes: `-json-output -` (stdout), a file (created before
//! the command runs, so a failed command leaves it empty, as upstream), or
//! nowhere.

use crate::error::CliError;
use serde::Serialize;
use std::io::Write;

/// A message as compact protojson text with snake_case keys.
pub fn proto_json<M: Serialize>(msg: &M) -> Result<String, CliError> {
    let camel = serde_json::to_string(msg).map_err(|e| CliError::Io(format!("encoding JSON: {e}")))?;
    Ok(indent(&camel, "", true))
}

/// Re-indents compact JSON `text` like Go's `json.Indent(dst, src, prefix,
/// " ")`; with `snake`, object keys become snake_case and floats lose a
/// trailing `.0` (Go writes `3`, not `3.0`).
pub fn indent(text: &str, prefix: &str, snake: bool) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut need_indent = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(prefix);
        for _ in 0..depth {
            out.push(' ');
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if need_indent && c != '}' && c != ']' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let s: String = chars[start..=i.min(chars.len() - 1)].iter().collect();
                i += 1;
                // A key is a string followed by ':'.
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if snake && chars.get(j) == Some(&':') {
                    out.push_str(&muster_api::json::camel_to_snake(&s));
                } else {
                    out.push_str(&s);
                }
                continue;
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], ',' | '}' | ']' | ':') && !chars[i].is_whitespace() {
                    i += 1;
                }
                let tok: String = chars[start..i].iter().collect();
                let tok = if snake && tok.ends_with(".0") && !tok.contains(['e', 'E']) {
                    tok[..tok.len() - 2].to_string()
                } else {
                    tok
                };
                out.push_str(&tok);
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Go's `json.Marshal` escapes `<`, `>` and `&` in strings (they can only
/// occur inside strings in JSON text).
pub fn go_html_escape(text: &str) -> String {
    text.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unknown,
    OneShot,
    List,
    Map,
}

/// Where `-json-output` goes and what has been written to it.
pub struct Sink {
    dest: Dest,
    mode: Mode,
    calls: usize,
    buf: String,
}

enum Dest {
    Discard,
    Stdout,
    File(std::fs::File, String),
}

impl Sink {
    /// The sink for a `-json-output` value: empty = nowhere, `-` = stdout,
    /// else the file (created now).
    pub fn open(path: &str) -> Result<Sink, String> {
        let dest = match path {
            "" => Dest::Discard,
            "-" => Dest::Stdout,
            p => Dest::File(
                std::fs::File::create(p).map_err(|e| format!("opening JSON output file for writing: {e}"))?,
                p.to_string(),
            ),
        };
        Ok(Sink { dest, mode: Mode::Unknown, calls: 0, buf: String::new() })
    }

    /// Whether anything written is kept.
    pub fn enabled(&self) -> bool {
        !matches!(self.dest, Dest::Discard)
    }

    fn append(&mut self, mode: Mode, key: Option<&str>, compact: &str) {
        if !self.enabled() {
            return;
        }
        self.mode = mode;
        self.calls += 1;
        if self.calls == 1 {
            match mode {
                Mode::List => self.buf.push_str("[\n "),
                Mode::Map => self.buf.push_str("{\n "),
                _ => {}
            }
        } else {
            self.buf.push_str(",\n ");
        }
        if let Some(k) = key {
            self.buf.push_str(&serde_json::Value::String(k.to_string()).to_string());
            self.buf.push_str(": ");
        }
        let prefix = if matches!(mode, Mode::List | Mode::Map) { " " } else { "" };
        self.buf.push_str(&indent(compact, prefix, false));
    }

    /// The whole output is this message.
    pub fn proto<M: Serialize>(&mut self, msg: &M) -> Result<(), CliError> {
        let text = proto_json(msg)?;
        self.append(Mode::OneShot, None, &text);
        Ok(())
    }

    /// The whole output is this JSON value (Go's encoding/json: keys sorted,
    /// HTML characters escaped).
    pub fn json(&mut self, v: &serde_json::Value) {
        let text = go_html_escape(&v.to_string());
        self.append(Mode::OneShot, None, &text);
    }

    /// The output is a list (empty so far).
    pub fn start_list(&mut self) {
        self.mode = Mode::List;
    }

    /// One more list item.
    pub fn list_entry<M: Serialize>(&mut self, msg: &M) -> Result<(), CliError> {
        let text = proto_json(msg)?;
        self.append(Mode::List, None, &text);
        Ok(())
    }

    /// The output is a map (empty so far).
    pub fn start_map(&mut self) {
        self.mode = Mode::Map;
    }

    /// One more map entry, already compact protojson.
    pub fn map_entry_text(&mut self, key: &str, compact: &str) {
        self.append(Mode::Map, Some(key), compact);
    }

    /// Closes the list or map and writes everything out.
    pub fn finalize(mut self, stdout: &mut dyn Write) -> Result<(), String> {
        match self.mode {
            Mode::Unknown => {}
            Mode::OneShot => self.buf.push('\n'),
            Mode::List => self.buf.push_str(if self.calls == 0 { "[]\n" } else { "\n]\n" }),
            Mode::Map => self.buf.push_str(if self.calls == 0 { "{}\n" } else { "\n}\n" }),
        }
        match &mut self.dest {
            Dest::Discard => Ok(()),
            Dest::Stdout => stdout.write_all(self.buf.as_bytes()).map_err(|e| e.to_string()),
            Dest::File(f, path) => {
                f.write_all(self.buf.as_bytes()).and_then(|()| f.flush()).map_err(|e| format!("writing {path}: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_matches_go() {
        let t = r#"{"taskId":"1","a":[],"b":{},"c":[1,2],"d":{"eE":3.0}}"#;
        assert_eq!(
            indent(t, "", true),
            "{\n \"task_id\": \"1\",\n \"a\": [],\n \"b\": {},\n \"c\": [\n  1,\n  2\n ],\n \"d\": {\n  \"e_e\": 3\n }\n}"
        );
        assert_eq!(indent(r#"{"a":"x:{,}\"y"}"#, " ", false), "{\n  \"a\": \"x:{,}\\\"y\"\n }");
    }
}
