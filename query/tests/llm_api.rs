//! The LLM views over a real gRPC connection and through `plumb`, answered
//! from a store holding a few calls: the full call with its text, tool calls
//! and findings, agents mapped and discovered, hourly tokens, TLS stacks.

use std::sync::Arc;

use clap::Parser;
use plumbline_proto::v1::{query_service_client::QueryServiceClient, ActivityRequest};
use plumbline_query::cli::{self, Cli};
use plumbline_store::{
    sqlite::SqliteStore, to_json_column, AgentProcessRow, ContainerRow, LlmCallRow, LlmFinding, LlmToolCall,
    LlmToolResult, RowSet, Store, StoreWrite, TlsStackRow,
};
use tokio_util::sync::CancellationToken;

const S: u64 = 1_000_000_000;
/// 2026-11-23T14:00:00Z.
const HOUR: u64 = 1_795_442_400 * S;

fn call(pid: u32, comm: &str, agent: &str, model: &str, at: u64, tokens: (u64, u64)) -> LlmCallRow {
    LlmCallRow {
        host: "node-1".into(),
        boot_id: "boot".into(),
        pid,
        process_start_key_ns: S,
        comm: comm.into(),
        cgroup_id: 7,
        ts_ns: at - HOUR,
        wall_ns: at,
        tid: pid + 1,
        agent: agent.into(),
        provider: if model.starts_with("claude") { "anthropic" } else { "openai" }.into(),
        model: model.into(),
        operation: "chat".into(),
        endpoint: "/v1/chat/completions".into(),
        server: "api.openai.com".into(),
        protocol: "HTTP/2".into(),
        library: "openssl".into(),
        http_status: 200,
        error: String::new(),
        stop_reason: "tool_calls".into(),
        streamed: 1,
        request_ts_ns: at - HOUR,
        ttft_ns: 250_000_000,
        latency_ns: 900_000_000,
        input_tokens: tokens.0,
        output_tokens: tokens.1,
        cached_input_tokens: 0,
        request_bytes: 512,
        response_bytes: 2048,
        bytes_lost: 0,
        prompt: "run the unit tests; my mail is ***".into(),
        completion: String::new(),
        tool_calls: to_json_column(&[LlmToolCall {
            id: "call_1".into(),
            name: "bash".into(),
            arguments: "{\"cmd\":\"pytest -q\"}".into(),
        }]),
        tool_results: to_json_column(&[LlmToolResult { tool_call_id: "call_0".into(), content: "ok".into() }]),
        findings: to_json_column(&[LlmFinding {
            kind: "pii_email".into(),
            location: "prompt".into(),
            excerpt: "my mail is ***".into(),
        }]),
        local_addr: "10.0.0.5".into(),
        local_port: 40123,
        remote_addr: "2001:db8::1".into(),
        remote_port: 443,
        fd: 5,
        connection_id: 0xabc,
    }
}

fn rows() -> RowSet {
    RowSet {
        llm_calls: vec![
            call(10, "python3", "coder", "gpt-4o", HOUR + 60 * S, (100, 20)),
            call(10, "python3", "coder", "claude-sonnet-4", HOUR + 3700 * S, (300, 40)),
            call(20, "curl", "", "gpt-4o-mini", HOUR + 120 * S, (5, 1)),
        ],
        agent_processes: vec![AgentProcessRow {
            host: "node-1".into(),
            boot_id: "boot".into(),
            pid: 10,
            process_start_key_ns: S,
            comm: "python3".into(),
            cgroup_id: 7,
            ts_ns: 1,
            wall_ns: HOUR + S,
            agent: "coder".into(),
            rule: "coders".into(),
            matched_on: "COMMAND_LINE".into(),
        }],
        tls_stacks: vec![TlsStackRow {
            host: "node-1".into(),
            boot_id: "boot".into(),
            pid: 30,
            process_start_key_ns: S,
            comm: "gh".into(),
            cgroup_id: 7,
            ts_ns: 2,
            wall_ns: HOUR + 2 * S,
            library: "go".into(),
            path: "/usr/bin/gh".into(),
            hooked: 0,
            reason: "stripped Go binary: no crypto/tls symbols".into(),
        }],
        containers: vec![ContainerRow {
            host: "node-1".into(),
            boot_id: "boot".into(),
            cgroup_id: 7,
            cgroup_path: "/kubepods/pod1/abc".into(),
            container_id: "abc123".into(),
            runtime: "containerd".into(),
            pod_uid: String::new(),
            pod_namespace: String::new(),
            pod_name: "agents".into(),
            wall_ns: HOUR,
        }],
        ..Default::default()
    }
}

/// The service over a store with [`rows`]; its address.
async fn serve() -> String {
    let store = SqliteStore::in_memory().await.unwrap();
    store.write(Arc::new(rows())).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let (listener, addr) = plumbline_query::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(plumbline_query::serve(store, listener, Default::default(), CancellationToken::new()));
    format!("http://{addr}")
}

async fn plumb(addr: &str, args: &[&str]) -> String {
    let cli = Cli::try_parse_from(["plumb", "--addr", addr].iter().chain(args)).unwrap();
    cli::run(&cli).await.unwrap()
}

#[tokio::test]
async fn a_call_comes_back_whole_over_grpc_with_its_container_and_endpoints() {
    let addr = serve().await;
    let mut client = QueryServiceClient::connect(addr).await.unwrap();
    let request = ActivityRequest { contains: "claude".into(), ..Default::default() };
    let calls = client.list_llm_calls(request).await.unwrap().into_inner().calls;
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!((c.pid, c.tid, c.agent.as_str(), c.provider.as_str()), (10, 11, "coder", "anthropic"));
    assert_eq!((c.local.as_str(), c.remote.as_str()), ("10.0.0.5:40123", "[2001:db8::1]:443"));
    assert_eq!((c.container_id.as_str(), c.streamed, c.ttft_ns), ("abc123", true, 250_000_000));
    assert_eq!(c.tool_calls[0].arguments, "{\"cmd\":\"pytest -q\"}");
    assert_eq!(c.tool_results[0].tool_call_id, "call_0");
    assert_eq!(c.findings[0].kind, "pii_email");

    let agents = client.list_agents(ActivityRequest::default()).await.unwrap().into_inner().agents;
    let agents: Vec<(u32, &str, u64)> = agents.iter().map(|a| (a.pid, a.agent.as_str(), a.llm_calls)).collect();
    assert_eq!(agents, [(10, "coder", 2), (20, "", 1)]);
    let usage = client.token_usage(ActivityRequest::default()).await.unwrap().into_inner().rows;
    assert_eq!(
        usage.iter().map(|r| (r.hour_wall_ns, r.input_tokens)).collect::<Vec<_>>(),
        [(HOUR + 3600 * S, 300), (HOUR, 5), (HOUR, 100)]
    );
    let stacks = client.list_tls_stacks(ActivityRequest::default()).await.unwrap().into_inner().stacks;
    assert_eq!((stacks[0].library.as_str(), stacks[0].hooked), ("go", false));
}

#[tokio::test]
async fn plumb_llm_json_carries_prompt_tool_calls_and_findings_and_flags_narrow_by_column() {
    let addr = serve().await;
    let json: serde_json::Value = serde_json::from_str(&plumb(&addr, &["llm", "-o", "json"]).await).unwrap();
    let calls = json.as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0]["model"], "claude-sonnet-4", "newest first");
    assert_eq!(calls[0]["prompt"], "run the unit tests; my mail is ***");
    assert_eq!(calls[0]["tool_calls"][0]["name"], "bash");
    assert_eq!(calls[0]["findings"][0]["location"], "prompt");

    // The service matches one substring (coder's calls); `--model` narrows those.
    let narrowed = plumb(&addr, &["llm", "--agent", "coder", "--model", "gpt", "-o", "json"]).await;
    let narrowed: serde_json::Value = serde_json::from_str(&narrowed).unwrap();
    assert_eq!(narrowed.as_array().unwrap().len(), 1);
    assert_eq!(narrowed[0]["model"], "gpt-4o");
}

#[tokio::test]
async fn plumb_prints_agents_tokens_and_tls_stacks_as_tables() {
    let addr = serve().await;
    let agents = plumb(&addr, &["agents"]).await;
    let lines: Vec<&str> = agents.lines().collect();
    assert!(lines[1].contains("coder") && lines[1].contains("mapped") && lines[1].contains("coders (COMMAND_LINE)"));
    assert!(lines[2].contains("curl") && lines[2].contains("discovered"), "{agents}");

    let tokens = plumb(&addr, &["tokens", "--agent", "coder"]).await;
    assert_eq!(tokens.lines().count(), 3, "a header and coder's two hours: {tokens}");
    assert!(tokens.lines().nth(1).unwrap().starts_with("2026-11-23T15:00:00Z  coder"), "{tokens}");

    let tls = plumb(&addr, &["tls", "--library", "go"]).await;
    assert!(tls.lines().nth(1).unwrap().ends_with("no crypto/tls symbols"), "{tls}");
}
