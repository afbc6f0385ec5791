//! The heatmap's read (`gpu_arrivals`) on both stores: a job's arrivals as
//! the collective join stores them (each host's calls on its own clock,
//! each collective's median on the common one), binned to a grid that
//! names the straggler's cells, does not paint a host whose clock is ahead
//! late, and shows the hang's missing arrival — the same on ClickHouse and
//! SQLite, at 512 and 16,384 ranks. Needs PLUMBLINE_TEST_CLICKHOUSE
//! (scripts/test.sh starts one).

use std::sync::Arc;

use plumbline_store::{
    clickhouse::ClickHouseStore, sqlite::SqliteStore, tables::MissingRank, ClickHouseConfig, CollectiveVerdictRow,
    GpuArrivals, GpuArrivalsFilter, NcclCallRow, RowSet, Store, StoreRead,
};

const MS: u64 = 1_000_000;
const BASE: u64 = 1_795_442_400_000 * MS;
const STEP: u64 = 100 * MS;
const COMM: u64 = 0xc0ffee;
const LATE: u64 = 25 * MS;

struct Job {
    name: String,
    ranks: u32,
    seqs: u64,
    straggler: u32,
    /// The last sequence the hung rank never reached.
    hung: u32,
}

impl Job {
    fn new(ranks: u32, seqs: u64) -> Self {
        let name = format!("arrivals-{ranks}-{}", uuid::Uuid::new_v4().simple());
        Job { name, ranks, seqs, straggler: ranks / 3, hung: ranks - 1 }
    }

    fn host(rank: u32) -> u32 {
        rank / 8
    }

    /// Host h's clock reads this far ahead: ±40 ms over the hosts.
    fn skew(&self, host: u32) -> i64 {
        let hosts = i64::from(self.ranks / 8);
        (i64::from(host) * 80 / (hosts - 1).max(1) - 40) * MS as i64
    }

    fn late_at(&self, seq: u64) -> bool {
        seq % 4 == 1
    }

    /// A rank's true arrival: jitter under 2 ms, unique per rank.
    fn arrival(&self, rank: u32, seq: u64) -> Option<u64> {
        if rank == self.hung && seq == self.seqs - 1 {
            return None;
        }
        let jitter = ((u64::from(rank) * 37 + seq * 11) % 97) * 20_000 + u64::from(rank);
        let late = if rank == self.straggler && self.late_at(seq) { LATE } else { 0 };
        Some(BASE + seq * STEP + jitter + late)
    }

    fn rows(&self) -> RowSet {
        let mut rows = RowSet::default();
        for seq in 0..self.seqs {
            let mut arrivals = Vec::new();
            for rank in 0..self.ranks {
                let Some(at) = self.arrival(rank, seq) else { continue };
                arrivals.push(at);
                let host = Self::host(rank);
                let wall_ns = at.saturating_add_signed(self.skew(host));
                rows.nccl_calls.push(NcclCallRow {
                    host: format!("gpu-{host:04}"),
                    boot_id: "boot".into(),
                    pid: 1000 + rank,
                    process_start_key_ns: MS,
                    comm: "python3".into(),
                    cgroup_id: 1,
                    ts_ns: wall_ns + 100 * MS - BASE,
                    wall_ns,
                    tid: 1000 + rank,
                    job: self.name.clone(),
                    communicator: COMM,
                    comm_handle: 0x7f00,
                    rank: rank as i32,
                    nranks: self.ranks as i32,
                    seq,
                    op: "ALL_REDUCE".into(),
                    count: 1024,
                    datatype: 7,
                    reduce_op: 0,
                    peer: -1,
                    stream: 16,
                    result: 0,
                    duration_ns: 20_000,
                    device: (rank % 8) as i32,
                    parent_communicator: 0,
                    color: 0,
                    comm_rank: rank as i32,
                    world_size: self.ranks as i32,
                    rank_in_job: 1,
                });
            }
            arrivals.sort_unstable();
            let hang = seq == self.seqs - 1;
            let missing = hang.then(|| MissingRank {
                rank: self.hung,
                global_rank: self.hung as i32,
                last_completed_seq: Some(seq - 1),
                host: format!("gpu-{:04}", Self::host(self.hung)),
                device: (self.hung % 8) as i32,
                ..Default::default()
            });
            rows.collective_verdicts.push(CollectiveVerdictRow {
                job: self.name.clone(),
                communicator: COMM,
                seq,
                op: "ALL_REDUCE".into(),
                count: 1024,
                datatype: 7,
                nranks: self.ranks,
                arrived: arrivals.len() as u32,
                hosts: self.ranks / 8,
                verdict: if hang { "hang" } else { "complete" }.into(),
                wall_ns: arrivals[0],
                median_wall_ns: arrivals[arrivals.len() / 2],
                last_wall_ns: *arrivals.last().unwrap(),
                rank: -1,
                missing: serde_json::to_string(&missing.into_iter().collect::<Vec<_>>()).unwrap(),
                differing: "[]".into(),
                comm_rank: -1,
                role: "world".into(),
                cause_rank: -1,
                ..Default::default()
            });
        }
        rows
    }
}

async fn both_stores(rows: RowSet) -> (ClickHouseStore, SqliteStore) {
    let url = std::env::var("PLUMBLINE_TEST_CLICKHOUSE")
        .expect("PLUMBLINE_TEST_CLICKHOUSE is not set: run the tests with scripts/test.sh, which starts ClickHouse");
    let database = format!("plumbline_arrivals_{}", uuid::Uuid::new_v4().simple());
    let clickhouse = ClickHouseStore::open(&ClickHouseConfig { url, database, ..Default::default() }).await.unwrap();
    let sqlite = SqliteStore::in_memory().await.unwrap();
    let rows = Arc::new(rows);
    for store in [&clickhouse as &dyn Store, &sqlite] {
        store.write(rows.clone()).await.unwrap();
    }
    (clickhouse, sqlite)
}

/// What every grid of `job` must show, whatever its binning.
fn check(job: &Job, grid: &GpuArrivals) {
    assert_eq!((grid.communicator, grid.nranks), (COMM, job.ranks));
    assert_eq!((grid.ranks.from, grid.ranks.to), (0, u64::from(job.ranks)), "{:?}", grid.ranks);
    assert_eq!(grid.cells.len(), (grid.ranks.count * grid.seqs.count) as usize);
    for (host, offset) in &grid.offsets {
        let h: u32 = host.trim_start_matches("gpu-").parse().unwrap();
        assert!((offset - job.skew(h)).abs() < 3 * MS as i64, "{host} {offset} vs {}", job.skew(h));
    }
    let straggler_row = grid.ranks.of(job.straggler.into()).unwrap();
    let hung_row = grid.ranks.of(job.hung.into()).unwrap();
    let last_column = grid.seqs.of(job.seqs - 1).unwrap();
    for row in 0..grid.ranks.count {
        for column in 0..grid.seqs.count {
            let cell = grid.cell(row, column);
            let late = grid.seqs.range(column).any(|seq| job.late_at(seq));
            if row == straggler_row && late {
                assert_eq!(cell.rank, job.straggler as i32, "the bin's latest is the straggler: {cell:?}");
                let ms = cell.late_ns as f64 / MS as f64;
                assert!((20.0..30.0).contains(&ms), "25 ms late, the max of its bin: {cell:?}");
            } else {
                assert!(cell.late_ns < 5 * MS as i64, "row {row} column {column} is on time: {cell:?}");
            }
            if row == hung_row && column == last_column {
                assert_eq!(cell.arrived + 1, cell.expected, "the hung rank's arrival is missing: {cell:?}");
            } else {
                assert_eq!(cell.arrived, cell.expected, "row {row} column {column}: {cell:?}");
                assert!(cell.arrived > 0);
            }
        }
    }
}

async fn answers(job: &Job, filter: &GpuArrivalsFilter) -> GpuArrivals {
    let (clickhouse, sqlite) = both_stores(job.rows()).await;
    let a = clickhouse.gpu_arrivals(filter).await.unwrap();
    let b = sqlite.gpu_arrivals(filter).await.unwrap();
    assert_eq!(a, b, "ClickHouse and SQLite answer the same");
    check(job, &a);
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn a_512_rank_job_s_straggler_and_hang_show_in_the_grid_on_both_stores_with_skewed_clocks() {
    let job = Job::new(512, 40);
    let filter = GpuArrivalsFilter { job: job.name.clone(), ..Default::default() };
    let grid = answers(&job, &filter).await;
    assert_eq!((grid.ranks.per_bin, grid.ranks.count), (2, 256));
    assert_eq!((grid.seqs.from, grid.seqs.per_bin, grid.seqs.count), (0, 1, 40), "40 sequences fit unbinned");
    assert_eq!(grid.collectives, 40);

    // A window of sequences and ranks, binned further.
    let window = GpuArrivalsFilter {
        seq_from: Some(10),
        seq_to: Some(39),
        rank_from: 128,
        rank_to: Some(256),
        rows: 16,
        columns: 7,
        ..filter.clone()
    };
    let (clickhouse, sqlite) = both_stores(job.rows()).await;
    let a = clickhouse.gpu_arrivals(&window).await.unwrap();
    assert_eq!(a, sqlite.gpu_arrivals(&window).await.unwrap());
    assert_eq!((a.ranks.from, a.ranks.per_bin, a.ranks.count), (128, 8, 16));
    assert_eq!((a.seqs.from, a.seqs.to, a.seqs.per_bin, a.seqs.count), (10, 40, 5, 6));
    let row = a.ranks.of(job.straggler.into()).unwrap();
    assert!((0..a.seqs.count).all(|c| a.cell(row, c).rank == job.straggler as i32), "late in every 5 sequences");

    // An unknown job is an empty grid.
    let unknown = GpuArrivalsFilter { job: "no-such-job".into(), ..Default::default() };
    assert!(sqlite.gpu_arrivals(&unknown).await.unwrap().cells.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn at_16384_ranks_the_straggler_s_row_survives_binning_on_both_stores() {
    let job = Job::new(16_384, 6);
    let filter = GpuArrivalsFilter { job: job.name.clone(), ..Default::default() };
    let grid = answers(&job, &filter).await;
    assert_eq!((grid.ranks.per_bin, grid.ranks.count), (64, 256));
    assert_eq!(grid.offsets.len(), 2048);
}
