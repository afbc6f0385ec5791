//! `policy_status`: the workload policy a node says it has in force, with its
//! enforcement tier and what the tier cannot cover. A node says it at start,
//! on every change or failed reload, and every minute; its latest row holds.
//!
//! Roles are a JSON array in a text column, like `llm_calls`' tool calls:
//! the status is read back whole, one row per node.

use serde::{Deserialize, Serialize};

use super::llm_calls::from_json_column;
use super::row::table_row;
use super::spec::{Col, TableSpec};
use crate::StoreError;

/// `tier` values (as `plumbline.v1.PolicyStatus.Tier`).
pub mod enforcement_tier {
    pub const LSM: u8 = 1;
    pub const FALLBACK: u8 = 2;
    pub const OBSERVE: u8 = 3;

    pub fn name(tier: u8) -> &'static str {
        match tier {
            LSM => "lsm",
            FALLBACK => "fallback",
            OBSERVE => "observe",
            _ => "unknown",
        }
    }
}

table_row! {
    pub struct PolicyStatusRow {
        pub host: String,
        pub boot_id: String,
        /// Boot-clock time the node said it.
        pub ts_ns: u64,
        pub wall_ns: u64,
        pub tier: u8,
        /// 1: `bpf` is among the kernel's active LSMs.
        pub bpf_lsm_listed: u8,
        pub policy_file: String,
        /// SHA-256 (hex) of the file's text in force.
        pub policy_version: String,
        /// Why the file's current text is not in force; empty when it is.
        pub reload_error: String,
        /// JSON array of [`PolicyRole`].
        pub roles: String,
        pub caveats: Vec<String>,
    }
}

/// An element of `roles`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRole {
    pub name: String,
    /// `None`: the role does not confine the family.
    pub exec: Option<PolicyFamily>,
    pub files: Option<PolicyFamily>,
    pub network: Option<PolicyFamily>,
    /// Absent in rows written before the LLM family was reported.
    #[serde(default)]
    pub llm: Option<PolicyFamily>,
}

/// One family of a role's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFamily {
    /// "audit", "enforce".
    pub mode: String,
    /// What the rules allow, in a few words.
    pub rules: String,
}

impl PolicyStatusRow {
    pub fn role_list(&self) -> Result<Vec<PolicyRole>, StoreError> {
        from_json_column("policy_status.roles", &self.roles)
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "policy_status",
    activity: false,
    day_of: Some("wall_ns"),
    columns: &[
        ("host", Col::Label),
        ("boot_id", Col::Label),
        ("ts_ns", Col::U64),
        ("wall_ns", Col::U64),
        ("tier", Col::U8),
        ("bpf_lsm_listed", Col::U8),
        ("policy_file", Col::Text),
        ("policy_version", Col::Label),
        ("reload_error", Col::Text),
        ("roles", Col::LongText),
        ("caveats", Col::Strings),
    ],
    key: &["host", "boot_id", "ts_ns"],
    key_time_first: true,
    indexes: &["host, wall_ns"],
    added: &[],
};
