//! Every error the service returns becomes a gRPC status here, in one place.

use plumbline_store::StoreError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<QueryError> for Status {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::InvalidArgument(message) => Status::invalid_argument(message),
            QueryError::NotFound(message) => Status::not_found(message),
            QueryError::Store(err) if err.is_transient() => Status::unavailable(err.to_string()),
            QueryError::Store(err) => {
                tracing::error!(%err, "store query failed");
                Status::internal(err.to_string())
            }
        }
    }
}
