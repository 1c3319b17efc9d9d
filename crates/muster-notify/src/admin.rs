//! The operator's view of the outbox: list and retry
//! (`muster notifications list|retry`).

use muster_core::{Error, Time};
use muster_store::outbox::{OutboxRow, OutboxWrite, DEAD};
use muster_store::{Store, Txn, Write};

/// Newest first; only dead rows when `dead`.
pub async fn list(store: &dyn Store, dead: bool, limit: usize) -> muster_core::error::Result<Vec<OutboxRow>> {
    let ob = store.outbox().ok_or_else(|| Error::internal("this store keeps no notifications"))?;
    Ok(ob.list_outbox(dead.then_some(DEAD), limit).await?)
}

/// Puts a dead row back in the queue, due `now`. Retrying a row that is not
/// dead changes nothing (idempotent); an unknown id is NOT_FOUND. Returns
/// the row as it is afterwards.
pub async fn retry(store: &dyn Store, delivery_id: &str, now: Time) -> muster_core::error::Result<OutboxRow> {
    let ob = store.outbox().ok_or_else(|| Error::internal("this store keeps no notifications"))?;
    if ob.get_outbox(delivery_id).await?.is_none() {
        return Err(Error::not_found(format!("no notification {delivery_id:?}")));
    }
    let w = OutboxWrite::Retry { delivery_id: delivery_id.to_string(), at: now };
    store.commit(Txn::new().with(Write::Outbox(Box::new(w))).quiet()).await?;
    ob.get_outbox(delivery_id).await?.ok_or_else(|| Error::not_found(format!("no notification {delivery_id:?}")))
}
