//! What the causal graph of agent sessions costs the aggregator, next to
//! what storing the same rows costs: a host's agents (each an LLM-calling
//! process that runs tools: a child process, files read and written, a
//! connection per turn) as the rows the aggregator sees, in batches, fed to
//! the session graph and written to the embedded store (SQLite), each timed
//! alone. One agent in ten lies: it reports a test run the kernel never saw,
//! and exactly those must be found.

use std::time::{Duration, Instant};

use plumbline_aggregator::{session_graph::SessionGraph, SessionsConfig};
use plumbline_store::{
    file_op, FileEventRow, LlmCallRow, NetConnectionRow, ProcessEventKind, ProcessEventRow, RowSet, Store,
};

const MS: u64 = 1_000_000;
const WALL: u64 = 1_700_000_000_000_000_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agents on the host.
    #[arg(long, default_value_t = 200)]
    agents: u32,
    /// LLM calls per agent.
    #[arg(long, default_value_t = 50)]
    turns: u64,
    /// Files each tool run reads (its imports, its inputs).
    #[arg(long, default_value_t = 30)]
    reads_per_turn: u64,
    /// Rounds; each reports both costs.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let batches = host_batches(&args);
    let rows: usize = batches.iter().map(RowSet::len).sum();
    let liars = args.agents.div_ceil(10);
    println!(
        "{} agents × {} turns: {rows} rows in {} batches, {liars} lying agents",
        args.agents,
        args.turns,
        batches.len()
    );
    println!("| round | session graph | rows/s | SQLite write | rows/s | graph / store | findings |");
    println!("|---|---|---|---|---|---|---|");
    for round in 0..args.rounds {
        let config = SessionsConfig { settle_ms: 0, ..Default::default() };
        let mut graph = SessionGraph::new(config.settings());
        let started = Instant::now();
        let mut findings = 0;
        for (i, batch) in batches.iter().enumerate() {
            findings += graph.observe(batch, i as u64 * MS).findings.len();
        }
        findings += graph.tick(u64::MAX / 2).findings.len();
        let graph_time = started.elapsed();
        anyhow::ensure!(findings == liars as usize, "found {findings} unverified claims, {liars} lying agents");

        let dir = tempfile::tempdir()?;
        let store = plumbline_store::sqlite::SqliteStore::open(&dir.path().join("bench.db")).await?;
        let started = Instant::now();
        for batch in &batches {
            store.write(std::sync::Arc::new(batch.clone())).await?;
        }
        let store_time = started.elapsed();
        println!(
            "| {round} | {} | {:.0} | {} | {:.0} | {:.3} | {findings} |",
            ms(graph_time),
            rows as f64 / graph_time.as_secs_f64(),
            ms(store_time),
            rows as f64 / store_time.as_secs_f64(),
            graph_time.as_secs_f64() / store_time.as_secs_f64()
        );
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// The host's rows, turn by turn across agents, cut into batches of about
/// 4096 rows as an agent flushes them.
fn host_batches(args: &Args) -> Vec<RowSet> {
    let mut batches = vec![RowSet::default()];
    let mut child = 100_000;
    for agent in 0..args.agents {
        let pid = 10_000 + agent;
        batches[0].process_events.push(process(ProcessEventKind::Seen, pid, 1, &["python3", "agent.py"], 0));
    }
    for turn in 0..args.turns {
        for agent in 0..args.agents {
            let pid = 10_000 + agent;
            let at = 1000 + turn * 1000 + u64::from(agent);
            let liar = agent % 10 == 0 && turn == args.turns / 2;
            let rows = batches.last_mut().expect("one at least");
            let tool = format!(
                r#"[{{"id":"call_{turn}","name":"run_command","arguments":"{{\"command\": \"python -m pytest -q tests/t{turn}\"}}"}}]"#
            );
            let result = if turn == 0 {
                "[]".to_string()
            } else {
                format!(r#"[{{"tool_call_id":"call_{}","content":"3 passed"}}]"#, turn - 1)
            };
            rows.llm_calls.push(llm_call(pid, at, &tool, &result));
            if !liar {
                child += 1;
                rows.process_events.push(process(ProcessEventKind::Fork, child, pid, &["python3"], at + 100));
                let test = format!("tests/t{turn}");
                rows.process_events.push(process(
                    ProcessEventKind::Exec,
                    child,
                    pid,
                    &["/venv/bin/python", "-m", "pytest", "-q", &test],
                    at + 101,
                ));
                for r in 0..args.reads_per_turn {
                    rows.file_events.push(file(child, &format!("/venv/lib/python3.11/m{r}.py"), 0, at + 110 + r));
                }
                rows.file_events.push(file(child, &format!("/work/.pytest_cache/{turn}"), 0o1101, at + 300));
                rows.net_connections.push(connect(child, at + 400));
                rows.process_events.push(process(ProcessEventKind::Exit, child, pid, &["python"], at + 500));
            }
            if rows.len() >= 4096 {
                batches.push(RowSet::default());
            }
        }
    }
    // Each agent's next call closes its last turn.
    let rows = batches.last_mut().expect("one at least");
    for agent in 0..args.agents {
        let at = 1000 + args.turns * 1000 + u64::from(agent);
        let result = format!(r#"[{{"tool_call_id":"call_{}","content":"3 passed"}}]"#, args.turns - 1);
        rows.llm_calls.push(llm_call(10_000 + agent, at, "[]", &result));
    }
    batches
}

fn process(kind: ProcessEventKind, pid: u32, ppid: u32, argv: &[&str], at_ms: u64) -> ProcessEventRow {
    ProcessEventRow {
        host: "bench".into(),
        boot_id: "boot".into(),
        pid,
        start_key_ns: u64::from(pid) * 10 * MS,
        kind: kind as u8,
        ts_ns: at_ms * MS,
        wall_ns: WALL + at_ms * MS,
        start_wall_ns: WALL,
        ppid,
        uid: 1000,
        gid: 1000,
        comm: "python3".into(),
        exe: argv[0].into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        argv_truncated: false,
        cgroup_id: 1,
        exit_code: 0,
        exit_signal: 0,
        core_dumped: false,
        errno: 0,
    }
}

fn llm_call(pid: u32, at_ms: u64, tool_calls: &str, tool_results: &str) -> LlmCallRow {
    LlmCallRow {
        host: "bench".into(),
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
        model: "gpt-bench".into(),
        operation: "chat".into(),
        endpoint: "/v1/chat/completions".into(),
        server: "api.openai.com".into(),
        protocol: "HTTP/1.1".into(),
        library: "openssl".into(),
        http_status: 200,
        error: String::new(),
        stop_reason: "tool_calls".into(),
        streamed: 0,
        request_ts_ns: at_ms * MS,
        ttft_ns: 20 * MS,
        latency_ns: 50 * MS,
        input_tokens: 900,
        output_tokens: 40,
        cached_input_tokens: 0,
        request_bytes: 4000,
        response_bytes: 700,
        bytes_lost: 0,
        prompt: "Run the tests and fix what fails".into(),
        completion: String::new(),
        tool_calls: tool_calls.into(),
        tool_results: tool_results.into(),
        findings: "[]".into(),
        local_addr: "10.0.0.5".into(),
        local_port: 40000,
        remote_addr: "10.9.0.1".into(),
        remote_port: 443,
        fd: 5,
        connection_id: u64::from(pid),
    }
}

fn file(pid: u32, path: &str, flags: u32, at_ms: u64) -> FileEventRow {
    FileEventRow {
        host: "bench".into(),
        boot_id: "boot".into(),
        pid,
        process_start_key_ns: u64::from(pid) * 10 * MS,
        comm: "python".into(),
        cgroup_id: 1,
        ts_ns: at_ms * MS,
        wall_ns: WALL + at_ms * MS,
        op: file_op::OPEN,
        path: path.into(),
        target: String::new(),
        flags,
        result: 3,
        count: 1,
        last_wall_ns: WALL + at_ms * MS,
        dev: 1,
        ino: u64::from(pid) + at_ms,
        mode: 0o100644,
        path_truncated: 0,
    }
}

fn connect(pid: u32, at_ms: u64) -> NetConnectionRow {
    NetConnectionRow {
        host: "bench".into(),
        boot_id: "boot".into(),
        pid,
        process_start_key_ns: u64::from(pid) * 10 * MS,
        comm: "python".into(),
        cgroup_id: 1,
        ts_ns: at_ms * MS,
        wall_ns: WALL + at_ms * MS,
        direction: plumbline_store::direction::CONNECT,
        transport: plumbline_store::transport::TCP,
        local_addr: "10.0.0.5".into(),
        local_port: 50000,
        remote_addr: "10.9.0.2".into(),
        remote_port: 5432,
        unix_path: String::new(),
        remote_name: String::new(),
        result: 0,
        latency_ns: 1000,
        sock_id: u64::from(pid),
        peer_pid: 0,
        inode: 0,
        peer_inode: 0,
    }
}
