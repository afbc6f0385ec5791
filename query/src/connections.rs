//! Connections: connects and accepts joined with the byte counts of their
//! close, by socket. Flows whose open the agent did not see (older
//! connections) are listed from their close alone.

use std::collections::{BTreeMap, HashSet};

use plumbline_proto::v1::Connection;
use plumbline_store::{direction, transport, ActivityFilter, NetConnectionRow, NetFlowRow, StoreRead};

use crate::{activity::ContainerIds, error::QueryError};

pub(crate) fn endpoint(addr: &str, port: u32, unix_path: &str) -> String {
    if !unix_path.is_empty() {
        unix_path.to_string()
    } else if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else if addr.is_empty() {
        String::new()
    } else {
        format!("{addr}:{port}")
    }
}

fn direction_name(d: u8) -> &'static str {
    match d {
        direction::CONNECT => "connect",
        direction::ACCEPT => "accept",
        _ => "",
    }
}

pub(crate) fn transport_name(t: u8) -> &'static str {
    match t {
        transport::TCP => "tcp",
        transport::UDP => "udp",
        transport::UNIX_STREAM => "unix-stream",
        transport::UNIX_DGRAM => "unix-dgram",
        _ => "",
    }
}

fn from_connect(c: &NetConnectionRow, containers: &ContainerIds) -> Connection {
    let is_unix = matches!(c.transport, transport::UNIX_STREAM | transport::UNIX_DGRAM);
    let (local, remote) = if is_unix && c.direction == direction::ACCEPT {
        (endpoint("", 0, &c.unix_path), format!("socket:[{}]", c.peer_inode))
    } else {
        (endpoint(&c.local_addr, c.local_port, ""), endpoint(&c.remote_addr, c.remote_port, &c.unix_path))
    };
    Connection {
        host: c.host.clone(),
        pid: c.pid,
        comm: c.comm.clone(),
        direction: direction_name(c.direction).into(),
        transport: transport_name(c.transport).into(),
        local,
        remote,
        remote_name: c.remote_name.clone(),
        result: c.result,
        latency_ns: c.latency_ns,
        closed: false,
        bytes_sent: 0,
        bytes_received: 0,
        start_wall_ns: c.wall_ns,
        duration_ns: 0,
        peer_pid: c.peer_pid,
        container_id: containers.get(&c.host, c.cgroup_id),
        boot_id: c.boot_id.clone(),
    }
}

fn add_flow(connection: &mut Connection, flow: &NetFlowRow) {
    connection.closed = true;
    connection.bytes_sent = flow.bytes_sent;
    connection.bytes_received = flow.bytes_received;
    connection.duration_ns = flow.duration_ns;
    if connection.remote_name.is_empty() {
        connection.remote_name = flow.remote_name.clone();
    }
}

fn from_flow(f: &NetFlowRow, containers: &ContainerIds) -> Connection {
    Connection {
        host: f.host.clone(),
        pid: f.pid,
        comm: f.comm.clone(),
        direction: direction_name(f.direction).into(),
        transport: "tcp".into(),
        local: endpoint(&f.local_addr, f.local_port, ""),
        remote: endpoint(&f.remote_addr, f.remote_port, ""),
        remote_name: f.remote_name.clone(),
        result: 0,
        latency_ns: 0,
        closed: true,
        bytes_sent: f.bytes_sent,
        bytes_received: f.bytes_received,
        start_wall_ns: if f.established_wall_ns != 0 { f.established_wall_ns } else { f.wall_ns - f.duration_ns },
        duration_ns: f.duration_ns,
        peer_pid: 0,
        container_id: containers.get(&f.host, f.cgroup_id),
        boot_id: f.boot_id.clone(),
    }
}

/// TCP closes by socket. The kernel reuses a socket's memory, hence its id,
/// for later connections: a connection's close is the first one on its
/// socket at or after its open, between the same ports.
struct Closes<'a> {
    by_socket: BTreeMap<(&'a str, &'a str, u64), Vec<&'a NetFlowRow>>,
}

impl<'a> Closes<'a> {
    fn of(flows: &'a [NetFlowRow]) -> Self {
        let mut by_socket: BTreeMap<_, Vec<&NetFlowRow>> = BTreeMap::new();
        for flow in flows {
            by_socket.entry((flow.host.as_str(), flow.boot_id.as_str(), flow.sock_id)).or_default().push(flow);
        }
        for closes in by_socket.values_mut() {
            closes.sort_by_key(|f| f.ts_ns);
            // The same close, listed by socket and by time range.
            closes.dedup_by_key(|f| f.ts_ns);
        }
        Closes { by_socket }
    }

    fn of_connection(&self, c: &NetConnectionRow) -> Option<&'a NetFlowRow> {
        let closes = self.by_socket.get(&(c.host.as_str(), c.boot_id.as_str(), c.sock_id))?;
        closes
            .iter()
            .find(|f| f.ts_ns >= c.ts_ns)
            .filter(|f| (f.local_port, f.remote_port) == (c.local_port, c.remote_port))
            .copied()
    }

    fn all(&self) -> impl Iterator<Item = &'a NetFlowRow> + '_ {
        self.by_socket.values().flatten().copied()
    }

    fn identity(flow: &NetFlowRow) -> (String, String, u64, u64) {
        (flow.host.clone(), flow.boot_id.clone(), flow.sock_id, flow.ts_ns)
    }
}

pub async fn connections(store: &dyn StoreRead, filter: &ActivityFilter) -> Result<Vec<Connection>, QueryError> {
    let containers = ContainerIds::load(store, filter).await?;
    let connects = store.list_connections(filter).await?;
    // The closes of the connections listed, whenever they happened ...
    let sock_ids: Vec<u64> = connects.iter().filter(|c| c.transport == transport::TCP).map(|c| c.sock_id).collect();
    let mut flows = if sock_ids.is_empty() {
        Vec::new()
    } else {
        let by_socket =
            ActivityFilter { host: filter.host.clone(), sock_ids, limit: filter.limit * 2, ..Default::default() };
        store.list_flows(&by_socket).await?
    };
    // ... and the closes in range of connections opened before the agent.
    flows.extend(store.list_flows(filter).await?);

    let closes = Closes::of(&flows);
    let mut joined = HashSet::new();
    let mut out: Vec<Connection> = connects
        .iter()
        .map(|c| {
            let mut connection = from_connect(c, &containers);
            if c.transport == transport::TCP && c.result == 0 {
                if let Some(flow) = closes.of_connection(c) {
                    add_flow(&mut connection, flow);
                    joined.insert(Closes::identity(flow));
                }
            }
            connection
        })
        .collect();
    for flow in closes.all() {
        if !joined.contains(&Closes::identity(flow)) && flow.established_wall_ns == 0 {
            out.push(from_flow(flow, &containers));
        }
    }
    out.sort_by(|a, b| b.start_wall_ns.cmp(&a.start_wall_ns).then(a.pid.cmp(&b.pid)));
    out.truncate(filter.limit as usize);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_like_addresses() {
        assert_eq!(endpoint("10.0.0.1", 443, ""), "10.0.0.1:443");
        assert_eq!(endpoint("::1", 53, ""), "[::1]:53");
        assert_eq!(endpoint("", 0, "/run/x.sock"), "/run/x.sock");
    }

    #[test]
    fn a_reused_socket_id_pairs_each_open_with_its_own_close() {
        let connect = |ts_ns, local_port| NetConnectionRow {
            host: "h".into(),
            sock_id: 7,
            ts_ns,
            local_port,
            remote_port: 80,
            ..Default::default()
        };
        let close = |ts_ns, local_port, bytes_sent| NetFlowRow {
            host: "h".into(),
            sock_id: 7,
            ts_ns,
            local_port,
            remote_port: 80,
            bytes_sent,
            ..Default::default()
        };
        // Listed newest first, and the later close twice (by socket and by range).
        let flows = vec![close(40, 1001, 244), close(20, 1000, 3000), close(40, 1001, 244)];
        let closes = Closes::of(&flows);
        assert_eq!(closes.of_connection(&connect(10, 1000)).map(|f| f.bytes_sent), Some(3000));
        assert_eq!(closes.of_connection(&connect(30, 1001)).map(|f| f.bytes_sent), Some(244));
        // Still open: the next close on its socket is another connection's.
        assert_eq!(closes.of_connection(&connect(50, 1002)).map(|f| f.bytes_sent), None);
        assert_eq!(closes.all().count(), 2);
    }
}
