//! One delivery becomes rows: a decoded batch's events as table rows, or,
//! when the payload does not decode, a dead letter carrying it.

use plumbline_proto::{
    process_start_key,
    v1::{event::Body, EventBatch},
    BatchError, BatchReader, EventRef,
};
use plumbline_store::{DeadLetterRow, ProcessEventKind, ProcessEventRow, RowSet};

use crate::{
    activity_rows::push_activity_row,
    gpu_rows::{kernel_launches, push_gpu_row},
    llm_rows::push_llm_row,
    policy_rows::policy_status_row,
};
use plumbline_transport::Delivery;
use prost::Message;

/// The host (and boot) whose agent sent a batch, the training jobs it
/// reports on (those of its NCCL calls, and the job its key names: a job's
/// heartbeat has no events), its clock when the agent built it and its
/// oldest event (wall-clock ns on the host's clock; None: no events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub host: String,
    pub boot_id: String,
    pub jobs: Vec<String>,
    pub clock_wall_ns: u64,
    pub oldest_event_wall_ns: Option<u64>,
}

/// The key prefix of a training job's batches (see the node agent's
/// capture loop).
const JOB_KEY_PREFIX: &str = "job-";

/// What one delivery turned into.
#[derive(Debug, Default, PartialEq)]
pub struct DeliveryRows {
    pub rows: RowSet,
    /// Who sent it, when it decoded.
    pub sender: Option<Sender>,
    pub events: u64,
    /// Events of kinds not stored yet.
    pub unsupported: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a plumbline.v1 EventBatch: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid batch: {0}")]
    Batch(#[from] BatchError),
}

/// Rows for one delivery; undecodable payloads become a dead letter.
pub fn delivery_rows(delivery: &Delivery, received_wall_ns: u64) -> DeliveryRows {
    match decode(&delivery.payload) {
        Ok(mut rows) => {
            let keyed = delivery.key.as_deref().and_then(|k| k.strip_prefix(JOB_KEY_PREFIX));
            if let Some((sender, job)) = rows.sender.as_mut().zip(keyed) {
                if !sender.jobs.iter().any(|j| j == job) {
                    sender.jobs.push(job.to_string());
                }
            }
            rows
        }
        Err(err) => DeliveryRows {
            rows: RowSet {
                dead_letters: vec![dead_letter(delivery, &err.to_string(), received_wall_ns)],
                ..Default::default()
            },
            ..Default::default()
        },
    }
}

/// A dead letter keeping the whole payload and why it was set aside.
pub fn dead_letter(delivery: &Delivery, error: &str, received_wall_ns: u64) -> DeadLetterRow {
    DeadLetterRow {
        origin: delivery.origin.to_string(),
        payload_hash: xxhash_rust::xxh3::xxh3_64(&delivery.payload),
        received_wall_ns,
        error: error.to_string(),
        key: delivery.key.clone().unwrap_or_default(),
        payload: delivery.payload.to_vec(),
    }
}

fn decode(payload: &[u8]) -> Result<DeliveryRows, DecodeError> {
    let batch = EventBatch::decode(payload)?;
    let reader = BatchReader::new(&batch)?;
    let node = reader.node();
    let sender = Sender {
        host: node.host.clone(),
        boot_id: node.boot_id.clone(),
        jobs: Vec::new(),
        clock_wall_ns: reader.clock().wall_ns,
        // Events are in time order: the first is the oldest.
        oldest_event_wall_ns: (!batch.events.is_empty()).then(|| reader.wall_ns(batch.base_ts_ns)),
    };
    let mut out = DeliveryRows { sender: Some(sender), ..DeliveryRows::default() };
    for event in reader.events() {
        let event = event?;
        out.events += 1;
        let body = event.event.body.as_ref().expect("BatchReader::events refuses events without a body");
        // Every kind named: a new one does not compile until it is stored
        // or said not to be.
        let stored = match body {
            Body::Exec(_) | Body::Seen(_) | Body::Fork(_) | Body::Exit(_) | Body::ExecFailed(_) => {
                out.rows.process_events.extend(process_row(&reader, &event, body)?);
                true
            }
            Body::Container(_)
            | Body::File(_)
            | Body::FileWrites(_)
            | Body::Connect(_)
            | Body::Flow(_)
            | Body::Dns(_)
            | Body::Ipc(_)
            | Body::Enforcement(_)
            | Body::Loss(_) => push_activity_row(&reader, &event, body, &mut out.rows)?,
            Body::LlmCall(_) | Body::Agent(_) | Body::TlsStack(_) => {
                push_llm_row(&reader, &event, body, &mut out.rows)?
            }
            Body::Cuda(_) | Body::Nccl(_) => push_gpu_row(&reader, &event, body, &mut out.rows)?,
            Body::PolicyStatus(status) => {
                out.rows.policy_status.push(policy_status_row(&reader, &event, status)?);
                true
            }
            Body::QuarantineAck(ack) => {
                out.rows.quarantine_acks.push(crate::policy_rows::quarantine_ack_row(&reader, ack));
                true
            }
            // Kinds the agent does not send: it reads plaintext into LLM
            // calls on the node, and findings are the aggregator's to judge.
            // Quarantine updates are the aggregator's own, sent the other way.
            Body::Tls(_) | Body::Finding(_) | Body::QuarantineUpdate(_) => false,
        };
        if !stored {
            out.unsupported += 1;
        }
    }
    out.rows.kernel_launches = kernel_launches(&out.rows.cuda_calls);
    if let Some(sender) = &mut out.sender {
        for call in out.rows.nccl_calls.iter().filter(|c| !c.job.is_empty()) {
            if !sender.jobs.contains(&call.job) {
                sender.jobs.push(call.job.clone());
            }
        }
    }
    Ok(out)
}

/// The `process_events` row of a process lifecycle event; `None` for other kinds.
fn process_row(
    reader: &BatchReader<'_>,
    event: &EventRef<'_>,
    body: &Body,
) -> Result<Option<ProcessEventRow>, BatchError> {
    let i = event.index;
    let (kind, start_ns) = match body {
        Body::Exec(e) => (ProcessEventKind::Exec, e.start_ns),
        Body::Seen(e) => (ProcessEventKind::Seen, e.start_ns),
        Body::Fork(f) => (ProcessEventKind::Fork, f.start_ns),
        Body::Exit(x) => (ProcessEventKind::Exit, x.start_ns),
        Body::ExecFailed(f) => (ProcessEventKind::ExecFailed, f.start_ns),
        _ => return Ok(None),
    };
    let node = reader.node();
    let mut row = ProcessEventRow {
        host: node.host.clone(),
        boot_id: node.boot_id.clone(),
        pid: event.event.pid,
        start_key_ns: process_start_key(start_ns),
        kind: kind as u8,
        ts_ns: event.ts_ns,
        wall_ns: reader.wall_ns(event.ts_ns),
        start_wall_ns: reader.wall_ns(start_ns),
        ppid: 0,
        uid: 0,
        gid: 0,
        comm: String::new(),
        exe: String::new(),
        argv: Vec::new(),
        argv_truncated: false,
        cgroup_id: event.event.cgroup_id,
        exit_code: 0,
        exit_signal: 0,
        core_dumped: false,
        errno: 0,
    };
    match body {
        Body::Exec(e) | Body::Seen(e) => {
            row.ppid = e.ppid;
            row.uid = e.uid;
            row.gid = e.gid;
            row.comm = reader.str(i, e.comm_sid)?.to_string();
            row.exe = reader.str(i, e.exe_sid)?.to_string();
            row.argv = reader.strs(i, &e.argv_sids)?;
            row.argv_truncated = e.argv_truncated;
        }
        Body::Fork(f) => {
            row.ppid = f.parent_pid;
            row.uid = f.uid;
            row.gid = f.gid;
            row.comm = reader.str(i, f.comm_sid)?.to_string();
        }
        Body::Exit(x) => {
            row.ppid = x.ppid;
            row.comm = reader.str(i, x.comm_sid)?.to_string();
            row.exit_code = x.exit_code;
            row.exit_signal = x.signal;
            row.core_dumped = x.core_dumped;
        }
        Body::ExecFailed(f) => {
            row.comm = reader.str(i, f.comm_sid)?.to_string();
            row.exe = reader.str(i, f.filename_sid)?.to_string();
            row.argv = reader.strs(i, &f.argv_sids)?;
            row.argv_truncated = f.argv_truncated;
            row.errno = f.errno;
        }
        _ => unreachable!("filtered above"),
    }
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use plumbline_proto::{
        v1::{ClockAnchor, NodeIdentity, ProcessExec, ProcessExit, TlsData},
        BatchBuilder, BatchHeader,
    };
    use plumbline_transport::Origin;

    use super::*;

    fn delivery(payload: Vec<u8>) -> Delivery {
        Delivery {
            payload: Bytes::from(payload),
            key: Some("node-a".into()),
            origin: Origin::Kafka { topic: "t".into(), partition: 2, offset: 41 },
        }
    }

    fn header() -> BatchHeader {
        BatchHeader {
            node: NodeIdentity { host: "node-a".into(), boot_id: "boot".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: 1_000_000_000_000, uncertainty_ns: 0 },
            ..Default::default()
        }
    }

    #[test]
    fn exec_and_exit_become_process_rows_with_wall_times_and_one_identity() {
        let mut b = BatchBuilder::new();
        let exec = ProcessExec {
            start_ns: 12_345_678_901,
            ppid: 1,
            comm_sid: b.intern("sh"),
            exe_sid: b.intern("/bin/sh"),
            argv_sids: vec![b.intern("sh"), b.intern("-c"), b.intern("exit 7")],
            ..Default::default()
        };
        b.push(12_400_000_000, 77, 77, 5, Body::Exec(exec));
        let comm = b.intern("sh");
        b.push(
            13_000_000_000,
            77,
            77,
            5,
            Body::Exit(ProcessExit { start_ns: 12_345_678_901, exit_code: 7, comm_sid: comm, ..Default::default() }),
        );
        let out = delivery_rows(&delivery(b.finish(header()).encode_to_vec()), 0);
        assert_eq!(out.events, 2);
        let rows = &out.rows.process_events;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].start_key_ns, 12_340_000_000, "truncated to a clock tick");
        assert_eq!(rows[0].start_key_ns, rows[1].start_key_ns);
        assert_eq!(rows[0].argv, vec!["sh", "-c", "exit 7"]);
        assert_eq!(rows[0].wall_ns, 1_000_000_000_000 + 12_400_000_000);
        assert_eq!(rows[0].start_wall_ns, 1_000_000_000_000 + 12_345_678_901);
        assert_eq!((rows[1].kind, rows[1].exit_code), (ProcessEventKind::Exit as u8, 7));
        assert_eq!(rows[1].cgroup_id, 5);
    }

    #[test]
    fn garbage_becomes_a_dead_letter_with_its_origin_and_bytes() {
        let out = delivery_rows(&delivery(vec![0xff, 0xff, 0xff, 0x01]), 99);
        assert!(out.rows.process_events.is_empty());
        let letter = &out.rows.dead_letters[0];
        assert_eq!(letter.origin, "kafka:t/2@41");
        assert_eq!(letter.payload, vec![0xff, 0xff, 0xff, 0x01]);
        assert_eq!((letter.key.as_str(), letter.received_wall_ns), ("node-a", 99));
        assert!(letter.error.contains("not a plumbline.v1 EventBatch"), "{}", letter.error);
    }

    #[test]
    fn a_batch_with_a_dangling_string_reference_is_a_dead_letter_naming_the_event() {
        let mut b = BatchBuilder::new();
        b.push(1, 1, 1, 0, Body::Exec(ProcessExec { comm_sid: 99, ..Default::default() }));
        let out = delivery_rows(&delivery(b.finish(header()).encode_to_vec()), 0);
        assert!(out.rows.process_events.is_empty());
        assert!(out.rows.dead_letters[0].error.contains("event 0 refers to string 99"), "{:?}", out.rows.dead_letters);
    }

    #[test]
    fn kinds_not_stored_yet_are_counted_not_dropped_silently() {
        let mut b = BatchBuilder::new();
        b.push(1, 1, 1, 0, Body::Tls(TlsData::default()));
        let out = delivery_rows(&delivery(b.finish(header()).encode_to_vec()), 0);
        assert_eq!((out.events, out.unsupported), (1, 1));
        assert!(out.rows.is_empty());
    }
}
