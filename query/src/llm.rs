//! Answers of the LLM views: from store rows to `plumbline.v1` messages.

use plumbline_proto::v1::{
    AgentView, LlmCallView, LlmFindingView, LlmToolCallView, LlmToolResultView, TlsStackView, TokenUsageRow,
};
use plumbline_store::{AgentActivityRow, LlmCallRow, StoreError, TlsStackRow, TokenUsageHourRow};

use crate::{activity::ContainerIds, connections::endpoint};

/// An address as stored (an IP, or a unix socket's path) with its port.
fn socket(addr: &str, port: u32) -> String {
    if addr.starts_with('/') || addr.starts_with('@') {
        endpoint("", 0, addr)
    } else {
        endpoint(addr, port, "")
    }
}

pub fn llm_call(row: LlmCallRow, containers: &ContainerIds) -> Result<LlmCallView, StoreError> {
    let tool_calls = row
        .tool_call_list()?
        .into_iter()
        .map(|t| LlmToolCallView { id: t.id, name: t.name, arguments: t.arguments })
        .collect();
    let tool_results = row
        .tool_result_list()?
        .into_iter()
        .map(|t| LlmToolResultView { tool_call_id: t.tool_call_id, content: t.content })
        .collect();
    let findings = row
        .finding_list()?
        .into_iter()
        .map(|f| LlmFindingView { kind: f.kind, location: f.location, excerpt: f.excerpt })
        .collect();
    Ok(LlmCallView {
        container_id: containers.get(&row.host, row.cgroup_id),
        local: socket(&row.local_addr, row.local_port),
        remote: socket(&row.remote_addr, row.remote_port),
        host: row.host,
        boot_id: row.boot_id,
        pid: row.pid,
        tid: row.tid,
        comm: row.comm,
        agent: row.agent,
        provider: row.provider,
        model: row.model,
        operation: row.operation,
        endpoint: row.endpoint,
        server: row.server,
        protocol: row.protocol,
        http_status: row.http_status,
        error: row.error,
        stop_reason: row.stop_reason,
        streamed: row.streamed != 0,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        cached_input_tokens: row.cached_input_tokens,
        ttft_ns: row.ttft_ns,
        latency_ns: row.latency_ns,
        request_bytes: row.request_bytes,
        response_bytes: row.response_bytes,
        bytes_lost: row.bytes_lost,
        prompt: row.prompt,
        completion: row.completion,
        tool_calls,
        tool_results,
        findings,
        wall_ns: row.wall_ns,
        library: row.library,
        connection_id: row.connection_id,
    })
}

pub fn agent(row: AgentActivityRow, containers: &ContainerIds) -> AgentView {
    AgentView {
        container_id: containers.get(&row.host, row.cgroup_id),
        host: row.host,
        boot_id: row.boot_id,
        pid: row.pid,
        comm: row.comm,
        agent: row.agent,
        rule: row.rule,
        matched_on: row.matched_on,
        llm_calls: row.llm_calls,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        first_wall_ns: row.first_wall_ns,
        last_wall_ns: row.last_wall_ns,
    }
}

pub fn token_usage(row: TokenUsageHourRow) -> TokenUsageRow {
    TokenUsageRow {
        hour_wall_ns: row.hour_wall_ns,
        agent: row.agent,
        provider: row.provider,
        model: row.model,
        calls: row.calls,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        cached_input_tokens: row.cached_input_tokens,
    }
}

pub fn tls_stack(row: TlsStackRow) -> TlsStackView {
    TlsStackView {
        host: row.host,
        boot_id: row.boot_id,
        pid: row.pid,
        comm: row.comm,
        library: row.library,
        path: row.path,
        hooked: row.hooked != 0,
        reason: row.reason,
        wall_ns: row.wall_ns,
    }
}
