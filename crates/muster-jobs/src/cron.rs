//! Cron expressions with the semantics LUCI Scheduler configs rely on (the
//! grammar is described in `docs/jobs.md`).
//!
//! Field counts: 5 = `min hour dom month dow`; 6 = `min hour dom month dow
//! year` (the sixth field is the year, not seconds); 7 = `sec min hour dom
//! month dow year`; fields past the seventh are ignored; fewer than 5 is an
//! error. Entries: `*`, `?`, `N`, `A-B`, `*/S`, `N/S` (N to the field's
//! maximum), `A-B/S`; day-of-month also `L`, `LW`, `NW`; day-of-week also
//! `NL` and `N#k`. When both day fields are restricted a day matches if
//! either does. All times are UTC.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use muster_core::Time;

/// The last year a cron expression can match.
pub const MAX_YEAR: i32 = 2099;
const MIN_YEAR: i32 = 1970;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    seconds: Vec<bool>,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    months: Vec<bool>,
    years: Vec<bool>,
    dom: DaySpec,
    dow: WeekSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DaySpec {
    restricted: bool,
    days: Vec<bool>,
    last: bool,
    last_weekday: bool,
    nearest_weekday: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct WeekSpec {
    restricted: bool,
    /// Index 0 = Sunday.
    days: Vec<bool>,
    /// `NL`: the last N-day of the month.
    last: Vec<u32>,
    /// `N#k`: the k-th N-day of the month.
    nth: Vec<(u32, u32)>,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

/// A field: its name in errors, range, and the names it accepts.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The first name stands for this number.
    names_from: u32,
}

const SECOND: Field = Field { name: "second", min: 0, max: 59, names: &[], names_from: 0 };
const MINUTE: Field = Field { name: "minute", min: 0, max: 59, names: &[], names_from: 0 };
const HOUR: Field = Field { name: "hour", min: 0, max: 23, names: &[], names_from: 0 };
const DOM: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[], names_from: 0 };
const MONTH: Field = Field { name: "month", min: 1, max: 12, names: &MONTHS, names_from: 1 };
const DOW: Field = Field { name: "day-of-week", min: 0, max: 7, names: &DAYS, names_from: 0 };
const YEAR: Field = Field { name: "year", min: MIN_YEAR as u32, max: MAX_YEAR as u32, names: &[], names_from: 0 };

impl CronExpr {
    /// Parses a cron expression or an `@hourly`-style alias.
    pub fn parse(s: &str) -> Result<CronExpr, String> {
        let s = s.trim();
        let expanded = match s.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 0 1 1 * *".to_string(),
            "@monthly" => "0 0 0 1 * * *".to_string(),
            "@weekly" => "0 0 0 * * 0 *".to_string(),
            "@daily" => "0 0 0 * * * *".to_string(),
            "@hourly" => "0 0 * * * * *".to_string(),
            other if other.starts_with('@') => return Err(format!("unknown cron alias {s:?}")),
            _ => s.to_string(),
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match f.len() {
            0..=4 => {
                return Err(format!(
                    "cron expression {s:?} has {} field(s); it needs 5 (min hour dom month dow), \
                     6 (… year) or 7 (sec … year)",
                    f.len()
                ))
            }
            5 | 6 => ("0", &f[..]),
            _ => (f[0], &f[1..]),
        };
        let year = rest.get(5).copied().unwrap_or("*");
        Ok(CronExpr {
            seconds: simple(&SECOND, sec)?,
            minutes: simple(&MINUTE, rest[0])?,
            hours: simple(&HOUR, rest[1])?,
            dom: parse_dom(rest[2])?,
            months: simple(&MONTH, rest[3])?,
            dow: parse_dow(rest[4])?,
            years: simple(&YEAR, year)?,
        })
    }

    /// The first matching time strictly after `after` (whole seconds), or
    /// None if nothing matches before the end of [`MAX_YEAR`].
    pub fn next(&self, after: Time) -> Option<Time> {
        let start = after.with_nanosecond(0).unwrap_or(after) + Duration::seconds(1);
        let mut date = start.date_naive();
        let mut from = Some(start.time());
        while date.year() <= MAX_YEAR {
            if date.year() < MIN_YEAR || !self.years[date.year() as usize] {
                date = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?;
                from = None;
                continue;
            }
            if !self.months[date.month() as usize] {
                date = first_of_next_month(date)?;
                from = None;
                continue;
            }
            if self.day_matches(date) {
                if let Some(t) = self.first_time(from.unwrap_or(NaiveTime::MIN)) {
                    return Some(Utc.from_utc_datetime(&date.and_time(t)));
                }
            }
            date = date.succ_opt()?;
            from = None;
        }
        None
    }

    /// The earliest matching time of day at or after `from`.
    fn first_time(&self, from: NaiveTime) -> Option<NaiveTime> {
        let (h0, m0, s0) = (from.hour(), from.minute(), from.second());
        for h in h0..24 {
            if !self.hours[h as usize] {
                continue;
            }
            let mstart = if h == h0 { m0 } else { 0 };
            for m in mstart..60 {
                if !self.minutes[m as usize] {
                    continue;
                }
                let sstart = if h == h0 && m == m0 { s0 } else { 0 };
                if let Some(s) = (sstart..60).find(|s| self.seconds[*s as usize]) {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
            }
        }
        None
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        match (self.dom.restricted, self.dow.restricted) {
            (false, false) => true,
            (true, false) => self.dom.matches(d),
            (false, true) => self.dow.matches(d),
            (true, true) => self.dom.matches(d) || self.dow.matches(d),
        }
    }
}

fn first_of_next_month(d: NaiveDate) -> Option<NaiveDate> {
    if d.month() == 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
    }
}

fn last_day_of_month(d: NaiveDate) -> u32 {
    first_of_next_month(d).and_then(|n| n.pred_opt()).map(|p| p.day()).unwrap_or(28)
}

fn is_weekday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The weekday nearest to day `n` of `d`'s month, never leaving the month.
fn nearest_weekday(d: NaiveDate, n: u32) -> Option<u32> {
    let last = last_day_of_month(d);
    if n > last {
        return None;
    }
    let day = d.with_day(n)?;
    Some(match day.weekday() {
        Weekday::Sat if n == 1 => 3,
        Weekday::Sat => n - 1,
        Weekday::Sun if n == last => n - 2,
        Weekday::Sun => n + 1,
        _ => n,
    })
}

impl DaySpec {
    fn matches(&self, d: NaiveDate) -> bool {
        let day = d.day();
        let last = last_day_of_month(d);
        if self.days[day as usize] || (self.last && day == last) {
            return true;
        }
        if self.last_weekday {
            let mut l = last;
            while let Some(x) = d.with_day(l) {
                if is_weekday(x) {
                    break;
                }
                l -= 1;
            }
            if day == l {
                return true;
            }
        }
        self.nearest_weekday.iter().any(|n| nearest_weekday(d, *n) == Some(day))
    }
}

impl WeekSpec {
    fn matches(&self, d: NaiveDate) -> bool {
        let wd = d.weekday().num_days_from_sunday();
        if self.days[wd as usize] {
            return true;
        }
        if self.last.contains(&wd) && d.day() + 7 > last_day_of_month(d) {
            return true;
        }
        let k = (d.day() - 1) / 7 + 1;
        self.nth.contains(&(wd, k))
    }
}

fn bad(field: &Field, entry: &str, why: &str) -> String {
    format!("bad {} field {entry:?}: {why}", field.name)
}

/// A number or (for month and day-of-week) a name, within the field's range.
fn value(field: &Field, s: &str) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower || (lower.len() == 3 && n.starts_with(&lower))) {
        return Ok(field.names_from + i as u32);
    }
    let n: u32 = s.parse().map_err(|_| bad(field, s, "not a number"))?;
    if n < field.min || n > field.max {
        return Err(bad(field, s, &format!("{n} is outside {}-{}", field.min, field.max)));
    }
    Ok(n)
}

/// The values of a comma list of `*`, `?`, `N`, `A-B`, `*/S`, `N/S`, `A-B/S`.
/// Returns a table indexed by value (true = matches) and whether the field
/// was the bare wildcard.
fn list(
    field: &Field,
    s: &str,
    special: &mut dyn FnMut(&str) -> Result<bool, String>,
) -> Result<(Vec<bool>, bool), String> {
    let mut table = vec![false; field.max as usize + 1];
    let mut wildcard = false;
    if s.is_empty() {
        return Err(bad(field, s, "empty"));
    }
    for entry in s.split(',') {
        if entry.is_empty() {
            return Err(bad(field, s, "empty entry in list"));
        }
        if special(entry)? {
            continue;
        }
        let (range, step) = match entry.split_once('/') {
            Some((r, st)) => {
                let step: u32 = st.parse().map_err(|_| bad(field, entry, "step is not a number"))?;
                if step == 0 || step > field.max {
                    return Err(bad(field, entry, &format!("step must be 1-{}", field.max)));
                }
                (r, Some(step))
            }
            None => (entry, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            if step.is_none() {
                wildcard = true;
            }
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(field, a)?, value(field, b)?);
            if a > b {
                return Err(bad(field, entry, "range start is after its end"));
            }
            (a, b)
        } else {
            let a = value(field, range)?;
            (a, if step.is_some() { field.max } else { a })
        };
        let mut v = lo;
        while v <= hi {
            table[v as usize] = true;
            v += step.unwrap_or(1);
        }
    }
    Ok((table, wildcard))
}

fn simple(field: &Field, s: &str) -> Result<Vec<bool>, String> {
    let (t, _) = list(field, s, &mut |_| Ok(false))?;
    Ok(t)
}

fn parse_dom(s: &str) -> Result<DaySpec, String> {
    let mut spec = DaySpec::default();
    let mut extra = |e: &str| -> Result<bool, String> {
        let u = e.to_ascii_uppercase();
        if u == "L" {
            spec.last = true;
            return Ok(true);
        }
        if u == "LW" {
            spec.last_weekday = true;
            return Ok(true);
        }
        if let Some(n) = u.strip_suffix('W') {
            spec.nearest_weekday.push(value(&DOM, n)?);
            return Ok(true);
        }
        Ok(false)
    };
    let (days, wildcard) = list(&DOM, s, &mut extra)?;
    spec.days = days;
    spec.restricted = !wildcard;
    Ok(spec)
}

fn parse_dow(s: &str) -> Result<WeekSpec, String> {
    let mut spec = WeekSpec::default();
    let sunday = |n: u32| if n == 7 { 0 } else { n };
    let mut extra = |e: &str| -> Result<bool, String> {
        if let Some((n, k)) = e.split_once('#') {
            let k: u32 = k.parse().map_err(|_| bad(&DOW, e, "the k of N#k is not a number"))?;
            if !(1..=5).contains(&k) {
                return Err(bad(&DOW, e, "the k of N#k must be 1-5"));
            }
            spec.nth.push((sunday(value(&DOW, n)?), k));
            return Ok(true);
        }
        if e.len() > 1 {
            if let Some(n) = e.strip_suffix('L').or_else(|| e.strip_suffix('l')) {
                spec.last.push(sunday(value(&DOW, n)?));
                return Ok(true);
            }
        }
        Ok(false)
    };
    let (mut days, wildcard) = list(&DOW, s, &mut extra)?;
    if days[7] {
        days[0] = true;
    }
    days.truncate(7);
    spec.days = days;
    spec.restricted = !wildcard;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        chrono::DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
    }

    fn next(expr: &str, from: &str) -> Option<String> {
        let e = CronExpr::parse(expr).expect("parses");
        e.next(t(from)).map(|x| x.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    #[test]
    fn table_of_next_ticks() {
        let cases = [
            ("* * * * *", "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z"),
            ("* * * * *", "2024-05-01T10:00:30.5Z", "2024-05-01T10:01:00Z"),
            ("*/15 * * * *", "2024-05-01T10:07:00Z", "2024-05-01T10:15:00Z"),
            ("0 3 * * *", "2024-05-01T03:00:00Z", "2024-05-02T03:00:00Z"),
            ("@hourly", "2024-05-01T10:59:59Z", "2024-05-01T11:00:00Z"),
            ("@daily", "2024-12-31T12:00:00Z", "2025-01-01T00:00:00Z"),
            ("@weekly", "2024-05-01T00:00:00Z", "2024-05-05T00:00:00Z"),
            ("@monthly", "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z"),
            ("@yearly", "2024-05-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            // 6 fields: the sixth is the year.
            ("0 0 1 1 * 2030", "2024-05-01T00:00:00Z", "2030-01-01T00:00:00Z"),
            // 7 fields: seconds first.
            ("*/10 * * * * * *", "2024-05-01T00:00:05Z", "2024-05-01T00:00:10Z"),
            // The upstream doc example: every minute of hour 00.
            ("* 0 * * * *", "2024-05-01T00:59:00Z", "2024-05-02T00:00:00Z"),
            // dom and dow both restricted: either matches (1st or a Monday).
            ("0 0 1 * mon", "2024-05-02T00:00:00Z", "2024-05-06T00:00:00Z"),
            ("0 0 L * *", "2024-02-01T00:00:00Z", "2024-02-29T00:00:00Z"),
            // 2024-06-30 is a Sunday: the last weekday is Friday the 28th.
            ("0 0 LW * *", "2024-06-01T00:00:00Z", "2024-06-28T00:00:00Z"),
            // 2024-06-01 is a Saturday: nearest weekday is Monday the 3rd.
            ("0 0 1W * *", "2024-05-31T00:00:00Z", "2024-06-03T00:00:00Z"),
            // 2024-06-15 is a Saturday: Friday the 14th.
            ("0 0 15W * *", "2024-06-01T00:00:00Z", "2024-06-14T00:00:00Z"),
            // Last Friday of May 2024 is the 31st.
            ("0 0 * * 5L", "2024-05-01T00:00:00Z", "2024-05-31T00:00:00Z"),
            // Second Tuesday of May 2024 is the 14th.
            ("0 0 * * 2#2", "2024-05-01T00:00:00Z", "2024-05-14T00:00:00Z"),
            ("0 0 * * 7", "2024-05-01T00:00:00Z", "2024-05-05T00:00:00Z"),
            ("0 9 * * MON-FRI", "2024-05-03T09:00:00Z", "2024-05-06T09:00:00Z"),
            ("0 0 1 feb,Dec *", "2024-03-01T00:00:00Z", "2024-12-01T00:00:00Z"),
            ("30 */4 * * *", "2024-05-01T21:00:00Z", "2024-05-02T00:30:00Z"),
            ("5/20 * * * *", "2024-05-01T00:46:00Z", "2024-05-01T01:05:00Z"),
            ("0 0 29 2 *", "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ];
        for (expr, from, want) in cases {
            assert_eq!(next(expr, from).as_deref(), Some(want), "{expr} after {from}");
        }
    }

    #[test]
    fn a_past_year_never_matches() {
        assert_eq!(next("0 0 1 1 * 2020", "2024-05-01T00:00:00Z"), None);
        assert_eq!(next("* * * * * 2099", "2100-01-01T00:00:00Z"), None);
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let cases = [
            ("61 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day-of-month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day-of-week"),
            ("* * * *", "5"),
            ("garbage", "1 field"),
            ("*/0 * * * *", "step"),
            ("5-1 * * * *", "range"),
            ("* * * * * 1969", "year"),
            ("@reboot", "alias"),
            ("1,,2 * * * *", "empty"),
        ];
        for (expr, needle) in cases {
            let e = CronExpr::parse(expr).expect_err(expr);
            assert!(e.contains(needle), "{expr}: {e}");
        }
    }
}
