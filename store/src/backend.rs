//! The seam each store implements for the read side: its SQL dialect and
//! how it runs one query. Every view (read.rs and the modules it calls) is
//! written once over it.

use async_trait::async_trait;

use crate::sql::{Sql, SqlDialect};
use crate::tables::row::ViewRow;
use crate::{PipelineStats, StoreError};

/// What a backend gives the views: its dialect and a way to run one query.
/// The pipeline's counts are the one read each backend writes itself.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The server or library and its version.
    fn describe(&self) -> String;

    fn dialect(&self) -> SqlDialect;

    /// Runs `sql` with its arguments bound in order; columns map to `T`.
    async fn fetch<T: ViewRow>(&self, sql: Sql) -> Result<Vec<T>, StoreError>;

    async fn count_pipeline(&self) -> Result<PipelineStats, StoreError>;
}
