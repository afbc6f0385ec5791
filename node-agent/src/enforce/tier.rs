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

    /// What the tier enforces, in one sentence.
    pub fn summary(self) -> &'static str {
        match self {
            Tier::Lsm => {
                "execs, opens, creations, removals, renames and links refused before the effect (BPF LSM, EPERM); \
                 network connects and sends refused before any packet leaves"
            }
            Tier::Fallback => {
                "network connects and sends refused before any packet leaves; execs and opens killed once they \
                 succeeded (killed_after)"
            }
            Tier::Observe => "no enforcement policy: observing only",
        }
    }

    /// What a node at this tier cannot cover, one sentence each.
    pub fn caveats(self) -> &'static [&'static str] {
        const NAMES: &str = "network: a host name is allowed by the addresses the agent resolved it to (at load and \
                             every minute) and by those the DNS answers to the workload gave it, read in the kernel \
                             before the workload sees them; an answer whose records the kernel cannot read (more than \
                             8 answers, an owner name neither a pointer nor the question) leaves its addresses refused";
        const FILES: &str = "files: a rule's path is matched by inode, so it must exist when the policy is written \
                             (paths created later are added within a minute); a file is judged by the path it is \
                             opened through";
        const WORKLOADS: &str = "workloads: a [[workloads]] rule enrols a process a few milliseconds after its exec \
                                 (what it did before is not confined); `plumbline enforce wrap` confines from the \
                                 first instruction";
        const RATE: &str = "llm rate: a request is counted at OpenSSL's write (SSL_write, SSL_write_ex) when it \
                            starts an HTTP/1.x request on a TLS connection to an LLM endpoint host; HTTP/2 requests \
                            and other TLS libraries (Go crypto/tls, GnuTLS, NSS, rustls) are not counted; `deny` \
                            refuses the process's new connections only: a request on a connection already open is \
                            not stopped; `hold` stops every thread of the process (SIGSTOP), and its peers may time out";
        match self {
            Tier::Lsm => &[FILES, NAMES, WORKLOADS, RATE],
            Tier::Fallback => &[
                "exec: a disallowed exec is killed once it succeeded (SIGKILL, exit status 137), not refused with \
                 EPERM; the new program runs no instruction",
                "files: a disallowed open is killed once it succeeded: the open happened, with its O_CREAT and \
                 O_TRUNC effects",
                "files: io_uring opens, unlink, rename and link are not covered",
                FILES,
                NAMES,
                WORKLOADS,
                RATE,
            ],
            Tier::Observe => &["nothing is enforced: no policy is loaded"],
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
                caveats = ?tier.caveats(),
                "enforcement: {}",
                tier.summary()
            ),
        }
        report
    }
}
