//! Kernel-side cost of a tracer: the run time and run count the kernel keeps
//! for every BPF program while statistics are on (`BPF_ENABLE_STATS`).
//! A tracer's programs are the ones loaded after it started.

use std::{collections::HashMap, os::fd::OwnedFd, time::Duration};

/// Keeps the kernel's BPF run-time statistics on while held.
pub struct StatsOn(#[allow(dead_code)] OwnedFd);

pub fn enable() -> anyhow::Result<StatsOn> {
    Ok(StatsOn(aya::sys::enable_stats(aya::sys::Stats::RunTime)?))
}

/// Run time and count of every loaded program, by program id.
#[derive(Debug, Clone, Default)]
pub struct Programs(HashMap<u32, (Duration, u64)>);

impl Programs {
    pub fn now() -> anyhow::Result<Self> {
        let mut programs = HashMap::new();
        for info in aya::programs::loaded_programs() {
            // A program may be unloaded between listing and reading it.
            let Ok(info) = info else { continue };
            programs.insert(info.id(), (info.run_time(), info.run_count()));
        }
        Ok(Self(programs))
    }

    /// Programs present now and not in `before`.
    pub fn loaded_since(&self, before: &Programs) -> Vec<u32> {
        self.0.keys().filter(|id| !before.0.contains_key(id)).copied().collect()
    }

    /// Run time and runs of `ids` from `earlier` to `self`.
    pub fn spent_since(&self, earlier: &Programs, ids: &[u32]) -> Spent {
        let mut spent = Spent::default();
        for id in ids {
            let (Some(now), start) = (self.0.get(id), earlier.0.get(id).copied().unwrap_or_default()) else {
                continue;
            };
            spent.run_time += now.0.saturating_sub(start.0);
            spent.runs += now.1.saturating_sub(start.1);
        }
        spent
    }
}

/// What a set of programs cost the kernel over an interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub run_time: Duration,
    pub runs: u64,
}
