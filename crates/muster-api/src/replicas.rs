//! The server URLs of one muster deployment (its replicas) and which one
//! calls go to now. Shared by the bot and the CLI, which both stick to one
//! URL and move to the next when it cannot be reached. No HTTP here: the
//! callers decide what "cannot be reached" means.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A non-empty list of server URLs plus the current one. Clones share the
/// current URL.
#[derive(Debug, Clone)]
pub struct Replicas {
    urls: Arc<[String]>,
    current: Arc<AtomicUsize>,
}

impl Replicas {
    /// None when `urls` is empty.
    pub fn new(urls: Vec<String>) -> Option<Replicas> {
        (!urls.is_empty()).then(|| Replicas { urls: urls.into(), current: Arc::new(AtomicUsize::new(0)) })
    }

    /// Every URL, in failover order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Index of the URL calls go to now.
    pub fn current_index(&self) -> usize {
        self.current.load(Ordering::SeqCst) % self.urls.len()
    }

    /// The URL calls go to now.
    pub fn current(&self) -> &str {
        &self.urls[self.current_index()]
    }

    /// The URL at `index` (taken modulo the length).
    pub fn url(&self, index: usize) -> &str {
        &self.urls[index % self.urls.len()]
    }

    /// After `urls[failed]` could not be reached, moves to the next URL,
    /// unless another call already moved on. Returns the URL switched to
    /// when this call did switch.
    pub fn fail_over(&self, failed: usize) -> Option<&str> {
        if self.urls.len() < 2 {
            return None;
        }
        let next = (failed + 1) % self.urls.len();
        self.current.compare_exchange(failed, next, Ordering::SeqCst, Ordering::SeqCst).ok().map(|_| self.url(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Replicas {
        Replicas::new(vec!["http://a".into(), "http://b".into(), "http://c".into()]).expect("non-empty")
    }

    #[test]
    fn a_failure_moves_to_the_next_url_and_wraps_around() {
        let r = three();
        assert_eq!(r.current(), "http://a");
        assert_eq!(r.fail_over(0), Some("http://b"));
        assert_eq!(r.fail_over(1), Some("http://c"));
        assert_eq!(r.fail_over(2), Some("http://a"));
        assert_eq!(r.current(), "http://a");
    }

    #[test]
    fn a_stale_failure_does_not_move_again_and_clones_share_the_current_url() {
        let r = three();
        let twin = r.clone();
        assert_eq!(r.fail_over(0), Some("http://b"));
        // Another call saw the same URL fail: it already moved on.
        assert_eq!(twin.fail_over(0), None);
        assert_eq!(twin.current(), "http://b");
    }

    #[test]
    fn one_url_never_moves_and_none_is_refused() {
        let r = Replicas::new(vec!["http://only".into()]).expect("non-empty");
        assert_eq!(r.fail_over(0), None);
        assert_eq!(r.current(), "http://only");
        assert!(Replicas::new(Vec::new()).is_none());
    }
}
