//! Plumbline's benchmarks. Every number is taken in one run, next to its
//! baseline, so the ratio means something on a shared, noisy machine.
//!
//! - `exec-storm` (root): spawn short processes untraced and traced, in
//!   alternating rounds; report spawn latency ratios and the end-to-end rate
//!   at which the kernel's events became queryable (agent → channel →
//!   aggregator → SQLite).
//! - `enforce` (root): what workload enforcement costs the processes it
//!   confines: a connect loop and an exec storm with the agent capturing and
//!   no policy, against the agent enforcing a policy this process is
//!   enrolled in, in alternating rounds.
//! - `pipeline`: push synthetic batches through the transport and store
//!   alone (channel + SQLite, or Kafka + ClickHouse) to find their ceiling.
//! - `overhead` (root): what capture costs the traced machine, next to
//!   bpftrace doing the same capture: an openat loop, a C build and a paced
//!   sustained load.
//! - `tls` (root): what TLS capture costs: an SSL_write + SSL_read loop of
//!   1 KiB and 64 KiB, and an HTTPS client loop (curl calling our LLM
//!   fixture), untraced and traced in alternating rounds.
//! - `gpu`: simulated training jobs of 512 to 16,384 ranks through Kafka,
//!   the aggregator's collective join and ClickHouse: events per second
//!   until everything is stored and judged, and each diagnosis query's
//!   latency over gRPC.
//! - `quarantine` (root, Kafka): finding → quarantine applied and
//!   acknowledged by a real node agent over the fleet road (control topic
//!   out, events topic back), 100 updates one at a time.
//! - `dashboard`: every dashboard page rendered on the server over HTTP,
//!   for a 4,096-rank × 10,000-collective job and 1,000 agent sessions:
//!   median time and size per page, and the heatmap at 16,384 ranks.
//! - `sessions`: the causal graph of agent sessions against storing the
//!   same rows: what the aggregator's session stage costs per row.

mod dashboard;
mod enforce;
mod exec_storm;
mod gpu;
mod overhead;
mod pipeline;
mod quarantine;
mod sessions;
mod tls;

use clap::{Parser, Subcommand};

/// The allocator the `plumbline` binary runs with, so the roads measured
/// here allocate as the deployed aggregator does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "plumbline-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    ExecStorm(exec_storm::Args),
    Enforce(enforce::Args),
    /// (internal) the measured child of `enforce`.
    #[command(hide = true)]
    EnforceWorkload(enforce::WorkloadArgs),
    Pipeline(pipeline::Args),
    Overhead(overhead::Args),
    Tls(tls::Args),
    Gpu(gpu::Args),
    Sessions(sessions::Args),
    Quarantine(quarantine::Args),
    Dashboard(dashboard::Args),
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let command = Cli::parse().command;
    let command = match command {
        Command::Overhead(args) => return overhead::run(args),
        Command::Tls(args) => return tls::run(args),
        Command::EnforceWorkload(args) => return enforce::workload(args),
        other => other,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match command {
        Command::ExecStorm(args) => runtime.block_on(exec_storm::run(args)),
        Command::Enforce(args) => runtime.block_on(enforce::run(args)),
        Command::Pipeline(args) => runtime.block_on(pipeline::run(args)),
        Command::Gpu(args) => runtime.block_on(gpu::run(args)),
        Command::Sessions(args) => runtime.block_on(sessions::run(args)),
        Command::Quarantine(args) => runtime.block_on(quarantine::run(args)),
        Command::Dashboard(args) => runtime.block_on(dashboard::run(args)),
        Command::Overhead(_) | Command::Tls(_) | Command::EnforceWorkload(_) => {
            unreachable!("run without a runtime above")
        }
    }
}
