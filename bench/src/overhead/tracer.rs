//! The tracers a workload runs under: none, Plumbline (the real `plumbline`
//! binary) or bpftrace with the peer script. Each runs as its own process so
//! its CPU time and memory are its own.

use std::{
    io::{Read, Write},
    net::TcpListener,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use super::{bpf_stats::Programs, usage};

/// The capture bpftrace does as the peer.
const PEER_SCRIPT: &str = include_str!("peer.bt");

/// How often the agent reads the kernel's counters (`capture.counters_interval_ms`).
const COUNTERS_POLL: Duration = Duration::from_secs(1);

/// How long a tracer may take to attach before the benchmark gives up.
const ATTACH_PATIENCE: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Road {
    /// `plumbline run`: agent, channel, aggregator, SQLite and query service in one process.
    Embedded,
    /// `plumbline agent run` sending to Kafka: the agent as deployed on a fleet node.
    Fleet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    #[value(skip)]
    Untraced,
    Plumbline,
    Bpftrace,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Untraced => "untraced",
            Kind::Plumbline => "plumbline",
            Kind::Bpftrace => "bpftrace",
        }
    }
}

/// Where the tracers come from and where they may write.
#[derive(Debug, Clone)]
pub struct Setup {
    pub plumbline: PathBuf,
    pub bpftrace: PathBuf,
    pub road: Road,
    pub brokers: String,
    /// Appended to Plumbline's configuration.
    pub extra_config: String,
    pub dir: PathBuf,
}

/// What a tracer handled: records it read out of the kernel and events it lost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub drained: u64,
    pub lost: u64,
    /// Events the kernel side folded into an earlier one (Plumbline's open collapsing).
    pub collapsed: u64,
}

/// A running tracer (or none).
pub struct Tracer {
    pub kind: Kind,
    child: Option<Child>,
    log: PathBuf,
    metrics: String,
    output: PathBuf,
    /// Its BPF programs: those loaded after it started.
    pub programs: Vec<u32>,
    markers: u64,
}

impl Tracer {
    /// Starts `kind` and returns once its probes see events.
    pub fn start(kind: Kind, setup: &Setup, run: usize) -> anyhow::Result<Tracer> {
        let log = setup.dir.join(format!("{}-{run}.log", kind.name()));
        let output = setup.dir.join(format!("{}-{run}.out", kind.name()));
        let before = Programs::now()?;
        let metrics_port = free_port()?;
        let child = match kind {
            Kind::Untraced => None,
            Kind::Plumbline => {
                let config = setup.dir.join(format!("plumbline-{run}.toml"));
                std::fs::write(&config, plumbline_config(setup, run, metrics_port)?)?;
                let args: &[&str] = match setup.road {
                    Road::Embedded => &["run"],
                    Road::Fleet => &["agent", "run"],
                };
                Some(spawn(Command::new(&setup.plumbline).args(args).arg("--config").arg(&config), &log)?)
            }
            Kind::Bpftrace => {
                let script = setup.dir.join("peer.bt");
                std::fs::write(&script, PEER_SCRIPT)?;
                let mut command = Command::new(&setup.bpftrace);
                command.arg("-q").arg("-o").arg(&output).arg(&script).env("BPFTRACE_MAP_KEYS_MAX", "1048576");
                Some(spawn(&mut command, &log)?)
            }
        };
        let mut tracer = Tracer {
            kind,
            child,
            log,
            metrics: format!("127.0.0.1:{metrics_port}"),
            output,
            programs: Vec::new(),
            markers: 0,
        };
        tracer.wait_until_attached(&setup.dir)?;
        tracer.programs = Programs::now()?.loaded_since(&before);
        Ok(tracer)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Creates fresh marker files until the tracer reports one.
    fn wait_until_attached(&mut self, dir: &Path) -> anyhow::Result<()> {
        if self.kind == Kind::Untraced {
            return Ok(());
        }
        let deadline = Instant::now() + ATTACH_PATIENCE;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().transpose()) {
                bail!("{} exited ({:?}) before attaching:\n{}", self.kind.name(), status?, self.log_text());
            }
            self.markers += 1;
            let marker = dir.join(format!("attach-marker-{}-{}", self.kind.name(), self.markers));
            std::fs::write(&marker, b"")?;
            let seen = match self.kind {
                Kind::Plumbline => {
                    self.scrape().map(|m| metric(&m, "plumbline_agent_records_total") > 0).unwrap_or(false)
                }
                Kind::Bpftrace => std::fs::read_to_string(&self.output)
                    .map(|out| out.contains(marker.to_str().unwrap_or_default()))
                    .unwrap_or(false),
                Kind::Untraced => true,
            };
            if seen {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not attach:\n{}", self.kind.name(), self.log_text());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What it has handled so far. bpftrace's output is only complete once it
    /// has stopped: see [`Tracer::stop`].
    pub fn counts(&self) -> anyhow::Result<Counts> {
        match self.kind {
            Kind::Untraced | Kind::Bpftrace => Ok(Counts::default()),
            Kind::Plumbline => {
                let m = self.scrape()?;
                Ok(Counts {
                    drained: metric(&m, "plumbline_agent_records_total"),
                    lost: metric(&m, "plumbline_agent_kernel_lost_events_total")
                        + metric(&m, "plumbline_agent_events_lost_total"),
                    collapsed: labelled_sum(&m, "plumbline_agent_bpf_events_total", "outcome=\"collapsed\""),
                })
            }
        }
    }

    /// Waits until the tracer has read everything the kernel wrote so far.
    /// For Plumbline: until the records it read reach the count of records
    /// the kernel says it emitted (taken after the agent's next poll of the
    /// kernel's counters). Other processes keep the count moving, so waiting
    /// for it to stand still would never end on a busy machine.
    pub fn settle(&self) -> anyhow::Result<()> {
        match self.kind {
            Kind::Untraced => Ok(()),
            Kind::Bpftrace => {
                // bpftrace polls its perf buffers continuously; give it a beat.
                std::thread::sleep(Duration::from_millis(500));
                Ok(())
            }
            Kind::Plumbline => {
                std::thread::sleep(COUNTERS_POLL + Duration::from_millis(200));
                let emitted = emitted_records(&self.scrape()?);
                while self.counts()?.drained < emitted {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Ok(())
            }
        }
    }

    pub fn usage(&self) -> anyhow::Result<usage::Usage> {
        match self.pid() {
            Some(pid) => usage::of(pid),
            None => Ok(usage::Usage::default()),
        }
    }

    /// Stops it; for bpftrace, returns what its output shows (lines printed,
    /// events it reported lost).
    pub fn stop(mut self) -> anyhow::Result<Counts> {
        let Some(mut child) = self.child.take() else { return Ok(Counts::default()) };
        let signal = if self.kind == Kind::Bpftrace { libc::SIGINT } else { libc::SIGTERM };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait()?;
        if !status.success() && self.kind == Kind::Plumbline {
            bail!("plumbline exited with {status}:\n{}", self.log_text());
        }
        if self.kind != Kind::Bpftrace {
            return Ok(Counts::default());
        }
        let output = std::fs::read_to_string(&self.output).unwrap_or_default();
        let drained = output.lines().filter(|l| !l.is_empty() && !l.starts_with('@')).count() as u64;
        let lost = lost_reports(&output) + lost_reports(&self.log_text());
        let _ = std::fs::remove_file(&self.output);
        Ok(Counts { drained, lost, collapsed: 0 })
    }

    /// Batches waiting for the sink right now (Plumbline only).
    pub fn queue_depth(&self) -> u64 {
        match self.kind {
            Kind::Plumbline => self.scrape().map(|m| metric(&m, "plumbline_agent_queue_depth")).unwrap_or(0),
            _ => 0,
        }
    }

    fn scrape(&self) -> anyhow::Result<String> {
        let mut stream = std::net::TcpStream::connect(&self.metrics)?;
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts a tracer that dies with the benchmark, however the benchmark ends.
fn spawn(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .with_context(|| format!("starting {command:?}"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn plumbline_config(setup: &Setup, run: usize, metrics_port: u16) -> anyhow::Result<String> {
    let common = format!("[node]\nhost = \"bench-{run}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n");
    let road = match setup.road {
        Road::Embedded => format!(
            "listen = \"127.0.0.1:{}\"\n{common}[sqlite]\npath = \"{}\"\n",
            free_port()?,
            setup.dir.join(format!("plumbline-{run}.db")).display()
        ),
        Road::Fleet => format!(
            "{common}[sink]\nkind = \"kafka\"\nbrokers = \"{}\"\ntopic = \"plumbline-bench-{}\"\n",
            setup.brokers,
            uuid::Uuid::new_v4().simple()
        ),
    };
    Ok(format!("{road}{}\n", setup.extra_config))
}

/// The value of an unlabelled sample in a Prometheus exposition.
fn metric(exposition: &str, name: &str) -> u64 {
    exposition.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0)
}

/// Records the kernel side wrote to Plumbline's rings: the `emitted` outcome
/// of every kind but `io`, which is accounted in a map, not sent as a record.
fn emitted_records(exposition: &str) -> u64 {
    exposition
        .lines()
        .filter(|line| line.starts_with("plumbline_agent_bpf_events_total{"))
        .filter(|line| line.contains("outcome=\"emitted\"") && !line.contains("kind=\"io\""))
        .filter_map(|line| line.rsplit_once(' ')?.1.trim().parse::<u64>().ok())
        .sum()
}

/// The sum of a labelled family's samples whose labels contain `label`.
fn labelled_sum(exposition: &str, name: &str, label: &str) -> u64 {
    exposition
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(label))
        .filter_map(|line| line.rsplit_once(' ')?.1.trim().parse::<u64>().ok())
        .sum()
}

/// Events bpftrace says it lost ("Lost N events").
fn lost_reports(text: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("Lost ")?.strip_suffix(" events")?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples_out_of_an_exposition() {
        let text = "# HELP x\nplumbline_agent_records_total 42\nplumbline_agent_records_malformed_total 1\n\
                    plumbline_agent_bpf_events_total{object=\"file\",kind=\"file_open\",outcome=\"collapsed\"} 7\n\
                    plumbline_agent_bpf_events_total{object=\"file\",kind=\"file_unlink\",outcome=\"collapsed\"} 3\n\
                    plumbline_agent_bpf_events_total{object=\"file\",kind=\"file_open\",outcome=\"emitted\"} 9\n";
        assert_eq!(metric(text, "plumbline_agent_records_total"), 42);
        assert_eq!(metric(text, "plumbline_agent_missing_total"), 0);
        assert_eq!(labelled_sum(text, "plumbline_agent_bpf_events_total", "outcome=\"collapsed\""), 10);
        let with_io =
            format!("{text}plumbline_agent_bpf_events_total{{object=\"io\",kind=\"io\",outcome=\"emitted\"}} 5\n");
        assert_eq!(emitted_records(&with_io), 9);
    }

    #[test]
    fn sums_what_bpftrace_reports_lost() {
        assert_eq!(lost_reports("open 1 a\nLost 12 events\n\nLost 3 events\nLost events\n"), 15);
    }
}
