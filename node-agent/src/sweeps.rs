//! What the kernel accumulates in maps rather than records, reported as
//! deltas: write volume per file and IPC bytes and blocked time per channel
//! (the IO accounting), and the opens folded into an earlier one's count.
//!
//! The kernel's totals only grow; the agent remembers what it last saw and
//! sends the difference, so nothing is lost between a read and a reset.
//! Entries of processes that have exited are removed after their last report.

use foldhash::HashMap;

use aya::maps::{HashMap as BpfHashMap, MapData};
use plumbline_ebpf::abi::{io_kind, IoKey, IoStats, OpenKey, OpenRepeats};
use plumbline_proto::{
    v1::{event::Body, file_event::Op, ipc_event, FileEvent, FileWrites, IpcEvent},
    BatchBuilder,
};

use crate::encoder::Encoder;

/// The IO accounting map and what was last reported of it.
pub struct IoSweep {
    map: BpfHashMap<MapData, IoKey, IoStats>,
    last: HashMap<IoKey, IoStats>,
    last_sweep_ns: u64,
}

impl IoSweep {
    pub fn new(map: BpfHashMap<MapData, IoKey, IoStats>, now_ns: u64) -> Self {
        Self { map, last: HashMap::default(), last_sweep_ns: now_ns }
    }

    pub fn sweep(&mut self, enc: &mut Encoder, batch: &mut BatchBuilder, now_ns: u64) {
        let entries: Vec<(IoKey, IoStats)> = self.map.iter().filter_map(Result::ok).collect();
        let mut gone = Vec::new();
        for (key, now) in entries {
            let before = self.last.get(&key).copied().unwrap_or_default();
            let delta = |a: u64, b: u64| a.saturating_sub(b);
            let (written, read) =
                (delta(now.bytes_written, before.bytes_written), delta(now.bytes_read, before.bytes_read));
            let (writes, reads) = (delta(now.writes, before.writes), delta(now.reads, before.reads));
            if written + read + writes + reads > 0 {
                let window_start_ns = if before.last_ns == 0 { now.first_ns } else { self.last_sweep_ns };
                let body = match key.kind {
                    io_kind::FILE => Body::FileWrites(FileWrites {
                        path_sid: {
                            let path = enc.paths.inode(key.dev, key.ino, key.tgid);
                            batch.intern(&path)
                        },
                        bytes: written,
                        calls: writes as u32,
                        window_start_ns,
                        dev: key.dev,
                        ino: key.ino,
                    }),
                    kind => {
                        let unix = kind == io_kind::UNIX;
                        let name =
                            if unix { enc.paths.socket(key.ino).unwrap_or("").to_string() } else { String::new() };
                        Body::Ipc(IpcEvent {
                            kind: if unix { ipc_event::Kind::UnixSocket } else { ipc_event::Kind::Pipe } as i32,
                            op: ipc_event::Op::Io as i32,
                            peer_pid: now.peer_tgid,
                            object_id: key.ino,
                            name_sid: batch.intern(&name),
                            bytes_written: written,
                            bytes_read: read,
                            write_blocked_ns: delta(now.write_blocked_ns, before.write_blocked_ns),
                            read_blocked_ns: delta(now.read_blocked_ns, before.read_blocked_ns),
                            writes,
                            reads,
                            peer_object_id: now.peer_ino,
                            window_start_ns,
                            result: 0,
                        })
                    }
                };
                let who = enc.who(key.tgid, key.tgid, 0, batch);
                batch.push_by(now_ns, &who, body);
                self.last.insert(key, now);
            }
            if enc.table.get(key.tgid).is_none_or(|p| p.exit_ns.is_some()) {
                gone.push(key);
            }
        }
        for key in gone {
            let _ = self.map.remove(&key);
            self.last.remove(&key);
        }
        self.last_sweep_ns = now_ns;
    }
}

/// The open-repeats map and the counts already reported.
pub struct RepeatSweep {
    map: BpfHashMap<MapData, OpenKey, OpenRepeats>,
    reported: HashMap<OpenKey, u64>,
}

impl RepeatSweep {
    pub fn new(map: BpfHashMap<MapData, OpenKey, OpenRepeats>) -> Self {
        Self { map, reported: HashMap::default() }
    }

    pub fn sweep(&mut self, enc: &mut Encoder, batch: &mut BatchBuilder, now_ns: u64) {
        let entries: Vec<(OpenKey, OpenRepeats)> = self.map.iter().filter_map(Result::ok).collect();
        let mut gone = Vec::new();
        for (key, repeats) in entries {
            let reported = self.reported.get(&key).copied().unwrap_or(0);
            if repeats.repeats > reported {
                let path = enc.paths.open(&key).unwrap_or("").to_string();
                let body = Body::File(FileEvent {
                    op: Op::Open as i32,
                    path_sid: batch.intern(&path),
                    flags: key.flags,
                    result: if key.result < 0 { key.result.into() } else { 0 },
                    count: (repeats.repeats - reported) as u32,
                    last_ts_ns: repeats.last_ns,
                    dev: key.dev,
                    ino: if key.dev != 0 { key.ino } else { 0 },
                    ..Default::default()
                });
                let who = enc.who(key.tgid, key.tgid, 0, batch);
                batch.push_by(now_ns, &who, body);
                self.reported.insert(key, repeats.repeats);
            }
            if enc.table.get(key.tgid).is_none_or(|p| p.exit_ns.is_some()) {
                gone.push(key);
            }
        }
        for key in gone {
            let _ = self.map.remove(&key);
            self.reported.remove(&key);
        }
    }
}
