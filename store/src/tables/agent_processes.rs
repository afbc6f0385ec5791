//! `agent_processes`: a process's membership of an agent, by a mapping rule
//! or its parent's. A process can be remapped (a rule changed): its latest
//! row holds; an empty agent means it was unmapped.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

activity_row! {
    pub struct AgentProcessRow {
        /// Empty when a rule change unmapped the process.
        pub agent: String,
        /// The rule's name.
        pub rule: String,
        /// The field the rule matched ("PROCESS_NAME", "COMMAND_LINE" ... or "PARENT").
        pub matched_on: String,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "agent_processes",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[("agent", Col::Label), ("rule", Col::Label), ("matched_on", Col::Label)],
    key: &["host", "boot_id", "pid", "process_start_key_ns", "ts_ns"],
    key_time_first: true,
    indexes: &["wall_ns"],
    added: &[],
};
