//! What the agent keeps per GPU process: the device it selected, its NCCL
//! communicators (handle → id hash, rank, size, and the sequence of its
//! collectives), the splits made of each, and the training job it belongs to
//! and its rank in it.

use std::collections::HashMap;

/// Ids are kept below 2^63, as the agent's other ids are: every store can
/// hold them (SQLite's integers are signed).
const ID_MASK: u64 = u64::MAX >> 1;

/// The ncclUniqueId's bytes hashed (xxh3, no seed, top bit cleared): the same
/// on every rank, on every host.
pub fn comm_id_hash(unique_id: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(unique_id) & ID_MASK
}

/// A communicator made by ncclCommSplit has no id of its own: every rank that
/// asked for `color` in the `nth` split (from 0) of the same parent gets the
/// same hash.
pub fn split_id_hash(parent: u64, color: i32, nth: u64) -> u64 {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&parent.to_le_bytes());
    bytes[8..12].copy_from_slice(&color.to_le_bytes());
    bytes[12..].copy_from_slice(&nth.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes) & ID_MASK
}

/// One process's part in a communicator split. The new communicator's rank
/// and size are not the caller's to know: every rank of the parent takes
/// part, and the aggregator numbers each color's members from all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// 0 for a negative color (NCCL_SPLIT_NOCOLOR), which joins none.
    pub id_hash: u64,
    pub parent_id_hash: u64,
    /// The caller's rank in the parent, and the parent's size (-1 when the
    /// parent is itself a split).
    pub parent_rank: i32,
    pub parent_nranks: i32,
    /// Which of the parent's splits, from 0.
    pub nth: u64,
}

/// Environment variables naming a training job, first set wins.
const JOB_VARIABLES: [&str; 3] = ["PLUMBLINE_JOB", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"];
/// Environment variables holding the process's rank in the job as its
/// launcher numbered it (torchrun, Open MPI, MPICH/PMI, Slurm), first set wins.
const RANK_VARIABLES: [&str; 4] = ["RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"];
/// ... and the job's size, in the same launchers' order.
const SIZE_VARIABLES: [&str; 4] = ["WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"];

/// What the launcher told the process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Launch {
    job: Option<String>,
    rank: Option<i32>,
    world_size: Option<i32>,
}

/// One communicator as one process holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Communicator {
    pub id_hash: u64,
    /// -1 when unknown (made by a split).
    pub rank: i32,
    pub nranks: i32,
    /// Collectives issued on it so far: the next one's sequence. Every
    /// rank issues the same collectives in the same order, so the sequence
    /// names one collective across ranks.
    pub next_seq: u64,
    /// Sends and receives so far, counted apart: ranks exchange different
    /// numbers of them, which must not shift the collectives' sequence.
    pub next_p2p_seq: u64,
    /// Splits made of it so far.
    pub splits: u64,
}

#[derive(Debug, Default)]
pub struct GpuProcess {
    /// Process start (CLOCK_BOOTTIME ns): a reused pid is a new process.
    pub start_ns: u64,
    /// cudaSetDevice's latest device; -1 unknown.
    pub device: i32,
    pub communicators: HashMap<u64, Communicator>,
    /// From the environment; None until read.
    launch: Option<Launch>,
    /// The id hash of the first communicator it joined.
    first_comm: Option<u64>,
}

impl GpuProcess {
    pub fn new(start_ns: u64) -> Self {
        Self { start_ns, device: -1, ..Self::default() }
    }

    /// Reads the job and rank from `pid`'s environment, once.
    pub fn read_environment(&mut self, pid: u32) {
        if self.launch.is_none() {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            self.launch = Some(launch_from_environment(&environ));
        }
    }

    /// The training job: from the environment, else named after the first
    /// communicator; empty while neither is known.
    pub fn job(&self) -> String {
        match (self.launch.as_ref().and_then(|l| l.job.clone()), self.first_comm) {
            (Some(job), _) => job,
            (None, Some(id)) => format!("comm-{id:016x}"),
            (None, None) => String::new(),
        }
    }

    /// It tried to join a communicator (whether or not the init succeeded):
    /// a rank of a training job.
    pub fn is_rank(&self) -> bool {
        self.first_comm.is_some()
    }

    /// The rank in the job its launcher gave it; -1 unknown.
    pub fn global_rank(&self) -> i32 {
        self.launch.as_ref().and_then(|l| l.rank).unwrap_or(-1)
    }

    /// The job's size its launcher gave it; -1 unknown.
    pub fn world_size(&self) -> i32 {
        self.launch.as_ref().and_then(|l| l.world_size).unwrap_or(-1)
    }

    /// The rank in the job, else in its largest communicator whose rank is
    /// known; -1 none.
    pub fn rank(&self) -> i32 {
        if let Some(rank) = self.launch.as_ref().and_then(|l| l.rank) {
            return rank;
        }
        self.communicators.values().filter(|c| c.rank >= 0).max_by_key(|c| (c.nranks, -c.rank)).map_or(-1, |c| c.rank)
    }

    /// A communicator init the process made (whether or not it succeeded).
    pub fn joined(&mut self, handle: u64, id_hash: u64, rank: i32, nranks: i32) {
        if id_hash != 0 {
            self.first_comm.get_or_insert(id_hash);
        }
        if handle != 0 && id_hash != 0 {
            self.communicators
                .insert(handle, Communicator { id_hash, rank, nranks, next_seq: 0, next_p2p_seq: 0, splits: 0 });
        }
    }

    /// A split of `parent` asking for `color`, registered under `handle`
    /// when one was created; None when the parent is not known.
    pub fn split(&mut self, parent: u64, color: i32, handle: u64) -> Option<Split> {
        let parent = self.communicators.get_mut(&parent)?;
        // Every rank of the parent takes part in every split: the count agrees.
        let nth = parent.splits;
        parent.splits += 1;
        let mut split = Split {
            id_hash: 0,
            parent_id_hash: parent.id_hash,
            parent_rank: parent.rank,
            parent_nranks: parent.nranks,
            nth,
        };
        if color < 0 {
            return Some(split);
        }
        split.id_hash = split_id_hash(split.parent_id_hash, color, nth);
        if handle != 0 {
            let id_hash = split.id_hash;
            self.communicators.insert(
                handle,
                Communicator { id_hash, rank: -1, nranks: -1, next_seq: 0, next_p2p_seq: 0, splits: 0 },
            );
        }
        Some(split)
    }

    /// A collective (or, `point_to_point`, a send or receive) on `handle`:
    /// the communicator and the call's sequence on it, or None when the
    /// communicator is not known.
    pub fn collective(&mut self, handle: u64, point_to_point: bool) -> Option<(Communicator, u64)> {
        let comm = self.communicators.get_mut(&handle)?;
        let next = if point_to_point { &mut comm.next_p2p_seq } else { &mut comm.next_seq };
        let seq = *next;
        *next += 1;
        Some((*comm, seq))
    }
}

/// The job and rank named in NUL-separated `KEY=value` bytes.
fn launch_from_environment(environ: &[u8]) -> Launch {
    let variables: Vec<(&[u8], &[u8])> = environ
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            Some((&entry[..eq], &entry[eq + 1..]))
        })
        .collect();
    let first_set = |names: &[&str]| {
        names.iter().find_map(|name| {
            variables
                .iter()
                .find(|(key, value)| *key == name.as_bytes() && !value.is_empty())
                .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        })
    };
    Launch {
        job: first_set(&JOB_VARIABLES),
        rank: first_set(&RANK_VARIABLES).and_then(|rank| rank.trim().parse().ok()).filter(|r: &i32| *r >= 0),
        world_size: first_set(&SIZE_VARIABLES).and_then(|size| size.trim().parse().ok()).filter(|s: &i32| *s > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_is_the_first_variable_set_else_the_first_communicator() {
        let job = |env: &[u8]| launch_from_environment(env).job;
        let env = b"PATH=/bin\0SLURM_JOB_ID=4242\0TORCHELASTIC_RUN_ID=\0HOME=/root\0";
        assert_eq!(job(env).as_deref(), Some("4242"));
        let env = b"SLURM_JOB_ID=4242\0PLUMBLINE_JOB=llama-70b\0";
        assert_eq!(job(env).as_deref(), Some("llama-70b"));
        assert_eq!(job(b"PATH=/bin\0"), None);

        let mut process = GpuProcess::new(1);
        process.launch = Some(Launch::default());
        assert_eq!(process.job(), "");
        process.joined(0, 0xabc, 0, 2);
        process.joined(0x10, 0xdef, 1, 2);
        assert_eq!(process.job(), "comm-0000000000000abc", "a failed init still names the job's communicator");
    }

    #[test]
    fn the_rank_is_the_launcher_s_first_set_variable() {
        let rank = |env: &[u8]| launch_from_environment(env).rank;
        assert_eq!(rank(b"SLURM_PROCID=7\0RANK=1337\0"), Some(1337), "torchrun's RANK before Slurm's");
        assert_eq!(rank(b"OMPI_COMM_WORLD_RANK=12\0PMI_RANK=3\0"), Some(12));
        assert_eq!(rank(b"SLURM_PROCID=5\0"), Some(5));
        assert_eq!(rank(b"RANK=x\0"), None, "not a number");
        assert_eq!(rank(b"LOCAL_RANK=3\0"), None, "a host-local rank is not the job's");
        let env = b"SLURM_NTASKS=64\0WORLD_SIZE=4096\0";
        assert_eq!(launch_from_environment(env).world_size, Some(4096));

        let mut process = GpuProcess::new(1);
        process.launch = Some(Launch { job: None, rank: Some(1337), world_size: Some(4096) });
        process.joined(0x10, 0xaaa, 3, 8);
        assert_eq!((process.global_rank(), process.rank()), (1337, 1337));
    }

    #[test]
    fn collectives_count_per_communicator_and_the_rank_is_the_largest_ones() {
        let mut process = GpuProcess::new(1);
        assert_eq!(process.rank(), -1);
        process.joined(0x10, 0xaaa, 2, 4);
        process.joined(0x20, 0xbbb, 5, 8);
        assert_eq!(process.rank(), 5);
        assert_eq!(process.collective(0x10, false).map(|(_, seq)| seq), Some(0));
        assert_eq!(process.collective(0x10, false).map(|(_, seq)| seq), Some(1));
        assert_eq!(process.collective(0x20, false).map(|(c, seq)| (c.id_hash, c.rank, seq)), Some((0xbbb, 5, 0)));
        assert_eq!(process.collective(0x30, false), None, "never initialised here");
        process.joined(0, 0xccc, 1, 2);
        assert_eq!(process.collective(0, false), None, "a failed init registers no handle");
    }

    #[test]
    fn splits_of_one_parent_agree_across_ranks_by_color_and_order() {
        let (mut rank0, mut rank1) = (GpuProcess::new(1), GpuProcess::new(1));
        rank0.joined(0x10, 0xaaa, 0, 2);
        rank1.joined(0x77, 0xaaa, 1, 2);
        let id = |split: Option<Split>| split.unwrap().id_hash;
        let first = rank0.split(0x10, 3, 0x11).unwrap();
        let first1 = rank1.split(0x77, 3, 0x78).unwrap();
        assert_eq!(first.id_hash, first1.id_hash, "same parent, color and order: same id");
        assert_eq!((first.parent_id_hash, first.nth), (0xaaa, 0));
        assert_eq!(
            (first.parent_rank, first.parent_nranks, first1.parent_rank),
            (0, 2, 1),
            "each caller in the parent"
        );
        let second = id(rank0.split(0x10, 3, 0x12));
        assert_ne!(second, first.id_hash, "the next split of the parent is another communicator");
        assert_ne!(id(rank1.split(0x77, 4, 0x79)), second, "another color, another communicator");
        let (communicator, _) = rank0.collective(0x11, false).unwrap();
        assert_eq!((communicator.id_hash, communicator.rank, communicator.nranks), (first.id_hash, -1, -1));
        assert_eq!(rank0.split(0x99, 3, 0x13), None, "an unknown parent names nothing");
        let no_color = rank0.split(0x10, -1, 0).unwrap();
        assert_eq!(
            (no_color.id_hash, no_color.parent_id_hash, no_color.nth),
            (0, 0xaaa, 2),
            "no color, no communicator"
        );
        assert_ne!(id(rank0.split(0x10, 3, 0x14)), second, "yet it was a split of the parent");
    }
}
