//! `plumb policy`: per node, its tier and the policy it has in force, the
//! roles with each family's mode and rules, and what the tier cannot cover.

use std::fmt::Write as _;

use plumbline_proto::v1::{PolicyFamilyView, PolicyView};

use super::render::{table, time};

/// How many hex digits of the policy's hash are shown (the JSON has all).
const VERSION_DIGITS: usize = 12;

pub fn policy(nodes: &[PolicyView]) -> String {
    if nodes.is_empty() {
        return "no node has reported a workload policy (an agent reports it when [capture.enforce] names one)\n"
            .into();
    }
    let mut out = String::new();
    for (i, node) in nodes.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        node_status(node, &mut out);
    }
    out
}

fn node_status(node: &PolicyView, out: &mut String) {
    let listed = if node.bpf_lsm_listed { "listed" } else { "not listed" };
    let _ = writeln!(out, "host {}  tier {}  bpf lsm {listed}  last seen {}", node.host, node.tier, time(node.wall_ns));
    let version = node.policy_version.get(..VERSION_DIGITS).unwrap_or(&node.policy_version);
    let _ = writeln!(out, "policy {}  version {version}", node.policy_file);
    if !node.reload_error.is_empty() {
        let _ = writeln!(out, "reload failed, the last good policy stays in force: {}", node.reload_error);
    }
    out.push('\n');
    out.push_str(&table(&["ROLE", "EXEC", "FILES", "NETWORK", "LLM"], &node.roles, |role| {
        vec![role.name.clone(), family(&role.exec), family(&role.files), family(&role.network), family(&role.llm)]
    }));
    if !node.caveats.is_empty() {
        let _ = writeln!(out, "\nwhat tier {} does not cover:", node.tier);
        for caveat in &node.caveats {
            let _ = writeln!(out, "  - {caveat}");
        }
    }
}

/// "enforce: 2 allowed"; "-" for a family the role does not confine.
fn family(family: &Option<PolicyFamilyView>) -> String {
    family.as_ref().map_or_else(|| "-".into(), |f| format!("{}: {}", f.mode, f.rules))
}

#[cfg(test)]
mod tests {
    use plumbline_proto::v1::PolicyRoleView;

    use super::*;

    #[test]
    fn a_node_shows_its_tier_roles_a_failed_reload_and_its_caveats() {
        let enforce = |rules: &str| Some(PolicyFamilyView { mode: "enforce".into(), rules: rules.into() });
        let node = PolicyView {
            host: "vm".into(),
            tier: "fallback".into(),
            policy_file: "/etc/plumbline/policy.toml".into(),
            policy_version: "0123456789abcdef0123".into(),
            reload_error: "roles[0].mode: unknown variant `sometimes`".into(),
            roles: vec![PolicyRoleView {
                name: "net".into(),
                network: enforce("1 address rule"),
                ..Default::default()
            }],
            caveats: vec!["exec: killed after the exec".into()],
            ..Default::default()
        };
        let text = policy(&[node]);
        assert!(text.contains("tier fallback  bpf lsm not listed"), "{text}");
        assert!(text.contains("version 0123456789ab\n"), "{text}");
        assert!(text.contains("reload failed, the last good policy stays in force: roles[0].mode:"), "{text}");
        assert!(text.contains("net   -     -      enforce: 1 address rule  -\n"), "{text}");
        assert!(text.contains("what tier fallback does not cover:\n  - exec: killed after the exec\n"), "{text}");
    }
}
