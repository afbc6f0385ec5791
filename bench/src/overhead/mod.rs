//! What capture costs the traced machine. Each workload runs untraced, under
//! Plumbline and under bpftrace doing the same capture, in rotating order
//! within every round, so all three see the same machine. Reported per
//! workload: wall-time ratio to untraced (median of per-round ratios), the
//! kernel's BPF run time per operation (`BPF_ENABLE_STATS`), records the
//! tracer drained and lost, and the tracer's CPU and peak RSS. A paced run
//! then holds a fixed event rate for a fixed time under each tracer.

mod bpf_stats;
pub(crate) mod tracer;
mod usage;
mod workload;

use std::{
    path::PathBuf,
    sync::mpsc::RecvTimeoutError,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use bpf_stats::{Programs, Spent};
use tracer::{Counts, Kind, Road, Setup, Tracer};
use workload::{Fixtures, Workload};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workloads to run, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Workload::OpenSame, Workload::OpenDistinct, Workload::Compile, Workload::Sustained])]
    workloads: Vec<Workload>,
    /// Tracers to compare with the untraced run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Kind::Plumbline, Kind::Bpftrace])]
    tracers: Vec<Kind>,
    /// Rounds of each unpaced workload; a round runs it untraced, under Plumbline and under bpftrace.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Iterations of the one-file openat loop.
    #[arg(long, default_value_t = 1_000_000)]
    opens: usize,
    /// Files for the distinct-file loop (each opened once per run).
    #[arg(long, default_value_t = 200_000)]
    files: usize,
    /// C files in the generated project.
    #[arg(long, default_value_t = 96)]
    units: usize,
    /// Opens per second of the sustained run.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Length of the sustained run under each tracer.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Which Plumbline to measure.
    #[arg(long, value_enum, default_value_t = Road::Embedded)]
    road: Road,
    /// Brokers for `--road fleet`.
    #[arg(long, env = "PLUMBLINE_TEST_KAFKA", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// TOML appended to Plumbline's configuration (e.g. "[batch]\nqueue_batches = 16").
    #[arg(long, default_value = "")]
    plumbline_config: String,
    /// The `plumbline` binary; default: next to this one.
    #[arg(long)]
    plumbline: Option<PathBuf>,
    #[arg(long, default_value = "bpftrace")]
    bpftrace: PathBuf,
    /// Leave the kernel's BPF statistics off (they add two clock reads per program run).
    #[arg(long)]
    no_bpf_stats: bool,
}

/// One workload run under one tracer.
#[derive(Debug, Clone, Copy)]
struct Run {
    round: usize,
    kind: Kind,
    /// The workload's own wall time.
    wall: Duration,
    ops: u64,
    /// From the workload's start until the tracer had drained everything.
    span: Duration,
    spent: Spent,
    counts: Counts,
    cpu: Duration,
    rss_peak: u64,
    /// The most batches seen waiting for the sink (Plumbline), sampled twice a second.
    queue_peak: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the overhead benchmark loads BPF programs: run it as root");
    }
    let plumbline = match &args.plumbline {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("plumbline"),
    };
    if !plumbline.exists() {
        bail!("{} not found: build it (cargo build --release -p plumbline) or pass --plumbline", plumbline.display());
    }
    let _stats = if args.no_bpf_stats { None } else { Some(bpf_stats::enable().context("enabling BPF statistics")?) };
    let dir = tempfile::Builder::new().prefix("plumbline-overhead").tempdir()?;
    let sustained = args.workloads.contains(&Workload::Sustained);
    // Enough files that a paced run reopens each only after 1.5 s.
    let files = if sustained { args.files.max((args.rate as usize) * 3 / 2) } else { args.files };
    let fixtures = Fixtures::make(dir.path(), files, args.units)?;
    let setup = Setup {
        plumbline,
        bpftrace: args.bpftrace.clone(),
        road: args.road,
        brokers: args.brokers.clone(),
        extra_config: args.plumbline_config.replace("\\n", "\n"),
        dir: dir.path().to_path_buf(),
    };
    println!(
        "Linux {}, {} CPUs, Plumbline road: {:?}, BPF statistics {}\n",
        kernel_release(),
        fixtures.jobs,
        args.road,
        if args.no_bpf_stats { "off" } else { "on" }
    );
    let mut run_no = 0;
    for &workload in args.workloads.iter().filter(|w| **w != Workload::Sustained) {
        // Warm caches (page cache, dentries, the compiler) before measuring.
        workload::run(workload, &fixtures, args.opens)?;
        let mut runs = Vec::new();
        let kinds: Vec<Kind> = std::iter::once(Kind::Untraced).chain(args.tracers.iter().copied()).collect();
        for round in 0..args.rounds {
            for i in 0..kinds.len() {
                let kind = kinds[(round + i) % kinds.len()];
                run_no += 1;
                let mut run = measure(kind, &setup, run_no, || workload::run(workload, &fixtures, args.opens))?;
                run.round = round;
                runs.push(run);
            }
        }
        report(workload, &runs);
    }
    if sustained {
        let mut runs = Vec::new();
        for &kind in &args.tracers {
            run_no += 1;
            runs.push(measure(kind, &setup, run_no, || workload::paced(&fixtures, args.rate, args.seconds))?);
        }
        report_sustained(args.rate, args.seconds, &runs);
    }
    Ok(())
}

/// Starts `kind`, runs the workload, waits until the tracer has drained
/// everything, and takes its measures.
fn measure(
    kind: Kind,
    setup: &Setup,
    run_no: usize,
    workload: impl FnOnce() -> anyhow::Result<u64>,
) -> anyhow::Result<Run> {
    let tracer = Tracer::start(kind, setup, run_no)?;
    let (programs, usage, counts) = (Programs::now()?, tracer.usage()?, tracer.counts()?);
    let (done, stop) = std::sync::mpsc::channel::<()>();
    let start = Instant::now();
    let (ops, wall, queue_peak) = std::thread::scope(|scope| {
        let tracer = &tracer;
        let sampler = scope.spawn(move || {
            let mut peak = 0;
            loop {
                peak = peak.max(tracer.queue_depth());
                if stop.recv_timeout(Duration::from_millis(500)) != Err(RecvTimeoutError::Timeout) {
                    return peak;
                }
            }
        });
        let ops = workload();
        // Before joining the sampler, whose wait must not count.
        let wall = start.elapsed();
        drop(done);
        (ops, wall, sampler.join().unwrap_or(0))
    });
    let ops = ops?;
    tracer.settle()?;
    let span = start.elapsed();
    let spent = Programs::now()?.spent_since(&programs, &tracer.programs);
    let (usage_after, counts_after) = (tracer.usage()?, tracer.counts()?);
    let program_count = tracer.programs.len();
    let stopped = tracer.stop()?;
    let counts = match kind {
        Kind::Bpftrace => stopped,
        _ => Counts {
            drained: counts_after.drained - counts.drained,
            lost: counts_after.lost - counts.lost,
            collapsed: counts_after.collapsed - counts.collapsed,
        },
    };
    if kind != Kind::Untraced && program_count == 0 {
        bail!("{} loaded no BPF programs that this benchmark could see", kind.name());
    }
    Ok(Run {
        round: 0,
        kind,
        wall,
        ops,
        span,
        spent,
        counts,
        cpu: usage_after.cpu.saturating_sub(usage.cpu),
        rss_peak: usage_after.rss_peak,
        queue_peak,
    })
}

fn report(workload: Workload, runs: &[Run]) {
    println!("## {} ({} per operation)\n", workload.name(), workload.op());
    println!("| round | tracer | ops | wall s | ratio | BPF ns/op | BPF runs/op | drained | lost | folded | tracer CPU µs/op | tracer RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        let ratio = untraced_wall(runs, run.round).map(|base| run.wall.as_secs_f64() / base.as_secs_f64());
        println!(
            "| {} | {} | {} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.round,
            run.kind.name(),
            run.ops,
            run.wall.as_secs_f64(),
            ratio.map(|r| format!("{r:.3}")).unwrap_or_default(),
            bpf_ns(run),
            if run.spent.runs == 0 { String::new() } else { format!("{:.2}", run.spent.runs as f64 / run.ops as f64) },
            traced(run, || run.counts.drained.to_string()),
            traced(run, || run.counts.lost.to_string()),
            traced(run, || run.counts.collapsed.to_string()),
            traced(run, || format!("{:.2}", cpu_per_op(run))),
            traced(run, || format!("{:.1}", mib(run.rss_peak))),
        );
    }
    println!();
    for kind in [Kind::Plumbline, Kind::Bpftrace] {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.kind == kind).collect();
        if mine.is_empty() {
            continue;
        }
        let ratios: Vec<f64> = mine
            .iter()
            .filter_map(|r| Some(r.wall.as_secs_f64() / untraced_wall(runs, r.round)?.as_secs_f64()))
            .collect();
        println!(
            "- {}: wall ratio to untraced, median {:.3} (min {:.3}, max {:.3}); {}; \
             {} lost; tracer CPU {:.2} µs per {}; peak RSS {:.1} MiB",
            kind.name(),
            median(&ratios),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
            if mine.iter().all(|r| r.spent.runs == 0) {
                "BPF statistics off".to_string()
            } else {
                let ns = median(&mine.iter().map(|r| ns_per_op(r)).collect::<Vec<_>>());
                format!("BPF {ns:.0} ns per {}", workload.op())
            },
            mine.iter().map(|r| r.counts.lost).sum::<u64>(),
            median(&mine.iter().map(|r| cpu_per_op(r)).collect::<Vec<_>>()),
            workload.op(),
            mine.iter().map(|r| mib(r.rss_peak)).fold(0.0, f64::max),
        );
    }
    println!();
}

fn report_sustained(rate: u64, seconds: u64, runs: &[Run]) {
    println!("## {} at {rate}/s for {seconds} s\n", Workload::Sustained.name());
    println!("| tracer | opens | achieved opens/s | drained | drained/s | lost | BPF ns/op | tracer CPU % | tracer RSS peak MiB | queue peak (batches) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        println!(
            "| {} | {} | {:.0} | {} | {:.0} | {} | {} | {:.1} | {:.1} | {} |",
            run.kind.name(),
            run.ops,
            run.ops as f64 / run.wall.as_secs_f64(),
            run.counts.drained,
            run.counts.drained as f64 / run.span.as_secs_f64(),
            run.counts.lost,
            bpf_ns(run),
            cpu_percent(run),
            mib(run.rss_peak),
            traced(run, || if run.kind == Kind::Plumbline { run.queue_peak.to_string() } else { String::new() }),
        );
    }
    println!();
}

fn untraced_wall(runs: &[Run], round: usize) -> Option<Duration> {
    runs.iter().find(|r| r.round == round && r.kind == Kind::Untraced).map(|r| r.wall)
}

fn traced(run: &Run, value: impl FnOnce() -> String) -> String {
    if run.kind == Kind::Untraced {
        String::new()
    } else {
        value()
    }
}

/// BPF run time per operation; blank untraced or with statistics off.
fn bpf_ns(run: &Run) -> String {
    if run.kind == Kind::Untraced || run.spent.runs == 0 {
        return String::new();
    }
    format!("{:.0}", ns_per_op(run))
}

fn ns_per_op(run: &Run) -> f64 {
    run.spent.run_time.as_nanos() as f64 / run.ops.max(1) as f64
}

/// The tracer's CPU time, from the workload's start until it had drained
/// everything, per operation of the workload.
fn cpu_per_op(run: &Run) -> f64 {
    run.cpu.as_secs_f64() * 1e6 / run.ops.max(1) as f64
}

fn cpu_percent(run: &Run) -> f64 {
    100.0 * run.cpu.as_secs_f64() / run.span.as_secs_f64()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}
