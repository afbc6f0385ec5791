//! Builds one compact [`EventBatch`]: strings interned once, events sorted by
//! time and stored as deltas.

use foldhash::HashMap;

use crate::v1::{event::Body, ClockAnchor, Event, EventBatch, NodeIdentity};
use crate::SCHEMA_VERSION;

/// Who an event is about; `comm_sid` is interned in the same batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Who {
    pub pid: u32,
    pub tid: u32,
    pub cgroup_id: u64,
    pub comm_sid: u32,
    pub process_start_ns: u64,
}

/// What a batch says about where and when it was made.
#[derive(Debug, Clone, Default)]
pub struct BatchHeader {
    pub node: NodeIdentity,
    pub clock: ClockAnchor,
    pub agent_run_id: String,
    pub sequence: u64,
}

/// Collects events and strings for one batch; [`BatchBuilder::finish`] hands
/// the batch out and leaves the builder empty for the next.
#[derive(Debug)]
pub struct BatchBuilder {
    strings: Vec<String>,
    index: HashMap<String, u32>,
    events: Vec<(u64, Event)>,
    string_bytes: usize,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        let mut builder = Self { strings: Vec::new(), index: HashMap::default(), events: Vec::new(), string_bytes: 0 };
        builder.reset();
        builder
    }

    fn reset(&mut self) {
        self.strings.clear();
        self.index.clear();
        self.events.clear();
        self.string_bytes = 0;
        self.intern("");
    }

    /// The index of `s` in this batch's string table.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&sid) = self.index.get(s) {
            return sid;
        }
        let sid = self.strings.len() as u32;
        self.strings.push(s.to_owned());
        self.index.insert(s.to_owned(), sid);
        self.string_bytes += s.len();
        sid
    }

    /// Interns bytes from the kernel, replacing invalid UTF-8.
    pub fn intern_lossy(&mut self, bytes: &[u8]) -> u32 {
        self.intern(&String::from_utf8_lossy(bytes))
    }

    /// An event whose body says which process it is (lifecycle events).
    pub fn push(&mut self, ts_ns: u64, pid: u32, tid: u32, cgroup_id: u64, body: Body) {
        self.push_by(ts_ns, &Who { pid, tid, cgroup_id, ..Who::default() }, body);
    }

    /// An event attributed to a process.
    pub fn push_by(&mut self, ts_ns: u64, who: &Who, body: Body) {
        let event = Event {
            ts_delta_ns: 0,
            pid: who.pid,
            tid: who.tid,
            cgroup_id: who.cgroup_id,
            comm_sid: who.comm_sid,
            process_start_ns: who.process_start_ns,
            body: Some(body),
        };
        self.events.push((ts_ns, event));
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// A cheap estimate of the encoded size, for size-based flushing.
    pub fn approx_bytes(&self) -> usize {
        self.string_bytes + self.strings.len() * 2 + self.events.len() * 24
    }

    pub fn finish(&mut self, header: BatchHeader) -> EventBatch {
        // Ring buffers of several CPUs interleave slightly out of order; a
        // sorted batch keeps deltas small and readers simple.
        self.events.sort_by_key(|(ts, _)| *ts);
        let base_ts_ns = self.events.first().map_or(0, |(ts, _)| *ts);
        let mut previous = base_ts_ns;
        let events = self
            .events
            .drain(..)
            .map(|(ts, mut event)| {
                event.ts_delta_ns = (ts as i128 - previous as i128) as i64;
                previous = ts;
                event
            })
            .collect();
        let batch = EventBatch {
            schema_version: SCHEMA_VERSION,
            node: Some(header.node),
            clock: Some(header.clock),
            agent_run_id: header.agent_run_id,
            sequence: header.sequence,
            base_ts_ns,
            strings: std::mem::take(&mut self.strings),
            events,
        };
        self.reset();
        batch
    }
}
