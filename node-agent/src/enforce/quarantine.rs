//! Quarantine on the node: the aggregator's update names an agent session's
//! processes on this node; they and their live descendants are enrolled in
//! the built-in role `quarantine`, which may reach only LLM endpoints (the
//! catalog's provider hosts, as `llm:*` resolves, and the hosts of the node's
//! `[[capture.intent.endpoints]]`), in enforce mode. The role is appended to
//! the policy file's roles (role ids follow the policy's order), so a
//! reloaded file keeps it in force and its processes enrolled. The node
//! answers every update that names it with an acknowledgement (applied or
//! not, and why), sent on the events road in a batch of its own
//! (`super::quarantine_updates` reads the updates and applies them).

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    sync::Arc,
};

use bytes::Bytes;
use plumbline_intent::endpoints::Endpoint;
use plumbline_proto::{
    v1::{event::Body, NodeIdentity, QuarantineAck},
    BatchBuilder, BatchHeader,
};
use plumbline_transport::{control::ControlSubscriber, OutgoingBatch};
use prost::Message;

use super::{
    kernel::KernelPolicy,
    policy::{Mode, NetworkSpec, Policy, PolicySpec, RoleId, RoleSpec},
};
use crate::node;

/// The built-in role's name.
pub const ROLE: &str = "quarantine";

/// The built-in role: only LLM endpoints, enforced.
pub fn role_spec(endpoints: &[Endpoint]) -> RoleSpec {
    let mut allow = vec!["llm:*".to_string()];
    for endpoint in endpoints {
        let host = endpoint.host.trim();
        if host == "*" || host.is_empty() {
            tracing::warn!(provider = %endpoint.provider, "an endpoint for any host cannot be allowed by name: quarantine leaves it out");
            continue;
        }
        // A bare IPv6 address is written in brackets; a name or IPv4 as it is.
        let entry = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
        if !allow.contains(&entry) {
            allow.push(entry);
        }
    }
    RoleSpec {
        name: ROLE.into(),
        mode: Some(Mode::Enforce),
        exec: None,
        files: None,
        network: Some(NetworkSpec { allow, mode: Some(Mode::Enforce) }),
        llm: None,
    }
}

/// The quarantine role and who it holds: inactive until the first
/// quarantine, then part of the policy in force for the agent's life.
#[derive(Debug, Clone, Default)]
pub struct Quarantine {
    /// The role, once a quarantine put it in force.
    pub spec: Option<RoleSpec>,
    pub active: bool,
    /// The role's id in the policy in force, once active.
    pub role_id: Option<RoleId>,
    /// Processes quarantines enrolled.
    pub enrolled: BTreeSet<u32>,
}

impl Quarantine {
    pub fn activate(&mut self, spec: RoleSpec) {
        self.spec = Some(spec);
        self.active = true;
    }

    /// `file` with the role appended, when active; `file` itself otherwise.
    pub fn policy(&self, file: &Arc<Policy>) -> anyhow::Result<Arc<Policy>> {
        let Some(role) = self.spec.as_ref().filter(|_| self.active) else { return Ok(Arc::clone(file)) };
        let mut spec = file.spec.clone();
        spec.roles.push(role.clone());
        let policy = Policy::compile_knowing(spec, &file.providers).map_err(|err| {
            anyhow::anyhow!("the policy with the built-in role {ROLE} appended does not compile: {err}")
        })?;
        Ok(Arc::new(policy))
    }

    /// After `policy` was written to the kernel: the role is the policy's
    /// last, so a file with more or fewer roles moves its id, and the
    /// processes it holds move with it.
    pub fn follow(&mut self, policy: &Policy, kernel: &mut KernelPolicy) -> anyhow::Result<()> {
        let id = policy.role_named(ROLE).filter(|_| self.active).map(|r| r.id);
        if let (Some(old), Some(new)) = (self.role_id, id) {
            if old != new {
                let moved = kernel.reassign(old, new)?;
                tracing::info!(moved, from = old.0, to = new.0, "quarantined processes follow their role's new id");
            }
        }
        self.role_id = id;
        Ok(())
    }

    /// Enrols `targets` in the role; a process that exited meanwhile is
    /// left out, and none left is a refusal.
    pub fn enrol(&mut self, targets: &[u32], kernel: &mut KernelPolicy) -> Result<Vec<u32>, String> {
        let role = self.role_id.ok_or("the quarantine role is not in the policy in force")?;
        let mut enrolled = Vec::new();
        for &tgid in targets {
            match kernel.enroll(tgid, role) {
                Ok(pod) => {
                    tracing::info!(pid = tgid, role = ROLE, pod, "quarantined");
                    enrolled.push(tgid);
                }
                Err(_) if !alive(tgid) => {}
                Err(err) => return Err(format!("the kernel refused to enrol pid {tgid}: {err:#}")),
            }
        }
        if enrolled.is_empty() {
            return Err(format!("no such process on this node: pid(s) {targets:?} exited"));
        }
        self.enrolled.extend(&enrolled);
        Ok(enrolled)
    }

    /// The host names the role allows, to resolve in advance.
    pub fn hosts_to_resolve(&self) -> Vec<String> {
        self.spec.as_ref().filter(|_| self.active).map_or_else(Vec::new, role_hosts)
    }
}

/// The host names `role` allows by name.
pub fn role_hosts(role: &RoleSpec) -> Vec<String> {
    let spec = PolicySpec { roles: vec![role.clone()], ..Default::default() };
    match Policy::compile(spec) {
        Ok(policy) => policy.hosts_to_resolve().into_iter().map(str::to_string).collect(),
        Err(err) => {
            tracing::error!(%err, "the built-in quarantine role does not compile");
            Vec::new()
        }
    }
}

/// What `hosts` resolve to now; those that do not are left out.
pub fn resolve(hosts: &[String]) -> HashMap<String, Vec<IpAddr>> {
    use std::net::ToSocketAddrs;
    let mut resolved = HashMap::new();
    for host in hosts {
        match (host.as_str(), 0).to_socket_addrs() {
            Ok(addrs) => {
                resolved.insert(host.clone(), addrs.map(|a| a.ip()).collect());
            }
            Err(err) => tracing::debug!(host, %err, "a host the quarantine role allows did not resolve"),
        }
    }
    resolved
}

/// `pids` that are alive, and every live descendant of theirs, sorted.
pub fn with_descendants(pids: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = BTreeSet::new();
    let mut todo: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    while let Some(pid) = todo.pop() {
        if found.insert(pid) {
            todo.extend(children.get(&pid).into_iter().flatten().copied());
        }
    }
    found.into_iter().collect()
}

fn alive(pid: u32) -> bool {
    pid != 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold anything: state, then ppid.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub(super) fn now_wall_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Where the agent reads policy updates: the control topic next to the
/// events topic when the sink is Kafka; none for stdout.
pub async fn control_from_config(sink: &crate::SinkConfig, node: &NodeIdentity) -> Option<Box<dyn ControlSubscriber>> {
    match sink {
        crate::SinkConfig::Kafka(kafka) => {
            let spec = kafka.control_spec();
            Some(Box::new(plumbline_transport::kafka::KafkaControlSubscriber::new(&spec, &node.host).await))
        }
        crate::SinkConfig::Stdout => None,
    }
}

/// The batch of one acknowledgement.
pub fn ack_batch(ack: QuarantineAck, node: &NodeIdentity, run_id: &str, sequence: u64) -> OutgoingBatch {
    let mut builder = BatchBuilder::new();
    builder.push(node::boot_ns(), 0, 0, 0, Body::QuarantineAck(ack));
    let header =
        BatchHeader { node: node.clone(), clock: node::clock_anchor(), agent_run_id: run_id.to_string(), sequence };
    let batch = builder.finish(header);
    OutgoingBatch { key: node.host.clone(), payload: Bytes::from(batch.encode_to_vec()), events: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_allows_llm_hosts_and_the_configured_endpoints_only_and_enforces() {
        let endpoint = |host: &str| Endpoint {
            provider: "openai".into(),
            host: host.into(),
            path_prefix: "/v1".into(),
            format: plumbline_intent::llm::Format::OpenAiChat,
        };
        let spec = role_spec(&[endpoint("localhost"), endpoint("*"), endpoint("::1"), endpoint("localhost")]);
        let network = spec.network.as_ref().unwrap();
        assert_eq!(network.allow, ["llm:*", "localhost", "[::1]"]);
        let policy = Policy::compile(PolicySpec { roles: vec![spec], ..Default::default() }).unwrap();
        let role = &policy.roles[0];
        assert!(!role.decide_connect("::1".parse().unwrap(), 8443).blocks());
        assert!(role.decide_connect("127.0.0.2".parse().unwrap(), 9).blocks());
        assert!(role.exec.is_none() && role.files.is_none());
    }

    #[test]
    fn the_role_is_appended_after_the_file_s_roles_once_active() {
        let file = Arc::new(
            Policy::parse(
                "[[roles]]\nname = \"a\"\n[[workloads]]\nrole = \"a\"\nfield = \"PROCESS_NAME\"\npattern = \"x\"\n",
            )
            .unwrap(),
        );
        let mut quarantine = Quarantine::default();
        assert_eq!(quarantine.policy(&file).unwrap().roles.len(), 1);
        quarantine.activate(role_spec(&[]));
        let policy = quarantine.policy(&file).unwrap();
        assert_eq!(policy.role_named(ROLE).map(|r| r.id), Some(RoleId(2)));
    }

    #[test]
    fn a_file_naming_a_configured_provider_still_takes_the_role() {
        let text = "[[roles]]\nname = \"a\"\n[roles.llm]\nallow = [\"inhouse\"]\n";
        let file = Arc::new(Policy::compile_knowing(toml::from_str(text).unwrap(), &["inhouse".to_string()]).unwrap());
        let mut quarantine = Quarantine::default();
        quarantine.activate(role_spec(&[]));
        let policy = quarantine.policy(&file).expect("compiled knowing the file's providers");
        assert_eq!(policy.role_named(ROLE).map(|r| r.id), Some(RoleId(2)));
    }

    #[test]
    fn descendants_are_found_through_proc() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let found = with_descendants(&[std::process::id()]);
        assert!(found.contains(&std::process::id()) && found.contains(&child.id()), "{found:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(with_descendants(&[u32::MAX - 1]).is_empty(), "a pid that does not exist");
    }
}
