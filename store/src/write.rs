//! The write side of the store: rows in. Each backend creates or migrates
//! its schema when it opens, then takes [`RowSet`]s.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{RowSet, StoreError};

#[async_trait]
pub trait StoreWrite: Send + Sync {
    /// Writes every row. Idempotent: writing the same rows again (a
    /// re-delivery after a crash) leaves what queries see unchanged. The rows
    /// are shared, not copied, with a backend that writes on another thread.
    async fn write(&self, rows: Arc<RowSet>) -> Result<(), StoreError>;
}
