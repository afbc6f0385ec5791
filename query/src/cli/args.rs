//! What `plumb` accepts: its commands, their arguments and the filters
//! they make.

use clap::{Parser, Subcommand, ValueEnum};
use plumbline_proto::v1::{ActivityRequest, GpuRequest, SessionRequest, TimeRange};

use super::time_arg::parse_time;

#[derive(Debug, Parser)]
#[command(name = "plumb", version, about = "Ask Plumbline what the kernel saw")]
pub struct Cli {
    /// Query service address.
    #[arg(long, global = true, env = "PLUMB_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// File holding the service's token, sent on every request (without
    /// it, the token in PLUMB_TOKEN is sent, if set).
    #[arg(long, global = true, env = "PLUMB_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// PEM CA certificate that signed the service's certificate (https://
    /// addresses; default: the system's CAs).
    #[arg(long, global = true, env = "PLUMB_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List processes, newest first.
    Ps {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Alive at or after this time: a duration ago (`10m`, `2h`) or an RFC 3339 time.
        #[arg(long, value_parser = parse_time)]
        since: Option<u64>,
        /// Alive at or before this time (same forms as --since).
        #[arg(long, value_parser = parse_time)]
        until: Option<u64>,
        /// Name (comm) or executable path contains this.
        #[arg(long)]
        name: Option<String>,
        /// Some argument contains this.
        #[arg(long)]
        argv: Option<String>,
        /// Started by this parent pid.
        #[arg(long)]
        ppid: Option<u32>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// A process with its ancestors and descendants.
    Tree {
        #[arg(long)]
        host: String,
        #[arg(long)]
        pid: u32,
        /// Levels of descendants.
        #[arg(long, default_value_t = 16)]
        depth: u32,
    },
    /// What the pipeline has stored, set aside and lost.
    Stats,
    /// Each host's last batch seen (the newest row stored from it), its events and kernel losses in the range
    /// (default: the last hour); STALE when it has been silent for over a minute.
    Hosts {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        #[command(flatten)]
        span: Span,
    },
    /// Files touched: opens (repeats counted), failed opens, unlinks, renames, bytes written.
    Files {
        #[command(flatten)]
        scope: Scope,
        /// Path contains this.
        #[arg(long)]
        path: Option<String>,
    },
    /// Network connections with their DNS names and the bytes moved by the time they closed.
    Connections {
        #[command(flatten)]
        scope: Scope,
        /// Remote address, DNS name or socket path contains this.
        #[arg(long)]
        remote: Option<String>,
    },
    /// DNS lookups and their answers.
    Dns {
        #[command(flatten)]
        scope: Scope,
        /// Name contains this.
        #[arg(long)]
        name: Option<String>,
    },
    /// Who talks to whom over pipes, unix sockets and shared memory, and who waited on whom.
    Ipc {
        #[command(flatten)]
        scope: Scope,
    },
    /// Containers and pods behind the cgroups seen.
    Containers {
        #[command(flatten)]
        scope: Scope,
    },
    /// Where events are known to be missing (kernel ring full, agent queue full ...).
    Losses {
        #[command(flatten)]
        scope: Scope,
    },
    /// Workload policy decisions: what the kernel denied, killed after the fact, or (in audit) would have denied.
    Enforcement {
        #[command(flatten)]
        scope: Scope,
        /// The address, path or role contains this.
        #[arg(long)]
        object: Option<String>,
    },
    /// The workload policy each node has in force: its enforcement tier, roles, modes, and what the tier cannot cover.
    Policy {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
    },
    /// Sessions a finding quarantined ([[pipeline.quarantine]]), and when each node applied it or why it did not.
    Quarantine {
        #[command(flatten)]
        scope: Scope,
        /// The session, agent or finding kind contains this.
        #[arg(long)]
        session: Option<String>,
    },
    /// LLM API calls seen in TLS plaintext: agent, model, status, tokens, time to first token, tools called.
    Llm {
        #[command(flatten)]
        models: ModelScope,
    },
    /// Agents: processes mapped by a rule, and processes discovered calling LLM APIs without one.
    Agents {
        #[command(flatten)]
        scope: Scope,
        /// Agent or process name contains this.
        #[arg(long)]
        agent: Option<String>,
    },
    /// LLM calls and tokens per hour, agent, provider and model.
    Tokens {
        #[command(flatten)]
        models: ModelScope,
    },
    /// TLS libraries found in processes: hooked, or not and why.
    Tls {
        #[command(flatten)]
        scope: Scope,
        /// Library name or its file's path contains this.
        #[arg(long)]
        library: Option<String>,
    },
    /// Training jobs on GPUs: NCCL collectives joined across ranks and hosts, CUDA kernels, timelines.
    #[command(subcommand)]
    Gpu(GpuCommand),
    /// Agent sessions (an LLM-calling process and its descendants): calls, tool calls, effects, findings.
    Sessions {
        #[command(flatten)]
        scope: SessionScope,
    },
    /// One session's LLM calls, tool calls, tool results and kernel effects in time order, with why each follows.
    Timeline {
        /// The session (see `plumb sessions`).
        #[arg(long)]
        session: String,
        /// At most this many nodes.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Where agents' words and the kernel disagree: unverified claims, out-of-scope effects, loops, bottlenecks.
    Findings {
        #[command(flatten)]
        scope: SessionScope,
        /// Only this kind: unverified_claim, out_of_scope_effect, reasoning_loop, coordination_bottleneck, guardrail.
        #[arg(long)]
        kind: Option<String>,
        /// Only this session.
        #[arg(long)]
        session: Option<String>,
    },
    /// Which intent caused an effect: a process (--pid), a file (--file) or a connection (--connection ADDR[:PORT]).
    Why {
        #[arg(long, required_unless_present_any = ["file", "connection"])]
        pid: Option<u32>,
        #[arg(long, conflicts_with = "connection")]
        file: Option<String>,
        #[arg(long)]
        connection: Option<String>,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// At most this many effects.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// Which sessions the session views look at.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionScope {
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    #[command(flatten)]
    pub span: Span,
}

impl SessionScope {
    pub(super) fn request(&self, session: Option<&String>, kind: Option<&String>) -> SessionRequest {
        SessionRequest {
            session: session.cloned().unwrap_or_default(),
            agent: self.agent.clone().unwrap_or_default(),
            host: self.host.clone().unwrap_or_default(),
            kind: kind.cloned().unwrap_or_default(),
            range: self.span.range(),
            limit: self.span.limit,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum GpuCommand {
    /// Jobs seen: ranks, hosts, communicators, collectives judged and verdicts.
    Jobs {
        #[command(flatten)]
        scope: GpuScope,
    },
    /// Ranks that arrive last at collectives: how often, how late (against the median rank), host and GPU.
    Stragglers {
        #[command(flatten)]
        scope: GpuScope,
    },
    /// Where a job stopped: per communicator the first collective some ranks never reached, and those ranks.
    Hang {
        #[command(flatten)]
        scope: GpuScope,
    },
    /// Collectives whose ranks disagreed on op, element count or datatype.
    Mismatches {
        #[command(flatten)]
        scope: GpuScope,
    },
    /// Kernels by launches per rank.
    Kernels {
        #[command(flatten)]
        scope: GpuScope,
        /// Only this rank.
        #[arg(long)]
        rank: Option<i32>,
        /// Only this process.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// One rank's (or process's) CUDA and NCCL calls in time order.
    Timeline {
        #[command(flatten)]
        scope: GpuScope,
        #[arg(long, required_unless_present = "pid")]
        rank: Option<i32>,
        #[arg(long)]
        pid: Option<u32>,
    },
}

/// Which job and time the GPU views look at.
#[derive(Debug, Clone, clap::Args)]
pub struct GpuScope {
    /// The job (PLUMBLINE_JOB, TORCHELASTIC_RUN_ID or SLURM_JOB_ID of its ranks; see `plumb gpu jobs`).
    #[arg(long)]
    pub job: Option<String>,
    /// Only this host (kernels, timeline).
    #[arg(long)]
    pub host: Option<String>,
    /// At or after this time: a duration ago (`10m`) or an RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<u64>,
    /// At or before this time.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<u64>,
    /// A window ending now (`--window 30m` is `--since 30m`).
    #[arg(long, value_parser = parse_time, conflicts_with = "since")]
    pub window: Option<u64>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

impl GpuScope {
    pub(super) fn request(&self, rank: Option<i32>, pid: Option<u32>) -> GpuRequest {
        GpuRequest {
            job: self.job.clone().unwrap_or_default(),
            range: Some(TimeRange {
                start_ns: self.since.or(self.window).unwrap_or(0),
                end_ns: self.until.unwrap_or(0),
            }),
            rank,
            host: self.host.clone().unwrap_or_default(),
            limit: self.limit,
            pid: pid.unwrap_or(0),
        }
    }
}

/// When, and how many: every list view takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct Span {
    /// At or after this time: a duration ago (`10m`) or an RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<u64>,
    /// At or before this time.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<u64>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

impl Span {
    pub(super) fn range(&self) -> Option<TimeRange> {
        Some(TimeRange { start_ns: self.since.unwrap_or(0), end_ns: self.until.unwrap_or(0) })
    }
}

/// Which activity to look at; every view takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct Scope {
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only this process.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only processes in this container (id prefix), pod (name or uid) or cgroup (part of its path).
    #[arg(long)]
    pub container: Option<String>,
    #[command(flatten)]
    pub span: Span,
}

impl Scope {
    pub(super) fn request(&self, contains: Option<&String>) -> ActivityRequest {
        ActivityRequest {
            host: self.host.clone().unwrap_or_default(),
            range: self.span.range(),
            pid: self.pid.unwrap_or(0),
            container: self.container.clone().unwrap_or_default(),
            contains: contains.cloned().unwrap_or_default(),
            limit: self.span.limit,
        }
    }
}

/// The LLM views' scope: the service matches one substring against the
/// agent, model and provider; `--agent` and `--model` each hold to their own
/// column, so the rows are narrowed here from a larger answer.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelScope {
    #[command(flatten)]
    pub scope: Scope,
    /// Agent name contains this.
    #[arg(long)]
    pub agent: Option<String>,
    /// Model contains this.
    #[arg(long)]
    pub model: Option<String>,
}

/// The most rows the service answers at once.
pub(super) const SERVICE_MAX_LIMIT: u32 = 10_000;

impl ModelScope {
    pub(super) fn request(&self) -> ActivityRequest {
        let mut request = self.scope.request(self.agent.as_ref().or(self.model.as_ref()));
        if self.agent.is_some() || self.model.is_some() {
            request.limit = SERVICE_MAX_LIMIT;
        }
        request
    }

    /// `rows` whose agent and model hold to the flags, at most `--limit`.
    pub(super) fn narrow<T>(&self, rows: Vec<T>, agent_model: impl Fn(&T) -> (&str, &str)) -> Vec<T> {
        let holds = |flag: &Option<String>, value: &str| flag.as_ref().is_none_or(|f| value.contains(f.as_str()));
        rows.into_iter()
            .filter(|row| {
                let (agent, model) = agent_model(row);
                holds(&self.agent, agent) && holds(&self.model, model)
            })
            .take(self.scope.span.limit as usize)
            .collect()
    }
}
