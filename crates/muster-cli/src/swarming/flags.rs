//! Command-line flags parsed the way Go's `flag` package parses them, for
//! the `swarming` personality.
//!
//! Rules (those of the upstream CLI): a flag is `-name` or `--name`, its
//! value `-name value` or `-name=value`; a boolean takes no separate value
//! (`-wait`, `-wait=false`, `-wait=0`); parsing stops at the first argument
//! that is not a flag (or `-` alone), and `--` is dropped there; a string
//! flag takes the next argument whatever it looks like (`-digest abc/12`,
//! `-reason -x`). A repeatable flag accumulates (`-tag a:b -tag c:d`).

use std::collections::BTreeMap;
use std::time::Duration;

/// How a flag parses its value.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `true`/`false` (Go's strconv.ParseBool spellings); alone means true.
    Bool,
    /// Any text.
    Str,
    /// A Go integer (`12`, `0x1f`, `1_000`).
    Int,
    /// A float (`1714500000.5`).
    Float,
    /// A Go duration (`90s`, `10m`, `1h30m`, `0`).
    Duration,
    /// Every occurrence appended after `check` accepts it (`check` sees the
    /// values so far).
    List(fn(&[String], &str) -> Result<(), String>),
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Str(String),
    Int(i64),
    Float(f64),
    Duration(Duration),
    List(Vec<String>),
}

struct Flag {
    name: &'static str,
    usage: &'static str,
    kind: Kind,
    default: Value,
    value: Value,
    /// For an alias: the flag whose value it sets.
    alias_of: Option<&'static str>,
}

/// A set of flags, in the order registered.
#[derive(Default)]
pub struct FlagSet {
    flags: Vec<Flag>,
}

/// Why parsing failed: the message Go prints (then the usage follows), or
/// `-help` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// `flag provided but not defined: -x`, `invalid value ...`.
    Bad(String),
    /// `-h` or `-help`.
    Help,
}

impl FlagSet {
    fn add(&mut self, name: &'static str, kind: Kind, default: Value, usage: &'static str) {
        self.flags.push(Flag { name, usage, kind, value: default.clone(), default, alias_of: None });
    }

    /// A boolean flag.
    pub fn bool(&mut self, name: &'static str, default: bool, usage: &'static str) {
        self.add(name, Kind::Bool, Value::Bool(default), usage);
    }
    /// A string flag.
    pub fn string(&mut self, name: &'static str, default: &str, usage: &'static str) {
        self.add(name, Kind::Str, Value::Str(default.to_string()), usage);
    }
    /// An integer flag.
    pub fn int(&mut self, name: &'static str, default: i64, usage: &'static str) {
        self.add(name, Kind::Int, Value::Int(default), usage);
    }
    /// A float flag.
    pub fn float(&mut self, name: &'static str, default: f64, usage: &'static str) {
        self.add(name, Kind::Float, Value::Float(default), usage);
    }
    /// A duration flag.
    pub fn duration(&mut self, name: &'static str, default: Duration, usage: &'static str) {
        self.add(name, Kind::Duration, Value::Duration(default), usage);
    }
    /// A repeatable flag; `check` validates each occurrence.
    pub fn list(&mut self, name: &'static str, check: fn(&[String], &str) -> Result<(), String>, usage: &'static str) {
        self.add(name, Kind::List(check), Value::List(Vec::new()), usage);
    }
    /// `name` sets the same value as `target` (registered before).
    pub fn alias(&mut self, name: &'static str, target: &'static str, usage: &'static str) {
        let Some(t) = self.flags.iter().find(|f| f.name == target) else { return };
        let (kind, default) = (t.kind, t.default.clone());
        self.flags.push(Flag { name, usage, kind, value: default.clone(), default, alias_of: Some(target) });
    }

    fn index(&self, name: &str) -> Option<usize> {
        let i = self.flags.iter().position(|f| f.name == name)?;
        match self.flags[i].alias_of {
            Some(t) => self.flags.iter().position(|f| f.name == t),
            None => Some(i),
        }
    }

    /// Whether a flag of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.index(name).is_some()
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.index(name).map(|i| &self.flags[i].value)
    }

    /// A boolean flag's value (false when unknown).
    pub fn get_bool(&self, name: &str) -> bool {
        matches!(self.value(name), Some(Value::Bool(true)))
    }
    /// A string flag's value (empty when unknown).
    pub fn get_str(&self, name: &str) -> String {
        match self.value(name) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }
    /// An integer flag's value.
    pub fn get_int(&self, name: &str) -> i64 {
        match self.value(name) {
            Some(Value::Int(n)) => *n,
            _ => 0,
        }
    }
    /// A float flag's value.
    pub fn get_float(&self, name: &str) -> f64 {
        match self.value(name) {
            Some(Value::Float(n)) => *n,
            _ => 0.0,
        }
    }
    /// A duration flag's value.
    pub fn get_duration(&self, name: &str) -> Duration {
        match self.value(name) {
            Some(Value::Duration(d)) => *d,
            _ => Duration::ZERO,
        }
    }
    /// A repeatable flag's values, in order given.
    pub fn get_list(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(Value::List(v)) => v.clone(),
            _ => Vec::new(),
        }
    }

    /// Parses `args` (without the program and verb); returns the arguments
    /// left after the flags.
    pub fn parse(&mut self, args: &[String]) -> Result<Vec<String>, ParseError> {
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a.len() < 2 || !a.starts_with('-') {
                break;
            }
            let minuses = if a.as_bytes()[1] == b'-' { 2 } else { 1 };
            if minuses == 2 && a.len() == 2 {
                i += 1;
                break;
            }
            let name = &a[minuses..];
            if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
                return Err(ParseError::Bad(format!("bad flag syntax: {a}")));
            }
            i += 1;
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            let Some(idx) = self.index(name) else {
                if name == "help" || name == "h" {
                    return Err(ParseError::Help);
                }
                return Err(ParseError::Bad(format!("flag provided but not defined: -{name}")));
            };
            let kind = self.flags[idx].kind;
            let text = match (kind, inline) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some(v)) => {
                    if parse_bool(&v).is_none() {
                        return Err(ParseError::Bad(format!("invalid boolean value {v:?} for -{name}: parse error")));
                    }
                    v
                }
                (_, Some(v)) => v,
                (_, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        v.clone()
                    }
                    None => return Err(ParseError::Bad(format!("flag needs an argument: -{name}"))),
                },
            };
            self.set(idx, &text)
                .map_err(|e| ParseError::Bad(format!("invalid value {text:?} for flag -{name}: {e}")))?;
        }
        Ok(args[i..].to_vec())
    }

    fn set(&mut self, idx: usize, text: &str) -> Result<(), String> {
        let f = &mut self.flags[idx];
        f.value = match (f.kind, &mut f.value) {
            (Kind::Bool, _) => Value::Bool(parse_bool(text).ok_or("parse error")?),
            (Kind::Str, _) => Value::Str(text.to_string()),
            (Kind::Int, _) => Value::Int(parse_int(text).ok_or("parse error")?),
            (Kind::Float, _) => Value::Float(parse_float(text).ok_or("parse error")?),
            (Kind::Duration, _) => Value::Duration(parse_duration(text)?),
            (Kind::List(check), Value::List(v)) => {
                check(v, text)?;
                let mut v = std::mem::take(v);
                v.push(text.to_string());
                Value::List(v)
            }
            (Kind::List(_), _) => return Err("internal: not a list".to_string()),
        };
        Ok(())
    }

    /// The flags' help, as Go's `PrintDefaults` writes it (sorted by name).
    pub fn defaults_text(&self) -> String {
        let mut sorted: Vec<&Flag> = self.flags.iter().collect();
        sorted.sort_by_key(|f| f.name);
        let mut out = String::new();
        for f in sorted {
            let (arg, usage) = unquote_usage(f);
            let mut line = format!("  -{}", f.name);
            if !arg.is_empty() {
                line.push(' ');
                line.push_str(&arg);
            }
            if line.len() <= 4 {
                line.push('\t');
            } else {
                line.push_str("\n    \t");
            }
            line.push_str(&usage.replace('\n', "\n    \t"));
            match &f.default {
                Value::Str(s) if !s.is_empty() => line.push_str(&format!(" (default {s:?})")),
                Value::Bool(true) => line.push_str(" (default true)"),
                Value::Int(n) if *n != 0 => line.push_str(&format!(" (default {n})")),
                Value::Float(n) if *n != 0.0 => line.push_str(&format!(" (default {n})")),
                Value::Duration(d) if !d.is_zero() => line.push_str(&format!(" (default {})", go_duration(*d))),
                _ => {}
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// The argument name shown in help: a `back-quoted` word of the usage, else
/// the type.
fn unquote_usage(f: &Flag) -> (String, String) {
    let u = f.usage;
    if let Some(start) = u.find('`') {
        if let Some(len) = u[start + 1..].find('`') {
            let name = &u[start + 1..start + 1 + len];
            let usage = format!("{}{}{}", &u[..start], name, &u[start + 2 + len..]);
            return (name.to_string(), usage);
        }
    }
    let name = match f.kind {
        Kind::Bool => "",
        Kind::Str => "string",
        Kind::Int => "int",
        Kind::Float => "float",
        Kind::Duration => "duration",
        Kind::List(_) => "value",
    };
    (name.to_string(), u.to_string())
}

/// Go's strconv.ParseBool.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's strconv.ParseInt(s, 0, 64): sign, `0x`/`0o`/`0b`/`0` prefixes,
/// underscores between digits when a prefix is given.
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.contains('_') && (!prefixed || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__"))
    {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() {
        return None;
    }
    let v = i128::from_str_radix(&digits, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// Go's strconv.ParseFloat(s, 64) for the usual spellings.
pub fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    match s.to_ascii_lowercase().trim_start_matches(['+', '-']) {
        "inf" | "infinity" | "nan" => s.parse::<f64>().ok(),
        _ => s.replace('_', "").parse::<f64>().ok(),
    }
}

/// Go's time.ParseDuration: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns,
/// us (µs), ms, s, m, h; `0` alone is zero. Negative durations are returned
/// as an error message the caller reports (`negative timeout`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    use muster_core::time::{parse_go_duration_nanos, GoDurationError};
    let bad = || format!("time: invalid duration {s:?}");
    let total = parse_go_duration_nanos(s).map_err(|e| match e {
        GoDurationError::Invalid => bad(),
        GoDurationError::MissingUnit => format!("time: missing unit in duration {s:?}"),
        GoDurationError::UnknownUnit(u) => format!("time: unknown unit {u:?} in duration {s:?}"),
    })?;
    if total < 0.0 {
        return Err(format!("negative duration {s:?}"));
    }
    if total > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// A duration as Go prints it: `1h30m0s`, `10m0s`, `1.5s`, `0s`.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let nanos = d.as_nanos();
    if nanos < 1_000_000_000 {
        return if nanos < 1_000 {
            format!("{nanos}ns")
        } else if nanos < 1_000_000 {
            format!("{}µs", trim_float(nanos as f64 / 1e3))
        } else {
            format!("{}ms", trim_float(nanos as f64 / 1e6))
        };
    }
    let h = d.as_secs() / 3600;
    let m = (d.as_secs() % 3600) / 60;
    let s = (d.as_secs() % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_float(s)));
    out
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A `key=value` map flag (Go's stringmapflag): a key alone means an empty
/// value; a key may be given once.
pub fn map_entry(so_far: &[String], v: &str) -> Result<(), String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("cannot specify an empty k=v pair".to_string());
    }
    let key = match v.find('=') {
        Some(0) => return Err("cannot have a k=v pair with empty key".to_string()),
        Some(i) => &v[..i],
        None => v,
    };
    if so_far.iter().any(|s| split_kv(s).0 == key) {
        return Err(format!("a value for key '{key}' has already been defined"));
    }
    Ok(())
}

/// A repeatable non-empty value (Go's stringlistflag).
pub fn non_empty(_: &[String], v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("must have an argument value".to_string());
    }
    Ok(())
}

/// Any repeatable value (luci's flag.StringSlice).
pub fn any_value(_: &[String], _: &str) -> Result<(), String> {
    Ok(())
}

/// `key=value` → (key, value) as a map flag stores it (trimmed; no `=` →
/// empty value).
pub fn split_kv(s: &str) -> (String, String) {
    let s = s.trim();
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// The entries of a map flag sorted by key (then value).
pub fn sorted_map(values: &[String]) -> Vec<(String, String)> {
    let m: BTreeMap<String, String> = values.iter().map(|s| split_kv(s)).collect();
    m.into_iter().collect()
}
