//! Reads the BPF programs' per-CPU (kind, outcome) counters. Totals feed the
//! agent's statistics; every increase of a loss outcome becomes a loss
//! marker, so storage shows a gap where events were dropped.

use aya::maps::{MapData, PerCpuArray};
use plumbline_ebpf::abi::{counter_index, kind, outcome};

/// Kinds this agent's objects emit.
const KINDS: &[u16] = &[kind::PROC_EXEC, kind::PROC_FORK, kind::PROC_EXIT, kind::PROC_EXEC_FAILED];

/// Events of one kind lost on one CPU between two reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLoss {
    pub kind: &'static str,
    pub cpu: u32,
    pub count: u64,
    pub from_ns: u64,
    pub to_ns: u64,
}

/// Sum over CPUs of one (kind, outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterTotal {
    pub kind: &'static str,
    pub outcome: &'static str,
    pub value: u64,
}

pub struct KernelCounters {
    map: PerCpuArray<MapData, u64>,
    /// Last value per (kind index, cpu) of the ring-full outcome.
    last_lost: Vec<Vec<u64>>,
    last_read_ns: u64,
}

impl KernelCounters {
    pub fn new(map: PerCpuArray<MapData, u64>, now_ns: u64) -> Self {
        Self { map, last_lost: vec![Vec::new(); KINDS.len()], last_read_ns: now_ns }
    }

    /// Losses since the previous call.
    pub fn losses(&mut self, now_ns: u64) -> Result<Vec<KernelLoss>, aya::maps::MapError> {
        let mut losses = Vec::new();
        for (i, &k) in KINDS.iter().enumerate() {
            let values = self.map.get(&counter_index(k, outcome::RINGBUF_FULL), 0)?;
            let last = &mut self.last_lost[i];
            last.resize(values.len(), 0);
            for (cpu, (&now, before)) in values.iter().zip(last.iter_mut()).enumerate() {
                if now > *before {
                    losses.push(KernelLoss {
                        kind: kind::name(k).unwrap_or("unknown"),
                        cpu: cpu as u32,
                        count: now - *before,
                        from_ns: self.last_read_ns,
                        to_ns: now_ns,
                    });
                }
                *before = now;
            }
        }
        self.last_read_ns = now_ns;
        Ok(losses)
    }

    /// Every (kind, outcome) total, for statistics.
    pub fn totals(&self) -> Result<Vec<CounterTotal>, aya::maps::MapError> {
        let mut totals = Vec::new();
        for &k in KINDS {
            for o in 0..outcome::MAX {
                let value = self.map.get(&counter_index(k, o), 0)?.iter().sum();
                totals.push(CounterTotal {
                    kind: kind::name(k).unwrap_or("unknown"),
                    outcome: outcome::name(o),
                    value,
                });
            }
        }
        Ok(totals)
    }
}
