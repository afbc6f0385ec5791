//! What a process read asks for and what it answers, whatever the backend.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use crate::filter::TimeRange;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFilter {
    pub host: Option<String>,
    pub boot_id: Option<String>,
    pub pid: Option<u32>,
    pub start_key_ns: Option<u64>,
    /// Processes whose parent is one of these pids (empty: any parent).
    pub ppids: Vec<u32>,
    /// Processes alive at some point of the range.
    pub range: TimeRange,
    /// Substring of comm or executable path (case-sensitive).
    pub name_contains: Option<String>,
    /// Substring of any argument (case-sensitive).
    pub argv_contains: Option<String>,
    pub limit: u32,
}

/// One process, folded from all its lifecycle rows.
///
/// Field order is the column order of both backends' SELECT.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub host: String,
    pub boot_id: String,
    pub pid: u32,
    pub start_key_ns: u64,
    pub ppid: u32,
    pub start_wall_ns: u64,
    pub uid: u32,
    pub comm: String,
    pub exe: String,
    pub argv: Vec<String>,
    pub cgroup_id: u64,
    pub exited: bool,
    pub exit_code: i32,
    pub exit_signal: u32,
    pub exit_wall_ns: u64,
    pub seen_running: bool,
    pub exec_count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub process_events: u64,
    pub dead_letters: u64,
    pub lost_events: u64,
    pub hosts: Vec<String>,
}
