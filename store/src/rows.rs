//! What one write carries: the rows of every table, written together or not
//! at all as far as the caller's commit is concerned.

use crate::tables::*;

/// Rows of one write, for all tables; written together or not at all as far
/// as the caller's commit is concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowSet {
    pub process_events: Vec<ProcessEventRow>,
    pub dead_letters: Vec<DeadLetterRow>,
    pub loss_markers: Vec<LossMarkerRow>,
    pub file_events: Vec<FileEventRow>,
    pub file_writes: Vec<FileWriteRow>,
    pub net_connections: Vec<NetConnectionRow>,
    pub net_flows: Vec<NetFlowRow>,
    pub dns_queries: Vec<DnsQueryRow>,
    pub ipc_events: Vec<IpcEventRow>,
    pub containers: Vec<ContainerRow>,
    pub llm_calls: Vec<LlmCallRow>,
    pub agent_processes: Vec<AgentProcessRow>,
    pub tls_stacks: Vec<TlsStackRow>,
    pub nccl_calls: Vec<NcclCallRow>,
    pub cuda_calls: Vec<CudaCallRow>,
    pub kernel_launches: Vec<KernelLaunchesRow>,
    pub collective_verdicts: Vec<CollectiveVerdictRow>,
    pub session_nodes: Vec<SessionNodeRow>,
    pub session_edges: Vec<SessionEdgeRow>,
    pub findings: Vec<FindingRow>,
}

/// Visits every table's rows, which map to both stores the same way.
pub trait TableVisitor<'a> {
    type Error;

    fn visit<T>(&mut self, table: &'static str, rows: &'a [T]) -> Result<(), Self::Error>
    where
        T: SqliteRow + ::clickhouse::RowOwned + ::clickhouse::RowWrite + Send + Sync;
}

impl RowSet {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.process_events.len()
            + self.dead_letters.len()
            + self.loss_markers.len()
            + self.file_events.len()
            + self.file_writes.len()
            + self.net_connections.len()
            + self.net_flows.len()
            + self.dns_queries.len()
            + self.ipc_events.len()
            + self.containers.len()
            + self.llm_calls.len()
            + self.agent_processes.len()
            + self.tls_stacks.len()
            + self.nccl_calls.len()
            + self.cuda_calls.len()
            + self.kernel_launches.len()
            + self.collective_verdicts.len()
            + self.session_nodes.len()
            + self.session_edges.len()
            + self.findings.len()
    }

    pub fn extend(&mut self, other: RowSet) {
        self.process_events.extend(other.process_events);
        self.dead_letters.extend(other.dead_letters);
        self.loss_markers.extend(other.loss_markers);
        self.file_events.extend(other.file_events);
        self.file_writes.extend(other.file_writes);
        self.net_connections.extend(other.net_connections);
        self.net_flows.extend(other.net_flows);
        self.dns_queries.extend(other.dns_queries);
        self.ipc_events.extend(other.ipc_events);
        self.containers.extend(other.containers);
        self.llm_calls.extend(other.llm_calls);
        self.agent_processes.extend(other.agent_processes);
        self.tls_stacks.extend(other.tls_stacks);
        self.nccl_calls.extend(other.nccl_calls);
        self.cuda_calls.extend(other.cuda_calls);
        self.kernel_launches.extend(other.kernel_launches);
        self.collective_verdicts.extend(other.collective_verdicts);
        self.session_nodes.extend(other.session_nodes);
        self.session_edges.extend(other.session_edges);
        self.findings.extend(other.findings);
    }

    /// Each table's rows; a table is named like its field.
    pub fn visit_tables<'a, V: TableVisitor<'a>>(&'a self, visitor: &mut V) -> Result<(), V::Error> {
        visitor.visit("process_events", &self.process_events)?;
        visitor.visit("dead_letters", &self.dead_letters)?;
        visitor.visit("loss_markers", &self.loss_markers)?;
        visitor.visit("file_events", &self.file_events)?;
        visitor.visit("file_writes", &self.file_writes)?;
        visitor.visit("net_connections", &self.net_connections)?;
        visitor.visit("net_flows", &self.net_flows)?;
        visitor.visit("dns_queries", &self.dns_queries)?;
        visitor.visit("ipc_events", &self.ipc_events)?;
        visitor.visit("containers", &self.containers)?;
        visitor.visit("llm_calls", &self.llm_calls)?;
        visitor.visit("agent_processes", &self.agent_processes)?;
        visitor.visit("tls_stacks", &self.tls_stacks)?;
        visitor.visit("nccl_calls", &self.nccl_calls)?;
        visitor.visit("cuda_calls", &self.cuda_calls)?;
        visitor.visit("kernel_launches", &self.kernel_launches)?;
        visitor.visit("collective_verdicts", &self.collective_verdicts)?;
        visitor.visit("session_nodes", &self.session_nodes)?;
        visitor.visit("session_edges", &self.session_edges)?;
        visitor.visit("findings", &self.findings)
    }
}
