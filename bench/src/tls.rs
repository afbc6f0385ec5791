//! What TLS capture costs the traced process, untraced and traced by
//! Plumbline in alternating rounds:
//!
//! - an SSL_write + SSL_read loop (our C program over the system libssl, a
//!   BIO pair, no network) with 1 KiB and 64 KiB writes: the uprobe, the
//!   copy of the plaintext into the ring and the return probe, per call;
//! - an HTTPS client loop: one curl sending chat-completion requests over a
//!   kept-alive connection to our LLM fixture, which the agent reads back
//!   into LLM calls.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context};
use plumbline_llm_fixture::Fixture;

use crate::overhead::tracer::{Kind, Road, Setup, Tracer};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rounds; each runs every workload untraced, then traced.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// SSL_write calls of 1 KiB per measurement.
    #[arg(long, default_value_t = 20_000)]
    small_writes: usize,
    /// SSL_write calls of 64 KiB per measurement.
    #[arg(long, default_value_t = 2_000)]
    large_writes: usize,
    /// HTTPS requests per client loop.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// The `plumbline` binary; default: next to this one.
    #[arg(long)]
    plumbline: Option<PathBuf>,
    /// `fleet`: the agent alone, sending to Kafka (as on a fleet node); `embedded`: agent, aggregator, SQLite
    /// and query service in one process on the same machine.
    #[arg(long, value_enum, default_value = "fleet")]
    road: Road,
    /// Kafka brokers for the fleet road.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Appended to Plumbline's configuration (`\n` for newlines), e.g.
    /// `[capture]\nfiles = false\nipc = false` to leave only TLS and network capture on.
    #[arg(long, default_value = "")]
    plumbline_config: String,
}

/// One round's numbers, for one tracer state.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    small_ns: f64,
    large_ns: f64,
    loop_ms: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the TLS benchmark loads BPF programs: run it as root");
    }
    let plumbline = match &args.plumbline {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("plumbline"),
    };
    if !plumbline.exists() {
        bail!("{} not found: build it (cargo build --release -p plumbline) or pass --plumbline", plumbline.display());
    }
    let dir = tempfile::Builder::new().prefix("plumbline-tls-bench").tempdir()?;
    let ssl_loop = build_ssl_loop(dir.path())?;
    let fixture = Fixture::in_process()?;
    let endpoint = "[[capture.intent.endpoints]]\nprovider = \"openai\"\nhost = \"localhost\"\n\
                    path_prefix = \"/openai/v1/chat/completions\"\nformat = \"openai_chat\"\n";
    let setup = Setup {
        plumbline,
        bpftrace: PathBuf::from("bpftrace"),
        road: args.road,
        brokers: args.brokers.clone(),
        extra_config: format!("{}\n{endpoint}", args.plumbline_config.replace("\\n", "\n")),
        dir: dir.path().to_path_buf(),
    };
    println!(
        "TLS capture cost, {} rounds (untraced, then traced by Plumbline, each round); road: {:?}\n",
        args.rounds, args.road
    );
    let mut untraced = Vec::new();
    let mut traced = Vec::new();
    let mut records = 0;
    let mut agent_cpu = std::time::Duration::ZERO;
    for round in 0..args.rounds {
        untraced.push(measure(&args, &ssl_loop, &fixture)?);
        let tracer = Tracer::start(Kind::Plumbline, &setup, round)?;
        let before = tracer.counts()?.drained;
        let cpu_before = tracer.usage()?.cpu;
        traced.push(measure(&args, &ssl_loop, &fixture)?);
        agent_cpu += tracer.usage()?.cpu.saturating_sub(cpu_before);
        tracer.settle()?;
        let counts = tracer.counts()?;
        records += counts.drained - before;
        if counts.lost > 0 {
            println!("round {round}: the agent reports {} events lost", counts.lost);
        }
        tracer.stop()?;
        eprintln!("round {}/{} done", round + 1, args.rounds);
    }
    let median = |samples: &[Sample], pick: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = samples.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ratio = |pick: fn(&Sample) -> f64| {
        let mut ratios: Vec<f64> = untraced.iter().zip(&traced).map(|(u, t)| pick(t) / pick(u)).collect();
        ratios.sort_by(f64::total_cmp);
        (ratios[ratios.len() / 2], ratios[0], ratios[ratios.len() - 1])
    };
    println!("| workload | untraced (median) | traced (median) | added per call | traced/untraced (median, min–max) |");
    println!("|---|---|---|---|---|");
    for (name, pick, unit) in [
        ("SSL_write+SSL_read 1 KiB", (|s: &Sample| s.small_ns) as fn(&Sample) -> f64, "ns"),
        ("SSL_write+SSL_read 64 KiB", |s: &Sample| s.large_ns, "ns"),
        ("HTTPS client loop", |s: &Sample| s.loop_ms, "ms"),
    ] {
        let (u, t) = (median(&untraced, pick), median(&traced, pick));
        let (r, lo, hi) = ratio(pick);
        let added = if unit == "ns" {
            format!("{:.0} ns", t - u)
        } else {
            format!("{:.0} µs per request", (t - u) * 1000.0 / args.requests as f64)
        };
        println!("| {name} | {u:.0} {unit} | {t:.0} {unit} | {added} | {r:.3} ({lo:.3}–{hi:.3}) |");
    }
    println!("\nRecords the agent drained while traced: {records}; its CPU time while measured: {agent_cpu:.2?}");
    println!("Exchanges the fixture served: {}", fixture.exchanges().len());
    Ok(())
}

fn measure(args: &Args, ssl_loop: &Path, fixture: &Fixture) -> anyhow::Result<Sample> {
    let small_ns = ssl_loop_ns(ssl_loop, 1024, args.small_writes)?;
    let large_ns = ssl_loop_ns(ssl_loop, 64 * 1024, args.large_writes)?;
    let started = Instant::now();
    client_loop(fixture, args.requests)?;
    Ok(Sample { small_ns, large_ns, loop_ms: started.elapsed().as_secs_f64() * 1000.0 })
}

fn ssl_loop_ns(ssl_loop: &Path, size: usize, count: usize) -> anyhow::Result<f64> {
    let output = Command::new(ssl_loop).arg(size.to_string()).arg(count.to_string()).output()?;
    if !output.status.success() {
        bail!("ssl_loop failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().context("ssl_loop's output")
}

/// One curl, `requests` chat completions over one kept-alive connection.
fn client_loop(fixture: &Fixture, requests: usize) -> anyhow::Result<()> {
    let url = format!("{}/openai/v1/chat/completions", fixture.base_url());
    let body =
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say something short about benchmarks"}]}"#;
    let mut command = Command::new("curl");
    command.args(["-sS", "--http1.1", "-o", "/dev/null", "--cacert"]).arg(fixture.ca_path());
    for i in 0..requests {
        if i > 0 {
            command.arg("--next").args(["-o", "/dev/null", "--cacert"]).arg(fixture.ca_path());
        }
        command.args(["-H", "content-type: application/json", "-d", body, &url]);
    }
    let status = command.status().context("running curl")?;
    if !status.success() {
        bail!("curl failed: {status}");
    }
    Ok(())
}

/// Compiles the SSL_write loop against the system OpenSSL.
fn build_ssl_loop(dir: &Path) -> anyhow::Result<PathBuf> {
    let source = dir.join("ssl_loop.c");
    std::fs::write(&source, include_str!("tls/ssl_loop.c"))?;
    let binary = dir.join("ssl_loop");
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&binary)
        .arg(&source)
        .args(["-lssl", "-lcrypto"])
        .status()
        .context("running cc (scripts/install-deps.sh bench installs it with libssl-dev)")?;
    if !status.success() {
        bail!("compiling ssl_loop failed (libssl-dev installed?)");
    }
    Ok(binary)
}
