//! The policy in the kernel: the enforce object's maps (`pods`, `roles`,
//! `net_rules`, `exec_allow`, `file_rules`), written from a compiled
//! [`Policy`].
//!
//! Executables are allowed by (device, inode): each `exec.allow` path that
//! exists is a file, or a directory whose whole tree is allowed; the kernel
//! walks up from the executed file. A glob is expanded to the paths it names
//! when the policy is written (and again every minute, as names are
//! resolved). Rules name where executables really are: an exec follows
//! symbolic links before the kernel sees the file.
//!
//! File rules are by (device, inode) too: each entry's path that exists, with
//! its access (read-only, read-write, deny); the kernel walks up from the
//! file, across mounts, and a deny above wins over the nearest entry. A path
//! that does not exist yet is written once it does (the policy is rewritten
//! every minute).
//!
//! The network allow-list is an LPM trie keyed by role and address: the
//! kernel finds the most specific prefix that holds a destination and
//! checks its ports, so each prefix's entry carries the ports of every rule
//! of its role that covers it (`NetworkRules::prefixes`). Host names are
//! also written as the kernel matches the DNS answers its workloads receive
//! (`dns_names`, by [`name_hash`]); the addresses those answers allowed
//! (`dns_answers`) are forgotten when the policy is replaced.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use aya::{
    maps::{lpm_trie::Key, Array, HashMap as BpfHashMap, IterableMap, LpmTrie, MapData},
    Ebpf,
};
use plumbline_ebpf::abi::{
    self, exec_cover, file_access, mode, DnsName, NetRule, NetRuleAddr, Pod, RoleInode, NET_RULE_PORTS, ROLES_MAX,
};

use super::{
    llm_endpoints::{role_mode as llm_role_mode, LlmMaps},
    llm_enforcement::LlmEnforcement,
    names::name_hash,
    policy::{ExecPattern, FileAccess, Mode, Policy, PrefixEntry, Role, RoleId},
};

/// The kernel allow-list entries of `role`: its address rules, and the
/// addresses its host names resolved to, with their rules' ports.
fn role_prefixes(role: &Role, resolved: &HashMap<String, Vec<IpAddr>>) -> Vec<PrefixEntry> {
    let Some(network) = &role.network else { return Vec::new() };
    let mut addresses = Vec::new();
    for (host, port) in network.hosts_to_resolve() {
        addresses.extend(resolved.get(host).into_iter().flatten().map(|addr| (*addr, port)));
    }
    network.prefixes(&addresses)
}

/// `path` of `role` as the kernel numbers it, and whether it is a directory.
fn role_inode(role: RoleId, path: &Path) -> Option<(RoleInode, bool)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let dev = meta.dev();
    // The kernel's dev_t is MAJOR << 20 | MINOR, not stat's encoding.
    let kernel_dev = (libc::major(dev) << 20) | libc::minor(dev);
    Some((RoleInode { role: role.0, dev: kernel_dev, ino: meta.ino() }, meta.is_dir()))
}

/// Of two accesses to one inode, the one that allows less.
fn stricter(a: u8, b: u8) -> u8 {
    let rank = |access| match access {
        file_access::DENY => 2,
        file_access::READ_ONLY => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn access_value(access: FileAccess) -> u8 {
    match access {
        FileAccess::ReadOnly => file_access::READ_ONLY,
        FileAccess::ReadWrite => file_access::READ_WRITE,
        FileAccess::Deny => file_access::DENY,
    }
}

/// Most paths one glob is expanded to; the rest are left out, said once.
const GLOB_PATHS_MAX: usize = 4096;

/// The existing paths `pattern` names: a path as it is, a glob expanded from
/// its literal directory (`**` down to 16 levels).
fn exec_paths(pattern: &ExecPattern) -> Vec<PathBuf> {
    match pattern {
        ExecPattern::Prefix(path) => vec![PathBuf::from(path)],
        ExecPattern::Glob { glob, matcher } => {
            let literal: Vec<&str> = glob.split('/').take_while(|part| !part.contains(['*', '?', '[', '{'])).collect();
            let base = PathBuf::from(if literal.len() <= 1 { "/".to_string() } else { literal.join("/") });
            let depth = if glob.contains("**") { 16 } else { glob.split('/').count() - literal.len() };
            let mut found = Vec::new();
            let mut dirs = vec![(base, 0)];
            while let Some((dir, level)) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for entry in entries.flatten() {
                    let path = entry.path();
                    if matcher.is_match(&path) {
                        found.push(path.clone());
                    }
                    if level + 1 < depth && entry.file_type().is_ok_and(|t| t.is_dir()) {
                        dirs.push((path, level + 1));
                    }
                }
                if found.len() >= GLOB_PATHS_MAX {
                    tracing::warn!(
                        glob,
                        limit = GLOB_PATHS_MAX,
                        "an exec glob names too many paths; the rest are not allowed"
                    );
                    found.truncate(GLOB_PATHS_MAX);
                    break;
                }
            }
            found
        }
    }
}

fn mode_value(mode: Mode) -> u8 {
    match mode {
        Mode::Audit => mode::AUDIT,
        Mode::Enforce => mode::ENFORCE,
    }
}

/// The enforce object's maps.
pub struct KernelPolicy {
    pods: BpfHashMap<MapData, u32, Pod>,
    roles: Array<MapData, abi::Role>,
    net_rules: LpmTrie<MapData, NetRuleAddr, NetRule>,
    exec_allow: BpfHashMap<MapData, RoleInode, u8>,
    file_rules: BpfHashMap<MapData, RoleInode, u8>,
    dns_names: BpfHashMap<MapData, DnsName, NetRule>,
    dns_answers: BpfHashMap<MapData, NetRuleAddr, NetRule>,
    /// The trie keys written by the last [`KernelPolicy::apply`].
    written: Vec<Key<NetRuleAddr>>,
    /// The exec allow-list and file rule keys written by the last apply.
    written_exec: Vec<RoleInode>,
    written_files: Vec<RoleInode>,
    written_names: Vec<DnsName>,
    next_pod: u32,
    /// The LLM endpoints each role may call (`[roles.llm] allow`).
    pub llm: LlmMaps,
}

impl KernelPolicy {
    /// Takes the maps out of the loaded enforce object.
    pub fn new(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        let mut take =
            |name: &str| ebpf.take_map(name).with_context(|| format!("the enforce object has no map {name}"));
        Ok(Self {
            pods: BpfHashMap::try_from(take("pods")?)?,
            roles: Array::try_from(take("roles")?)?,
            net_rules: LpmTrie::try_from(take("net_rules")?)?,
            exec_allow: BpfHashMap::try_from(take("exec_allow")?)?,
            file_rules: BpfHashMap::try_from(take("file_rules")?)?,
            dns_names: BpfHashMap::try_from(take("dns_names")?)?,
            dns_answers: BpfHashMap::try_from(take("dns_answers")?)?,
            written: Vec::new(),
            written_exec: Vec::new(),
            written_files: Vec::new(),
            written_names: Vec::new(),
            next_pod: 1,
            llm: LlmMaps::new(ebpf)?,
        })
    }

    /// Writes `policy`'s roles and network allow-lists, replacing the last
    /// ones; `resolved` holds what the policy's host names resolve to; `llm`
    /// hears what its LLM rules refuse.
    pub fn apply(
        &mut self,
        policy: &Policy,
        resolved: &HashMap<String, Vec<IpAddr>>,
        llm: &LlmEnforcement,
    ) -> anyhow::Result<()> {
        if policy.roles.len() >= ROLES_MAX {
            bail!("the policy has {} roles; the kernel takes {}", policy.roles.len(), ROLES_MAX - 1);
        }
        let mut entries = Vec::new();
        for role in &policy.roles {
            for prefix in role_prefixes(role, resolved) {
                let rule = net_rule(prefix.ports.as_deref()).with_context(|| {
                    format!("role {:?}: more than {NET_RULE_PORTS} ports at one address", role.name)
                })?;
                entries.push((role.id, (prefix.addr, prefix.prefix_len), rule));
            }
        }
        for key in self.written.drain(..) {
            let _ = self.net_rules.remove(&key);
        }
        for (RoleId(role), (addr, len), rule) in entries {
            let key = Key::new(32 + u32::from(len), NetRuleAddr { role, addr });
            self.net_rules.insert(&key, rule, 0).context("writing the network allow-list")?;
            self.written.push(key);
        }
        let mut exec_entries = Vec::new();
        for role in &policy.roles {
            for rule in role.exec.iter().flat_map(|exec| &exec.rules) {
                for path in exec_paths(&rule.pattern) {
                    match role_inode(role.id, &path) {
                        Some((key, is_dir)) => {
                            exec_entries.push((key, if is_dir { exec_cover::TREE } else { exec_cover::FILE }));
                        }
                        None => {
                            tracing::debug!(role = %role.name, path = %path.display(), "an allowed executable path does not exist")
                        }
                    }
                }
            }
        }
        for key in self.written_exec.drain(..) {
            let _ = self.exec_allow.remove(&key);
        }
        for (key, cover) in exec_entries {
            self.exec_allow.insert(key, cover, 0).context("writing the exec allow-list")?;
            self.written_exec.push(key);
        }
        // Two entries may name one inode (`/lib` and `/usr/lib`): the
        // stricter access holds.
        let mut file_entries: HashMap<RoleInode, u8> = HashMap::new();
        for role in &policy.roles {
            for rule in role.files.iter().flat_map(|files| &files.rules) {
                match role_inode(role.id, Path::new(&rule.prefix)) {
                    Some((key, _)) => {
                        let access = access_value(rule.access);
                        let held = file_entries.entry(key).or_insert(access);
                        *held = stricter(*held, access);
                    }
                    None => {
                        tracing::debug!(role = %role.name, path = %rule.prefix, "a file rule's path does not exist yet")
                    }
                }
            }
        }
        for key in self.written_files.drain(..) {
            let _ = self.file_rules.remove(&key);
        }
        for (key, access) in file_entries {
            self.file_rules.insert(key, access, 0).context("writing the file rules")?;
            self.written_files.push(key);
        }
        let mut names = Vec::new();
        for role in &policy.roles {
            for name in role.network.iter().flat_map(|network| network.names()) {
                let rule = net_rule(name.ports.as_deref()).with_context(|| {
                    format!("role {:?}: more than {NET_RULE_PORTS} ports for {}", role.name, name.host)
                })?;
                let key = DnsName { hash: name_hash(&name.host), role: role.id.0, below: u32::from(name.below) };
                names.push((key, rule));
            }
        }
        for key in self.written_names.drain(..) {
            let _ = self.dns_names.remove(&key);
        }
        for (key, rule) in names {
            self.dns_names.insert(key, rule, 0).context("writing the allowed host names")?;
            self.written_names.push(key);
        }
        for id in 1..ROLES_MAX as u32 {
            let modes = policy.role(RoleId(id)).map_or(bytemuck::Zeroable::zeroed(), |role| abi::Role {
                net_mode: role.network.as_ref().map_or(mode::OFF, |n| mode_value(n.mode)),
                exec_mode: role.exec.as_ref().map_or(mode::OFF, |e| mode_value(e.mode)),
                file_mode: role.files.as_ref().map_or(mode::OFF, |f| mode_value(f.mode)),
                llm_mode: llm_role_mode(role),
            });
            self.roles.set(id, modes, 0).context("writing the roles")?;
        }
        self.llm.apply(policy, resolved, llm)?;
        Ok(())
    }

    /// Forgets the addresses DNS answers allowed under the policy that was
    /// in force (its names may not be allowed any more).
    pub fn forget_dns_answers(&mut self) {
        let keys: Vec<NetRuleAddr> = self.dns_answers.keys().filter_map(Result::ok).collect();
        for key in keys {
            let _ = self.dns_answers.remove(&key);
        }
    }

    /// Enrols the process `tgid` (and, from now on, everything it forks) in
    /// `role`; returns the enrolment's pod number.
    pub fn enroll(&mut self, tgid: u32, role: RoleId) -> anyhow::Result<u32> {
        let pod = self.next_pod;
        self.next_pod += 1;
        self.pods.insert(tgid, Pod { role: role.0, pod }, 0).context("enrolling the process")?;
        Ok(pod)
    }

    /// The enrolment (role and pod) of `tgid`, if any.
    pub fn pod_of(&self, tgid: u32) -> Option<Pod> {
        self.pods.get(&tgid, 0).ok()
    }

    /// A second handle on the enrolments (`pods`), to read them where this
    /// value is not at hand (it lives behind the enforcer's lock).
    pub fn pods_reader(&self) -> anyhow::Result<BpfHashMap<MapData, u32, Pod>> {
        use std::os::fd::AsFd;
        let fd = self.pods.map().fd().as_fd().try_clone_to_owned().context("duplicating the pods map's fd")?;
        let map = MapData::from_fd(fd).context("the pods map from its fd")?;
        Ok(BpfHashMap::try_from(aya::maps::Map::HashMap(map))?)
    }

    /// Moves every process enrolled in `from` to `to` (a role whose id
    /// changed with the policy); returns how many moved.
    pub fn reassign(&mut self, from: RoleId, to: RoleId) -> anyhow::Result<usize> {
        let entries: Vec<(u32, Pod)> =
            self.pods.iter().filter_map(Result::ok).filter(|(_, p)| p.role == from.0).collect();
        for (tgid, pod) in &entries {
            self.pods.insert(tgid, Pod { role: to.0, pod: pod.pod }, 0).context("moving an enrolled process")?;
        }
        Ok(entries.len())
    }

    /// The role `tgid` is enrolled in, if any.
    pub fn role_of(&self, tgid: u32) -> Option<RoleId> {
        self.pods.get(&tgid, 0).ok().map(|pod| RoleId(pod.role))
    }
}

/// The kernel's value for a prefix's ports (`None`: any); `None` when there
/// are more than it holds.
fn net_rule(ports: Option<&[u16]>) -> Option<NetRule> {
    let mut rule: NetRule = bytemuck::Zeroable::zeroed();
    if let Some(ports) = ports {
        if ports.len() > NET_RULE_PORTS {
            return None;
        }
        rule.ports[..ports.len()].copy_from_slice(ports);
        rule.nports = ports.len() as u16;
    }
    Some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_names_join_the_address_rules_with_their_rule_s_port() {
        let policy = Policy::parse(
            "[[roles]]\nname = \"r\"\n[roles.network]\nallow = [\"api.example.test:443\", \"10.0.0.0/8\"]\n\
             [[workloads]]\nrole = \"r\"\nfield = \"PROCESS_NAME\"\npattern = \"x\"\n",
        )
        .unwrap();
        let resolved = HashMap::from([("api.example.test".to_string(), vec!["192.0.2.7".parse().unwrap()])]);
        let prefixes = role_prefixes(&policy.roles[0], &resolved);
        let host = std::net::Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped().octets();
        let entry = prefixes.iter().find(|p| p.addr == host).expect("the resolved address");
        assert_eq!((entry.prefix_len, entry.ports.as_deref()), (128, Some(&[443][..])));
        assert_eq!(prefixes.len(), 2);
    }

    #[test]
    fn a_prefix_holds_at_most_the_kernel_s_ports() {
        assert_eq!(net_rule(None).unwrap().nports, 0);
        let rule = net_rule(Some(&[80, 443])).unwrap();
        assert_eq!((rule.nports, &rule.ports[..2]), (2, &[80, 443][..]));
        assert!(net_rule(Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9])).is_none());
    }
}
