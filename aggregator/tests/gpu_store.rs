//! NCCL and CUDA calls as node agents send them — NCCL batches keyed by
//! job, each host with its own clock read when it built the batch, and a
//! heartbeat of the job's after its last step — through the aggregator's
//! pipeline and collective join into both stores, read back through the GPU
//! views: the straggler, the mismatched rank and the hang named exactly, a
//! host's clock offset taken out, kernels per rank and a rank's timeline,
//! and a healthy job with no verdict. The ClickHouse half needs
//! PLUMBLINE_TEST_CLICKHOUSE (scripts/test.sh starts one).

mod support;

use std::sync::Arc;
use support::stores;

use bytes::Bytes;
use plumbline_aggregator::{pipeline::run_pipeline, AggregatorStats, GpuJoinConfig, PipelineConfig};
use plumbline_proto::{
    v1::{cuda_call, event::Body, nccl_call, ClockAnchor, CudaCall, NcclCall, NodeIdentity},
    BatchBuilder, BatchHeader, Who,
};
use plumbline_store::{GpuFilter, Store, TimeRange};
use plumbline_transport::{channel, BatchSink, OutgoingBatch};
use prost::Message;
use tokio_util::sync::CancellationToken;

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;
const WALL_AT_BOOT: u64 = 1_795_442_400 * S;
const COMM: u64 = 0x5eed_cafe_f00d_0001;

/// A job of `hosts` × 8 ranks; `arrive(rank, seq)` is a rank's entry time
/// in ms after boot on a true clock (None: it never calls), `count(rank,
/// seq)` its element count. Host h's clock reads `skew_ms(h)` ahead.
struct Job {
    name: &'static str,
    hosts: u32,
    seqs: u64,
    arrive: fn(u32, u64) -> Option<u64>,
    count: fn(u32, u64) -> u64,
    skew_ms: fn(u32) -> i64,
}

fn who(b: &mut BatchBuilder, rank: u32) -> Who {
    let comm_sid = b.intern("python3");
    let pid = 1000 + rank;
    Who { pid, tid: pid, cgroup_id: 1, comm_sid, process_start_ns: S }
}

impl Job {
    /// Each host's batches as its agent would send them: NCCL calls keyed by
    /// job, CUDA calls keyed by host, and the job's empty batch seconds
    /// after the last step.
    fn batches(&self) -> Vec<OutgoingBatch> {
        let mut out = Vec::new();
        let last_ms = (0..self.hosts * 8)
            .flat_map(|rank| (0..self.seqs).filter_map(move |seq| (self.arrive)(rank, seq)))
            .max()
            .unwrap_or(0);
        for host in 0..self.hosts {
            let name = format!("gpu-{host:02}");
            let mut nccl = BatchBuilder::new();
            let mut cuda = BatchBuilder::new();
            for local in 0..8 {
                let rank = host * 8 + local;
                for seq in 0..self.seqs {
                    let Some(at_ms) = (self.arrive)(rank, seq) else { continue };
                    let ts = at_ms * MS;
                    let w = who(&mut nccl, rank);
                    let job_sid = nccl.intern(self.name);
                    let call = NcclCall {
                        op: nccl_call::Op::AllReduce as i32,
                        comm_handle: 0x7f00_0000 + u64::from(rank),
                        comm_id_hash: COMM,
                        rank: rank as i32,
                        nranks: (self.hosts * 8) as i32,
                        seq,
                        count: (self.count)(rank, seq),
                        datatype: 7,
                        stream: 0x10,
                        duration_ns: 20_000,
                        job_sid,
                        device: local as i32,
                        global_rank: Some(rank as i32),
                        ..Default::default()
                    };
                    nccl.push_by(ts, &w, Body::Nccl(call));
                    let w = who(&mut cuda, rank);
                    let launch = CudaCall {
                        api: cuda_call::Api::LaunchKernel as i32,
                        function_sid: cuda.intern("void scale<float>(float*, int)"),
                        grid_x: 64,
                        grid_y: 1,
                        grid_z: 1,
                        block_x: 256,
                        block_y: 1,
                        block_z: 1,
                        duration_ns: 4_000,
                        device: local as i32,
                        rank: rank as i32,
                        job_sid: cuda.intern(self.name),
                        ..Default::default()
                    };
                    cuda.push_by(ts - MS, &w, Body::Cuda(launch));
                }
            }
            let skew = (self.skew_ms)(host);
            // Both clocks read when the batch is built.
            let header = |at_ms: u64| BatchHeader {
                node: NodeIdentity { host: name.clone(), boot_id: format!("boot-{host}"), ..Default::default() },
                clock: ClockAnchor {
                    boot_ns: at_ms * MS,
                    wall_ns: ((WALL_AT_BOOT + at_ms * MS) as i64 + skew * MS as i64) as u64,
                    uncertainty_ns: 0,
                },
                ..Default::default()
            };
            let job_key = format!("job-{}", self.name);
            for (builder, key, at_ms) in [
                (&mut nccl, job_key.clone(), last_ms + 50),
                (&mut cuda, name.clone(), last_ms + 50),
                (&mut BatchBuilder::new(), job_key, last_ms + 3_000),
            ] {
                let events = builder.len();
                let batch = builder.finish(header(at_ms));
                out.push(OutgoingBatch { key, payload: Bytes::from(batch.encode_to_vec()), events });
            }
        }
        out
    }
}

fn config() -> PipelineConfig {
    let gpu = GpuJoinConfig { hang_after_ms: 200, hang_check_interval_ms: 50, ..Default::default() };
    PipelineConfig { max_batches: 64, linger_ms: 10, gpu, ..Default::default() }
}

/// Runs the pipeline over the job's batches, then keeps it running until
/// `done` holds for the store.
async fn deliver(store: &Arc<dyn Store>, job: &Job, done: impl AsyncFn(&dyn Store) -> bool) {
    let batches = job.batches();
    let (sink, source) = channel::pair(batches.len().max(1));
    for batch in &batches {
        sink.send(batch).await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let pipeline = {
        let (store, shutdown) = (Arc::clone(store), shutdown.clone());
        tokio::spawn(async move {
            let stats = Arc::new(AggregatorStats::default());
            run_pipeline(&source, store, &config(), stats, &shutdown).await.unwrap();
        })
    };
    while !done(store.as_ref()).await {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    pipeline.await.unwrap();
    drop(sink);
}

fn of(job: &str) -> GpuFilter {
    GpuFilter { job: Some(job.into()), limit: 1000, ..Default::default() }
}

async fn judged(store: &dyn Store, job: &str, n: u64) -> bool {
    store.list_gpu_jobs(&of(job)).await.unwrap().first().is_some_and(|j| j.collectives >= n)
}

fn jitter(rank: u32) -> u64 {
    u64::from(rank % 3)
}

#[tokio::test]
async fn the_straggler_is_named_with_its_host_and_gpu_with_and_without_clock_skew() {
    for (name, skew_ms) in
        [("straggle", (|_| 0) as fn(u32) -> i64), ("straggle-skewed", |h| [50, -50, 0, 25][h as usize])]
    {
        let job = Job {
            name,
            hosts: 4,
            seqs: 20,
            // Rank 13 (gpu-01, GPU 5) arrives 30 ms after everyone else.
            arrive: |rank, seq| Some(10_000 + seq * 100 + jitter(rank) + if rank == 13 { 30 } else { 0 }),
            count: |_, _| 1 << 20,
            skew_ms,
        };
        for (kind, store) in stores("gpu").await {
            deliver(&store, &job, async |s| judged(s, name, 20).await).await;
            let ranks = store.gpu_stragglers(&of(name)).await.unwrap();
            assert_eq!(ranks.len(), 1, "{kind} {name}: {ranks:?}");
            let r = &ranks[0];
            assert_eq!((r.rank, r.host.as_str(), r.device, r.times_last), (13, "gpu-01", 5, 20), "{kind} {name}");
            assert!((29 * MS..=31 * MS).contains(&r.mean_late_ns), "{kind} {name}: {r:?}");
            let jobs = store.list_gpu_jobs(&of(name)).await.unwrap();
            assert_eq!((jobs[0].ranks, jobs[0].hosts, jobs[0].stragglers, jobs[0].hangs), (32, 4, 20, 0), "{kind}");
        }
    }
}

#[tokio::test]
async fn a_healthy_job_yields_no_verdict_even_with_skewed_clocks() {
    let job = Job {
        name: "healthy",
        hosts: 4,
        seqs: 20,
        arrive: |rank, seq| Some(10_000 + seq * 100 + jitter(rank)),
        count: |_, _| 4096,
        skew_ms: |h| [0, 50, -50, 10][h as usize],
    };
    for (kind, store) in stores("gpu").await {
        deliver(&store, &job, async |s| judged(s, "healthy", 20).await).await;
        let jobs = store.list_gpu_jobs(&of("healthy")).await.unwrap();
        assert_eq!((jobs[0].collectives, jobs[0].stragglers, jobs[0].hangs, jobs[0].mismatches), (20, 0, 0, 0));
        assert!(store.gpu_stragglers(&of("healthy")).await.unwrap().is_empty(), "{kind}");
        assert!(store.list_collective_verdicts(&of("healthy"), "mismatch").await.unwrap().is_empty(), "{kind}");
    }
}

#[tokio::test]
async fn a_mismatched_count_names_the_rank_and_both_values() {
    let job = Job {
        name: "mismatch",
        hosts: 2,
        seqs: 10,
        arrive: |rank, seq| Some(10_000 + seq * 100 + jitter(rank)),
        count: |rank, seq| if rank == 9 && seq == 6 { 1000 } else { 4096 },
        skew_ms: |_| 0,
    };
    for (kind, store) in stores("gpu").await {
        deliver(&store, &job, async |s| judged(s, "mismatch", 10).await).await;
        let rows = store.list_collective_verdicts(&of("mismatch"), "mismatch").await.unwrap();
        assert_eq!(rows.len(), 1, "{kind}: {rows:?}");
        let m = &rows[0];
        assert_eq!((m.seq, m.field.as_str(), m.expected.as_str()), (6, "count", "4096"), "{kind}");
        let differing = m.differing_list().unwrap();
        assert_eq!((differing[0].rank, differing[0].value.as_str()), (9, "1000"), "{kind}");
    }
}

#[tokio::test]
async fn a_hang_names_the_sequence_the_missing_ranks_and_where_they_stopped() {
    let job = Job {
        name: "hang",
        hosts: 2,
        seqs: 12,
        // Ranks 3 and 10 stop after sequence 8; the others go on to 11.
        arrive: |rank, seq| (!(rank == 3 || rank == 10) || seq <= 8).then_some(10_000 + seq * 100 + jitter(rank)),
        count: |_, _| 4096,
        skew_ms: |h| [0, 50][h as usize],
    };
    for (kind, store) in stores("gpu").await {
        deliver(&store, &job, async |s| store_has_hangs(s, 3).await).await;
        let rows = store.list_collective_verdicts(&of("hang"), "hang").await.unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![9, 10, 11], "{kind}");
        let missing = rows[0].missing_list().unwrap();
        let named: Vec<(u32, Option<u64>, &str, i32)> =
            missing.iter().map(|m| (m.rank, m.last_completed_seq, m.host.as_str(), m.device)).collect();
        assert_eq!(named, vec![(3, Some(8), "gpu-00", 3), (10, Some(8), "gpu-01", 2)], "{kind}");
        assert_eq!((rows[0].arrived, rows[0].nranks), (14, 16), "{kind}");
        let jobs = store.list_gpu_jobs(&of("hang")).await.unwrap();
        assert_eq!((jobs[0].collectives, jobs[0].hangs, jobs[0].stragglers), (12, 3, 0), "{kind}");
    }
}

async fn store_has_hangs(store: &dyn Store, n: usize) -> bool {
    store.list_collective_verdicts(&of("hang"), "hang").await.unwrap().len() >= n
}

#[tokio::test]
async fn kernels_per_rank_and_a_rank_s_timeline_in_time_order() {
    let job = Job {
        name: "timeline",
        hosts: 1,
        seqs: 5,
        arrive: |rank, seq| Some(10_000 + seq * 100 + jitter(rank)),
        count: |_, _| 4096,
        skew_ms: |_| 0,
    };
    for (kind, store) in stores("gpu").await {
        deliver(&store, &job, async |s| judged(s, "timeline", 5).await).await;
        let kernels = store.gpu_kernels(&GpuFilter { rank: Some(2), ..of("timeline") }).await.unwrap();
        assert_eq!(kernels.len(), 1, "{kind}: {kernels:?}");
        let k = &kernels[0];
        assert_eq!((k.kernel.as_str(), k.launches, k.total_ns), ("void scale<float>(float*, int)", 5, 20_000));
        assert_eq!((k.grid.as_str(), k.block.as_str(), k.host.as_str()), ("64,1,1", "256,1,1", "gpu-00"));
        let calls = store.gpu_timeline(&GpuFilter { rank: Some(2), ..of("timeline") }).await.unwrap();
        let shape: Vec<(&str, u64)> = calls.iter().map(|c| (c.call.as_str(), c.seq)).collect();
        let expected: Vec<(&str, u64)> = (0..5).flat_map(|seq| [("LAUNCH_KERNEL", 0), ("ALL_REDUCE", seq)]).collect();
        assert_eq!(shape, expected, "{kind}");
        assert!(calls.windows(2).all(|w| w[0].wall_ns <= w[1].wall_ns), "{kind}");
        let window = TimeRange { start_ns: Some(calls[2].wall_ns), end_ns: Some(calls[3].wall_ns) };
        let narrow = store.gpu_timeline(&GpuFilter { rank: Some(2), range: window, ..of("timeline") }).await.unwrap();
        assert_eq!(narrow.len(), 2, "{kind}");
    }
}
