//! Spawns many short processes, alternating rounds without and with the
//! agent attached. Reports per-spawn latency (p50/p99) untraced vs traced and
//! the end-to-end rate: events per second from the first spawn of a traced
//! round until every one of its processes is listed, exited, by the store.

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use plumbline_aggregator::{pipeline::run_pipeline, AggregatorStats, PipelineConfig};
use plumbline_node_agent::AgentConfig;
use plumbline_store::{sqlite::SqliteStore, ProcessFilter, StoreRead};
use plumbline_transport::channel;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Processes spawned per round.
    #[arg(long, default_value_t = 2000)]
    processes: usize,
    /// Rounds of each kind (untraced, traced), alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Threads spawning in parallel.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Spawns `/bin/true <marker>` `n` times over `threads` threads; returns the
/// latency histogram (µs).
fn spawn_storm(n: usize, threads: usize, marker: &str) -> Histogram<u64> {
    let per_thread = n / threads;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let marker = marker.to_string();
            std::thread::spawn(move || {
                let mut histogram = Histogram::<u64>::new(3).unwrap();
                for _ in 0..per_thread {
                    let start = Instant::now();
                    let status = Command::new("/bin/true").arg(&marker).status().expect("spawn /bin/true");
                    assert!(status.success());
                    histogram.record(start.elapsed().as_micros() as u64).unwrap();
                }
                histogram
            })
        })
        .collect();
    let mut total = Histogram::<u64>::new(3).unwrap();
    for handle in handles {
        total.add(handle.join().unwrap()).unwrap();
    }
    total
}

/// The embedded road, in this process: agent → channel → aggregator → SQLite.
struct Traced {
    store: Arc<SqliteStore>,
    stop: CancellationToken,
    agent: tokio::task::JoinHandle<anyhow::Result<plumbline_node_agent::StatsSnapshot>>,
    aggregator: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_traced(db: &std::path::Path) -> anyhow::Result<Traced> {
    let store = Arc::new(SqliteStore::open(db).await?);
    let (sink, source) = channel::pair(256);
    let aggregator_store = store.clone();
    let aggregator = tokio::spawn(async move {
        let stats = Arc::new(AggregatorStats::default());
        let config = PipelineConfig::default();
        run_pipeline(&source, aggregator_store, &config, stats, &CancellationToken::new()).await
    });
    let stop = CancellationToken::new();
    let agent_stop = stop.clone();
    let agent = tokio::spawn(async move {
        let config = AgentConfig::default();
        plumbline_node_agent::run(config.settings(), Arc::new(sink), agent_stop).await
    });
    // Attached once the agent's own process is stored (seeded from /proc).
    let me = std::process::id();
    loop {
        let found = store.list_processes(&ProcessFilter { pid: Some(me), limit: 1, ..Default::default() }).await?;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Traced { store, stop, agent, aggregator })
}

async fn exited_count(store: &SqliteStore, marker: &str, limit: usize) -> anyhow::Result<usize> {
    let filter =
        ProcessFilter { argv_contains: Some(marker.to_string()), limit: limit as u32 + 10, ..Default::default() };
    Ok(store.list_processes(&filter).await?.iter().filter(|p| p.exited).count())
}

fn us(h: &Histogram<u64>, q: f64) -> u64 {
    h.value_at_quantile(q)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let n = args.processes / args.threads * args.threads;
    let mut untraced = Histogram::<u64>::new(3)?;
    let mut traced = Histogram::<u64>::new(3)?;
    let mut rates = Vec::new();
    println!("| round | kind | spawns | p50 µs | p99 µs | end-to-end events/s | kernel records | kernel lost |");
    println!("|---|---|---|---|---|---|---|---|");
    for round in 0..args.rounds {
        let marker = format!("bench-untraced-{round}-{}", uuid::Uuid::new_v4().simple());
        let h = tokio::task::spawn_blocking(move || spawn_storm(n, args.threads, &marker)).await?;
        println!("| {round} | untraced | {n} | {} | {} | | | |", us(&h, 0.5), us(&h, 0.99));
        untraced.add(&h)?;

        let t = start_traced(&dir.path().join(format!("round-{round}.db"))).await?;
        let marker = format!("bench-traced-{round}-{}", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let storm_marker = marker.clone();
        let h = tokio::task::spawn_blocking(move || spawn_storm(n, args.threads, &storm_marker)).await?;
        while exited_count(&t.store, &marker, n).await? < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // fork + exec + exit per process.
        let rate = (3 * n) as f64 / started.elapsed().as_secs_f64();
        rates.push(rate);
        t.stop.cancel();
        let agent_stats = t.agent.await??;
        t.aggregator.await??;
        println!(
            "| {round} | traced | {n} | {} | {} | {rate:.0} | {} | {} |",
            us(&h, 0.5),
            us(&h, 0.99),
            agent_stats.records,
            agent_stats.kernel_lost
        );
        traced.add(&h)?;
    }
    println!();
    println!(
        "spawn latency traced/untraced: p50 {:.3}, p99 {:.3}, mean {:.3}",
        us(&traced, 0.5) as f64 / us(&untraced, 0.5) as f64,
        us(&traced, 0.99) as f64 / us(&untraced, 0.99) as f64,
        traced.mean() / untraced.mean()
    );
    rates.sort_by(f64::total_cmp);
    println!("end-to-end (kernel → SQLite, queryable) events/s: median {:.0}", rates[rates.len() / 2]);
    Ok(())
}
