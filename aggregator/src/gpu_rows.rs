//! Rows of the GPU tables from the events of one batch (NCCL and CUDA
//! calls), and the `collective_verdicts` row of a judged collective.

use plumbline_proto::{
    v1::{cuda_call, event::Body, nccl_call, CudaCall, NcclCall},
    BatchError, BatchReader, EventRef,
};
use plumbline_store::{
    to_json_column, CollectiveVerdictRow, CudaCallRow, KernelLaunchesRow, MissingRank, NcclCallRow, RankValue, RowSet,
};

use crate::activity_rows::{activity_row, who};
use crate::collective_join::{job_rank, Field, Judged, RankCall, SplitPart, Verdict};

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
        .map(|o| o.as_str_name().strip_prefix("OP_").unwrap_or(o.as_str_name()).to_string())
        .unwrap_or_else(|_| op.to_string())
}

fn api_name(api: i32) -> String {
    cuda_call::Api::try_from(api)
        .map(|a| a.as_str_name().strip_prefix("API_").unwrap_or(a.as_str_name()).to_string())
        .unwrap_or_else(|_| api.to_string())
}

fn nccl_row(reader: &BatchReader<'_>, event: &EventRef<'_>, call: &NcclCall) -> Result<NcclCallRow, BatchError> {
    let w = who(reader, event)?;
    Ok(activity_row!(NcclCallRow, w, {
        tid: event.event.tid,
        job: reader.str(event.index, call.job_sid)?.to_string(),
        communicator: call.comm_id_hash,
        comm_handle: call.comm_handle,
        rank: call.global_rank.unwrap_or(call.rank),
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
        comm_rank: call.rank,
        world_size: call.world_size.unwrap_or(-1),
        rank_in_job: u8::from(call.global_rank.is_some()),
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

/// A batch's kernel launches summed per process, job, rank and kernel, in
/// the order of each group's first launch (`kernel_launches`).
pub fn kernel_launches(cuda_calls: &[CudaCallRow]) -> Vec<KernelLaunchesRow> {
    let mut groups: Vec<KernelLaunchesRow> = Vec::new();
    type Key<'a> = (&'a str, u32, u64, &'a str, i32, &'a str);
    let mut index: std::collections::HashMap<Key<'_>, usize> = std::collections::HashMap::new();
    for call in cuda_calls.iter().filter(|c| c.api == "LAUNCH_KERNEL" || c.api == "LAUNCH_KERNEL_EX") {
        let key = (
            call.boot_id.as_str(),
            call.pid,
            call.process_start_key_ns,
            call.job.as_str(),
            call.rank,
            call.kernel.as_str(),
        );
        let group = *index.entry(key).or_insert_with(|| {
            groups.push(KernelLaunchesRow {
                host: call.host.clone(),
                boot_id: call.boot_id.clone(),
                pid: call.pid,
                process_start_key_ns: call.process_start_key_ns,
                comm: call.comm.clone(),
                cgroup_id: call.cgroup_id,
                ts_ns: call.ts_ns,
                wall_ns: call.wall_ns,
                job: call.job.clone(),
                rank: call.rank,
                device: call.device,
                kernel: call.kernel.clone(),
                launches: 0,
                failed: 0,
                total_ns: 0,
                grid_x: 0,
                grid_y: 0,
                grid_z: 0,
                block_x: 0,
                block_y: 0,
                block_z: 0,
                last_ts_ns: 0,
            });
            groups.len() - 1
        });
        let row = &mut groups[group];
        row.launches += 1;
        row.failed += u64::from(call.result != 0);
        row.total_ns += call.duration_ns;
        row.ts_ns = row.ts_ns.min(call.ts_ns);
        row.wall_ns = row.wall_ns.min(call.wall_ns);
        if call.ts_ns >= row.last_ts_ns {
            row.last_ts_ns = call.ts_ns;
            (row.grid_x, row.grid_y, row.grid_z) = (call.grid_x, call.grid_y, call.grid_z);
            (row.block_x, row.block_y, row.block_z) = (call.block_x, call.block_y, call.block_z);
        }
    }
    groups
}

/// Ops joined across ranks, by their stored name ([`op_name`]): every rank
/// of the communicator calls them, in the same order. (Send and Recv pair
/// two ranks and are not joined.) Matched as written, without building a
/// name per row: the join reads every NCCL row.
const COLLECTIVES: [(&str, nccl_call::Op); 5] = [
    ("ALL_REDUCE", nccl_call::Op::AllReduce),
    ("ALL_GATHER", nccl_call::Op::AllGather),
    ("REDUCE_SCATTER", nccl_call::Op::ReduceScatter),
    ("BROADCAST", nccl_call::Op::Broadcast),
    ("REDUCE", nccl_call::Op::Reduce),
];

/// A stored NCCL call as the join takes it.
pub enum JoinInput {
    /// A collective of a communicator whose rank and size the host knew.
    Call(u64, RankCall),
    /// A collective of a communicator made by a split: rank and size to be
    /// numbered from the split.
    OnSplit(u64, RankCall),
    /// A rank's part in a split.
    Split(String, SplitPart),
}

/// The stored call as the join's input: a collective of a known
/// communicator that the library accepted, or a split; `None` otherwise.
pub fn join_input(row: &NcclCallRow) -> Option<JoinInput> {
    if row.communicator == 0 && row.parent_communicator == 0 || row.result != 0 {
        return None;
    }
    // Rows from before migration 7 hold the communicator's rank in `rank`.
    let (comm_rank, global_rank) = match row.rank_in_job {
        1 => (row.comm_rank, row.rank),
        _ => (row.rank, -1),
    };
    if row.op == "COMM_SPLIT" {
        let part = SplitPart {
            parent: row.parent_communicator,
            nth: row.seq,
            parent_rank: comm_rank,
            parent_nranks: row.nranks,
            color: row.color,
            key: row.peer,
            communicator: row.communicator,
            host: row.host.clone(),
            pid: row.pid,
        };
        return Some(JoinInput::Split(row.job.clone(), part));
    }
    let (_, op) = COLLECTIVES.iter().find(|(name, _)| *name == row.op)?;
    if row.communicator == 0 {
        return None;
    }
    let call = RankCall {
        job: row.job.clone(),
        host: row.host.clone(),
        pid: row.pid,
        device: row.device,
        rank: comm_rank.max(0) as u32,
        global_rank,
        world_size: row.world_size,
        nranks: row.nranks.max(0) as u32,
        seq: row.seq,
        op: *op as i32,
        count: row.count,
        datatype: row.datatype,
        entry_ns: row.wall_ns,
        exit_ns: row.wall_ns.saturating_add(row.duration_ns),
    };
    match (comm_rank, row.nranks) {
        (0.., 1..) => Some(JoinInput::Call(row.communicator, call)),
        (..0, _) => Some(JoinInput::OnSplit(row.communicator, call)),
        _ => None,
    }
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
        comm_rank: -1,
        role: judged.role.to_string(),
        cause_communicator: judged.cause.map_or(0, |c| c.communicator),
        cause_seq: judged.cause.map_or(0, |c| c.seq),
        cause_rank: judged.cause.map_or(-1, |c| c.rank),
    };
    if let Some(last) = &judged.last {
        row.rank = job_rank(&last.at);
        row.comm_rank = last.at.rank as i32;
        row.host = last.at.host.clone();
        row.device = last.at.device;
        row.late_ns = last.late_ns;
    }
    row.verdict = match &judged.verdict {
        Verdict::Complete => "complete",
        Verdict::Straggler => "straggler",
        Verdict::Mismatch { field, expected, differing } => {
            let shown = |value: i64| match field {
                Field::Op => op_name(value as i32),
                _ => value.to_string(),
            };
            row.field = field.name().to_string();
            row.expected = shown(*expected);
            let differing: Vec<RankValue> = differing
                .iter()
                .map(|(at, value)| RankValue {
                    rank: at.rank,
                    value: shown(*value),
                    global_rank: at.global_rank,
                    host: at.host.clone(),
                    device: at.device,
                })
                .collect();
            row.differing = to_json_column(&differing);
            "mismatch"
        }
        Verdict::Hang { missing } => {
            let missing: Vec<MissingRank> = missing
                .iter()
                .map(|m| MissingRank {
                    rank: m.at.rank,
                    global_rank: m.at.global_rank,
                    blocked: m.blocked,
                    silent: m.silent,
                    last_completed_seq: m.last_completed,
                    host: m.at.host.clone(),
                    device: m.at.device,
                })
                .collect();
            row.missing = to_json_column(&missing);
            "hang"
        }
        Verdict::Silent { host, last_heard_ns } => {
            row.seq = silent_seq(host);
            row.host = host.clone();
            row.wall_ns = *last_heard_ns;
            "silent"
        }
    }
    .to_string();
    row
}

/// The `seq` of a host's `silent` row (communicator 0): a stable number per
/// host, so each silent host of a job is a row of its own.
pub fn silent_seq(host: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(host.as_bytes()) >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_joined_ops_are_named_as_rows_store_them() {
        for (name, op) in COLLECTIVES {
            assert_eq!(op_name(op as i32), name);
        }
    }

    fn launch(pid: u32, rank: i32, kernel: &str, ts_ns: u64, grid_x: u32, result: i32) -> CudaCallRow {
        CudaCallRow {
            host: "gpu-host-1".into(),
            boot_id: "boot".into(),
            pid,
            process_start_key_ns: 7,
            comm: "python".into(),
            cgroup_id: 1,
            ts_ns,
            wall_ns: 1_000 + ts_ns,
            tid: pid,
            job: "train".into(),
            rank,
            device: 0,
            api: "LAUNCH_KERNEL".into(),
            kernel: kernel.into(),
            grid_x,
            grid_y: 1,
            grid_z: 1,
            block_x: 256,
            block_y: 1,
            block_z: 1,
            stream: 0,
            bytes: 0,
            memcpy_kind: 0,
            result,
            duration_ns: 10,
            handle: 0x1000,
        }
    }

    #[test]
    fn a_batch_s_launches_sum_per_process_rank_and_kernel_keeping_the_last_dimensions() {
        let mut copy = launch(1, 0, "", 5, 0, 0);
        copy.api = "MEMCPY".into();
        let calls = [
            launch(1, 0, "gemm", 30, 8, 0),
            launch(1, 0, "gemm", 10, 4, 0),
            copy,
            launch(1, 0, "softmax", 20, 2, 1),
            launch(2, 1, "gemm", 15, 4, 0),
            launch(1, 0, "gemm", 40, 16, 1),
        ];
        let rows = kernel_launches(&calls);
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.pid, r.rank, r.kernel.as_str(), r.launches, r.failed, r.total_ns, r.ts_ns, r.wall_ns))
            .collect();
        assert_eq!(
            summary,
            [
                (1, 0, "gemm", 3, 1, 30, 10, 1_010),
                (1, 0, "softmax", 1, 1, 10, 20, 1_020),
                (2, 1, "gemm", 1, 0, 10, 15, 1_015),
            ]
        );
        assert_eq!((rows[0].grid_x, rows[0].last_ts_ns), (16, 40), "the dimensions of the last launch");
        assert_eq!(kernel_launches(&calls), rows, "the same batch sums to the same rows");
    }
}
