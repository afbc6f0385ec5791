//! Synthetic batches through the transport and store alone, to find the
//! ceiling of each road without the kernel: events per second from the first
//! send until the store counts every row, and encoded bytes per event.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use plumbline_aggregator::{pipeline::run_pipeline, AggregatorConfig, AggregatorStats, PipelineConfig};
use plumbline_proto::{
    v1::{event::Body, ClockAnchor, NodeIdentity, ProcessExec, ProcessExit},
    BatchBuilder, BatchHeader,
};
use plumbline_store::{ClickHouseConfig, Store, StoreConfig};
use plumbline_transport::{
    channel,
    kafka::{self, KafkaSinkConfig, KafkaSourceConfig},
    BatchSink, OutgoingBatch,
};
use prost::Message;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Road {
    /// In-process channel + SQLite (the single-host default).
    Embedded,
    /// Kafka + ClickHouse (the fleet).
    Fleet,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t = Road::Embedded)]
    road: Road,
    /// Events in all (two per process: exec and exit).
    #[arg(long, default_value_t = 400_000)]
    events: usize,
    /// Events per batch, as an agent would send them.
    #[arg(long, default_value_t = 4096)]
    batch_events: usize,
    #[arg(long, env = "PLUMBLINE_TEST_KAFKA", default_value = "127.0.0.1:9092")]
    kafka: String,
    #[arg(long, env = "PLUMBLINE_TEST_CLICKHOUSE", default_value = "http://127.0.0.1:8123")]
    clickhouse: String,
}

const PROGRAMS: &[(&str, &[&str])] = &[
    ("/usr/bin/python3", &["python3", "-m", "pytest", "-q", "tests/unit"]),
    ("/usr/bin/git", &["git", "diff", "--stat", "HEAD~1"]),
    ("/usr/bin/cc", &["cc", "-O2", "-c", "src/main.c", "-o", "build/main.o"]),
    ("/bin/sh", &["sh", "-c", "make -j2 all"]),
];

/// Batches of exec+exit pairs from eight hosts.
fn batches(events: usize, per_batch: usize) -> Vec<OutgoingBatch> {
    batches_for("bench-node", events, per_batch)
}

/// Batches of exec+exit pairs from eight hosts named `<prefix>-NN`.
fn batches_for(prefix: &str, events: usize, per_batch: usize) -> Vec<OutgoingBatch> {
    let mut out = Vec::new();
    let mut pid = 10_000u32;
    let mut remaining = events / 2;
    let mut sequence = 0;
    while remaining > 0 {
        let host = format!("{prefix}-{:02}", sequence % 8);
        let mut b = BatchBuilder::new();
        let processes = (per_batch / 2).min(remaining);
        for i in 0..processes {
            pid += 1;
            let (exe, argv) = PROGRAMS[i % PROGRAMS.len()];
            let start_ns = 1_000_000_000 + u64::from(pid) * 1_000_000;
            let mut argv_sids: Vec<u32> = argv.iter().map(|a| b.intern(a)).collect();
            argv_sids.push(b.intern(&format!("--seed={pid}")));
            let exec = ProcessExec {
                start_ns,
                ppid: pid - 1,
                uid: 1000,
                gid: 1000,
                comm_sid: b.intern(argv[0]),
                exe_sid: b.intern(exe),
                argv_sids,
                argv_truncated: false,
            };
            b.push(start_ns + 50_000, pid, pid, 4242, Body::Exec(exec));
            let comm_sid = b.intern(argv[0]);
            let exit =
                ProcessExit { start_ns, ppid: pid - 1, exit_code: (pid % 3) as i32, comm_sid, ..Default::default() };
            b.push(start_ns + 900_000, pid, pid, 4242, Body::Exit(exit));
        }
        remaining -= processes;
        sequence += 1;
        let batch = b.finish(BatchHeader {
            node: NodeIdentity { host: host.clone(), boot_id: "bench-boot".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: 1_790_000_000_000_000_000, uncertainty_ns: 0 },
            agent_run_id: "bench".into(),
            sequence,
        });
        let events = batch.events.len();
        out.push(OutgoingBatch { key: host, payload: Bytes::from(batch.encode_to_vec()), events });
    }
    out
}

async fn wait_for_rows(store: &dyn Store, rows: u64) -> anyhow::Result<()> {
    loop {
        if store.pipeline_stats().await?.process_events >= rows {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let batches = batches(args.events, args.batch_events);
    let events: usize = batches.iter().map(|b| b.events).sum();
    let bytes: usize = batches.iter().map(|b| b.payload.len()).sum();
    println!("{} batches, {events} events, {:.1} encoded bytes/event", batches.len(), bytes as f64 / events as f64);

    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store>;
    let stop = CancellationToken::new();
    let (sink, pipeline): (Box<dyn BatchSink>, tokio::task::JoinHandle<anyhow::Result<()>>) = match args.road {
        Road::Embedded => {
            store = Arc::new(plumbline_store::sqlite::SqliteStore::open(&dir.path().join("bench.db")).await?);
            let (sink, source) = channel::pair(64);
            let aggregator_store = store.clone();
            let aggregator_stop = stop.clone();
            let task = tokio::spawn(async move {
                let stats = Arc::new(AggregatorStats::default());
                run_pipeline(&source, aggregator_store, &PipelineConfig::default(), stats, &aggregator_stop).await
            });
            (Box::new(sink), task)
        }
        Road::Fleet => {
            let name = format!("plumbline_bench_{}", uuid::Uuid::new_v4().simple());
            let store_config = StoreConfig::Clickhouse(ClickHouseConfig {
                url: args.clickhouse.clone(),
                database: name.clone(),
                ..Default::default()
            });
            store = plumbline_store::open(&store_config).await?;
            let sink_config =
                KafkaSinkConfig { brokers: args.kafka.clone(), topic: name.clone(), ..Default::default() };
            kafka::ensure_topic(&sink_config.topic_spec()).await?;
            let config = AggregatorConfig {
                source: KafkaSourceConfig {
                    brokers: args.kafka.clone(),
                    topic: name.clone(),
                    group_id: name,
                    ..Default::default()
                },
                store: store_config,
                pipeline: PipelineConfig::default(),

                metrics: plumbline_config::MetricsConfig::at(""),
            };
            let aggregator_stop = stop.clone();
            let task = tokio::spawn(async move { plumbline_aggregator::run(&config, aggregator_stop).await.map(drop) });
            (Box::new(kafka::KafkaSink::new(&sink_config)?), task)
        }
    };

    // Warm up: the first delivery waits for the consumer group to form
    // (seconds on some brokers), which is start-up, not throughput.
    let mut warm_up = batches_for("bench-warm-up", 2, 2);
    let warm_events = warm_up[0].events as u64;
    sink.send(&warm_up.remove(0)).await?;
    wait_for_rows(store.as_ref(), warm_events).await?;

    let started = Instant::now();
    for batch in &batches {
        sink.send(batch).await?;
    }
    let sent = started.elapsed();
    wait_for_rows(store.as_ref(), warm_events + events as u64).await?;
    let stored = started.elapsed();
    stop.cancel();
    drop(sink);
    pipeline.await??;
    println!(
        "road {:?} ({}): sent in {:.2} s, all {events} rows queryable after {:.2} s: {:.0} events/s end to end",
        args.road,
        store.describe(),
        sent.as_secs_f64(),
        stored.as_secs_f64(),
        events as f64 / stored.as_secs_f64()
    );
    Ok(())
}
