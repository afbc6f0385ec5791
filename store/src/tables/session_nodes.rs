//! `session_nodes`: what happened in an agent session, in the order it
//! happened — LLM calls, the tool calls they asked for, the tool results
//! sent back, and the kernel effects of the session's process tree (processes
//! started, files written or named by a tool call, connections, lookups).
//! A session is one LLM-calling process and its descendants; `session` is
//! its id (`s` and 12 hex digits).

use super::row::activity_row;
use super::spec::{Col, TableSpec};

/// `kind` values.
pub mod node_kind {
    pub const LLM_CALL: &str = "llm_call";
    pub const TOOL_CALL: &str = "tool_call";
    /// An action the response's text announced ("I'll run `pytest`").
    pub const ANNOUNCEMENT: &str = "announcement";
    pub const TOOL_RESULT: &str = "tool_result";
    pub const EXEC: &str = "exec";
    pub const FILE: &str = "file";
    pub const CONNECT: &str = "connect";
    pub const LOOKUP: &str = "lookup";
    /// A workload policy's decision on one of the session's processes: an
    /// exec, open or connect refused, killed, or (audit) recorded.
    pub const ENFORCEMENT: &str = "enforcement";
    /// What the kernel's record says of a tool call: verified, unverified,
    /// or unjudgeable, with the rule and the evidence.
    pub const VERDICT: &str = "verdict";
}

activity_row! {
    pub struct SessionNodeRow {
        pub session: String,
        /// The agent the session's process belongs to ("" when none matched).
        pub agent: String,
        /// Unique within the session; edges name nodes by it.
        pub node: u64,
        pub kind: String,
        /// One line: the command line, "write /path", "connect 10.0.0.7:443",
        /// "read_file {\"path\": …}".
        pub label: String,
        /// More of it: a tool call's arguments, a tool result's text, the model.
        pub detail: String,
        /// Tokens of an LLM call (input + output).
        pub tokens: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "session_nodes",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("session", Col::Text),
        ("agent", Col::Label),
        ("node", Col::U64),
        ("kind", Col::Label),
        ("label", Col::Text),
        ("detail", Col::LongText),
        ("tokens", Col::U64),
    ],
    key: &["session", "ts_ns", "node"],
    key_time_first: true,
    indexes: &["session, wall_ns", "host, pid, wall_ns"],
    added: &[],
};
