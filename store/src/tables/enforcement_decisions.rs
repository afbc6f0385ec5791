//! `enforcement_decisions`: what a workload's policy did about something its
//! role does not allow — refused before the effect, killed after it began,
//! or only recorded in audit — with the hook that decided.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

/// `decision` values (as `plumbline.v1.EnforcementDecision.Decision`).
pub mod decision {
    pub const DENIED: u8 = 1;
    pub const KILLED_AFTER: u8 = 2;
    pub const WOULD_DENY: u8 = 3;
    pub const ABORTED: u8 = 4;
    pub const HELD: u8 = 5;
    pub const KILLED_BEFORE: u8 = 6;

    pub fn name(decision: u8) -> &'static str {
        match decision {
            DENIED => "denied",
            KILLED_AFTER => "killed_after",
            WOULD_DENY => "would_deny",
            ABORTED => "aborted",
            HELD => "held",
            KILLED_BEFORE => "killed_before",
            _ => "unknown",
        }
    }
}

/// `mechanism` values (as `plumbline.v1.EnforcementDecision.Mechanism`).
pub mod mechanism {
    pub const CGROUP_SOCK_ADDR: u8 = 1;
    pub const SIGNAL: u8 = 2;
    pub const LSM: u8 = 3;
    pub const SOCK_DESTROY: u8 = 4;
    pub const UPROBE: u8 = 5;
    pub const CGROUP_SKB: u8 = 6;

    pub fn name(mechanism: u8) -> &'static str {
        match mechanism {
            CGROUP_SOCK_ADDR => "cgroup_sock_addr",
            SIGNAL => "signal",
            LSM => "lsm",
            SOCK_DESTROY => "sock_destroy",
            UPROBE => "uprobe",
            CGROUP_SKB => "cgroup_skb",
            _ => "unknown",
        }
    }
}

/// `family` values (as `plumbline.v1.EnforcementDecision.Family`).
pub mod family {
    pub const EXEC: u8 = 1;
    pub const FILE: u8 = 2;
    pub const NETWORK: u8 = 3;
    pub const LLM: u8 = 4;

    pub fn name(family: u8) -> &'static str {
        match family {
            EXEC => "exec",
            FILE => "file",
            NETWORK => "network",
            LLM => "llm",
            _ => "unknown",
        }
    }
}

activity_row! {
    pub struct EnforcementDecisionRow {
        pub decision: u8,
        pub mechanism: u8,
        pub family: u8,
        /// connect, sendmsg, exec, open.
        pub operation: String,
        pub role: String,
        pub pod: u32,
        /// Network: text form of the address; empty otherwise.
        pub remote_addr: String,
        pub remote_port: u32,
        pub transport: u8,
        /// Exec and files: the path.
        pub path: String,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "enforcement_decisions",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("decision", Col::U8),
        ("mechanism", Col::U8),
        ("family", Col::U8),
        ("operation", Col::Label),
        ("role", Col::Label),
        ("pod", Col::U32),
        ("remote_addr", Col::Text),
        ("remote_port", Col::U32),
        ("transport", Col::U8),
        ("path", Col::Text),
    ],
    key: &["host", "boot_id", "ts_ns", "pid", "family", "operation"],
    key_time_first: true,
    indexes: &["wall_ns"],
    added: &[],
};
