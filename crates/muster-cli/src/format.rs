//! Output formatting: human text and the JSON shapes of the upstream CLI.
//!
//! Owns: relative times ("3m ago"), durations, aligned tables, ANSI colors
//! (only when asked; the caller decides from `isatty`), state names, and the
//! JSON writers (snake_case proto names, 1-space indentation, int64 as
//! strings, enums as names, defaults omitted, trailing newline).

use crate::error::CliError;
use muster_api::pb;
use muster_core::Time;
use serde::Serialize;
use serde_json::Value;
use std::io::Write;

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// A message as a snake_case JSON value.
pub fn snake<M: Serialize>(msg: &M) -> Result<Value, CliError> {
    muster_api::json::to_snake_value(msg).map_err(|e| CliError::Io(format!("encoding JSON: {e}")))
}

/// The CLI's JSON text of a value: 1-space indentation and a trailing newline.
pub fn json_text(v: &Value) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b" "));
    // Serializing a Value into a Vec cannot fail.
    if v.serialize(&mut ser).is_err() {
        return "null\n".to_string();
    }
    buf.push(b'\n');
    String::from_utf8_lossy(&buf).into_owned()
}

/// Writes a value as CLI JSON.
pub fn write_json(out: &mut dyn Write, v: &Value) -> Result<(), CliError> {
    out.write_all(json_text(v).as_bytes()).map_err(|e| CliError::io("writing output", e))
}

/// Writes a value to `path` (`-` = `out`).
pub fn write_json_file(path: &str, out: &mut dyn Write, v: &Value) -> Result<(), CliError> {
    if path == "-" {
        return write_json(out, v);
    }
    std::fs::write(path, json_text(v)).map_err(|e| CliError::io(format!("writing {path}"), e))
}

/// `{"tasks": [TaskRequestMetadataResponse...]}`: the output of trigger,
/// spawn-tasks and run.
pub fn tasks_output(tasks: &[pb::TaskRequestMetadataResponse]) -> Result<Value, CliError> {
    let list = tasks.iter().map(snake).collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::json!({ "tasks": list }))
}

/// A list of messages as a JSON array.
pub fn list_output<M: Serialize>(items: &[M]) -> Result<Value, CliError> {
    Ok(Value::Array(items.iter().map(snake).collect::<Result<Vec<_>, _>>()?))
}

/// Writes raw bytes (task output).
pub fn write_bytes(out: &mut dyn Write, b: &[u8]) -> Result<(), CliError> {
    out.write_all(b).and_then(|()| out.flush()).map_err(|e| CliError::io("writing output", e))
}

/// Writes a line.
pub fn line(out: &mut dyn Write, s: &str) -> Result<(), CliError> {
    writeln!(out, "{s}").map_err(|e| CliError::io("writing output", e))
}

// ---------------------------------------------------------------------------
// Times and durations
// ---------------------------------------------------------------------------

/// `t` relative to `now`: `just now`, `42s ago`, `3m ago`, `5h ago`,
/// `12d ago`; times in the future read `in 3m`.
pub fn relative_time(t: Time, now: Time) -> String {
    let secs = (now - t).num_seconds();
    let (future, secs) = if secs < 0 { (true, -secs) } else { (false, secs) };
    let amount = if secs < 1 {
        return "just now".to_string();
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if secs < 86_400 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86_400)
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// An optional timestamp relative to `now`, `-` when absent.
pub fn relative_ts(t: Option<&pb::Timestamp>, now: Time) -> String {
    t.and_then(pb::Timestamp::to_datetime).map_or_else(|| "-".to_string(), |t| relative_time(t, now))
}

/// A duration in seconds: `850ms`, `12.3s`, `3m04s`, `2h05m`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_string();
    }
    if secs < 1.0 {
        return format!("{}ms", (secs * 1000.0).round() as u64);
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

// ---------------------------------------------------------------------------
// States
// ---------------------------------------------------------------------------

/// `COMPLETED`, `RUNNING`, ... for a wire state number.
pub fn state_name(state: i32) -> String {
    pb::TaskState::try_from(state).map_or_else(|_| format!("STATE_{state}"), |s| s.as_str_name().to_string())
}

/// Whether a wire state is final (anything but PENDING and RUNNING).
pub fn is_final(state: i32) -> bool {
    state != pb::TaskState::Pending as i32 && state != pb::TaskState::Running as i32
}

/// The state shown to humans: `COMPLETED (FAILURE)` for a failed task.
pub fn result_state(r: &pb::TaskResultResponse) -> String {
    let name = state_name(r.state);
    if r.state == pb::TaskState::Completed as i32 && r.failure {
        format!("{name} (FAILURE)")
    } else if !r.deduped_from.is_empty() {
        format!("{name} (DEDUPED)")
    } else {
        name
    }
}

// ---------------------------------------------------------------------------
// Colors
// ---------------------------------------------------------------------------

/// ANSI styling, a no-op when disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Emit escape codes.
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    /// Bold.
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    /// Dim.
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    /// Green.
    pub fn good(&self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Red.
    pub fn bad(&self, s: &str) -> String {
        self.paint("31", s)
    }
    /// Yellow.
    pub fn warn(&self, s: &str) -> String {
        self.paint("33", s)
    }
    /// Cyan.
    pub fn info(&self, s: &str) -> String {
        self.paint("36", s)
    }

    /// A task state text colored by what it means.
    pub fn state(&self, r: &pb::TaskResultResponse) -> String {
        let text = result_state(r);
        match pb::TaskState::try_from(r.state) {
            Ok(pb::TaskState::Completed) if !r.failure => self.good(&text),
            Ok(pb::TaskState::Running) => self.info(&text),
            Ok(pb::TaskState::Pending) => self.warn(&text),
            _ => self.bad(&text),
        }
    }
}

/// Length of `s` as displayed: characters outside ANSI escape sequences.
pub fn visible_width(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        if in_escape {
            if c == 'm' {
                in_escape = false;
            }
        } else if c == '\x1b' {
            in_escape = true;
        } else {
            n += 1;
        }
    }
    n
}

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

/// A table with left-aligned columns separated by two spaces; the last
/// column is not padded; widths ignore ANSI escapes.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header row.
    pub fn new(headers: &[&str]) -> Table {
        Table { rows: vec![headers.iter().map(|h| h.to_string()).collect()] }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rendered text, one line per row, each ending in `\n`.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(visible_width(c));
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < r.len() {
                    line.push_str(&" ".repeat(widths[i] - visible_width(c) + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `k1=v1,k2=v2` of a dimension list, values joined by `|`; keys in `keys`
/// first (in that order), or all keys when `keys` is empty.
pub fn dims_text(dims: &[pb::StringListPair], keys: &[&str]) -> String {
    let pick: Vec<&pb::StringListPair> = if keys.is_empty() {
        dims.iter().collect()
    } else {
        keys.iter().filter_map(|k| dims.iter().find(|d| d.key == *k)).collect()
    };
    pick.iter().map(|d| format!("{}={}", d.key, d.value.join("|"))).collect::<Vec<_>>().join(" ")
}

/// A bot's status word (maintenance > quarantined > dead > busy > idle).
pub fn bot_status(b: &pb::BotInfo) -> &'static str {
    if b.deleted {
        "deleted"
    } else if !b.maintenance_msg.is_empty() {
        "maintenance"
    } else if b.quarantined {
        "quarantined"
    } else if b.is_dead {
        "dead"
    } else if !b.task_id.is_empty() {
        "busy"
    } else {
        "idle"
    }
}

/// One shell word for `arg`: unchanged when it holds only characters a POSIX
/// shell takes literally, else single-quoted (a `'` becomes `'\''`). Pasting
/// the result into `sh` gives back `arg`.
pub fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// A command line as shell words (see [`shell_quote`]).
pub fn shell_join(args: &[String]) -> String {
    args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}
