//! When each rank makes each call, on the true wall clock (before any host's
//! clock skew): a pure function of the job, so any window of a huge job can
//! be built on its own and a test can ask what a rank did.

use super::job::{splitmix64, JobSpec, MismatchField, COUNT, DATATYPE};

const MS: u64 = 1_000_000;

/// Host-side time of an `ncclAllReduce` call: it only enqueues the work.
const ALL_REDUCE_CALL_NS: u64 = 18_000;
/// Host-side time of a `cudaLaunchKernel`.
const LAUNCH_CALL_NS: u64 = 4_000;

/// The job's calls, as functions of (rank, sequence).
#[derive(Debug, Clone, Copy)]
pub struct Schedule<'a> {
    spec: &'a JobSpec,
}

impl<'a> Schedule<'a> {
    pub fn new(spec: &'a JobSpec) -> Self {
        Self { spec }
    }

    /// When the rank processes started (a few seconds before step 0).
    pub fn process_start_wall_ns(&self) -> u64 {
        self.spec.start_wall_ns.saturating_sub(5_000 * MS)
    }

    /// When each rank created the communicator.
    pub fn comm_init_wall_ns(&self) -> u64 {
        self.spec.start_wall_ns.saturating_sub(1_000 * MS)
    }

    /// The last sequence `rank` calls: the job's last, or where a hang
    /// stopped it (its own last completed, or the one it waits at).
    pub fn last_seq(&self, rank: u32) -> u64 {
        match &self.spec.hang {
            Some(hang) if hang.ranks.contains(&rank) => hang.after_seq,
            Some(hang) => hang.after_seq + 1,
            None => self.spec.collectives - 1,
        }
    }

    /// The last sequence any rank calls.
    pub fn last_seq_of_job(&self) -> u64 {
        match &self.spec.hang {
            Some(hang) => hang.after_seq + 1,
            None => self.spec.collectives - 1,
        }
    }

    /// Events the whole job sends: per rank its process, its communicator's
    /// init, and per step it reaches an all-reduce and the step's launches.
    pub fn events(&self) -> u64 {
        let per_step = 1 + u64::from(self.spec.kernels_per_step);
        (0..self.spec.ranks()).map(|rank| 2 + (self.last_seq(rank) + 1) * per_step).sum()
    }

    pub fn calls(&self, rank: u32, seq: u64) -> bool {
        seq <= self.last_seq(rank)
    }

    /// Nominal arrival at `seq`, before jitter and lateness.
    pub fn step_wall_ns(&self, seq: u64) -> u64 {
        self.spec.start_wall_ns + seq * self.spec.step_ns
    }

    /// How late `rank` is at `seq` on purpose (the straggler).
    pub fn late_ns(&self, rank: u32, seq: u64) -> u64 {
        match &self.spec.straggler {
            Some(s) if s.rank == rank && self.straggles_at(seq) => s.late_ns,
            _ => 0,
        }
    }

    fn straggles_at(&self, seq: u64) -> bool {
        let Some(s) = &self.spec.straggler else { return false };
        s.fraction >= 1.0 || unit(splitmix64(self.spec.seed ^ 0x57a6 ^ seq.wrapping_mul(0x9e37))) < s.fraction
    }

    /// Normal noise around the nominal arrival, clamped at 3 sigma.
    pub fn jitter_ns(&self, rank: u32, seq: u64) -> i64 {
        if self.spec.jitter_ns == 0 {
            return 0;
        }
        let key = self.spec.seed ^ (u64::from(rank) << 40) ^ seq;
        let (u1, u2) = (unit(splitmix64(key)), unit(splitmix64(key ^ 0xa5a5_a5a5)));
        // Box-Muller; u1 in (0, 1] keeps the logarithm finite.
        let normal = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (normal.clamp(-3.0, 3.0) * self.spec.jitter_ns as f64) as i64
    }

    /// When `rank` called the all-reduce `seq`, true wall clock.
    pub fn entry_wall_ns(&self, rank: u32, seq: u64) -> u64 {
        let nominal = self.step_wall_ns(seq) + self.late_ns(rank, seq);
        nominal.saturating_add_signed(self.jitter_ns(rank, seq))
    }

    pub fn all_reduce_duration_ns(&self, rank: u32, seq: u64) -> u64 {
        ALL_REDUCE_CALL_NS + noise(self.spec.seed ^ 0xd0 ^ (u64::from(rank) << 40) ^ seq, 6_000)
    }

    /// When `rank` launched kernel `index` of step `seq`: the first (NCCL's
    /// own kernel) inside the all-reduce call, the others spread over the
    /// half step of compute before it.
    pub fn kernel_launch_wall_ns(&self, rank: u32, seq: u64, index: u32) -> u64 {
        let entry = self.entry_wall_ns(rank, seq);
        if index == 0 {
            return entry + 2_000;
        }
        let compute = self.spec.step_ns / 2;
        let slot = compute / u64::from(self.spec.kernels_per_step);
        entry - compute + u64::from(index - 1) * slot
    }

    pub fn launch_duration_ns(&self, rank: u32, seq: u64, index: u32) -> u64 {
        LAUNCH_CALL_NS + noise(self.spec.seed ^ (u64::from(rank) << 40) ^ (seq << 8) ^ u64::from(index), 3_000)
    }

    pub fn count(&self, rank: u32, seq: u64) -> u64 {
        match self.mismatch_at(rank, seq) {
            Some(MismatchField::Count(count)) => count,
            _ => COUNT,
        }
    }

    pub fn datatype(&self, rank: u32, seq: u64) -> i32 {
        match self.mismatch_at(rank, seq) {
            Some(MismatchField::Datatype(datatype)) => datatype,
            _ => DATATYPE,
        }
    }

    fn mismatch_at(&self, rank: u32, seq: u64) -> Option<MismatchField> {
        self.spec.mismatch.filter(|m| m.rank == rank && m.seq == seq).map(|m| m.field)
    }
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
    use crate::gpu_fleet::job::{Hang, Straggler};

    #[test]
    fn jitter_is_centred_and_bounded_by_three_sigma() {
        let spec = JobSpec::new("jitter", 8, 200);
        let schedule = Schedule::new(&spec);
        let samples: Vec<i64> =
            (0..64).flat_map(|r| (0..200).map(move |s| (r, s))).map(|(r, s)| schedule.jitter_ns(r, s)).collect();
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
        let late = (0..2000).filter(|&s| schedule.late_ns(3, s) == 20 * MS).count();
        assert!((400..600).contains(&late), "{late}");
        assert!((0..2000).all(|s| schedule.late_ns(2, s) == 0));
    }

    #[test]
    fn hung_ranks_stop_where_the_others_wait() {
        let spec = JobSpec { hang: Some(Hang { ranks: vec![2, 9], after_seq: 6 }), ..JobSpec::new("hang", 2, 20) };
        let schedule = Schedule::new(&spec);
        assert_eq!((schedule.last_seq(2), schedule.last_seq(9), schedule.last_seq(0)), (6, 6, 7));
        assert!(schedule.calls(9, 6) && !schedule.calls(9, 7) && schedule.calls(3, 7) && !schedule.calls(3, 8));
    }

    #[test]
    fn kernels_of_a_step_come_before_its_all_reduce_except_nccls_own() {
        let spec = JobSpec { kernels_per_step: 4, ..JobSpec::new("kernels", 1, 3) };
        let schedule = Schedule::new(&spec);
        let entry = schedule.entry_wall_ns(5, 1);
        assert!(schedule.kernel_launch_wall_ns(5, 1, 0) > entry);
        for index in 1..4 {
            let at = schedule.kernel_launch_wall_ns(5, 1, index);
            assert!(at < entry && at > schedule.entry_wall_ns(5, 0), "kernel {index}");
        }
    }
}
