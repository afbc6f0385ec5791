//! Quarantine: a finding that `[[pipeline.quarantine]]` names cuts its agent
//! session off. The stage sends a quarantine update on the control road
//! (Kafka's control topic, or the in-process channel) to every node agent,
//! and stores it; the node running the session enrols the session's
//! processes in the built-in role `quarantine` and acknowledges, and the
//! acknowledgement comes back on the events road like any event
//! ([`crate::policy_rows::quarantine_ack_row`]). A session is quarantined once per aggregator run: its
//! first matching finding sends the update.

use std::{collections::HashSet, sync::Arc, time::Duration};

use bytes::Bytes;
use plumbline_proto::v1::{NodeIdentity, QuarantineUpdate};
use plumbline_store::{now_wall_ns, FindingRow, QuarantineUpdateRow};
use plumbline_transport::control::ControlPublisher;

use crate::{config::QuarantineRule, sessions::SessionStage};

/// How often sending an update is tried before it is given up (logged).
const PUBLISH_ATTEMPTS: u32 = 5;

pub struct QuarantineStage {
    rules: Vec<QuarantineRule>,
    publisher: Option<Arc<dyn ControlPublisher>>,
    /// Sessions already quarantined.
    quarantined: HashSet<String>,
    sender: NodeIdentity,
}

impl QuarantineStage {
    pub fn new(rules: &[QuarantineRule], publisher: Option<Arc<dyn ControlPublisher>>) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string());
        let sender = NodeIdentity {
            host: format!("aggregator@{}", host.unwrap_or_default()),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        Self { rules: rules.to_vec(), publisher, quarantined: HashSet::new(), sender }
    }

    /// The updates `findings` call for, sent on their way (in the
    /// background) and returned as rows to store.
    pub fn judge(&mut self, findings: &[FindingRow], sessions: &SessionStage) -> Vec<QuarantineUpdateRow> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let mut rows = Vec::new();
        for finding in findings {
            if !self.rules.iter().any(|rule| rule.matches(&finding.kind, &finding.severity)) {
                continue;
            }
            if !self.quarantined.insert(finding.session.clone()) {
                continue;
            }
            let mut pids = sessions.session_pids(&finding.host, &finding.boot_id, &finding.session);
            if pids.is_empty() {
                pids.push(finding.pid);
            }
            let update = update_of(finding, pids, now_wall_ns());
            tracing::info!(
                session = %update.session, host = %update.host, pids = ?update.pids,
                finding = %update.finding_kind, severity = %update.severity, "quarantining an agent session"
            );
            self.publish(&update);
            rows.push(update_row(&update));
        }
        rows
    }

    fn publish(&self, update: &QuarantineUpdate) {
        let Some(publisher) = self.publisher.clone() else {
            tracing::warn!(session = %update.session, "no control road to send the quarantine on: no node will apply it");
            return;
        };
        let payload =
            Bytes::from(plumbline_proto::control::encode_update(update, self.sender.clone(), update.issued_wall_ns));
        let (key, id) = (update.host.clone(), update.id.clone());
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            for attempt in 1..=PUBLISH_ATTEMPTS {
                match publisher.publish(&key, payload.clone()).await {
                    Ok(()) => return,
                    Err(err) if attempt == PUBLISH_ATTEMPTS => {
                        tracing::error!(%err, id, "the quarantine update could not be sent; it is given up")
                    }
                    Err(err) => tracing::warn!(%err, id, "sending the quarantine update failed; retrying"),
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        });
    }
}

/// The update a matching finding makes; `pids` are the session's processes.
pub fn update_of(finding: &FindingRow, pids: Vec<u32>, now_wall_ns: u64) -> QuarantineUpdate {
    QuarantineUpdate {
        id: format!("q-{}-{:x}", finding.session, finding.found_wall_ns),
        session: finding.session.clone(),
        agent: finding.agent.clone(),
        host: finding.host.clone(),
        boot_id: finding.boot_id.clone(),
        pids,
        finding_kind: finding.kind.clone(),
        severity: finding.severity.clone(),
        finding_subject: finding.subject.clone(),
        finding_summary: finding.summary.clone(),
        found_wall_ns: finding.found_wall_ns,
        issued_wall_ns: now_wall_ns,
    }
}

pub fn update_row(update: &QuarantineUpdate) -> QuarantineUpdateRow {
    QuarantineUpdateRow {
        id: update.id.clone(),
        session: update.session.clone(),
        agent: update.agent.clone(),
        host: update.host.clone(),
        boot_id: update.boot_id.clone(),
        pids: update.pids.iter().map(u32::to_string).collect(),
        finding_kind: update.finding_kind.clone(),
        severity: update.severity.clone(),
        finding_subject: update.finding_subject.clone(),
        finding_summary: update.finding_summary.clone(),
        found_wall_ns: update.found_wall_ns,
        wall_ns: update.issued_wall_ns,
    }
}

#[cfg(test)]
mod tests {
    use plumbline_proto::{
        v1::{event::Body, QuarantineAck},
        BatchBuilder, BatchHeader, BatchReader,
    };
    use plumbline_transport::control::ControlSubscriber;
    use prost::Message;

    use super::*;

    fn finding(kind: &str, severity: &str) -> FindingRow {
        FindingRow {
            session: "s1".into(),
            host: "node-a".into(),
            boot_id: "b".into(),
            pid: 41,
            kind: kind.into(),
            severity: severity.into(),
            found_wall_ns: 0x10,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_matching_finding_quarantines_its_session_once_and_is_sent() {
        let control = plumbline_transport::control::pair();
        let mut subscriber = control.subscribe();
        let rules = [QuarantineRule { kind: "out_of_scope_effect".into(), severity: "medium".into() }];
        let mut stage = QuarantineStage::new(&rules, Some(Arc::new(control)));
        let sessions = SessionStage::new(&Default::default());
        let findings = [finding("out_of_scope_effect", "low"), finding("guardrail", "high")];
        assert!(stage.judge(&findings, &sessions).is_empty());
        let rows =
            stage.judge(&[finding("out_of_scope_effect", "high"), finding("out_of_scope_effect", "high")], &sessions);
        assert_eq!(rows.len(), 1, "one update per session");
        assert_eq!((rows[0].id.as_str(), &rows[0].pids[..]), ("q-s1-10", &["41".to_string()][..]));
        let sent = plumbline_proto::control::decode_updates(&subscriber.next().await.unwrap()).unwrap();
        assert_eq!((sent[0].id.as_str(), sent[0].host.as_str(), &sent[0].pids[..]), ("q-s1-10", "node-a", &[41][..]));
    }

    #[test]
    fn an_ack_becomes_a_row_of_the_node_that_sent_it() {
        let mut builder = BatchBuilder::new();
        let ack = QuarantineAck {
            id: "q-s1-10".into(),
            session: "s1".into(),
            applied: false,
            reason: "no enforcement policy on this node".into(),
            applied_wall_ns: 30,
            received_wall_ns: 25,
            issued_wall_ns: 20,
            ..Default::default()
        };
        builder.push(5, 0, 0, 0, Body::QuarantineAck(ack));
        let header = BatchHeader {
            node: NodeIdentity { host: "node-b".into(), boot_id: "bb".into(), ..Default::default() },
            clock: Default::default(),
            agent_run_id: "r".into(),
            sequence: 1,
        };
        let batch = plumbline_proto::v1::EventBatch::decode(builder.finish(header).encode_to_vec().as_slice()).unwrap();
        let reader = BatchReader::new(&batch).unwrap();
        let event = reader.events().next().unwrap().unwrap();
        let Some(Body::QuarantineAck(ack)) = &event.event.body else { panic!("an ack") };
        let row = crate::policy_rows::quarantine_ack_row(&reader, ack);
        assert_eq!((row.host.as_str(), row.boot_id.as_str(), row.applied, row.wall_ns), ("node-b", "bb", 0, 30));
        assert_eq!(row.reason, "no enforcement policy on this node");
    }
}
