//! Training jobs diagnosed on the fleet road: a simulated job's hosts send
//! what their node agents would (NCCL calls keyed by communicator, the rest
//! by host, each host on its own clock) → Kafka (tansu) → aggregator (the
//! collective join) → ClickHouse → query service → `plumb gpu`. Needs
//! PLUMBLINE_TEST_KAFKA and PLUMBLINE_TEST_CLICKHOUSE (scripts/test.sh
//! provides them).
//!
//! Every test plays its own job (8 hosts × 8 GPUs, 50 all-reduces) into one
//! shared aggregator and query service, then polls until the join has judged
//! the whole job before reading its verdicts.

mod support;

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex, Weak,
    },
    time::Duration,
};

use plumbline_bench::gpu_fleet::{
    play_into_kafka, Hang, JobSpec, Mismatch, MismatchField, Schedule, Straggler, COUNT, DATATYPE,
};
use serde_json::Value;
use support::*;

const HOSTS: u32 = 8;
const COLLECTIVES: u64 = 50;
const MS: u64 = 1_000_000;
/// Hosts' clocks spread over ±50 ms, as much as a straggler is late.
const SKEW: u64 = 50 * MS;

/// The aggregator's join settings these tests depend on: a rank 5 ms and
/// 4 spreads after the median is a straggler; missing ranks are a hang
/// after 8 s (long enough that a busy machine does not split one healthy
/// collective's ranks across it).
const GPU_JOIN: &str = "[pipeline.gpu]\nstraggler_min_ms = 5\nstraggler_spread_factor = 4\nhang_after_ms = 8000\n\
                        hang_check_interval_ms = 500\nclock_skew_max_ms = 100\n";

struct Fleet {
    topic: String,
    addr: String,
    services: Mutex<FleetServices>,
}

impl Fleet {
    fn start() -> Self {
        let services = FleetServices::start("gpu", GPU_JOIN);
        Fleet { topic: services.topic.clone(), addr: services.addr.clone(), services: Mutex::new(services) }
    }

    /// Plays the job into the fleet's topic as its hosts' agents would.
    fn play(&self, spec: &JobSpec) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let produced = runtime.block_on(play_into_kafka(spec, &kafka_brokers(), &self.topic)).unwrap();
        assert_eq!(produced.events, Schedule::new(spec).events());
    }

    /// `plumb gpu <view> --job <job> <args> -o json`, polled until `ready`
    /// accepts the answer. Fails when a component crashed or `plumb` fails
    /// for any reason but the service not answering yet.
    fn await_view(&self, view: &str, job: &str, args: &[&str], ready: impl Fn(&Value) -> bool) -> Value {
        loop {
            let output =
                plumb(&self.addr, &[&["gpu", view, "--job", job, "--limit", "1000"], args, &["-o", "json"]].concat());
            if output.status.success() {
                let answer: Value = serde_json::from_slice(&output.stdout).expect("plumb -o json prints JSON");
                if ready(&answer) {
                    return answer;
                }
            } else {
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(stderr.contains("cannot reach"), "plumb gpu {view} failed: {stderr}");
            }
            let mut guard = self.services.lock().unwrap();
            let services = &mut *guard;
            for component in [&mut services.aggregator, &mut services.query] {
                assert!(component.is_running(), "{} crashed:\n{}", component.name, component.log());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn view(&self, view: &str, job: &str, args: &[&str]) -> Vec<Value> {
        self.await_view(view, job, args, |_| true).as_array().cloned().expect("a list")
    }

    /// The job as `plumb gpu jobs` lists it once the join has judged
    /// `collectives` of its collectives.
    fn judged(&self, job: &str, collectives: u64) -> Value {
        let jobs = self.await_view("jobs", job, &[], |jobs| {
            jobs.as_array().and_then(|j| j.first()).is_some_and(|j| j["collectives"].as_u64() >= Some(collectives))
        });
        let jobs = jobs.as_array().unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0]["collectives"], collectives, "each collective judged once: {jobs:?}");
        jobs[0].clone()
    }
}

/// One fleet for the tests running at a time; it stops when the last of
/// them lets go.
fn fleet() -> Arc<Fleet> {
    static FLEET: Mutex<Weak<Fleet>> = Mutex::new(Weak::new());
    let mut shared = FLEET.lock().unwrap();
    if let Some(fleet) = shared.upgrade() {
        return fleet;
    }
    let fleet = Arc::new(Fleet::start());
    *shared = Arc::downgrade(&fleet);
    fleet
}

/// A job on hosts of its own: a host's clock is the same whatever job runs
/// on it, so jobs with different skews must not share hosts.
fn job(name: &str, skew_ns: u64) -> JobSpec {
    static NEXT_HOST: AtomicU32 = AtomicU32::new(0);
    let first_host = NEXT_HOST.fetch_add(HOSTS, Ordering::Relaxed);
    JobSpec { clock_skew_ns: skew_ns, first_host, ..JobSpec::new(&unique(name), HOSTS, COLLECTIVES) }
}

fn ranks_of(values: &Value) -> Vec<u64> {
    values.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

fn a_late_rank_is_named_first_with_its_host_and_device(skew_ns: u64, fraction: f64) {
    let fleet = fleet();
    let rank = 29;
    let spec = JobSpec { straggler: Some(Straggler { rank, late_ns: 30 * MS, fraction }), ..job("straggler", skew_ns) };
    let schedule = Schedule::new(&spec);
    let late_at = (0..COLLECTIVES).filter(|&seq| schedule.late_ns(rank, seq, 0) > 0).count() as u64;
    assert!(late_at > 0);
    fleet.play(&spec);

    let job = fleet.judged(&spec.job, COLLECTIVES);
    assert_eq!((job["ranks"].as_u64(), job["hosts"].as_u64()), (Some(64), Some(8)), "{job}");
    assert_eq!(job["stragglers"], late_at, "{job}");
    assert_eq!((job["hangs"].as_u64(), job["mismatches"].as_u64()), (Some(0), Some(0)), "{job}");

    let stragglers = fleet.view("stragglers", &spec.job, &[]);
    let first = &stragglers[0];
    assert_eq!(first["rank"], rank, "{stragglers:?}");
    assert_eq!(first["host"], spec.host_of_rank(rank), "{first}");
    assert_eq!(first["device"], JobSpec::device_of(rank), "{first}");
    assert_eq!(first["times_last"], late_at, "{first}");
    assert_eq!(first["collectives"], COLLECTIVES, "{first}");
    let mean_late_ms = first["mean_late_ns"].as_u64().unwrap() as f64 / MS as f64;
    assert!((25.0..=35.0).contains(&mean_late_ms), "30 ms late, after each host's clock is taken out: {first}");
    assert!(stragglers.iter().skip(1).all(|s| s["rank"] != rank), "{stragglers:?}");
}

#[test]
fn a_late_rank_is_named_first_as_straggler_with_its_host_and_device() {
    a_late_rank_is_named_first_with_its_host_and_device(0, 1.0);
}

#[test]
fn a_rank_late_at_some_collectives_is_named_under_clock_skew_between_hosts() {
    a_late_rank_is_named_first_with_its_host_and_device(SKEW, 0.4);
}

fn a_hang_names_the_next_sequence_and_exactly_the_missing_ranks(skew_ns: u64) {
    let fleet = fleet();
    let (stopped, after_seq) = ([13u32, 42], 31u64);
    let spec = JobSpec { hang: Some(Hang { ranks: stopped.to_vec(), after_seq }), ..job("hang", skew_ns) };
    fleet.play(&spec);

    // Sequences 0..=31 complete, then 32 hangs once the timeout passed.
    let hangs = fleet.await_view("hang", &spec.job, &[], |h| h.as_array().is_some_and(|h| !h.is_empty()));
    let hangs = hangs.as_array().unwrap();
    assert_eq!(hangs.len(), 1, "one communicator, one hang: {hangs:?}");
    let hang = &hangs[0];
    assert_eq!(hang["seq"], after_seq + 1, "{hang}");
    assert_eq!(hang["communicator"], spec.comm_id_hash(), "{hang}");
    assert_eq!(hang["op"], "ALL_REDUCE", "{hang}");
    assert_eq!((hang["nranks"].as_u64(), hang["arrived"].as_u64()), (Some(64), Some(62)), "{hang}");
    let missing = hang["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 2, "exactly the ranks that stopped: {hang}");
    for (m, rank) in missing.iter().zip(stopped) {
        assert_eq!(m["rank"], rank, "{hang}");
        assert_eq!(m["last_completed_seq"], after_seq, "{hang}");
        assert_eq!(m["host"], spec.host_of_rank(rank), "{hang}");
        assert_eq!(m["device"], JobSpec::device_of(rank), "{hang}");
    }

    let job = fleet.judged(&spec.job, after_seq + 2);
    assert_eq!(
        (job["hangs"].as_u64(), job["stragglers"].as_u64(), job["mismatches"].as_u64()),
        (Some(1), Some(0), Some(0))
    );
    assert!(fleet.view("mismatches", &spec.job, &[]).is_empty());
    assert!(fleet.view("stragglers", &spec.job, &[]).is_empty());
}

#[test]
fn a_hang_names_the_first_unreached_sequence_the_missing_ranks_and_their_last_completed() {
    a_hang_names_the_next_sequence_and_exactly_the_missing_ranks(0);
}

#[test]
fn a_hang_is_named_the_same_under_clock_skew_between_hosts() {
    a_hang_names_the_next_sequence_and_exactly_the_missing_ranks(SKEW);
}

fn a_mismatch_names_rank_field_and_values(skew_ns: u64, field: MismatchField) {
    let fleet = fleet();
    let (rank, seq) = (45u32, 17u64);
    let spec = JobSpec { mismatch: Some(Mismatch { rank, seq, field }), ..job("mismatch", skew_ns) };
    fleet.play(&spec);

    let job = fleet.judged(&spec.job, COLLECTIVES);
    assert_eq!(
        (job["mismatches"].as_u64(), job["stragglers"].as_u64(), job["hangs"].as_u64()),
        (Some(1), Some(0), Some(0))
    );
    let mismatches = fleet.view("mismatches", &spec.job, &[]);
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    let m = &mismatches[0];
    let (name, expected, value) = match field {
        MismatchField::Count(count) => ("count", COUNT.to_string(), count.to_string()),
        MismatchField::Datatype(datatype) => ("datatype", DATATYPE.to_string(), datatype.to_string()),
    };
    assert_eq!((m["seq"].as_u64(), m["field"].as_str()), (Some(seq), Some(name)), "{m}");
    assert_eq!(m["expected"], expected, "{m}");
    assert_eq!(ranks_of(&m["ranks"]), vec![u64::from(rank)], "{m}");
    assert_eq!(m["values"], serde_json::json!([value]), "{m}");
    assert_eq!(m["communicator"], spec.comm_id_hash(), "{m}");
}

#[test]
fn a_rank_calling_with_another_count_is_named_with_field_and_values() {
    a_mismatch_names_rank_field_and_values(0, MismatchField::Count(1000));
}

#[test]
fn a_count_mismatch_is_named_the_same_under_clock_skew_between_hosts() {
    a_mismatch_names_rank_field_and_values(SKEW, MismatchField::Count(1000));
}

#[test]
fn a_rank_calling_with_another_datatype_is_named_under_clock_skew_between_hosts() {
    // ncclFloat16 where the others reduce ncclFloat32.
    a_mismatch_names_rank_field_and_values(SKEW, MismatchField::Datatype(6));
}

fn a_healthy_job_has_no_verdicts(skew_ns: u64) {
    let fleet = fleet();
    let spec = job("healthy", skew_ns);
    fleet.play(&spec);

    // Every collective judged: none is left open to hang later.
    let job = fleet.judged(&spec.job, COLLECTIVES);
    assert_eq!(
        (job["stragglers"].as_u64(), job["hangs"].as_u64(), job["mismatches"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{job}"
    );
    for view in ["stragglers", "hang", "mismatches"] {
        let answer = fleet.view(view, &spec.job, &[]);
        assert!(answer.is_empty(), "plumb gpu {view}: {answer:?}");
    }
}

#[test]
fn a_healthy_job_has_no_straggler_hang_or_mismatch() {
    a_healthy_job_has_no_verdicts(0);
}

#[test]
fn a_healthy_job_under_clock_skew_between_hosts_has_no_verdicts() {
    a_healthy_job_has_no_verdicts(SKEW);
}

#[test]
fn a_ranks_kernels_and_timeline_read_back_what_it_launched_and_called() {
    let fleet = fleet();
    let spec = JobSpec { kernels_per_step: 3, ..job("kernels", SKEW) };
    let rank = 50u32;
    fleet.play(&spec);
    fleet.judged(&spec.job, COLLECTIVES);

    let rank_arg = rank.to_string();
    let kernels = fleet.await_view("kernels", &spec.job, &["--rank", &rank_arg], |k| {
        k.as_array().is_some_and(|k| k.len() == 3 && k.iter().all(|k| k["launches"] == COLLECTIVES))
    });
    let names: Vec<&str> = kernels.as_array().unwrap().iter().map(|k| k["kernel"].as_str().unwrap()).collect();
    assert!(names.contains(&"ncclDevKernel_AllReduce_Sum_f32_RING_LL"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("void at::native::vectorized_elementwise_kernel<4,")), "{names:?}");
    assert!(
        kernels.as_array().unwrap().iter().all(|k| k["rank"] == rank && k["host"] == spec.host_of_rank(rank)),
        "{kernels}"
    );

    let per_rank = (1 + u64::from(spec.kernels_per_step)) * COLLECTIVES + 1;
    let timeline = fleet.await_view("timeline", &spec.job, &["--rank", &rank_arg], |t| {
        t.as_array().is_some_and(|t| t.len() as u64 >= per_rank)
    });
    let calls = timeline.as_array().unwrap();
    assert_eq!(calls.len() as u64, per_rank, "every launch and NCCL call of the rank, the init included");
    assert!(calls.windows(2).all(|w| w[0]["wall_ns"].as_u64() <= w[1]["wall_ns"].as_u64()), "in time order");
    let all_reduces: Vec<u64> =
        calls.iter().filter(|c| c["call"] == "ALL_REDUCE").map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!(all_reduces, (0..COLLECTIVES).collect::<Vec<_>>());
    assert!(calls.iter().all(|c| c["rank"] == rank && c["device"] == JobSpec::device_of(rank)), "{timeline}");
}
