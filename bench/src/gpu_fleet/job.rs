//! What a simulated training job is: its size and shape, its pace, its
//! clocks, and the faults played into it (a straggler rank, a hang, a
//! mismatched call, a host whose agent goes silent).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// GPUs per host: rank `r` runs on host `r / 8`, device `r % 8`.
pub const GPUS_PER_HOST: u32 = 8;

const MS: u64 = 1_000_000;

/// A training job: by default data-parallel over one communicator of every
/// rank, one all-reduce per training step; with [`Parallel`], 3-D parallel.
/// Each step also launches kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The job name every call carries (`job_sid`).
    pub job: String,
    pub hosts: u32,
    /// The job's hosts are `gpu-host-<first_host>` onwards, so jobs played
    /// side by side run on hosts of their own, as in a real fleet.
    pub first_host: u32,
    /// All-reduces per rank (sequence numbers 0..collectives).
    pub collectives: u64,
    /// CUDA kernel launches per rank and step (the first is the all-reduce's
    /// own NCCL kernel).
    pub kernels_per_step: u32,
    /// Simulated time from one all-reduce to the next.
    pub step_ns: u64,
    /// Wall-clock time of sequence 0's nominal arrival.
    pub start_wall_ns: u64,
    /// Standard deviation of each arrival around its step's nominal time
    /// (normal, clamped at 3 sigma so a healthy job has no outlier by chance).
    pub jitter_ns: u64,
    /// Hosts' clocks disagree by up to this much either way: each host's
    /// anchor is biased by an amount spread evenly over [-skew, +skew].
    pub clock_skew_ns: u64,
    /// Seeds the jitter and the straggler's choice of collectives.
    pub seed: u64,
    /// A host flushes its batches once they hold about this many events.
    pub flush_events: usize,
    pub straggler: Option<Straggler>,
    pub hang: Option<Hang>,
    pub mismatch: Option<Mismatch>,
    /// 3-D parallelism; None: one communicator over every rank.
    pub parallel: Option<Parallel>,
    /// A host whose agent stops sending after a step.
    pub silent: Option<Silent>,
    /// How long hosts' agents keep sending the job's (empty) batches after
    /// its last step, once a second, as live ranks' agents do.
    pub heartbeat_tail_ns: u64,
}

/// Tensor parallelism over the 8 GPUs of a host, `pp` pipeline stages
/// (send/recv between them) and data parallelism over the rest (FSDP:
/// all-gather and reduce-scatter): hosts = pp × dp. Job ranks are numbered
/// tensor rank fastest, then data, then pipeline (Megatron's order), so a
/// host holds one tensor group and a data group has one rank per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallel {
    pub pp: u32,
    /// The tensor, data and pipeline groups are split from the world
    /// communicator (`ncclCommSplit`, as PyTorch's eagerly initialised
    /// process groups make them) rather than made with their own ids: their
    /// calls carry no rank or size, which the aggregator numbers from every
    /// rank's split.
    pub split: bool,
}

/// Host `host`'s agent sends nothing after step `after_seq` (its ranks go on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silent {
    pub host: u32,
    pub after_seq: u64,
}

/// A rank that arrives late at collectives.
#[derive(Debug, Clone, PartialEq)]
pub struct Straggler {
    pub rank: u32,
    pub late_ns: u64,
    /// Of the collectives, the share it is late at (1.0: every one).
    pub fraction: f64,
}

/// Ranks that stop after completing `after_seq`; every other rank arrives at
/// `after_seq + 1` and waits there for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hang {
    pub ranks: Vec<u32>,
    pub after_seq: u64,
}

/// One rank calling one collective with a different element count or type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    pub rank: u32,
    pub seq: u64,
    pub field: MismatchField,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MismatchField {
    Count(u64),
    Datatype(i32),
}

/// Every rank's element count: a 25 MiB gradient bucket of f32.
pub const COUNT: u64 = 25 * 1024 * 1024 / 4;
/// ncclFloat32.
pub const DATATYPE: i32 = 7;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> SpecError {
    SpecError { field, message: message.into() }
}

impl JobSpec {
    /// A healthy job of `hosts` × 8 ranks doing `collectives` steps of
    /// 100 ms, two kernel launches a step, 1 ms jitter, ending a minute ago.
    pub fn new(job: &str, hosts: u32, collectives: u64) -> Self {
        let step_ns = 100 * MS;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos() as u64;
        let start_wall_ns = now.saturating_sub(collectives * step_ns + 60_000 * MS);
        Self {
            job: job.to_string(),
            hosts,
            first_host: 0,
            collectives,
            kernels_per_step: 2,
            step_ns,
            start_wall_ns,
            jitter_ns: MS,
            clock_skew_ns: 0,
            seed: seed_of(job),
            flush_events: 4096,
            straggler: None,
            hang: None,
            mismatch: None,
            parallel: None,
            silent: None,
            heartbeat_tail_ns: 40_000 * MS,
        }
    }

    /// Pipeline stages and data-parallel width (1 and `hosts` when flat).
    pub fn pp_dp(&self) -> (u32, u32) {
        match self.parallel {
            Some(p) => (p.pp, self.hosts / p.pp.max(1)),
            None => (1, self.hosts),
        }
    }

    pub fn ranks(&self) -> u32 {
        self.hosts * GPUS_PER_HOST
    }

    /// The job-local index of the host `rank` runs on.
    pub fn host_of(rank: u32) -> u32 {
        rank / GPUS_PER_HOST
    }

    pub fn device_of(rank: u32) -> i32 {
        (rank % GPUS_PER_HOST) as i32
    }

    /// The name of the job's host `host` (a job-local index).
    pub fn host_name(&self, host: u32) -> String {
        format!("gpu-host-{:04}", self.first_host + host)
    }

    /// The name of the host `rank` runs on.
    pub fn host_of_rank(&self, rank: u32) -> String {
        self.host_name(Self::host_of(rank))
    }

    /// The world communicator's id hash (`comm_id_hash`), the same on every
    /// rank.
    pub fn comm_id_hash(&self) -> u64 {
        splitmix64(seed_of(&self.job) ^ 0x6e63_636c_5f69_6400) | 1
    }

    /// The Kafka key agents give this job's NCCL batches.
    pub fn job_key(&self) -> String {
        format!("job-{}", self.job)
    }

    /// How far `host`'s clock anchor is off, ns (positive: ahead).
    pub fn host_skew_ns(&self, host: u32) -> i64 {
        if self.clock_skew_ns == 0 || self.hosts < 2 {
            return 0;
        }
        let skew = self.clock_skew_ns as i128;
        let (host, last) = (i128::from(host), i128::from(self.hosts - 1));
        (skew * (2 * host - last) / last) as i64
    }

    pub fn validate(&self) -> Result<(), SpecError> {
        if self.job.is_empty() {
            return Err(invalid("job", "must not be empty"));
        }
        if self.hosts == 0 || self.first_host.saturating_add(self.hosts) > 100_000 {
            return Err(invalid("hosts", "hosts must be numbered below 100000"));
        }
        if self.collectives == 0 {
            return Err(invalid("collectives", "must be above 0"));
        }
        if self.step_ns < 10 * MS {
            return Err(invalid("step_ns", "must be at least 10 ms"));
        }
        if self.jitter_ns.saturating_mul(12) > self.step_ns {
            return Err(invalid("jitter_ns", "3 sigma must stay within a quarter of a step"));
        }
        if self.flush_events == 0 {
            return Err(invalid("flush_events", "must be above 0"));
        }
        let ranks = self.ranks();
        if let Some(s) = &self.straggler {
            if s.rank >= ranks {
                return Err(invalid("straggler.rank", format!("the job has ranks 0-{}", ranks - 1)));
            }
            if s.late_ns == 0 || s.late_ns.saturating_mul(2) > self.step_ns {
                return Err(invalid("straggler.late_ns", "must be above 0 and at most half a step"));
            }
            if !(s.fraction > 0.0 && s.fraction <= 1.0) {
                return Err(invalid("straggler.fraction", "must be in (0, 1]"));
            }
        }
        if let Some(h) = &self.hang {
            if h.ranks.is_empty() || h.ranks.iter().any(|&r| r >= ranks) || h.ranks.len() as u32 >= ranks {
                return Err(invalid("hang.ranks", format!("must be some, not all, of ranks 0-{}", ranks - 1)));
            }
            if h.after_seq + 1 >= self.collectives {
                return Err(invalid("hang.after_seq", "the job must have a collective after it"));
            }
        }
        if let Some(p) = &self.parallel {
            if p.pp == 0 || !self.hosts.is_multiple_of(p.pp) || self.hosts / p.pp < 2 {
                return Err(invalid("parallel.pp", "must divide the hosts, with at least 2 hosts per stage"));
            }
        }
        if let Some(silent) = &self.silent {
            if silent.host >= self.hosts || silent.after_seq + 1 >= self.collectives {
                return Err(invalid("silent", "must be a host of the job, before its last step"));
            }
        }
        if let Some(m) = &self.mismatch {
            if m.rank >= ranks {
                return Err(invalid("mismatch.rank", format!("the job has ranks 0-{}", ranks - 1)));
            }
            if m.seq >= self.collectives {
                return Err(invalid("mismatch.seq", "must be one of the job's collectives"));
            }
            let same = match m.field {
                MismatchField::Count(count) => count == COUNT,
                MismatchField::Datatype(datatype) => datatype == DATATYPE,
            };
            if same {
                return Err(invalid("mismatch.field", "must differ from what the other ranks call"));
            }
        }
        Ok(())
    }
}

/// A seed from a name (FNV-1a).
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A well-mixed 64-bit value from `x` (SplitMix64's finaliser).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_sit_eight_to_a_host() {
        assert_eq!((JobSpec::host_of(13), JobSpec::device_of(13)), (1, 5));
        let spec = JobSpec { first_host: 40, ..JobSpec::new("j", 4, 10) };
        assert_eq!((spec.host_name(0), spec.host_of_rank(31)), ("gpu-host-0040".into(), "gpu-host-0043".into()));
        assert_eq!(JobSpec::new("j", 4, 10).ranks(), 32);
    }

    #[test]
    fn skew_spreads_hosts_evenly_over_both_directions() {
        let spec = JobSpec { clock_skew_ns: 50 * MS, ..JobSpec::new("j", 8, 10) };
        let skews: Vec<i64> = (0..8).map(|h| spec.host_skew_ns(h)).collect();
        assert_eq!((skews[0], skews[7]), (-50 * MS as i64, 50 * MS as i64));
        assert!(skews.windows(2).all(|w| w[0] < w[1]) && !skews.contains(&0), "{skews:?}");
        assert_eq!(JobSpec::new("j", 8, 10).host_skew_ns(3), 0);
    }

    #[test]
    fn faults_outside_the_job_are_refused_by_name() {
        let base = JobSpec::new("j", 2, 10);
        let late = JobSpec { straggler: Some(Straggler { rank: 16, late_ns: MS, fraction: 1.0 }), ..base.clone() };
        assert_eq!(late.validate().unwrap_err().field, "straggler.rank");
        let hang = JobSpec { hang: Some(Hang { ranks: vec![1], after_seq: 9 }), ..base.clone() };
        assert_eq!(hang.validate().unwrap_err().field, "hang.after_seq");
        let field = MismatchField::Datatype(DATATYPE);
        let same = JobSpec { mismatch: Some(Mismatch { rank: 1, seq: 3, field }), ..base.clone() };
        assert_eq!(same.validate().unwrap_err().field, "mismatch.field");
        base.validate().unwrap();
    }
}
