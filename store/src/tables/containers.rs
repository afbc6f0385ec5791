//! `containers`: what a cgroup id stands for on a host: its path, and the
//! container and pod it belongs to.

use super::row::table_row;
use super::spec::{Col, TableSpec};

table_row! {
    pub struct ContainerRow {
        pub host: String,
        pub boot_id: String,
        pub cgroup_id: u64,
        pub cgroup_path: String,
        pub container_id: String,
        pub runtime: String,
        pub pod_uid: String,
        pub pod_namespace: String,
        pub pod_name: String,
        /// When the agent described it.
        pub wall_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "containers",
    activity: false,
    day_of: Some("wall_ns"),
    columns: &[
        ("host", Col::Label),
        ("boot_id", Col::Label),
        ("cgroup_id", Col::U64),
        ("cgroup_path", Col::Text),
        ("container_id", Col::Text),
        ("runtime", Col::Label),
        ("pod_uid", Col::Text),
        ("pod_namespace", Col::Label),
        ("pod_name", Col::Text),
        ("wall_ns", Col::U64),
    ],
    key: &["host", "boot_id", "cgroup_id"],
    key_time_first: true,
    indexes: &["container_id"],
    added: &[],
};
