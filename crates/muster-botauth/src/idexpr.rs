//! `bot_id` expressions of bots.cfg: `build{01..03}-linux` names
//! `build01-linux`, `build02-linux`, `build03-linux`.
//!
//! At most one `{…}` group of comma-separated non-negative integers or
//! inclusive ranges `a..b`, strictly increasing; a term's width (leading
//! zeros included) is the zero padding of the numbers it produces. `{{` and
//! `}}` stand for literal braces.

/// Expands one expression into the ids it names (in order).
pub fn expand(expr: &str) -> Result<Vec<String>, String> {
    let mut prefix = String::new();
    let mut suffix = String::new();
    let mut set: Option<String> = None;
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        let out = if set.is_some() { &mut suffix } else { &mut prefix };
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                if set.is_some() {
                    return Err(format!("{expr:?}: only one {{…}} set is allowed"));
                }
                let mut body = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => body.push(c),
                        None => return Err(format!("{expr:?}: unclosed {{")),
                    }
                }
                set = Some(body);
            }
            '}' => return Err(format!("{expr:?}: unbalanced }}")),
            c => out.push(c),
        }
    }
    let Some(body) = set else { return Ok(vec![prefix]) };
    let mut out = Vec::new();
    let mut last: Option<u64> = None;
    for term in body.split(',') {
        let term = term.trim();
        let (lo, hi) = match term.split_once("..") {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (term, term),
        };
        let width = lo.len();
        let parse = |s: &str| -> Result<u64, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{expr:?}: {term:?} is not a non-negative integer or a range a..b"));
            }
            s.parse::<u64>().map_err(|_| format!("{expr:?}: {s:?} is too large"))
        };
        let (a, b) = (parse(lo)?, parse(hi)?);
        if b < a || last.is_some_and(|l| a <= l) {
            return Err(format!("{expr:?}: the numbers in {{…}} must be strictly increasing"));
        }
        if b - a > 100_000 {
            return Err(format!("{expr:?}: range {term:?} is too large"));
        }
        for n in a..=b {
            out.push(format!("{prefix}{n:0width$}{suffix}"));
        }
        last = Some(b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_sets_ranges_padding_and_escapes() {
        assert_eq!(expand("gpu-host").expect("ok"), ["gpu-host"]);
        assert_eq!(expand("b{01..03}-l").expect("ok"), ["b01-l", "b02-l", "b03-l"]);
        assert_eq!(expand("b{1,2,5..6}").expect("ok"), ["b1", "b2", "b5", "b6"]);
        assert_eq!(expand("a{{b}}").expect("ok"), ["a{b}"]);
        assert!(expand("b{2,1}").is_err());
        assert!(expand("b{1}{2}").is_err());
        assert!(expand("b{x}").is_err());
        assert!(expand("b{1").is_err());
    }
}
