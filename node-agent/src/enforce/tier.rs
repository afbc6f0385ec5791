//! What this node can enforce, found out at start and shown everywhere
//! (log, `/metrics`):
//! - `lsm`: BPF LSM hooks refuse execs and file operations before the
//!   effect (EPERM); the network is refused by cgroup sock_addr programs
//!   before any packet leaves.
//! - `fallback` (no BPF LSM): the same network programs; execs and opens the
//!   role does not allow kill the process once they succeeded
//!   (`killed_after`): the open itself happened, with its O_CREAT/O_TRUNC
//!   effects; io_uring opens, unlink and rename are not seen.
//! - `observe`: no policy is loaded.
//!
//! `bpf` among the kernel's active LSMs is required for `lsm` and is not
//! proof: with `lsm=` lacking `bpf` a kernel may still load and attach LSM
//! programs that never run, so the agent proves they run ([`lsm_runs`]) and
//! else falls back, saying why.

use anyhow::{bail, Context};
use aya::{maps::Array, Ebpf};

/// The enforcement tier of this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Lsm,
    Fallback,
    Observe,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Lsm => "lsm",
            Tier::Fallback => "fallback",
            Tier::Observe => "observe",
        }
    }

    /// What the tier does, and what it cannot cover.
    pub fn summary(self) -> &'static str {
        match self {
            Tier::Lsm => {
                "execs, opens, creations, removals and renames refused before the effect (BPF LSM, EPERM); network \
                 connects and sends refused before any packet leaves"
            }
            Tier::Fallback => {
                "network connects and sends refused before any packet leaves; execs killed before the new program \
                 runs and opens killed once they succeeded (killed_after: the open happened, with its O_CREAT and \
                 O_TRUNC effects); io_uring opens, unlink and rename not covered"
            }
            Tier::Observe => "no enforcement policy: observing only",
        }
    }
}

/// `bpf` is among `/sys/kernel/security/lsm`.
pub fn bpf_lsm_listed() -> bool {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    lsm.trim().split(',').any(|name| name == "bpf")
}

/// Proves the enforce object's LSM programs run: the `file_open` program
/// counts this process's opens once its tgid is in `lsm_probe`.
pub fn lsm_runs(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let map = ebpf.map_mut("lsm_probe").context("the enforce object has no map lsm_probe")?;
    let mut probe: Array<_, u64> = Array::try_from(map)?;
    probe.set(0, u64::from(std::process::id()), 0)?;
    std::fs::File::open("/proc/self/stat").context("opening a file to prove the LSM programs run")?;
    let opens = probe.get(&1, 0)?;
    probe.set(0, 0, 0)?;
    if opens == 0 {
        bail!("the lsm/file_open program attached but did not run on an open (is `bpf` missing from `lsm=`?)");
    }
    Ok(())
}

/// The tier, and what the kernel says of BPF LSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierReport {
    pub tier: Tier,
    /// `bpf` is among `/sys/kernel/security/lsm`.
    pub bpf_lsm_listed: bool,
}

impl TierReport {
    /// `enforcing`: the tier the enforce object was loaded at, if it was.
    pub fn detect(enforcing: Option<Tier>) -> Self {
        let report = Self { tier: enforcing.unwrap_or(Tier::Observe), bpf_lsm_listed: bpf_lsm_listed() };
        match report.tier {
            Tier::Observe => tracing::debug!(tier = report.tier.name(), "{}", report.tier.summary()),
            tier => tracing::info!(
                tier = tier.name(),
                bpf_lsm_listed = report.bpf_lsm_listed,
                "enforcement: {}",
                tier.summary()
            ),
        }
        report
    }
}
