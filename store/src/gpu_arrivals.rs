//! Each rank's arrival at each collective of one communicator, against the
//! collective's median arrival on a common clock, binned for a screen: the
//! heatmap of a job's lateness. A job of 16,384 ranks × thousands of
//! collectives has tens of millions of arrivals, so the store bins them
//! itself and answers a grid of at most rows × columns cells, each the
//! latest arrival of its ranks and sequences (a straggler is never averaged
//! away) with how many arrivals it holds and should hold (a hang shows as
//! arrivals missing).
//!
//! The common clock: the collective join keeps each collective's median
//! arrival with every host's clock offset taken out (`collective_verdicts.
//! median_wall_ns`), but the calls are stored as their hosts' clocks read
//! them. A host's offset is taken again here the same way in spirit — the
//! median, over the host's ranks, of each rank's mean distance from the
//! collectives' medians in the window — so one late rank does not move its
//! host, and a whole host whose clock is ahead is not painted late.
//!
//! Three reads, all bounded by the window: the job's communicators, the
//! window's collectives (one row each), each rank's mean distance; then the
//! binned grid, grouped by the backend. The per-collective medians and
//! per-host offsets go into the last two as literal lookups (ClickHouse
//! `transform`, a SQLite `VALUES` table), which both backends read without
//! a join ClickHouse 18.16 could not do twice.

use std::collections::{BTreeMap, BTreeSet};

use crate::backend::Backend;
use crate::sql::{Sql, SqlArg, SqlDialect};
use crate::tables::row::table_row;
use crate::tables::CollectiveVerdictRow;
use crate::StoreError;

/// Rows and columns when the request names none.
pub const DEFAULT_ROWS: u32 = 256;
pub const DEFAULT_COLUMNS: u32 = 400;
/// Sequences the window holds when the request names none: the last ones
/// judged. Each is one arrival per rank to read.
pub const DEFAULT_SEQS: u64 = 200;
/// Arrivals are read within the window's wall-clock span widened by this,
/// so a host whose clock is off still has all its calls read (the
/// sequence bounds are what select them; this only narrows the index read).
const WALL_SLACK_NS: u64 = 10_000_000_000;
/// The NCCL calls the join judges as collectives.
const COLLECTIVE_OPS: &str = "'ALL_REDUCE', 'ALL_GATHER', 'REDUCE_SCATTER', 'BROADCAST', 'REDUCE'";

/// What the heatmap asks for. `None` and 0 take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuArrivalsFilter {
    pub job: String,
    /// 0: the job's largest communicator.
    pub communicator: u64,
    pub seq_from: Option<u64>,
    pub seq_to: Option<u64>,
    pub rank_from: u32,
    /// Exclusive; `None`: through the largest rank seen.
    pub rank_to: Option<u32>,
    pub rows: u32,
    pub columns: u32,
}

/// `count` bins over `from..to`, each `per_bin` wide (the last may be
/// narrower): bin `i` holds `from + i * per_bin ..` up to `per_bin` values.
/// Every value of the range falls in exactly one bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bins {
    pub from: u64,
    pub to: u64,
    pub per_bin: u64,
    pub count: u32,
}

impl Bins {
    /// The fewest equal bins, at most `max` of them, covering `from..to`.
    pub fn fit(from: u64, to: u64, max: u32) -> Self {
        let span = to.saturating_sub(from);
        if span == 0 {
            return Self { from, to: from, per_bin: 1, count: 0 };
        }
        let per_bin = span.div_ceil(u64::from(max.max(1)));
        Self { from, to, per_bin, count: span.div_ceil(per_bin) as u32 }
    }

    /// The bin holding `value`, if it is in range.
    pub fn of(&self, value: u64) -> Option<u32> {
        (self.from..self.to).contains(&value).then(|| ((value - self.from) / self.per_bin) as u32)
    }

    /// The values bin `i` holds.
    pub fn range(&self, i: u32) -> std::ops::Range<u64> {
        let start = self.from + u64::from(i) * self.per_bin;
        start..(start + self.per_bin).min(self.to)
    }
}

/// One cell of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArrivalCell {
    /// The latest arrival, ns after its sequence's median (negative: before).
    pub late_ns: i64,
    /// Who arrived then; -1 when nothing arrived.
    pub rank: i32,
    pub arrived: u32,
    /// Ranks of the communicator in the cell × sequences judged in it.
    pub expected: u32,
}

table_row! {
    /// A communicator of a job, from its judged collectives.
    pub struct GpuCommunicatorRow {
        pub communicator: u64,
        pub nranks: u32,
        pub role: String,
        pub collectives: u64,
        pub first_seq: u64,
        pub last_seq: u64,
    }
}

table_row! {
    /// A collective of the window.
    pub struct WindowCollectiveRow {
        pub seq: u64,
        pub wall_ns: u64,
        pub median_wall_ns: u64,
        pub last_wall_ns: u64,
        pub verdict: String,
        pub missing: String,
    }
}

table_row! {
    /// A rank's mean distance from the window's medians, on its host's clock.
    pub struct RankDistanceRow {
        pub rank: i32,
        pub host: String,
        pub mean_ns: i64,
    }
}

table_row! {
    /// One cell as the backend grouped it.
    pub struct BinRow {
        pub bin_row: u32,
        pub bin_col: u32,
        pub late_ns: i64,
        pub rank: i32,
        pub arrived: u64,
    }
}

table_row! {
    pub struct MaxRankRow {
        pub max_rank: i32,
    }
}

/// The binned grid and what it was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuArrivals {
    pub job: String,
    pub communicator: u64,
    pub nranks: u32,
    pub ranks: Bins,
    pub seqs: Bins,
    /// `ranks.count × seqs.count`, row after row.
    pub cells: Vec<ArrivalCell>,
    pub collectives: u64,
    pub first_wall_ns: u64,
    pub last_wall_ns: u64,
    /// Each host's offset taken out, ns (positive: its clock is ahead).
    pub offsets: Vec<(String, i64)>,
    /// The job's communicators, largest first.
    pub communicators: Vec<GpuCommunicatorRow>,
}

impl GpuArrivals {
    pub fn cell(&self, row: u32, column: u32) -> &ArrivalCell {
        &self.cells[(row * self.seqs.count + column) as usize]
    }
}

fn communicators_sql(d: SqlDialect, job: &str) -> Sql {
    let mut sql = Sql { args: vec![SqlArg::Str(job.into())], ..Default::default() };
    sql.text = format!(
        "SELECT communicator, c_nranks AS nranks, c_role AS role, c_all AS collectives, c_first AS first_seq,
            c_last AS last_seq
        FROM (
            SELECT communicator, {nranks} AS c_nranks, max(role) AS c_role, {all} AS c_all,
                {first} AS c_first, {last} AS c_last
            FROM collective_verdicts{final_} WHERE job = ? AND verdict != 'silent'
            GROUP BY communicator
        )
        ORDER BY nranks DESC, collectives DESC, communicator",
        nranks = d.to_u32("max(nranks)"),
        all = d.to_u64("count(*)"),
        first = d.to_u64("min(seq)"),
        last = d.to_u64("max(seq)"),
        final_ = d.final_(),
    );
    sql
}

fn window_sql(d: SqlDialect, job: &str, communicator: u64, seqs: &Bins) -> Sql {
    let text = format!(
        "SELECT seq, wall_ns, median_wall_ns, last_wall_ns, verdict, missing FROM collective_verdicts{}
        WHERE job = ? AND communicator = ? AND seq >= ? AND seq < ? AND verdict != 'silent' ORDER BY seq",
        d.final_()
    );
    let args = vec![SqlArg::Str(job.into()), SqlArg::U64(communicator), SqlArg::U64(seqs.from), SqlArg::U64(seqs.to)];
    Sql { text, args }
}

fn max_rank_sql(d: SqlDialect, job: &str) -> Sql {
    // Only the job: SQLite then reads the largest rank off its index.
    let text = format!("SELECT {} AS max_rank FROM nccl_calls WHERE job = ?", d.int32("max(rank)"));
    Sql { text, args: vec![SqlArg::Str(job.into())] }
}

/// The window's arrivals in `nccl_calls`: the job's communicator,
/// its collectives, ranks and wall-clock span.
struct Window<'a> {
    job: &'a str,
    communicator: u64,
    ranks: Bins,
    seqs: Bins,
    wall: (u64, u64),
    /// (seq, median wall ns) of each judged collective.
    medians: &'a [(u64, u64)],
}

impl Window<'_> {
    fn where_(&self, d: SqlDialect, sql: &mut Sql) -> String {
        sql.args.extend([SqlArg::Str(self.job.into()), SqlArg::U64(self.communicator)]);
        // SQLite seeks its (job, rank, wall_ns) index once per rank; a range
        // of ranks would read each rank's every call. ClickHouse's key is
        // (job, rank, ts_ns): a range prunes as well as a list.
        let ranks = match d {
            SqlDialect::Sqlite => {
                let list: Vec<String> = (self.ranks.from..self.ranks.to).map(|r| r.to_string()).collect();
                format!("rank IN ({})", list.join(","))
            }
            SqlDialect::ClickHouse => format!("rank >= {} AND rank < {}", self.ranks.from, self.ranks.to),
        };
        sql.args.extend([
            SqlArg::U64(self.wall.0),
            SqlArg::U64(self.wall.1),
            SqlArg::U64(self.seqs.from),
            SqlArg::U64(self.seqs.to),
        ]);
        format!(
            "job = ? AND communicator = ? AND {ranks} AND wall_ns >= ? AND wall_ns <= ? \
             AND seq >= ? AND seq < ? AND op IN ({COLLECTIVE_OPS})"
        )
    }

    /// `FROM` and the expression of an arrival's distance from its
    /// collective's median, ns, with `offsets` (host, ns) taken out.
    fn source_and_lateness(&self, d: SqlDialect, offsets: Option<&[(String, i64)]>, sql: &mut Sql) -> (String, String) {
        match d {
            SqlDialect::ClickHouse => {
                let seqs: Vec<String> = self.medians.iter().map(|(s, _)| format!("toUInt64({s})")).collect();
                let medians: Vec<String> = self.medians.iter().map(|(_, m)| format!("toInt64({m})")).collect();
                let mut late = format!(
                    "toInt64(wall_ns) - transform(seq, [{}], [{}], toInt64(0))",
                    seqs.join(","),
                    medians.join(",")
                );
                if let Some(offsets) = offsets.filter(|o| !o.is_empty()) {
                    let hosts: Vec<&str> = offsets.iter().map(|_| "?").collect();
                    let values: Vec<String> = offsets.iter().map(|(_, o)| format!("toInt64({o})")).collect();
                    sql.args.extend(offsets.iter().map(|(h, _)| SqlArg::Str(h.clone())));
                    late =
                        format!("{late} - transform(host, [{}], [{}], toInt64(0))", hosts.join(","), values.join(","));
                }
                // No FINAL: merging tens of millions of rows on read would cost
                // more than the grid; a call delivered twice changes no
                // maximum, and arrivals are counted distinct.
                ("nccl_calls".to_string(), late)
            }
            SqlDialect::Sqlite => {
                let medians: Vec<String> = self.medians.iter().map(|(s, m)| format!("({s}, {m})")).collect();
                let mut from = format!(
                    "nccl_calls JOIN (SELECT column1 AS m_seq, column2 AS m_wall FROM (VALUES {})) AS m \
                     ON m.m_seq = seq",
                    medians.join(",")
                );
                let mut late = "wall_ns - m.m_wall".to_string();
                if let Some(offsets) = offsets.filter(|o| !o.is_empty()) {
                    let values: Vec<String> = offsets.iter().map(|(_, o)| format!("(?, {o})")).collect();
                    sql.args.extend(offsets.iter().map(|(h, _)| SqlArg::Str(h.clone())));
                    from = format!(
                        "{from} JOIN (SELECT column1 AS o_host, column2 AS o_ns FROM (VALUES {})) AS o \
                         ON o.o_host = host",
                        values.join(",")
                    );
                    late = format!("{late} - o.o_ns");
                }
                (from, late)
            }
        }
    }

    /// Each rank's mean distance from the medians, on its own host's clock.
    fn distances_sql(&self, d: SqlDialect) -> Sql {
        let mut sql = Sql::default();
        let (from, late) = self.source_and_lateness(d, None, &mut sql);
        let where_ = self.where_(d, &mut sql);
        sql.text = format!(
            "SELECT r_rank AS rank, r_host AS host, r_mean AS mean_ns FROM (
                SELECT rank AS r_rank, host AS r_host, {mean} AS r_mean
                FROM {from} WHERE {where_} GROUP BY rank, host
            )",
            mean = d.to_i64(&format!("avg({late})")),
        );
        sql
    }

    /// The grid: per (row, column) the latest arrival, who, and how many.
    fn bins_sql(&self, d: SqlDialect, offsets: &[(String, i64)]) -> Sql {
        let mut sql = Sql::default();
        let (from, late) = self.source_and_lateness(d, Some(offsets), &mut sql);
        let where_ = self.where_(d, &mut sql);
        let (r, s) = (&self.ranks, &self.seqs);
        sql.text = match d {
            SqlDialect::ClickHouse => format!(
                "SELECT b_row AS bin_row, b_col AS bin_col, max(b_late) AS late_ns,
                    toInt32(argMax(b_rank, b_late)) AS rank, uniqExact(b_rank, b_seq) AS arrived
                FROM (
                    SELECT toUInt32(intDiv(rank - {r_from}, {r_per})) AS b_row,
                        toUInt32(intDiv(seq - {s_from}, {s_per})) AS b_col, {late} AS b_late, rank AS b_rank,
                        seq AS b_seq
                    FROM {from} WHERE {where_}
                )
                GROUP BY b_row, b_col ORDER BY bin_row, bin_col",
                r_from = r.from,
                r_per = r.per_bin,
                s_from = s.from,
                s_per = s.per_bin,
            ),
            // SQLite takes the bare `rank` from the row holding the max.
            SqlDialect::Sqlite => format!(
                "SELECT (rank - {r_from}) / {r_per} AS bin_row, (seq - {s_from}) / {s_per} AS bin_col,
                    max({late}) AS late_ns, rank AS rank, count(*) AS arrived
                FROM {from} WHERE {where_}
                GROUP BY bin_row, bin_col ORDER BY bin_row, bin_col",
                r_from = r.from,
                r_per = r.per_bin,
                s_from = s.from,
                s_per = s.per_bin,
            ),
        };
        sql
    }
}

impl SqlDialect {
    fn to_u32(self, expr: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("toUInt32({expr})"),
            SqlDialect::Sqlite => expr.to_string(),
        }
    }

    fn int32(self, expr: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("toInt32({expr})"),
            SqlDialect::Sqlite => expr.to_string(),
        }
    }

    fn to_i64(self, expr: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("toInt64({expr})"),
            SqlDialect::Sqlite => format!("CAST({expr} AS INTEGER)"),
        }
    }
}

/// Median of `values` (the lower middle); 0 when empty.
fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// Each host's offset: the median of its ranks' mean distances.
fn host_offsets(distances: &[RankDistanceRow]) -> Vec<(String, i64)> {
    let mut by_host: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for d in distances {
        by_host.entry(&d.host).or_default().push(d.mean_ns);
    }
    by_host.into_iter().map(|(host, means)| (host.to_string(), median(means))).collect()
}

/// The heatmap of `filter.job`, read from `backend`. An unknown job or
/// communicator is an empty grid, not an error.
pub async fn gpu_arrivals<B: Backend + ?Sized>(
    backend: &B,
    filter: &GpuArrivalsFilter,
) -> Result<GpuArrivals, StoreError> {
    let d = backend.dialect();
    let communicators: Vec<GpuCommunicatorRow> = backend.fetch(communicators_sql(d, &filter.job)).await?;
    let mut answer = GpuArrivals { job: filter.job.clone(), ..Default::default() };
    let chosen = match filter.communicator {
        0 => communicators.first().cloned(),
        c => communicators.iter().find(|row| row.communicator == c).cloned(),
    };
    answer.communicators = communicators;
    let Some(comm) = chosen else {
        answer.communicator = filter.communicator;
        return Ok(answer);
    };
    answer.communicator = comm.communicator;
    answer.nranks = comm.nranks;

    let columns = if filter.columns == 0 { DEFAULT_COLUMNS } else { filter.columns };
    let rows = if filter.rows == 0 { DEFAULT_ROWS } else { filter.rows };
    let seq_to = filter.seq_to.unwrap_or(comm.last_seq).min(comm.last_seq);
    let seq_from = filter.seq_from.unwrap_or_else(|| seq_to.saturating_sub(DEFAULT_SEQS.min(columns.into()) - 1));
    let seq_from = seq_from.max(comm.first_seq).min(seq_to);
    answer.seqs = Bins::fit(seq_from, seq_to + 1, columns);
    let rank_to = match filter.rank_to {
        Some(to) => to,
        None => {
            let max: Vec<MaxRankRow> = backend.fetch(max_rank_sql(d, &filter.job)).await?;
            max.first().map_or(0, |m| (m.max_rank + 1).max(0) as u32).max(comm.nranks)
        }
    };
    answer.ranks = Bins::fit(u64::from(filter.rank_from), u64::from(rank_to.max(filter.rank_from)), rows);

    let collectives: Vec<WindowCollectiveRow> =
        backend.fetch(window_sql(d, &filter.job, comm.communicator, &answer.seqs)).await?;
    let medians: Vec<(u64, u64)> =
        collectives.iter().filter(|c| c.median_wall_ns > 0).map(|c| (c.seq, c.median_wall_ns)).collect();
    answer.collectives = collectives.len() as u64;
    if medians.is_empty() || answer.ranks.count == 0 {
        answer.cells = vec![
            ArrivalCell { rank: -1, ..Default::default() };
            answer.ranks.count as usize * answer.seqs.count as usize
        ];
        return Ok(answer);
    }
    answer.first_wall_ns = medians.iter().map(|m| m.1).min().unwrap_or(0);
    answer.last_wall_ns = medians.iter().map(|m| m.1).max().unwrap_or(0);
    let wall_end = collectives.iter().map(|c| c.last_wall_ns.max(c.median_wall_ns)).max().unwrap_or(0);
    let window = Window {
        job: &filter.job,
        communicator: comm.communicator,
        ranks: answer.ranks,
        seqs: answer.seqs,
        wall: (answer.first_wall_ns.saturating_sub(WALL_SLACK_NS), wall_end.saturating_add(WALL_SLACK_NS)),
        medians: &medians,
    };
    let distances: Vec<RankDistanceRow> = backend.fetch(window.distances_sql(d)).await?;
    answer.offsets = host_offsets(&distances);
    let bins: Vec<BinRow> = backend.fetch(window.bins_sql(d, &answer.offsets)).await?;

    // Members: every rank seen in the window, and those a hang names missing.
    let mut members: BTreeSet<u64> = distances.iter().filter(|r| r.rank >= 0).map(|r| r.rank as u64).collect();
    for c in collectives.iter().filter(|c| c.verdict == "hang") {
        let row = CollectiveVerdictRow { missing: c.missing.clone(), ..Default::default() };
        members.extend(row.missing_list()?.iter().filter(|m| m.global_rank >= 0).map(|m| m.global_rank as u64));
    }
    let mut members_per_row = vec![0u32; answer.ranks.count as usize];
    for rank in members {
        if let Some(row) = answer.ranks.of(rank) {
            members_per_row[row as usize] += 1;
        }
    }
    let mut seqs_per_column = vec![0u32; answer.seqs.count as usize];
    for (seq, _) in &medians {
        if let Some(column) = answer.seqs.of(*seq) {
            seqs_per_column[column as usize] += 1;
        }
    }
    let mut cells = Vec::with_capacity(members_per_row.len() * seqs_per_column.len());
    for members in &members_per_row {
        for seqs in &seqs_per_column {
            cells.push(ArrivalCell { late_ns: 0, rank: -1, arrived: 0, expected: members * seqs });
        }
    }
    for bin in bins {
        if bin.bin_row >= answer.ranks.count || bin.bin_col >= answer.seqs.count {
            continue;
        }
        let cell = &mut cells[(bin.bin_row * answer.seqs.count + bin.bin_col) as usize];
        cell.late_ns = bin.late_ns;
        cell.rank = bin.rank;
        cell.arrived = bin.arrived as u32;
    }
    answer.cells = cells;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_edges_cover_every_rank_exactly_once() {
        for (from, to, max) in [(0, 16_384, 256), (0, 512, 256), (3, 100, 7), (0, 1, 256), (10, 4096, 400), (0, 5, 9)] {
            let bins = Bins::fit(from, to, max);
            assert!(bins.count <= max && bins.count > 0, "{bins:?}");
            let mut next = from;
            for i in 0..bins.count {
                let range = bins.range(i);
                assert_eq!(range.start, next, "bins are contiguous: {bins:?}");
                assert!(!range.is_empty(), "no empty bin: {bins:?}");
                for value in range.clone() {
                    assert_eq!(bins.of(value), Some(i));
                }
                next = range.end;
            }
            assert_eq!(next, to, "the last bin ends at the range's end: {bins:?}");
            assert_eq!((bins.of(to), from.checked_sub(1).and_then(|f| bins.of(f))), (None, None));
        }
        assert_eq!(Bins::fit(0, 16_384, 256).per_bin, 64);
        assert_eq!(Bins::fit(0, 512, 256).per_bin, 2);
        assert_eq!(Bins::fit(0, 200, 400).per_bin, 1, "a window that fits is not binned");
    }

    #[test]
    fn a_host_s_offset_is_the_median_of_its_ranks_so_one_late_rank_does_not_move_it() {
        let row = |rank: i32, host: &str, mean_ns: i64| RankDistanceRow { rank, host: host.into(), mean_ns };
        let mut rows: Vec<RankDistanceRow> = (0..8).map(|r| row(r, "a", 50_000_000 + i64::from(r))).collect();
        rows[3].mean_ns = 90_000_000;
        rows.extend((8..16).map(|r| row(r, "b", -i64::from(r))));
        let offsets = host_offsets(&rows);
        assert_eq!(offsets, vec![("a".to_string(), 50_000_004), ("b".to_string(), -12)]);
    }

    #[test]
    fn every_placeholder_has_its_argument_in_both_dialects() {
        let medians = [(5, 1_000), (6, 2_000)];
        let window = Window {
            job: "j",
            communicator: 7,
            ranks: Bins::fit(0, 16, 4),
            seqs: Bins::fit(5, 7, 400),
            wall: (0, 10),
            medians: &medians,
        };
        let offsets = vec![("h1".to_string(), -3), ("h2".to_string(), 4)];
        for d in [SqlDialect::ClickHouse, SqlDialect::Sqlite] {
            for sql in [
                window.distances_sql(d),
                window.bins_sql(d, &offsets),
                communicators_sql(d, "j"),
                window_sql(d, "j", 7, &window.seqs),
                max_rank_sql(d, "j"),
            ] {
                assert_eq!(sql.text.matches('?').count(), sql.args.len(), "{}", sql.text);
            }
        }
    }
}
