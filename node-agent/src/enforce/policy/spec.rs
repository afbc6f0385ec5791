//! The policy file as written: the TOML model, with a doc comment on every
//! key (they are the configuration reference).

use serde::{Deserialize, Serialize};

use crate::intent::agents::MatchField;

/// What a rule does when it denies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Record the decision (`would_deny`), block nothing.
    #[default]
    Audit,
    /// Refuse the operation (or stop the process where the kernel offers no
    /// way to refuse it), and record it.
    Enforce,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Audit => "audit",
            Mode::Enforce => "enforce",
        }
    }
}

/// The policy file as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The mode of every rule that does not set its own: `audit` records what
    /// would be denied and blocks nothing; `enforce` blocks. Default `audit`.
    #[serde(default)]
    pub mode: Mode,
    /// `[[roles]]`: what a confined workload may do.
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    /// `[[workloads]]`: which processes each role confines. The first
    /// matching entry wins; a process's descendants keep its role.
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
}

/// `[[roles]]`: one role. A family (`exec`, `files`, `network`) the role does
/// not list is not confined; a family it lists denies what its rules do not
/// allow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// The role's name, unique in the file; events and `[[workloads]]` use it.
    pub name: String,
    /// The mode of this role's rules (default: the file's `mode`).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// `[roles.exec]`: the executables the role may run.
    #[serde(default)]
    pub exec: Option<ExecSpec>,
    /// `[roles.files]`: the files the role may open.
    #[serde(default)]
    pub files: Option<FilesSpec>,
    /// `[roles.network]`: where the role may connect.
    #[serde(default)]
    pub network: Option<NetworkSpec>,
    /// `[roles.llm]`: which LLM providers the role may call, how often, and
    /// what a guardrail match on its requests does.
    #[serde(default)]
    pub llm: Option<LlmSpec>,
}

/// `[roles.exec]`: executing anything not allowed here is denied.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// Absolute paths: a path covers itself and everything below it
    /// (`/usr/bin/` and `/usr/bin` are the same rule), or a glob when it holds
    /// `*`, `?`, `[` or `{` (`*` stays within one path segment, `**` crosses
    /// them: `/opt/*/bin/python3`, `/usr/local/bin/python3*`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// The mode of these rules (default: the role's).
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// `[roles.files]`: opening a file no entry covers is denied. Entries are
/// absolute paths, each covering itself and everything below it; no globs,
/// no `~`. A `deny` entry that covers a path wins over any allow; otherwise
/// the longest entry covering the path decides. One path may be listed in
/// one list only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesSpec {
    /// Paths the role may open for reading only.
    #[serde(default)]
    pub read_only: Vec<String>,
    /// Paths the role may open for reading and writing (and create files in).
    #[serde(default)]
    pub read_write: Vec<String>,
    /// Paths the role may not open at all, whatever an allow says.
    #[serde(default)]
    pub deny: Vec<String>,
    /// The mode of these rules (default: the role's).
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// `[roles.network]`: connecting anywhere not allowed here is denied.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Destinations, each `HOST[:PORT]`, `*.SUFFIX[:PORT]` (names below
    /// SUFFIX, not SUFFIX itself), `IPv4[/LEN][:PORT]`, `[IPv6][/LEN][:PORT]`,
    /// a bare IPv6 address or network without port, or `llm:PROVIDER` /
    /// `llm:*` for the LLM providers' API hosts Plumbline knows (port 443).
    /// A missing port or port 0 means any port.
    #[serde(default)]
    pub allow: Vec<String>,
    /// The mode of these rules (default: the role's).
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// `[roles.llm]`: the role's LLM calls. A role without it may call any
/// provider, as often as it likes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmSpec {
    /// The providers the role may call: names of Plumbline's catalog
    /// (`openai`, `anthropic`, ...), provider names of the agent's
    /// `[[capture.intent.endpoints]]`, or `*` for every one. A connection
    /// of the role to any other LLM endpoint is refused before a byte of
    /// its request is sent. Unset: every provider.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// `[roles.llm.rate]`: how many LLM requests a process of the role may
    /// start in a window, and what happens to the next one.
    #[serde(default)]
    pub rate: Option<RateSpec>,
    /// Abort the TCP connection of a request on which the agent's guardrails
    /// (secrets, PII, prompt injection) match. Default false.
    #[serde(default)]
    pub kill_on_guardrail: bool,
    /// The mode of these rules (default: the role's).
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// `[roles.llm.rate]`: a token bucket per process, counted in the kernel at
/// the start of each LLM request: `requests` tokens, refilled evenly over
/// `window_s` seconds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    /// LLM requests a process may start per window (at least 1).
    pub requests: u32,
    /// The window, in seconds (at least 1).
    pub window_s: u32,
    /// What happens to a request past the limit.
    pub action: RateAction,
    /// `hold` only: the longest a process is held, in seconds (default 30);
    /// past it, `after_hold` applies.
    #[serde(default)]
    pub max_hold_s: Option<u32>,
    /// `hold` only: what follows a hold that reached `max_hold_s`: `deny`
    /// or `kill` (default `kill`).
    #[serde(default)]
    pub after_hold: Option<RateAction>,
}

/// What a rate limit does to a request past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateAction {
    /// Stop the process (SIGSTOP) before the request leaves, until the
    /// bucket holds a token again.
    Hold,
    /// Refuse the process's new connections (EPERM) until the bucket holds
    /// a token again; a request on a connection already open is not
    /// stopped by it.
    Deny,
    /// Kill the process (SIGKILL) before the request leaves.
    Kill,
}

impl RateAction {
    pub fn name(self) -> &'static str {
        match self {
            RateAction::Hold => "hold",
            RateAction::Deny => "deny",
            RateAction::Kill => "kill",
        }
    }
}

/// `[[workloads]]`: processes whose `field` matches `pattern` are confined by
/// `role`, as are their descendants.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// The name of a role in this file.
    pub role: String,
    /// The field of the process the pattern is searched in.
    pub field: MatchField,
    /// A regular expression, searched (not anchored) in the field; not empty.
    pub pattern: String,
}
