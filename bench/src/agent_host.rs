//! Rows of one host's AI agents as the aggregator receives them (processes,
//! LLM calls, files, connections), for the session graph's benchmark and
//! tests: small builders with the who-and-when filled in.

use plumbline_store::{file_op, FileEventRow, LlmCallRow, NetConnectionRow, ProcessEventKind, ProcessEventRow};

pub const MS: u64 = 1_000_000;
pub const HOST: &str = "agent-host";
/// The wall clock at boot-clock 0.
pub const WALL: u64 = 1_700_000_000_000_000_000;
/// The LLM endpoint every call goes to.
pub const LLM_ADDR: (&str, u32) = ("127.0.0.1", 8443);

/// A process event at `at_ms` (boot clock); `comm` is the program's name.
pub fn process(kind: ProcessEventKind, pid: u32, ppid: u32, argv: &[&str], at_ms: u64) -> ProcessEventRow {
    ProcessEventRow {
        host: HOST.into(),
        boot_id: "boot".into(),
        pid,
        start_key_ns: u64::from(pid) * 10 * MS,
        kind: kind as u8,
        ts_ns: at_ms * MS,
        wall_ns: WALL + at_ms * MS,
        start_wall_ns: WALL,
        ppid,
        comm: argv[0].rsplit('/').next().unwrap_or_default().chars().take(15).collect(),
        exe: argv[0].into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        cgroup_id: 1,
        ..Default::default()
    }
}

/// An LLM call of `pid` whose request started at `at_ms`; its response ends
/// 50 ms later. `tool_calls` and `tool_results` are the JSON columns.
pub fn llm_call(pid: u32, at_ms: u64, prompt: &str, tool_calls: &str, tool_results: &str) -> LlmCallRow {
    LlmCallRow {
        host: HOST.into(),
        boot_id: "boot".into(),
        pid,
        process_start_key_ns: u64::from(pid) * 10 * MS,
        comm: "python3".into(),
        cgroup_id: 1,
        ts_ns: (at_ms + 50) * MS,
        wall_ns: WALL + (at_ms + 50) * MS,
        tid: pid,
        agent: "coder".into(),
        provider: "openai".into(),
        model: "gpt-test".into(),
        operation: "chat".into(),
        endpoint: "/v1/chat/completions".into(),
        server: "localhost".into(),
        protocol: "http/1.1".into(),
        library: "openssl".into(),
        http_status: 200,
        request_ts_ns: at_ms * MS,
        ttft_ns: 20 * MS,
        latency_ns: 50 * MS,
        input_tokens: 100,
        output_tokens: 20,
        request_bytes: 1000,
        response_bytes: 500,
        prompt: prompt.into(),
        tool_calls: tool_calls.into(),
        tool_results: tool_results.into(),
        findings: "[]".into(),
        local_addr: "127.0.0.1".into(),
        local_port: 40000,
        remote_addr: LLM_ADDR.0.into(),
        remote_port: LLM_ADDR.1,
        fd: 5,
        connection_id: 1,
        ..Default::default()
    }
}

/// An open of `path` with `flags` (read, or write with O_WRONLY and the like).
pub fn file(pid: u32, path: &str, flags: u32, at_ms: u64) -> FileEventRow {
    FileEventRow {
        op: file_op::OPEN,
        path: path.into(),
        flags,
        result: 3,
        count: 1,
        last_wall_ns: WALL + at_ms * MS,
        mode: 0o100644,
        host: HOST.into(),
        boot_id: "boot".into(),
        pid,
        process_start_key_ns: u64::from(pid) * 10 * MS,
        comm: "python".into(),
        cgroup_id: 1,
        ts_ns: at_ms * MS,
        wall_ns: WALL + at_ms * MS,
        ..Default::default()
    }
}

/// A TCP connect to `addr:port`.
pub fn connect(pid: u32, addr: &str, port: u32, at_ms: u64) -> NetConnectionRow {
    NetConnectionRow {
        direction: plumbline_store::direction::CONNECT,
        transport: plumbline_store::transport::TCP,
        local_addr: "127.0.0.1".into(),
        local_port: 50000,
        remote_addr: addr.into(),
        remote_port: port,
        latency_ns: 1000,
        sock_id: u64::from(pid),
        host: HOST.into(),
        boot_id: "boot".into(),
        pid,
        process_start_key_ns: u64::from(pid) * 10 * MS,
        comm: "python".into(),
        cgroup_id: 1,
        ts_ns: at_ms * MS,
        wall_ns: WALL + at_ms * MS,
        ..Default::default()
    }
}
