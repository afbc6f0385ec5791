//! What the causal graph of agent sessions costs the aggregator, next to
//! what storing the same rows costs: a host's agents (each an LLM-calling
//! process that runs tools: a child process, files read and written, a
//! connection per turn) as the rows the aggregator sees, in batches, fed to
//! the session graph and written to the embedded store (SQLite), each timed
//! alone. One agent in ten lies: it reports a test run the kernel never saw,
//! and exactly those must be found.

use std::time::{Duration, Instant};

use plumbline_aggregator::{session_graph::SessionGraph, SessionsConfig};
use plumbline_bench::agent_host::{connect, file, llm_call, process, MS};
use plumbline_store::{ProcessEventKind, RowSet, StoreWrite};

const PROMPT: &str = "Run the tests and fix what fails";

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
    host_rows(args.agents, args.turns, args.reads_per_turn)
}

/// The rows of `agents` agents taking `turns` turns each, every tool run
/// reading `reads_per_turn` files, in batches of about 4096 rows.
pub(crate) fn host_rows(agents: u32, turns: u64, reads_per_turn: u64) -> Vec<RowSet> {
    let args = Args { agents, turns, reads_per_turn, rounds: 1 };
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
            rows.llm_calls.push(llm_call(pid, at, PROMPT, &tool, &result));
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
                rows.net_connections.push(connect(child, "10.9.0.2", 5432, at + 400));
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
        rows.llm_calls.push(llm_call(10_000 + agent, at, PROMPT, "[]", &result));
    }
    batches
}
