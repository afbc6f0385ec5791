//! Which agent a process belongs to: mapping rules by priority (highest
//! first), each matching one field of the process by regex; a mapped
//! process's descendants belong to its agent. Rules come from the config and
//! from a rules file that may change while the agent runs.

use std::{collections::HashMap, path::PathBuf, time::SystemTime};

use plumbline_config::{invalid, ConfigError};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::{
    cgroups::CgroupIdentity,
    process_table::{ProcessInfo, ProcessTable},
};

/// What a rule matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MatchField {
    ProcessName,
    ExecutablePath,
    CommandLine,
    K8sPod,
    K8sNamespace,
    ContainerId,
    Cgroup,
}

impl MatchField {
    pub fn name(self) -> &'static str {
        match self {
            MatchField::ProcessName => "PROCESS_NAME",
            MatchField::ExecutablePath => "EXECUTABLE_PATH",
            MatchField::CommandLine => "COMMAND_LINE",
            MatchField::K8sPod => "K8S_POD",
            MatchField::K8sNamespace => "K8S_NAMESPACE",
            MatchField::ContainerId => "CONTAINER_ID",
            MatchField::Cgroup => "CGROUP",
        }
    }
}

/// `[[capture.intent.agents]]`: processes whose `field` matches `pattern`
/// belong to `agent`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRule {
    /// The agent's name, as queries show it.
    pub agent: String,
    /// The rule's own name (default: the agent's).
    #[serde(default)]
    pub name: Option<String>,
    /// Higher wins when several rules match. Default 0.
    #[serde(default)]
    pub priority: i32,
    /// The field of the process the pattern is searched in.
    pub field: MatchField,
    /// A regular expression, searched (not anchored) in the field.
    pub pattern: String,
}

impl AgentRule {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.agent.is_empty() {
            return Err(invalid(&format!("{prefix}.agent"), "must not be empty"));
        }
        Regex::new(&self.pattern).map_err(|e| invalid(&format!("{prefix}.pattern"), e.to_string()))?;
        Ok(())
    }
}

/// The fields of a process that rules match, beyond the process table's.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub cgroup: String,
    pub container_id: String,
    pub pod_name: String,
    pub pod_namespace: String,
}

impl Placement {
    /// Where a process runs, as its cgroup says (nothing known: all empty).
    pub fn of(identity: Option<CgroupIdentity>) -> Self {
        let identity = identity.unwrap_or_default();
        Placement {
            cgroup: identity.path,
            container_id: identity.container_id,
            pod_name: identity.pod_name,
            pod_namespace: identity.pod_namespace,
        }
    }
}

/// The value of `field` for a process: what a mapping or workload rule
/// matches its pattern against.
pub fn field_value<'a>(
    process: &'a ProcessInfo,
    placement: &'a Placement,
    field: MatchField,
) -> std::borrow::Cow<'a, str> {
    match field {
        MatchField::ProcessName => process.comm.as_str().into(),
        MatchField::ExecutablePath => process.exe.as_str().into(),
        MatchField::CommandLine => process.argv.join(" ").into(),
        MatchField::K8sPod => placement.pod_name.as_str().into(),
        MatchField::K8sNamespace => placement.pod_namespace.as_str().into(),
        MatchField::ContainerId => placement.container_id.as_str().into(),
        MatchField::Cgroup => placement.cgroup.as_str().into(),
    }
}

/// A process's agent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub agent: String,
    pub rule: String,
    /// The field that matched, or "PARENT".
    pub matched_on: &'static str,
}

struct CompiledRule {
    rule: AgentRule,
    regex: Regex,
}

/// The rules in force and each process's membership.
#[derive(Default)]
pub struct AgentMapper {
    config_rules: Vec<AgentRule>,
    rules: Vec<CompiledRule>,
    file: Option<PathBuf>,
    file_seen: Option<SystemTime>,
    loaded: bool,
    /// pid → (process start, membership)
    members: HashMap<u32, (u64, Membership)>,
}

/// `agent_rules_file`: `[[agents]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    agents: Vec<AgentRule>,
}

impl AgentMapper {
    pub fn new(config_rules: Vec<AgentRule>, file: Option<PathBuf>) -> Self {
        let mut mapper = Self { config_rules, file, ..Self::default() };
        mapper.reload_file();
        mapper
    }

    /// Re-reads the rules file when it changed; true when the rules did.
    pub fn reload_file(&mut self) -> bool {
        if self.loaded && self.file.is_none() {
            return false;
        }
        let mut rules = self.config_rules.clone();
        if let Some(path) = &self.file {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if self.loaded && modified == self.file_seen {
                return false;
            }
            self.file_seen = modified;
            match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|text| {
                let parsed: RulesFile = toml::from_str(&text).map_err(|e| e.to_string())?;
                for (i, rule) in parsed.agents.iter().enumerate() {
                    rule.validate(&format!("agents[{i}]")).map_err(|e| e.to_string())?;
                }
                Ok(parsed.agents)
            }) {
                Ok(more) => rules.extend(more),
                Err(err) => {
                    tracing::warn!(file = %path.display(), %err, "agent rules file not used; keeping the rules in force");
                    if self.loaded {
                        return false;
                    }
                }
            }
        }
        let mut compiled: Vec<CompiledRule> = rules
            .into_iter()
            .filter_map(|rule| Regex::new(&rule.pattern).ok().map(|regex| CompiledRule { rule, regex }))
            .collect();
        // Stable: among equal priorities the earlier rule wins.
        compiled.sort_by_key(|r| std::cmp::Reverse(r.rule.priority));
        self.rules = compiled;
        self.loaded = true;
        tracing::info!(rules = self.rules.len(), "agent mapping rules in force");
        true
    }

    /// The membership `process` should have: its own best rule, else its
    /// parent's agent.
    fn decide(&self, process: &ProcessInfo, placement: &Placement) -> Option<Membership> {
        for compiled in &self.rules {
            let value = field_value(process, placement, compiled.rule.field);
            if !value.is_empty() && compiled.regex.is_match(&value) {
                return Some(Membership {
                    agent: compiled.rule.agent.clone(),
                    rule: compiled.rule.name.clone().unwrap_or_else(|| compiled.rule.agent.clone()),
                    matched_on: compiled.rule.field.name(),
                });
            }
        }
        let (_, parent) = self.members.get(&process.ppid)?;
        Some(Membership { agent: parent.agent.clone(), rule: parent.rule.clone(), matched_on: "PARENT" })
    }

    /// Maps a process that started, execed or was seeded. Returns its
    /// membership when it changed (to be reported).
    pub fn place(&mut self, process: &ProcessInfo, placement: &Placement) -> Option<Option<Membership>> {
        let decided = self.decide(process, placement);
        let before =
            self.members.get(&process.pid).filter(|(start, _)| *start == process.start_ns).map(|(_, m)| m.clone());
        if before == decided {
            return None;
        }
        match &decided {
            Some(m) => {
                self.members.insert(process.pid, (process.start_ns, m.clone()));
            }
            None => {
                self.members.remove(&process.pid);
            }
        }
        if before.is_none() && decided.is_none() {
            return None;
        }
        Some(decided)
    }

    /// Re-maps every live process (after a rule change), parents before
    /// children; returns the changes.
    pub fn remap_all(
        &mut self,
        table: &ProcessTable,
        placement: impl Fn(&ProcessInfo) -> Placement,
    ) -> Vec<(ProcessInfo, Option<Membership>)> {
        let mut processes: Vec<&ProcessInfo> = table.iter().filter(|p| p.exit_ns.is_none()).collect();
        processes.sort_by_key(|p| p.start_ns);
        let mut changes = Vec::new();
        for process in processes {
            if let Some(change) = self.place(process, &placement(process)) {
                changes.push((process.clone(), change));
            }
        }
        changes
    }

    pub fn agent_of(&self, pid: u32) -> Option<&Membership> {
        self.members.get(&pid).map(|(_, m)| m)
    }

    /// Forgets an exited process (not a later one with its pid).
    pub fn forget(&mut self, pid: u32, start_ns: u64) {
        if self.members.get(&pid).is_some_and(|(start, _)| *start == start_ns) {
            self.members.remove(&pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(agent: &str, priority: i32, field: MatchField, pattern: &str) -> AgentRule {
        AgentRule { agent: agent.into(), name: None, priority, field, pattern: pattern.into() }
    }

    fn process(pid: u32, ppid: u32, comm: &str, argv: &[&str]) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            comm: comm.into(),
            exe: format!("/usr/bin/{comm}"),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            start_ns: u64::from(pid) * 10,
            ..ProcessInfo::default()
        }
    }

    #[test]
    fn the_highest_priority_matching_rule_wins_and_children_inherit() {
        let mut mapper = AgentMapper::new(
            vec![
                rule("generic-python", 1, MatchField::ProcessName, "^python"),
                rule("coder", 10, MatchField::CommandLine, r"agent\.py"),
            ],
            None,
        );
        let placement = Placement::default();
        let parent = process(100, 1, "python3", &["python3", "agent.py"]);
        let m = mapper.place(&parent, &placement).unwrap().unwrap();
        assert_eq!((m.agent.as_str(), m.matched_on), ("coder", "COMMAND_LINE"));
        let child = process(101, 100, "pytest", &["pytest"]);
        let m = mapper.place(&child, &placement).unwrap().unwrap();
        assert_eq!((m.agent.as_str(), m.matched_on), ("coder", "PARENT"));
        let other = process(200, 1, "python3", &["python3", "x.py"]);
        assert_eq!(mapper.place(&other, &placement).unwrap().unwrap().agent, "generic-python");
        let stranger = process(300, 1, "bash", &["bash"]);
        assert_eq!(mapper.place(&stranger, &placement), None);
        // Placing again without change reports nothing.
        assert_eq!(mapper.place(&parent, &placement), None);
    }

    #[test]
    fn container_and_pod_fields_match() {
        let mut mapper = AgentMapper::new(vec![rule("k8s-agent", 0, MatchField::K8sNamespace, "^agents$")], None);
        let placement = Placement { pod_namespace: "agents".into(), ..Placement::default() };
        assert_eq!(mapper.place(&process(5, 1, "x", &[]), &placement).unwrap().unwrap().agent, "k8s-agent");
    }

    #[test]
    fn a_rules_file_is_reread_when_it_changes_and_a_broken_one_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "[[agents]]\nagent = \"a\"\nfield = \"PROCESS_NAME\"\npattern = \"^curl$\"\n").unwrap();
        let mut mapper = AgentMapper::new(Vec::new(), Some(path.clone()));
        assert_eq!(mapper.rules.len(), 1);
        assert!(!mapper.reload_file(), "unchanged file");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "[[agents]]\nagent = \"b\"\nfield = \"NOPE\"\npattern = \"x\"\n").unwrap();
        assert!(!mapper.reload_file(), "a broken file keeps the rules in force");
        assert_eq!(mapper.rules[0].rule.agent, "a");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "[[agents]]\nagent = \"b\"\nfield = \"COMMAND_LINE\"\npattern = \"x\"\n").unwrap();
        assert!(mapper.reload_file());
        assert_eq!(mapper.rules[0].rule.agent, "b");
    }
}
