//! `[roles.llm]` on this node: the LLM endpoints a role may call, and the
//! connection a guardrail match aborts.
//!
//! The node's LLM endpoints are the catalog's and the configured ones
//! (`[[capture.intent.endpoints]]`), by host name. For each role whose
//! `[roles.llm] allow` restricts the providers, the kernel is given (see
//! `llm_endpoints.bpf.h`):
//! - `llm_names`: every endpoint host (`*.suffix` hosts as suffixes), allowed
//!   or not for the role (allowed wins where two endpoints share a host);
//! - `llm_addrs`: the addresses the exact hosts resolve to (here, at load and
//!   every minute): `DENY` where only endpoints the role may not call have
//!   the address (refused at connect), `CHECK` where an allowed one shares it
//!   (the TLS server name decides).
//!
//! A TLS server name the role may not call is dropped in the kernel before
//! the ClientHello leaves; the agent then aborts the connection with
//! `bpf_sock_destroy` ([`super::sock_destroy`]), reported `aborted` by
//! `sock_destroy`, or, on a kernel without it, keeps its packets dropped and
//! reports `denied` by `cgroup_skb` (the client waits for its own timeout).
//!
//! `kill_on_guardrail`: when the agent's guardrails match the plaintext a
//! process of such a role writes on a TLS connection, the connection is
//! aborted the same way (`aborted`, `sock_destroy`), or, without
//! `bpf_sock_destroy`, the process is killed (`killed_after`, `signal`). The
//! request has left by then: the match is on what was sent. Both aborts are
//! [`super::llm_enforcement`]'s; this module writes the maps and tells it
//! what the policy written refuses.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    net::IpAddr,
};

use anyhow::Context;
use aya::{
    maps::{HashMap as BpfHashMap, MapData},
    Ebpf,
};
use plumbline_ebpf::abi::{mode, DnsName, NetRuleAddr};
use plumbline_intent::endpoints::{Endpoint, EndpointCatalog};

use super::{
    llm_enforcement::{LlmEnforcement, RefusedHosts},
    names::name_hash,
    policy::{Mode, Policy, Role},
};

const ADDR_DENY: u8 = 1;
const ADDR_CHECK: u8 = 2;
const NAME_ALLOWED: u8 = 1;
const NAME_DENIED: u8 = 2;

/// Every endpoint host of the node (the catalog's and `configured`) and its
/// provider (`*` hosts left out: they name no server).
fn endpoint_hosts(configured: &[Endpoint]) -> Vec<(String, String)> {
    let catalog = EndpointCatalog::with_extra(configured.to_vec());
    let mut hosts: Vec<(String, String)> = catalog
        .endpoints
        .iter()
        .filter(|e| e.host != "*")
        .map(|e| (e.host.trim_end_matches('.').to_ascii_lowercase(), e.provider.clone()))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The role restricts the providers it may call.
fn restricted(role: &Role) -> bool {
    role.llm.as_ref().is_some_and(|llm| llm.providers.is_some())
}

/// The exact endpoint hosts to resolve, when a role restricts its providers;
/// `configured`: the node's endpoints besides the catalog's.
pub fn hosts_to_resolve(policy: &Policy, configured: &[Endpoint]) -> Vec<String> {
    if !policy.roles.iter().any(restricted) {
        return Vec::new();
    }
    let hosts: BTreeSet<String> =
        endpoint_hosts(configured).into_iter().map(|(host, _)| host).filter(|h| !h.starts_with("*.")).collect();
    hosts.into_iter().collect()
}

/// The role's LLM mode in the kernel's `roles` map.
pub fn role_mode(role: &Role) -> u8 {
    match role.llm.as_ref().filter(|_| restricted(role)).map(|llm| llm.mode) {
        None => mode::OFF,
        Some(Mode::Audit) => mode::AUDIT,
        Some(Mode::Enforce) => mode::ENFORCE,
    }
}

fn mapped(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// What the kernel is given for `policy`: names and addresses per role, and
/// which hosts the role may not call at each address (for the events).
#[derive(Debug, Default, PartialEq)]
struct Entries {
    names: HashMap<DnsNameKey, u8>,
    addrs: HashMap<(u32, [u8; 16]), u8>,
    /// (role, address) → the hosts there the role may not call.
    refused_hosts: RefusedHosts,
}

type DnsNameKey = (u64, u32, u32);

fn entries(policy: &Policy, resolved: &HashMap<String, Vec<IpAddr>>, configured: &[Endpoint]) -> Entries {
    let hosts = endpoint_hosts(configured);
    let mut out = Entries::default();
    for role in policy.roles.iter().filter(|r| restricted(r)) {
        let Some(llm) = &role.llm else { continue };
        let id = role.id.0;
        let mut allowed_addrs = HashSet::new();
        let mut refused_addrs: HashMap<[u8; 16], Vec<String>> = HashMap::new();
        for (host, provider) in &hosts {
            let allowed = llm.allows_provider(provider);
            let (name, below) = match host.strip_prefix("*.") {
                Some(suffix) => (suffix, 1),
                None => (host.as_str(), 0),
            };
            let value = if allowed { NAME_ALLOWED } else { NAME_DENIED };
            let held = out.names.entry((name_hash(name), id, below)).or_insert(value);
            if allowed {
                *held = NAME_ALLOWED;
            }
            if below == 1 {
                continue;
            }
            for addr in resolved.get(host).into_iter().flatten() {
                if allowed {
                    allowed_addrs.insert(mapped(*addr));
                } else {
                    let at = refused_addrs.entry(mapped(*addr)).or_default();
                    if !at.contains(host) {
                        at.push(host.clone());
                    }
                }
            }
        }
        for addr in &allowed_addrs {
            out.addrs.insert((id, *addr), ADDR_CHECK);
        }
        for (addr, hosts) in refused_addrs {
            if !allowed_addrs.contains(&addr) {
                out.addrs.insert((id, addr), ADDR_DENY);
            }
            out.refused_hosts.insert((id, addr), hosts);
        }
    }
    out
}

/// The enforce object's LLM endpoint maps.
pub struct LlmMaps {
    names: BpfHashMap<MapData, DnsName, u8>,
    addrs: BpfHashMap<MapData, NetRuleAddr, u8>,
    written_names: Vec<DnsName>,
    written_addrs: Vec<NetRuleAddr>,
}

impl LlmMaps {
    /// Takes the maps out of the loaded enforce object.
    pub fn new(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        let mut take =
            |name: &str| ebpf.take_map(name).with_context(|| format!("the enforce object has no map {name}"));
        Ok(Self {
            names: BpfHashMap::try_from(take("llm_names")?)?,
            addrs: BpfHashMap::try_from(take("llm_addrs")?)?,
            written_names: Vec::new(),
            written_addrs: Vec::new(),
        })
    }

    /// Writes `policy`'s LLM endpoint rules, replacing the last ones, and
    /// tells `llm` what they refuse.
    pub fn apply(
        &mut self,
        policy: &Policy,
        resolved: &HashMap<String, Vec<IpAddr>>,
        llm: &LlmEnforcement,
    ) -> anyhow::Result<()> {
        let entries = entries(policy, resolved, llm.endpoints());
        for key in self.written_names.drain(..) {
            let _ = self.names.remove(&key);
        }
        for ((hash, role, below), value) in &entries.names {
            let key = DnsName { hash: *hash, role: *role, below: *below };
            self.names.insert(key, value, 0).context("writing the LLM endpoint names")?;
            self.written_names.push(key);
        }
        for key in self.written_addrs.drain(..) {
            let _ = self.addrs.remove(&key);
        }
        for ((role, addr), value) in &entries.addrs {
            let key = NetRuleAddr { role: *role, addr: *addr };
            self.addrs.insert(key, value, 0).context("writing the LLM endpoint addresses")?;
            self.written_addrs.push(key);
        }
        llm.policy_written(policy, entries.refused_hosts);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_only_refused_endpoints_have_is_refused_and_a_shared_one_is_checked() {
        let configured = [
            Endpoint::new("openai", "openai.llm.test", "/", plumbline_intent::llm::Format::OpenAiChat),
            Endpoint::new("anthropic", "anthropic.llm.test", "/", plumbline_intent::llm::Format::AnthropicMessages),
            Endpoint::new("anthropic", "*.claude.test", "/", plumbline_intent::llm::Format::AnthropicMessages),
        ];
        let policy = Policy::parse_knowing(
            "[[roles]]\nname = \"r\"\nmode = \"enforce\"\n[roles.llm]\nallow = [\"openai\"]\n\
             [[workloads]]\nrole = \"r\"\nfield = \"PROCESS_NAME\"\npattern = \"x\"\n",
            &["anthropic".to_string(), "openai".to_string()],
        )
        .unwrap();
        let (shared, alone): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let resolved = HashMap::from([
            ("openai.llm.test".to_string(), vec![shared]),
            ("anthropic.llm.test".to_string(), vec![shared, alone]),
        ]);
        let out = entries(&policy, &resolved, &configured);
        let id = policy.roles[0].id.0;
        assert_eq!(out.addrs.get(&(id, mapped(shared))), Some(&ADDR_CHECK));
        assert_eq!(out.addrs.get(&(id, mapped(alone))), Some(&ADDR_DENY));
        assert_eq!(out.names.get(&(name_hash("openai.llm.test"), id, 0)), Some(&NAME_ALLOWED));
        assert_eq!(out.names.get(&(name_hash("anthropic.llm.test"), id, 0)), Some(&NAME_DENIED));
        assert_eq!(out.names.get(&(name_hash("claude.test"), id, 1)), Some(&NAME_DENIED));
        assert_eq!(out.names.get(&(name_hash("api.openai.com"), id, 0)), Some(&NAME_ALLOWED));
        assert_eq!(out.refused_hosts[&(id, mapped(shared))], ["anthropic.llm.test"]);
        assert_eq!(role_mode(&policy.roles[0]), mode::ENFORCE);
    }
}
