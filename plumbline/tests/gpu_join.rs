//! Training jobs diagnosed on the fleet road: a simulated job's hosts send
//! what their node agents would (NCCL calls keyed by job, the rest by host,
//! each host on its own clock, heartbeats after the last step) → Kafka
//! (tansu) → aggregator (the collective join) → ClickHouse → query service →
//! `plumb gpu`. Needs PLUMBLINE_TEST_KAFKA and PLUMBLINE_TEST_CLICKHOUSE
//! (scripts/test.sh provides them).
//!
//! Every test plays its own job (8 hosts × 8 GPUs, 50 steps) into one shared
//! aggregator and query service, then polls until the join has judged the
//! whole job before reading its verdicts. Two shapes: one all-reduce over
//! every rank per step, and 3-D parallel (tensor groups of a host's 8 GPUs,
//! 2 pipeline stages, data groups of 4 hosts: all-gather, all-reduce,
//! send/recv, reduce-scatter per step), where answers name the job's ranks,
//! causes before consequences, and hosts that went silent. Some jobs are
//! played while the aggregator is stopped, so it meets them as a backlog.

mod support;

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex, Weak,
    },
    time::Duration,
};

use plumbline_bench::gpu_fleet::{
    play_into_kafka, Group, Hang, JobSpec, Mismatch, MismatchField, Parallel, Schedule, Silent, Straggler, COUNT,
    DATATYPE,
};
use serde_json::Value;
use support::*;

const HOSTS: u32 = 8;
const COLLECTIVES: u64 = 50;
const MS: u64 = 1_000_000;
/// Hosts' clocks spread over ±50 ms, as much as a straggler is late.
const SKEW: u64 = 50 * MS;

/// The aggregator's join settings these tests depend on: a rank 10 ms and
/// 4 spreads after the median is a straggler — above what the simulator's
/// noise alone makes (each arrival within ±3 ms, so two ranks of a
/// four-rank data group up to 6 ms apart, plus the error of the clock
/// offsets' estimate), far below the 30 ms stragglers; missing ranks are a
/// hang after 8 s (long enough that a busy machine does not split one
/// healthy collective's ranks across it).
const GPU_JOIN: &str = "[pipeline.gpu]\nstraggler_min_ms = 10\nstraggler_spread_factor = 4\nhang_after_ms = 8000\n\
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
        let mut expected = Schedule::new(spec).events();
        if let Some(silent) = spec.silent {
            expected -= silent_events(spec, silent);
        }
        assert_eq!(produced.events, expected);
    }

    /// Plays the job with the aggregator stopped (SIGSTOP), then lets it go
    /// on: it meets the whole job, heartbeats and all, as a backlog.
    fn play_as_backlog(&self, spec: &JobSpec) {
        let pid = self.services.lock().unwrap().aggregator.pid().to_string();
        let signal =
            |name: &str| assert!(std::process::Command::new("kill").args([name, &pid]).status().unwrap().success());
        signal("-STOP");
        self.play(spec);
        signal("-CONT");
    }

    /// `plumb gpu hang`: the hangs (causes first) and the silent hosts, once
    /// the job has `hangs` hang verdicts.
    fn hang_view(&self, job: &str, hangs: u64) -> (Vec<Value>, Vec<Value>) {
        self.await_view("jobs", job, &[], |jobs| {
            jobs.as_array().and_then(|j| j.first()).is_some_and(|j| j["hangs"].as_u64() >= Some(hangs))
        });
        let answer = self.await_view("hang", job, &[], |_| true);
        let list = |key: &str| answer[key].as_array().cloned().unwrap_or_default();
        (list("hangs"), list("silent"))
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

/// `plumbline_aggregator_clock_offset_seconds` of `host`, ns.
fn clock_offset_ns(metrics: &str, host: &str) -> Option<i64> {
    let series = format!("plumbline_aggregator_clock_offset_seconds{{host=\"{host}\"}} ");
    let line = metrics.lines().find(|l| l.starts_with(&series))?;
    Some((line[series.len()..].trim().parse::<f64>().ok()? * 1e9).round() as i64)
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
    let (hangs, silent) = fleet.hang_view(&spec.job, 1);
    assert!(silent.is_empty(), "{silent:?}");
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
    assert_no_verdicts(&fleet, &spec.job, COLLECTIVES);
}

/// Once `collectives` are judged, the job has no verdict in any view.
fn assert_no_verdicts(fleet: &Fleet, job: &str, collectives: u64) {
    let judged = fleet.judged(job, collectives);
    assert_eq!(
        (judged["stragglers"].as_u64(), judged["hangs"].as_u64(), judged["mismatches"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{judged}"
    );
    for view in ["stragglers", "mismatches"] {
        let answer = fleet.view(view, job, &[]);
        assert!(answer.is_empty(), "plumb gpu {view}: {answer:?}");
    }
    assert_eq!(fleet.hang_view(job, 0), (vec![], vec![]));
}

#[test]
fn each_host_s_clock_offset_is_estimated_and_shown_on_the_aggregator_s_metrics() {
    let fleet = fleet();
    let spec = job("clocks", SKEW);
    fleet.play(&spec);
    fleet.judged(&spec.job, COLLECTIVES);
    // The gauges are sampled on the aggregator's hang-check timer, so the
    // judged job's offsets show on the next tick.
    let addr = fleet.services.lock().unwrap().aggregator_metrics.clone();
    eventually_showing("every host's clock offset on the aggregator's /metrics", || {
        let metrics = metrics_at(&addr);
        let offsets = (0..HOSTS)
            .map(|h| clock_offset_ns(&metrics, &spec.host_name(h)).ok_or_else(|| format!("host {h}:\n{metrics}")))
            .collect::<Result<Vec<i64>, String>>()?;
        // Offsets are measured from the collectives' median arrival: each
        // host's against the first's is what the clocks were set apart by.
        for h in 1..HOSTS {
            let (estimated, set) = (offsets[h as usize] - offsets[0], spec.host_skew_ns(h) - spec.host_skew_ns(0));
            if (estimated - set).abs() >= 2 * MS as i64 {
                return Err(format!("host {h}: {estimated} ns estimated, {set} ns set: {offsets:?}"));
            }
        }
        Ok(())
    });
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

// ---- 3-D parallel jobs ------------------------------------------------------

/// 2 pipeline stages of 4 hosts: tensor groups inside hosts, data groups of
/// 4 hosts.
fn job_3d(name: &str, skew_ns: u64) -> JobSpec {
    JobSpec { parallel: Some(Parallel { pp: 2, split: false }), ..job(name, skew_ns) }
}

/// The same, its tensor, data and pipeline groups split from the world
/// communicator: their calls carry no rank or size.
fn job_3d_split(name: &str, skew_ns: u64) -> JobSpec {
    JobSpec { parallel: Some(Parallel { pp: 2, split: true }), ..job(name, skew_ns) }
}

/// The job's collectives (communicator, sequence): those every member
/// called, and those some member called and another never did.
fn collectives(spec: &JobSpec) -> (u64, u64) {
    let schedule = Schedule::new(spec);
    let (mut complete, mut hung) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    for rank in 0..spec.ranks() {
        for step in 0..spec.collectives {
            for (phase, p) in schedule.phases().iter().enumerate() {
                if matches!(p.group, Group::Pipeline) || !schedule.calls(rank, step, phase) {
                    continue;
                }
                let id = (schedule.membership(rank, p.group).id_hash, schedule.seq(step, phase));
                if schedule.members(rank, p.group).iter().all(|&m| schedule.calls(m, step, phase)) {
                    complete.insert(id);
                } else {
                    hung.insert(id);
                }
            }
        }
    }
    (complete.len() as u64, hung.len() as u64)
}

/// Events a silent host's agent never sent.
fn silent_events(spec: &JobSpec, silent: Silent) -> u64 {
    let schedule = Schedule::new(spec);
    let mut events = 0;
    for rank in silent.host * 8..silent.host * 8 + 8 {
        for step in silent.after_seq + 1..spec.collectives {
            let calls = (0..schedule.phases().len()).filter(|&p| schedule.calls(rank, step, p)).count() as u64;
            events += calls + if calls > 0 { u64::from(spec.kernels_per_step) } else { 0 };
        }
    }
    events
}

fn a_healthy_3d_job_has_no_verdicts(backlog: bool) {
    let fleet = fleet();
    let spec = job_3d("healthy-3d", SKEW);
    if backlog {
        fleet.play_as_backlog(&spec);
    } else {
        fleet.play(&spec);
    }
    let (complete, hung) = collectives(&spec);
    assert_eq!((complete, hung), (8 * 50 + 16 * 100, 0));
    assert_no_verdicts(&fleet, &spec.job, complete);
}

#[test]
fn a_healthy_3d_job_under_clock_skew_has_no_verdicts() {
    a_healthy_3d_job_has_no_verdicts(false);
}

#[test]
fn a_healthy_3d_job_met_as_a_backlog_has_no_verdicts() {
    a_healthy_3d_job_has_no_verdicts(true);
}

#[test]
fn a_healthy_3d_job_whose_groups_are_split_from_the_world_is_judged_whole_with_no_verdicts() {
    let fleet = fleet();
    let spec = job_3d_split("healthy-split", SKEW);
    fleet.play_as_backlog(&spec);
    let (complete, hung) = collectives(&spec);
    assert_eq!((complete, hung), (8 * 50 + 16 * 100, 0));
    // Every collective of every split group judged: their ranks were
    // numbered from the splits.
    assert_no_verdicts(&fleet, &spec.job, complete);
}

#[test]
fn a_3d_straggler_is_named_by_its_job_rank_and_its_tensor_peers_are_its_victims_not_stragglers() {
    let fleet = fleet();
    let rank = 45;
    let straggler = Straggler { rank, late_ns: 30 * MS, fraction: 0.4 };
    let spec = JobSpec { straggler: Some(straggler), ..job_3d("straggler-3d", SKEW) };
    fleet.play(&spec);
    let (complete, _) = collectives(&spec);
    let job = fleet.judged(&spec.job, complete);
    assert_eq!((job["hangs"].as_u64(), job["mismatches"].as_u64()), (Some(0), Some(0)), "{job}");
    let stragglers = fleet.view("stragglers", &spec.job, &[]);
    assert_eq!(stragglers.len(), 1, "the straggler alone, not the peers it held up: {stragglers:?}");
    let s = &stragglers[0];
    assert_eq!((s["rank"].as_u64(), s["device"].as_i64()), (Some(u64::from(rank)), Some(5)), "{s}");
    assert_eq!(s["host"], spec.host_of_rank(rank), "{s}");
    let late_steps = (0..COLLECTIVES).filter(|&step| Schedule::new(&spec).straggles_at(step)).count() as u64;
    // Last in its tensor group at every late step (a host's clock is the
    // same for all its GPUs), and in its data group's reduce-scatter once
    // its host's clock offset is known; its 7 tensor peers, held up, were
    // last in theirs: its victims, not stragglers.
    let (times_last, victims) = (s["times_last"].as_u64().unwrap(), s["victims"].as_u64().unwrap());
    assert!((late_steps..=2 * late_steps).contains(&times_last), "{s}");
    assert!(victims > 0 && victims <= 7 * late_steps && victims % 7 == 0, "{s}");
}

#[test]
fn a_3d_hang_names_the_stopped_rank_s_first_collective_as_the_cause_and_the_rest_as_its_consequences() {
    a_3d_hang_is_named_with_cause_and_consequences(job_3d("hang-3d", SKEW));
}

#[test]
fn a_3d_hang_in_groups_split_from_the_world_is_named_with_cause_and_consequences() {
    a_3d_hang_is_named_with_cause_and_consequences(job_3d_split("hang-split", SKEW));
}

fn a_3d_hang_is_named_with_cause_and_consequences(spec: JobSpec) {
    let fleet = fleet();
    let (rank, after_seq) = (45u32, 20u64);
    let spec = JobSpec { hang: Some(Hang { ranks: vec![rank], after_seq }), ..spec };
    fleet.play_as_backlog(&spec);
    let (_, hung) = collectives(&spec);
    // Its data group's all-gather, its host's tensor all-reduce, and the
    // tensor all-reduces of its data peers' hosts, whose ranks wait in the
    // all-gather: the whole stage stops behind one rank.
    assert_eq!(hung, 5);
    let (hangs, silent) = fleet.hang_view(&spec.job, hung);
    assert!(silent.is_empty(), "{silent:?}");
    let root = &hangs[0];
    let schedule = Schedule::new(&spec);
    let data = schedule.membership(rank, Group::Data);
    assert_eq!(root["communicator"], data.id_hash, "its data group's all-gather comes first: {root}");
    assert_eq!((root["seq"].as_u64(), root["op"].as_str()), (Some(2 * (after_seq + 1)), Some("ALL_GATHER")), "{root}");
    assert_eq!((root["cause_rank"].as_i64(), root["role"].as_str()), (Some(-1), Some("dp")), "the cause: {root}");
    let missing = root["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{root}");
    assert_eq!((missing[0]["global_rank"].as_u64(), missing[0]["blocked"].as_bool()), (Some(45), Some(false)));
    assert_eq!(missing[0]["host"], spec.host_of_rank(rank));
    assert_eq!(hangs.len(), 5, "{hangs:?}");
    for h in &hangs[1..] {
        assert_eq!(h["cause_rank"], 45, "every other hang follows from it: {h}");
        assert_eq!((h["cause_communicator"].as_u64(), h["cause_seq"].as_u64()), (Some(data.id_hash), Some(42)), "{h}");
    }
    let job = fleet.judged(&spec.job, collectives(&spec).0 + hung);
    assert_eq!((job["stragglers"].as_u64(), job["mismatches"].as_u64()), (Some(0), Some(0)), "{job}");
}

#[test]
fn a_3d_mismatch_names_the_job_rank_its_host_and_gpu() {
    let fleet = fleet();
    let (rank, seq) = (45u32, 17u64);
    let field = MismatchField::Count(1000);
    let spec = JobSpec { mismatch: Some(Mismatch { rank, seq, field }), ..job_3d("mismatch-3d", SKEW) };
    fleet.play(&spec);
    let job = fleet.judged(&spec.job, collectives(&spec).0);
    assert_eq!((job["mismatches"].as_u64(), job["hangs"].as_u64()), (Some(1), Some(0)), "{job}");
    let mismatches = fleet.view("mismatches", &spec.job, &[]);
    let m = &mismatches[0];
    assert_eq!((m["field"].as_str(), m["seq"].as_u64(), m["role"].as_str()), (Some("count"), Some(35), Some("dp")));
    assert_eq!(ranks_of(&m["global_ranks"]), [u64::from(rank)], "{m}");
    assert_eq!(ranks_of(&m["ranks"]), [1], "its rank in the data group: {m}");
    assert_eq!((m["hosts"][0].as_str(), m["devices"][0].as_i64()), (Some(spec.host_of_rank(rank).as_str()), Some(5)));
}

#[test]
fn a_host_whose_agent_went_silent_is_named_and_nothing_is_called_hung() {
    let fleet = fleet();
    let silent = Silent { host: 6, after_seq: 20 };
    let spec = JobSpec { silent: Some(silent), ..job_3d("silent-3d", SKEW) };
    fleet.play(&spec);
    let answer = fleet.await_view("hang", &spec.job, &[], |a| a["silent"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(answer["silent"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["silent"][0]["host"], spec.host_name(6), "{answer}");
    assert!(answer["hangs"].as_array().is_none_or(|h| h.is_empty()), "{answer}");
    let job =
        fleet.judged(&spec.job, fleet.await_view("jobs", &spec.job, &[], |_| true)[0]["collectives"].as_u64().unwrap());
    assert_eq!((job["hangs"].as_u64(), job["stragglers"].as_u64()), (Some(0), Some(0)), "{job}");
}
