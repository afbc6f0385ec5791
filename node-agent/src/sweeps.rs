//! What the kernel accumulates in maps rather than records, reported as
//! deltas: write volume per file and IPC bytes and blocked time per channel
//! (the IO accounting), and the opens folded into an earlier one's count.
//!
//! The kernel's totals only grow; the agent remembers what it last saw and
//! sends the difference, so nothing is lost between a read and a reset.
//! Entries of processes that have exited are removed after their last report.
//!
//! A sweep runs right after a drain and is told how far the records are read
//! in event-time order (`ordered_to`). An accounting entry is reported once
//! its first call is within that horizon: by then the open that named the
//! file and the exec that named the process have been read, however late
//! their records arrived. Each report is stamped with the entry's last call
//! (not the sweep), so reports of two files are two rows even when both had
//! the same inode number.

use foldhash::HashMap;

use aya::maps::{HashMap as BpfHashMap, IterableMap, MapData};
use plumbline_ebpf::abi::{io_kind, IoKey, IoStats, OpenKey, OpenRepeats};
use plumbline_proto::{
    v1::{event::Body, file_event::Op, ipc_event, FileEvent, FileWrites, IpcEvent},
    BatchBuilder,
};

use crate::{
    file_paths::{unseen_name, PathCache},
    process_table::ProcessTable,
};

/// The sweeps of the objects that are loaded.
#[derive(Default)]
pub struct Sweeps {
    /// IO accounting; `None` when neither file nor IPC capture is on.
    pub io: Option<IoSweep>,
    /// Open repeats; `None` when file capture is off.
    pub repeats: Option<RepeatSweep>,
}

impl Sweeps {
    /// Sweeps each map; returns false when the IO accounting map was full
    /// (see [`IoSweep::sweep`]).
    pub fn sweep(
        &mut self,
        table: &ProcessTable,
        paths: &mut PathCache,
        batch: &mut BatchBuilder,
        now_ns: u64,
        ordered_to: u64,
    ) -> bool {
        let room = self.io.as_mut().is_none_or(|io| io.sweep(table, paths, batch, now_ns, ordered_to));
        if let Some(repeats) = &mut self.repeats {
            repeats.sweep(table, paths, batch, ordered_to);
        }
        room
    }
}

/// What was last reported of an accounting entry.
#[derive(Clone, Copy, Default)]
struct Reported {
    stats: IoStats,
    /// The report's event time: its entry's last call, made unique per entry.
    ts_ns: u64,
    /// When the sweep that reported it read the map.
    read_ns: u64,
}

/// The IO accounting map and what was last reported of it.
pub struct IoSweep {
    map: BpfHashMap<MapData, IoKey, IoStats>,
    /// The map's size: the kernel pushes the least recently written entry
    /// out to make room beyond it.
    capacity: usize,
    reported: HashMap<IoKey, Reported>,
}

impl IoSweep {
    pub fn new(map: BpfHashMap<MapData, IoKey, IoStats>) -> Self {
        let capacity = map.map().info().map_or(usize::MAX, |info| info.max_entries() as usize);
        Self { map, capacity, reported: HashMap::default() }
    }

    /// Reports what changed; returns false when the map was full, so that
    /// totals written since the last sweep may have been pushed out.
    pub fn sweep(
        &mut self,
        table: &ProcessTable,
        paths: &mut PathCache,
        batch: &mut BatchBuilder,
        now_ns: u64,
        ordered_to: u64,
    ) -> bool {
        let entries: Vec<(IoKey, IoStats)> = self.map.iter().filter_map(Result::ok).collect();
        let room = entries.len() < self.capacity;
        // Rebuilt from the map each time: an entry the kernel let go is forgotten.
        let mut reported = HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut gone = Vec::new();
        for (key, now) in entries {
            // A different start means the kernel dropped the entry and made it again.
            let before = self.reported.get(&key).filter(|r| r.stats.first_ns == now.first_ns).copied();
            if key.kind == io_kind::FILE && before.is_none() {
                // Its descriptor may be closed by the time it is reported.
                paths.learn_unseen((key.dev, key.ino, key.gen_), key.tgid);
            }
            if now.first_ns > ordered_to {
                continue; // the records before its first call are not all read yet
            }
            let before = before.unwrap_or_default();
            match report(table, paths, batch, &key, &now, &before) {
                Some(ts_ns) => {
                    reported.insert(key, Reported { stats: now, ts_ns, read_ns: now_ns });
                }
                None => {
                    reported.insert(key, before);
                }
            }
            if table.get(key.tgid).is_none_or(|p| p.exit_ns.is_some()) {
                gone.push(key);
            }
        }
        for key in gone {
            let _ = self.map.remove(&key);
            reported.remove(&key);
        }
        self.reported = reported;
        room
    }
}

/// Adds what changed in an entry since `before`; returns the report's time,
/// or `None` when nothing did.
fn report(
    table: &ProcessTable,
    paths: &PathCache,
    batch: &mut BatchBuilder,
    key: &IoKey,
    now: &IoStats,
    before: &Reported,
) -> Option<u64> {
    let was = &before.stats;
    let delta = |a: u64, b: u64| a.saturating_sub(b);
    let (written, read) = (delta(now.bytes_written, was.bytes_written), delta(now.bytes_read, was.bytes_read));
    let (writes, reads) = (delta(now.writes, was.writes), delta(now.reads, was.reads));
    if written + read + writes + reads == 0 {
        return None;
    }
    let ts_ns = now.last_ns.max(before.ts_ns + 1);
    let window_start_ns = if before.read_ns == 0 { now.first_ns } else { before.read_ns };
    let body = match key.kind {
        io_kind::FILE => {
            let file = (key.dev, key.ino, key.gen_);
            let path_sid = match paths.file(file, key.tgid) {
                Some(path) => batch.intern(path),
                None => batch.intern(&unseen_name(file)),
            };
            Body::FileWrites(FileWrites {
                path_sid,
                bytes: written,
                calls: writes as u32,
                window_start_ns,
                dev: key.dev,
                ino: key.ino,
            })
        }
        kind => {
            let unix = kind == io_kind::UNIX;
            let name = if unix { paths.socket(key.ino).unwrap_or("").to_string() } else { String::new() };
            Body::Ipc(IpcEvent {
                kind: if unix { ipc_event::Kind::UnixSocket } else { ipc_event::Kind::Pipe } as i32,
                op: ipc_event::Op::Io as i32,
                peer_pid: now.peer_tgid,
                object_id: key.ino,
                name_sid: batch.intern(&name),
                bytes_written: written,
                bytes_read: read,
                write_blocked_ns: delta(now.write_blocked_ns, was.write_blocked_ns),
                read_blocked_ns: delta(now.read_blocked_ns, was.read_blocked_ns),
                writes,
                reads,
                peer_object_id: now.peer_ino,
                window_start_ns,
                result: 0,
            })
        }
    };
    let who = table.who(key.tgid, key.tgid, 0, batch);
    batch.push_by(ts_ns, &who, body);
    Some(ts_ns)
}

/// The open-repeats map and what was already reported of each entry.
pub struct RepeatSweep {
    map: BpfHashMap<MapData, OpenKey, OpenRepeats>,
    /// Repeats reported, and that report's event time.
    reported: HashMap<OpenKey, (u64, u64)>,
}

impl RepeatSweep {
    pub fn new(map: BpfHashMap<MapData, OpenKey, OpenRepeats>) -> Self {
        Self { map, reported: HashMap::default() }
    }

    pub fn sweep(&mut self, table: &ProcessTable, paths: &PathCache, batch: &mut BatchBuilder, ordered_to: u64) {
        let entries: Vec<(OpenKey, OpenRepeats)> = self.map.iter().filter_map(Result::ok).collect();
        // Rebuilt from the map each time: an entry the kernel let go is forgotten.
        let mut still = HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut gone = Vec::new();
        for (key, repeats) in entries {
            let (mut reported, last_ts) = self.reported.get(&key).copied().unwrap_or((0, 0));
            if repeats.repeats < reported {
                reported = 0; // the kernel dropped the entry and made it again
            }
            still.insert(key, (reported, last_ts));
            if repeats.repeats > reported {
                let path_sid = match paths.open(&key) {
                    Some(path) => batch.intern(path),
                    // The open that started the window is not read yet.
                    None if repeats.window_start_ns > ordered_to => continue,
                    None => batch.intern(""),
                };
                let body = Body::File(FileEvent {
                    op: Op::Open as i32,
                    path_sid,
                    flags: key.flags,
                    result: if key.result < 0 { key.result.into() } else { 0 },
                    count: (repeats.repeats - reported) as u32,
                    last_ts_ns: repeats.last_ns,
                    dev: key.dev,
                    ino: if key.dev != 0 { key.ino } else { 0 },
                    ..Default::default()
                });
                let ts_ns = repeats.last_ns.max(last_ts + 1);
                let who = table.who(key.tgid, key.tgid, 0, batch);
                batch.push_by(ts_ns, &who, body);
                still.insert(key, (repeats.repeats, ts_ns));
            }
            if table.get(key.tgid).is_none_or(|p| p.exit_ns.is_some()) {
                gone.push(key);
            }
        }
        for key in gone {
            let _ = self.map.remove(&key);
            still.remove(&key);
        }
        self.reported = still;
    }
}
