//! Policy decisions the kernel made into events: what it did (denied before
//! the effect, killed after it began, or recorded in audit), by which hook,
//! to which process, about what, under which role.

use plumbline_ebpf::abi::{decision, mechanism, net_op, EnforceExec, EnforceNet};
use plumbline_proto::{
    v1::{
        enforcement_decision::{Decision, Family, Mechanism},
        event::Body,
        EnforcementDecision, Transport,
    },
    BatchBuilder,
};

use crate::{activity_events::socket_address, enforce::enforcer::RoleNames, process_table::ProcessTable};

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

fn decision_of(value: u8) -> Decision {
    match value {
        decision::DENIED => Decision::Denied,
        decision::KILLED_AFTER => Decision::KilledAfter,
        decision::WOULD_DENY => Decision::WouldDeny,
        _ => Decision::Unspecified,
    }
}

fn mechanism_of(value: u8) -> Mechanism {
    match value {
        mechanism::CGROUP_SOCK_ADDR => Mechanism::CgroupSockAddr,
        mechanism::SIGNAL => Mechanism::Signal,
        mechanism::LSM => Mechanism::Lsm,
        _ => Mechanism::Unspecified,
    }
}

/// A connect or send the process's role does not allow.
pub fn encode_net(event: &EnforceNet, roles: &RoleNames, table: &ProcessTable, batch: &mut BatchBuilder) {
    let h = event.hdr;
    let operation = match event.op {
        net_op::CONNECT => "connect",
        net_op::SENDMSG => "sendmsg",
        _ => "unknown",
    };
    let transport = match event.protocol {
        IPPROTO_TCP => Transport::Tcp,
        IPPROTO_UDP => Transport::Udp,
        _ => Transport::Unspecified,
    };
    let body = Body::Enforcement(EnforcementDecision {
        decision: decision_of(event.decision) as i32,
        mechanism: mechanism_of(event.mechanism) as i32,
        family: Family::Network as i32,
        operation_sid: batch.intern(operation),
        role_sid: batch.intern(&roles.of(event.role)),
        pod: event.pod,
        remote: Some(socket_address(&event.remote)),
        transport: transport as i32,
        path_sid: 0,
    });
    let who = table.who(h.pid, h.tid, h.cgroup_id, batch);
    batch.push_by(h.ts_boot_ns, &who, body);
}

/// An exec the process's role does not allow, seen once it succeeded.
pub fn encode_exec(
    event: &EnforceExec,
    path: &[u8],
    roles: &RoleNames,
    table: &ProcessTable,
    batch: &mut BatchBuilder,
) {
    let h = event.hdr;
    let body = Body::Enforcement(EnforcementDecision {
        decision: decision_of(event.decision) as i32,
        mechanism: mechanism_of(event.mechanism) as i32,
        family: Family::Exec as i32,
        operation_sid: batch.intern("exec"),
        role_sid: batch.intern(&roles.of(event.role)),
        pod: event.pod,
        remote: None,
        transport: Transport::Unspecified as i32,
        path_sid: batch.intern(&String::from_utf8_lossy(path)),
    });
    let who = table.who(h.pid, h.tid, h.cgroup_id, batch);
    batch.push_by(h.ts_boot_ns, &who, body);
}
