//! Policy decisions the kernel made into events: what it did (denied before
//! the effect, killed after it began, or recorded in audit), by which hook,
//! to which process, about what, under which role.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

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

/// Which decisions a count is of: role, family, decision.
pub type DecisionKind = (String, &'static str, &'static str);

/// Decisions made on this node, by role, family and decision, for `/metrics`.
/// Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct DecisionCounts(Arc<Mutex<BTreeMap<DecisionKind, u64>>>);

impl DecisionCounts {
    fn add(&self, role: String, family: Family, decision: Decision) {
        let family = match family {
            Family::Exec => "exec",
            Family::File => "file",
            Family::Network => "network",
            Family::Unspecified => "unknown",
        };
        let decision = match decision {
            Decision::Denied => "denied",
            Decision::KilledAfter => "killed_after",
            Decision::WouldDeny => "would_deny",
            Decision::Unspecified => "unknown",
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry((role, family, decision)).or_default() += 1;
    }

    /// Every (role, family, decision) with its count so far.
    pub fn totals(&self) -> Vec<(DecisionKind, u64)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

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
pub fn encode_net(
    event: &EnforceNet,
    names: &RoleNames,
    counts: &DecisionCounts,
    table: &ProcessTable,
    batch: &mut BatchBuilder,
) {
    let h = event.hdr;
    let role = names.of(event.role);
    counts.add(role.clone(), Family::Network, decision_of(event.decision));
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
        role_sid: batch.intern(&role),
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
    names: &RoleNames,
    counts: &DecisionCounts,
    table: &ProcessTable,
    batch: &mut BatchBuilder,
) {
    let h = event.hdr;
    let role = names.of(event.role);
    counts.add(role.clone(), Family::Exec, decision_of(event.decision));
    let body = Body::Enforcement(EnforcementDecision {
        decision: decision_of(event.decision) as i32,
        mechanism: mechanism_of(event.mechanism) as i32,
        family: Family::Exec as i32,
        operation_sid: batch.intern("exec"),
        role_sid: batch.intern(&role),
        pod: event.pod,
        remote: None,
        transport: Transport::Unspecified as i32,
        path_sid: batch.intern(&String::from_utf8_lossy(path)),
    });
    let who = table.who(h.pid, h.tid, h.cgroup_id, batch);
    batch.push_by(h.ts_boot_ns, &who, body);
}
