//! The job as its hosts' node agents send it: per host an `EventBatch` with
//! the host's identity and its own clock anchor, an agent run id and an
//! increasing sequence; NCCL calls in batches keyed by their communicator
//! (so one aggregator sees every rank of it), everything else keyed by host.
//!
//! A host flushes both of its batches once they hold about
//! [`JobSpec::flush_events`] events, hosts taking turns window by window, as
//! a fleet of agents under load would.

use std::collections::VecDeque;

use bytes::Bytes;
use plumbline_proto::{
    v1::{cuda_call, event::Body, nccl_call, ClockAnchor, CudaCall, NcclCall, NodeIdentity, ProcessExec},
    BatchBuilder, BatchHeader, Who,
};
use plumbline_transport::OutgoingBatch;
use prost::Message;

use super::job::{splitmix64, JobSpec, GPUS_PER_HOST};
use super::schedule::Schedule;

/// Kernels a step launches, in order: (name, grid, block). The first is the
/// all-reduce's own.
const KERNELS: &[(&str, [u32; 3], [u32; 3])] = &[
    ("ncclDevKernel_AllReduce_Sum_f32_RING_LL", [16, 1, 1], [640, 1, 1]),
    (
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, \
         at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3>)",
        [1024, 1, 1],
        [128, 1, 1],
    ),
    ("ampere_sgemm_128x64_tn", [64, 32, 1], [128, 1, 1]),
    (
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, \
         at::native::(anonymous namespace)::SoftMaxForwardEpilogue>(float*, float const*, int)",
        [4096, 1, 1],
        [512, 1, 1],
    ),
    (
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float> > >",
        [256, 1, 1],
        [32, 16, 1],
    ),
];

const COMM: &str = "python3";
const EXE: &str = "/usr/bin/python3";

/// One host's node agent.
struct HostAgent {
    host: u32,
    node: NodeIdentity,
    anchor: ClockAnchor,
    /// Boot-time ns at the anchor, and the true wall time it stands for.
    boot_at_anchor_ns: u64,
    true_wall_at_anchor_ns: u64,
    run_id: String,
    sequence: u64,
}

impl HostAgent {
    fn new(spec: &JobSpec, host: u32) -> Self {
        let key = splitmix64(spec.seed ^ u64::from(host));
        // Hosts booted at different times: hours apart, not aligned.
        let boot_at_anchor_ns = 3_600_000_000_000 + (key % 86_400_000_000_000);
        let true_wall_at_anchor_ns = Schedule::new(spec).process_start_wall_ns() - 60_000_000_000;
        let anchor = ClockAnchor {
            boot_ns: boot_at_anchor_ns,
            wall_ns: true_wall_at_anchor_ns.saturating_add_signed(spec.host_skew_ns(host)),
            uncertainty_ns: 2_000,
        };
        let node = NodeIdentity {
            host: spec.host_name(host),
            boot_id: uuid_like(key),
            machine_id: format!("{:016x}{:016x}", splitmix64(key ^ 1), splitmix64(key ^ 2)),
            kernel_release: "6.8.0-60-generic".into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
        };
        Self {
            host,
            node,
            anchor,
            boot_at_anchor_ns,
            true_wall_at_anchor_ns,
            run_id: uuid_like(splitmix64(key ^ 3)),
            sequence: 0,
        }
    }

    /// The host's CLOCK_BOOTTIME at a true wall time.
    fn boot_ns(&self, true_wall_ns: u64) -> u64 {
        self.boot_at_anchor_ns + (true_wall_ns - self.true_wall_at_anchor_ns)
    }

    fn finish(&mut self, builder: &mut BatchBuilder, key: String) -> Option<OutgoingBatch> {
        if builder.is_empty() {
            return None;
        }
        self.sequence += 1;
        let batch = builder.finish(BatchHeader {
            node: self.node.clone(),
            clock: self.anchor,
            agent_run_id: self.run_id.clone(),
            sequence: self.sequence,
        });
        let events = batch.events.len();
        Some(OutgoingBatch { key, payload: Bytes::from(batch.encode_to_vec()), events })
    }
}

/// The job's batches in the order a fleet of agents would send them.
pub struct JobBatches {
    spec: JobSpec,
    agents: Vec<HostAgent>,
    comm_key: String,
    /// Collectives per flush window.
    window: u64,
    /// First sequence of the next window; None before the first.
    next_seq: Option<u64>,
    next_host: u32,
    pending: VecDeque<OutgoingBatch>,
    host_batch: BatchBuilder,
    comm_batch: BatchBuilder,
}

impl JobBatches {
    /// Panics on a spec that does not validate.
    pub fn new(spec: &JobSpec) -> Self {
        if let Err(err) = spec.validate() {
            panic!("invalid job spec: {err}");
        }
        let per_collective = GPUS_PER_HOST as usize * (1 + spec.kernels_per_step as usize);
        let window = (spec.flush_events / per_collective).max(1) as u64;
        Self {
            agents: (0..spec.hosts).map(|h| HostAgent::new(spec, h)).collect(),
            comm_key: spec.comm_key(),
            spec: spec.clone(),
            window,
            next_seq: None,
            next_host: 0,
            pending: VecDeque::new(),
            host_batch: BatchBuilder::new(),
            comm_batch: BatchBuilder::new(),
        }
    }

    /// Collectives each flush covers.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// One host's batches for the window starting at `first` (None: the
    /// opening one, with each rank's process and communicator init).
    fn build(&mut self, host: u32, first: Option<u64>) {
        let spec = &self.spec;
        let schedule = Schedule::new(spec);
        let agent = &self.agents[host as usize];
        let (hb, cb) = (&mut self.host_batch, &mut self.comm_batch);
        let (job_h, job_c) = (hb.intern(&spec.job), cb.intern(&spec.job));
        let (comm_h, comm_c) = (hb.intern(COMM), cb.intern(COMM));
        let comm_id_hash = spec.comm_id_hash();
        let nranks = spec.ranks() as i32;
        for device in 0..GPUS_PER_HOST {
            let rank = host * GPUS_PER_HOST + device;
            let process = RankProcess::new(agent, &schedule, rank);
            let (who_h, who_c) = (process.who(comm_h), process.who(comm_c));
            let nccl = |op: nccl_call::Op| NcclCall {
                op: op as i32,
                comm_handle: process.comm_handle,
                comm_id_hash,
                rank: rank as i32,
                nranks,
                job_sid: job_c,
                device: device as i32,
                ..Default::default()
            };
            let Some(first) = first else {
                let argv = [
                    "python3".to_string(),
                    "train.py".into(),
                    format!("--job={}", spec.job),
                    format!("--local-rank={device}"),
                ];
                let exec = ProcessExec {
                    start_ns: process.start_ns,
                    ppid: process.pid - 1 - device,
                    uid: 1000,
                    gid: 1000,
                    comm_sid: comm_h,
                    exe_sid: hb.intern(EXE),
                    argv_sids: argv.iter().map(|a| hb.intern(a)).collect(),
                    argv_truncated: false,
                };
                hb.push(process.start_ns + 1_000_000, process.pid, process.pid, 0, Body::Seen(exec));
                let init = NcclCall { duration_ns: 450_000_000, ..nccl(nccl_call::Op::CommInit) };
                cb.push_by(agent.boot_ns(schedule.comm_init_wall_ns()), &who_c, Body::Nccl(init));
                continue;
            };
            let last = schedule.last_seq(rank).min(first + self.window - 1);
            for seq in first..=last {
                let all_reduce = NcclCall {
                    seq,
                    count: schedule.count(rank, seq),
                    datatype: schedule.datatype(rank, seq),
                    reduce_op: 0,
                    stream: process.stream,
                    result: 0,
                    duration_ns: schedule.all_reduce_duration_ns(rank, seq),
                    ..nccl(nccl_call::Op::AllReduce)
                };
                cb.push_by(agent.boot_ns(schedule.entry_wall_ns(rank, seq)), &who_c, Body::Nccl(all_reduce));
                for index in 0..spec.kernels_per_step {
                    let (name, grid, block) = KERNELS[index as usize % KERNELS.len()];
                    let launch = CudaCall {
                        api: cuda_call::Api::LaunchKernel as i32,
                        function_sid: hb.intern(name),
                        grid_x: grid[0],
                        grid_y: grid[1],
                        grid_z: grid[2],
                        block_x: block[0],
                        block_y: block[1],
                        block_z: block[2],
                        stream: process.stream,
                        result: 0,
                        duration_ns: schedule.launch_duration_ns(rank, seq, index),
                        device: device as i32,
                        rank: rank as i32,
                        job_sid: job_h,
                        handle: 0x5610_0000_0000 + u64::from(index % KERNELS.len() as u32) * 0x1_0000,
                        ..Default::default()
                    };
                    let at = agent.boot_ns(schedule.kernel_launch_wall_ns(rank, seq, index));
                    hb.push_by(at, &who_h, Body::Cuda(launch));
                }
            }
        }
        let agent = &mut self.agents[host as usize];
        let host_key = agent.node.host.clone();
        self.pending.extend(agent.finish(&mut self.comm_batch, self.comm_key.clone()));
        self.pending.extend(agent.finish(&mut self.host_batch, host_key));
    }
}

/// One rank's process on its host.
struct RankProcess {
    pid: u32,
    start_ns: u64,
    comm_handle: u64,
    stream: u64,
}

impl RankProcess {
    fn new(agent: &HostAgent, schedule: &Schedule<'_>, rank: u32) -> Self {
        let device = rank % GPUS_PER_HOST;
        let start_ns = agent.boot_ns(schedule.process_start_wall_ns());
        let start_ns = start_ns - start_ns % 10_000_000 + u64::from(device) * 10_000_000;
        Self {
            pid: 41_000 + (agent.host % 97) * 10 + device,
            start_ns,
            comm_handle: 0x5580_0000_0000 + u64::from(device) * 0x10_0000,
            stream: 0x7f00_0000_0000 + u64::from(device) * 0x1000,
        }
    }

    fn who(&self, comm_sid: u32) -> Who {
        Who { pid: self.pid, tid: self.pid, cgroup_id: 0, comm_sid, process_start_ns: self.start_ns }
    }
}

impl Iterator for JobBatches {
    type Item = OutgoingBatch;

    fn next(&mut self) -> Option<OutgoingBatch> {
        let last_seq = Schedule::new(&self.spec).last_seq_of_job();
        while self.pending.is_empty() {
            let first = self.next_seq;
            if first.is_some_and(|first| first > last_seq) {
                return None;
            }
            self.build(self.next_host, first);
            self.next_host += 1;
            if self.next_host == self.spec.hosts {
                self.next_host = 0;
                self.next_seq = Some(first.map_or(0, |f| f + self.window));
            }
        }
        self.pending.pop_front()
    }
}

/// A UUID-shaped id from 64 bits (a boot id, an agent run id).
fn uuid_like(bits: u64) -> String {
    let more = splitmix64(bits);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        bits >> 32,
        (bits >> 16) & 0xffff,
        bits & 0xfff,
        more >> 52,
        more & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use plumbline_proto::{v1::EventBatch, BatchReader};

    use super::*;
    use crate::gpu_fleet::job::{Hang, Mismatch, MismatchField, Straggler, COUNT};

    const MS: u64 = 1_000_000;

    /// An all-reduce as the aggregator reads it: wall time from the batch's
    /// own clock anchor.
    #[derive(Debug, Clone)]
    struct Seen {
        key: String,
        host: String,
        rank: u32,
        device: i32,
        seq: u64,
        count: u64,
        datatype: i32,
        wall_ns: u64,
    }

    /// Every batch decoded, and the all-reduces and kernel launches in them.
    struct Played {
        batches: Vec<(String, EventBatch)>,
        all_reduces: Vec<Seen>,
        launches: Vec<(u32, u64)>,
    }

    fn play(spec: &JobSpec) -> Played {
        let mut played = Played { batches: Vec::new(), all_reduces: Vec::new(), launches: Vec::new() };
        for out in JobBatches::new(spec) {
            let batch = EventBatch::decode(out.payload.as_ref()).unwrap();
            assert_eq!(out.events, batch.events.len());
            let reader = BatchReader::new(&batch).unwrap();
            for event in reader.events() {
                let event = event.unwrap();
                match event.event.body.as_ref().unwrap() {
                    Body::Nccl(call) if call.op == nccl_call::Op::AllReduce as i32 => {
                        assert_eq!(reader.str(event.index, call.job_sid).unwrap(), spec.job);
                        played.all_reduces.push(Seen {
                            key: out.key.clone(),
                            host: reader.node().host.clone(),
                            rank: call.rank as u32,
                            device: call.device,
                            seq: call.seq,
                            count: call.count,
                            datatype: call.datatype,
                            wall_ns: reader.wall_ns(event.ts_ns),
                        })
                    }
                    Body::Cuda(call) => {
                        played.launches.push((call.rank as u32, event.ts_ns));
                    }
                    _ => {}
                }
            }
            played.batches.push((out.key, batch));
        }
        played
    }

    fn host_index(host: &str) -> u32 {
        host.trim_start_matches("gpu-host-").parse().unwrap()
    }

    #[test]
    fn nccl_calls_are_keyed_by_communicator_and_the_rest_by_host() {
        let spec =
            JobSpec { kernels_per_step: 3, flush_events: 256, first_host: 100, ..JobSpec::new("routing", 4, 30) };
        let played = play(&spec);
        let comm_key = format!("comm-{:016x}", spec.comm_id_hash());
        let mut comm_batches: BTreeMap<String, usize> = BTreeMap::new();
        let mut sequences: HashMap<String, (String, Vec<u64>)> = HashMap::new();
        for (key, batch) in &played.batches {
            let node = batch.node.as_ref().unwrap();
            let nccl = batch.events.iter().filter(|e| matches!(e.body, Some(Body::Nccl(_)))).count();
            if key.starts_with("comm-") {
                assert_eq!(*key, comm_key);
                assert_eq!(nccl, batch.events.len(), "a communicator's batch holds only NCCL calls");
                *comm_batches.entry(node.host.clone()).or_default() += 1;
            } else {
                assert_eq!(*key, node.host);
                assert_eq!(nccl, 0, "NCCL calls never travel keyed by host");
            }
            let (run, seqs) = sequences.entry(node.host.clone()).or_insert((batch.agent_run_id.clone(), Vec::new()));
            assert_eq!(*run, batch.agent_run_id, "one agent run per host");
            seqs.push(batch.sequence);
        }
        // One communicator batch per host per flush: the opening one (inits)
        // and one per window of collectives.
        let flushes = 1 + spec.collectives.div_ceil(JobBatches::new(&spec).window()) as usize;
        assert!(flushes > 3, "the job spans several flushes");
        assert_eq!(comm_batches.len(), 4);
        assert!(comm_batches.values().all(|&n| n == flushes), "{comm_batches:?}");
        for (host, (_, seqs)) in sequences {
            assert!(host.starts_with("gpu-host-010"), "{host}");
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1) && seqs[0] == 1, "{host}: {seqs:?}");
        }
        let events: usize = played.batches.iter().map(|(_, b)| b.events.len()).sum();
        assert_eq!(events as u64, u64::from(spec.ranks()) * (2 + 30 * 4));
        assert_eq!(events as u64, Schedule::new(&spec).events());
        for seen in &played.all_reduces {
            assert_eq!(host_index(&seen.host), 100 + seen.rank / 8);
            assert_eq!(seen.device, (seen.rank % 8) as i32);
        }
    }

    #[test]
    fn the_straggler_is_late_in_wall_time_once_each_hosts_skew_is_taken_out() {
        let straggler = Straggler { rank: 13, late_ns: 30 * MS, fraction: 1.0 };
        let spec = JobSpec { clock_skew_ns: 50 * MS, straggler: Some(straggler), ..JobSpec::new("straggler", 4, 20) };
        let played = play(&spec);
        let mut by_seq: BTreeMap<u64, Vec<&Seen>> = BTreeMap::new();
        for seen in &played.all_reduces {
            by_seq.entry(seen.seq).or_default().push(seen);
        }
        assert_eq!(by_seq.len(), 20);
        for (seq, calls) in by_seq {
            assert_eq!(calls.len(), 32);
            let corrected = |s: &Seen| s.wall_ns.saturating_add_signed(-spec.host_skew_ns(host_index(&s.host)));
            let mut arrivals: Vec<u64> = calls.iter().map(|s| corrected(s)).collect();
            arrivals.sort_unstable();
            let median = arrivals[arrivals.len() / 2];
            let last = calls.iter().max_by_key(|s| corrected(s)).unwrap();
            assert_eq!(last.rank, 13, "seq {seq}");
            let late = corrected(last) - median;
            assert!((24 * MS..=36 * MS).contains(&late), "seq {seq}: {late}");
            // On the raw clocks the skew dominates: hosts 0 and 3 are 100 ms apart.
            let raw = |host: u32| calls.iter().find(|s| s.rank == host * 8 + 1).unwrap().wall_ns as i64;
            assert!((raw(3) - raw(0) - 100 * MS as i64).abs() <= 6 * MS as i64, "seq {seq}");
        }
    }

    #[test]
    fn hung_ranks_stop_after_their_sequence_and_the_rest_wait_at_the_next() {
        let hang = Hang { ranks: vec![5, 18], after_seq: 11 };
        let spec = JobSpec { hang: Some(hang), flush_events: 256, ..JobSpec::new("hang", 3, 40) };
        let played = play(&spec);
        let events: usize = played.batches.iter().map(|(_, b)| b.events.len()).sum();
        assert_eq!(events as u64, Schedule::new(&spec).events());
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for seen in &played.all_reduces {
            let entry = last.entry(seen.rank).or_default();
            *entry = (*entry).max(seen.seq);
        }
        assert_eq!(last.len(), 24);
        for (rank, last) in last {
            assert_eq!(last, if rank == 5 || rank == 18 { 11 } else { 12 }, "rank {rank}");
        }
        let per_rank = played.all_reduces.iter().filter(|s| s.rank == 5).count();
        assert_eq!(per_rank, 12, "sequences 0-11, each once");
        let launches_of_5 = played.launches.iter().filter(|(rank, _)| *rank == 5).count();
        assert_eq!(launches_of_5, 12 * spec.kernels_per_step as usize, "no launches after the hang");
    }

    #[test]
    fn the_mismatched_rank_differs_at_its_sequence_only() {
        let mismatch = Mismatch { rank: 6, seq: 7, field: MismatchField::Count(1000) };
        let spec = JobSpec { mismatch: Some(mismatch), ..JobSpec::new("mismatch", 2, 10) };
        let played = play(&spec);
        let differing: BTreeSet<(u32, u64, u64)> = played
            .all_reduces
            .iter()
            .filter(|s| s.count != COUNT || s.datatype != 7)
            .map(|s| (s.rank, s.seq, s.count))
            .collect();
        assert_eq!(differing, BTreeSet::from([(6, 7, 1000)]));
        assert!(played.all_reduces.iter().all(|s| s.key == spec.comm_key()));
    }

    #[test]
    fn hosts_run_on_their_own_boot_clocks() {
        let played = play(&JobSpec::new("clocks", 3, 2));
        let anchors: BTreeSet<u64> = played.batches.iter().map(|(_, b)| b.clock.as_ref().unwrap().boot_ns).collect();
        let boot_ids: BTreeSet<String> =
            played.batches.iter().map(|(_, b)| b.node.as_ref().unwrap().boot_id.clone()).collect();
        assert_eq!((anchors.len(), boot_ids.len()), (3, 3));
    }
}
