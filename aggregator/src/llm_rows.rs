//! Rows of the LLM tables (calls, agent membership, TLS stacks) from the
//! events of one batch.

use plumbline_proto::{
    v1::{event::Body, LlmCall, SocketAddress},
    BatchError, BatchReader, EventRef,
};
use plumbline_store::{
    to_json_column, AgentProcessRow, LlmCallRow, LlmFinding, LlmToolCall, LlmToolResult, RowSet, TlsStackRow,
};

use crate::activity_rows::{activity_row, ip_text, port, who};

/// Adds the row for `body` to `rows`; false when the kind is not one of the
/// LLM tables'.
pub fn push_llm_row(
    reader: &BatchReader<'_>,
    event: &EventRef<'_>,
    body: &Body,
    rows: &mut RowSet,
) -> Result<bool, BatchError> {
    let i = event.index;
    match body {
        Body::LlmCall(call) => rows.llm_calls.push(llm_call_row(reader, event, call)?),
        Body::Agent(agent) => {
            let w = who(reader, event)?;
            rows.agent_processes.push(activity_row!(AgentProcessRow, w, {
                agent: reader.str(i, agent.agent_sid)?.to_string(),
                rule: reader.str(i, agent.rule_sid)?.to_string(),
                matched_on: reader.str(i, agent.matched_on_sid)?.to_string(),
            }));
        }
        Body::TlsStack(stack) => {
            let w = who(reader, event)?;
            rows.tls_stacks.push(activity_row!(TlsStackRow, w, {
                library: reader.str(i, stack.library_sid)?.to_string(),
                path: reader.str(i, stack.path_sid)?.to_string(),
                hooked: stack.hooked.into(),
                reason: reader.str(i, stack.reason_sid)?.to_string(),
            }));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The address of a socket as text: its IP, or its path for a unix socket.
fn address(reader: &BatchReader<'_>, i: usize, address: Option<&SocketAddress>) -> Result<String, BatchError> {
    match address {
        Some(a) if a.ip.is_empty() && a.path_sid != 0 => Ok(reader.str(i, a.path_sid)?.to_string()),
        other => Ok(ip_text(other)),
    }
}

fn llm_call_row(reader: &BatchReader<'_>, event: &EventRef<'_>, call: &LlmCall) -> Result<LlmCallRow, BatchError> {
    let i = event.index;
    let s = |sid: u32| reader.str(i, sid).map(str::to_string);
    let tool_calls = call
        .tool_calls
        .iter()
        .map(|t| Ok(LlmToolCall { id: s(t.id_sid)?, name: s(t.name_sid)?, arguments: s(t.arguments_sid)? }))
        .collect::<Result<Vec<_>, BatchError>>()?;
    let tool_results = call
        .tool_results
        .iter()
        .map(|t| Ok(LlmToolResult { tool_call_id: s(t.tool_call_id_sid)?, content: s(t.content_sid)? }))
        .collect::<Result<Vec<_>, BatchError>>()?;
    let findings = call
        .findings
        .iter()
        .map(|f| Ok(LlmFinding { kind: s(f.kind_sid)?, location: s(f.location_sid)?, excerpt: s(f.excerpt_sid)? }))
        .collect::<Result<Vec<_>, BatchError>>()?;
    let (local, remote) = (call.local.as_ref(), call.remote.as_ref());
    let w = who(reader, event)?;
    Ok(activity_row!(LlmCallRow, w, {
        tid: event.event.tid,
        agent: s(call.agent_sid)?,
        provider: s(call.provider_sid)?,
        model: s(call.model_sid)?,
        operation: s(call.operation_sid)?,
        endpoint: s(call.endpoint_sid)?,
        server: s(call.server_sid)?,
        protocol: s(call.protocol_sid)?,
        library: s(call.library_sid)?,
        http_status: call.http_status,
        error: s(call.error_sid)?,
        stop_reason: s(call.stop_reason_sid)?,
        streamed: call.streamed.into(),
        request_ts_ns: call.request_ts_ns,
        ttft_ns: call.ttft_ns,
        latency_ns: call.latency_ns,
        input_tokens: call.input_tokens,
        output_tokens: call.output_tokens,
        cached_input_tokens: call.cached_input_tokens,
        request_bytes: call.request_bytes,
        response_bytes: call.response_bytes,
        bytes_lost: call.bytes_lost,
        prompt: s(call.prompt_sid)?,
        completion: s(call.completion_sid)?,
        tool_calls: to_json_column(&tool_calls),
        tool_results: to_json_column(&tool_results),
        findings: to_json_column(&findings),
        local_addr: address(reader, i, local)?,
        local_port: port(local),
        remote_addr: address(reader, i, remote)?,
        remote_port: port(remote),
        fd: call.fd,
        connection_id: call.connection_id,
    }))
}

#[cfg(test)]
mod tests {
    use plumbline_proto::{
        v1::{AgentProcess, ClockAnchor, LlmFinding as Finding, LlmToolCall as ToolCall, NodeIdentity, TlsStack},
        BatchBuilder, BatchHeader, Who,
    };

    use super::*;

    fn rows_of(b: &mut BatchBuilder) -> RowSet {
        let batch = b.finish(BatchHeader {
            node: NodeIdentity { host: "node-1".into(), boot_id: "b".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: 1_000, uncertainty_ns: 0 },
            ..Default::default()
        });
        let reader = BatchReader::new(&batch).unwrap();
        let mut rows = RowSet::default();
        for event in reader.events() {
            let event = event.unwrap();
            assert!(push_llm_row(&reader, &event, event.event.body.as_ref().unwrap(), &mut rows).unwrap());
        }
        rows
    }

    #[test]
    fn a_call_becomes_one_row_with_its_strings_resolved_and_its_lists_as_json() {
        let mut b = BatchBuilder::new();
        let who = Who { pid: 7, tid: 9, cgroup_id: 55, comm_sid: b.intern("python3"), process_start_ns: 1_234_567_891 };
        let call = LlmCall {
            provider_sid: b.intern("openai"),
            model_sid: b.intern("gpt-4o"),
            agent_sid: b.intern("coder"),
            http_status: 200,
            input_tokens: 12,
            output_tokens: 34,
            cached_input_tokens: 5,
            ttft_ns: 7_000_000,
            streamed: true,
            tool_calls: vec![ToolCall {
                id_sid: b.intern("call_1"),
                name_sid: b.intern("bash"),
                arguments_sid: b.intern("{\"cmd\":\"ls\"}"),
            }],
            findings: vec![Finding {
                kind_sid: b.intern("pii_email"),
                location_sid: b.intern("prompt"),
                excerpt_sid: b.intern("mail ***"),
            }],
            remote: Some(SocketAddress { ip: vec![127, 0, 0, 1], port: 8443, path_sid: 0 }),
            connection_id: 0xdead,
            ..Default::default()
        };
        b.push_by(10, &who, Body::LlmCall(call));
        let rows = rows_of(&mut b);
        let row = &rows.llm_calls[0];
        assert_eq!((row.pid, row.tid, row.comm.as_str(), row.wall_ns), (7, 9, "python3", 1_010));
        assert_eq!(row.process_start_key_ns, 1_230_000_000);
        assert_eq!((row.agent.as_str(), row.provider.as_str(), row.model.as_str()), ("coder", "openai", "gpt-4o"));
        assert_eq!((row.input_tokens, row.output_tokens, row.cached_input_tokens, row.streamed), (12, 34, 5, 1));
        assert_eq!((row.remote_addr.as_str(), row.remote_port, row.local_addr.as_str()), ("127.0.0.1", 8443, ""));
        assert_eq!(row.tool_calls, r#"[{"id":"call_1","name":"bash","arguments":"{\"cmd\":\"ls\"}"}]"#);
        assert_eq!(row.tool_results, "[]");
        assert_eq!(row.finding_list().unwrap()[0].kind, "pii_email");
    }

    #[test]
    fn agent_membership_and_tls_stacks_become_rows_of_their_process() {
        let mut b = BatchBuilder::new();
        let who = Who { pid: 8, tid: 8, cgroup_id: 1, comm_sid: b.intern("node"), process_start_ns: 2_000_000_000 };
        let agent = AgentProcess {
            agent_sid: b.intern("reviewer"),
            rule_sid: b.intern("node-agents"),
            matched_on_sid: b.intern("PROCESS_NAME"),
        };
        b.push_by(20, &who, Body::Agent(agent));
        let stack = TlsStack {
            library_sid: b.intern("go"),
            path_sid: b.intern("/usr/bin/gh"),
            hooked: false,
            reason_sid: b.intern("stripped Go binary: no crypto/tls symbols"),
        };
        b.push_by(30, &who, Body::TlsStack(stack));
        let rows = rows_of(&mut b);
        let agent = &rows.agent_processes[0];
        assert_eq!((agent.pid, agent.agent.as_str(), agent.rule.as_str()), (8, "reviewer", "node-agents"));
        assert_eq!((agent.matched_on.as_str(), agent.process_start_key_ns), ("PROCESS_NAME", 2_000_000_000));
        let stack = &rows.tls_stacks[0];
        assert_eq!((stack.library.as_str(), stack.path.as_str(), stack.hooked), ("go", "/usr/bin/gh", 0));
        assert!(stack.reason.starts_with("stripped Go binary"));
        assert_eq!(stack.wall_ns, 1_030);
    }
}
