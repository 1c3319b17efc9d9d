//! muster-observe: what an operator sees of a running server.
//!
//! Owns: the Prometheus recorder and the `/metrics` text ([`Metrics`]), the
//! bounded pool label ([`pool_label`]), and [`ObservedStore`], a [`Store`]
//! decorator that turns every committed task and bot change into metrics
//! (tasks created / finished, queue wait, commit latency) and one INFO log
//! line (task state changes; bot connect, death, update, terminate, delete).
//! Observing at the commit means nothing is counted that did not happen and
//! nothing that happened is missed, whichever scheduler op made it.
//! Must not: change what is committed, or label by bot or task (cardinality
//! stays per pool, capped at [`MAX_POOLS`] label values).

mod metrics_text;
mod store;

pub use metrics_text::{pool_label, Metrics, MAX_POOLS};
pub use store::ObservedStore;
