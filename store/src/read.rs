//! The read side of the store: every view, written once over the small seam
//! each backend implements ([`Backend`]), so ClickHouse and SQLite answer
//! from the same SQL builders.

use async_trait::async_trait;

pub use crate::backend::Backend;
use crate::filter::ActivityFilter;
use crate::gpu::{self, GpuCallRow, GpuFilter, GpuJobRow, GpuKernelRow, GpuStragglerRow};
use crate::gpu_arrivals::{self, GpuArrivals, GpuArrivalsFilter};
use crate::hosts::{self, HostHealthRows};
use crate::sessions::{self, EffectFilter, SessionFilter, SessionFindingsRow, SessionRow};
use crate::tables::{
    CollectiveVerdictRow, ContainerRow, DnsQueryRow, EnforcementDecisionRow, FindingRow, LlmCallRow, LossMarkerRow,
    NetConnectionRow, NetFlowRow, PolicyStatusRow, QuarantineAckRow, QuarantineUpdateRow, SessionEdgeRow,
    SessionNodeRow, TlsStackRow,
};
use crate::{
    activity, llm, policy, process_query, quarantine, AgentActivityRow, FileActivityRow, IpcUsageRow, TokenUsageHourRow,
};
use crate::{PipelineStats, ProcessFilter, ProcessRecord, StoreError};

/// The views, as the query service asks for them.
#[async_trait]
pub trait StoreRead: Send + Sync {
    /// "clickhouse 18.16.1", "sqlite 3.46.0".
    fn describe(&self) -> String;

    /// Processes matching `filter`, newest start first.
    async fn list_processes(&self, filter: &ProcessFilter) -> Result<Vec<ProcessRecord>, StoreError>;

    async fn pipeline_stats(&self) -> Result<PipelineStats, StoreError>;

    /// Each host's newest row and its events and losses per minute in the
    /// range (see [`crate::hosts`]).
    async fn host_health(&self, filter: &ActivityFilter) -> Result<HostHealthRows, StoreError>;

    async fn list_file_activity(&self, filter: &ActivityFilter) -> Result<Vec<FileActivityRow>, StoreError>;

    async fn list_connections(&self, filter: &ActivityFilter) -> Result<Vec<NetConnectionRow>, StoreError>;

    async fn list_flows(&self, filter: &ActivityFilter) -> Result<Vec<NetFlowRow>, StoreError>;

    async fn list_dns_queries(&self, filter: &ActivityFilter) -> Result<Vec<DnsQueryRow>, StoreError>;

    async fn list_ipc_usage(&self, filter: &ActivityFilter) -> Result<Vec<IpcUsageRow>, StoreError>;

    async fn list_containers(&self, filter: &ActivityFilter) -> Result<Vec<ContainerRow>, StoreError>;

    async fn list_loss_markers(&self, filter: &ActivityFilter) -> Result<Vec<LossMarkerRow>, StoreError>;

    /// Workload policy decisions, newest first.
    async fn list_enforcement(&self, filter: &ActivityFilter) -> Result<Vec<EnforcementDecisionRow>, StoreError>;

    /// The workload policy each node last said it has in force, by host.
    async fn list_policy(&self, filter: &ActivityFilter) -> Result<Vec<PolicyStatusRow>, StoreError>;

    /// Quarantines sent, newest first, and every node's acknowledgement of
    /// them.
    async fn list_quarantines(
        &self,
        filter: &ActivityFilter,
    ) -> Result<(Vec<QuarantineUpdateRow>, Vec<QuarantineAckRow>), StoreError>;

    /// LLM calls, newest first.
    async fn list_llm_calls(&self, filter: &ActivityFilter) -> Result<Vec<LlmCallRow>, StoreError>;

    /// Processes mapped to agents or discovered calling LLM APIs, with their calls.
    async fn list_agents(&self, filter: &ActivityFilter) -> Result<Vec<AgentActivityRow>, StoreError>;

    /// Calls and tokens per hour, agent, provider and model.
    async fn token_usage(&self, filter: &ActivityFilter) -> Result<Vec<TokenUsageHourRow>, StoreError>;

    async fn list_tls_stacks(&self, filter: &ActivityFilter) -> Result<Vec<TlsStackRow>, StoreError>;

    /// Training jobs with their collectives judged, latest first.
    async fn list_gpu_jobs(&self, filter: &GpuFilter) -> Result<Vec<GpuJobRow>, StoreError>;

    /// Ranks by how often and how late they were the last to arrive.
    async fn gpu_stragglers(&self, filter: &GpuFilter) -> Result<Vec<GpuStragglerRow>, StoreError>;

    /// Judged collectives of one verdict ("hang", "mismatch" ...).
    async fn list_collective_verdicts(
        &self,
        filter: &GpuFilter,
        verdict: &str,
    ) -> Result<Vec<CollectiveVerdictRow>, StoreError>;

    async fn gpu_kernels(&self, filter: &GpuFilter) -> Result<Vec<GpuKernelRow>, StoreError>;

    /// NCCL and CUDA calls of a rank or process, oldest first.
    async fn gpu_timeline(&self, filter: &GpuFilter) -> Result<Vec<GpuCallRow>, StoreError>;

    /// Each rank's arrival at each collective of a window, against the
    /// collective's median on a common clock, binned to a grid.
    async fn gpu_arrivals(&self, filter: &GpuArrivalsFilter) -> Result<GpuArrivals, StoreError>;

    /// Agent sessions with activity in the range, latest first.
    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError>;

    /// One session's nodes (LLM calls, tool calls and results, effects) in
    /// time order, at most `limit`.
    async fn session_nodes(&self, session: &str, limit: u32) -> Result<Vec<SessionNodeRow>, StoreError>;

    /// One session's edges.
    async fn session_edges(&self, session: &str) -> Result<Vec<SessionEdgeRow>, StoreError>;

    /// How many findings each session matching `filter` has.
    async fn finding_counts(&self, filter: &SessionFilter) -> Result<Vec<SessionFindingsRow>, StoreError>;

    /// Findings about agent sessions, latest first.
    async fn list_findings(&self, filter: &SessionFilter) -> Result<Vec<FindingRow>, StoreError>;

    /// Effect nodes (processes, files, connections, lookups) matching
    /// `filter`, latest first.
    async fn effect_nodes(&self, filter: &EffectFilter) -> Result<Vec<SessionNodeRow>, StoreError>;
}

#[async_trait]
impl<B: Backend> StoreRead for B {
    fn describe(&self) -> String {
        Backend::describe(self)
    }

    async fn list_processes(&self, filter: &ProcessFilter) -> Result<Vec<ProcessRecord>, StoreError> {
        self.fetch(process_query::list_sql(self.dialect(), filter)).await
    }

    async fn pipeline_stats(&self) -> Result<PipelineStats, StoreError> {
        self.count_pipeline().await
    }

    async fn host_health(&self, filter: &ActivityFilter) -> Result<HostHealthRows, StoreError> {
        let d = self.dialect();
        Ok(HostHealthRows {
            hosts: self.fetch(hosts::hosts_sql(d, filter)).await?,
            events_per_minute: self.fetch(hosts::events_per_minute_sql(d, filter)).await?,
            losses_per_minute: self.fetch(hosts::losses_per_minute_sql(d, filter)).await?,
        })
    }

    async fn list_file_activity(&self, filter: &ActivityFilter) -> Result<Vec<FileActivityRow>, StoreError> {
        self.fetch(activity::file_activity_sql(self.dialect(), filter)).await
    }

    async fn list_connections(&self, filter: &ActivityFilter) -> Result<Vec<NetConnectionRow>, StoreError> {
        self.fetch(activity::connections_sql(self.dialect(), filter)).await
    }

    async fn list_flows(&self, filter: &ActivityFilter) -> Result<Vec<NetFlowRow>, StoreError> {
        self.fetch(activity::flows_sql(self.dialect(), filter)).await
    }

    async fn list_dns_queries(&self, filter: &ActivityFilter) -> Result<Vec<DnsQueryRow>, StoreError> {
        self.fetch(activity::dns_sql(self.dialect(), filter)).await
    }

    async fn list_ipc_usage(&self, filter: &ActivityFilter) -> Result<Vec<IpcUsageRow>, StoreError> {
        self.fetch(activity::ipc_usage_sql(self.dialect(), filter)).await
    }

    async fn list_containers(&self, filter: &ActivityFilter) -> Result<Vec<ContainerRow>, StoreError> {
        self.fetch(activity::containers_sql(self.dialect(), filter)).await
    }

    async fn list_loss_markers(&self, filter: &ActivityFilter) -> Result<Vec<LossMarkerRow>, StoreError> {
        self.fetch(activity::losses_sql(self.dialect(), filter)).await
    }

    async fn list_enforcement(&self, filter: &ActivityFilter) -> Result<Vec<EnforcementDecisionRow>, StoreError> {
        self.fetch(activity::enforcement_sql(self.dialect(), filter)).await
    }

    async fn list_policy(&self, filter: &ActivityFilter) -> Result<Vec<PolicyStatusRow>, StoreError> {
        self.fetch(policy::policy_status_sql(self.dialect(), filter)).await
    }

    async fn list_quarantines(
        &self,
        filter: &ActivityFilter,
    ) -> Result<(Vec<QuarantineUpdateRow>, Vec<QuarantineAckRow>), StoreError> {
        let updates: Vec<QuarantineUpdateRow> =
            self.fetch(quarantine::quarantine_updates_sql(self.dialect(), filter)).await?;
        let ids: Vec<String> = updates.iter().map(|u| u.id.clone()).collect();
        let acks = self.fetch(quarantine::quarantine_acks_sql(self.dialect(), &ids)).await?;
        Ok((updates, acks))
    }

    async fn list_llm_calls(&self, filter: &ActivityFilter) -> Result<Vec<LlmCallRow>, StoreError> {
        self.fetch(llm::llm_calls_sql(self.dialect(), filter)).await
    }

    async fn list_agents(&self, filter: &ActivityFilter) -> Result<Vec<AgentActivityRow>, StoreError> {
        self.fetch(llm::agents_sql(self.dialect(), filter)).await
    }

    async fn token_usage(&self, filter: &ActivityFilter) -> Result<Vec<TokenUsageHourRow>, StoreError> {
        self.fetch(llm::token_usage_sql(self.dialect(), filter)).await
    }

    async fn list_tls_stacks(&self, filter: &ActivityFilter) -> Result<Vec<TlsStackRow>, StoreError> {
        self.fetch(llm::tls_stacks_sql(self.dialect(), filter)).await
    }

    async fn list_gpu_jobs(&self, filter: &GpuFilter) -> Result<Vec<GpuJobRow>, StoreError> {
        self.fetch(gpu::gpu_jobs_sql(self.dialect(), filter)).await
    }

    async fn gpu_stragglers(&self, filter: &GpuFilter) -> Result<Vec<GpuStragglerRow>, StoreError> {
        self.fetch(gpu::gpu_stragglers_sql(self.dialect(), filter)).await
    }

    async fn list_collective_verdicts(
        &self,
        filter: &GpuFilter,
        verdict: &str,
    ) -> Result<Vec<CollectiveVerdictRow>, StoreError> {
        self.fetch(gpu::gpu_verdicts_sql(self.dialect(), filter, verdict)).await
    }

    async fn gpu_kernels(&self, filter: &GpuFilter) -> Result<Vec<GpuKernelRow>, StoreError> {
        self.fetch(gpu::gpu_kernels_sql(self.dialect(), filter)).await
    }

    async fn gpu_timeline(&self, filter: &GpuFilter) -> Result<Vec<GpuCallRow>, StoreError> {
        self.fetch(gpu::gpu_timeline_sql(self.dialect(), filter)).await
    }

    async fn gpu_arrivals(&self, filter: &GpuArrivalsFilter) -> Result<GpuArrivals, StoreError> {
        gpu_arrivals::gpu_arrivals(self, filter).await
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        self.fetch(sessions::sessions_sql(self.dialect(), filter)).await
    }

    async fn session_nodes(&self, session: &str, limit: u32) -> Result<Vec<SessionNodeRow>, StoreError> {
        self.fetch(sessions::session_nodes_sql(self.dialect(), session, limit)).await
    }

    async fn session_edges(&self, session: &str) -> Result<Vec<SessionEdgeRow>, StoreError> {
        self.fetch(sessions::session_edges_sql(self.dialect(), session)).await
    }

    async fn finding_counts(&self, filter: &SessionFilter) -> Result<Vec<SessionFindingsRow>, StoreError> {
        self.fetch(sessions::finding_counts_sql(self.dialect(), filter)).await
    }

    async fn list_findings(&self, filter: &SessionFilter) -> Result<Vec<FindingRow>, StoreError> {
        self.fetch(sessions::findings_sql(self.dialect(), filter)).await
    }

    async fn effect_nodes(&self, filter: &EffectFilter) -> Result<Vec<SessionNodeRow>, StoreError> {
        self.fetch(sessions::effect_nodes_sql(self.dialect(), filter)).await
    }
}
