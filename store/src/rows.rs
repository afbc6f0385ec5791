//! What one write carries: the rows of every table, written together or not
//! at all as far as the caller's commit is concerned.

use crate::tables::*;

/// Visits every table's rows, which map to both stores the same way.
pub trait TableVisitor<'a> {
    type Error;

    fn visit<T>(&mut self, table: &'static str, rows: &'a [T]) -> Result<(), Self::Error>
    where
        T: SqliteRow + ::clickhouse::RowOwned + ::clickhouse::RowWrite + Send + Sync;
}

/// [`RowSet`] with a field per table, named like the table, each named once.
macro_rules! row_set {
    ($($table:ident: $row:ty),* $(,)?) => {
        /// Rows of one write, for all tables.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct RowSet {
            $(pub $table: Vec<$row>,)*
        }

        impl RowSet {
            pub fn len(&self) -> usize {
                0 $(+ self.$table.len())*
            }

            pub fn extend(&mut self, other: RowSet) {
                $(self.$table.extend(other.$table);)*
            }

            /// Each table's rows, in declaration order.
            pub fn visit_tables<'a, V: TableVisitor<'a>>(&'a self, visitor: &mut V) -> Result<(), V::Error> {
                $(visitor.visit(stringify!($table), &self.$table)?;)*
                Ok(())
            }
        }
    };
}

row_set! {
    process_events: ProcessEventRow,
    dead_letters: DeadLetterRow,
    loss_markers: LossMarkerRow,
    file_events: FileEventRow,
    file_writes: FileWriteRow,
    net_connections: NetConnectionRow,
    net_flows: NetFlowRow,
    dns_queries: DnsQueryRow,
    ipc_events: IpcEventRow,
    containers: ContainerRow,
    llm_calls: LlmCallRow,
    agent_processes: AgentProcessRow,
    tls_stacks: TlsStackRow,
    nccl_calls: NcclCallRow,
    cuda_calls: CudaCallRow,
    kernel_launches: KernelLaunchesRow,
    collective_verdicts: CollectiveVerdictRow,
    session_nodes: SessionNodeRow,
    session_edges: SessionEdgeRow,
    findings: FindingRow,
    enforcement_decisions: EnforcementDecisionRow,
    policy_status: PolicyStatusRow,
    quarantine_updates: QuarantineUpdateRow,
    quarantine_acks: QuarantineAckRow,
}

impl RowSet {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
