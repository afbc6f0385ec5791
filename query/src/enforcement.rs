//! Workload enforcement as the query service answers it: the decisions, and
//! the policy each node has in force, with names for the stored codes.

use plumbline_proto::v1::{EnforcementView, PolicyFamilyView, PolicyRoleView, PolicyView};
use plumbline_store::{
    decision, enforcement_tier, family, mechanism, EnforcementDecisionRow, PolicyFamily, PolicyStatusRow, StoreError,
};

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

pub fn policy_view(row: PolicyStatusRow) -> Result<PolicyView, StoreError> {
    let family = |f: Option<PolicyFamily>| f.map(|f| PolicyFamilyView { mode: f.mode, rules: f.rules });
    let roles = row
        .role_list()?
        .into_iter()
        .map(|r| PolicyRoleView {
            name: r.name,
            exec: family(r.exec),
            files: family(r.files),
            network: family(r.network),
            llm: family(r.llm),
        })
        .collect();
    Ok(PolicyView {
        tier: enforcement_tier::name(row.tier).to_string(),
        bpf_lsm_listed: row.bpf_lsm_listed != 0,
        host: row.host,
        boot_id: row.boot_id,
        wall_ns: row.wall_ns,
        policy_file: row.policy_file,
        policy_version: row.policy_version,
        reload_error: row.reload_error,
        roles,
        caveats: row.caveats,
    })
}
