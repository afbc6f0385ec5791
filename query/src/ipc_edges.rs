//! Who talks to whom over IPC: each process's use of a channel, joined into
//! edges from the process that wrote to the one that read.
//!
//! - A pipe: every writer to every reader of the same pipe inode.
//! - A unix socket: each end is its own inode and knows its peer's; data a
//!   process wrote to its end reached the process on the peer end (or, when
//!   that end did no IO, the pid the kernel names as the peer).
//! - Shared memory: every pair of processes that created or attached the same
//!   SysV segment, or opened the same /dev/shm file.

use std::collections::{BTreeMap, HashMap};

use plumbline_proto::v1::IpcEdge;
use plumbline_store::{ipc_kind, ipc_op, ActivityFilter, FileActivityRow, IpcUsageRow, StoreRead};

use crate::error::QueryError;

type Host = (String, String); // (host, boot id)

fn edge(host: &Host, kind: &str, channel: String, from: &IpcUsageRow, to_pid: u32, to_comm: &str) -> IpcEdge {
    IpcEdge {
        host: host.0.clone(),
        boot_id: host.1.clone(),
        kind: kind.into(),
        channel,
        from_pid: from.pid,
        from_comm: from.comm.clone(),
        to_pid,
        to_comm: to_comm.into(),
        bytes: from.bytes_written,
        writer_blocked_ns: from.write_blocked_ns,
        reader_blocked_ns: 0,
        first_wall_ns: from.first_wall_ns,
        last_wall_ns: from.last_wall_ns,
    }
}

/// Edges from per-process usage rows (and /dev/shm file activity).
pub fn edges(usage: &[IpcUsageRow], shm_files: &[FileActivityRow]) -> Vec<IpcEdge> {
    let mut out = Vec::new();
    let mut pipes: BTreeMap<(Host, u64), Vec<&IpcUsageRow>> = BTreeMap::new();
    let mut sockets: HashMap<(Host, u64), &IpcUsageRow> = HashMap::new();
    let mut segments: BTreeMap<(Host, u64), Vec<&IpcUsageRow>> = BTreeMap::new();
    for row in usage {
        let key = ((row.host.clone(), row.boot_id.clone()), row.object_id);
        match (row.kind, row.op) {
            (ipc_kind::PIPE, ipc_op::IO) => pipes.entry(key).or_default().push(row),
            (ipc_kind::UNIX_SOCKET, ipc_op::IO) => {
                sockets.insert(key, row);
            }
            (ipc_kind::SYSV_SHM, _) => segments.entry(key).or_default().push(row),
            _ => {}
        }
    }

    for ((host, ino), users) in &pipes {
        for writer in users.iter().filter(|u| u.bytes_written > 0 || u.writes > 0) {
            for reader in users.iter().filter(|u| (u.bytes_read > 0 || u.reads > 0) && u.pid != writer.pid) {
                let mut e = edge(host, "pipe", format!("pipe:[{ino}]"), writer, reader.pid, &reader.comm);
                e.bytes = writer.bytes_written.min(reader.bytes_read);
                e.reader_blocked_ns = reader.read_blocked_ns;
                e.first_wall_ns = writer.first_wall_ns.min(reader.first_wall_ns);
                e.last_wall_ns = writer.last_wall_ns.max(reader.last_wall_ns);
                out.push(e);
            }
        }
    }

    for ((host, ino), end) in &sockets {
        if end.bytes_written == 0 && end.writes == 0 {
            continue;
        }
        let channel = if end.name.is_empty() { format!("socket:[{ino}]") } else { end.name.clone() };
        match sockets.get(&(host.clone(), end.peer_object_id)) {
            Some(peer) if peer.pid != end.pid => {
                let mut e = edge(host, "unix", channel, end, peer.pid, &peer.comm);
                e.reader_blocked_ns = peer.read_blocked_ns;
                out.push(e);
            }
            Some(_) => {}
            None if end.peer_pid != 0 && end.peer_pid != end.pid => {
                out.push(edge(host, "unix", channel, end, end.peer_pid, ""));
            }
            None => {}
        }
    }

    for ((host, shmid), users) in &segments {
        let mut pids: Vec<&IpcUsageRow> = users.clone();
        pids.sort_by_key(|u| (u.first_wall_ns, u.pid));
        pids.dedup_by_key(|u| u.pid);
        for (i, a) in pids.iter().enumerate() {
            for b in &pids[i + 1..] {
                out.push(edge(host, "sysv-shm", format!("shmid {shmid}"), a, b.pid, &b.comm));
            }
        }
    }

    let mut by_path: BTreeMap<(Host, &str), Vec<&FileActivityRow>> = BTreeMap::new();
    for file in shm_files.iter().filter(|f| f.path.starts_with("/dev/shm/")) {
        by_path.entry(((file.host.clone(), file.boot_id.clone()), file.path.as_str())).or_default().push(file);
    }
    for ((host, path), mut users) in by_path {
        users.sort_by_key(|u| (u.first_wall_ns, u.pid));
        users.dedup_by_key(|u| u.pid);
        for (i, a) in users.iter().enumerate() {
            for b in &users[i + 1..] {
                out.push(IpcEdge {
                    host: host.0.clone(),
                    boot_id: host.1.clone(),
                    kind: "posix-shm".into(),
                    channel: path.to_string(),
                    from_pid: a.pid,
                    from_comm: a.comm.clone(),
                    to_pid: b.pid,
                    to_comm: b.comm.clone(),
                    bytes: a.bytes_written,
                    writer_blocked_ns: 0,
                    reader_blocked_ns: 0,
                    first_wall_ns: a.first_wall_ns.min(b.first_wall_ns),
                    last_wall_ns: a.last_wall_ns.max(b.last_wall_ns),
                });
            }
        }
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.last_wall_ns.cmp(&a.last_wall_ns)));
    out
}

pub async fn ipc_edges(store: &dyn StoreRead, filter: &ActivityFilter) -> Result<Vec<IpcEdge>, QueryError> {
    // A process's edges include its peers' rows: read the host's usage, then
    // keep the edges that touch the process asked about.
    let wide = ActivityFilter { pid: None, limit: filter.limit.max(1000) * 10, ..filter.clone() };
    let usage = store.list_ipc_usage(&wide).await?;
    let shm = ActivityFilter { contains: Some("/dev/shm/".into()), ..wide.clone() };
    let shm_files = store.list_file_activity(&shm).await?;
    let mut out = edges(&usage, &shm_files);
    if let Some(pid) = filter.pid {
        out.retain(|e| e.from_pid == pid || e.to_pid == pid);
    }
    out.truncate(filter.limit as usize);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(pid: u32, kind: u8, object: u64, peer: u64, written: u64, read: u64) -> IpcUsageRow {
        IpcUsageRow {
            host: "h".into(),
            boot_id: "b".into(),
            pid,
            comm: format!("p{pid}"),
            kind,
            op: ipc_op::IO,
            object_id: object,
            name: String::new(),
            peer_pid: 0,
            peer_object_id: peer,
            bytes_written: written,
            bytes_read: read,
            write_blocked_ns: 1_000,
            read_blocked_ns: 2_000,
            writes: u64::from(written > 0),
            reads: u64::from(read > 0),
            first_wall_ns: 1,
            last_wall_ns: 2,
        }
    }

    #[test]
    fn a_pipe_joins_its_writer_to_its_reader_with_both_blocked_times() {
        let rows = [usage(10, ipc_kind::PIPE, 5, 0, 300, 0), usage(11, ipc_kind::PIPE, 5, 0, 0, 300)];
        let e = edges(&rows, &[]);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].from_pid, e[0].to_pid, e[0].bytes, e[0].channel.as_str()), (10, 11, 300, "pipe:[5]"));
        assert_eq!((e[0].writer_blocked_ns, e[0].reader_blocked_ns), (1_000, 2_000));
    }

    #[test]
    fn unix_socket_ends_are_joined_through_their_peer_inode_both_ways() {
        let rows = [usage(20, ipc_kind::UNIX_SOCKET, 7, 8, 100, 50), usage(21, ipc_kind::UNIX_SOCKET, 8, 7, 50, 100)];
        let mut e = edges(&rows, &[]);
        e.sort_by_key(|e| e.from_pid);
        assert_eq!(
            e.iter().map(|e| (e.from_pid, e.to_pid, e.bytes)).collect::<Vec<_>>(),
            vec![(20, 21, 100), (21, 20, 50)]
        );
    }

    #[test]
    fn a_socket_whose_peer_did_no_io_points_at_the_kernels_peer_pid() {
        let mut row = usage(30, ipc_kind::UNIX_SOCKET, 9, 10, 64, 0);
        row.peer_pid = 31;
        let e = edges(&[row], &[]);
        assert_eq!((e[0].from_pid, e[0].to_pid), (30, 31));
    }
}
