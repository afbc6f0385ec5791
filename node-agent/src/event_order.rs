//! Records in event-time order across the rings.
//!
//! Each family has a ring of its own (a file flood never crowds out process
//! records), so the order in which the agent reads records is not the order
//! things happened: a program's exec can be read after its first open, and the
//! open would be told of the process as it was before the exec (another name).
//! So a drain reads every ring first, then releases, oldest first, the records
//! stamped before the drain began, less `slack` (the time a BPF program may
//! take between stamping a record and committing it to its ring); the rest
//! wait for the next drain. What is released is then complete: no record
//! stamped at or before [`EventOrder::ordered_to`] can still be unread.
//!
//! Calls into CUDA and NCCL are stamped at their entry and sent at their
//! return, so they can arrive after later records were released: they are
//! released at once. Any other record that does is counted as late.

use plumbline_ebpf::{abi::kind, record::peek_header};

#[derive(Clone, Copy)]
struct Held {
    ts_ns: u64,
    start: usize,
    len: usize,
}

/// A drain's records are copied out of the rings (which frees them for the
/// kernel) into buffers kept from one drain to the next.
pub struct EventOrder {
    slack_ns: u64,
    /// Bytes of the held records, back to back.
    bytes: Vec<u8>,
    held: Vec<Held>,
    /// Where the records still waiting go after a release.
    spare_bytes: Vec<u8>,
    spare_held: Vec<Held>,
    ordered_to: u64,
}

/// Buffers are given back to the allocator after a burst above this.
const KEEP_BYTES: usize = 4 << 20;

/// Records released by one drain, oldest first. The records still waiting
/// are kept when it is dropped.
pub struct Released<'a> {
    order: &'a mut EventOrder,
    ready: usize,
}

impl Released<'_> {
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.order.held[..self.ready].iter().map(|r| &self.order.bytes[r.start..r.start + r.len])
    }
}

impl Drop for Released<'_> {
    fn drop(&mut self) {
        let order = &mut *self.order;
        order.spare_bytes.clear();
        order.spare_held.clear();
        for h in &order.held[self.ready..] {
            let start = order.spare_bytes.len();
            order.spare_bytes.extend_from_slice(&order.bytes[h.start..h.start + h.len]);
            order.spare_held.push(Held { start, ..*h });
        }
        std::mem::swap(&mut order.bytes, &mut order.spare_bytes);
        std::mem::swap(&mut order.held, &mut order.spare_held);
        order.spare_bytes.clear();
        order.spare_bytes.shrink_to(KEEP_BYTES);
    }
}

/// Kinds stamped when the call they describe began, not when sent.
fn stamped_at_entry(kind: u16) -> bool {
    matches!(kind, kind::CUDA | kind::NCCL)
}

impl EventOrder {
    pub fn new(slack_ns: u64) -> Self {
        Self {
            slack_ns,
            bytes: Vec::new(),
            held: Vec::new(),
            spare_bytes: Vec::new(),
            spare_held: Vec::new(),
            ordered_to: 0,
        }
    }

    /// Every record stamped at or before this has been released.
    pub fn ordered_to(&self) -> u64 {
        self.ordered_to
    }

    /// Records read and not yet released.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Keeps a record read from a ring; true when it is late (stamped at or
    /// before what was already released). One too short to carry a header
    /// goes out first, for the parser to refuse.
    pub fn hold(&mut self, record: &[u8]) -> bool {
        let (ts_ns, late) = match peek_header(record) {
            Some(h) => (h.ts_boot_ns, h.ts_boot_ns <= self.ordered_to && !stamped_at_entry(h.kind)),
            None => (0, false),
        };
        self.held.push(Held { ts_ns, start: self.bytes.len(), len: record.len() });
        self.bytes.extend_from_slice(record);
        late
    }

    /// Releases, oldest first, the records stamped at or before `slack`
    /// before `drain_started_ns`, every ring having been read after it.
    pub fn release(&mut self, drain_started_ns: u64) -> Released<'_> {
        self.release_to(drain_started_ns.saturating_sub(self.slack_ns))
    }

    /// Releases every record held (the last drain).
    pub fn release_all(&mut self) -> Released<'_> {
        self.release_to(u64::MAX)
    }

    fn release_to(&mut self, horizon: u64) -> Released<'_> {
        // Stable: records stamped in the same nanosecond keep their ring order.
        self.held.sort_by_key(|h| h.ts_ns);
        let ready = self.held.partition_point(|h| h.ts_ns <= horizon);
        self.ordered_to = self.ordered_to.max(horizon);
        Released { order: self, ready }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_ebpf::abi::EventHeader;

    fn record(ts_ns: u64, kind: u16, tag: u8) -> Vec<u8> {
        let header = EventHeader { ts_boot_ns: ts_ns, cgroup_id: 0, pid: 1, tid: 1, kind, size: 33, _pad0: 0 };
        let mut bytes = bytemuck::bytes_of(&header).to_vec();
        bytes.push(tag);
        bytes
    }

    fn tags(released: &Released) -> Vec<u8> {
        released.iter().map(|r| r[r.len() - 1]).collect()
    }

    #[test]
    fn records_of_two_rings_come_out_in_the_order_they_happened() {
        let mut order = EventOrder::new(10);
        // The file ring is read first: its open was stamped after the exec.
        let late = [(200, kind::FILE_OPEN, b'o'), (500, kind::FILE_OPEN, b'l'), (100, kind::PROC_EXEC, b'e')]
            .into_iter()
            .chain([(300, kind::PROC_EXIT, b'x')])
            .map(|(ts, kind, tag)| order.hold(&record(ts, kind, tag)))
            .filter(|late| *late)
            .count();
        assert_eq!(late, 0);
        assert_eq!(tags(&order.release(410)), b"eox");
        assert_eq!(order.ordered_to(), 400);
        assert_eq!(order.held(), 1);
        assert_eq!(tags(&order.release_all()), b"l");
        assert_eq!(order.ordered_to(), u64::MAX);
    }

    #[test]
    fn a_record_after_its_time_was_released_goes_out_next_and_is_counted() {
        let mut order = EventOrder::new(0);
        order.hold(&record(100, kind::FILE_OPEN, b'a'));
        assert_eq!(tags(&order.release(150)), b"a");
        assert!(order.hold(&record(120, kind::PROC_EXEC, b'b')), "stamped before what was released");
        assert!(!order.hold(&record(110, kind::NCCL, b'c')), "an NCCL call is stamped at its entry");
        assert!(!order.hold(&record(160, kind::FILE_OPEN, b'd')));
        assert_eq!(tags(&order.release(200)), b"cbd");
    }

    #[test]
    fn same_time_keeps_read_order_and_a_torn_record_goes_first() {
        let mut order = EventOrder::new(0);
        order.hold(&record(100, kind::FILE_OPEN, b'a'));
        order.hold(&record(100, kind::FILE_UNLINK, b'b'));
        order.hold(&[1, 2, 3]);
        let released = order.release(100);
        assert_eq!(released.iter().count(), 3);
        assert_eq!(released.iter().next().unwrap(), &[1, 2, 3]);
        assert_eq!(tags(&released)[1..], *b"ab");
        drop(released);
        assert_eq!(order.held(), 0);
    }
}
