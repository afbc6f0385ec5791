//! Reads the BPF objects' per-CPU (kind, outcome) counters. Totals feed the
//! agent's metrics; every increase of a loss outcome (ring full) becomes a
//! loss marker, so storage shows a gap where events were dropped.

use std::collections::HashMap;

use aya::maps::{MapData, PerCpuArray};
use plumbline_ebpf::abi::{counter_index, kind, outcome};

/// Events of one kind lost on one CPU between two reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLoss {
    pub kind: &'static str,
    pub cpu: u32,
    pub count: u64,
    pub from_ns: u64,
    pub to_ns: u64,
}

/// Sum over CPUs of one (object, kind, outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterTotal {
    pub object: &'static str,
    pub kind: &'static str,
    pub outcome: &'static str,
    pub value: u64,
}

/// Kinds with a name, i.e. every kind this agent knows.
fn known_kinds() -> impl Iterator<Item = (u16, &'static str)> {
    (0..kind::MAX).filter_map(|k| kind::name(k).map(|name| (k, name)))
}

pub struct KernelCounters {
    maps: Vec<(&'static str, PerCpuArray<MapData, u64>)>,
    /// Last ring-full value per (object, kind, cpu).
    last_lost: HashMap<(&'static str, u16, usize), u64>,
    last_read_ns: u64,
}

impl KernelCounters {
    pub fn new(maps: Vec<(&'static str, PerCpuArray<MapData, u64>)>, now_ns: u64) -> Self {
        Self { maps, last_lost: HashMap::new(), last_read_ns: now_ns }
    }

    /// Losses since the previous call.
    pub fn losses(&mut self, now_ns: u64) -> Result<Vec<KernelLoss>, aya::maps::MapError> {
        let mut losses = Vec::new();
        for (object, map) in &self.maps {
            for (k, name) in known_kinds() {
                let values = map.get(&counter_index(k, outcome::RINGBUF_FULL), 0)?;
                for (cpu, &now) in values.iter().enumerate() {
                    let before = self.last_lost.entry((object, k, cpu)).or_insert(0);
                    if now > *before {
                        losses.push(KernelLoss {
                            kind: name,
                            cpu: cpu as u32,
                            count: now - *before,
                            from_ns: self.last_read_ns,
                            to_ns: now_ns,
                        });
                        *before = now;
                    }
                }
            }
        }
        self.last_read_ns = now_ns;
        Ok(losses)
    }

    /// Every non-zero (object, kind, outcome) total.
    pub fn totals(&self) -> Result<Vec<CounterTotal>, aya::maps::MapError> {
        let mut totals = Vec::new();
        for (object, map) in &self.maps {
            for (k, name) in known_kinds() {
                for o in 0..outcome::MAX {
                    let value: u64 = map.get(&counter_index(k, o), 0)?.iter().sum();
                    if value > 0 {
                        totals.push(CounterTotal { object, kind: name, outcome: outcome::name(o), value });
                    }
                }
            }
        }
        Ok(totals)
    }
}
