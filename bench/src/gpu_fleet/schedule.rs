//! When each rank makes each call, on the true wall clock (before any host's
//! clock skew): a function of the job, so any window of a huge job can be
//! built on its own and a test can ask what a rank did.
//!
//! A step is a list of phases, each a call on one of the rank's
//! communicators: the flat job all-reduces over every rank; the 3-D parallel
//! job all-gathers over its data group, all-reduces over its tensor group,
//! sends to the next pipeline stage and receives from the previous one, and
//! reduce-scatters over its data group. A hang is played by propagation: a
//! collective some member never reaches leaves every member that reached it
//! waiting there for good.

use std::collections::HashMap;

use plumbline_proto::v1::nccl_call::Op;

use super::job::{splitmix64, JobSpec, MismatchField, COUNT, DATATYPE, GPUS_PER_HOST};

const MS: u64 = 1_000_000;

/// Host-side time of a collective call: it only enqueues the work.
const COLLECTIVE_CALL_NS: u64 = 18_000;
/// Host-side time of a `cudaLaunchKernel`.
const LAUNCH_CALL_NS: u64 = 4_000;

/// Which communicator of a rank a call is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Every rank.
    World,
    /// The 8 ranks of a host.
    Tensor,
    /// One rank per host of a pipeline stage, same GPU index.
    Data,
    /// One rank per stage, same data index and GPU index.
    Pipeline,
}

/// One phase of a step: the call, its group, and where in the step it comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub op: Op,
    pub group: Group,
    /// Thousandths of a step after its start.
    pub at_permille: u64,
}

const FLAT: &[Phase] = &[Phase { op: Op::AllReduce, group: Group::World, at_permille: 0 }];
const THREE_D: &[Phase] = &[
    Phase { op: Op::AllGather, group: Group::Data, at_permille: 100 },
    Phase { op: Op::AllReduce, group: Group::Tensor, at_permille: 300 },
    Phase { op: Op::Send, group: Group::Pipeline, at_permille: 400 },
    Phase { op: Op::Recv, group: Group::Pipeline, at_permille: 420 },
    Phase { op: Op::ReduceScatter, group: Group::Data, at_permille: 600 },
];

/// A communicator as one rank holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub group: Group,
    pub id_hash: u64,
    pub rank: u32,
    pub nranks: u32,
}

/// The job's calls, as functions of (rank, step, phase).
#[derive(Debug, Clone)]
pub struct Schedule {
    spec: JobSpec,
    /// Ranks that stop early: the last (step, phase) each calls.
    last_call: HashMap<u32, (u64, usize)>,
}

impl Schedule {
    pub fn new(spec: &JobSpec) -> Self {
        let mut schedule = Self { spec: spec.clone(), last_call: HashMap::new() };
        schedule.last_call = schedule.propagate_hang();
        schedule
    }

    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    pub fn phases(&self) -> &'static [Phase] {
        if self.spec.parallel.is_some() {
            THREE_D
        } else {
            FLAT
        }
    }

    /// The tensor, data and pipeline coordinates of `rank`: (tp index, dp
    /// index, stage).
    pub fn coordinates(&self, rank: u32) -> (u32, u32, u32) {
        let (_, dp) = self.spec.pp_dp();
        let node = rank / GPUS_PER_HOST;
        (rank % GPUS_PER_HOST, node % dp, node / dp)
    }

    fn rank_at(&self, tp: u32, dp_index: u32, stage: u32) -> u32 {
        let (_, dp) = self.spec.pp_dp();
        tp + GPUS_PER_HOST * (dp_index + dp * stage)
    }

    /// The members of `rank`'s communicator of `group`, by their rank in it.
    pub fn members(&self, rank: u32, group: Group) -> Vec<u32> {
        let (tp, dp_index, stage) = self.coordinates(rank);
        let (pp, dp) = self.spec.pp_dp();
        match group {
            Group::World => (0..self.spec.ranks()).collect(),
            Group::Tensor => (0..GPUS_PER_HOST).map(|t| self.rank_at(t, dp_index, stage)).collect(),
            Group::Data => (0..dp).map(|d| self.rank_at(tp, d, stage)).collect(),
            Group::Pipeline => (0..pp).map(|s| self.rank_at(tp, dp_index, s)).collect(),
        }
    }

    /// `rank`'s communicator of `group`: the same id on every member.
    pub fn membership(&self, rank: u32, group: Group) -> Membership {
        let members = self.members(rank, group);
        let position = members.iter().position(|&m| m == rank).expect("a rank is a member of its groups") as u32;
        let key = match group {
            Group::World => 0,
            _ => 1 + u64::from(members[0]) * 4 + group as u64,
        };
        Membership {
            group,
            id_hash: if key == 0 { self.spec.comm_id_hash() } else { splitmix64(self.spec.comm_id_hash() ^ key) >> 1 },
            rank: position,
            nranks: members.len() as u32,
        }
    }

    /// The communicators every rank creates, in order.
    pub fn groups(&self) -> &'static [Group] {
        if self.spec.parallel.is_some() {
            &[Group::World, Group::Tensor, Group::Data, Group::Pipeline]
        } else {
            &[Group::World]
        }
    }

    /// The sequence of `step`'s phase `phase` on its communicator: the
    /// communicator's collectives count apart from its sends and receives.
    pub fn seq(&self, step: u64, phase: usize) -> u64 {
        let phases = self.phases();
        let same = |p: &Phase| p.group == phases[phase].group && is_p2p(p.op) == is_p2p(phases[phase].op);
        let per_step = phases.iter().filter(|p| same(p)).count() as u64;
        let before = phases[..phase].iter().filter(|p| same(p)).count() as u64;
        step * per_step + before
    }

    /// When the rank processes started (a few seconds before step 0).
    pub fn process_start_wall_ns(&self) -> u64 {
        self.spec.start_wall_ns.saturating_sub(5_000 * MS)
    }

    /// When each rank created its communicators.
    pub fn comm_init_wall_ns(&self) -> u64 {
        self.spec.start_wall_ns.saturating_sub(1_000 * MS)
    }

    /// Whether `rank` makes the call of `step`'s `phase`.
    pub fn calls(&self, rank: u32, step: u64, phase: usize) -> bool {
        if step >= self.spec.collectives {
            return false;
        }
        self.last_call.get(&rank).is_none_or(|&last| (step, phase) <= last)
    }

    /// The last step `rank` makes any call of.
    pub fn last_seq(&self, rank: u32) -> u64 {
        self.last_call.get(&rank).map_or(self.spec.collectives - 1, |&(step, _)| step)
    }

    /// The last step any rank makes a call of.
    pub fn last_seq_of_job(&self) -> u64 {
        (0..self.spec.ranks()).map(|r| self.last_seq(r)).max().unwrap_or(0)
    }

    /// Events the whole job sends: per rank its process, its communicators'
    /// inits, its calls and, per step it starts, the step's launches.
    pub fn events(&self) -> u64 {
        let phases = self.phases().len();
        let mut events = 0;
        for rank in 0..self.spec.ranks() {
            events += 1 + self.groups().len() as u64;
            for step in 0..=self.last_seq(rank) {
                let calls = (0..phases).filter(|&p| self.calls(rank, step, p)).count() as u64;
                events += calls;
                if calls > 0 {
                    events += u64::from(self.spec.kernels_per_step);
                }
            }
        }
        events
    }

    /// Nominal start of `step`.
    pub fn step_wall_ns(&self, step: u64) -> u64 {
        self.spec.start_wall_ns + step * self.spec.step_ns
    }

    /// How late `rank` is at `step`'s `phase` on purpose: the straggler at
    /// its collectives from the tensor all-reduce on (flat: its all-reduce),
    /// and, 3-D, its host's other ranks at their reduce-scatter, having
    /// waited for it in the tensor all-reduce.
    pub fn late_ns(&self, rank: u32, step: u64, phase: usize) -> u64 {
        let Some(s) = &self.spec.straggler else { return 0 };
        if !self.straggles_at(step) {
            return 0;
        }
        let op = self.phases()[phase].op;
        if self.spec.parallel.is_none() {
            return if s.rank == rank { s.late_ns } else { 0 };
        }
        let same_host = rank / GPUS_PER_HOST == s.rank / GPUS_PER_HOST;
        match op {
            Op::AllReduce | Op::Send | Op::Recv | Op::ReduceScatter if s.rank == rank => s.late_ns,
            Op::ReduceScatter if same_host => s.late_ns,
            _ => 0,
        }
    }

    /// Whether the straggler is late at `step`.
    pub fn straggles_at(&self, step: u64) -> bool {
        let Some(s) = &self.spec.straggler else { return false };
        s.fraction >= 1.0 || unit(splitmix64(self.spec.seed ^ 0x57a6 ^ step.wrapping_mul(0x9e37))) < s.fraction
    }

    /// Normal noise around the nominal arrival, clamped at 3 sigma.
    pub fn jitter_ns(&self, rank: u32, step: u64, phase: usize) -> i64 {
        if self.spec.jitter_ns == 0 {
            return 0;
        }
        let key = self.spec.seed ^ (u64::from(rank) << 40) ^ step ^ ((phase as u64) << 56);
        let (u1, u2) = (unit(splitmix64(key)), unit(splitmix64(key ^ 0xa5a5_a5a5)));
        // Box-Muller; u1 in (0, 1] keeps the logarithm finite.
        let normal = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (normal.clamp(-3.0, 3.0) * self.spec.jitter_ns as f64) as i64
    }

    /// When `rank` made `step`'s `phase` call, true wall clock.
    pub fn call_wall_ns(&self, rank: u32, step: u64, phase: usize) -> u64 {
        let offset = self.spec.step_ns * self.phases()[phase].at_permille / 1000;
        let nominal = self.step_wall_ns(step) + offset + self.late_ns(rank, step, phase);
        nominal.saturating_add_signed(self.jitter_ns(rank, step, phase))
    }

    /// The flat job's all-reduce of `seq` (its only phase).
    pub fn entry_wall_ns(&self, rank: u32, seq: u64) -> u64 {
        self.call_wall_ns(rank, seq, 0)
    }

    pub fn call_duration_ns(&self, rank: u32, step: u64, phase: usize) -> u64 {
        let key = self.spec.seed ^ 0xd0 ^ (u64::from(rank) << 40) ^ step ^ ((phase as u64) << 56);
        COLLECTIVE_CALL_NS + noise(key, 6_000)
    }

    /// When `rank` launched kernel `index` of `step`: the first (NCCL's own
    /// kernel) inside the step's first call, the others spread over the
    /// tenth of a step before it.
    pub fn kernel_launch_wall_ns(&self, rank: u32, step: u64, index: u32) -> u64 {
        let entry = self.call_wall_ns(rank, step, 0);
        if index == 0 {
            return entry + 2_000;
        }
        let compute = self.spec.step_ns / 10;
        let slot = compute / u64::from(self.spec.kernels_per_step);
        entry - compute + u64::from(index - 1) * slot
    }

    pub fn launch_duration_ns(&self, rank: u32, seq: u64, index: u32) -> u64 {
        LAUNCH_CALL_NS + noise(self.spec.seed ^ (u64::from(rank) << 40) ^ (seq << 8) ^ u64::from(index), 3_000)
    }

    /// The mismatch is played at the step's last collective.
    pub fn count(&self, rank: u32, step: u64, phase: usize) -> u64 {
        match self.mismatch_at(rank, step, phase) {
            Some(MismatchField::Count(count)) => count,
            _ => COUNT,
        }
    }

    pub fn datatype(&self, rank: u32, step: u64, phase: usize) -> i32 {
        match self.mismatch_at(rank, step, phase) {
            Some(MismatchField::Datatype(datatype)) => datatype,
            _ => DATATYPE,
        }
    }

    fn mismatch_at(&self, rank: u32, step: u64, phase: usize) -> Option<MismatchField> {
        let last_collective = self.phases().iter().rposition(|p| !is_p2p(p.op))?;
        self.spec.mismatch.filter(|m| m.rank == rank && m.seq == step && phase == last_collective).map(|m| m.field)
    }

    /// Who stops where: the hung ranks after their step, then every rank
    /// that reached a collective one of its members never reached.
    fn propagate_hang(&self) -> HashMap<u32, (u64, usize)> {
        let mut last: HashMap<u32, (u64, usize)> = HashMap::new();
        let Some(hang) = &self.spec.hang else { return last };
        let phases = self.phases();
        for &rank in &hang.ranks {
            last.insert(rank, (hang.after_seq, phases.len() - 1));
        }
        let reaches =
            |last: &HashMap<u32, (u64, usize)>, rank: u32, at: (u64, usize)| last.get(&rank).is_none_or(|&l| at <= l);
        // Two steps on, every rank that will wait waits.
        let until = (hang.after_seq + 3).min(self.spec.collectives);
        for step in hang.after_seq + 1..until {
            for (phase, p) in phases.iter().enumerate().filter(|(_, p)| !is_p2p(p.op)) {
                let mut seen = std::collections::HashSet::new();
                for rank in 0..self.spec.ranks() {
                    let members = self.members(rank, p.group);
                    if !seen.insert(members[0]) {
                        continue;
                    }
                    let arrived: Vec<u32> =
                        members.iter().copied().filter(|&m| reaches(&last, m, (step, phase))).collect();
                    if arrived.len() < members.len() {
                        for m in arrived {
                            last.insert(m, (step, phase));
                        }
                    }
                }
            }
        }
        last
    }
}

pub fn is_p2p(op: Op) -> bool {
    matches!(op, Op::Send | Op::Recv)
}

/// A value in [0, 1) from 53 random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn noise(key: u64, below: u64) -> u64 {
    splitmix64(key) % below
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_fleet::job::{Hang, Parallel, Straggler};

    #[test]
    fn jitter_is_centred_and_bounded_by_three_sigma() {
        let spec = JobSpec::new("jitter", 8, 200);
        let schedule = Schedule::new(&spec);
        let samples: Vec<i64> =
            (0..64).flat_map(|r| (0..200).map(move |s| (r, s))).map(|(r, s)| schedule.jitter_ns(r, s, 0)).collect();
        let mean = samples.iter().sum::<i64>() as f64 / samples.len() as f64;
        let sd = (samples.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
        assert!(mean.abs() < 0.05 * MS as f64, "{mean}");
        assert!((0.9..1.1).contains(&(sd / MS as f64)), "{sd}");
        assert!(samples.iter().all(|x| x.unsigned_abs() <= 3 * MS));
    }

    #[test]
    fn a_straggler_at_a_fraction_of_collectives_is_late_at_about_that_share() {
        let straggler = Some(Straggler { rank: 3, late_ns: 20 * MS, fraction: 0.25 });
        let spec = JobSpec { straggler, ..JobSpec::new("fraction", 1, 2000) };
        let schedule = Schedule::new(&spec);
        let late = (0..2000).filter(|&s| schedule.late_ns(3, s, 0) == 20 * MS).count();
        assert!((400..600).contains(&late), "{late}");
        assert!((0..2000).all(|s| schedule.late_ns(2, s, 0) == 0));
    }

    #[test]
    fn hung_ranks_stop_where_the_others_wait() {
        let spec = JobSpec { hang: Some(Hang { ranks: vec![2, 9], after_seq: 6 }), ..JobSpec::new("hang", 2, 20) };
        let schedule = Schedule::new(&spec);
        assert_eq!((schedule.last_seq(2), schedule.last_seq(9), schedule.last_seq(0)), (6, 6, 7));
        assert!(schedule.calls(9, 6, 0) && !schedule.calls(9, 7, 0) && schedule.calls(3, 7, 0));
        assert!(!schedule.calls(3, 8, 0));
    }

    #[test]
    fn three_d_groups_are_a_host_a_stride_of_hosts_and_a_stride_of_stages() {
        // 2 stages × 4 data indices = 8 hosts, 64 ranks.
        let spec = JobSpec { parallel: Some(Parallel { pp: 2, split: false }), ..JobSpec::new("3d", 8, 10) };
        let schedule = Schedule::new(&spec);
        assert_eq!(schedule.coordinates(45), (5, 1, 1));
        assert_eq!(schedule.members(45, Group::Tensor), (40..48).collect::<Vec<_>>());
        assert_eq!(schedule.members(45, Group::Data), [37, 45, 53, 61]);
        assert_eq!(schedule.members(45, Group::Pipeline), [13, 45]);
        let data = schedule.membership(45, Group::Data);
        assert_eq!((data.rank, data.nranks), (1, 4));
        assert_eq!(data.id_hash, schedule.membership(61, Group::Data).id_hash);
        assert_ne!(data.id_hash, schedule.membership(46, Group::Data).id_hash);
        assert_eq!((schedule.seq(3, 0), schedule.seq(3, 4), schedule.seq(3, 1)), (6, 7, 3));
    }

    #[test]
    fn a_three_d_hang_stops_its_stage_behind_the_stopped_rank_and_leaves_the_other_stage_running() {
        let hang = Hang { ranks: vec![45], after_seq: 4 };
        let spec =
            JobSpec { parallel: Some(Parallel { pp: 2, split: false }), hang: Some(hang), ..JobSpec::new("3d", 8, 10) };
        let schedule = Schedule::new(&spec);
        // Rank 45 makes no call of step 5; its data group waits in step 5's
        // all-gather; its tensor peers get past the all-gather and wait in
        // the tensor all-reduce.
        assert!(!schedule.calls(45, 5, 0));
        assert!(schedule.calls(37, 5, 0) && !schedule.calls(37, 5, 1));
        assert!(schedule.calls(44, 5, 1) && !schedule.calls(44, 5, 2));
        assert_eq!(schedule.last_seq(13), 9, "the other stage runs on");
        assert!((32..64).all(|r| schedule.last_seq(r) <= 6), "the whole stage stops");
    }
}
