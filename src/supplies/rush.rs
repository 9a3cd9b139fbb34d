//! The reservation rush (owner: rush): reservations are queued to one writer that commits them
//! in batches — one transaction and one fsync for many requests — and answers each request only
//! after its batch is committed, so an acknowledged reservation survives a crash. SCAFFOLD: one
//! transaction per request until the batcher is built.

use anxin_store::supplies::campaigns::{self, ReserveRequest, Reserved};
use anxin_store::tx::WriteCtx;
use anxin_store::{Store, StoreError};

/// The rush writer of one app.
#[derive(Debug, Default)]
pub struct Rush {}

impl Rush {
    pub fn new() -> Self {
        Self {}
    }

    /// Reserve for `req`; answers once the reservation is committed (or refused).
    pub async fn reserve(
        &self,
        store: &Store,
        req: ReserveRequest,
        request_id: String,
    ) -> Result<Reserved, StoreError> {
        let ctx = WriteCtx::by(req.actor, request_id);
        let mut out = store
            .write(ctx, move |tx| campaigns::reserve_many(tx, &[req]))
            .await?;
        out.pop()
            .unwrap_or_else(|| Err(StoreError::Backend("no answer".into())))
    }
}
