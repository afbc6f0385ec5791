//! Network rules: `network.allow` entries become address rules (a network
//! and a port) and host-name rules (an exact name or every name below a
//! suffix, and a port).
//!
//! The kernel sees only addresses at connect. Address rules are 16-byte
//! keys (IPv4 v4-mapped, `::ffff:a.b.c.d`, with 96 added to the prefix
//! length) in a longest-prefix-match trie ([`NetworkRules::prefixes`]);
//! host-name rules allow the addresses their names resolve to, by the
//! agent's resolution ([`NetworkRules::hosts_to_resolve`]) or by DNS answers
//! the workload receives (the only way for `*.suffix`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use plumbline_intent::endpoints::EndpointCatalog;

use super::{invalid, Decision, Mode, PolicyError};

/// The port `llm:` entries allow: the providers' APIs are HTTPS.
pub const LLM_PORT: u16 = 443;

/// An address or network, and a port (0: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRule {
    /// An IPv4 network for IPv4 and v4-mapped destinations, else IPv6.
    pub net: IpNet,
    pub port: u16,
    pub mode: Mode,
    /// The entry as written.
    pub text: String,
    /// Its key in the role: `network.allow[3]`.
    pub key: String,
}

impl AddressRule {
    /// The BPF key: the network's address as 16 bytes (IPv4 v4-mapped) and
    /// its prefix length among those 128 bits. Matching is done on these
    /// keys, so an IPv6 rule covering `::ffff:0:0/96` (such as `::/0`) covers
    /// IPv4 destinations too, as it does in the kernel's trie.
    pub fn key(&self) -> ([u8; 16], u8) {
        match self.net {
            IpNet::V4(net) => (net.network().to_ipv6_mapped().octets(), net.prefix_len() + 96),
            IpNet::V6(net) => (net.network().octets(), net.prefix_len()),
        }
    }

    /// Written as IPv4 (or in v4-mapped form).
    pub fn is_ipv4(&self) -> bool {
        matches!(self.net, IpNet::V4(_))
    }

    fn mapped_net(&self) -> Ipv6Net {
        let (addr, len) = self.key();
        Ipv6Net::new(addr.into(), len).expect("prefix length at most 128")
    }

    /// `addr` is decided as IPv4 when it is v4-mapped.
    pub fn matches(&self, addr: IpAddr, port: u16) -> bool {
        (self.port == 0 || self.port == port) && self.mapped_net().contains(&mapped(addr))
    }
}

/// `addr` as 16 bytes: IPv4 (and v4-mapped IPv6) as `::ffff:a.b.c.d`.
pub fn mapped(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// One entry of the kernel's allow-list for a role: a longest-prefix-match
/// trie over 16-byte addresses whose value is the ports allowed there. The
/// kernel looks up only the longest prefix covering a destination, so each
/// entry carries the ports of every entry covering it: then that one lookup
/// decides as [`NetworkRules::decide`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixEntry {
    /// The network address, IPv4 v4-mapped.
    pub addr: [u8; 16],
    /// 0 to 128.
    pub prefix_len: u8,
    /// `None`: any port; else sorted and once each (possibly more than the
    /// kernel's value holds: the agent decides how to narrow it).
    pub ports: Option<Vec<u16>>,
}

impl PrefixEntry {
    fn net(&self) -> Ipv6Net {
        Ipv6Net::new(self.addr.into(), self.prefix_len).expect("prefix length at most 128")
    }

    /// The destination is under this entry and its port is allowed.
    pub fn allows(&self, addr: IpAddr, port: u16) -> bool {
        self.net().contains(&mapped(addr)) && self.ports.as_ref().is_none_or(|ports| ports.contains(&port))
    }
}

/// A host name, or every name below a suffix, and a port (0: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// Lower case, no trailing dot, without the `*.`.
    pub host: String,
    /// `*.host`: names below `host`, not `host` itself.
    pub suffix: bool,
    pub port: u16,
    pub mode: Mode,
    /// The entry as written (`llm:anthropic` for the hosts it stands for).
    pub text: String,
    /// Its key in the role: `network.allow[0]`.
    pub key: String,
}

impl HostRule {
    /// `name` (any case, trailing dot or not) is this rule's host, or below
    /// it for a `*.` rule.
    pub fn matches_name(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        if !self.suffix {
            return name.eq_ignore_ascii_case(&self.host);
        }
        let Some(dot) = name.len().checked_sub(self.host.len() + 1) else { return false };
        dot > 0
            && name.get(dot..=dot) == Some(".")
            && name.get(dot + 1..).is_some_and(|tail| tail.eq_ignore_ascii_case(&self.host))
    }
}

/// A role's `[roles.network]`: a connect no rule allows is denied.
#[derive(Debug, Clone)]
pub struct NetworkRules {
    pub mode: Mode,
    pub addresses: Vec<AddressRule>,
    pub hosts: Vec<HostRule>,
}

enum Target {
    Net(IpNet),
    Host { host: String, suffix: bool },
}

impl NetworkRules {
    /// `key` is the family's (`roles[0].network`).
    pub(super) fn compile(key: &str, allow: &[String], mode: Mode) -> Result<Self, PolicyError> {
        let mut rules = Self { mode, addresses: Vec::new(), hosts: Vec::new() };
        for (i, text) in allow.iter().enumerate() {
            let entry = format!("network.allow[{i}]");
            let targets = parse_entry(text).map_err(|reason| invalid(format!("{key}.allow[{i}]"), text, reason))?;
            for (target, port) in targets {
                match target {
                    Target::Net(net) => {
                        rules.addresses.push(AddressRule { net, port, mode, text: text.clone(), key: entry.clone() })
                    }
                    Target::Host { host, suffix } => {
                        rules.hosts.push(HostRule { host, suffix, port, mode, text: text.clone(), key: entry.clone() })
                    }
                }
            }
        }
        Ok(rules)
    }

    /// May the workload connect to `addr`:`port`, which `names` resolved
    /// to (empty when unknown)?
    pub fn decide(&self, addr: IpAddr, port: u16, names: &[&str]) -> Decision {
        let by_address = self.addresses.iter().any(|rule| rule.matches(addr, port));
        let by_name = || {
            self.hosts
                .iter()
                .any(|rule| (rule.port == 0 || rule.port == port) && names.iter().any(|name| rule.matches_name(name)))
        };
        if by_address || by_name() {
            return Decision::Allow;
        }
        Decision::Deny { rule: None, mode: self.mode, text: "network: no network.allow entry allows it".into() }
    }

    /// The role's kernel allow-list: the address rules, plus `resolved`
    /// (addresses a host-name rule allows, with that rule's port, 0 = any),
    /// merged per prefix, each entry carrying the ports of the entries that
    /// cover it. Sorted by address, then prefix length.
    pub fn prefixes(&self, resolved: &[(IpAddr, u16)]) -> Vec<PrefixEntry> {
        let mut entries: Vec<PrefixEntry> = Vec::new();
        let written = self.addresses.iter().map(|rule| (rule.key(), rule.port));
        let resolved = resolved.iter().map(|(addr, port)| ((mapped(*addr).octets(), 128), *port));
        for ((addr, prefix_len), port) in written.chain(resolved) {
            let ports = (port != 0).then(|| vec![port]);
            match entries.iter_mut().find(|e| e.addr == addr && e.prefix_len == prefix_len) {
                Some(entry) => entry.ports = merge(entry.ports.take(), ports.as_deref()),
                None => entries.push(PrefixEntry { addr, prefix_len, ports }),
            }
        }
        let covered: Vec<Option<Vec<u16>>> = entries
            .iter()
            .map(|entry| {
                entries
                    .iter()
                    .filter(|outer| outer.prefix_len < entry.prefix_len && outer.net().contains(&entry.net()))
                    .fold(entry.ports.clone(), |ports, outer| merge(ports, outer.ports.as_deref()))
            })
            .collect();
        for (entry, ports) in entries.iter_mut().zip(covered) {
            entry.ports = ports;
        }
        entries.sort_by_key(|e| (e.addr, e.prefix_len));
        entries
    }

    /// The exact host names (with their port, 0 = any) whose addresses the
    /// agent resolves and allows, once each.
    pub fn hosts_to_resolve(&self) -> Vec<(&str, u16)> {
        let mut hosts: Vec<(&str, u16)> = Vec::new();
        for rule in self.hosts.iter().filter(|rule| !rule.suffix) {
            if !hosts.contains(&(rule.host.as_str(), rule.port)) {
                hosts.push((&rule.host, rule.port));
            }
        }
        hosts
    }
}

/// A host name (or every name below a suffix) the kernel allows the
/// addresses of, as DNS answers to the workload name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    /// Lower case, without a trailing dot.
    pub host: String,
    /// `*.host`: the names below `host`.
    pub below: bool,
    /// `None`: any port; else sorted, once each.
    pub ports: Option<Vec<u16>>,
}

impl NetworkRules {
    /// Each host rule's name once, with the ports of every rule naming it.
    pub fn names(&self) -> Vec<NameEntry> {
        let mut names: Vec<NameEntry> = Vec::new();
        for rule in &self.hosts {
            let host = rule.host.trim_end_matches('.').to_ascii_lowercase();
            let ports = (rule.port != 0).then(|| vec![rule.port]);
            match names.iter_mut().find(|n| n.host == host && n.below == rule.suffix) {
                Some(entry) => entry.ports = merge(entry.ports.take(), ports.as_deref()),
                None => names.push(NameEntry { host, below: rule.suffix, ports }),
            }
        }
        names
    }
}

/// The union of two port sets (`None`: any port).
fn merge(ports: Option<Vec<u16>>, more: Option<&[u16]>) -> Option<Vec<u16>> {
    let (mut ports, more) = (ports?, more?);
    ports.extend_from_slice(more);
    ports.sort_unstable();
    ports.dedup();
    Some(ports)
}

/// One `network.allow` entry: what it allows, with ports.
fn parse_entry(entry: &str) -> Result<Vec<(Target, u16)>, String> {
    if entry.is_empty() {
        return Err("an empty destination".into());
    }
    if entry.contains(char::is_whitespace) {
        return Err("a destination holds no white space".into());
    }
    if let Some(provider) = entry.strip_prefix("llm:") {
        return llm_hosts(provider);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("`[` without its `]`")?;
        let (len, port) = match after.split_once(':') {
            Some((len, port)) => (len, parse_port(port)?),
            None => (after, 0),
        };
        let len = match len {
            "" => None,
            len => Some(len.strip_prefix('/').ok_or("after `]` come `/LEN` and `:PORT`")?),
        };
        let addr: Ipv6Addr = inside.parse().map_err(|_| format!("{inside:?} is not an IPv6 address"))?;
        return Ok(vec![(Target::Net(network(IpAddr::V6(addr), len)?), port)]);
    }
    if entry.matches(':').count() >= 2 {
        let (addr, len) = match entry.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (entry, None),
        };
        let addr: Ipv6Addr =
            addr.parse().map_err(|_| "not an IPv6 address (with a port, write [ADDRESS]:PORT)".to_string())?;
        return Ok(vec![(Target::Net(network(IpAddr::V6(addr), len)?), 0)]);
    }
    let (target, port) = match entry.split_once(':') {
        Some((target, port)) => (target, parse_port(port)?),
        None => (entry, 0),
    };
    let (addr, len) = match target.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (target, None),
    };
    if len.is_some() || addr.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        return Ok(vec![(Target::Net(network(IpAddr::V4(addr), len)?), port)]);
    }
    Ok(vec![(host(target)?, port)])
}

/// `addr/len` (no `len`: the one address), IPv4 when v4-mapped.
fn network(addr: IpAddr, len: Option<&str>) -> Result<IpNet, String> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(len) => len
            .parse::<u8>()
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(|| format!("prefix length {len:?} is not a number from 0 to {max}"))?,
    };
    let net = IpNet::new(addr, len).map_err(|e| e.to_string())?;
    let net = match addr {
        IpAddr::V6(v6) if len >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::new(v4, len - 96).map_err(|e| e.to_string())?),
            None => net,
        },
        _ => net,
    };
    if net.trunc() != net {
        return Err(format!("bits are set past the prefix length; the network is {}", net.trunc()));
    }
    Ok(net)
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err("an empty port after `:`".into());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a number".into());
    }
    port.parse().map_err(|_| "port out of range (0 to 65535; 0 is any port)".into())
}

/// `HOST` or `*.SUFFIX`, checked and lower-cased.
fn host(target: &str) -> Result<Target, String> {
    let (suffix, name) = match target.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, target),
    };
    if name.contains('*') || target == "*" {
        return Err("a wildcard goes only at the start, as `*.SUFFIX`; for any address write 0.0.0.0/0 and ::/0".into());
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() {
        return Err("an empty host name".into());
    }
    if name.len() > 253 {
        return Err("a host name is at most 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each label of a host name has 1 to 63 characters".into());
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!("{c:?} is not allowed in a host name"));
        }
    }
    Ok(Target::Host { host: name, suffix })
}

/// The API hosts of one provider (`*`: every provider) in Plumbline's
/// catalog, port 443.
fn llm_hosts(provider: &str) -> Result<Vec<(Target, u16)>, String> {
    let catalog = EndpointCatalog::default();
    let mut hosts: Vec<&str> = Vec::new();
    for endpoint in &catalog.endpoints {
        if (provider == "*" || endpoint.provider == provider) && !hosts.contains(&endpoint.host.as_str()) {
            hosts.push(&endpoint.host);
        }
    }
    if hosts.is_empty() {
        let mut providers: Vec<&str> = catalog.endpoints.iter().map(|e| e.provider.as_str()).collect();
        providers.dedup();
        return Err(format!("unknown LLM provider (known: {}; or llm:* for all)", providers.join(", ")));
    }
    hosts.into_iter().map(|h| Ok((host(h)?, LLM_PORT))).collect()
}
