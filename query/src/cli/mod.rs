//! `plumb`: asks the query service and prints a table or JSON.

mod render;
mod render_gpu;
mod render_sessions;
mod time_arg;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use plumbline_proto::v1::{
    query_service_client::QueryServiceClient, ActivityRequest, GpuRequest, ListProcessesRequest, PipelineStatsRequest,
    ProcessTreeRequest, SessionRequest, TimeRange, WhyRequest,
};
use tonic::transport::Channel;

pub use time_arg::parse_time;

#[derive(Debug, Parser)]
#[command(name = "plumb", version, about = "Ask Plumbline what the kernel saw")]
pub struct Cli {
    /// Query service address.
    #[arg(long, global = true, env = "PLUMB_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
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
    fn request(&self, session: Option<&String>, kind: Option<&String>) -> SessionRequest {
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
    fn request(&self, rank: Option<i32>, pid: Option<u32>) -> GpuRequest {
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
    fn range(&self) -> Option<TimeRange> {
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
    fn request(&self, contains: Option<&String>) -> ActivityRequest {
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
const SERVICE_MAX_LIMIT: u32 = 10_000;

impl ModelScope {
    fn request(&self) -> ActivityRequest {
        let mut request = self.scope.request(self.agent.as_ref().or(self.model.as_ref()));
        if self.agent.is_some() || self.model.is_some() {
            request.limit = SERVICE_MAX_LIMIT;
        }
        request
    }

    /// `rows` whose agent and model hold to the flags, at most `--limit`.
    fn narrow<T>(&self, rows: Vec<T>, agent_model: impl Fn(&T) -> (&str, &str)) -> Vec<T> {
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

/// Entry point of the `plumb` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(&cli)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("plumb: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command and returns what to print.
pub async fn run(cli: &Cli) -> anyhow::Result<String> {
    let mut client = connect(&cli.addr).await?;
    match &cli.command {
        Command::Ps { host, since, until, name, argv, ppid, limit } => {
            let request = ListProcessesRequest {
                host: host.clone().unwrap_or_default(),
                range: Some(TimeRange { start_ns: since.unwrap_or(0), end_ns: until.unwrap_or(0) }),
                name_contains: name.clone().unwrap_or_default(),
                argv_contains: argv.clone().unwrap_or_default(),
                ppid: ppid.unwrap_or(0),
                limit: *limit,
            };
            let response = client.list_processes(request).await.map_err(status_error)?.into_inner();
            Ok(match cli.output {
                Output::Json => json(&response.processes)?,
                Output::Table => render::process_table(&response.processes),
            })
        }
        Command::Tree { host, pid, depth } => {
            let request = ProcessTreeRequest { host: host.clone(), pid: *pid, start_key_ns: 0, max_depth: *depth };
            let response = client.process_tree(request).await.map_err(status_error)?.into_inner();
            Ok(match cli.output {
                Output::Json => json(&response)?,
                Output::Table => render::process_tree(&response),
            })
        }
        Command::Stats => {
            let response = client.pipeline_stats(PipelineStatsRequest {}).await.map_err(status_error)?.into_inner();
            Ok(match cli.output {
                Output::Json => json(&response)?,
                Output::Table => render::pipeline_stats(&response),
            })
        }
        Command::Files { scope, path } => {
            let response = client.list_file_activity(scope.request(path.as_ref())).await.map_err(status_error)?;
            let files = response.into_inner().files;
            output(cli, &files, render::files)
        }
        Command::Connections { scope, remote } => {
            let response = client.list_connections(scope.request(remote.as_ref())).await.map_err(status_error)?;
            output(cli, &response.into_inner().connections, render::connections)
        }
        Command::Dns { scope, name } => {
            let response = client.list_dns_queries(scope.request(name.as_ref())).await.map_err(status_error)?;
            output(cli, &response.into_inner().queries, render::dns)
        }
        Command::Ipc { scope } => {
            let response = client.list_ipc_edges(scope.request(None)).await.map_err(status_error)?;
            output(cli, &response.into_inner().edges, render::ipc)
        }
        Command::Containers { scope } => {
            let response = client.list_containers(scope.request(None)).await.map_err(status_error)?;
            output(cli, &response.into_inner().containers, render::containers)
        }
        Command::Losses { scope } => {
            let response = client.list_loss_markers(scope.request(None)).await.map_err(status_error)?;
            output(cli, &response.into_inner().losses, render::losses)
        }
        Command::Llm { models } => {
            let response = client.list_llm_calls(models.request()).await.map_err(status_error)?;
            let calls = models.narrow(response.into_inner().calls, |c| (&c.agent, &c.model));
            output(cli, &calls, render::llm_calls)
        }
        Command::Agents { scope, agent } => {
            let response = client.list_agents(scope.request(agent.as_ref())).await.map_err(status_error)?;
            output(cli, &response.into_inner().agents, render::agents)
        }
        Command::Tokens { models } => {
            let response = client.token_usage(models.request()).await.map_err(status_error)?;
            let rows = models.narrow(response.into_inner().rows, |r| (&r.agent, &r.model));
            output(cli, &rows, render::token_usage)
        }
        Command::Tls { scope, library } => {
            let response = client.list_tls_stacks(scope.request(library.as_ref())).await.map_err(status_error)?;
            output(cli, &response.into_inner().stacks, render::tls_stacks)
        }
        Command::Gpu(command) => gpu(cli, &mut client, command).await,
        Command::Sessions { scope } => {
            let response = client.list_sessions(scope.request(None, None)).await.map_err(status_error)?;
            output(cli, &response.into_inner().sessions, render_sessions::sessions)
        }
        Command::Timeline { session, limit } => {
            let request = SessionRequest { session: session.clone(), limit: *limit, ..Default::default() };
            let response = client.session_timeline(request).await.map_err(status_error)?.into_inner();
            match cli.output {
                Output::Json => json(&response),
                Output::Table => Ok(render_sessions::timeline(&response)),
            }
        }
        Command::Findings { scope, kind, session } => {
            let response =
                client.list_findings(scope.request(session.as_ref(), kind.as_ref())).await.map_err(status_error)?;
            output(cli, &response.into_inner().findings, render_sessions::findings)
        }
        Command::Why { pid, file, connection, host, limit } => {
            let request = WhyRequest {
                host: host.clone().unwrap_or_default(),
                pid: pid.unwrap_or(0),
                contains: file.clone().or_else(|| connection.clone()).unwrap_or_default(),
                limit: *limit,
            };
            let response = client.why(request).await.map_err(status_error)?;
            output(cli, &response.into_inner().chains, render_sessions::why)
        }
    }
}

async fn gpu(cli: &Cli, client: &mut QueryServiceClient<Channel>, command: &GpuCommand) -> anyhow::Result<String> {
    match command {
        GpuCommand::Jobs { scope } => {
            let response = client.list_gpu_jobs(scope.request(None, None)).await.map_err(status_error)?;
            output(cli, &response.into_inner().jobs, render_gpu::jobs)
        }
        GpuCommand::Stragglers { scope } => {
            let response = client.gpu_stragglers(scope.request(None, None)).await.map_err(status_error)?;
            output(cli, &response.into_inner().ranks, render_gpu::stragglers)
        }
        GpuCommand::Hang { scope } => {
            let response = client.gpu_hang(scope.request(None, None)).await.map_err(status_error)?;
            let response = response.into_inner();
            match cli.output {
                Output::Json => json(&response),
                Output::Table => Ok(render_gpu::hangs(&response)),
            }
        }
        GpuCommand::Mismatches { scope } => {
            let response = client.gpu_mismatches(scope.request(None, None)).await.map_err(status_error)?;
            output(cli, &response.into_inner().mismatches, render_gpu::mismatches)
        }
        GpuCommand::Kernels { scope, rank, pid } => {
            let response = client.gpu_kernels(scope.request(*rank, *pid)).await.map_err(status_error)?;
            output(cli, &response.into_inner().kernels, render_gpu::kernels)
        }
        GpuCommand::Timeline { scope, rank, pid } => {
            let response = client.gpu_timeline(scope.request(*rank, *pid)).await.map_err(status_error)?;
            output(cli, &response.into_inner().calls, render_gpu::timeline)
        }
    }
}

/// A list as JSON or as the view's table.
fn output<T: serde::Serialize>(cli: &Cli, rows: &[T], table: fn(&[T]) -> String) -> anyhow::Result<String> {
    match cli.output {
        Output::Json => json(&rows),
        Output::Table => Ok(table(rows)),
    }
}

async fn connect(addr: &str) -> anyhow::Result<QueryServiceClient<Channel>> {
    QueryServiceClient::connect(addr.to_string()).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the query service at {addr}: {e} (is `plumbline run` or `plumbline query run` up?)"
        )
    })
}

fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", status.code(), status.message())
}

fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn llm_views_parse_their_flags() {
        let cli =
            Cli::try_parse_from(["plumb", "llm", "--agent", "coder", "--model", "gpt", "--since", "1h", "-o", "json"])
                .unwrap();
        let Command::Llm { models } = cli.command else { panic!() };
        assert_eq!((models.agent.as_deref(), models.model.as_deref()), (Some("coder"), Some("gpt")));
        assert!(models.scope.span.since.is_some());
        for args in [
            &["plumb", "agents", "--agent", "x"][..],
            &["plumb", "tokens", "--model", "claude"],
            &["plumb", "tls", "--library", "go"],
        ] {
            Cli::try_parse_from(args).unwrap();
        }
    }

    fn model_scope(agent: Option<&str>, model: Option<&str>, limit: u32) -> ModelScope {
        let scope = Scope { host: None, pid: None, container: None, span: Span { since: None, until: None, limit } };
        ModelScope { scope, agent: agent.map(String::from), model: model.map(String::from) }
    }

    #[test]
    fn agent_and_model_each_hold_to_their_own_column_within_the_limit() {
        let plain = model_scope(None, None, 7).request();
        assert_eq!((plain.contains.as_str(), plain.limit), ("", 7));
        let narrowed = model_scope(Some("coder"), Some("gpt"), 2);
        let request = narrowed.request();
        assert_eq!((request.contains.as_str(), request.limit), ("coder", SERVICE_MAX_LIMIT));
        let rows = vec![
            ("coder", "gpt-4o"),
            ("gpt-fan", "claude"),
            ("coder", "claude"),
            ("coder-2", "gpt-4o-mini"),
            ("coder", "gpt-5"),
        ];
        assert_eq!(narrowed.narrow(rows, |r| (r.0, r.1)), vec![("coder", "gpt-4o"), ("coder-2", "gpt-4o-mini")]);
    }

    #[test]
    fn gpu_views_parse_their_flags() {
        let cli = Cli::try_parse_from(["plumb", "gpu", "stragglers", "--job", "llama", "--window", "30m"]).unwrap();
        let Command::Gpu(GpuCommand::Stragglers { scope }) = cli.command else { panic!() };
        let request = scope.request(None, None);
        assert_eq!(request.job, "llama");
        assert!(request.range.unwrap().start_ns > 0, "the window starts 30 minutes ago");
        for args in [
            &["plumb", "gpu", "jobs"][..],
            &["plumb", "gpu", "hang", "--job", "j"],
            &["plumb", "gpu", "mismatches"],
            &["plumb", "gpu", "kernels", "--rank", "3"],
            &["plumb", "gpu", "timeline", "--rank", "3", "--job", "j", "-o", "json"],
            &["plumb", "gpu", "timeline", "--pid", "77"],
        ] {
            Cli::try_parse_from(args).unwrap();
        }
        assert!(Cli::try_parse_from(["plumb", "gpu", "timeline", "--job", "j"]).is_err(), "needs a rank or a pid");
    }

    #[test]
    fn ps_filters_parse() {
        let cli = Cli::try_parse_from([
            "plumb", "ps", "--host", "gpu-01", "--argv", "marker", "--since", "10m", "-o", "json",
        ])
        .unwrap();
        assert_eq!(cli.output, Output::Json);
        let Command::Ps { host, argv, since, .. } = cli.command else { panic!() };
        assert_eq!((host.as_deref(), argv.as_deref()), (Some("gpu-01"), Some("marker")));
        assert!(since.unwrap() > 0);
    }
}
