//! The `policy_status` row of a node's word on its workload policy: the
//! tier, the file and version in force, a failed reload, each role's modes
//! and rules, and what the tier cannot cover; and the `quarantine_acks` row
//! of a node's answer to a quarantine.

use plumbline_proto::{
    v1::{policy_family::Mode, PolicyFamily, PolicyStatus, QuarantineAck},
    BatchError, BatchReader, EventRef,
};
use plumbline_store::{to_json_column, PolicyStatusRow, QuarantineAckRow};

pub fn policy_status_row(
    reader: &BatchReader<'_>,
    event: &EventRef<'_>,
    status: &PolicyStatus,
) -> Result<PolicyStatusRow, BatchError> {
    let i = event.index;
    let family = |family: &Option<PolicyFamily>| -> Result<_, BatchError> {
        let Some(family) = family else { return Ok(None) };
        let mode = match Mode::try_from(family.mode) {
            Ok(Mode::Audit) => "audit",
            Ok(Mode::Enforce) => "enforce",
            Ok(Mode::Unspecified) | Err(_) => "unknown",
        };
        Ok(Some(plumbline_store::PolicyFamily {
            mode: mode.to_string(),
            rules: reader.str(i, family.rules_sid)?.to_string(),
        }))
    };
    let roles = status
        .roles
        .iter()
        .map(|role| {
            Ok(plumbline_store::PolicyRole {
                name: reader.str(i, role.name_sid)?.to_string(),
                exec: family(&role.exec)?,
                files: family(&role.files)?,
                network: family(&role.network)?,
                llm: family(&role.llm)?,
            })
        })
        .collect::<Result<Vec<_>, BatchError>>()?;
    let node = reader.node();
    Ok(PolicyStatusRow {
        host: node.host.clone(),
        boot_id: node.boot_id.clone(),
        ts_ns: event.ts_ns,
        wall_ns: reader.wall_ns(event.ts_ns),
        tier: status.tier as u8,
        bpf_lsm_listed: status.bpf_lsm_listed.into(),
        policy_file: reader.str(i, status.policy_file_sid)?.to_string(),
        policy_version: reader.str(i, status.policy_version_sid)?.to_string(),
        reload_error: reader.str(i, status.reload_error_sid)?.to_string(),
        roles: to_json_column(&roles),
        caveats: reader.strs(i, &status.caveat_sids)?,
    })
}

/// The `quarantine_acks` row of a node's acknowledgement; the node is the
/// batch's sender.
pub fn quarantine_ack_row(reader: &BatchReader<'_>, ack: &QuarantineAck) -> QuarantineAckRow {
    let node = reader.node();
    QuarantineAckRow {
        id: ack.id.clone(),
        host: node.host.clone(),
        boot_id: node.boot_id.clone(),
        session: ack.session.clone(),
        applied: ack.applied.into(),
        reason: ack.reason.clone(),
        pids: ack.pids.iter().map(u32::to_string).collect(),
        role: ack.role.clone(),
        finding_kind: ack.finding_kind.clone(),
        severity: ack.severity.clone(),
        issued_wall_ns: ack.issued_wall_ns,
        received_wall_ns: ack.received_wall_ns,
        wall_ns: ack.applied_wall_ns,
    }
}
