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
//! process of such a role writes on a TLS connection ([`guardrail_write`]),
//! the connection is aborted the same way (`aborted`, `sock_destroy`), or,
//! without `bpf_sock_destroy`, the process is killed (`killed_after`,
//! `signal`). The request has left by then: the match is on what was sent.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::{Mutex, OnceLock, RwLock},
};

use anyhow::Context;
use aya::{
    maps::{HashMap as BpfHashMap, MapData},
    Ebpf,
};
use plumbline_ebpf::abi::{decision, mechanism, mode, net_op, DnsName, EnforceNet, NetRuleAddr};
use plumbline_intent::endpoints::{Endpoint, EndpointCatalog};
use plumbline_proto::{
    v1::{
        enforcement_decision::{Decision, Family, Mechanism},
        event::Body,
        EnforcementDecision, SocketAddress, Transport,
    },
    BatchBuilder, Who,
};

use super::{
    enforcer::SharedEnforcer,
    names::name_hash,
    policy::{Mode, Policy, Role},
    sock_destroy,
};
use crate::intent::calls::ConnectionInfo;

const ADDR_DENY: u8 = 1;
const ADDR_CHECK: u8 = 2;
const NAME_ALLOWED: u8 = 1;
const NAME_DENIED: u8 = 2;
const SOCK_ABORT: u8 = 4;

/// `struct plb_llm_sock` (llm_endpoints.bpf.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LlmSock {
    pub role: u32,
    pub pod: u32,
    pub tgid: u32,
    pub state: u8,
    pub llm_addr: u8,
    pub _pad0: u16,
}

// SAFETY: plain old data, laid out as the kernel's.
unsafe impl aya::Pod for LlmSock {}

static CONFIGURED: OnceLock<Vec<Endpoint>> = OnceLock::new();

/// The endpoints configured on this node (`[[capture.intent.endpoints]]`);
/// set once, before the policy is loaded.
pub fn configure(endpoints: &[Endpoint]) {
    let _ = CONFIGURED.set(endpoints.to_vec());
}

/// The providers of the configured endpoints: the policy knows them besides
/// the catalog's.
pub fn configured_providers() -> Vec<String> {
    let mut providers: Vec<String> = CONFIGURED
        .get()
        .into_iter()
        .flatten()
        .map(|e| e.provider.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    providers.dedup();
    providers
}

/// Every endpoint host of the node and its provider (`*` hosts left out:
/// they name no server).
fn endpoint_hosts() -> Vec<(String, String)> {
    let catalog = EndpointCatalog::with_extra(CONFIGURED.get().cloned().unwrap_or_default());
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

/// The exact endpoint hosts to resolve, when a role restricts its providers.
pub fn hosts_to_resolve(policy: &Policy) -> Vec<String> {
    if !policy.roles.iter().any(restricted) {
        return Vec::new();
    }
    let hosts: BTreeSet<String> =
        endpoint_hosts().into_iter().map(|(host, _)| host).filter(|h| !h.starts_with("*.")).collect();
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
    refused_hosts: HashMap<(u32, [u8; 16]), Vec<String>>,
}

type DnsNameKey = (u64, u32, u32);

fn entries(policy: &Policy, resolved: &HashMap<String, Vec<IpAddr>>) -> Entries {
    let hosts = endpoint_hosts();
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
    socks: BpfHashMap<MapData, u64, LlmSock>,
    written_names: Vec<DnsName>,
    written_addrs: Vec<NetRuleAddr>,
}

/// The hosts each (role, address) has that the role may not call.
type RefusedHosts = HashMap<(u32, [u8; 16]), Vec<String>>;

/// What an event about a refused address names, as the last policy written
/// left it.
static REFUSED_HOSTS: RwLock<Option<RefusedHosts>> = RwLock::new(None);

impl LlmMaps {
    /// Takes the maps out of the loaded enforce object, and loads its
    /// iter/tcp program where the kernel has `bpf_sock_destroy`.
    pub fn new(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        let mut take =
            |name: &str| ebpf.take_map(name).with_context(|| format!("the enforce object has no map {name}"));
        let maps = Self {
            names: BpfHashMap::try_from(take("llm_names")?)?,
            addrs: BpfHashMap::try_from(take("llm_addrs")?)?,
            socks: BpfHashMap::try_from(take("llm_socks")?)?,
            written_names: Vec::new(),
            written_addrs: Vec::new(),
        };
        sock_destroy::load(ebpf);
        Ok(maps)
    }

    /// Writes `policy`'s LLM endpoint rules, replacing the last ones.
    pub fn apply(&mut self, policy: &Policy, resolved: &HashMap<String, Vec<IpAddr>>) -> anyhow::Result<()> {
        let entries = entries(policy, resolved);
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
        *REFUSED_HOSTS.write().unwrap_or_else(|e| e.into_inner()) = Some(entries.refused_hosts);
        Ok(())
    }

    /// Marks the connection `cookie` of `tgid` (role, pod) to be aborted.
    fn mark_abort(&mut self, cookie: u64, role: u32, pod: u32, tgid: u32) -> anyhow::Result<()> {
        let sock = LlmSock { role, pod, tgid, state: SOCK_ABORT, llm_addr: 0, _pad0: 0 };
        self.socks.insert(cookie, sock, 0).context("marking the connection to abort")
    }
}

/// A decision about an LLM endpoint the kernel made (an `EnforceNet` with
/// an LLM op): the decision as it finally stands, the operation, and the
/// host names it is about. `None` for other ops.
pub struct KernelDecision {
    pub decision: u8,
    pub mechanism: u8,
    pub operation: &'static str,
    pub hosts: String,
}

/// A refused server name is followed by the abort of its connection here;
/// what the kernel did stands where that is not possible.
pub fn decided_in_kernel(event: &EnforceNet) -> Option<KernelDecision> {
    let operation = match event.op {
        net_op::LLM_CONNECT => "connect",
        net_op::LLM_SERVER_NAME => "tls_server_name",
        net_op::LLM_UNREADABLE => "tls_server_name_unreadable",
        _ => return None,
    };
    let mut addr = [0u8; 16];
    if event.remote.family == libc::AF_INET as u16 {
        addr[10] = 0xff;
        addr[11] = 0xff;
        addr[12..].copy_from_slice(&event.remote.addr[..4]);
    } else {
        addr = event.remote.addr;
    }
    let hosts = REFUSED_HOSTS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|by| by.get(&(event.role, addr)).map(|hosts| hosts.join(",")))
        .unwrap_or_default();
    let (mut decided, mut how) = (event.decision, event.mechanism);
    if decided == decision::DENIED && how == mechanism::CGROUP_SKB {
        match sock_destroy::destroy_in(event.hdr.pid) {
            Ok(n) if n > 0 => (decided, how) = (decision::ABORTED, mechanism::SOCK_DESTROY),
            Ok(_) => tracing::warn!(pid = event.hdr.pid, "a refused LLM connection was not found to abort"),
            Err(err) => tracing::debug!(pid = event.hdr.pid, error = format!("{err:#}"), "not aborted"),
        }
    }
    Some(KernelDecision { decision: decided, mechanism: how, operation, hosts })
}

static ENFORCER: OnceLock<SharedEnforcer> = OnceLock::new();

/// The enforcer the guardrail path asks about roles.
pub fn install(enforcer: SharedEnforcer) {
    let _ = ENFORCER.set(enforcer);
}

/// Connections already aborted for a guardrail: (pid, fd, connection id).
static ABORTED: Mutex<Option<HashSet<(u32, u64)>>> = Mutex::new(None);

/// Plaintext `data` that process `who.pid` wrote on the TLS connection
/// `conn_id` (`info`): when its role has `kill_on_guardrail` and the
/// guardrails match it, the connection is aborted (or, without
/// `bpf_sock_destroy`, the process killed) and the decision pushed.
pub fn guardrail_write(
    conn_id: u64,
    info: &ConnectionInfo,
    data: &[u8],
    ts_ns: u64,
    who: &Who,
    batch: &mut BatchBuilder,
) {
    let Some(shared) = ENFORCER.get() else { return };
    let pid = who.pid;
    let Some((role, pod, role_name)) = shared.lock().unwrap_or_else(|e| e.into_inner()).kill_on_guardrail(pid) else {
        return;
    };
    // As on the calls the node reports: secrets redacted first, then the
    // guardrails on what remains.
    let written = String::from_utf8_lossy(data);
    let text = plumbline_intent::redact::redact_text(&written);
    let Some(finding) = plumbline_intent::guardrails::scan(&text).into_iter().next() else { return };
    {
        let mut aborted = ABORTED.lock().unwrap_or_else(|e| e.into_inner());
        if !aborted.get_or_insert_with(HashSet::new).insert((pid, conn_id)) {
            return;
        }
    }
    let guardrail = finding.kind.name();
    let (decided, how) = if sock_destroy::available() {
        let destroyed = sock_destroy::socket_cookie(pid, info.fd)
            .and_then(|cookie| {
                shared.lock().unwrap_or_else(|e| e.into_inner()).llm_maps().mark_abort(cookie, role, pod, pid)
            })
            .and_then(|()| sock_destroy::destroy_in(pid));
        match destroyed {
            Ok(n) if n > 0 => (Decision::Aborted, Mechanism::SockDestroy),
            // Closed already, or not found: nothing was done, nothing is claimed.
            Ok(_) => {
                tracing::warn!(pid, guardrail, "a guardrail matched on a connection that was not found to abort");
                return;
            }
            Err(err) => {
                tracing::warn!(pid, guardrail, error = format!("{err:#}"), "aborting the connection failed");
                return;
            }
        }
    } else {
        // Without bpf_sock_destroy: the process, not its connection.
        // SAFETY: a signal to a process of the workload.
        if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } != 0 {
            return;
        }
        (Decision::KilledAfter, Mechanism::Signal)
    };
    tracing::info!(pid, role = role_name, guardrail, decision = ?decided, "guardrail match on an LLM request");
    let body = Body::Enforcement(EnforcementDecision {
        decision: decided as i32,
        mechanism: how as i32,
        family: Family::Llm as i32,
        operation_sid: batch.intern("guardrail"),
        role_sid: batch.intern(&role_name),
        pod,
        remote: info.remote.map(socket_address),
        transport: Transport::Tcp as i32,
        path_sid: batch.intern(guardrail),
    });
    batch.push_by(ts_ns, who, body);
}

fn socket_address(addr: SocketAddr) -> SocketAddress {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    SocketAddress { ip, port: u32::from(addr.port()), path_sid: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_only_refused_endpoints_have_is_refused_and_a_shared_one_is_checked() {
        configure(&[
            Endpoint::new("openai", "openai.llm.test", "/", plumbline_intent::llm::Format::OpenAiChat),
            Endpoint::new("anthropic", "anthropic.llm.test", "/", plumbline_intent::llm::Format::AnthropicMessages),
            Endpoint::new("anthropic", "*.claude.test", "/", plumbline_intent::llm::Format::AnthropicMessages),
        ]);
        let policy = Policy::parse_knowing(
            "[[roles]]\nname = \"r\"\nmode = \"enforce\"\n[roles.llm]\nallow = [\"openai\"]\n\
             [[workloads]]\nrole = \"r\"\nfield = \"PROCESS_NAME\"\npattern = \"x\"\n",
            &configured_providers(),
        )
        .unwrap();
        let (shared, alone): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let resolved = HashMap::from([
            ("openai.llm.test".to_string(), vec![shared]),
            ("anthropic.llm.test".to_string(), vec![shared, alone]),
        ]);
        let out = entries(&policy, &resolved);
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
