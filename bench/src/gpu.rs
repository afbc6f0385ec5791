//! Training jobs at scale through the fleet road: a simulated job's hosts
//! send what their agents would → Kafka → aggregator (decode, the collective
//! join, ClickHouse) → query service. Per job size: events per second from
//! the first batch produced until every call is stored and every collective
//! judged, and the latency of each diagnosis query over gRPC (median of
//! several runs).
//!
//! Each job carries a straggler (late at 2 % of its collectives, at least
//! five), a count
//! mismatch halfway and, flat, a hang at its last collective, so every view
//! has something to find, and the answers are checked against what was
//! played. With `--pp N` the jobs are 3-D parallel (tensor groups of a
//! host's 8 GPUs, N pipeline stages, data groups over the rest).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use plumbline_aggregator::{AggregatorConfig, GpuJoinConfig, PipelineConfig};
use plumbline_bench::gpu_fleet::{
    produce, Hang, JobBatches, JobSpec, Mismatch, MismatchField, Parallel, Schedule, Straggler, IN_FLIGHT,
};
use plumbline_proto::v1::{query_service_client::QueryServiceClient, GpuRequest};
use plumbline_store::{ClickHouseConfig, StoreConfig};
use plumbline_transport::{
    kafka::{self, KafkaSink, KafkaSinkConfig, KafkaSourceConfig},
    OutgoingBatch,
};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const MS: u64 = 1_000_000;

/// A job size: ranks (a multiple of 8) × collectives per rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSize {
    pub(crate) ranks: u32,
    pub(crate) collectives: u64,
}

impl std::str::FromStr for JobSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ranks, collectives) = s.split_once('x').ok_or("expected RANKSxCOLLECTIVES, e.g. 4096x10000")?;
        let ranks: u32 = ranks.parse().map_err(|e| format!("ranks: {e}"))?;
        let collectives = collectives.parse().map_err(|e| format!("collectives: {e}"))?;
        if ranks == 0 || !ranks.is_multiple_of(8) {
            return Err("ranks must be a positive multiple of 8 (8 GPUs per host)".into());
        }
        Ok(Self { ranks, collectives })
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Job sizes, RANKSxCOLLECTIVES, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "512x10000,4096x10000,16384x2500")]
    sizes: Vec<JobSize>,
    /// Kernel launches per rank and step (the first is the all-reduce's own).
    #[arg(long, default_value_t = 1)]
    kernels_per_step: u32,
    /// A host flushes its batches at about this many events.
    #[arg(long, default_value_t = 4096)]
    flush_events: usize,
    /// Runs of each query; the median is reported.
    #[arg(long, default_value_t = 5)]
    query_runs: usize,
    /// The aggregator's hang timeout, in event time (the simulated hosts
    /// keep reporting for 40 s after the job's last step).
    #[arg(long, default_value_t = 20_000)]
    hang_after_ms: u64,
    /// Pipeline stages: above 1, each job is 3-D parallel (tensor groups of
    /// a host's 8 GPUs, this many stages, data groups over the rest) and
    /// carries no hang (its verdicts are counted once the run settles).
    #[arg(long, default_value_t = 1)]
    pp: u32,
    /// With `--pp`: the tensor, data and pipeline groups are split from the
    /// world communicator (ncclCommSplit), so the aggregator numbers their
    /// ranks from the splits.
    #[arg(long)]
    split: bool,
    /// Keep each size's database instead of dropping it afterwards.
    #[arg(long)]
    keep: bool,
    #[arg(long, env = "PLUMBLINE_TEST_KAFKA", default_value = "127.0.0.1:9092")]
    kafka: String,
    #[arg(long, env = "PLUMBLINE_TEST_CLICKHOUSE", default_value = "http://127.0.0.1:8123")]
    clickhouse: String,
}

impl Args {
    /// A fleet's settings with every other default, for another bench.
    pub(crate) fn fleet(kafka: String, clickhouse: String) -> Self {
        Self {
            sizes: Vec::new(),
            kernels_per_step: 1,
            flush_events: 4096,
            query_runs: 5,
            hang_after_ms: 20_000,
            pp: 1,
            split: false,
            keep: false,
            kafka,
            clickhouse,
        }
    }
}

/// The faults every benchmarked job carries.
pub(crate) fn job_spec(size: JobSize, args: &Args, name: &str) -> JobSpec {
    let ranks = size.ranks;
    let c = size.collectives;
    JobSpec {
        kernels_per_step: args.kernels_per_step,
        flush_events: args.flush_events,
        // 2 % of the steps, and at least a few in a short job.
        straggler: Some(Straggler {
            rank: ranks / 3,
            late_ns: 25 * MS,
            fraction: (0.02f64).max(5.0 / c as f64).min(1.0),
        }),
        mismatch: Some(Mismatch { rank: ranks / 2, seq: c / 2, field: MismatchField::Count(1000) }),
        hang: (args.pp <= 1).then(|| Hang { ranks: vec![ranks - 1], after_seq: c - 2 }),
        parallel: (args.pp > 1).then_some(Parallel { pp: args.pp, split: args.split }),
        ..JobSpec::new(name, ranks / 8, c)
    }
}

/// Collective verdicts the job yields once judged whole: flat, one per
/// step up to the hang's; 3-D, each tensor group's all-reduce and each data
/// group's all-gather and reduce-scatter per step.
pub(crate) fn verdicts_expected(spec: &JobSpec, schedule: &Schedule) -> u64 {
    match spec.parallel {
        None => schedule.last_seq_of_job() + 1,
        Some(p) => spec.collectives * (u64::from(spec.hosts) + 8 * u64::from(p.pp) * 2),
    }
}

/// The aggregator and query service of one run, in this process.
pub(crate) struct Fleet {
    brokers: String,
    pub(crate) database: String,
    topic: String,
    pub(crate) query: QueryServiceClient<Channel>,
    /// The query service's address, which also serves the dashboard.
    pub(crate) addr: SocketAddr,
    clickhouse: clickhouse::Client,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Fleet {
    pub(crate) async fn start(args: &Args) -> anyhow::Result<Self> {
        let name = format!("plumbline_bench_gpu_{}", uuid::Uuid::new_v4().simple());
        let store_config = StoreConfig::Clickhouse(ClickHouseConfig {
            url: args.clickhouse.clone(),
            database: name.clone(),
            ..Default::default()
        });
        let store = plumbline_store::open(&store_config).await?;
        let sink = KafkaSinkConfig { brokers: args.kafka.clone(), topic: name.clone(), ..Default::default() };
        kafka::ensure_topic(&sink.topic_spec()).await?;
        let config = AggregatorConfig {
            source: KafkaSourceConfig {
                brokers: args.kafka.clone(),
                topic: name.clone(),
                group_id: name.clone(),
                ..Default::default()
            },
            store: store_config,
            pipeline: PipelineConfig {
                gpu: GpuJoinConfig { hang_after_ms: args.hang_after_ms, ..Default::default() },
                ..Default::default()
            },

            metrics: plumbline_config::MetricsConfig::at(""),
        };
        let stop = CancellationToken::new();
        let aggregator_stop = stop.clone();
        let aggregator =
            tokio::spawn(async move { plumbline_aggregator::run(&config, aggregator_stop).await.map(drop) });
        let (listener, addr) = plumbline_query::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let query_stop = stop.clone();
        let query =
            tokio::spawn(
                async move { Ok(plumbline_query::serve(store, listener, Default::default(), query_stop).await?) },
            );
        let clickhouse = clickhouse::Client::default().with_url(&args.clickhouse).with_validation(false);
        Ok(Self {
            query: QueryServiceClient::connect(format!("http://{addr}")).await?,
            addr,
            brokers: args.kafka.clone(),
            database: name.clone(),
            topic: name,
            clickhouse,
            stop,
            tasks: vec![aggregator, query],
        })
    }

    pub(crate) async fn sink(&self, args: &Args) -> anyhow::Result<KafkaSink> {
        let config = KafkaSinkConfig { brokers: args.kafka.clone(), topic: self.topic.clone(), ..Default::default() };
        Ok(KafkaSink::new(&config)?)
    }

    /// Rows of NCCL and CUDA calls in the run's database, from the parts'
    /// metadata (counting the rows themselves would compete with the inserts).
    pub(crate) async fn stored_calls(&self) -> anyhow::Result<u64> {
        let sql = "SELECT sum(rows) FROM system.parts \
                   WHERE active AND database = ? AND table IN ('nccl_calls', 'cuda_calls')";
        Ok(self.clickhouse.query(sql).bind(&self.database).fetch_one::<u64>().await?)
    }

    /// Collectives of the job judged so far.
    pub(crate) async fn judged(&mut self, job: &str) -> anyhow::Result<u64> {
        let jobs = self.query.list_gpu_jobs(request(job, None)).await?.into_inner().jobs;
        Ok(jobs.iter().find(|j| j.job == job).map_or(0, |j| j.collectives))
    }

    pub(crate) async fn stop(self, keep: bool) -> anyhow::Result<()> {
        self.stop.cancel();
        for task in self.tasks {
            task.await??;
        }
        if !keep {
            self.clickhouse.query(&format!("DROP DATABASE IF EXISTS {}", self.database)).execute().await?;
            delete_topic(&self.brokers, &self.topic).await;
        }
        Ok(())
    }
}

/// Frees the broker's copy of the job (tansu keeps topics in memory);
/// a broker that cannot delete topics keeps it.
async fn delete_topic(brokers: &str, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    let admin: Result<AdminClient<rdkafka::client::DefaultClientContext>, _> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create();
    let deleted = match admin {
        Ok(admin) => admin.delete_topics(&[topic], &AdminOptions::new()).await.map(drop),
        Err(err) => Err(err),
    };
    if let Err(err) = deleted {
        eprintln!("topic {topic} not deleted: {err}");
    }
}

fn request(job: &str, rank: Option<i32>) -> GpuRequest {
    GpuRequest { job: job.to_string(), rank, ..Default::default() }
}

/// What one size measured.
struct Measured {
    size: JobSize,
    events: u64,
    bytes: u64,
    generated: Duration,
    produced: Duration,
    stored: Duration,
    judged: Duration,
    hang_named: Duration,
    queries: Vec<(&'static str, Vec<Duration>)>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for &size in &args.sizes {
        let measured = run_size(size, &args).await.with_context(|| format!("{} ranks", size.ranks))?;
        print_size(&measured);
        results.push(measured);
    }
    println!("\n| ranks | collectives | events | bytes/event | events/s (stored) | stored after | judged after | hang named after | jobs | stragglers | hang | mismatches | kernels (rank) | kernels (job) | timeline (rank) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for m in &results {
        let medians: Vec<String> =
            m.queries.iter().map(|(_, runs)| format!("{:.0} ms", median(runs).as_secs_f64() * 1e3)).collect();
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.1} s | {:.1} s | {:.1} s | {} |",
            m.size.ranks,
            m.size.collectives,
            m.events,
            m.bytes as f64 / m.events as f64,
            m.events as f64 / m.stored.as_secs_f64(),
            m.stored.as_secs_f64(),
            m.judged.as_secs_f64(),
            m.hang_named.as_secs_f64(),
            medians.join(" | ")
        );
    }
    Ok(())
}

/// The job's batches, built as they are sent, with the time spent building
/// them.
struct TimedBatches {
    batches: JobBatches,
    building: Arc<Mutex<Duration>>,
}

impl Iterator for TimedBatches {
    type Item = OutgoingBatch;

    fn next(&mut self) -> Option<OutgoingBatch> {
        let started = Instant::now();
        let next = self.batches.next();
        *self.building.lock().expect("never poisoned") += started.elapsed();
        next
    }
}

/// Giving up when neither rows nor verdicts moved for this long.
const STALLED: Duration = Duration::from_secs(300);

async fn run_size(size: JobSize, args: &Args) -> anyhow::Result<Measured> {
    let job = format!("bench-{}x{}-{}", size.ranks, size.collectives, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let spec = job_spec(size, args, &job);
    spec.validate()?;
    let schedule = Schedule::new(&spec);
    let events = schedule.events();

    let mut fleet = Fleet::start(args).await?;
    let sink = fleet.sink(args).await?;
    // Warm up: a consumer group's first member waits before its first
    // message on some brokers; that is start-up, not throughput.
    let warm_up = JobSpec { first_host: spec.hosts + 1, ..JobSpec::new(&format!("{job}-warm-up"), 1, 2) };
    let warm_up_calls = Schedule::new(&warm_up).events() - u64::from(warm_up.ranks());
    produce(&sink, JobBatches::new(&warm_up), IN_FLIGHT).await?;
    while fleet.judged(&warm_up.job).await? < 2 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    eprintln!("{job}: {events} events");
    let building = Arc::new(Mutex::new(Duration::ZERO));
    let batches = TimedBatches { batches: JobBatches::new(&spec), building: building.clone() };
    let started = Instant::now();
    let sent = produce(&sink, batches, IN_FLIGHT).await?;
    let produced = started.elapsed();
    let generated = *building.lock().expect("never poisoned");
    assert_eq!(sent.events, events);
    eprintln!("{job}: produced in {:.1} s (building batches {:.1} s)", produced.as_secs_f64(), generated.as_secs_f64());
    // Every event but the processes' (seen) is a call.
    let calls = warm_up_calls + events - u64::from(spec.ranks());
    let expected = verdicts_expected(&spec, &schedule);
    let (mut stored, mut judged) = (None, None);
    let (mut progress, mut progressed) = ((0, 0), Instant::now());
    let hang_named = loop {
        let rows = fleet.stored_calls().await?;
        if stored.is_none() && rows >= calls {
            stored = Some(started.elapsed());
            eprintln!("{job}: every call stored after {:.1} s", started.elapsed().as_secs_f64());
        }
        let so_far = fleet.judged(&job).await?;
        if judged.is_none() && so_far + u64::from(spec.hang.is_some()) >= expected {
            judged = Some(started.elapsed());
            eprintln!("{job}: every completed collective judged after {:.1} s", started.elapsed().as_secs_f64());
        }
        if stored.is_some() && so_far >= expected {
            break started.elapsed();
        }
        if (rows, so_far) != progress {
            (progress, progressed) = ((rows, so_far), Instant::now());
        } else if progressed.elapsed() > STALLED {
            bail!("stalled: {rows} of {calls} calls stored, {so_far} of {expected} collectives judged");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let queries = measure_queries(&mut fleet, &spec, args.query_runs).await?;
    fleet.stop(args.keep).await?;
    Ok(Measured {
        size,
        events,
        bytes: sent.bytes,
        generated,
        produced,
        stored: stored.expect("set before the loop ends"),
        judged: judged.expect("set before the loop ends"),
        hang_named,
        queries,
    })
}

/// Each diagnosis query `runs` times, its answer checked against the job.
async fn measure_queries(
    fleet: &mut Fleet,
    spec: &JobSpec,
    runs: usize,
) -> anyhow::Result<Vec<(&'static str, Vec<Duration>)>> {
    let job = spec.job.as_str();
    let straggler = spec.straggler.as_ref().expect("benchmarked jobs have one").rank as i32;
    let rank = Some(straggler);
    let client = &mut fleet.query;
    let mut out = Vec::new();
    macro_rules! timed {
        ($name:expr, $call:expr, $check:expr) => {{
            let mut latencies = Vec::with_capacity(runs);
            for _ in 0..runs {
                let started = Instant::now();
                let answer = $call.await?.into_inner();
                latencies.push(started.elapsed());
                #[allow(clippy::redundant_closure_call)]
                if let Err(problem) = ($check)(&answer) {
                    bail!("{} answered wrongly: {problem}", $name);
                }
            }
            out.push(($name, latencies));
        }};
    }
    // The largest communicator judged: every rank flat, a data group 3-D.
    let largest = spec.ranks() / spec.pp_dp().0;
    let largest = if spec.parallel.is_some() { (largest / 8).max(8) } else { largest };
    timed!("jobs", client.list_gpu_jobs(request(job, None)), |a: &plumbline_proto::v1::ListGpuJobsResponse| {
        check(a.jobs.len() == 1 && a.jobs[0].ranks == largest, || format!("{:?}", a.jobs))
    });
    timed!(
        "stragglers",
        client.gpu_stragglers(request(job, None)),
        |a: &plumbline_proto::v1::GpuStragglersResponse| {
            check(a.ranks.first().is_some_and(|r| r.rank == straggler), || format!("{:?}", a.ranks.first()))
        }
    );
    timed!("hang", client.gpu_hang(request(job, None)), |a: &plumbline_proto::v1::GpuHangResponse| {
        match spec.hang.as_ref() {
            Some(hang) => {
                check(a.hangs.len() == 1 && a.hangs[0].seq == hang.after_seq + 1, || format!("{:?}", a.hangs))
            }
            None => check(a.hangs.is_empty() && a.silent.is_empty(), || format!("{a:?}")),
        }
    });
    timed!(
        "mismatches",
        client.gpu_mismatches(request(job, None)),
        |a: &plumbline_proto::v1::GpuMismatchesResponse| {
            let mismatch = spec.mismatch.expect("benchmarked jobs have one");
            check(a.mismatches.len() == 1 && a.mismatches[0].global_ranks == [mismatch.rank as i32], || {
                format!("{:?}", a.mismatches)
            })
        }
    );
    timed!("kernels (rank)", client.gpu_kernels(request(job, rank)), |a: &plumbline_proto::v1::GpuKernelsResponse| {
        check(!a.kernels.is_empty() && a.kernels.iter().all(|k| k.rank == straggler), || format!("{:?}", a.kernels))
    });
    timed!("kernels (job)", client.gpu_kernels(request(job, None)), |a: &plumbline_proto::v1::GpuKernelsResponse| {
        check(!a.kernels.is_empty(), || "no kernels".to_string())
    });
    timed!(
        "timeline (rank)",
        client.gpu_timeline(request(job, rank)),
        |a: &plumbline_proto::v1::GpuTimelineResponse| {
            check(!a.calls.is_empty() && a.calls.iter().all(|c| c.rank == straggler), || {
                format!("{} calls", a.calls.len())
            })
        }
    );
    Ok(out)
}

fn check(ok: bool, problem: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(problem())
    }
}

fn median(runs: &[Duration]) -> Duration {
    let mut sorted = runs.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

fn print_size(m: &Measured) {
    println!(
        "{} ranks × {} collectives: {} events ({:.1} bytes/event encoded), generated in {:.1} s, produced in {:.1} s; \
         every call stored after {:.1} s ({:.0} events/s), every completed collective judged after {:.1} s, \
         the hang named after {:.1} s",
        m.size.ranks,
        m.size.collectives,
        m.events,
        m.bytes as f64 / m.events as f64,
        m.generated.as_secs_f64(),
        m.produced.as_secs_f64(),
        m.stored.as_secs_f64(),
        m.events as f64 / m.stored.as_secs_f64(),
        m.judged.as_secs_f64(),
        m.hang_named.as_secs_f64()
    );
    for (name, runs) in &m.queries {
        let ms: Vec<String> = runs.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1e3)).collect();
        println!("  {name:<16} median {:>6.0} ms   runs: {} ms", median(runs).as_secs_f64() * 1e3, ms.join(", "));
    }
}
