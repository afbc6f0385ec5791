//! An HTTP exchange with an LLM endpoint, as the `LlmCall` event that leaves
//! the node: secrets redacted first, guardrails run on what remains, then the
//! prompt capture mode decides how much text goes out.

use std::net::SocketAddr;

use plumbline_intent::{endpoints::EndpointCatalog, guardrails, llm, redact::redact_text, Head};
use plumbline_proto::{
    v1::{LlmCall, LlmFinding, LlmToolCall, LlmToolResult, SocketAddress},
    BatchBuilder,
};
use sha2::{Digest, Sha256};

use super::{config::PromptCapture, connections::Exchange};

/// What the agent knows about the connection an exchange travelled on.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    pub connection_id: u64,
    pub library: &'static str,
    pub fd: i32,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// The DNS name the process looked up for the remote address.
    pub remote_name: Option<String>,
    /// The server name (SNI) the client asked for in its TLS handshake.
    pub server_name: Option<String>,
}

/// The request's host, without a port.
pub fn request_host(exchange: &Exchange) -> Option<&str> {
    let host = exchange.request.header("host")?;
    let host = if let Some(v6) = host.strip_prefix('[') { v6.split(']').next()? } else { host.split(':').next()? };
    Some(host)
}

/// The `LlmCall` for `exchange`, or `None` when it went to no LLM endpoint
/// (a package download, a git fetch).
pub fn llm_call(
    exchange: &Exchange,
    catalog: &EndpointCatalog,
    info: &ConnectionInfo,
    agent: &str,
    capture: PromptCapture,
    batch: &mut BatchBuilder,
) -> Option<LlmCall> {
    let Head::Request { target, .. } = &exchange.request.head else { return None };
    let host =
        request_host(exchange).or(info.server_name.as_deref()).or(info.remote_name.as_deref()).unwrap_or_default();
    let endpoint = catalog.find(host, target)?;
    let call = llm::interpret(endpoint.format, &exchange.request, &exchange.response);

    let mut findings = Vec::new();
    let mut scan = |location: &str, text: &str, batch: &mut BatchBuilder| {
        for finding in guardrails::scan(text) {
            findings.push(LlmFinding {
                kind_sid: batch.intern(finding.kind.name()),
                location_sid: batch.intern(location),
                excerpt_sid: batch.intern(&redact_text(&finding.excerpt)),
            });
        }
    };
    let prompt = redact_text(&call.prompt);
    let completion = redact_text(&call.completion);
    scan("prompt", &prompt, batch);
    scan("completion", &completion, batch);
    let tool_calls: Vec<LlmToolCall> = call
        .tool_calls
        .iter()
        .map(|t| {
            let arguments = redact_text(&t.arguments);
            scan("tool_arguments", &arguments, batch);
            LlmToolCall {
                id_sid: batch.intern(&t.id),
                name_sid: batch.intern(&t.name),
                arguments_sid: batch.intern(&arguments),
            }
        })
        .collect();
    let tool_results: Vec<LlmToolResult> = call
        .tool_results
        .iter()
        .map(|r| {
            let content = redact_text(&r.content);
            scan("tool_result", &content, batch);
            LlmToolResult {
                tool_call_id_sid: batch.intern(&r.tool_call_id),
                content_sid: batch.intern(&captured(&content, capture)),
            }
        })
        .collect();

    // SNI, else the Host header, else the DNS name the process looked up.
    let server = info
        .server_name
        .clone()
        .or_else(|| request_host(exchange).map(str::to_string))
        .or_else(|| info.remote_name.clone())
        .unwrap_or_default();
    Some(LlmCall {
        provider_sid: batch.intern(&endpoint.provider),
        model_sid: batch.intern(call.model.as_deref().unwrap_or_default()),
        endpoint_sid: batch.intern(&redact_text(target)),
        http_status: u32::from(call.status),
        request_ts_ns: exchange.start_ns,
        latency_ns: exchange.end_ns.saturating_sub(exchange.start_ns),
        input_tokens: call.input_tokens.unwrap_or_default(),
        output_tokens: call.output_tokens.unwrap_or_default(),
        streamed: call.streamed,
        tool_calls,
        connection_id: info.connection_id,
        agent_sid: batch.intern(agent),
        cached_input_tokens: call.cached_tokens.unwrap_or_default(),
        ttft_ns: exchange.first_response_ns.saturating_sub(exchange.start_ns),
        stop_reason_sid: batch.intern(call.stop_reason.as_deref().unwrap_or_default()),
        error_sid: batch.intern(&redact_text(call.error.as_deref().unwrap_or_default())),
        server_sid: batch.intern(&server),
        operation_sid: batch.intern(call.operation),
        prompt_sid: batch.intern(&captured(&prompt, capture)),
        completion_sid: batch.intern(&captured(&completion, capture)),
        tool_results,
        findings,
        request_bytes: exchange.request.wire_body_bytes,
        response_bytes: exchange.response.wire_body_bytes,
        bytes_lost: exchange.bytes_lost,
        protocol_sid: batch.intern(exchange.protocol),
        library_sid: batch.intern(info.library),
        local: info.local.map(socket_address),
        remote: info.remote.map(socket_address),
        fd: info.fd,
    })
}

/// Text as the capture mode lets it leave.
fn captured(text: &str, capture: PromptCapture) -> String {
    match capture {
        PromptCapture::Full => text.to_string(),
        PromptCapture::Hashed if text.is_empty() => String::new(),
        PromptCapture::Hashed => {
            let digest = Sha256::digest(text.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        }
        PromptCapture::Off => String::new(),
    }
}

fn socket_address(addr: SocketAddr) -> SocketAddress {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    SocketAddress { ip, port: u32::from(addr.port()), path_sid: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_capture_hides_the_text_but_keeps_equal_texts_equal() {
        let a = captured("hello", PromptCapture::Hashed);
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64 && !a.contains("hello"));
        assert_eq!(a, captured("hello", PromptCapture::Hashed));
        assert_eq!(captured("hello", PromptCapture::Off), "");
        assert_eq!(captured("hello", PromptCapture::Full), "hello");
    }
}
