//! Workload policy decisions as the query service answers them: names for
//! the stored codes.

use plumbline_proto::v1::EnforcementView;
use plumbline_store::{decision, family, mechanism, EnforcementDecisionRow};

pub fn view(row: EnforcementDecisionRow) -> EnforcementView {
    EnforcementView {
        decision: decision::name(row.decision).to_string(),
        mechanism: mechanism::name(row.mechanism).to_string(),
        family: family::name(row.family).to_string(),
        transport: crate::connections::transport_name(row.transport).to_string(),
        host: row.host,
        boot_id: row.boot_id,
        pid: row.pid,
        comm: row.comm,
        wall_ns: row.wall_ns,
        operation: row.operation,
        role: row.role,
        pod: row.pod,
        remote_addr: row.remote_addr,
        remote_port: row.remote_port,
        path: row.path,
    }
}
