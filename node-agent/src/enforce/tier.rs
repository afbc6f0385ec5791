//! What this node can enforce, found out at start and shown everywhere
//! (log, `/metrics`): `fallback` when a policy is loaded (network refused by
//! cgroup sock_addr programs, exec killed at sched_process_exec), `observe`
//! when none is.
//!
//! BPF LSM hooks would refuse exec and file opens before the effect; this
//! agent does not load them yet, so it never claims the `lsm` tier, whatever
//! the kernel offers. Whether the kernel lists `bpf` among its active LSMs is
//! reported beside the tier (listed is not proof: a kernel without BPF
//! trampolines lists it and refuses every LSM program).

/// The enforcement tier of this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Fallback,
    Observe,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Fallback => "fallback",
            Tier::Observe => "observe",
        }
    }
}

/// The tier, and what the kernel says of BPF LSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierReport {
    pub tier: Tier,
    /// `bpf` is among `/sys/kernel/security/lsm`.
    pub bpf_lsm_listed: bool,
}

impl TierReport {
    /// `enforcing`: the enforce object is loaded with a policy.
    pub fn detect(enforcing: bool) -> Self {
        let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
        let report = Self {
            tier: if enforcing { Tier::Fallback } else { Tier::Observe },
            bpf_lsm_listed: lsm.trim().split(',').any(|name| name == "bpf"),
        };
        match report.tier {
            Tier::Fallback => tracing::info!(
                tier = report.tier.name(),
                bpf_lsm_listed = report.bpf_lsm_listed,
                "enforcement: network connects and sends refused before any packet leaves; execs killed before the \
                 new program runs (killed_after); file opens not enforced"
            ),
            Tier::Observe => tracing::debug!(tier = report.tier.name(), "no enforcement policy: observing only"),
        }
        report
    }
}
