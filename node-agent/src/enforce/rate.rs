//! `[roles.llm.rate]` in the kernel: a token bucket per (role, process),
//! counted at the start of each LLM request by uprobes at the TLS library's
//! write (`bpf/include/llm_rate.bpf.h`, part of the enforce object), and
//! what the agent does about the processes it holds.
//!
//! Why the enforce object and not the TLS capture's: the decision needs the
//! workload's pod, which the enforce object keeps (and inherits at fork in
//! the kernel); sharing that map with another object would take a pinned
//! map, a name every agent on the host would share. The uprobes are placed
//! the way the TLS capture places its own: on each file holding OpenSSL
//! (the system libssl at start, and the executables of enrolled processes),
//! so the limit holds whether TLS capture is on or not.
//!
//! What counts as an LLM request: an HTTP/1.x request line written on a TLS
//! connection whose server name (SNI) is the host of an LLM endpoint the
//! node knows (the catalog's and `[[capture.intent.endpoints]]`; `*.suffix`
//! hosts match the names below). The path is not looked at: every request
//! to such a host counts. HTTP/2 requests are not counted.
//!
//! The agent's part: every sweep it looks at the held processes' buckets and
//! sends SIGCONT once the bucket is back to 0 credit (the held request was
//! paid for when it was held), recording how long the process was held;
//! past `max_hold_s` it applies `after_hold`: `deny` resumes the process and
//! has the connect hooks refuse its new connections until a token is back,
//! `kill` sends SIGKILL (the held request never left).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use anyhow::Context;
use aya::{
    maps::{Array, HashMap as BpfHashMap, MapData},
    Ebpf,
};
use plumbline_ebpf::abi::{mode, rate_action, rate_flag, RateBucket, RateKey, RateRule, ROLES_MAX};
use plumbline_intent::endpoints::EndpointCatalog;
use plumbline_proto::{
    v1::{
        enforcement_decision::{Decision, Family, Mechanism},
        event::Body,
        EnforcementDecision,
    },
    BatchBuilder,
};

use super::{
    names::RoleNames,
    policy::{Mode, Policy, RateAction, RateRules, RoleId},
};
use crate::{
    file_probes::{FileProbes, ProbePoint},
    intent::targets::{self, TlsTarget},
    process_table::ProcessTable,
};

/// `llm_hosts` values (see `llm_rate.bpf.h`).
const HOST_EXACT: u8 = 1;
const HOST_BELOW: u8 = 2;
const HOST_ANY: u8 = 4;

/// The TLS capture's OpenSSL programs and the rate programs placed at the
/// same functions.
const RATE_PROGRAMS: [(&str, &str); 3] = [
    ("plb_ssl_write", "plb_rate_ssl_write"),
    ("plb_ssl_write_ex", "plb_rate_ssl_write_ex"),
    ("plb_ssl_ctrl", "plb_rate_ssl_ctrl"),
];

/// The kernel's hash of a host name (`plb_rate_host_hash`): FNV-1a over its
/// bytes, lower case, from the last to the first.
pub fn host_hash(host: &str) -> u64 {
    host.bytes().rev().fold(plumbline_ebpf::abi::NAME_HASH_BASIS, |hash, byte| {
        (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(plumbline_ebpf::abi::NAME_HASH_PRIME)
    })
}

/// The `llm_hosts` entries for the endpoints' hosts: (hash, how it matches).
pub fn host_entries<'a>(hosts: impl IntoIterator<Item = &'a str>) -> HashMap<u64, u8> {
    let mut entries: HashMap<u64, u8> = HashMap::new();
    for host in hosts {
        let host = host.trim().trim_end_matches('.');
        let (key, how) = if host == "*" {
            (0, HOST_ANY)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            (host_hash(suffix), HOST_BELOW)
        } else {
            (host_hash(host), HOST_EXACT)
        };
        *entries.entry(key).or_default() |= how;
    }
    entries
}

/// The hosts of the node's LLM endpoints: the configured ones and the catalog's.
pub fn endpoint_hosts(configured: &[plumbline_intent::endpoints::Endpoint]) -> Vec<String> {
    let catalog = EndpointCatalog::with_extra(configured.to_vec());
    let mut hosts: Vec<String> = catalog.endpoints.iter().map(|e| e.host.to_ascii_lowercase()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
}

/// What the kernel holds of a role's rate (zero: none).
pub fn rule_of(rules: Option<&RateRules>, llm_mode: Mode) -> RateRule {
    let mut rule: RateRule = bytemuck::Zeroable::zeroed();
    if let Some(rate) = rules {
        rule.window_ns = rate.window_ns;
        rule.cost_ns = rate.window_ns / u64::from(rate.requests.max(1));
        rule.requests = rate.requests;
        rule.action = match rate.action {
            RateAction::Hold => rate_action::HOLD,
            RateAction::Deny => rate_action::DENY,
            RateAction::Kill => rate_action::KILL,
        };
        rule.mode = match llm_mode {
            Mode::Audit => mode::AUDIT,
            Mode::Enforce => mode::ENFORCE,
        };
    }
    rule
}

/// The object text of a decision: which request, of how many per window.
pub fn request_text(request: u32, requests: u32, window_s: u64) -> String {
    format!("request {request} of {requests} per {window_s} s")
}

/// `address:port` of a record's remote end.
pub fn endpoint_text(addr: &plumbline_ebpf::abi::SockAddr) -> String {
    let ip = if addr.family == libc::AF_INET as u16 {
        std::net::IpAddr::from([addr.addr[0], addr.addr[1], addr.addr[2], addr.addr[3]])
    } else {
        std::net::Ipv6Addr::from(addr.addr).to_canonical()
    };
    std::net::SocketAddr::new(ip, addr.port).to_string()
}

/// What the agent does about a held process now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldStep {
    /// Still owes: stays stopped.
    Wait,
    /// The bucket is back to 0 credit: resume it.
    Release,
    /// Held max_hold_s: resume it, refuse its new connections until a
    /// token is back.
    ReleaseDenying,
    /// Held max_hold_s: kill it.
    Kill,
}

/// What to do about a process held since `bucket.held_ns` at `now_ns`.
pub fn held_step(bucket: &RateBucket, rule: &RateRules, now_ns: u64) -> HeldStep {
    if now_ns.saturating_add(rule.window_ns) >= bucket.tat_ns {
        return HeldStep::Release;
    }
    if now_ns.saturating_sub(bucket.held_ns) < rule.max_hold_ns {
        return HeldStep::Wait;
    }
    match rule.after_hold {
        RateAction::Kill => HeldStep::Kill,
        _ => HeldStep::ReleaseDenying,
    }
}

/// The rate maps, the uprobes on each OpenSSL file, and the rules in force.
pub struct RateLimiter {
    rules: Array<MapData, RateRule>,
    buckets: BpfHashMap<MapData, RateKey, RateBucket>,
    probes: FileProbes<bool>,
    in_force: HashMap<u32, RateRules>,
    /// Whether any role has a rate (else nothing is examined).
    any: bool,
}

impl RateLimiter {
    /// Takes the rate maps out of the loaded enforce object, writes the LLM
    /// endpoint hosts, and keeps the object to attach its uprobes.
    pub fn new(mut ebpf: Ebpf, hosts: &[String]) -> anyhow::Result<Self> {
        let mut take =
            |name: &str| ebpf.take_map(name).with_context(|| format!("the enforce object has no map {name}"));
        let rules = Array::try_from(take("llm_rate_rules")?)?;
        let buckets = BpfHashMap::try_from(take("llm_rate_buckets")?)?;
        let mut host_map: BpfHashMap<MapData, u64, u8> = BpfHashMap::try_from(take("llm_hosts")?)?;
        for (hash, how) in host_entries(hosts.iter().map(String::as_str)) {
            host_map.insert(hash, how, 0).context("writing the LLM endpoint hosts")?;
        }
        Ok(Self { rules, buckets, probes: FileProbes::new(ebpf), in_force: HashMap::new(), any: false })
    }

    /// Writes each role's rate; hooks the system's OpenSSL when a role has one.
    pub fn apply(&mut self, policy: &Policy) -> anyhow::Result<()> {
        self.in_force.clear();
        for id in 1..ROLES_MAX as u32 {
            let role = policy.role(RoleId(id));
            let llm = role.and_then(|r| r.llm.as_ref());
            let rate = llm.and_then(|l| l.rate.as_ref());
            if let (Some(llm), Some(rate)) = (llm, rate) {
                self.in_force.insert(id, *rate);
                self.rules.set(id, rule_of(Some(rate), llm.mode), 0).context("writing the LLM rates")?;
            } else {
                self.rules.set(id, rule_of(None, Mode::Audit), 0).context("writing the LLM rates")?;
            }
        }
        let was = self.any;
        self.any = !self.in_force.is_empty();
        if self.any && !was {
            for path in system_openssl() {
                self.examine(&path);
            }
        }
        Ok(())
    }

    /// Hooks the file at `path` when it holds OpenSSL (once per file).
    pub fn examine(&mut self, path: &Path) {
        match self.probes.examine(path, inspect) {
            Some(Ok(true)) => tracing::debug!(path = %path.display(), "LLM rate uprobes attached"),
            Some(Err(failed)) => tracing::warn!(
                path = %path.display(),
                error = format!("{:#}", failed.error),
                "LLM requests through this file are not counted"
            ),
            _ => {}
        }
    }

    /// Hooks the OpenSSL an enrolled process maps (an executable with
    /// OpenSSL linked in, such as node).
    pub fn examine_process(&mut self, pid: u32) {
        if !self.any {
            return;
        }
        for file in crate::file_probes::mapped_executables(pid) {
            self.examine(&file);
        }
    }

    /// Releases, denies or kills the held processes whose time has come,
    /// and forgets the buckets of processes gone; each action is an event.
    pub fn tick(
        &mut self,
        now_ns: u64,
        pod_of: impl Fn(u32) -> u32,
        names: &RoleNames,
        table: &ProcessTable,
        batch: &mut BatchBuilder,
    ) {
        let entries: Vec<(RateKey, RateBucket)> = self.buckets.iter().filter_map(Result::ok).collect();
        for (key, mut bucket) in entries {
            let alive = Path::new(&format!("/proc/{}", key.tgid)).exists();
            if !alive {
                let _ = self.buckets.remove(&key);
                continue;
            }
            if bucket.flags & rate_flag::HELD == 0 {
                continue;
            }
            let Some(rule) = self.in_force.get(&key.role).copied() else {
                // The rate is gone from the policy: nothing holds it any more.
                bucket.flags &= !rate_flag::HELD;
                let _ = self.buckets.insert(key, bucket, 0);
                signal(key.tgid, libc::SIGCONT);
                continue;
            };
            let step = held_step(&bucket, &rule, now_ns);
            let held_s = now_ns.saturating_sub(bucket.held_ns) as f64 / 1e9;
            let window_s = rule.window_ns / 1_000_000_000;
            let object = request_text(bucket.request, rule.requests, window_s);
            let (decision, mechanism, operation, object) = match step {
                HeldStep::Wait => continue,
                HeldStep::Release => {
                    bucket.flags &= !rate_flag::HELD;
                    (Decision::Held, Mechanism::Uprobe, "release", format!("{object}: held {held_s:.1} s, released"))
                }
                HeldStep::ReleaseDenying => {
                    bucket.flags = (bucket.flags & !rate_flag::HELD) | rate_flag::DENYING;
                    let max_s = rule.max_hold_ns / 1_000_000_000;
                    let text = format!(
                        "{object}: held {held_s:.1} s (max_hold_s {max_s}), released; new connections refused until a token is back"
                    );
                    (Decision::Held, Mechanism::Uprobe, "release", text)
                }
                HeldStep::Kill => {
                    let max_s = rule.max_hold_ns / 1_000_000_000;
                    let text = format!("{object}: held {held_s:.1} s (max_hold_s {max_s}), then killed");
                    (Decision::KilledBefore, Mechanism::Signal, "llm_request", text)
                }
            };
            // Written before the process runs again: the kernel reads it.
            if step == HeldStep::Kill {
                signal(key.tgid, libc::SIGKILL);
            } else {
                if let Err(err) = self.buckets.insert(key, bucket, 0) {
                    tracing::warn!(pid = key.tgid, %err, "updating a held process's LLM rate bucket");
                }
                signal(key.tgid, libc::SIGCONT);
            }
            tracing::info!(pid = key.tgid, role = %names.of(key.role), operation, object, "LLM rate limit");
            let who = table.who(key.tgid, key.tgid, 0, batch);
            let body = Body::Enforcement(EnforcementDecision {
                decision: decision as i32,
                mechanism: mechanism as i32,
                family: Family::Llm as i32,
                operation_sid: batch.intern(operation),
                role_sid: batch.intern(&names.of(key.role)),
                pod: pod_of(key.tgid),
                remote: None,
                transport: 0,
                path_sid: batch.intern(&object),
            });
            batch.push_by(now_ns, &who, body);
        }
    }
}

/// An agent that stops leaves no process stopped: nothing would resume it.
impl Drop for RateLimiter {
    fn drop(&mut self) {
        for (key, bucket) in self.buckets.iter().filter_map(Result::ok) {
            if bucket.flags & rate_flag::HELD != 0 {
                tracing::info!(pid = key.tgid, "resumed a process held by the LLM rate limit: the agent stops");
                signal(key.tgid, libc::SIGCONT);
            }
        }
    }
}

fn signal(tgid: u32, signal: i32) {
    // SAFETY: kill(2) with a pid and a signal number; no memory is passed.
    if unsafe { libc::kill(tgid as i32, signal) } != 0 {
        let err = std::io::Error::last_os_error();
        tracing::warn!(pid = tgid, signal, %err, "signalling a process held by the LLM rate limit");
    }
}

/// The system's OpenSSL libraries (as the TLS capture finds them).
fn system_openssl() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for dir in crate::intent::attach::SYSTEM_LIBRARY_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("libssl.so.") {
                paths.push(entry.path());
            }
        }
    }
    paths
}

/// Whether the file holds OpenSSL, and the rate probes at its functions.
fn inspect(path: &Path) -> (bool, Vec<ProbePoint>) {
    let Ok(TlsTarget::Hookable { probes, .. }) = targets::examine(path) else { return (false, Vec::new()) };
    let probes: Vec<ProbePoint> = probes
        .into_iter()
        .filter_map(|probe| {
            let (_, rate) = RATE_PROGRAMS.iter().find(|(tls, _)| *tls == probe.program)?;
            Some(ProbePoint { program: rate, ..probe })
        })
        .collect();
    (!probes.is_empty(), probes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suffix_s_hash_is_on_the_way_to_the_hash_of_every_name_below_it() {
        // The kernel hashes from the last byte and looks up each suffix
        // after a dot: the hash of `example.com` is met hashing `api.example.com`.
        let name = "API.Example.com";
        let mut hash = plumbline_ebpf::abi::NAME_HASH_BASIS;
        let mut at_dots = Vec::new();
        for (i, byte) in name.bytes().enumerate().rev() {
            hash = (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(plumbline_ebpf::abi::NAME_HASH_PRIME);
            if i > 0 && name.as_bytes()[i - 1] == b'.' {
                at_dots.push(hash);
            }
        }
        assert_eq!(at_dots, [host_hash("com"), host_hash("example.com")]);
        assert_eq!(hash, host_hash("api.example.com"));
        let entries = host_entries(["*.example.com", "example.com", "*", "localhost"]);
        assert_eq!(entries[&host_hash("example.com")], HOST_EXACT | HOST_BELOW);
        assert_eq!((entries[&0], entries[&host_hash("LOCALHOST")]), (HOST_ANY, HOST_EXACT));
    }

    #[test]
    fn the_configured_endpoints_hosts_join_the_catalog_s() {
        let configured = plumbline_intent::endpoints::Endpoint::new(
            "fixture",
            "LocalHost",
            "/v1",
            plumbline_intent::llm::Format::OpenAiChat,
        );
        let hosts = endpoint_hosts(&[configured]);
        assert!(hosts.iter().any(|h| h == "localhost"), "{hosts:?}");
        assert!(hosts.iter().any(|h| h == "api.openai.com"), "{hosts:?}");
    }

    fn rate(action: RateAction, after_hold: RateAction) -> RateRules {
        RateRules { requests: 3, window_ns: 12_000_000_000, action, max_hold_ns: 30_000_000_000, after_hold }
    }

    #[test]
    fn a_rule_costs_a_window_s_share_per_request() {
        let rule = rule_of(Some(&rate(RateAction::Hold, RateAction::Kill)), Mode::Enforce);
        assert_eq!((rule.window_ns, rule.cost_ns, rule.requests), (12_000_000_000, 4_000_000_000, 3));
        assert_eq!((rule.action, rule.mode), (rate_action::HOLD, mode::ENFORCE));
        assert_eq!(rule_of(None, Mode::Enforce).requests, 0);
        assert_eq!(request_text(4, 3, 60), "request 4 of 3 per 60 s");
    }

    #[test]
    fn a_held_process_is_released_once_its_debt_is_paid_or_its_hold_is_up() {
        // Held at 10 s owing one request: tat 10 s + 4 s ahead of a full window.
        let bucket = RateBucket { tat_ns: 26_000_000_000, held_ns: 10_000_000_000, request: 4, flags: rate_flag::HELD };
        let hold = rate(RateAction::Hold, RateAction::Kill);
        assert_eq!(held_step(&bucket, &hold, 13_000_000_000), HeldStep::Wait);
        assert_eq!(held_step(&bucket, &hold, 14_000_000_000), HeldStep::Release);
        let short = RateRules { max_hold_ns: 2_000_000_000, ..hold };
        assert_eq!(held_step(&bucket, &short, 12_500_000_000), HeldStep::Kill);
        let deny = RateRules { after_hold: RateAction::Deny, ..short };
        assert_eq!(held_step(&bucket, &deny, 12_500_000_000), HeldStep::ReleaseDenying);
    }
}
