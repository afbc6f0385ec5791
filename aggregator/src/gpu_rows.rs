//! Rows of the GPU tables from the events of one batch (NCCL and CUDA
//! calls), and the `collective_verdicts` row of a judged collective.

use plumbline_proto::{
    v1::{cuda_call, event::Body, nccl_call, CudaCall, NcclCall},
    BatchError, BatchReader, EventRef,
};
use plumbline_store::{to_json_column, CollectiveVerdictRow, CudaCallRow, MissingRank, NcclCallRow, RankValue, RowSet};

use crate::activity_rows::{activity_row, who};
use crate::collective_join::{Judged, RankCall, Verdict};

/// Adds the row for `body` to `rows`; false when the kind is not one of the
/// GPU tables'.
pub fn push_gpu_row(
    reader: &BatchReader<'_>,
    event: &EventRef<'_>,
    body: &Body,
    rows: &mut RowSet,
) -> Result<bool, BatchError> {
    match body {
        Body::Nccl(call) => rows.nccl_calls.push(nccl_row(reader, event, call)?),
        Body::Cuda(call) => rows.cuda_calls.push(cuda_row(reader, event, call)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// "ALL_REDUCE" for `OP_ALL_REDUCE`; the number for a value this build
/// does not know.
pub fn op_name(op: i32) -> String {
    nccl_call::Op::try_from(op)
        .map(|o| o.as_str_name().trim_start_matches("OP_").to_string())
        .unwrap_or_else(|_| op.to_string())
}

fn api_name(api: i32) -> String {
    cuda_call::Api::try_from(api)
        .map(|a| a.as_str_name().trim_start_matches("API_").to_string())
        .unwrap_or_else(|_| api.to_string())
}

fn nccl_row(reader: &BatchReader<'_>, event: &EventRef<'_>, call: &NcclCall) -> Result<NcclCallRow, BatchError> {
    let w = who(reader, event)?;
    Ok(activity_row!(NcclCallRow, w, {
        tid: event.event.tid,
        job: reader.str(event.index, call.job_sid)?.to_string(),
        communicator: call.comm_id_hash,
        comm_handle: call.comm_handle,
        rank: call.rank,
        nranks: call.nranks,
        seq: call.seq,
        op: op_name(call.op),
        count: call.count,
        datatype: call.datatype,
        reduce_op: call.reduce_op,
        peer: call.peer,
        stream: call.stream,
        result: call.result,
        duration_ns: call.duration_ns,
        device: call.device,
        parent_communicator: call.parent_comm_id_hash,
        color: call.color,
    }))
}

fn cuda_row(reader: &BatchReader<'_>, event: &EventRef<'_>, call: &CudaCall) -> Result<CudaCallRow, BatchError> {
    let w = who(reader, event)?;
    Ok(activity_row!(CudaCallRow, w, {
        tid: event.event.tid,
        job: reader.str(event.index, call.job_sid)?.to_string(),
        rank: call.rank,
        device: call.device,
        api: api_name(call.api),
        kernel: reader.str(event.index, call.function_sid)?.to_string(),
        grid_x: call.grid_x,
        grid_y: call.grid_y,
        grid_z: call.grid_z,
        block_x: call.block_x,
        block_y: call.block_y,
        block_z: call.block_z,
        stream: call.stream,
        bytes: call.bytes,
        memcpy_kind: call.memcpy_kind,
        result: call.result,
        duration_ns: call.duration_ns,
        handle: call.handle,
    }))
}

/// Ops joined across ranks: every rank of the communicator calls them, in
/// the same order. (Send and Recv pair two ranks and are not joined.)
const COLLECTIVES: [nccl_call::Op; 5] = [
    nccl_call::Op::AllReduce,
    nccl_call::Op::AllGather,
    nccl_call::Op::ReduceScatter,
    nccl_call::Op::Broadcast,
    nccl_call::Op::Reduce,
];

/// The stored call as the join's input: a collective of a known
/// communicator and rank that the library accepted; `None` otherwise.
pub fn rank_call(row: &NcclCallRow) -> Option<(u64, RankCall)> {
    let op = COLLECTIVES.iter().find(|op| op_name(**op as i32) == row.op)?;
    if row.communicator == 0 || row.rank < 0 || row.nranks <= 0 || row.result != 0 {
        return None;
    }
    Some((
        row.communicator,
        RankCall {
            job: row.job.clone(),
            host: row.host.clone(),
            device: row.device,
            rank: row.rank as u32,
            nranks: row.nranks as u32,
            seq: row.seq,
            op: *op as i32,
            count: row.count,
            datatype: row.datatype,
            entry_ns: row.wall_ns,
            exit_ns: row.wall_ns.saturating_add(row.duration_ns),
        },
    ))
}

/// The stored form of a judged collective.
pub fn verdict_row(judged: &Judged, judged_wall_ns: u64) -> CollectiveVerdictRow {
    let mut row = CollectiveVerdictRow {
        job: judged.job.clone(),
        communicator: judged.communicator,
        seq: judged.seq,
        op: op_name(judged.op),
        count: judged.count,
        datatype: judged.datatype,
        nranks: judged.nranks,
        arrived: judged.arrived,
        hosts: judged.hosts,
        verdict: String::new(),
        wall_ns: judged.first_entry_ns,
        median_wall_ns: judged.median_entry_ns,
        last_wall_ns: judged.last_entry_ns,
        rank: -1,
        host: String::new(),
        device: -1,
        late_ns: 0,
        field: String::new(),
        expected: String::new(),
        differing: String::new(),
        missing: String::new(),
        judged_wall_ns,
    };
    if let Some(last) = &judged.last {
        row.rank = last.rank as i32;
        row.host = last.host.clone();
        row.device = last.device;
        row.late_ns = last.late_ns;
    }
    row.verdict = match &judged.verdict {
        Verdict::Complete => "complete",
        Verdict::Straggler => "straggler",
        Verdict::Mismatch { field, expected, differing } => {
            let shown = |value: i64| match field {
                crate::collective_join::Field::Op => op_name(value as i32),
                _ => value.to_string(),
            };
            row.field = field.name().to_string();
            row.expected = shown(*expected);
            let differing: Vec<RankValue> =
                differing.iter().map(|(rank, value)| RankValue { rank: *rank, value: shown(*value) }).collect();
            row.differing = to_json_column(&differing);
            "mismatch"
        }
        Verdict::Hang { missing } => {
            let missing: Vec<MissingRank> = missing
                .iter()
                .map(|m| MissingRank {
                    rank: m.rank,
                    last_completed_seq: m.last_completed,
                    host: m.host.clone(),
                    device: m.device,
                })
                .collect();
            row.missing = to_json_column(&missing);
            "hang"
        }
    }
    .to_string();
    row
}
