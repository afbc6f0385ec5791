//! The job as its hosts' node agents send it: per host an `EventBatch` with
//! the host's identity and its clock anchor read when the batch is built, an
//! agent run id and an increasing sequence; NCCL calls in batches keyed by
//! their job (so one aggregator sees every rank and communicator of it),
//! everything else keyed by host. After the job's last step every host's
//! agent keeps sending the job's batch, empty, once a second for
//! [`JobSpec::heartbeat_tail_ns`], as agents do while a rank lives.
//!
//! A host flushes its batches once they hold about
//! [`JobSpec::flush_events`] events or a second of steps, hosts taking turns
//! window by window, as a fleet of agents under load would.

use std::collections::VecDeque;

use bytes::Bytes;
use plumbline_proto::{
    v1::{cuda_call, event::Body, nccl_call, ClockAnchor, CudaCall, NcclCall, NodeIdentity, ProcessExec},
    BatchBuilder, BatchHeader, Who,
};
use plumbline_transport::OutgoingBatch;
use prost::Message;

use super::job::{splitmix64, JobSpec, GPUS_PER_HOST};
use super::schedule::{is_p2p, Membership, Schedule};

/// Kernels a step launches, in order: (name, grid, block). The first is the
/// step's first collective's own.
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
const MS: u64 = 1_000_000;
/// An agent sends a live job's batch at least this often.
const HEARTBEAT_NS: u64 = 1_000 * MS;
/// A window of steps spans at most this much time: agents flush often.
const MAX_WINDOW_NS: u64 = 1_000 * MS;

/// One host's node agent.
struct HostAgent {
    node: NodeIdentity,
    /// The host's skew, and its boot time at a true wall time.
    skew_ns: i64,
    boot_at_ns: u64,
    true_wall_at_ns: u64,
    run_id: String,
    sequence: u64,
}

impl HostAgent {
    fn new(spec: &JobSpec, host: u32) -> Self {
        let key = splitmix64(spec.seed ^ u64::from(host));
        let node = NodeIdentity {
            host: spec.host_name(host),
            boot_id: uuid_like(key),
            machine_id: format!("{:016x}{:016x}", splitmix64(key ^ 1), splitmix64(key ^ 2)),
            kernel_release: "6.8.0-60-generic".into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
        };
        Self {
            node,
            skew_ns: spec.host_skew_ns(host),
            // Hosts booted at different times: hours apart, not aligned.
            boot_at_ns: 3_600_000_000_000 + (key % 86_400_000_000_000),
            true_wall_at_ns: Schedule::new(spec).process_start_wall_ns() - 60_000_000_000,
            run_id: uuid_like(splitmix64(key ^ 3)),
            sequence: 0,
        }
    }

    /// The host's CLOCK_BOOTTIME at a true wall time.
    fn boot_ns(&self, true_wall_ns: u64) -> u64 {
        self.boot_at_ns + (true_wall_ns - self.true_wall_at_ns)
    }

    /// Both clocks read at a true wall time: the wall clock with the host's skew.
    fn anchor(&self, true_wall_ns: u64) -> ClockAnchor {
        ClockAnchor {
            boot_ns: self.boot_ns(true_wall_ns),
            wall_ns: true_wall_ns.saturating_add_signed(self.skew_ns),
            uncertainty_ns: 2_000,
        }
    }

    /// The batch built at `true_wall_ns`; an empty one only as a heartbeat.
    fn finish(
        &mut self,
        builder: &mut BatchBuilder,
        key: String,
        true_wall_ns: u64,
        heartbeat: bool,
    ) -> Option<OutgoingBatch> {
        if builder.is_empty() && !heartbeat {
            return None;
        }
        self.sequence += 1;
        let batch = builder.finish(BatchHeader {
            node: self.node.clone(),
            clock: self.anchor(true_wall_ns),
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
    schedule: Schedule,
    agents: Vec<HostAgent>,
    job_key: String,
    /// Steps per flush window.
    window: u64,
    /// First step of the next window; None before the first.
    next_seq: Option<u64>,
    next_host: u32,
    /// Heartbeats sent after the last window, per host round.
    heartbeats: u64,
    pending: VecDeque<OutgoingBatch>,
    host_batch: BatchBuilder,
    job_batch: BatchBuilder,
}

impl JobBatches {
    /// Panics on a spec that does not validate.
    pub fn new(spec: &JobSpec) -> Self {
        if let Err(err) = spec.validate() {
            panic!("invalid job spec: {err}");
        }
        let schedule = Schedule::new(spec);
        let per_step = GPUS_PER_HOST as usize * (schedule.phases().len() + spec.kernels_per_step as usize);
        let by_time = (MAX_WINDOW_NS / spec.step_ns).max(1);
        let window = ((spec.flush_events / per_step).max(1) as u64).min(by_time);
        Self {
            agents: (0..spec.hosts).map(|h| HostAgent::new(spec, h)).collect(),
            job_key: spec.job_key(),
            spec: spec.clone(),
            schedule,
            window,
            next_seq: None,
            next_host: 0,
            heartbeats: 0,
            pending: VecDeque::new(),
            host_batch: BatchBuilder::new(),
            job_batch: BatchBuilder::new(),
        }
    }

    /// Steps each flush covers.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// One host's batches for the window starting at `first` (None: the
    /// opening one, with each rank's process and communicator inits).
    fn build(&mut self, host: u32, first: Option<u64>) {
        let spec = &self.spec;
        let schedule = &self.schedule;
        let silent_after = spec.silent.filter(|s| s.host == host).map(|s| s.after_seq);
        if first.is_some_and(|f| silent_after.is_some_and(|after| f > after)) {
            return;
        }
        let agent = &self.agents[host as usize];
        let (hb, jb) = (&mut self.host_batch, &mut self.job_batch);
        let (job_h, job_j) = (hb.intern(&spec.job), jb.intern(&spec.job));
        let (comm_h, comm_j) = (hb.intern(COMM), jb.intern(COMM));
        let phases = schedule.phases();
        // A window's batch is built once its steps are over.
        let mut flush_at = match first {
            None => schedule.comm_init_wall_ns() + 500 * MS,
            Some(first) => schedule.step_wall_ns(first + self.window),
        };
        for device in 0..GPUS_PER_HOST {
            let rank = host * GPUS_PER_HOST + device;
            let process = RankProcess::new(agent, schedule, rank);
            let (who_h, who_j) = (process.who(comm_h), process.who(comm_j));
            let memberships: Vec<Membership> =
                schedule.groups().iter().map(|&g| schedule.membership(rank, g)).collect();
            let split = spec.parallel.is_some_and(|p| p.split);
            // A split's own calls say nothing of its ranks: the agent cannot know them.
            let on_split = |index: usize| split && index > 0;
            let nccl = |op: nccl_call::Op, m: &Membership, index: usize| NcclCall {
                op: op as i32,
                comm_handle: process.comm_handle + index as u64 * 0x1000,
                comm_id_hash: m.id_hash,
                rank: if on_split(index) { -1 } else { m.rank as i32 },
                nranks: if on_split(index) { -1 } else { m.nranks as i32 },
                job_sid: job_j,
                device: device as i32,
                global_rank: Some(rank as i32),
                world_size: Some(spec.ranks() as i32),
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
                for (index, m) in memberships.iter().enumerate() {
                    let init = if on_split(index) {
                        // Split from the world (index 0): this rank's part, as its agent reports it.
                        let world = &memberships[0];
                        NcclCall {
                            duration_ns: 50_000_000,
                            parent_comm_id_hash: world.id_hash,
                            color: schedule.members(rank, m.group)[0] as i32,
                            peer: rank as i32,
                            rank: world.rank as i32,
                            nranks: world.nranks as i32,
                            seq: index as u64 - 1,
                            ..nccl(nccl_call::Op::CommSplit, m, index)
                        }
                    } else {
                        NcclCall { duration_ns: 450_000_000, ..nccl(nccl_call::Op::CommInit, m, index) }
                    };
                    let at = agent.boot_ns(schedule.comm_init_wall_ns() + index as u64 * MS);
                    jb.push_by(at, &who_j, Body::Nccl(init));
                }
                continue;
            };
            let mut last = schedule.last_seq(rank).min(first + self.window - 1);
            if let Some(after) = silent_after {
                last = last.min(after);
            }
            for step in first..=last {
                let mut called = false;
                for (phase, p) in phases.iter().enumerate() {
                    if !schedule.calls(rank, step, phase) {
                        continue;
                    }
                    called = true;
                    let index = schedule.groups().iter().position(|g| *g == p.group).expect("a phase's group");
                    let m = &memberships[index];
                    let peer = if is_p2p(p.op) {
                        // The next stage's rank, or the previous one's.
                        let members = schedule.members(rank, p.group);
                        let n = members.len() as u32;
                        let to = if p.op == nccl_call::Op::Send { m.rank + 1 } else { m.rank + n - 1 } % n;
                        to as i32
                    } else {
                        -1
                    };
                    let call = NcclCall {
                        seq: schedule.seq(step, phase),
                        count: schedule.count(rank, step, phase),
                        datatype: schedule.datatype(rank, step, phase),
                        peer,
                        stream: process.stream,
                        duration_ns: schedule.call_duration_ns(rank, step, phase),
                        ..nccl(p.op, m, index)
                    };
                    let at = schedule.call_wall_ns(rank, step, phase);
                    flush_at = flush_at.max(at);
                    jb.push_by(agent.boot_ns(at), &who_j, Body::Nccl(call));
                }
                if !called {
                    continue;
                }
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
                        duration_ns: schedule.launch_duration_ns(rank, step, index),
                        device: device as i32,
                        rank: rank as i32,
                        job_sid: job_h,
                        handle: 0x5610_0000_0000 + u64::from(index % KERNELS.len() as u32) * 0x1_0000,
                        ..Default::default()
                    };
                    let at = schedule.kernel_launch_wall_ns(rank, step, index);
                    hb.push_by(agent.boot_ns(at), &who_h, Body::Cuda(launch));
                }
            }
        }
        // Built a moment after its last event, as an agent's drain would.
        let built_at = flush_at + 50 * MS;
        let job_key = self.job_key.clone();
        let agent = &mut self.agents[host as usize];
        let host_key = agent.node.host.clone();
        self.pending.extend(agent.finish(&mut self.job_batch, job_key, built_at, first.is_some()));
        self.pending.extend(agent.finish(&mut self.host_batch, host_key, built_at, false));
    }

    /// Every live host's empty job batch, `round` seconds after the job's
    /// last step.
    fn heartbeat(&mut self, round: u64) {
        let end = self.schedule.step_wall_ns(self.schedule.last_seq_of_job() + 1);
        let at = end + round * HEARTBEAT_NS;
        for host in 0..self.spec.hosts {
            if self.spec.silent.is_some_and(|s| s.host == host) {
                continue;
            }
            let key = self.job_key.clone();
            let agent = &mut self.agents[host as usize];
            self.pending.extend(agent.finish(&mut self.job_batch, key, at, true));
        }
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
    fn new(agent: &HostAgent, schedule: &Schedule, rank: u32) -> Self {
        let device = rank % GPUS_PER_HOST;
        let start_ns = agent.boot_ns(schedule.process_start_wall_ns());
        let start_ns = start_ns - start_ns % 10_000_000 + u64::from(device) * 10_000_000;
        let host = rank / GPUS_PER_HOST;
        Self {
            pid: 41_000 + (host % 97) * 10 + device,
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
        let last_seq = self.schedule.last_seq_of_job();
        let rounds = self.spec.heartbeat_tail_ns / HEARTBEAT_NS;
        while self.pending.is_empty() {
            let first = self.next_seq;
            if first.is_some_and(|first| first > last_seq) {
                if self.heartbeats >= rounds {
                    return None;
                }
                self.heartbeats += 1;
                self.heartbeat(self.heartbeats);
                continue;
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
    fn nccl_calls_are_keyed_by_job_the_rest_by_host_and_heartbeats_follow_the_last_step() {
        let spec =
            JobSpec { kernels_per_step: 3, flush_events: 256, first_host: 100, ..JobSpec::new("routing", 4, 30) };
        let played = play(&spec);
        let mut sequences: HashMap<String, (String, Vec<u64>)> = HashMap::new();
        let mut heartbeats: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (key, batch) in &played.batches {
            let node = batch.node.as_ref().unwrap();
            let nccl = batch.events.iter().filter(|e| matches!(e.body, Some(Body::Nccl(_)))).count();
            if key.starts_with("job-") {
                assert_eq!(*key, spec.job_key());
                assert_eq!(nccl, batch.events.len(), "a job's batch holds only NCCL calls");
                if batch.events.is_empty() {
                    heartbeats.entry(node.host.clone()).or_default().push(batch.clock.unwrap().wall_ns);
                }
            } else {
                assert_eq!(*key, node.host);
                assert_eq!(nccl, 0, "NCCL calls never travel keyed by host");
            }
            let (run, seqs) = sequences.entry(node.host.clone()).or_insert((batch.agent_run_id.clone(), Vec::new()));
            assert_eq!(*run, batch.agent_run_id, "one agent run per host");
            seqs.push(batch.sequence);
        }
        for (host, (_, seqs)) in sequences {
            assert!(host.starts_with("gpu-host-010"), "{host}");
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1) && seqs[0] == 1, "{host}: {seqs:?}");
        }
        // Every host beats once a second for the tail, its clock advancing.
        assert_eq!(heartbeats.len(), 4);
        for beats in heartbeats.values() {
            assert_eq!(beats.len() as u64, spec.heartbeat_tail_ns / 1_000_000_000);
            assert!(beats.windows(2).all(|w| w[1] - w[0] == 1_000_000_000));
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
        assert!(played.all_reduces.iter().all(|s| s.key == spec.job_key()));
    }

    #[test]
    fn hosts_run_on_their_own_boot_clocks_and_read_them_at_each_batch() {
        let played = play(&JobSpec::new("clocks", 3, 2));
        let mut clocks: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for (_, batch) in &played.batches {
            let clock = batch.clock.unwrap();
            clocks
                .entry(batch.node.as_ref().unwrap().boot_id.clone())
                .or_default()
                .push((clock.boot_ns, clock.wall_ns));
        }
        assert_eq!(clocks.len(), 3);
        let offsets: BTreeSet<i128> = clocks.values().map(|c| i128::from(c[0].1) - i128::from(c[0].0)).collect();
        assert_eq!(offsets.len(), 3, "booted at different times");
        for batches in clocks.values() {
            // Both clocks advance together from batch to batch.
            assert!(batches.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 - w[0].1 == w[1].0 - w[0].0));
        }
    }
}
