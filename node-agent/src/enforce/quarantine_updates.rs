//! Quarantine updates on the node: the control road read, each update that
//! names this node applied with the enforcer (see [`super::quarantine`] for
//! the role and what it allows) and answered with an acknowledgement.

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    sync::Arc,
};

use plumbline_intent::endpoints::Endpoint;
use plumbline_proto::{
    control::{ack_of, decode_updates},
    v1::{NodeIdentity, QuarantineAck, QuarantineUpdate},
};
use plumbline_transport::{control::ControlSubscriber, OutgoingBatch};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    enforcer::SharedEnforcer,
    policy::RoleSpec,
    quarantine::{ack_batch, now_wall_ns, resolve, role_hosts, role_spec, ROLE},
};

/// What applying an update on this node came to.
pub fn apply(
    update: &QuarantineUpdate,
    node: &NodeIdentity,
    enforcer: Option<&SharedEnforcer>,
    role: &RoleSpec,
    resolved: &HashMap<String, Vec<IpAddr>>,
) -> QuarantineAck {
    let mut ack = ack_of(update, now_wall_ns());
    ack.role = ROLE.into();
    let outcome = if !update.boot_id.is_empty() && update.boot_id != node.boot_id {
        Err(format!("the session ran in boot {} of this node, which is now in boot {}", update.boot_id, node.boot_id))
    } else if let Some(enforcer) = enforcer {
        enforcer.lock().unwrap_or_else(|e| e.into_inner()).quarantine(&update.pids, role, resolved)
    } else {
        Err("no enforcement on this node: no [capture.enforce] policy_file is loaded, so the tier is observe and there is no enforce object to enrol processes in".into())
    };
    ack.applied_wall_ns = now_wall_ns();
    match outcome {
        Ok(pids) => {
            ack.applied = true;
            ack.reason = format!("{} process(es) enrolled in role {ROLE} (enforce): only LLM endpoints", pids.len());
            ack.pids = pids;
        }
        Err(reason) => ack.reason = reason,
    }
    ack
}

/// Reads the control road until `shutdown`; answers each update that names
/// this node with an acknowledgement, queued for delivery at once.
pub fn spawn_listener(
    mut control: Box<dyn ControlSubscriber>,
    node: NodeIdentity,
    enforcer: Option<SharedEnforcer>,
    endpoints: &[Endpoint],
    queue: mpsc::Sender<OutgoingBatch>,
    shutdown: CancellationToken,
) {
    let role = Arc::new(role_spec(endpoints));
    tokio::spawn(async move {
        // Resolved before any update comes, so a quarantine waits for no lookup.
        let hosts = role_hosts(&role);
        let resolved = Arc::new(tokio::task::spawn_blocking(move || resolve(&hosts)).await.unwrap_or_default());
        let run_id = uuid::Uuid::new_v4().to_string();
        let mut sequence = 0;
        let mut answered = BTreeSet::new();
        loop {
            let payload = tokio::select! {
                _ = shutdown.cancelled() => return,
                payload = control.next() => match payload {
                    Some(payload) => payload,
                    None => return,
                },
            };
            let updates = match decode_updates(&payload) {
                Ok(updates) => updates,
                Err(err) => {
                    tracing::warn!(%err, "a control message that is not a quarantine update; ignored");
                    continue;
                }
            };
            for update in updates.iter().filter(|u| u.host == node.host) {
                if !answered.insert(update.id.clone()) {
                    continue;
                }
                let enforcer = enforcer.clone();
                let (update_for, node_for) = (update.clone(), node.clone());
                let (role, resolved) = (Arc::clone(&role), Arc::clone(&resolved));
                // Enrolling reads /proc and writes BPF maps: off the runtime's threads.
                let ack = tokio::task::spawn_blocking(move || {
                    apply(&update_for, &node_for, enforcer.as_ref(), &role, &resolved)
                })
                .await
                .expect("applying a quarantine does not panic");
                tracing::info!(
                    id = %ack.id, session = %ack.session, applied = ack.applied, reason = %ack.reason,
                    pids = ?ack.pids, "quarantine update answered"
                );
                sequence += 1;
                let batch = ack_batch(ack, &node, &run_id, sequence);
                if queue.send(batch).await.is_err() {
                    return;
                }
            }
        }
    });
}
