//! The enforcement policy file: roles, what each lets a workload do, and
//! which processes each role confines.
//!
//! ```toml
//! mode = "audit"
//! [[roles]]
//! name = "coder"
//! [roles.exec]
//! allow = ["/usr/bin/", "/usr/local/bin/python3*"]
//! [roles.files]
//! read_only = ["/usr/", "/repo/"]
//! read_write = ["/repo/build/", "/tmp/"]
//! deny = ["/repo/.git/hooks/"]
//! [roles.network]
//! allow = ["llm:anthropic", "10.0.0.0/8", "[::1]:8080"]
//! [[workloads]]
//! role = "coder"
//! field = "COMMAND_LINE"
//! pattern = "claude|codex"
//! ```
//!
//! [`Policy::parse`] checks the file and compiles it: roles get numeric ids
//! (the BPF maps' keys), paths are normalized, network entries become
//! address rules (16-byte keys, v4-mapped for IPv4) and host-name rules.
//! Every error names the key and the value at fault. [`Role::decide_exec`],
//! [`Role::decide_open`] and [`Role::decide_connect`] are the reference the
//! kernel side is tested against. [`PolicyFile`] re-reads a file that
//! changes and keeps the last good policy in force when it breaks.
//!
//! Plumbline's own processes are never confined: the agent does not enrol
//! its own process ([`is_exempt`]). The exemption is by process, not by
//! executable path: a confined workload that runs the `plumbline` binary stays
//! confined, since enrolment is inherited across fork and exec.

mod file;
mod llm;
mod network;
mod paths;
mod spec;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use regex::Regex;

pub use file::{PolicyFile, Reload};
pub use llm::{LlmRules, RateRules, DEFAULT_MAX_HOLD_S};
pub use network::{mapped, AddressRule, HostRule, NameEntry, NetworkRules, PrefixEntry};
pub use paths::{ExecPattern, ExecRule, ExecRules, FileAccess, FileRule, FileRules};
pub use spec::{
    ExecSpec, FilesSpec, LlmSpec, Mode, NetworkSpec, PolicySpec, RateAction, RateSpec, RoleSpec, WorkloadSpec,
};

use crate::intent::agents::MatchField;

/// Why a policy was not accepted. Each names the place in the file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML, or a key or type is wrong.
    #[error("{}{message}{}", key_prefix(key), at_line(*line))]
    Syntax { key: String, message: String, line: Option<usize> },
    /// A value is not acceptable.
    #[error("{key}: {value:?}: {reason}")]
    Invalid { key: String, value: String, reason: String },
}

impl PolicyError {
    /// The key at fault (`roles[1].network.allow[3]`); empty when the file
    /// is not TOML.
    pub fn key(&self) -> &str {
        match self {
            PolicyError::Read { .. } => "",
            PolicyError::Syntax { key, .. } | PolicyError::Invalid { key, .. } => key,
        }
    }
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() || key == "." {
        String::new()
    } else {
        format!("{key}: ")
    }
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

pub(crate) fn invalid(key: impl Into<String>, value: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid { key: key.into(), value: value.to_string(), reason: reason.into() }
}

/// A role's number in the BPF maps: 1 for the first role in the file, 2
/// for the next; 0 is "no role". Ids follow the order of the file, so a
/// reloaded policy is pushed whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleId(pub u32);

/// A decision on one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny {
        /// The index of the rule that denied in its family's compiled rules
        /// ([`FileRules::rules`]), or `None` when no rule covered the
        /// operation and the family denies by default.
        rule: Option<usize>,
        mode: Mode,
        /// The rule as written (`files.deny[0] "/repo/.git/hooks/"`), or
        /// what the default denied, for events.
        text: String,
    },
}

impl Decision {
    /// The operation is refused (a deny in `enforce` mode), not only
    /// recorded.
    pub fn blocks(&self) -> bool {
        matches!(self, Decision::Deny { mode: Mode::Enforce, .. })
    }
}

/// A compiled role.
#[derive(Debug, Clone)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    /// The role's mode (its own, else the file's); each family's rules
    /// carry their effective mode.
    pub mode: Mode,
    /// `None`: exec is not confined.
    pub exec: Option<ExecRules>,
    /// `None`: file opens are not confined.
    pub files: Option<FileRules>,
    /// `None`: connects are not confined.
    pub network: Option<NetworkRules>,
    /// `None`: LLM calls are not confined.
    pub llm: Option<LlmRules>,
}

impl Role {
    /// May the role execute `path` (absolute, as the kernel resolved it)?
    pub fn decide_exec(&self, path: &str) -> Decision {
        self.exec.as_ref().map_or(Decision::Allow, |rules| rules.decide(path))
    }

    /// May the role open `path` (absolute, as the kernel resolved it), for
    /// writing when `write`?
    pub fn decide_open(&self, path: &str, write: bool) -> Decision {
        self.files.as_ref().map_or(Decision::Allow, |rules| rules.decide(path, write))
    }

    /// May the role connect to `addr`:`port`, by the address rules alone?
    /// A v4-mapped IPv6 address is decided as its IPv4 address.
    pub fn decide_connect(&self, addr: std::net::IpAddr, port: u16) -> Decision {
        self.decide_connect_named(addr, port, &[])
    }

    /// As [`Role::decide_connect`], where `addr` is also known to be what
    /// `names` resolved to (by the agent's own resolution or a DNS answer the
    /// process received): host-name rules that match one of them allow too.
    pub fn decide_connect_named(&self, addr: std::net::IpAddr, port: u16, names: &[&str]) -> Decision {
        self.network.as_ref().map_or(Decision::Allow, |rules| rules.decide(addr, port, names))
    }

    /// Each family's mode and what its rules allow, in a few words (anything
    /// else is denied), in the order exec, files, network; `None`: the role
    /// does not confine that family.
    pub fn families(&self) -> [(&'static str, Option<(Mode, String)>); 4] {
        let exec = self.exec.as_ref().map(|exec| (exec.mode, format!("{} allowed", exec.rules.len())));
        let files = self.files.as_ref().map(|files| {
            let count = |access| files.rules.iter().filter(|r| r.access == access).count();
            let (read_only, read_write, deny) =
                (count(FileAccess::ReadOnly), count(FileAccess::ReadWrite), count(FileAccess::Deny));
            (files.mode, format!("{read_only} read-only, {read_write} read-write, {deny} deny"))
        });
        let network = self.network.as_ref().map(|net| {
            let (addresses, hosts, resolved) = (net.addresses.len(), net.hosts.len(), net.hosts_to_resolve().len());
            (net.mode, format!("{addresses} address rule(s), {hosts} host rule(s) ({resolved} resolved in advance)"))
        });
        let llm = self.llm.as_ref().map(|llm| (llm.mode, llm.describe()));
        [("exec", exec), ("files", files), ("network", network), ("llm", llm)]
    }

    /// The host names to resolve in advance and allow the addresses of, with
    /// their port (0 = any). `*.suffix` rules are not among them: no name
    /// can be resolved for them in advance, so they allow only the
    /// addresses of names seen in DNS answers.
    pub fn hosts_to_resolve(&self) -> Vec<(&str, u16)> {
        self.network.as_ref().map_or_else(Vec::new, NetworkRules::hosts_to_resolve)
    }
}

/// A compiled `[[workloads]]` entry.
#[derive(Debug, Clone)]
pub struct Workload {
    pub role: RoleId,
    pub field: MatchField,
    pub pattern: String,
    regex: Regex,
}

impl Workload {
    /// `value` is the process's `field`; an empty field never matches.
    pub fn matches(&self, value: &str) -> bool {
        !value.is_empty() && self.regex.is_match(value)
    }
}

/// A checked, compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file's default mode.
    pub mode: Mode,
    /// In file order; `roles[i].id` is `RoleId(i + 1)`.
    pub roles: Vec<Role>,
    /// In file order: the first match wins.
    pub workloads: Vec<Workload>,
    /// The file as written.
    pub spec: PolicySpec,
    /// The LLM providers it was compiled knowing besides the catalog's.
    pub providers: Vec<String>,
}

impl Policy {
    /// Parses, checks and compiles a policy file's text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        Self::parse_knowing(text, &[])
    }

    /// [`Policy::parse`], knowing the LLM `providers` of the node's
    /// configured endpoints besides the catalog's.
    pub fn parse_knowing(text: &str, providers: &[String]) -> Result<Self, PolicyError> {
        let syntax = |err: toml::de::Error, key: String| PolicyError::Syntax {
            key,
            message: err.message().trim_end().to_string(),
            line: err
                .span()
                .map(|span| text.as_bytes()[..span.start.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1),
        };
        let deserializer = toml::de::Deserializer::parse(text).map_err(|err| syntax(err, String::new()))?;
        let spec: PolicySpec = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            let mut err = err.into_inner();
            if err.span().is_none() {
                err.set_input(Some(text));
            }
            syntax(err, key)
        })?;
        Self::compile_knowing(spec, providers)
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text)
    }

    /// Checks and compiles a policy as written, knowing only the catalog's
    /// LLM providers.
    pub fn compile(spec: PolicySpec) -> Result<Self, PolicyError> {
        Self::compile_knowing(spec, &[])
    }

    /// Checks and compiles a policy as written; `providers` are the LLM
    /// provider names the node knows besides the catalog's (its configured
    /// endpoints'), which `[roles.llm] allow` may name too.
    pub fn compile_knowing(spec: PolicySpec, providers: &[String]) -> Result<Self, PolicyError> {
        let mut roles: Vec<Role> = Vec::with_capacity(spec.roles.len());
        for (i, role) in spec.roles.iter().enumerate() {
            let key = format!("roles[{i}]");
            if role.name.trim().is_empty() {
                return Err(invalid(format!("{key}.name"), &role.name, "a role needs a name"));
            }
            if let Some(first) = roles.iter().position(|r| r.name == role.name) {
                return Err(invalid(format!("{key}.name"), &role.name, format!("also the name of roles[{first}]")));
            }
            let mode = role.mode.unwrap_or(spec.mode);
            let exec = role
                .exec
                .as_ref()
                .map(|exec| ExecRules::compile(&format!("{key}.exec"), &exec.allow, exec.mode.unwrap_or(mode)))
                .transpose()?;
            let files = role
                .files
                .as_ref()
                .map(|files| FileRules::compile(&format!("{key}.files"), files, files.mode.unwrap_or(mode)))
                .transpose()?;
            let network = role
                .network
                .as_ref()
                .map(|net| NetworkRules::compile(&format!("{key}.network"), &net.allow, net.mode.unwrap_or(mode)))
                .transpose()?;
            let llm = role
                .llm
                .as_ref()
                .map(|llm| LlmRules::compile(&format!("{key}.llm"), llm, llm.mode.unwrap_or(mode), providers))
                .transpose()?;
            let id = RoleId(u32::try_from(i + 1).expect("fewer than 2^32 roles"));
            roles.push(Role { id, name: role.name.clone(), mode, exec, files, network, llm });
        }
        let mut workloads = Vec::with_capacity(spec.workloads.len());
        for (i, workload) in spec.workloads.iter().enumerate() {
            let key = format!("workloads[{i}]");
            let role = roles.iter().find(|r| r.name == workload.role).ok_or_else(|| {
                let known: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                invalid(format!("{key}.role"), &workload.role, format!("unknown role (roles: {known})"))
            })?;
            if workload.pattern.is_empty() {
                return Err(invalid(
                    format!("{key}.pattern"),
                    &workload.pattern,
                    "an empty pattern would select every process; write \".\" if that is meant",
                ));
            }
            let regex = Regex::new(&workload.pattern)
                .map_err(|err| invalid(format!("{key}.pattern"), &workload.pattern, err.to_string()))?;
            workloads.push(Workload { role: role.id, field: workload.field, pattern: workload.pattern.clone(), regex });
        }
        Ok(Self { mode: spec.mode, roles, workloads, spec, providers: providers.to_vec() })
    }

    pub fn role(&self, id: RoleId) -> Option<&Role> {
        let index = usize::try_from(id.0).ok()?.checked_sub(1)?;
        self.roles.get(index)
    }

    pub fn role_named(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The role of a process, by the first `[[workloads]]` entry whose field
    /// matches; `field` gives the process's value of a field. (A process not
    /// selected itself keeps its parent's role; the agent tracks that.)
    pub fn select<'a, F>(&self, field: F) -> Option<&Role>
    where
        F: Fn(MatchField) -> std::borrow::Cow<'a, str>,
    {
        let workload = self.workloads.iter().find(|w| w.matches(&field(w.field)))?;
        self.role(workload.role)
    }

    /// Every host name any role resolves in advance, once, sorted.
    pub fn hosts_to_resolve(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = self.roles.iter().flat_map(|r| r.hosts_to_resolve()).map(|(h, _)| h).collect();
        hosts.sort_unstable();
        hosts.dedup();
        hosts
    }

    /// What is legal but probably not meant: a role no workload selects, a
    /// role that confines nothing.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (i, role) in self.roles.iter().enumerate() {
            if !self.workloads.iter().any(|w| w.role == role.id) {
                warnings.push(format!("roles[{i}] {:?}: no [[workloads]] entry selects it", role.name));
            }
            if role.exec.is_none() && role.files.is_none() && role.network.is_none() && role.llm.is_none() {
                warnings.push(format!(
                    "roles[{i}] {:?}: lists no exec, files, network or llm rules, so it confines nothing",
                    role.name
                ));
            }
        }
        warnings
    }

    /// A few lines saying what the policy does, for `plumbline policy
    /// validate`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "policy: default mode {}, {} role(s), {} workload selector(s)",
            self.mode.name(),
            self.roles.len(),
            self.workloads.len()
        );
        for role in &self.roles {
            let _ = writeln!(out, "role {:?} (id {}): mode {}", role.name, role.id.0, role.mode.name());
            for (family, rules) in role.families() {
                let _ = match rules {
                    Some((mode, rules)) => writeln!(out, "  {family}: {rules}, else deny ({})", mode.name()),
                    None => writeln!(out, "  {family}: not confined"),
                };
            }
        }
        for (i, workload) in self.workloads.iter().enumerate() {
            let role = self.role(workload.role).map_or("", |r| r.name.as_str());
            let _ = writeln!(
                out,
                "workloads[{i}]: {} matching {:?} -> role {role:?}",
                workload.field.name(),
                workload.pattern
            );
        }
        out
    }
}

/// Plumbline's own process is never confined: the agent skips enrolling
/// `tgid` when this says so.
pub fn is_exempt(tgid: u32) -> bool {
    tgid == std::process::id()
}

#[cfg(test)]
mod tests;
