//! What enforcement costs the workloads it confines: a TCP connect loop and an
//! exec storm, each run with the agent capturing but enforcing nothing, and
//! with the agent enforcing a policy this very process is enrolled in (every
//! connect, exec and open then goes through the role's lookups and is
//! allowed). Rounds alternate; the ratio of the two is the price of the hooks
//! of the node's tier (`fallback` here; `lsm` where the kernel has BPF LSM,
//! e.g. in a guest: `scripts/guest.sh run 6.12 -- plumbline-bench enforce`).

use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use plumbline_node_agent::AgentConfig;
use plumbline_transport::{channel, BatchSource, Gather};
use tokio_util::sync::CancellationToken;

/// The measured process: a child, since the agent never confines its own
/// process (and the bench runs the agent in-process).
#[derive(Debug, clap::Args)]
pub struct WorkloadArgs {
    #[arg(long)]
    port: u16,
    #[arg(long)]
    connects: usize,
    #[arg(long)]
    execs: usize,
    /// Enrol in this role through this socket first.
    #[arg(long)]
    role: Option<String>,
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
}

/// Runs the loops and prints `connect_p50 connect_p90 connect_p99 exec_p50 exec_p90 exec_p99` (ns).
pub fn workload(args: WorkloadArgs) -> anyhow::Result<()> {
    if let (Some(role), Some(socket)) = (&args.role, &args.socket) {
        plumbline_node_agent::enforce::control::enroll_self(socket, role).map_err(anyhow::Error::msg)?;
    }
    let (c, e) = (connect_loop(args.connects, args.port), exec_storm(args.execs));
    let q = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q);
    println!("{} {} {} {} {} {}", q(&c, 0.5), q(&c, 0.9), q(&c, 0.99), q(&e, 0.5), q(&e, 0.9), q(&e, 0.99));
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Connects per round.
    #[arg(long, default_value_t = 20_000)]
    connects: usize,
    /// Execs (of /bin/true) per round.
    #[arg(long, default_value_t = 2_000)]
    execs: usize,
    /// Rounds of each kind, alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// `n` connects to `port` on 127.0.0.1, each closed at once (ns each).
fn connect_loop(n: usize, port: u16) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    for _ in 0..n {
        let start = Instant::now();
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        histogram.record(start.elapsed().as_nanos() as u64).unwrap();
        drop(stream);
    }
    histogram
}

/// `n` spawns of /bin/true (ns each).
fn exec_storm(n: usize) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    for _ in 0..n {
        let start = Instant::now();
        assert!(Command::new("/bin/true").status().expect("spawn /bin/true").success());
        histogram.record(start.elapsed().as_nanos() as u64).unwrap();
    }
    histogram
}

/// The agent, sending into a channel whose batches are read and dropped.
struct Agent {
    stop: CancellationToken,
    agent: tokio::task::JoinHandle<anyhow::Result<plumbline_node_agent::StatsSnapshot>>,
    drain: tokio::task::JoinHandle<()>,
}

async fn start_agent(config: AgentConfig) -> anyhow::Result<Agent> {
    let (sink, source) = channel::pair(256);
    let drain = tokio::spawn(async move {
        while let Ok(deliveries) = source.recv(Gather::deliveries(256, Duration::ZERO)).await {
            let _ = source.commit(&deliveries).await;
        }
    });
    let stop = CancellationToken::new();
    let agent_stop = stop.clone();
    let agent =
        tokio::spawn(async move { plumbline_node_agent::run(config.settings(), Arc::new(sink), agent_stop).await });
    Ok(Agent { stop, agent, drain })
}

impl Agent {
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.agent.await??;
        self.drain.abort();
        Ok(())
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let socket = dir.path().join("enforce.sock");
    let policy = dir.path().join("policy.toml");
    let mut file = std::fs::File::create(&policy)?;
    write!(
        file,
        "mode = \"enforce\"\n[[roles]]\nname = \"bench\"\n[roles.exec]\nallow = [\"/usr/\", \"/bin/\", \"/lib/\"]\n\
         [roles.files]\nread_only = [\"/\"]\nread_write = [\"/tmp\", \"/dev\"]\ndeny = [\"/root/.ssh\"]\n\
         [roles.network]\nallow = [\"127.0.0.1:{port}\", \"10.0.0.0/8:443\", \"[::1]:8080\"]\n\
         [[workloads]]\nrole = \"bench\"\nfield = \"COMMAND_LINE\"\npattern = \"never-{}\"\n",
        uuid::Uuid::new_v4().simple()
    )?;
    let mut enforcing_config = AgentConfig::default();
    enforcing_config.capture.enforce.policy_file = Some(policy.clone());
    enforcing_config.capture.enforce.control_socket = socket.clone();

    let (mut off, mut on): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (Vec::new(), Vec::new());
    println!("| round | agent | connect p50 µs | p90 | p99 | exec p50 µs | p90 | p99 |");
    println!("|---|---|---|---|---|---|---|---|");
    for round in 0..args.rounds {
        for enforcing in [false, true] {
            let config = if enforcing { enforcing_config.clone() } else { AgentConfig::default() };
            let _ = std::fs::remove_file(&socket); // the last enforcing round's
            let agent = start_agent(config).await?;
            if !enforcing {
                tokio::time::sleep(Duration::from_secs(2)).await; // attached
            }
            let mut child = Command::new(std::env::current_exe()?);
            child.args(["enforce-workload", "--port", &port.to_string()]);
            child.args(["--connects", &args.connects.to_string(), "--execs", &args.execs.to_string()]);
            if enforcing {
                child.args(["--role", "bench", "--socket"]).arg(&socket);
            }
            // The enrolment socket appears once the policy is in the kernel.
            while enforcing && !socket.exists() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let output = tokio::task::spawn_blocking(move || child.output()).await??;
            anyhow::ensure!(output.status.success(), "workload: {}", String::from_utf8_lossy(&output.stderr));
            let numbers: Vec<f64> = String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .map(|n| n.parse().unwrap_or(f64::NAN))
                .collect();
            anyhow::ensure!(numbers.len() == 6, "workload printed {:?}", output.stdout);
            agent.stop().await?;
            let kind = if enforcing { "capturing + enforcing (enrolled)" } else { "capturing, no policy" };
            println!(
                "| {round} | {kind} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} |",
                numbers[0] / 1e3,
                numbers[1] / 1e3,
                numbers[2] / 1e3,
                numbers[3] / 1e3,
                numbers[4] / 1e3,
                numbers[5] / 1e3
            );
            if enforcing { &mut on } else { &mut off }.push(numbers);
        }
    }
    // Means over rounds of each round's quantiles (a connect loop's mean is
    // its rare 1 s SYN retries, not the hooks).
    let mean = |rounds: &[Vec<f64>], i: usize| rounds.iter().map(|r| r[i]).sum::<f64>() / rounds.len() as f64;
    println!();
    println!(
        "enforcing/not: connect p50 {:.3}, p90 {:.3}; exec p50 {:.3}, p90 {:.3}",
        mean(&on, 0) / mean(&off, 0),
        mean(&on, 1) / mean(&off, 1),
        mean(&on, 3) / mean(&off, 3),
        mean(&on, 4) / mean(&off, 4),
    );
    Ok(())
}
