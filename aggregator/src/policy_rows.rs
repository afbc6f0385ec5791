//! The `policy_status` row of a node's word on its workload policy: the
//! tier, the file and version in force, a failed reload, each role's modes
//! and rules, and what the tier cannot cover.

use plumbline_proto::{
    v1::{policy_family::Mode, PolicyFamily, PolicyStatus},
    BatchError, BatchReader, EventRef,
};
use plumbline_store::{to_json_column, PolicyStatusRow};

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
