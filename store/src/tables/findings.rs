//! `findings`: where an agent's words and the kernel disagree, each with its
//! evidence — the LLM call, the effect it announced or the effect no intent
//! explains, and what the kernel saw.

use super::row::table_row;
use super::spec::{Col, TableSpec};

/// `kind` values.
pub mod finding_kind {
    /// A tool call named an action; no matching effect before the next call.
    pub const UNVERIFIED_CLAIM: &str = "unverified_claim";
    /// A secret read or egress outside the allowlist.
    pub const OUT_OF_SCOPE: &str = "out_of_scope_effect";
    /// Near-identical LLM calls in a row with no effect in between.
    pub const REASONING_LOOP: &str = "reasoning_loop";
    /// Most of the agent's wall time blocked on IPC with another agent.
    pub const COORDINATION: &str = "coordination_bottleneck";
    /// A guardrail of intent capture matched (PII, injection, …).
    pub const GUARDRAIL: &str = "guardrail";
    pub const ALL: [&str; 5] = [UNVERIFIED_CLAIM, OUT_OF_SCOPE, REASONING_LOOP, COORDINATION, GUARDRAIL];
}

table_row! {
    pub struct FindingRow {
        pub session: String,
        pub agent: String,
        pub host: String,
        pub boot_id: String,
        /// The session's process.
        pub pid: u32,
        pub kind: String,
        /// "high", "medium", "low".
        pub severity: String,
        /// What the finding is about, unique within its session and kind: a
        /// tool call id, a path, an address, the first call of a loop.
        pub subject: String,
        /// When it happened (the effect, or the LLM call it concerns).
        pub wall_ns: u64,
        pub summary: String,
        /// The LLM call the finding concerns (a `session_nodes.node`); 0 for none.
        pub llm_call: u64,
        pub expected: String,
        pub observed: String,
        /// JSON: the evidence in full.
        pub evidence: String,
        pub tokens: u64,
        pub found_wall_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "findings",
    activity: false,
    day_of: Some("wall_ns"),
    columns: &[
        ("session", Col::Text),
        ("agent", Col::Label),
        ("host", Col::Label),
        ("boot_id", Col::Label),
        ("pid", Col::U32),
        ("kind", Col::Label),
        ("severity", Col::Label),
        ("subject", Col::Text),
        ("wall_ns", Col::U64),
        ("summary", Col::Text),
        ("llm_call", Col::U64),
        ("expected", Col::Text),
        ("observed", Col::Text),
        ("evidence", Col::LongText),
        ("tokens", Col::U64),
        ("found_wall_ns", Col::U64),
    ],
    key: &["session", "kind", "subject"],
    key_time_first: true,
    indexes: &["kind, wall_ns", "agent, wall_ns"],
    added: &[],
};
