//! The gRPC `QueryService`, answering from any store's read side ([`StoreRead`]).

use std::sync::Arc;

use plumbline_proto::v1::HostHealthResponse;
use plumbline_proto::v1::{
    query_service_server::QueryService, ActivityRequest, GpuHangResponse, GpuKernelsResponse, GpuMismatchesResponse,
    GpuRequest, GpuStragglersResponse, GpuTimelineResponse, ListAgentsResponse, ListConnectionsResponse,
    ListContainersResponse, ListDnsQueriesResponse, ListEnforcementResponse, ListFileActivityResponse,
    ListFindingsResponse, ListGpuJobsResponse, ListIpcEdgesResponse, ListLlmCallsResponse, ListLossMarkersResponse,
    ListPolicyResponse, ListProcessesRequest, ListProcessesResponse, ListQuarantinesResponse, ListSessionsResponse,
    ListTlsStacksResponse, PipelineStatsRequest, PipelineStatsResponse, Process, ProcessTreeNode, ProcessTreeRequest,
    ProcessTreeResponse, SessionRequest, SessionTimelineResponse, TokenUsageResponse, WhyRequest, WhyResponse,
};
use plumbline_proto::v1::{GpuArrivalsRequest, GpuArrivalsResponse};
use plumbline_store::{ProcessFilter, ProcessRecord, StoreRead};
use tonic::{Request, Response, Status};

use crate::request::{self, non_empty};
use crate::{
    activity, connections, enforcement,
    error::QueryError,
    gpu, ipc_edges, llm,
    process_tree::{process_tree, TreeNode},
    sessions,
};

const DEFAULT_DEPTH: u32 = 16;
const MAX_DEPTH: u32 = 64;

pub struct QueryServiceImpl {
    store: Arc<dyn StoreRead>,
}

impl QueryServiceImpl {
    pub fn new(store: Arc<dyn StoreRead>) -> Self {
        Self { store }
    }
}

pub fn process_filter(request: &ListProcessesRequest) -> Result<ProcessFilter, QueryError> {
    Ok(ProcessFilter {
        host: non_empty(&request.host),
        range: request::time_range(request.range)?,
        name_contains: non_empty(&request.name_contains),
        argv_contains: non_empty(&request.argv_contains),
        ppids: if request.ppid == 0 { Vec::new() } else { vec![request.ppid] },
        limit: request::limit(request.limit),
        ..Default::default()
    })
}

pub fn to_process(record: ProcessRecord) -> Process {
    Process {
        host: record.host,
        boot_id: record.boot_id,
        pid: record.pid,
        ppid: record.ppid,
        start_key_ns: record.start_key_ns,
        start_wall_ns: record.start_wall_ns,
        uid: record.uid,
        comm: record.comm,
        exe: record.exe,
        argv: record.argv,
        cgroup_id: record.cgroup_id,
        exited: record.exited,
        exit_code: record.exit_code,
        exit_signal: record.exit_signal,
        exit_wall_ns: record.exit_wall_ns,
        seen_running: record.seen_running,
        exec_count: record.exec_count as u32,
    }
}

fn to_node(node: TreeNode) -> ProcessTreeNode {
    ProcessTreeNode {
        process: Some(to_process(node.process)),
        children: node.children.into_iter().map(to_node).collect(),
    }
}

#[tonic::async_trait]
impl QueryService for QueryServiceImpl {
    async fn list_processes(
        &self,
        request: Request<ListProcessesRequest>,
    ) -> Result<Response<ListProcessesResponse>, Status> {
        let filter = process_filter(request.get_ref())?;
        let records = self.store.list_processes(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListProcessesResponse { processes: records.into_iter().map(to_process).collect() }))
    }

    async fn process_tree(
        &self,
        request: Request<ProcessTreeRequest>,
    ) -> Result<Response<ProcessTreeResponse>, Status> {
        let request = request.into_inner();
        if request.host.is_empty() || request.pid == 0 {
            return Err(QueryError::InvalidArgument("a process tree needs a host and a pid".into()).into());
        }
        let depth = match request.max_depth {
            0 => DEFAULT_DEPTH,
            n => n.min(MAX_DEPTH),
        };
        let tree = process_tree(
            self.store.as_ref(),
            &request.host,
            request.pid,
            (request.start_key_ns != 0).then_some(request.start_key_ns),
            depth,
        )
        .await?;
        Ok(Response::new(ProcessTreeResponse {
            ancestors: tree.ancestors.into_iter().map(to_process).collect(),
            root: Some(to_node(tree.root)),
        }))
    }

    async fn list_file_activity(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListFileActivityResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let containers = activity::ContainerIds::load(self.store.as_ref(), &filter).await?;
        let rows = self.store.list_file_activity(&filter).await.map_err(QueryError::from)?;
        let files = rows.into_iter().map(|r| activity::file_activity(r, &containers)).collect();
        Ok(Response::new(ListFileActivityResponse { files }))
    }

    async fn list_connections(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListConnectionsResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let connections = connections::connections(self.store.as_ref(), &filter).await?;
        Ok(Response::new(ListConnectionsResponse { connections }))
    }

    async fn list_dns_queries(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListDnsQueriesResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let rows = self.store.list_dns_queries(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListDnsQueriesResponse { queries: rows.into_iter().map(activity::dns_lookup).collect() }))
    }

    async fn list_ipc_edges(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListIpcEdgesResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let edges = ipc_edges::ipc_edges(self.store.as_ref(), &filter).await?;
        Ok(Response::new(ListIpcEdgesResponse { edges }))
    }

    async fn list_containers(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let rows = self.store.list_containers(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListContainersResponse { containers: rows.into_iter().map(activity::container).collect() }))
    }

    async fn list_loss_markers(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListLossMarkersResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let rows = self.store.list_loss_markers(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListLossMarkersResponse { losses: rows.into_iter().map(activity::loss).collect() }))
    }

    async fn list_enforcement(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListEnforcementResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let rows = self.store.list_enforcement(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListEnforcementResponse { decisions: rows.into_iter().map(enforcement::view).collect() }))
    }

    async fn list_policy(&self, request: Request<ActivityRequest>) -> Result<Response<ListPolicyResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let rows = self.store.list_policy(&filter).await.map_err(QueryError::from)?;
        let nodes = rows.into_iter().map(enforcement::policy_view).collect::<Result<_, _>>();
        Ok(Response::new(ListPolicyResponse { nodes: nodes.map_err(QueryError::from)? }))
    }

    async fn list_quarantines(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListQuarantinesResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let (updates, acks) = self.store.list_quarantines(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListQuarantinesResponse { quarantines: crate::quarantine::views(updates, acks) }))
    }

    async fn list_llm_calls(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListLlmCallsResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let containers = activity::ContainerIds::load(self.store.as_ref(), &filter).await?;
        let rows = self.store.list_llm_calls(&filter).await.map_err(QueryError::from)?;
        let calls = rows.into_iter().map(|r| llm::llm_call(r, &containers)).collect::<Result<_, _>>();
        Ok(Response::new(ListLlmCallsResponse { calls: calls.map_err(QueryError::from)? }))
    }

    async fn list_agents(&self, request: Request<ActivityRequest>) -> Result<Response<ListAgentsResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let containers = activity::ContainerIds::load(self.store.as_ref(), &filter).await?;
        let rows = self.store.list_agents(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListAgentsResponse { agents: rows.into_iter().map(|r| llm::agent(r, &containers)).collect() }))
    }

    async fn token_usage(&self, request: Request<ActivityRequest>) -> Result<Response<TokenUsageResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let rows = self.store.token_usage(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(TokenUsageResponse { rows: rows.into_iter().map(llm::token_usage).collect() }))
    }

    async fn list_tls_stacks(
        &self,
        request: Request<ActivityRequest>,
    ) -> Result<Response<ListTlsStacksResponse>, Status> {
        let filter = activity::activity_filter(request.get_ref())?;
        let rows = self.store.list_tls_stacks(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListTlsStacksResponse { stacks: rows.into_iter().map(llm::tls_stack).collect() }))
    }

    async fn list_gpu_jobs(&self, request: Request<GpuRequest>) -> Result<Response<ListGpuJobsResponse>, Status> {
        let filter = gpu::gpu_filter(request.get_ref())?;
        let rows = self.store.list_gpu_jobs(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListGpuJobsResponse { jobs: rows.into_iter().map(gpu::job).collect() }))
    }

    async fn gpu_stragglers(&self, request: Request<GpuRequest>) -> Result<Response<GpuStragglersResponse>, Status> {
        let filter = gpu::gpu_filter(request.get_ref())?;
        Ok(Response::new(GpuStragglersResponse { ranks: gpu::stragglers(self.store.as_ref(), &filter).await? }))
    }

    async fn gpu_hang(&self, request: Request<GpuRequest>) -> Result<Response<GpuHangResponse>, Status> {
        let filter = gpu::gpu_filter(request.get_ref())?;
        Ok(Response::new(gpu::hangs(self.store.as_ref(), &filter).await?))
    }

    async fn gpu_mismatches(&self, request: Request<GpuRequest>) -> Result<Response<GpuMismatchesResponse>, Status> {
        let filter = gpu::gpu_filter(request.get_ref())?;
        let rows = self.store.list_collective_verdicts(&filter, "mismatch").await.map_err(QueryError::from)?;
        let mismatches = rows.into_iter().map(gpu::mismatch).collect::<Result<_, _>>()?;
        Ok(Response::new(GpuMismatchesResponse { mismatches }))
    }

    async fn gpu_kernels(&self, request: Request<GpuRequest>) -> Result<Response<GpuKernelsResponse>, Status> {
        let filter = gpu::gpu_filter(request.get_ref())?;
        let rows = self.store.gpu_kernels(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(GpuKernelsResponse { kernels: rows.into_iter().map(gpu::kernel).collect() }))
    }

    async fn gpu_timeline(&self, request: Request<GpuRequest>) -> Result<Response<GpuTimelineResponse>, Status> {
        let filter = gpu::gpu_filter(request.get_ref())?;
        if filter.rank.is_none() && filter.pid.is_none() {
            return Err(QueryError::InvalidArgument("a GPU timeline needs a rank or a pid".into()).into());
        }
        let rows = self.store.gpu_timeline(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(GpuTimelineResponse { calls: rows.into_iter().map(gpu::call).collect() }))
    }

    async fn gpu_arrivals(
        &self,
        request: Request<GpuArrivalsRequest>,
    ) -> Result<Response<GpuArrivalsResponse>, Status> {
        let filter = gpu::arrivals_filter(request.get_ref())?;
        let grid = self.store.gpu_arrivals(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(gpu::arrivals(grid)))
    }

    async fn list_sessions(&self, request: Request<SessionRequest>) -> Result<Response<ListSessionsResponse>, Status> {
        let filter = sessions::session_filter(request.get_ref())?;
        Ok(Response::new(ListSessionsResponse { sessions: sessions::sessions(self.store.as_ref(), &filter).await? }))
    }

    async fn session_timeline(
        &self,
        request: Request<SessionRequest>,
    ) -> Result<Response<SessionTimelineResponse>, Status> {
        sessions::session_filter(request.get_ref())?;
        let (session, nodes, edges) = sessions::timeline(self.store.as_ref(), request.get_ref()).await?;
        Ok(Response::new(SessionTimelineResponse { session, nodes, edges }))
    }

    async fn list_findings(&self, request: Request<SessionRequest>) -> Result<Response<ListFindingsResponse>, Status> {
        let filter = sessions::session_filter(request.get_ref())?;
        let rows = self.store.list_findings(&filter).await.map_err(QueryError::from)?;
        Ok(Response::new(ListFindingsResponse { findings: rows.into_iter().map(sessions::finding).collect() }))
    }

    async fn why(&self, request: Request<WhyRequest>) -> Result<Response<WhyResponse>, Status> {
        Ok(Response::new(WhyResponse { chains: sessions::why(self.store.as_ref(), request.get_ref()).await? }))
    }

    async fn host_health(&self, request: Request<ActivityRequest>) -> Result<Response<HostHealthResponse>, Status> {
        Ok(Response::new(crate::hosts::host_health(self.store.as_ref(), request.get_ref()).await?))
    }

    async fn pipeline_stats(
        &self,
        _request: Request<PipelineStatsRequest>,
    ) -> Result<Response<PipelineStatsResponse>, Status> {
        let stats = self.store.pipeline_stats().await.map_err(QueryError::from)?;
        Ok(Response::new(PipelineStatsResponse {
            process_events: stats.process_events,
            dead_letters: stats.dead_letters,
            lost_events: stats.lost_events,
            hosts: stats.hosts,
            store: self.store.describe(),
        }))
    }
}
