//! Turns ring-buffer records into `plumbline.v1` events, keeping the process
//! table current on the way.

use plumbline_ebpf::record::{c_str, split_args, Record};
use plumbline_proto::{
    v1::{event::Body, loss_marker::Reason, ExecFailed, LossMarker, ProcessExec, ProcessExit, ProcessFork},
    BatchBuilder,
};

use crate::kernel_counters::KernelLoss;
use crate::process_table::{ProcessInfo, ProcessTable};

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    Event,
    /// A kind this agent does not know (from a newer object): skipped.
    UnknownKind(u16),
}

/// Adds the event a record describes to `batch` and applies it to `table`.
/// `exited_ttl_ns`: how long an exited process stays in the table.
pub fn encode_record(
    record: &Record<'_>,
    table: &mut ProcessTable,
    batch: &mut BatchBuilder,
    exited_ttl_ns: u64,
) -> Encoded {
    let header = *record.header();
    let body = match record {
        Record::ProcExec { event, args } => {
            let info = ProcessInfo {
                pid: header.pid,
                ppid: event.ppid,
                uid: event.uid,
                gid: event.gid,
                comm: lossy(c_str(&event.comm)),
                exe: lossy(c_str(&event.filename)),
                argv: split_args(args).map(lossy).collect(),
                cgroup_id: header.cgroup_id,
                start_ns: event.start_boot_ns,
                exit_ns: None,
                exit_status: None,
            };
            let body =
                Body::Exec(ProcessExec { argv_truncated: event.args_truncated != 0, ..exec_fields(&info, batch) });
            table.exec(info);
            body
        }
        Record::ProcFork(event) => {
            let comm = lossy(c_str(&event.comm));
            let body = Body::Fork(ProcessFork {
                start_ns: event.start_boot_ns,
                parent_pid: event.parent_pid,
                parent_tid: event.parent_tid,
                uid: event.uid,
                gid: event.gid,
                comm_sid: batch.intern(&comm),
            });
            // A forked child runs its parent's image until it execs.
            let parent = table.get(event.parent_pid).cloned().unwrap_or_default();
            table.fork(ProcessInfo {
                pid: header.pid,
                ppid: event.parent_pid,
                uid: event.uid,
                gid: event.gid,
                comm,
                exe: parent.exe,
                argv: parent.argv,
                cgroup_id: header.cgroup_id,
                start_ns: event.start_boot_ns,
                exit_ns: None,
                exit_status: None,
            });
            body
        }
        Record::ProcExit(event) => {
            let gone = table.exit(header.pid, event.start_boot_ns, header.ts_boot_ns, event.exit_code, exited_ttl_ns);
            let status = WaitStatus(event.exit_code);
            Body::Exit(ProcessExit {
                // The kernel's start time is exact; the table's may be a
                // /proc tick. Either names the same process.
                start_ns: event.start_boot_ns,
                ppid: event.ppid,
                exit_code: status.code(),
                signal: status.signal(),
                core_dumped: status.core_dumped(),
                comm_sid: batch.intern_lossy(if event.comm[0] != 0 {
                    c_str(&event.comm)
                } else {
                    gone.comm.as_bytes()
                }),
            })
        }
        Record::ProcExecFailed { event, args } => Body::ExecFailed(ExecFailed {
            errno: -event.error,
            filename_sid: batch.intern_lossy(c_str(&event.filename)),
            argv_sids: split_args(args).map(|a| batch.intern_lossy(a)).collect(),
            argv_truncated: event.args_truncated != 0,
            comm_sid: batch.intern_lossy(c_str(&event.comm)),
            start_ns: event.start_boot_ns,
        }),
        Record::Unknown(header) => return Encoded::UnknownKind(header.kind),
        // Not process records: the encoder sends those elsewhere.
        other => return Encoded::UnknownKind(other.header().kind),
    };
    batch.push(header.ts_boot_ns, header.pid, header.tid, header.cgroup_id, body);
    Encoded::Event
}

/// A process found running at start.
pub fn encode_seen(info: &ProcessInfo, now_ns: u64, batch: &mut BatchBuilder) {
    let body = Body::Seen(exec_fields(info, batch));
    batch.push(now_ns, info.pid, info.pid, info.cgroup_id, body);
}

/// Events the kernel could not write to its ring buffer.
pub fn encode_loss(loss: &KernelLoss, batch: &mut BatchBuilder) {
    let body = Body::Loss(LossMarker {
        reason: Reason::RingbufFull as i32,
        kind_sid: batch.intern(loss.kind),
        count: loss.count,
        cpu: loss.cpu as i32,
        from_ns: loss.from_ns,
        to_ns: loss.to_ns,
    });
    batch.push(loss.to_ns, 0, 0, 0, body);
}

fn exec_fields(info: &ProcessInfo, batch: &mut BatchBuilder) -> ProcessExec {
    ProcessExec {
        start_ns: info.start_ns,
        ppid: info.ppid,
        uid: info.uid,
        gid: info.gid,
        comm_sid: batch.intern(&info.comm),
        exe_sid: batch.intern(&info.exe),
        argv_sids: info.argv.iter().map(|a| batch.intern(a)).collect(),
        argv_truncated: false,
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A wait(2) status as the kernel keeps it in `task->exit_code`.
#[derive(Debug, Clone, Copy)]
struct WaitStatus(u32);

impl WaitStatus {
    fn signal(self) -> u32 {
        self.0 & 0x7f
    }

    fn core_dumped(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// The exit() value when the process exited, 0 when a signal killed it.
    fn code(self) -> i32 {
        if self.signal() == 0 {
            ((self.0 >> 8) & 0xff) as i32
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;
    use plumbline_ebpf::abi::{self, kind};
    use plumbline_proto::{BatchHeader, BatchReader};

    use super::*;

    fn header(kind: u16, pid: u32, ts: u64) -> abi::EventHeader {
        abi::EventHeader { ts_boot_ns: ts, cgroup_id: 9, pid, tid: pid, kind, size: 0, _pad0: 0 }
    }

    fn comm(name: &str) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..name.len()].copy_from_slice(name.as_bytes());
        c
    }

    #[test]
    fn exit_statuses_decode_like_waitpid() {
        assert_eq!((WaitStatus(7 << 8).code(), WaitStatus(7 << 8).signal()), (7, 0));
        assert_eq!((WaitStatus(9).code(), WaitStatus(9).signal()), (0, 9));
        assert!(WaitStatus(0x80 | 11).core_dumped());
    }

    #[test]
    fn fork_exec_exit_become_events_and_keep_the_table_current() {
        let mut table = ProcessTable::default();
        let mut batch = BatchBuilder::new();

        let fork = abi::ProcFork {
            hdr: header(kind::PROC_FORK, 200, 10),
            start_boot_ns: 10,
            parent_pid: 100,
            parent_tid: 101,
            uid: 1000,
            gid: 1000,
            comm: comm("bash"),
        };
        encode_record(&Record::ProcFork(fork), &mut table, &mut batch, 1_000);

        let mut exec = abi::ProcExec::zeroed();
        exec.hdr = header(kind::PROC_EXEC, 200, 20);
        exec.start_boot_ns = 10;
        exec.ppid = 100;
        exec.comm = comm("sh");
        exec.filename[..7].copy_from_slice(b"/bin/sh");
        let args = b"sh\0-c\0exit 7\0";
        encode_record(&Record::ProcExec { event: exec, args }, &mut table, &mut batch, 1_000);
        assert_eq!(table.get(200).unwrap().argv, vec!["sh", "-c", "exit 7"]);

        let exit = abi::ProcExit {
            hdr: header(kind::PROC_EXIT, 200, 30),
            start_boot_ns: 10,
            exit_code: 7 << 8,
            ppid: 100,
            comm: comm("sh"),
        };
        encode_record(&Record::ProcExit(exit), &mut table, &mut batch, 1_000);
        assert_eq!(table.get(200).unwrap().exit_status, Some(7 << 8));

        let batch = batch.finish(BatchHeader {
            node: plumbline_proto::v1::NodeIdentity { host: "h".into(), boot_id: "b".into(), ..Default::default() },
            clock: Default::default(),
            ..Default::default()
        });
        let reader = BatchReader::new(&batch).unwrap();
        let bodies: Vec<_> = reader.events().map(|e| e.unwrap().event.body.clone().unwrap()).collect();
        let Body::Fork(fork) = &bodies[0] else { panic!("{bodies:?}") };
        assert_eq!((fork.parent_pid, reader.str(0, fork.comm_sid).unwrap()), (100, "bash"));
        let Body::Exec(exec) = &bodies[1] else { panic!() };
        assert_eq!(reader.strs(1, &exec.argv_sids).unwrap(), vec!["sh", "-c", "exit 7"]);
        assert_eq!(reader.str(1, exec.exe_sid).unwrap(), "/bin/sh");
        let Body::Exit(exit) = &bodies[2] else { panic!() };
        assert_eq!((exit.exit_code, exit.signal, exit.start_ns), (7, 0, 10));
    }

    #[test]
    fn a_record_of_an_unknown_kind_is_skipped_not_misread() {
        let mut batch = BatchBuilder::new();
        let unknown = Record::Unknown(header(60, 1, 1));
        assert_eq!(encode_record(&unknown, &mut ProcessTable::default(), &mut batch, 0), Encoded::UnknownKind(60));
        assert!(batch.is_empty());
    }
}
