//! Policy decisions the kernel made into events: what it did (denied before
//! the effect, killed after it began, or recorded in audit), by which hook,
//! to which process, about what, under which role.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use plumbline_ebpf::abi::{
    decision, file_op, mechanism, net_op, rate_op, EnforceExec, EnforceFile, EnforceNet, EnforceRate, EventHeader,
    SockAddr,
};
use plumbline_proto::{
    v1::{
        enforcement_decision::{Decision, Family, Mechanism},
        event::Body,
        EnforcementDecision, Transport,
    },
    BatchBuilder, Who,
};

use crate::{
    activity_events::socket_address,
    enforce::{
        llm_enforcement::{self, LlmDecision, LlmEnforcement, Process},
        names::RoleNames,
    },
    process_table::ProcessTable,
};

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
            Family::Llm => "llm",
            Family::Unspecified => "unknown",
        };
        let decision = match decision {
            Decision::Denied => "denied",
            Decision::KilledAfter => "killed_after",
            Decision::WouldDeny => "would_deny",
            Decision::Aborted => "aborted",
            Decision::Held => "held",
            Decision::KilledBefore => "killed_before",
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
        decision::ABORTED => Decision::Aborted,
        decision::HELD => Decision::Held,
        decision::KILLED_BEFORE => Decision::KilledBefore,
        _ => Decision::Unspecified,
    }
}

fn mechanism_of(value: u8) -> Mechanism {
    match value {
        mechanism::CGROUP_SOCK_ADDR => Mechanism::CgroupSockAddr,
        mechanism::SIGNAL => Mechanism::Signal,
        mechanism::LSM => Mechanism::Lsm,
        mechanism::SOCK_DESTROY => Mechanism::SockDestroy,
        mechanism::UPROBE => Mechanism::Uprobe,
        mechanism::CGROUP_SKB => Mechanism::CgroupSkb,
        _ => Mechanism::Unspecified,
    }
}

/// One decision as an event: the parts every family shares, then its own.
struct Decided<'a> {
    hdr: EventHeader,
    role: u32,
    pod: u32,
    decision: u8,
    mechanism: u8,
    family: Family,
    operation: &'static str,
    remote: Option<SockAddr>,
    transport: Transport,
    path: &'a [u8],
}

/// The parts every decision record carries (`EnforceNet`, `EnforceExec`,
/// `EnforceFile`), with no remote end and no path.
macro_rules! decided {
    ($event:expr, $family:expr, $operation:expr) => {
        Decided {
            hdr: $event.hdr,
            role: $event.role,
            pod: $event.pod,
            decision: $event.decision,
            mechanism: $event.mechanism,
            family: $family,
            operation: $operation,
            remote: None,
            transport: Transport::Unspecified,
            path: &[],
        }
    };
}

impl Decided<'_> {
    fn push(self, names: &RoleNames, counts: &DecisionCounts, table: &ProcessTable, batch: &mut BatchBuilder) {
        let role = names.of(self.role);
        counts.add(role.clone(), self.family, decision_of(self.decision));
        let path_sid = if self.path.is_empty() { 0 } else { batch.intern(&String::from_utf8_lossy(self.path)) };
        let body = Body::Enforcement(EnforcementDecision {
            decision: decision_of(self.decision) as i32,
            mechanism: mechanism_of(self.mechanism) as i32,
            family: self.family as i32,
            operation_sid: batch.intern(self.operation),
            role_sid: batch.intern(&role),
            pod: self.pod,
            remote: self.remote.as_ref().map(socket_address),
            transport: self.transport as i32,
            path_sid,
        });
        let h = self.hdr;
        let who = table.who(h.pid, h.tid, h.cgroup_id, batch);
        batch.push_by(h.ts_boot_ns, &who, body);
    }
}

/// A connect or send the process's role does not allow. An LLM endpoint
/// refused by its TLS server name is aborted where the kernel allows it:
/// its event comes once that is done (see [`push_llm`]).
pub fn encode_net(
    event: &EnforceNet,
    llm: Option<&LlmEnforcement>,
    names: &RoleNames,
    counts: &DecisionCounts,
    table: &ProcessTable,
    batch: &mut BatchBuilder,
) {
    if let Some(operation) = llm_enforcement::kernel_operation(event.op) {
        let h = event.hdr;
        let decided = LlmDecision {
            ts_ns: h.ts_boot_ns,
            process: Process::known(table, h.pid, h.tid, h.cgroup_id),
            decision: decision_of(event.decision),
            mechanism: mechanism_of(event.mechanism),
            operation,
            role: names.of(event.role),
            pod: event.pod,
            remote: Some(socket_address(&event.remote)),
            object: String::new(),
        };
        let now = match llm {
            Some(llm) => llm.kernel_decision(event, decided),
            None => Some(decided),
        };
        if let Some(decided) = now {
            push_llm(decided, counts, batch);
        }
        return;
    }
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
    Decided { remote: Some(event.remote), transport, ..decided!(event, Family::Network, operation) }
        .push(names, counts, table, batch);
}

/// An exec the process's role does not allow: refused (LSM), or seen once it
/// succeeded (fallback).
pub fn encode_exec(
    event: &EnforceExec,
    path: &[u8],
    names: &RoleNames,
    counts: &DecisionCounts,
    table: &ProcessTable,
    batch: &mut BatchBuilder,
) {
    Decided { path, ..decided!(event, Family::Exec, "exec") }.push(names, counts, table, batch);
}

/// A file operation the process's role does not allow: refused (LSM), or
/// seen once the open succeeded (fallback).
pub fn encode_file(
    event: &EnforceFile,
    path: &[u8],
    names: &RoleNames,
    counts: &DecisionCounts,
    table: &ProcessTable,
    batch: &mut BatchBuilder,
) {
    let operation = match (event.op, event.write != 0) {
        (file_op::OPEN, false) => "open",
        (file_op::OPEN, true) => "open_write",
        (file_op::CREATE, _) => "create",
        (file_op::UNLINK, _) => "unlink",
        (file_op::RENAME, _) => "rename",
        _ => "unknown",
    };
    Decided { path, ..decided!(event, Family::File, operation) }.push(names, counts, table, batch);
}

/// An LLM request past its role's rate (held, killed before it left, or
/// would_deny), or a connect refused while the process's request budget is
/// spent: the object text says which request of how many per window.
pub fn encode_rate(
    event: &EnforceRate,
    names: &RoleNames,
    counts: &DecisionCounts,
    table: &ProcessTable,
    batch: &mut BatchBuilder,
) {
    let mut object = crate::enforce::rate::request_text(event.request, event.requests, u64::from(event.window_s));
    let (operation, transport) = match event.op {
        rate_op::REQUEST => ("llm_request", Transport::Unspecified),
        rate_op::CONNECT => {
            let refused = if event.decision == decision::DENIED { "refused" } else { "would be refused" };
            object.push_str(&format!(": connect {} {refused}", crate::enforce::rate::endpoint_text(&event.remote)));
            ("connect", Transport::Tcp)
        }
        _ => ("unknown", Transport::Unspecified),
    };
    Decided { transport, path: object.as_bytes(), ..decided!(event, Family::Llm, operation) }
        .push(names, counts, table, batch);
}

/// An LLM decision, complete (the kernel's, or an abort's once done), with
/// the time and the process of the record that led to it.
pub fn push_llm(decided: LlmDecision, counts: &DecisionCounts, batch: &mut BatchBuilder) {
    counts.add(decided.role.clone(), Family::Llm, decided.decision);
    let path_sid = if decided.object.is_empty() { 0 } else { batch.intern(&decided.object) };
    let body = Body::Enforcement(EnforcementDecision {
        decision: decided.decision as i32,
        mechanism: decided.mechanism as i32,
        family: Family::Llm as i32,
        operation_sid: batch.intern(decided.operation),
        role_sid: batch.intern(&decided.role),
        pod: decided.pod,
        remote: decided.remote,
        transport: Transport::Tcp as i32,
        path_sid,
    });
    let p = decided.process;
    let who = Who {
        pid: p.pid,
        tid: p.tid,
        cgroup_id: p.cgroup_id,
        comm_sid: batch.intern(&p.comm),
        process_start_ns: p.start_ns,
    };
    batch.push_by(decided.ts_ns, &who, body);
}
