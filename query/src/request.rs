//! What every view's request has in common: its time range and its limit,
//! checked and turned into the store's terms once.

use plumbline_proto::v1;
use plumbline_store::TimeRange;

use crate::error::QueryError;

/// Rows answered when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most rows one request is answered.
pub const MAX_LIMIT: u32 = 10_000;

/// The store's range for a request's; 0 at either end leaves it open.
pub fn time_range(range: Option<v1::TimeRange>) -> Result<TimeRange, QueryError> {
    let range = range.unwrap_or_default();
    if range.start_ns != 0 && range.end_ns != 0 && range.start_ns > range.end_ns {
        return Err(QueryError::InvalidArgument("range starts after it ends".into()));
    }
    Ok(TimeRange {
        start_ns: (range.start_ns != 0).then_some(range.start_ns),
        end_ns: (range.end_ns != 0).then_some(range.end_ns),
    })
}

/// A request's limit: 0 means the default; above the most, the most.
pub fn limit(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// An empty string filters nothing.
pub fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}
