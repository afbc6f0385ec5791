//! `session_edges`: why one session node follows from another — an LLM call
//! requested a tool call, a tool call caused an effect (its arguments name
//! it), an effect followed an LLM call in its process tree within the
//! window, an effect was reported in a tool result, a tool result was sent
//! in the next LLM call.

use super::row::table_row;
use super::spec::{Col, TableSpec};

/// `relation` values.
pub mod edge_relation {
    pub const REQUESTED: &str = "requested";
    pub const CAUSED: &str = "caused";
    pub const FOLLOWED: &str = "followed";
    pub const REPORTED: &str = "reported";
    pub const SENT_IN: &str = "sent_in";
    /// From a tool call to its verdict.
    pub const JUDGED: &str = "judged";
    // To an enforcement node, from the tool call or LLM call it belongs to:
    // the decision's own name (`decision::name`: denied, killed_after,
    // would_deny).
}

table_row! {
    pub struct SessionEdgeRow {
        pub session: String,
        pub from_node: u64,
        pub to_node: u64,
        pub relation: String,
        /// How it was decided: "argv has python pytest", "same process tree
        /// within 60 s".
        pub reason: String,
        /// When the later node happened.
        pub wall_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "session_edges",
    activity: false,
    day_of: Some("wall_ns"),
    columns: &[
        ("session", Col::Text),
        ("from_node", Col::U64),
        ("to_node", Col::U64),
        ("relation", Col::Label),
        ("reason", Col::Text),
        ("wall_ns", Col::U64),
    ],
    key: &["session", "from_node", "to_node"],
    key_time_first: true,
    indexes: &["session, to_node"],
    added: &[],
};
