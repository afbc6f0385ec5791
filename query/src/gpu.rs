//! Answers of the GPU views: the request's filter, and store rows turned
//! into `plumbline.v1` messages (hangs grouped per communicator, causes
//! first, with the silent hosts; straggler counts set against the job's
//! collectives, each with the victims it made late).

use std::collections::{BTreeMap, HashMap};

use plumbline_proto::v1::{
    GpuArrivalCell, GpuArrivalsRequest, GpuArrivalsResponse, GpuCallView, GpuCommunicatorView, GpuHangResponse,
    GpuHangView, GpuHostOffset, GpuJobView, GpuKernelView, GpuMismatchView, GpuMissingRank, GpuRequest, GpuSilentHost,
    GpuStragglerView,
};
use plumbline_store::{
    CollectiveVerdictRow, GpuArrivals, GpuArrivalsFilter, GpuCallRow, GpuFilter, GpuJobRow, GpuKernelRow,
    GpuStragglerRow, StoreRead,
};

use crate::error::QueryError;
use crate::request;

use crate::request::MAX_LIMIT;
/// Hung collectives read per request: enough for every communicator's
/// first hang even when the ranks that arrived went on for a while.
const HANG_ROWS: u32 = 100_000;

pub fn gpu_filter(request: &GpuRequest) -> Result<GpuFilter, QueryError> {
    let rank = match request.rank {
        Some(rank) if rank < 0 => return Err(QueryError::InvalidArgument(format!("rank {rank} is negative"))),
        rank => rank.map(|r| r as u32),
    };
    Ok(GpuFilter {
        job: (!request.job.is_empty()).then(|| request.job.clone()),
        host: (!request.host.is_empty()).then(|| request.host.clone()),
        rank,
        pid: (request.pid != 0).then_some(request.pid),
        range: request::time_range(request.range)?,
        limit: request::limit(request.limit),
    })
}

pub fn job(row: GpuJobRow) -> GpuJobView {
    GpuJobView {
        job: row.job,
        ranks: row.ranks as u32,
        hosts: row.hosts as u32,
        communicators: row.communicators as u32,
        collectives: row.collectives,
        stragglers: row.stragglers,
        hangs: row.hangs,
        mismatches: row.mismatches,
        first_wall_ns: row.first_wall_ns,
        last_wall_ns: row.last_wall_ns,
    }
}

/// Stragglers on their own account, each with the number of collectives
/// judged for its job and of its victims (ranks late because they waited
/// for it).
pub async fn stragglers(store: &dyn StoreRead, filter: &GpuFilter) -> Result<Vec<GpuStragglerView>, QueryError> {
    let rows: Vec<GpuStragglerRow> = store.gpu_stragglers(filter).await?;
    let jobs = GpuFilter { limit: MAX_LIMIT, ..filter.clone() };
    let totals: HashMap<String, u64> =
        store.list_gpu_jobs(&jobs).await?.into_iter().map(|j| (j.job, j.collectives)).collect();
    let all = GpuFilter { limit: HANG_ROWS, ..filter.clone() };
    let mut victims: HashMap<(String, i32), u64> = HashMap::new();
    for row in store.list_collective_verdicts(&all, "straggler").await?.into_iter().filter(|r| r.cause_rank >= 0) {
        *victims.entry((row.job, row.cause_rank)).or_default() += 1;
    }
    Ok(rows
        .into_iter()
        .map(|r| GpuStragglerView {
            victims: victims.get(&(r.job.clone(), r.rank)).copied().unwrap_or(0),
            comm_rank: r.comm_rank,
            role: r.role,
            collectives: totals.get(&r.job).copied().unwrap_or(r.collectives),
            job: r.job,
            rank: r.rank,
            host: r.host,
            device: r.device,
            times_last: r.times_last,
            mean_late_ns: r.mean_late_ns,
            max_late_ns: r.max_late_ns,
            last_seq: r.last_seq,
            last_wall_ns: r.last_wall_ns,
        })
        .collect())
}

/// Per communicator, its first hung collective with the missing ranks:
/// root causes first (earliest first), then their consequences; and the
/// hosts that went silent.
pub async fn hangs(store: &dyn StoreRead, filter: &GpuFilter) -> Result<GpuHangResponse, QueryError> {
    let all = GpuFilter { limit: HANG_ROWS, ..filter.clone() };
    let rows = store.list_collective_verdicts(&all, "hang").await?;
    // Rows come in (job, communicator, seq) order: the first of each is the hang.
    let mut first: BTreeMap<(String, u64), (CollectiveVerdictRow, u64)> = BTreeMap::new();
    for row in rows {
        match first.get_mut(&(row.job.clone(), row.communicator)) {
            Some((_, later)) => *later += 1,
            None => {
                first.insert((row.job.clone(), row.communicator), (row, 0));
            }
        }
    }
    let mut hangs = Vec::new();
    for (row, later_hung) in first.into_values() {
        let missing = row
            .missing_list()?
            .into_iter()
            .map(|m| GpuMissingRank {
                rank: m.rank as i32,
                last_completed_seq: m.last_completed_seq.map_or(-1, |s| s as i64),
                host: m.host,
                device: m.device,
                global_rank: m.global_rank,
                blocked: m.blocked,
                silent: m.silent,
            })
            .collect();
        hangs.push(GpuHangView {
            job: row.job,
            communicator: row.communicator,
            seq: row.seq,
            op: row.op,
            nranks: row.nranks,
            arrived: row.arrived,
            missing,
            first_wall_ns: row.wall_ns,
            later_hung,
            role: row.role,
            cause_communicator: row.cause_communicator,
            cause_seq: row.cause_seq,
            cause_rank: row.cause_rank,
        });
    }
    let consequence = |h: &GpuHangView| h.cause_communicator != 0 || h.cause_rank >= 0;
    hangs.sort_by_key(|h| (consequence(h), h.first_wall_ns, h.communicator));
    hangs.truncate(filter.limit as usize);
    let silent = store
        .list_collective_verdicts(filter, "silent")
        .await?
        .into_iter()
        .map(|r| GpuSilentHost { job: r.job, host: r.host, last_heard_wall_ns: r.wall_ns })
        .collect();
    Ok(GpuHangResponse { hangs, silent })
}

pub fn mismatch(row: CollectiveVerdictRow) -> Result<GpuMismatchView, QueryError> {
    let differing = row.differing_list()?;
    let global_ranks = differing.iter().map(|d| d.global_rank).collect();
    let hosts = differing.iter().map(|d| d.host.clone()).collect();
    let devices = differing.iter().map(|d| d.device).collect();
    let (ranks, values) = differing.into_iter().map(|d| (d.rank as i32, d.value)).unzip();
    Ok(GpuMismatchView {
        global_ranks,
        hosts,
        devices,
        role: row.role,
        job: row.job,
        communicator: row.communicator,
        seq: row.seq,
        field: row.field,
        expected: row.expected,
        ranks,
        values,
        nranks: row.nranks,
        first_wall_ns: row.wall_ns,
    })
}

pub fn kernel(row: GpuKernelRow) -> GpuKernelView {
    GpuKernelView {
        job: row.job,
        rank: row.rank,
        host: row.host,
        kernel: row.kernel,
        launches: row.launches,
        total_ns: row.total_ns,
        failed: row.failed,
        grid: row.grid,
        block: row.block,
    }
}

pub fn call(row: GpuCallRow) -> GpuCallView {
    GpuCallView {
        wall_ns: row.wall_ns,
        duration_ns: row.duration_ns,
        host: row.host,
        pid: row.pid,
        rank: row.rank,
        device: row.device,
        library: row.library,
        call: row.call,
        kernel: row.kernel,
        communicator: row.communicator,
        seq: row.seq,
        count: row.count,
        datatype: row.datatype,
        bytes: row.bytes,
        result: row.result,
        stream: row.stream,
        nranks: row.nranks,
        peer: row.peer,
        grid: row.grid,
        block: row.block,
        memcpy_kind: row.memcpy_kind,
        job: row.job,
    }
}

/// Rows and columns a heatmap may ask for at most: a screen's worth.
const MAX_ARRIVAL_ROWS: u32 = 2048;
const MAX_ARRIVAL_COLUMNS: u32 = 2048;

pub fn arrivals_filter(request: &GpuArrivalsRequest) -> Result<GpuArrivalsFilter, QueryError> {
    if request.job.is_empty() {
        return Err(QueryError::InvalidArgument("GPU arrivals need a job".into()));
    }
    if let (Some(from), Some(to)) = (request.seq_from, request.seq_to) {
        if from > to {
            return Err(QueryError::InvalidArgument(format!("seq_from {from} is after seq_to {to}")));
        }
    }
    if request.rank_to != 0 && request.rank_to <= request.rank_from {
        let (from, to) = (request.rank_from, request.rank_to);
        return Err(QueryError::InvalidArgument(format!("rank_to {to} is not after rank_from {from}")));
    }
    Ok(GpuArrivalsFilter {
        job: request.job.clone(),
        communicator: request.communicator,
        seq_from: request.seq_from,
        seq_to: request.seq_to,
        rank_from: request.rank_from,
        rank_to: (request.rank_to != 0).then_some(request.rank_to),
        rows: request.rank_bins.min(MAX_ARRIVAL_ROWS),
        columns: request.seq_bins.min(MAX_ARRIVAL_COLUMNS),
    })
}

pub fn arrivals(grid: GpuArrivals) -> GpuArrivalsResponse {
    GpuArrivalsResponse {
        job: grid.job,
        communicator: grid.communicator,
        nranks: grid.nranks,
        rank_from: grid.ranks.from as u32,
        rank_to: grid.ranks.to as u32,
        seq_from: grid.seqs.from,
        seq_to: grid.seqs.to.saturating_sub(1),
        ranks_per_row: grid.ranks.per_bin as u32,
        seqs_per_column: grid.seqs.per_bin,
        rows: grid.ranks.count,
        columns: grid.seqs.count,
        cells: grid
            .cells
            .into_iter()
            .map(|c| GpuArrivalCell { late_ns: c.late_ns, rank: c.rank, arrived: c.arrived, expected: c.expected })
            .collect(),
        collectives: grid.collectives,
        first_wall_ns: grid.first_wall_ns,
        last_wall_ns: grid.last_wall_ns,
        offsets: grid.offsets.into_iter().map(|(host, offset_ns)| GpuHostOffset { host, offset_ns }).collect(),
        communicators: grid
            .communicators
            .into_iter()
            .map(|c| GpuCommunicatorView {
                communicator: c.communicator,
                nranks: c.nranks,
                role: c.role,
                collectives: c.collectives,
                first_seq: c.first_seq,
                last_seq: c.last_seq,
            })
            .collect(),
    }
}
