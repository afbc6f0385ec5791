//! Every table: its row type and its spec (columns, key, partition), from
//! which its DDL for ClickHouse and for SQLite is rendered, and the ordered
//! list of schema migrations both backends apply.

mod agent_processes;
mod collective_verdicts;
mod containers;
mod cuda_calls;
mod dead_letters;
mod dns_queries;
mod enforcement_decisions;
mod file_events;
mod file_writes;
mod findings;
mod ipc_events;
mod kernel_launches;
mod llm_calls;
mod loss_markers;
mod nccl_calls;
mod net_connections;
mod net_flows;
mod policy_status;
mod process_events;
mod quarantine_acks;
mod quarantine_updates;
pub(crate) mod row;
mod session_edges;
mod session_nodes;
mod spec;
mod tls_stacks;

pub use agent_processes::AgentProcessRow;
pub use collective_verdicts::{CollectiveVerdictRow, MissingRank, RankValue};
pub use containers::ContainerRow;
pub use cuda_calls::CudaCallRow;
pub use dead_letters::DeadLetterRow;
pub use dns_queries::DnsQueryRow;
pub use enforcement_decisions::{decision, family, mechanism, EnforcementDecisionRow};
pub use file_events::{file_op, FileEventRow};
pub use file_writes::FileWriteRow;
pub use findings::{finding_kind, FindingRow};
pub use ipc_events::{ipc_kind, ipc_op, IpcEventRow};
pub use kernel_launches::KernelLaunchesRow;
pub use llm_calls::{to_json_column, LlmCallRow, LlmFinding, LlmToolCall, LlmToolResult};
pub use loss_markers::LossMarkerRow;
pub use nccl_calls::NcclCallRow;
pub use net_connections::{direction, transport, NetConnectionRow};
pub use net_flows::NetFlowRow;
pub use policy_status::{enforcement_tier, PolicyFamily, PolicyRole, PolicyStatusRow};
pub use process_events::{ProcessEventKind, ProcessEventRow};
pub use quarantine_acks::QuarantineAckRow;
pub use quarantine_updates::QuarantineUpdateRow;
pub use row::SqliteRow;
pub use session_edges::{edge_relation, SessionEdgeRow};
pub use session_nodes::{node_kind, SessionNodeRow};
pub use spec::{Added, TableSpec};
pub use tls_stacks::TlsStackRow;

/// Processes, what the pipeline lost and what it set aside (migration 1).
pub const FIRST_TABLES: [&TableSpec; 3] = [&process_events::SPEC, &loss_markers::SPEC, &dead_letters::SPEC];

/// The activity tables of migration 2, whose DDL is rendered from their spec.
pub const ACTIVITY_TABLES: [&TableSpec; 7] = [
    &file_events::SPEC,
    &file_writes::SPEC,
    &net_connections::SPEC,
    &net_flows::SPEC,
    &dns_queries::SPEC,
    &ipc_events::SPEC,
    &containers::SPEC,
];

/// What processes said to LLM APIs and which agent they belong to
/// (migration 3), rendered from their spec like the activity tables.
pub const LLM_TABLES: [&TableSpec; 3] = [&llm_calls::SPEC, &agent_processes::SPEC, &tls_stacks::SPEC];

/// What ranks of training jobs called and what the collective join judged
/// (migration 4).
pub const GPU_TABLES: [&TableSpec; 3] = [&nccl_calls::SPEC, &cuda_calls::SPEC, &collective_verdicts::SPEC];

/// The causal graph of agent sessions and its findings (migration 6).
pub const SESSION_TABLES: [&TableSpec; 3] = [&session_nodes::SPEC, &session_edges::SPEC, &findings::SPEC];

/// Quarantines sent and the nodes' acknowledgements (migration 10).
pub const QUARANTINE_TABLES: [&TableSpec; 2] = [&quarantine_updates::SPEC, &quarantine_acks::SPEC];

use crate::dialect::Dialect;

/// One schema change, for both backends. Applied in `id` order, once each,
/// recorded in `schema_migrations`; every statement is idempotent
/// (`IF NOT EXISTS`, and a column to add that is there already is taken as
/// added), so two processes opening the store at once cannot break it.
pub struct Migration {
    pub id: u32,
    pub name: &'static str,
    /// ClickHouse statements, rendered for the server's capabilities.
    pub clickhouse: fn(&Dialect) -> Vec<String>,
    pub sqlite: fn() -> Vec<String>,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: 1,
        name: "process_events, loss_markers, dead_letters",
        clickhouse: |d| FIRST_TABLES.iter().map(|t| t.clickhouse_ddl(d, 1)).collect(),
        sqlite: || FIRST_TABLES.iter().map(|t| t.sqlite_ddl(1)).collect(),
    },
    Migration {
        id: 2,
        name: "file, network, DNS, IPC and container tables",
        clickhouse: |d| ACTIVITY_TABLES.iter().map(|t| t.clickhouse_ddl(d, 2)).collect(),
        sqlite: || ACTIVITY_TABLES.iter().map(|t| t.sqlite_ddl(2)).collect(),
    },
    Migration {
        id: 3,
        name: "LLM calls, agent processes and TLS stacks",
        clickhouse: |d| LLM_TABLES.iter().map(|t| t.clickhouse_ddl(d, 3)).collect(),
        sqlite: || LLM_TABLES.iter().map(|t| t.sqlite_ddl(3)).collect(),
    },
    Migration {
        id: 4,
        name: "NCCL calls, CUDA calls and collective verdicts",
        clickhouse: |d| GPU_TABLES.iter().map(|t| t.clickhouse_ddl(d, 4)).collect(),
        sqlite: || GPU_TABLES.iter().map(|t| t.sqlite_ddl(4)).collect(),
    },
    Migration {
        id: 5,
        name: "kernel launches summed per batch",
        clickhouse: |d| vec![kernel_launches::SPEC.clickhouse_ddl(d, 5)],
        sqlite: || vec![kernel_launches::SPEC.sqlite_ddl(5)],
    },
    Migration {
        id: 6,
        name: "agent sessions: nodes, edges and findings",
        clickhouse: |d| SESSION_TABLES.iter().map(|t| t.clickhouse_ddl(d, 6)).collect(),
        sqlite: || SESSION_TABLES.iter().map(|t| t.sqlite_ddl(6)).collect(),
    },
    Migration {
        id: 7,
        name: "GPU ranks as the job numbers them, communicator roles and verdict causes",
        clickhouse: |d| GPU_TABLES.iter().flat_map(|t| t.clickhouse_added(d, 7)).collect(),
        sqlite: || GPU_TABLES.iter().flat_map(|t| t.sqlite_added(7)).collect(),
    },
    Migration {
        id: 8,
        name: "workload policy decisions",
        clickhouse: |d| vec![enforcement_decisions::SPEC.clickhouse_ddl(d, 8)],
        sqlite: || vec![enforcement_decisions::SPEC.sqlite_ddl(8)],
    },
    Migration {
        id: 9,
        name: "the workload policy each node has in force",
        clickhouse: |d| vec![policy_status::SPEC.clickhouse_ddl(d, 9)],
        sqlite: || vec![policy_status::SPEC.sqlite_ddl(9)],
    },
    Migration {
        id: 10,
        name: "quarantines findings sent to the nodes, and the nodes' acknowledgements",
        clickhouse: |d| QUARANTINE_TABLES.iter().map(|t| t.clickhouse_ddl(d, 10)).collect(),
        sqlite: || QUARANTINE_TABLES.iter().map(|t| t.sqlite_ddl(10)).collect(),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// ClickHouse reads rows by position: a struct whose fields left its
    /// table's columns would store values in the wrong columns.
    #[test]
    fn every_spec_rendered_table_has_its_row_type_s_columns_in_order() {
        let rows: [(&TableSpec, &[&str]); 24] = [
            (&process_events::SPEC, ProcessEventRow::COLUMNS),
            (&loss_markers::SPEC, LossMarkerRow::COLUMNS),
            (&dead_letters::SPEC, DeadLetterRow::COLUMNS),
            (&file_events::SPEC, FileEventRow::COLUMNS),
            (&file_writes::SPEC, FileWriteRow::COLUMNS),
            (&net_connections::SPEC, NetConnectionRow::COLUMNS),
            (&net_flows::SPEC, NetFlowRow::COLUMNS),
            (&dns_queries::SPEC, DnsQueryRow::COLUMNS),
            (&ipc_events::SPEC, IpcEventRow::COLUMNS),
            (&containers::SPEC, ContainerRow::COLUMNS),
            (&llm_calls::SPEC, LlmCallRow::COLUMNS),
            (&agent_processes::SPEC, AgentProcessRow::COLUMNS),
            (&tls_stacks::SPEC, TlsStackRow::COLUMNS),
            (&nccl_calls::SPEC, NcclCallRow::COLUMNS),
            (&cuda_calls::SPEC, CudaCallRow::COLUMNS),
            (&collective_verdicts::SPEC, CollectiveVerdictRow::COLUMNS),
            (&kernel_launches::SPEC, KernelLaunchesRow::COLUMNS),
            (&session_nodes::SPEC, SessionNodeRow::COLUMNS),
            (&session_edges::SPEC, SessionEdgeRow::COLUMNS),
            (&findings::SPEC, FindingRow::COLUMNS),
            (&enforcement_decisions::SPEC, EnforcementDecisionRow::COLUMNS),
            (&policy_status::SPEC, PolicyStatusRow::COLUMNS),
            (&quarantine_updates::SPEC, QuarantineUpdateRow::COLUMNS),
            (&quarantine_acks::SPEC, QuarantineAckRow::COLUMNS),
        ];
        for (spec, columns) in rows {
            let from_spec: Vec<&str> = spec.all_columns().map(|(name, _)| name).collect();
            assert_eq!(from_spec, columns, "{}", spec.name);
        }
        assert_eq!(
            rows.len(),
            FIRST_TABLES.len()
                + ACTIVITY_TABLES.len()
                + LLM_TABLES.len()
                + GPU_TABLES.len()
                + 1
                + SESSION_TABLES.len()
                + 2
                + QUARANTINE_TABLES.len()
        );
    }
}
