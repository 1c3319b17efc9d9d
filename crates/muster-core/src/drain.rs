//! Drains: an operator puts a bot, a pool, or every bot matching some
//! dimensions into maintenance. A drained bot finishes its current task and
//! is given no other until the drain is lifted. Drains are durable (stored)
//! and independent of what bots report about themselves.

use crate::dims::{BotDimensions, TaskDimensions};
use crate::Time;

/// What a drain covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DrainTarget {
    /// One bot, by id.
    Bot(String),
    /// Every bot with `pool:<name>`.
    Pool(String),
    /// Every bot whose dimensions satisfy all of these `key:value`
    /// constraints (canonical; a value may be `a|b`).
    Dimensions(TaskDimensions),
}

impl DrainTarget {
    /// A dimension-filter target in canonical form.
    pub fn dimensions(pairs: Vec<(String, String)>) -> DrainTarget {
        DrainTarget::Dimensions(TaskDimensions(pairs).canonical())
    }

    /// The unique stored key: `bot:<id>`, `pool:<name>` or
    /// `dimensions:<k:v>\n<k:v>...` (canonical order).
    pub fn key(&self) -> String {
        match self {
            DrainTarget::Bot(b) => format!("bot:{b}"),
            DrainTarget::Pool(p) => format!("pool:{p}"),
            DrainTarget::Dimensions(d) => {
                let pairs: Vec<String> = d.canonical().0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("dimensions:{}", pairs.join("\n"))
            }
        }
    }

    /// Parses [`DrainTarget::key`].
    pub fn from_key(key: &str) -> Option<DrainTarget> {
        let (kind, rest) = key.split_once(':')?;
        match kind {
            "bot" if !rest.is_empty() => Some(DrainTarget::Bot(rest.to_string())),
            "pool" if !rest.is_empty() => Some(DrainTarget::Pool(rest.to_string())),
            "dimensions" => {
                let pairs: Option<Vec<(String, String)>> =
                    rest.split('\n').map(|p| p.split_once(':').map(|(k, v)| (k.to_string(), v.to_string()))).collect();
                pairs.filter(|p| !p.is_empty()).map(DrainTarget::dimensions)
            }
            _ => None,
        }
    }

    /// Whether a bot with these id and dimensions is covered.
    pub fn covers(&self, bot_id: &str, dims: &BotDimensions) -> bool {
        match self {
            DrainTarget::Bot(b) => b == bot_id,
            DrainTarget::Pool(p) => dims.has("pool", p),
            DrainTarget::Dimensions(d) => dims.satisfies(d),
        }
    }

    /// For people: `bot b1`, `pool ci`, `bots with os:Linux and gpu:none`.
    pub fn describe(&self) -> String {
        match self {
            DrainTarget::Bot(b) => format!("bot {b}"),
            DrainTarget::Pool(p) => format!("pool {p}"),
            DrainTarget::Dimensions(d) => {
                let pairs: Vec<String> = d.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("bots with {}", pairs.join(" and "))
            }
        }
    }
}

/// One drain, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drain {
    pub target: DrainTarget,
    /// Why (free text from the operator; may be empty).
    pub reason: String,
    /// Who asked (identity of the caller).
    pub created_by: String,
    pub created: Time,
}

impl Drain {
    /// The maintenance message a covered bot shows.
    pub fn message(&self) -> String {
        if self.reason.is_empty() {
            format!("drained ({})", self.target.describe())
        } else {
            format!("drained ({}): {}", self.target.describe(), self.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(pairs: &[(&str, &[&str])]) -> BotDimensions {
        BotDimensions::from_map(pairs.iter().map(|(k, vs)| (*k, vs.iter().copied())))
    }

    #[test]
    fn keys_round_trip_and_are_canonical() {
        let a = DrainTarget::dimensions(vec![("os".into(), "Mac|Linux".into()), ("gpu".into(), "none".into())]);
        let b = DrainTarget::dimensions(vec![("gpu".into(), "none".into()), ("os".into(), "Linux|Mac".into())]);
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), "dimensions:gpu:none\nos:Linux|Mac");
        for t in [a, DrainTarget::Bot("b-1".into()), DrainTarget::Pool("ci".into())] {
            assert_eq!(DrainTarget::from_key(&t.key()), Some(t.clone()), "{}", t.key());
        }
        assert_eq!(DrainTarget::from_key("pool:"), None);
        assert_eq!(DrainTarget::from_key("nonsense"), None);
    }

    #[test]
    fn coverage_by_bot_pool_and_dimensions() {
        let d = bot(&[("id", &["b1"]), ("pool", &["ci", "try"]), ("os", &["Linux"])]);
        assert!(DrainTarget::Bot("b1".into()).covers("b1", &d));
        assert!(!DrainTarget::Bot("b2".into()).covers("b1", &d));
        assert!(DrainTarget::Pool("try".into()).covers("b1", &d));
        assert!(!DrainTarget::Pool("prod".into()).covers("b1", &d));
        assert!(DrainTarget::dimensions(vec![("os".into(), "Mac|Linux".into())]).covers("b1", &d));
        assert!(
            !DrainTarget::dimensions(vec![("os".into(), "Linux".into()), ("gpu".into(), "x".into())]).covers("b1", &d)
        );
    }
}
