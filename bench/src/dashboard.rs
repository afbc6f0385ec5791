//! What each dashboard page costs to render on the server, filled as in an
//! incident: a training job of 4,096 ranks × 10,000 collectives played
//! through the fleet road (the `gpu` bench's simulator and fleet: Kafka,
//! the aggregator's collective join, ClickHouse), a host with 1,000 agent
//! sessions (the `sessions` bench's rows, run through the session graph
//! and written through the store's write API), and a 16,384-rank job for
//! the heatmap at its largest. The query service runs in this process and
//! serves the pages on its address; each page is fetched over HTTP `runs`
//! times and its median time (request to last byte, over loopback) and
//! size reported. A page that answers 404 is reported missing, not timed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use plumbline_aggregator::{session_graph::SessionGraph, SessionsConfig};
use plumbline_bench::gpu_fleet::{produce, JobBatches, Schedule, IN_FLIGHT};
use plumbline_proto::v1::SessionRequest;
use plumbline_store::{ClickHouseConfig, RowSet, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gpu::{self, Fleet, JobSize};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job every GPU page shows, RANKSxCOLLECTIVES.
    #[arg(long, default_value = "4096x10000")]
    job: JobSize,
    /// The job the largest heatmap shows; 0x0: none.
    #[arg(long, default_value = "16384x2500")]
    heatmap_job: JobSize,
    /// Agent sessions on the agents' host, and LLM calls each.
    #[arg(long, default_value_t = 1_000)]
    sessions: u32,
    #[arg(long, default_value_t = 20)]
    turns: u64,
    /// Fetches of each page; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Keep the database afterwards.
    #[arg(long)]
    keep: bool,
    #[arg(long, env = "PLUMBLINE_TEST_KAFKA", default_value = "127.0.0.1:9092")]
    kafka: String,
    #[arg(long, env = "PLUMBLINE_TEST_CLICKHOUSE", default_value = "http://127.0.0.1:8123")]
    clickhouse: String,
}

/// What page paths are built from.
struct Filled {
    job: String,
    heatmap_job: Option<String>,
    session: String,
    /// A scope reaching back to the agents' rows (they are dated 2023).
    since: &'static str,
}

/// The pages, in the order reported: (name, path). Add a page here.
fn pages(f: &Filled) -> Vec<(&'static str, String)> {
    let since = f.since;
    let mut pages = vec![
        ("fleet", format!("/fleet?since={since}")),
        ("findings", format!("/findings?since={since}")),
        ("sessions list", format!("/sessions?since={since}")),
        ("a session", format!("/sessions/{}", f.session)),
        ("llm", format!("/llm?since={since}")),
        ("processes", format!("/processes?host={}&since={since}", crate_host())),
        ("gpu list", "/gpu".to_string()),
        ("job page", format!("/gpu/{}", f.job)),
        ("timeline", format!("/gpu/{}/timeline", f.job)),
    ];
    if let Some(job) = &f.heatmap_job {
        pages.push(("heatmap, 16,384 ranks", format!("/gpu/{job}")));
    }
    pages
}

fn crate_host() -> &'static str {
    plumbline_bench::agent_host::HOST
}

/// One page as measured.
struct Measured {
    name: &'static str,
    path: String,
    status: u16,
    times: Vec<Duration>,
    bytes: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let fleet_args = gpu::Args::fleet(args.kafka.clone(), args.clickhouse.clone());
    let mut fleet = Fleet::start(&fleet_args).await?;
    let job = play(&mut fleet, &fleet_args, args.job, "dash").await?;
    let heatmap_job = match args.heatmap_job.ranks {
        0 => None,
        _ => Some(play(&mut fleet, &fleet_args, args.heatmap_job, "heat").await?),
    };
    let session = write_sessions(&mut fleet, &args).await?;
    let filled = Filled { job, heatmap_job, session, since: "2023-01-01T00:00:00Z" };
    println!(
        "store: ClickHouse ({}), jobs {}x{} and {}x{}, {} agent sessions × {} turns; {} fetches of each page",
        fleet.database,
        args.job.ranks,
        args.job.collectives,
        args.heatmap_job.ranks,
        args.heatmap_job.collectives,
        args.sessions,
        args.turns,
        args.runs
    );
    let mut results = Vec::new();
    for (name, path) in pages(&filled) {
        let mut m = Measured { name, path: path.clone(), status: 0, times: Vec::new(), bytes: 0 };
        for _ in 0..args.runs {
            let started = Instant::now();
            let (status, bytes) = get(&fleet.addr.to_string(), &path).await?;
            let took = started.elapsed();
            m.status = status;
            m.bytes = bytes;
            if status == 404 {
                break;
            }
            m.times.push(took);
        }
        eprintln!("{name}: {} {}", m.status, path);
        results.push(m);
    }
    println!("| page | path | median ms | min ms | max ms | KB | status |");
    println!("|---|---|---|---|---|---|---|");
    for m in &results {
        if m.status == 404 {
            println!("| {} | `{}` | missing | | | | 404 |", m.name, m.path);
            continue;
        }
        let mut sorted = m.times.clone();
        sorted.sort();
        let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e3);
        println!(
            "| {} | `{}` | {} | {} | {} | {:.0} | {} |",
            m.name,
            m.path,
            ms(sorted[sorted.len() / 2]),
            ms(sorted[0]),
            ms(sorted[sorted.len() - 1]),
            m.bytes as f64 / 1024.0,
            m.status
        );
    }
    fleet.stop(args.keep).await?;
    Ok(())
}

/// Plays a job of `size` into the fleet and waits until every call is
/// stored and every collective judged; returns its name.
async fn play(fleet: &mut Fleet, args: &gpu::Args, size: JobSize, prefix: &str) -> anyhow::Result<String> {
    let job =
        format!("{prefix}-{}x{}-{}", size.ranks, size.collectives, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let spec = gpu::job_spec(size, args, &job);
    spec.validate()?;
    let schedule = Schedule::new(&spec);
    let expected = gpu::verdicts_expected(&spec, &schedule);
    let before = fleet.stored_calls().await?;
    let calls = schedule.events() - u64::from(spec.ranks());
    let sink = fleet.sink(args).await?;
    let started = Instant::now();
    produce(&sink, JobBatches::new(&spec), IN_FLIGHT).await?;
    let mut last = (0, 0, Instant::now());
    loop {
        let stored = fleet.stored_calls().await? - before;
        let judged = fleet.judged(&job).await?;
        if stored >= calls && judged >= expected {
            break;
        }
        if (stored, judged) != (last.0, last.1) {
            last = (stored, judged, Instant::now());
        } else if last.2.elapsed() > Duration::from_secs(300) {
            bail!("{job} stalled: {stored} of {calls} calls stored, {judged} of {expected} collectives judged");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("{job}: stored and judged after {:.1} s", started.elapsed().as_secs_f64());
    Ok(job)
}

/// The agents' host: rows as the aggregator receives them, run through the
/// session graph, all written through the store's write API. Returns a
/// session with a finding.
async fn write_sessions(fleet: &mut Fleet, args: &Args) -> anyhow::Result<String> {
    let config = StoreConfig::Clickhouse(ClickHouseConfig {
        url: args.clickhouse.clone(),
        database: fleet.database.clone(),
        ..Default::default()
    });
    let store = plumbline_store::open(&config).await?;
    let batches = crate::sessions::host_rows(args.sessions, args.turns, 10);
    let mut graph = SessionGraph::new(SessionsConfig { settle_ms: 0, ..Default::default() }.settings());
    let started = Instant::now();
    let mut rows = 0;
    for (i, batch) in batches.into_iter().enumerate() {
        let mut out: RowSet = graph.observe(&batch, i as u64 * 1_000_000);
        out.extend(batch);
        rows += out.len();
        store.write(Arc::new(out)).await?;
    }
    let last = graph.tick(u64::MAX / 2);
    rows += last.len();
    store.write(Arc::new(last)).await?;
    eprintln!("{} sessions: {rows} rows written in {:.1} s", args.sessions, started.elapsed().as_secs_f64());
    let request = SessionRequest { limit: 1, ..Default::default() };
    let findings = fleet.query.list_findings(request.clone()).await?.into_inner().findings;
    let session = match findings.first() {
        Some(f) => f.session.clone(),
        None => {
            let sessions = fleet.query.list_sessions(request).await?.into_inner().sessions;
            sessions.first().map(|s| s.session.clone()).context("no session stored")?
        }
    };
    Ok(session)
}

/// `GET path` over a new connection: status and body bytes.
async fn get(addr: &str, path: &str) -> anyhow::Result<(u16, usize)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no header end")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status")?;
    Ok((status, raw.len() - end - 4))
}
