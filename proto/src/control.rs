//! Control messages on the wire: a quarantine update travels the control
//! topic as an `EventBatch` of one event, like any other event, from the
//! aggregator named as its sender; a node's acknowledgement travels the
//! events road in the node's own batches.

use prost::Message;

use crate::v1::{event::Body, ClockAnchor, Event, EventBatch, NodeIdentity, QuarantineAck, QuarantineUpdate};

/// The batch that carries `update` on the control topic; `sender` is the
/// aggregator's identity.
pub fn encode_update(update: &QuarantineUpdate, sender: NodeIdentity, wall_ns: u64) -> Vec<u8> {
    EventBatch {
        schema_version: crate::SCHEMA_VERSION,
        node: Some(sender),
        clock: Some(ClockAnchor { boot_ns: 0, wall_ns, uncertainty_ns: 0 }),
        agent_run_id: update.id.clone(),
        sequence: 1,
        base_ts_ns: 0,
        strings: Vec::new(),
        events: vec![Event { body: Some(Body::QuarantineUpdate(update.clone())), ..Default::default() }],
    }
    .encode_to_vec()
}

/// What a control payload says; only quarantine updates are known.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ControlError {
    #[error("not an EventBatch: {0}")]
    Decode(String),
    #[error("schema version {0} is not known")]
    Version(u32),
    #[error("the control batch holds no quarantine update")]
    NoUpdate,
}

/// The quarantine updates of a control payload, in order.
pub fn decode_updates(payload: &[u8]) -> Result<Vec<QuarantineUpdate>, ControlError> {
    let batch = EventBatch::decode(payload).map_err(|e| ControlError::Decode(e.to_string()))?;
    if batch.schema_version != crate::SCHEMA_VERSION {
        return Err(ControlError::Version(batch.schema_version));
    }
    let updates: Vec<QuarantineUpdate> = batch
        .events
        .into_iter()
        .filter_map(|e| match e.body {
            Some(Body::QuarantineUpdate(u)) => Some(u),
            _ => None,
        })
        .collect();
    if updates.is_empty() {
        return Err(ControlError::NoUpdate);
    }
    Ok(updates)
}

/// The acknowledgement of `update`, before the node fills in what it did.
pub fn ack_of(update: &QuarantineUpdate, received_wall_ns: u64) -> QuarantineAck {
    QuarantineAck {
        id: update.id.clone(),
        session: update.session.clone(),
        received_wall_ns,
        issued_wall_ns: update.issued_wall_ns,
        finding_kind: update.finding_kind.clone(),
        severity: update.severity.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update() -> QuarantineUpdate {
        QuarantineUpdate {
            id: "q1".into(),
            session: "s1".into(),
            agent: "coder".into(),
            host: "node-a".into(),
            boot_id: "b".into(),
            pids: vec![41, 42],
            finding_kind: "out_of_scope_effect".into(),
            severity: "high".into(),
            finding_subject: "/root/.ssh/id_rsa".into(),
            finding_summary: "secret read".into(),
            found_wall_ns: 10,
            issued_wall_ns: 11,
        }
    }

    #[test]
    fn an_update_survives_the_control_topic_whole() {
        let sender = NodeIdentity { host: "aggregator".into(), ..Default::default() };
        let payload = encode_update(&update(), sender, 11);
        assert_eq!(decode_updates(&payload).unwrap(), vec![update()]);
    }

    #[test]
    fn a_payload_without_an_update_or_of_another_version_is_refused() {
        assert!(matches!(decode_updates(b"\xff\xff"), Err(ControlError::Decode(_))));
        let empty = EventBatch { schema_version: crate::SCHEMA_VERSION, ..Default::default() }.encode_to_vec();
        assert_eq!(decode_updates(&empty), Err(ControlError::NoUpdate));
        let future = EventBatch { schema_version: 9, ..Default::default() }.encode_to_vec();
        assert_eq!(decode_updates(&future), Err(ControlError::Version(9)));
    }

    #[test]
    fn an_ack_carries_the_update_s_identity_and_times() {
        let ack = ack_of(&update(), 12);
        assert_eq!(
            (ack.id.as_str(), ack.session.as_str(), ack.issued_wall_ns, ack.received_wall_ns),
            ("q1", "s1", 11, 12)
        );
        assert!(!ack.applied);
        let round = QuarantineAck::decode(ack.encode_to_vec().as_slice()).unwrap();
        assert_eq!(round, ack);
    }
}
