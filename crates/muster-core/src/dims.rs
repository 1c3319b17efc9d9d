//! Dimensions: what a bot has and what a task asks for (docs/client-api.md#dimensions).
//!
//! A task constraint `(k, "v1|v2")` is satisfied when the bot has `k:v1` or
//! `k:v2`. Constraints are ANDed; the same key may appear several times.

use std::collections::BTreeMap;

/// A bot's dimensions: key -> sorted, de-duplicated values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BotDimensions(pub BTreeMap<String, Vec<String>>);

impl BotDimensions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds from any key/values iterator, sorting and de-duplicating values.
    pub fn from_map<I, K, V>(it: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: IntoIterator,
        V::Item: Into<String>,
    {
        let mut m = BTreeMap::new();
        for (k, vs) in it {
            let mut vs: Vec<String> = vs.into_iter().map(Into::into).collect();
            vs.sort();
            vs.dedup();
            m.insert(k.into(), vs);
        }
        BotDimensions(m)
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has(&self, key: &str, value: &str) -> bool {
        self.get(key).iter().any(|v| v == value)
    }

    /// The first value of `key`, if any (e.g. `id`, `pool`).
    pub fn first(&self, key: &str) -> Option<&str> {
        self.get(key).first().map(String::as_str)
    }

    /// Every `key:value` pair, sorted.
    pub fn flat(&self) -> Vec<String> {
        self.0.iter().flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}:{v}"))).collect()
    }

    /// Overrides keys from `server` (server-enforced dimensions win).
    pub fn merged_with(&self, server: &BotDimensions) -> BotDimensions {
        let mut m = self.0.clone();
        for (k, v) in &server.0 {
            m.insert(k.clone(), v.clone());
        }
        BotDimensions(m)
    }

    /// Whether these dimensions satisfy every constraint of `task`.
    pub fn satisfies(&self, task: &TaskDimensions) -> bool {
        task.0.iter().all(|(k, v)| v.split('|').any(|alt| self.has(k, alt)))
    }

    /// Whether these dimensions pass a listing filter.
    pub fn matches_filter(&self, filter: &[DimFilter]) -> bool {
        filter.iter().all(|f| f.values.iter().any(|v| self.has(&f.key, v)))
    }
}

/// A task's requested dimensions: `(key, value)` pairs, value may be `a|b`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TaskDimensions(pub Vec<(String, String)>);

impl TaskDimensions {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        TaskDimensions(pairs)
    }

    /// Sorted by key then value, duplicates removed: the canonical form
    /// echoed back to clients and used as the queue key.
    pub fn canonical(&self) -> TaskDimensions {
        let mut v: Vec<(String, String)> = self
            .0
            .iter()
            .map(|(k, val)| {
                let mut alts: Vec<&str> = val.split('|').collect();
                alts.sort_unstable();
                alts.dedup();
                (k.clone(), alts.join("|"))
            })
            .collect();
        v.sort();
        v.dedup();
        TaskDimensions(v)
    }

    /// An exact, collision-free key for this dimension set (canonical form).
    pub fn queue_key(&self) -> String {
        let c = self.canonical();
        let mut s = String::new();
        for (k, v) in &c.0 {
            s.push_str(k);
            s.push('\u{1f}');
            s.push_str(v);
            s.push('\u{1e}');
        }
        s
    }

    /// The values of `key` (un-split).
    pub fn get<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The single `pool` value, if present.
    pub fn pool(&self) -> Option<&str> {
        self.get("pool").next()
    }

    /// Expands OR values into the alternatives (DNF). Each alternative is a
    /// sorted, de-duplicated list of `(key, value)` that must all be present.
    pub fn alternatives(&self) -> Vec<Vec<(String, String)>> {
        let mut alts: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (k, v) in &self.canonical().0 {
            let parts: Vec<&str> = v.split('|').collect();
            let mut next = Vec::with_capacity(alts.len() * parts.len());
            for a in &alts {
                for p in &parts {
                    let mut b = a.clone();
                    b.push((k.clone(), (*p).to_string()));
                    next.push(b);
                }
            }
            alts = next;
        }
        for a in &mut alts {
            a.sort();
            a.dedup();
        }
        alts
    }

    /// Number of alternatives without expanding them.
    pub fn alternatives_count(&self) -> usize {
        self.0.iter().map(|(_, v)| v.split('|').count()).product()
    }

    /// As a bot-dimension-like map (`k -> [values]`), OR values kept as one
    /// string. This is the manifest's `dimensions` shape.
    pub fn as_map(&self) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &self.canonical().0 {
            m.entry(k.clone()).or_default().push(v.clone());
        }
        m
    }
}

/// A listing filter element `key:v1|v2` (docs/client-api.md#paging-and-filters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DimFilter {
    pub key: String,
    pub values: Vec<String>,
}

impl DimFilter {
    /// Parses `key:value[|value...]` (tags and dimension filters).
    pub fn parse_tag(s: &str) -> Option<DimFilter> {
        let (k, v) = s.split_once(':')?;
        Some(DimFilter::new(k, v))
    }

    pub fn new(key: &str, value: &str) -> DimFilter {
        let mut values: Vec<String> = value.split('|').map(str::to_string).collect();
        values.sort();
        values.dedup();
        DimFilter { key: key.to_string(), values }
    }

    /// Whether a flat `k:v` tag list passes this filter.
    pub fn matches_tags(&self, tags: &[String]) -> bool {
        self.values
            .iter()
            .any(|v| tags.iter().any(|t| t.split_once(':').is_some_and(|(tk, tv)| tk == self.key && tv == v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(pairs: &[(&str, &[&str])]) -> BotDimensions {
        BotDimensions::from_map(pairs.iter().map(|(k, vs)| (*k, vs.iter().copied())))
    }
    fn task(pairs: &[(&str, &str)]) -> TaskDimensions {
        TaskDimensions(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn and_of_constraints_and_or_of_values() {
        let b = bot(&[("pool", &["ci"]), ("os", &["Linux", "Ubuntu"]), ("gpu", &["none"])]);
        assert!(b.satisfies(&task(&[("pool", "ci")])));
        assert!(b.satisfies(&task(&[("pool", "ci"), ("os", "Linux"), ("os", "Ubuntu")])));
        assert!(b.satisfies(&task(&[("pool", "ci"), ("os", "Mac|Linux")])));
        assert!(!b.satisfies(&task(&[("pool", "ci"), ("os", "Mac|Windows")])));
        assert!(!b.satisfies(&task(&[("pool", "ci"), ("os", "Linux"), ("os", "Mac")])));
        assert!(!b.satisfies(&task(&[("pool", "other")])));
        assert!(!b.satisfies(&task(&[("pool", "ci"), ("cpu", "x86")])));
    }

    #[test]
    fn alternatives_expand_or_values() {
        let t = task(&[("pool", "p"), ("os", "b|a"), ("gpu", "x|y")]);
        let alts = t.alternatives();
        assert_eq!(alts.len(), 4);
        assert_eq!(t.alternatives_count(), 4);
        assert!(alts.iter().all(|a| a.contains(&("pool".into(), "p".into()))));
    }

    #[test]
    fn queue_key_is_order_insensitive() {
        let a = task(&[("pool", "p"), ("os", "b|a")]);
        let b = task(&[("os", "a|b"), ("pool", "p")]);
        assert_eq!(a.queue_key(), b.queue_key());
        assert_ne!(a.queue_key(), task(&[("pool", "p"), ("os", "a")]).queue_key());
    }

    #[test]
    fn tag_filters_or_values() {
        let tags = vec!["os:Linux".to_string(), "purpose:demo".to_string()];
        assert!(DimFilter::parse_tag("os:Mac|Linux").is_some_and(|f| f.matches_tags(&tags)));
        assert!(!DimFilter::parse_tag("os:Mac").is_some_and(|f| f.matches_tags(&tags)));
    }
}
