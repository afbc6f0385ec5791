//! What the node tells the pipeline of its workload policy: a
//! `PolicyStatus` event with the tier and what the tier cannot cover, the
//! file and version in force, a reload that failed, and each role's modes
//! and rules. Sent at start, when the policy in force changes or a reload
//! fails, and every [`RESEND_EVERY`], so a store or query service that
//! starts later learns it.

use std::time::{Duration, Instant};

use plumbline_proto::{
    v1::{event::Body, policy_family, policy_status, PolicyFamily, PolicyRole, PolicyStatus},
    BatchBuilder,
};

use super::{
    policy::{Mode, PolicyFile},
    tier::{Tier, TierReport},
};

/// How often the status is sent when nothing changes.
const RESEND_EVERY: Duration = Duration::from_secs(60);

/// When the status is next due, and what it says besides the policy: the
/// tier and why the file's current text is not in force.
#[derive(Debug)]
pub struct StatusReport {
    tier: TierReport,
    reload_error: Option<String>,
    /// `None`: due now.
    sent_at: Option<Instant>,
}

impl StatusReport {
    /// Due at once: the agent has just started with a policy.
    pub fn new(tier: TierReport) -> Self {
        Self { tier, reload_error: None, sent_at: None }
    }

    /// The file's text is in force again (or anew): due now.
    pub fn applied(&mut self) {
        self.reload_error = None;
        self.sent_at = None;
    }

    /// The file's text could not be put in force (`error` names the key at
    /// fault); the last good policy stays: due now.
    pub fn failed(&mut self, error: String) {
        self.reload_error = Some(error);
        self.sent_at = None;
    }

    /// Adds the status to `batch` at `now_ns` when it is due: never sent
    /// since a change, or sent [`RESEND_EVERY`] ago.
    pub fn send_when_due(&mut self, file: &PolicyFile, now: Instant, now_ns: u64, batch: &mut BatchBuilder) {
        if self.sent_at.is_some_and(|at| now.duration_since(at) < RESEND_EVERY) {
            return;
        }
        self.sent_at = Some(now);
        let body = Body::PolicyStatus(self.status(file, batch));
        batch.push(now_ns, 0, 0, 0, body);
    }

    fn status(&self, file: &PolicyFile, batch: &mut BatchBuilder) -> PolicyStatus {
        let tier = match self.tier.tier {
            Tier::Lsm => policy_status::Tier::Lsm,
            Tier::Fallback => policy_status::Tier::Fallback,
            Tier::Observe => policy_status::Tier::Observe,
        };
        let roles = file
            .policy()
            .roles
            .iter()
            .map(|role| {
                let [exec, files, network, llm] = role.families().map(|(_, rules)| {
                    rules.map(|(mode, rules)| PolicyFamily {
                        mode: match mode {
                            Mode::Audit => policy_family::Mode::Audit,
                            Mode::Enforce => policy_family::Mode::Enforce,
                        } as i32,
                        rules_sid: batch.intern(&rules),
                    })
                });
                PolicyRole { name_sid: batch.intern(&role.name), exec, files, network, llm }
            })
            .collect();
        PolicyStatus {
            tier: tier as i32,
            bpf_lsm_listed: self.tier.bpf_lsm_listed,
            policy_file_sid: batch.intern(&file.path().to_string_lossy()),
            policy_version_sid: batch.intern(file.version()),
            reload_error_sid: batch.intern(self.reload_error.as_deref().unwrap_or("")),
            roles,
            caveat_sids: self.tier.tier.caveats().iter().map(|caveat| batch.intern(caveat)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use plumbline_proto::BatchHeader;

    use super::*;

    const POLICY: &str = "[[roles]]\nname = \"coder\"\nmode = \"enforce\"\n[roles.exec]\nallow = [\"/usr/bin/\"]\n\
                          mode = \"audit\"\n[roles.network]\nallow = [\"10.0.0.0/8\", \"example.com:443\"]\n";

    fn policy_file(text: &str) -> (tempfile::TempDir, PolicyFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).unwrap();
        let file = PolicyFile::open(&path).unwrap();
        (dir, file)
    }

    /// The statuses a batch holds, with their strings resolved.
    fn sent(batch: &mut BatchBuilder) -> Vec<(PolicyStatus, Vec<String>)> {
        let batch = batch.finish(BatchHeader::default());
        let statuses = batch.events.iter().filter_map(|e| match &e.body {
            Some(Body::PolicyStatus(status)) => Some(status.clone()),
            _ => None,
        });
        statuses.map(|status| (status, batch.strings.clone())).collect()
    }

    #[test]
    fn the_status_names_the_tier_the_file_its_version_each_role_s_families_and_the_caveats() {
        let (_dir, file) = policy_file(POLICY);
        let mut report = StatusReport::new(TierReport { tier: Tier::Fallback, bpf_lsm_listed: false });
        let mut batch = BatchBuilder::new();
        report.send_when_due(&file, Instant::now(), 7, &mut batch);
        let [(status, strings)] = sent(&mut batch).try_into().unwrap();
        let text = |sid: u32| strings[sid as usize].as_str();
        assert_eq!(status.tier, policy_status::Tier::Fallback as i32);
        assert_eq!(text(status.policy_file_sid), file.path().to_str().unwrap());
        // What `sha256sum` prints for the file.
        assert_eq!(text(status.policy_version_sid).len(), 64);
        assert_eq!(text(status.reload_error_sid), "");
        let role = &status.roles[0];
        assert_eq!(text(role.name_sid), "coder");
        let exec = role.exec.as_ref().unwrap();
        assert_eq!((exec.mode, text(exec.rules_sid)), (policy_family::Mode::Audit as i32, "1 allowed"));
        assert!(role.files.is_none(), "files are not confined");
        let network = role.network.as_ref().unwrap();
        assert_eq!(network.mode, policy_family::Mode::Enforce as i32);
        assert!(
            text(network.rules_sid).starts_with("1 address rule(s), 1 host rule(s)"),
            "{}",
            text(network.rules_sid)
        );
        let said: Vec<&str> = status.caveat_sids.iter().map(|&sid| text(sid)).collect();
        assert_eq!(said, Tier::Fallback.caveats());
        assert!(said.iter().any(|c| c.starts_with("exec: ") && c.contains("137")), "{said:?}");
    }

    #[test]
    fn it_is_sent_at_start_on_every_change_or_failure_and_every_minute_otherwise() {
        let (_dir, file) = policy_file(POLICY);
        let mut report = StatusReport::new(TierReport { tier: Tier::Fallback, bpf_lsm_listed: true });
        let start = Instant::now();
        let mut batch = BatchBuilder::new();
        let mut sends_at = |report: &mut StatusReport, after: Duration| {
            report.send_when_due(&file, start + after, 1, &mut batch);
            sent(&mut batch)
        };
        assert_eq!(sends_at(&mut report, Duration::ZERO).len(), 1, "at start");
        assert!(sends_at(&mut report, Duration::from_secs(59)).is_empty(), "nothing changed");
        report.failed("roles[0].mode: unknown variant `sometimes`".into());
        let [(status, strings)] = sends_at(&mut report, Duration::from_secs(59)).try_into().unwrap();
        assert_eq!(strings[status.reload_error_sid as usize], "roles[0].mode: unknown variant `sometimes`");
        assert_eq!(status.roles.len(), 1, "the last good policy's roles stay");
        assert!(sends_at(&mut report, Duration::from_secs(100)).is_empty());
        assert_eq!(sends_at(&mut report, Duration::from_secs(119)).len(), 1, "a minute after the last");
        report.applied();
        let [(status, _)] = sends_at(&mut report, Duration::from_secs(120)).try_into().unwrap();
        assert_eq!(status.reload_error_sid, 0, "fixed");
    }
}
