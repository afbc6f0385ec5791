//! Turns file, network, DNS and shared-memory records into `plumbline.v1`
//! events, attributed to their process.

use std::net::IpAddr;

use plumbline_ebpf::{
    abi::{direction, shm_op, transport, NetClose, SockAddr},
    record::{unix_path, Record},
};
use plumbline_proto::{
    v1::{
        event::Body, file_event::Op, ipc_event, net_connect::Direction, DnsQuery, FileEvent, IpcEvent, NetConnect,
        NetFlow, SocketAddress, Transport,
    },
    BatchBuilder,
};

use crate::{
    dns::{sockaddr_ip, DnsTracker},
    file_paths::PathCache,
    intent::IntentCapture,
    process_table::ProcessTable,
};

/// What encoding these records needs of the encoder's state.
pub struct Activity<'a> {
    pub table: &'a ProcessTable,
    pub paths: &'a mut PathCache,
    pub dns: &'a mut DnsTracker,
    /// Told of connections, to find LLM endpoints; None when TLS capture is off.
    pub intent: Option<&'a mut IntentCapture>,
    /// Keyed hash for socket ids: kernel addresses stay on the node.
    pub sock_seed: u64,
}

/// A socket's id on this node: the kernel's pointer, hashed with a key of
/// this run, kept below 2^63.
pub fn sock_id(seed: u64, raw: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&raw.to_le_bytes(), seed) & (u64::MAX >> 1)
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

pub(crate) fn socket_address(addr: &SockAddr) -> SocketAddress {
    SocketAddress { ip: ip_bytes(sockaddr_ip(&addr.addr, addr.family)), port: addr.port.into(), path_sid: 0 }
}

fn transport_of(t: u16) -> Transport {
    match t {
        transport::TCP => Transport::Tcp,
        transport::UDP => Transport::Udp,
        transport::UNIX_STREAM => Transport::UnixStream,
        transport::UNIX_DGRAM => Transport::UnixDgram,
        _ => Transport::Unspecified,
    }
}

fn direction_of(d: u16) -> Direction {
    match d {
        direction::CONNECT => Direction::Connect,
        direction::ACCEPT => Direction::Accept,
        _ => Direction::Unspecified,
    }
}

/// `sk_shutdown` bits.
const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;

/// Payload bytes (sent and acknowledged, received) of a closed connection.
/// The kernel's counters count sequence space: a FIN takes one, and so does
/// the SYN on the connecting side (an accepted socket starts with its SYN
/// already acknowledged). For a connection older than the agent the side is
/// unknown and the SYN is left in: one byte too many at most.
fn data_bytes(close: &NetClose) -> (u64, u64) {
    let syn = close.direction == direction::CONNECT;
    let fin_acked = close.shutdown & SEND_SHUTDOWN != 0 && close.snd_una == close.write_seq;
    let fin_received = close.shutdown & RCV_SHUTDOWN != 0;
    (
        close.bytes_acked.saturating_sub(u64::from(syn) + u64::from(fin_acked)),
        close.bytes_received.saturating_sub(u64::from(fin_received)),
    )
}

/// Adds the event `record` describes. Process, TLS and GPU records are not handled here.
pub fn encode(enc: &mut Activity<'_>, record: &Record<'_>, batch: &mut BatchBuilder) {
    let h = *record.header();
    match record {
        Record::FileOpen { event, path } => {
            let path = path.to_path();
            enc.paths.remember_open(&event.key, &path);
            let body = Body::File(FileEvent {
                op: Op::Open as i32,
                path_sid: batch.intern(&path),
                target_sid: 0,
                flags: event.key.flags,
                result: event.result,
                count: 1,
                last_ts_ns: 0,
                dev: event.key.dev,
                ino: event.key.ino * u64::from(event.key.dev != 0),
                mode: event.mode,
                path_truncated: event.path.truncated != 0,
            });
            let who = enc.table.who(h.pid, h.tid, h.cgroup_id, batch);
            batch.push_by(h.ts_boot_ns, &who, body);
        }
        Record::FileUnlink { event, path } => {
            let body = Body::File(FileEvent {
                op: Op::Unlink as i32,
                path_sid: batch.intern(&path.to_path()),
                flags: event.flags,
                result: event.result,
                count: 1,
                path_truncated: event.path.truncated != 0,
                ..Default::default()
            });
            let who = enc.table.who(h.pid, h.tid, h.cgroup_id, batch);
            batch.push_by(h.ts_boot_ns, &who, body);
        }
        Record::FileRename { event, from, to } => {
            let body = Body::File(FileEvent {
                op: Op::Rename as i32,
                path_sid: batch.intern(&from.to_path()),
                target_sid: batch.intern(&to.to_path()),
                flags: event.flags,
                result: event.result,
                count: 1,
                path_truncated: event.from.truncated != 0 || event.to.truncated != 0,
                ..Default::default()
            });
            let who = enc.table.who(h.pid, h.tid, h.cgroup_id, batch);
            batch.push_by(h.ts_boot_ns, &who, body);
        }
        Record::NetConnect(event) => {
            let remote_ip = sockaddr_ip(&event.remote.addr, event.remote.family);
            let name = enc.dns.name_for(h.pid, remote_ip, h.ts_boot_ns).unwrap_or("").to_string();
            let body = Body::Connect(NetConnect {
                direction: direction_of(event.direction) as i32,
                transport: transport_of(event.transport) as i32,
                local: Some(socket_address(&event.local)),
                remote: Some(socket_address(&event.remote)),
                result: event.result,
                latency_ns: event.latency_ns,
                socket_cookie: sock_id(enc.sock_seed, event.sock_id),
                remote_name_sid: batch.intern(&name),
                ..Default::default()
            });
            let who = enc.table.who(h.pid, h.tid, h.cgroup_id, batch);
            batch.push_by(h.ts_boot_ns, &who, body);
            if let Some(intent) = enc.intent.as_deref_mut() {
                if event.result == 0 && event.transport == transport::TCP && event.direction == direction::CONNECT {
                    let local = sockaddr_ip(&event.local.addr, event.local.family);
                    intent.note_connect(
                        h.pid,
                        h.ts_boot_ns,
                        std::net::SocketAddr::new(local, event.local.port),
                        std::net::SocketAddr::new(remote_ip, event.remote.port),
                    );
                }
            }
        }
        Record::NetClose(event) => {
            let remote_ip = sockaddr_ip(&event.remote.addr, event.remote.family);
            let name = enc.dns.name_for(h.pid, remote_ip, h.ts_boot_ns).unwrap_or("").to_string();
            let body = Body::Flow(NetFlow {
                transport: Transport::Tcp as i32,
                local: Some(socket_address(&event.local)),
                remote: Some(socket_address(&event.remote)),
                bytes_sent: data_bytes(event).0,
                bytes_received: data_bytes(event).1,
                established_ns: event.established_ns,
                duration_ns: if event.established_ns == 0 { 0 } else { event.closed_ns - event.established_ns },
                socket_cookie: sock_id(enc.sock_seed, event.sock_id),
                remote_name_sid: batch.intern(&name),
                direction: direction_of(event.direction) as i32,
            });
            let who = enc.table.who(h.pid, h.tid, h.cgroup_id, batch);
            batch.push_by(h.ts_boot_ns, &who, body);
        }
        Record::UnixConnect { event, path } => {
            let path = unix_path(path);
            enc.paths.remember_socket(event.ino, &path);
            enc.paths.remember_socket(event.peer_ino, &path);
            let path_sid = batch.intern(&path);
            let (local, remote) = if event.direction == direction::ACCEPT {
                (SocketAddress { path_sid, ..Default::default() }, SocketAddress::default())
            } else {
                (SocketAddress::default(), SocketAddress { path_sid, ..Default::default() })
            };
            let body = Body::Connect(NetConnect {
                direction: direction_of(event.direction) as i32,
                transport: transport_of(event.transport) as i32,
                local: Some(local),
                remote: Some(remote),
                result: event.result,
                latency_ns: event.latency_ns,
                socket_cookie: event.ino,
                peer_pid: event.peer_tgid,
                inode: event.ino,
                peer_inode: event.peer_ino,
                ..Default::default()
            });
            let who = enc.table.who(h.pid, h.tid, h.cgroup_id, batch);
            batch.push_by(h.ts_boot_ns, &who, body);
        }
        Record::Dns { event, message } => {
            let Some(lookup) = enc.dns.packet(event, message) else { return };
            let body = Body::Dns(DnsQuery {
                name_sid: batch.intern(&lookup.name),
                qtype: lookup.qtype.into(),
                rcode: lookup.rcode.into(),
                answers: lookup.answers.iter().map(|ip| ip_bytes(*ip)).collect(),
                server: Some(SocketAddress {
                    ip: ip_bytes(lookup.server.0),
                    port: lookup.server.1.into(),
                    path_sid: 0,
                }),
                latency_ns: lookup.latency_ns,
            });
            let who = enc.table.who(lookup.pid, lookup.tid, 0, batch);
            batch.push_by(lookup.ts_ns, &who, body);
        }
        Record::Shm(event) => {
            let (op, name) = match event.op {
                shm_op::GET => (ipc_event::Op::ShmCreate, format!("key {:#x}", event.key)),
                _ => (ipc_event::Op::ShmAttach, String::new()),
            };
            let body = Body::Ipc(IpcEvent {
                kind: ipc_event::Kind::SysvShm as i32,
                op: op as i32,
                object_id: event.shmid.max(0) as u64,
                name_sid: batch.intern(&name),
                result: event.result,
                ..Default::default()
            });
            let who = enc.table.who(h.pid, h.tid, h.cgroup_id, batch);
            batch.push_by(h.ts_boot_ns, &who, body);
        }
        Record::ProcExec { .. }
        | Record::ProcFork(_)
        | Record::ProcExit(_)
        | Record::ProcExecFailed { .. }
        | Record::TlsData { .. }
        | Record::TlsSni(_)
        | Record::Cuda(_)
        | Record::Nccl { .. }
        | Record::EnforceNet(_)
        | Record::EnforceRate(_)
        | Record::EnforceExec { .. }
        | Record::EnforceFile { .. }
        | Record::Unknown(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;

    use super::*;

    #[test]
    fn syn_and_fin_are_not_counted_as_payload() {
        let mut close = NetClose::zeroed();
        close.direction = direction::CONNECT;
        close.bytes_acked = 3002; // SYN + 3000 + our FIN, acknowledged
        close.bytes_received = 701; // 700 + their FIN
        close.shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN;
        close.snd_una = 9;
        close.write_seq = 9;
        assert_eq!(data_bytes(&close), (3000, 700));
        // Our FIN sent but not acknowledged yet: only the SYN to remove.
        close.bytes_acked = 3001;
        close.write_seq = 10;
        assert_eq!(data_bytes(&close), (3000, 700));
        // Reset without FINs.
        close.shutdown = 0;
        close.bytes_received = 700;
        assert_eq!(data_bytes(&close), (3000, 700));
        // The accepting side: no SYN in its count.
        close.direction = direction::ACCEPT;
        close.bytes_acked = 701;
        close.shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN;
        close.write_seq = 9;
        close.bytes_received = 3001;
        assert_eq!(data_bytes(&close), (700, 3000));
    }
}
