//! What a view asks for, whatever the backend.

/// Wall-clock ns since the epoch; `None` leaves a side open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
}

/// What a view asks for. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    pub host: Option<String>,
    pub pid: Option<u32>,
    /// A container id prefix, a pod name or uid, or part of a cgroup path.
    pub container: Option<String>,
    pub range: TimeRange,
    /// Substring of the view's main text (path, address or name ...).
    pub contains: Option<String>,
    /// Only these sockets (flows of listed connections).
    pub sock_ids: Vec<u64>,
    pub limit: u32,
}
