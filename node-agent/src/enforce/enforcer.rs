//! The policy in force on this node: the file, what its host names resolve
//! to, and the kernel maps they are written to; who is enrolled in which
//! role, by a `[[workloads]]` rule or by `plumbline enforce wrap`.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{
    config::EnforceConfig,
    kernel::KernelPolicy,
    llm_enforcement::LlmEnforcement,
    names::RoleNames,
    policy::{is_exempt, PolicyFile, Reload, RoleId},
    quarantine::Quarantine,
    rate::RateLimiter,
    status::StatusReport,
    tier::TierReport,
};
use crate::{
    intent::agents::{field_value, MatchField, Placement},
    process_hooks::{Host, ProcessAt, ProcessHooks},
};

/// How often the policy file is looked at.
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// How often the policy's host names are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(60);

/// The policy in force and the kernel maps that hold it.
pub struct Enforcer {
    file: PolicyFile,
    kernel: KernelPolicy,
    resolved: HashMap<String, Vec<IpAddr>>,
    names: RoleNames,
    /// What the node says of its policy, and when it says it next.
    status: StatusReport,
    /// `[roles.llm.rate]`: the request buckets and their uprobes.
    rate: Option<RateLimiter>,
    /// The built-in role findings quarantine sessions in, and who it holds.
    quarantine: Quarantine,
    /// `[roles.llm]`'s endpoints and aborts, told of each policy written.
    llm: Arc<LlmEnforcement>,
}

/// An [`Enforcer`] shared by the capture (workload rules), the control
/// socket (wrap) and the reload task.
pub type SharedEnforcer = Arc<Mutex<Enforcer>>;

impl Enforcer {
    /// Loads the policy file (a broken one at start is an error: nothing
    /// would be in force) and writes it to the kernel.
    pub fn start(
        config: &EnforceConfig,
        kernel: KernelPolicy,
        tier: TierReport,
        llm: Arc<LlmEnforcement>,
    ) -> anyhow::Result<Self> {
        let path = config.policy_file.as_ref().context("capture.enforce.policy_file is not set")?;
        let providers = llm.providers();
        let file = PolicyFile::open_knowing(path, providers)
            .with_context(|| format!("capture.enforce.policy_file {}", path.display()))?;
        let status = StatusReport::new(tier);
        let (names, quarantine) = (RoleNames::default(), Quarantine::default());
        let resolved = HashMap::new();
        let mut enforcer = Self { file, kernel, resolved, names, status, rate: None, quarantine, llm };
        let mut hosts: Vec<&str> = enforcer.file.policy().hosts_to_resolve();
        let llm_hosts = super::llm_endpoints::hosts_to_resolve(enforcer.file.policy(), enforcer.llm.endpoints());
        hosts.extend(llm_hosts.iter().map(String::as_str));
        enforcer.resolved = resolve_blocking(&hosts);
        enforcer.apply()?;
        for warning in enforcer.file.policy().warnings() {
            tracing::warn!(warning, "enforcement policy");
        }
        Ok(enforcer)
    }

    /// The names decisions carry, kept current across reloads.
    pub fn role_names(&self) -> RoleNames {
        self.names.clone()
    }

    /// Counts LLM requests per process from now on (`[roles.llm.rate]`).
    pub fn set_rate(&mut self, rate: RateLimiter) -> anyhow::Result<()> {
        self.rate = Some(rate);
        self.apply()
    }

    fn apply(&mut self) -> anyhow::Result<()> {
        let policy = self.quarantine.policy(self.file.policy())?;
        self.kernel.apply(&policy, &self.resolved, &self.llm)?;
        if let Some(rate) = &mut self.rate {
            rate.apply(&policy)?;
        }
        self.names.set(&policy);
        self.quarantine.follow(&policy, &mut self.kernel)?;
        tracing::info!(file = %self.file.path().display(), roles = policy.roles.len(), "enforcement policy written to the kernel");
        Ok(())
    }

    /// The host names to resolve in advance: the policy file's (its network
    /// rules and its roles' LLM endpoints), and the quarantine role's once it
    /// is in force.
    fn hosts_to_resolve(&self) -> Vec<String> {
        let policy = self.file.policy();
        let mut hosts: Vec<String> = policy.hosts_to_resolve().into_iter().map(str::to_string).collect();
        hosts.extend(super::llm_endpoints::hosts_to_resolve(policy, self.llm.endpoints()));
        hosts.extend(self.quarantine.hosts_to_resolve());
        hosts.sort_unstable();
        hosts.dedup();
        hosts
    }

    /// Enrols `pids` that are alive, and their live descendants, in the
    /// built-in role `quarantine` (`role`), putting it in force first if no
    /// quarantine has yet; `resolved` holds what its host names resolve to.
    /// Returns the processes enrolled, or why none was.
    pub fn quarantine(
        &mut self,
        pids: &[u32],
        role: &super::policy::RoleSpec,
        resolved: &HashMap<String, Vec<IpAddr>>,
    ) -> Result<Vec<u32>, String> {
        let targets: Vec<u32> =
            super::quarantine::with_descendants(pids).into_iter().filter(|p| !is_exempt(*p)).collect();
        if targets.is_empty() {
            return Err(format!("no such process on this node: pid(s) {pids:?} are not running"));
        }
        if !self.quarantine.active {
            self.quarantine.activate(role.clone());
            self.resolved.extend(resolved.iter().map(|(host, addrs)| (host.clone(), addrs.clone())));
            if let Err(err) = self.apply() {
                self.quarantine = Quarantine::default();
                let _ = self.apply();
                return Err(format!("the kernel did not take the quarantine role: {err:#}"));
            }
        }
        self.quarantine.enrol(&targets, &mut self.kernel)
    }

    /// Re-reads the policy file; a changed, valid one replaces the policy in
    /// the kernel, a broken one keeps the last good one (said once).
    pub fn reload(&mut self) {
        match self.file.reload() {
            Reload::Unchanged => {}
            Reload::Replaced => {
                // Names the old policy allowed may not be allowed any more.
                self.kernel.forget_dns_answers();
                match self.apply() {
                    Ok(()) => self.status.applied(),
                    Err(err) => {
                        let error = format!("{err:#}");
                        tracing::error!(error, "the new enforcement policy could not be written to the kernel");
                        self.status.failed(format!("writing it to the kernel: {error}"));
                    }
                }
            }
            Reload::Broken(err) => {
                tracing::error!(%err, "the enforcement policy file is broken; the last good policy stays in force");
                self.status.failed(err.to_string());
            }
        }
    }

    /// Enrols `tgid` in the role named `role`: the process and everything
    /// it forks from now on. Returns the enrolment's pod number.
    pub fn enroll_named(&mut self, tgid: u32, role: &str) -> Result<u32, String> {
        let policy = Arc::clone(self.file.policy());
        let role = policy.role_named(role).ok_or_else(|| format!("no role named {role:?} in the policy"))?;
        if is_exempt(tgid) {
            return Err("the agent's own process is never enforced".into());
        }
        let pod = self.kernel.enroll(tgid, role.id).map_err(|err| format!("{err:#}"))?;
        tracing::info!(pid = tgid, role = %role.name, pod, "enrolled");
        Ok(pod)
    }

    /// Enrols a process a `[[workloads]]` rule selects, unless it already
    /// belongs to a workload (its own, or inherited at fork).
    fn select(&mut self, tgid: u32, field: impl Fn(MatchField) -> String) {
        if is_exempt(tgid) || self.kernel.role_of(tgid).is_some() {
            return;
        }
        let policy = Arc::clone(self.file.policy());
        let Some(role) = policy.select(|f| std::borrow::Cow::Owned(field(f))) else { return };
        let RoleId(id) = role.id;
        match self.kernel.enroll(tgid, role.id) {
            Ok(pod) => tracing::info!(pid = tgid, role = %role.name, role_id = id, pod, "selected by a workload rule"),
            Err(err) => tracing::warn!(pid = tgid, error = format!("{err:#}"), "enrolling a selected process failed"),
        }
    }

    async fn refresh_names(shared: &SharedEnforcer) {
        let hosts: Vec<String> = shared.lock().unwrap_or_else(|e| e.into_inner()).hosts_to_resolve();
        let mut resolved = HashMap::new();
        for host in hosts {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await.map(|addrs| addrs.map(|a| a.ip()).collect());
            match found {
                Ok(addrs) => {
                    resolved.insert(host, addrs);
                }
                Err(err) => tracing::warn!(host, %err, "a host name the policy allows did not resolve"),
            }
        }
        let mut enforcer = shared.lock().unwrap_or_else(|e| e.into_inner());
        if resolved != enforcer.resolved {
            enforcer.resolved = resolved;
            if let Err(err) = enforcer.apply() {
                tracing::error!(error = format!("{err:#}"), "re-resolved names could not be written to the kernel");
            }
        }
    }

    /// Re-reads the file every second and resolves its names every minute,
    /// until `shutdown`.
    pub fn spawn_upkeep(shared: SharedEnforcer, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut reload = tokio::time::interval(RELOAD_EVERY);
            let mut resolve = tokio::time::interval(RESOLVE_EVERY);
            resolve.tick().await; // resolved at start already
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = reload.tick() => shared.lock().unwrap_or_else(|e| e.into_inner()).reload(),
                    _ = resolve.tick() => Self::refresh_names(&shared).await,
                }
            }
        });
    }
}

fn resolve_blocking(hosts: &[&str]) -> HashMap<String, Vec<IpAddr>> {
    use std::net::ToSocketAddrs;
    let mut resolved = HashMap::new();
    for host in hosts {
        match (*host, 0).to_socket_addrs() {
            Ok(addrs) => {
                resolved.insert(host.to_string(), addrs.map(|a| a.ip()).collect());
            }
            Err(err) => tracing::warn!(host, %err, "a host name the policy allows did not resolve"),
        }
    }
    resolved
}

/// Enrols the processes `[[workloads]]` rules select, as they start.
pub struct WorkloadSelector(pub SharedEnforcer);

impl ProcessHooks for WorkloadSelector {
    fn started(&mut self, process: ProcessAt, _seeded: bool, host: &mut Host<'_>) {
        let Some(info) = host.table.get(process.pid) else { return };
        // The same fields as the agent mapping rules: the process table's,
        // and where its cgroup places it (container, pod, namespace).
        let placement = Placement::of(host.containers.identity(info.cgroup_id, process.pid));
        let field = |f: MatchField| field_value(info, &placement, f).into_owned();
        let enforcer = &mut *self.0.lock().unwrap_or_else(|e| e.into_inner());
        enforcer.select(process.pid, field);
        if let Some(rate) = &mut enforcer.rate {
            if enforcer.kernel.role_of(process.pid).is_some() {
                rate.examine_process(process.pid);
            }
        }
    }

    fn exited(&mut self, _process: ProcessAt, _start_ns: u64) {}

    /// Says what policy is in force, when that is due.
    fn tick(&mut self, now_ns: u64, host: &mut Host<'_>) {
        let enforcer = &mut *self.0.lock().unwrap_or_else(|e| e.into_inner());
        enforcer.status.send_when_due(&enforcer.file, Instant::now(), now_ns, host.batch);
        if let Some(rate) = &mut enforcer.rate {
            let kernel = &enforcer.kernel;
            let pod_of = |tgid| kernel.pod_of(tgid).map_or(0, |p| p.pod);
            rate.tick(now_ns, pod_of, &enforcer.names, host.table, host.batch);
        }
    }
}
