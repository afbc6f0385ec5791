//! Rows of the activity tables (files, network, DNS, IPC, containers, loss
//! markers) from the events of one batch.

use std::net::IpAddr;

use plumbline_proto::{
    process_start_key,
    v1::{event::Body, SocketAddress},
    BatchError, BatchReader, EventRef,
};
use plumbline_store::{
    ContainerRow, DnsQueryRow, EnforcementDecisionRow, FileEventRow, FileWriteRow, IpcEventRow, LossMarkerRow,
    NetConnectionRow, NetFlowRow, RowSet,
};

/// The who-and-when columns every activity row starts with.
pub(crate) struct Who {
    pub host: String,
    pub boot_id: String,
    pub pid: u32,
    pub process_start_key_ns: u64,
    pub comm: String,
    pub cgroup_id: u64,
    pub ts_ns: u64,
    pub wall_ns: u64,
}

/// `$row { <the eight columns of `Who`>, $fields }`: a row of an activity
/// table, whose process and time columns come from `$who`.
macro_rules! activity_row {
    ($row:ident, $who:ident, { $($field:ident : $value:expr),* $(,)? }) => {
        $row {
            host: $who.host,
            boot_id: $who.boot_id,
            pid: $who.pid,
            process_start_key_ns: $who.process_start_key_ns,
            comm: $who.comm,
            cgroup_id: $who.cgroup_id,
            ts_ns: $who.ts_ns,
            wall_ns: $who.wall_ns,
            $($field: $value),*
        }
    };
}
pub(crate) use activity_row;

pub(crate) fn who(reader: &BatchReader<'_>, event: &EventRef<'_>) -> Result<Who, BatchError> {
    let node = reader.node();
    Ok(Who {
        host: node.host.clone(),
        boot_id: node.boot_id.clone(),
        pid: event.event.pid,
        process_start_key_ns: process_start_key(event.event.process_start_ns),
        comm: reader.str(event.index, event.event.comm_sid)?.to_string(),
        cgroup_id: event.event.cgroup_id,
        ts_ns: event.ts_ns,
        wall_ns: reader.wall_ns(event.ts_ns),
    })
}

/// The IP address of a socket address as text ("" when there is none).
pub(crate) fn ip_text(address: Option<&SocketAddress>) -> String {
    let Some(ip) = address.map(|a| a.ip.as_slice()) else { return String::new() };
    match ip.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(ip).unwrap()).to_string(),
        16 => IpAddr::from(<[u8; 16]>::try_from(ip).unwrap()).to_string(),
        _ => String::new(),
    }
}

pub(crate) fn port(address: Option<&SocketAddress>) -> u32 {
    address.map_or(0, |a| a.port)
}

/// Adds the row for `body` to `rows`; false when the kind is not an
/// activity kind (nor stored yet).
pub fn push_activity_row(
    reader: &BatchReader<'_>,
    event: &EventRef<'_>,
    body: &Body,
    rows: &mut RowSet,
) -> Result<bool, BatchError> {
    let i = event.index;
    match body {
        Body::Loss(loss) => rows.loss_markers.push(LossMarkerRow {
            host: reader.node().host.clone(),
            boot_id: reader.node().boot_id.clone(),
            kind: reader.str(i, loss.kind_sid)?.to_string(),
            reason: loss.reason as u8,
            cpu: loss.cpu,
            count: loss.count,
            from_ns: loss.from_ns,
            to_ns: loss.to_ns,
            from_wall_ns: reader.wall_ns(loss.from_ns),
            to_wall_ns: reader.wall_ns(loss.to_ns),
        }),
        Body::File(file) => {
            let w = who(reader, event)?;
            rows.file_events.push(activity_row!(FileEventRow, w, {
                op: file.op as u8,
                path: reader.str(i, file.path_sid)?.to_string(),
                target: reader.str(i, file.target_sid)?.to_string(),
                flags: file.flags,
                result: file.result,
                count: file.count.max(1).into(),
                last_wall_ns: if file.last_ts_ns == 0 { w.wall_ns } else { reader.wall_ns(file.last_ts_ns) },
                dev: file.dev,
                ino: file.ino,
                mode: file.mode,
                path_truncated: file.path_truncated.into(),
            }));
        }
        Body::FileWrites(writes) => {
            let w = who(reader, event)?;
            rows.file_writes.push(activity_row!(FileWriteRow, w, {
                path: reader.str(i, writes.path_sid)?.to_string(),
                dev: writes.dev,
                ino: writes.ino,
                bytes: writes.bytes,
                calls: writes.calls.into(),
                window_start_wall_ns: reader.wall_ns(writes.window_start_ns),
            }));
        }
        Body::Connect(connect) => {
            let w = who(reader, event)?;
            let (local, remote) = (connect.local.as_ref(), connect.remote.as_ref());
            let unix_path = [remote, local].into_iter().flatten().map(|a| a.path_sid).find(|&sid| sid != 0);
            rows.net_connections.push(activity_row!(NetConnectionRow, w, {
                direction: connect.direction as u8,
                transport: connect.transport as u8,
                local_addr: ip_text(local),
                local_port: port(local),
                remote_addr: ip_text(remote),
                remote_port: port(remote),
                unix_path: reader.str(i, unix_path.unwrap_or(0))?.to_string(),
                remote_name: reader.str(i, connect.remote_name_sid)?.to_string(),
                result: connect.result,
                latency_ns: connect.latency_ns,
                sock_id: connect.socket_cookie,
                peer_pid: connect.peer_pid,
                inode: connect.inode,
                peer_inode: connect.peer_inode,
            }));
        }
        Body::Flow(flow) => {
            let w = who(reader, event)?;
            let (local, remote) = (flow.local.as_ref(), flow.remote.as_ref());
            rows.net_flows.push(activity_row!(NetFlowRow, w, {
                direction: flow.direction as u8,
                local_addr: ip_text(local),
                local_port: port(local),
                remote_addr: ip_text(remote),
                remote_port: port(remote),
                remote_name: reader.str(i, flow.remote_name_sid)?.to_string(),
                bytes_sent: flow.bytes_sent,
                bytes_received: flow.bytes_received,
                established_wall_ns: if flow.established_ns == 0 { 0 } else { reader.wall_ns(flow.established_ns) },
                duration_ns: flow.duration_ns,
                sock_id: flow.socket_cookie,
            }));
        }
        Body::Dns(dns) => {
            let w = who(reader, event)?;
            let answers: Vec<String> = dns
                .answers
                .iter()
                .map(|ip| ip_text(Some(&SocketAddress { ip: ip.clone(), ..Default::default() })))
                .collect();
            let server_address =
                dns.server.as_ref().map(|s| format!("{}:{}", ip_text(Some(s)), s.port)).unwrap_or_default();
            rows.dns_queries.push(activity_row!(DnsQueryRow, w, {
                name: reader.str(i, dns.name_sid)?.to_string(),
                qtype: dns.qtype as u16,
                rcode: dns.rcode as u16,
                answers: answers.join(","),
                server: server_address,
                latency_ns: dns.latency_ns,
            }));
        }
        Body::Ipc(ipc) => {
            let w = who(reader, event)?;
            rows.ipc_events.push(activity_row!(IpcEventRow, w, {
                kind: ipc.kind as u8,
                op: ipc.op as u8,
                object_id: ipc.object_id,
                name: reader.str(i, ipc.name_sid)?.to_string(),
                peer_pid: ipc.peer_pid,
                peer_object_id: ipc.peer_object_id,
                bytes_written: ipc.bytes_written,
                bytes_read: ipc.bytes_read,
                write_blocked_ns: ipc.write_blocked_ns,
                read_blocked_ns: ipc.read_blocked_ns,
                writes: ipc.writes,
                reads: ipc.reads,
                window_start_wall_ns: if ipc.window_start_ns == 0 {
                    w.wall_ns
                } else {
                    reader.wall_ns(ipc.window_start_ns)
                },
                result: ipc.result,
            }));
        }
        Body::Container(container) => rows.containers.push(ContainerRow {
            host: reader.node().host.clone(),
            boot_id: reader.node().boot_id.clone(),
            cgroup_id: container.cgroup_id,
            cgroup_path: reader.str(i, container.cgroup_path_sid)?.to_string(),
            container_id: reader.str(i, container.container_id_sid)?.to_string(),
            runtime: reader.str(i, container.runtime_sid)?.to_string(),
            pod_uid: reader.str(i, container.pod_uid_sid)?.to_string(),
            pod_namespace: reader.str(i, container.pod_namespace_sid)?.to_string(),
            pod_name: reader.str(i, container.pod_name_sid)?.to_string(),
            wall_ns: reader.wall_ns(event.ts_ns),
        }),
        Body::Enforcement(decision) => {
            let w = who(reader, event)?;
            let remote = decision.remote.as_ref();
            rows.enforcement_decisions.push(activity_row!(EnforcementDecisionRow, w, {
                decision: decision.decision as u8,
                mechanism: decision.mechanism as u8,
                family: decision.family as u8,
                operation: reader.str(i, decision.operation_sid)?.to_string(),
                role: reader.str(i, decision.role_sid)?.to_string(),
                pod: decision.pod,
                remote_addr: ip_text(remote),
                remote_port: port(remote),
                transport: decision.transport as u8,
                path: reader.str(i, decision.path_sid)?.to_string(),
            }));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use plumbline_proto::{
        v1::{
            file_event::Op, net_connect::Direction, ClockAnchor, ContainerInfo, DnsQuery, EventBatch, FileEvent,
            NetConnect, NodeIdentity, Transport,
        },
        BatchBuilder, BatchHeader, Who,
    };

    use super::*;

    fn rows_of(batch: &EventBatch) -> RowSet {
        let reader = BatchReader::new(batch).unwrap();
        let mut rows = RowSet::default();
        for event in reader.events() {
            let event = event.unwrap();
            assert!(push_activity_row(&reader, &event, event.event.body.as_ref().unwrap(), &mut rows).unwrap());
        }
        rows
    }

    #[test]
    fn files_connections_dns_and_containers_become_rows_with_who_did_it() {
        let mut b = BatchBuilder::new();
        let who = Who { pid: 7, tid: 7, cgroup_id: 55, comm_sid: b.intern("curl"), process_start_ns: 1_234_567_891 };
        let path_sid = b.intern("/etc/hosts");
        b.push_by(10, &who, Body::File(FileEvent { op: Op::Open as i32, path_sid, count: 3, ..Default::default() }));
        let connect = NetConnect {
            direction: Direction::Connect as i32,
            transport: Transport::Tcp as i32,
            remote: Some(SocketAddress { ip: vec![10, 0, 0, 9], port: 443, path_sid: 0 }),
            remote_name_sid: b.intern("api.example.com"),
            socket_cookie: 99,
            ..Default::default()
        };
        b.push_by(20, &who, Body::Connect(connect));
        let dns = DnsQuery {
            name_sid: b.intern("api.example.com"),
            qtype: 1,
            answers: vec![vec![10, 0, 0, 9], vec![0; 16]],
            server: Some(SocketAddress { ip: vec![127, 0, 0, 53], port: 53, path_sid: 0 }),
            ..Default::default()
        };
        b.push_by(30, &who, Body::Dns(dns));
        let container = ContainerInfo { cgroup_id: 55, container_id_sid: b.intern("abc123"), ..Default::default() };
        b.push(40, 0, 0, 0, Body::Container(container));
        let batch = b.finish(BatchHeader {
            node: NodeIdentity { host: "node-1".into(), boot_id: "b".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: 1_000, uncertainty_ns: 0 },
            ..Default::default()
        });
        let rows = rows_of(&batch);
        let file = &rows.file_events[0];
        assert_eq!((file.pid, file.comm.as_str(), file.path.as_str(), file.count), (7, "curl", "/etc/hosts", 3));
        assert_eq!((file.cgroup_id, file.process_start_key_ns, file.wall_ns), (55, 1_230_000_000, 1_010));
        let conn = &rows.net_connections[0];
        assert_eq!(
            (conn.remote_addr.as_str(), conn.remote_port, conn.remote_name.as_str()),
            ("10.0.0.9", 443, "api.example.com")
        );
        assert_eq!(rows.dns_queries[0].answers, "10.0.0.9,::");
        assert_eq!(rows.dns_queries[0].server, "127.0.0.53:53");
        assert_eq!((rows.containers[0].cgroup_id, rows.containers[0].container_id.as_str()), (55, "abc123"));
    }
}
