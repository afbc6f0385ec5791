//! Reads an [`EventBatch`] back: checks it, resolves interned strings and
//! turns delta timestamps into absolute ones.

use crate::clock::wall_ns;
use crate::v1::{ClockAnchor, Event, EventBatch, NodeIdentity};
use crate::SCHEMA_VERSION;

/// Why a batch (or an event in it) cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("schema version {found} is not supported (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion { found: u32 },
    #[error("batch has no node identity (host and boot id)")]
    MissingNode,
    #[error("batch has no clock anchor")]
    MissingClock,
    #[error("string table does not start with the empty string")]
    BadStringTable,
    #[error("event {index} refers to string {sid}, but the batch has {len} strings")]
    BadStringRef { index: usize, sid: u32, len: usize },
    #[error("event {index} has no body")]
    MissingBody { index: usize },
    #[error("event {index} has a timestamp outside the clock's range")]
    BadTimestamp { index: usize },
}

/// A checked view of one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchReader<'a> {
    batch: &'a EventBatch,
    node: &'a NodeIdentity,
    clock: &'a ClockAnchor,
}

/// One event with its absolute time.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub index: usize,
    /// CLOCK_BOOTTIME ns on the node.
    pub ts_ns: u64,
    pub event: &'a Event,
}

impl<'a> BatchReader<'a> {
    pub fn new(batch: &'a EventBatch) -> Result<Self, BatchError> {
        if batch.schema_version != SCHEMA_VERSION {
            return Err(BatchError::UnsupportedVersion { found: batch.schema_version });
        }
        let node = batch.node.as_ref().filter(|n| !n.host.is_empty() && !n.boot_id.is_empty());
        let node = node.ok_or(BatchError::MissingNode)?;
        let clock = batch.clock.as_ref().ok_or(BatchError::MissingClock)?;
        if batch.strings.first().map(String::as_str) != Some("") {
            return Err(BatchError::BadStringTable);
        }
        Ok(Self { batch, node, clock })
    }

    pub fn batch(&self) -> &'a EventBatch {
        self.batch
    }

    pub fn node(&self) -> &'a NodeIdentity {
        self.node
    }

    pub fn clock(&self) -> &'a ClockAnchor {
        self.clock
    }

    /// Wall-clock ns for a boot-time stamp of this node.
    pub fn wall_ns(&self, boot_ns: u64) -> u64 {
        wall_ns(self.clock, boot_ns)
    }

    /// The interned string `sid`, for event `index` (named in the error).
    pub fn str(&self, index: usize, sid: u32) -> Result<&'a str, BatchError> {
        self.batch.strings.get(sid as usize).map(String::as_str).ok_or(BatchError::BadStringRef {
            index,
            sid,
            len: self.batch.strings.len(),
        })
    }

    pub fn strs(&self, index: usize, sids: &[u32]) -> Result<Vec<String>, BatchError> {
        sids.iter().map(|&sid| self.str(index, sid).map(str::to_owned)).collect()
    }

    /// Every event with its absolute timestamp, in batch order.
    pub fn events(&self) -> impl Iterator<Item = Result<EventRef<'a>, BatchError>> + 'a {
        let mut ts = self.batch.base_ts_ns as i128;
        self.batch.events.iter().enumerate().map(move |(index, event)| {
            ts += event.ts_delta_ns as i128;
            if event.body.is_none() {
                return Err(BatchError::MissingBody { index });
            }
            let ts_ns = u64::try_from(ts).map_err(|_| BatchError::BadTimestamp { index })?;
            Ok(EventRef { index, ts_ns, event })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{event::Body, ProcessExit};
    use crate::{BatchBuilder, BatchHeader};

    fn header() -> BatchHeader {
        BatchHeader {
            node: NodeIdentity { host: "node-a".into(), boot_id: "b1".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: 1_000_000, uncertainty_ns: 0 },
            agent_run_id: "run".into(),
            sequence: 7,
        }
    }

    fn exit(comm_sid: u32) -> Body {
        Body::Exit(ProcessExit { comm_sid, exit_code: 7, ..Default::default() })
    }

    #[test]
    fn events_come_back_sorted_with_absolute_times_and_strings_interned_once() {
        let mut builder = BatchBuilder::new();
        let sh = builder.intern("sh");
        assert_eq!(builder.intern("sh"), sh);
        builder.push(300, 1, 1, 0, exit(sh));
        builder.push(100, 2, 2, 0, exit(sh));
        let make = builder.intern("make");
        builder.push(200, 3, 3, 0, exit(make));
        let batch = builder.finish(header());
        assert_eq!(batch.strings, vec!["", "sh", "make"]);
        assert_eq!(batch.base_ts_ns, 100);
        let reader = BatchReader::new(&batch).unwrap();
        let seen: Vec<(u64, u32)> = reader.events().map(|e| e.unwrap()).map(|e| (e.ts_ns, e.event.pid)).collect();
        assert_eq!(seen, vec![(100, 2), (200, 3), (300, 1)]);
        assert_eq!(reader.wall_ns(300), 1_000_300);
        assert!(builder.is_empty(), "finish leaves the builder empty");
        assert_eq!(builder.intern("x"), 1, "and with a fresh string table");
    }

    #[test]
    fn a_reference_past_the_string_table_is_an_error_naming_the_event() {
        let mut builder = BatchBuilder::new();
        builder.push(1, 1, 1, 0, exit(0));
        let batch = builder.finish(header());
        let reader = BatchReader::new(&batch).unwrap();
        assert_eq!(reader.str(0, 9), Err(BatchError::BadStringRef { index: 0, sid: 9, len: 1 }));
    }

    #[test]
    fn batches_without_node_or_of_another_version_are_refused() {
        let mut batch = BatchBuilder::new().finish(header());
        batch.node = None;
        assert_eq!(BatchReader::new(&batch).unwrap_err(), BatchError::MissingNode);
        let mut batch = BatchBuilder::new().finish(header());
        batch.schema_version = 2;
        assert_eq!(BatchReader::new(&batch).unwrap_err(), BatchError::UnsupportedVersion { found: 2 });
    }

    #[test]
    fn a_timestamp_going_below_zero_is_an_error() {
        let mut builder = BatchBuilder::new();
        builder.push(5, 1, 1, 0, exit(0));
        let mut batch = builder.finish(header());
        batch.events[0].ts_delta_ns = -10;
        let reader = BatchReader::new(&batch).unwrap();
        assert_eq!(reader.events().next().unwrap().unwrap_err(), BatchError::BadTimestamp { index: 0 });
    }
}
