//! `plumb`: asks the query service and prints a table or JSON.

mod args;
mod connect;
mod render;
mod render_gpu;
mod render_hosts;
mod render_policy;
mod render_quarantine;
mod render_sessions;
mod time_arg;

use std::process::ExitCode;

use clap::Parser;
use connect::{connect, Client};
use plumbline_proto::v1::{
    ActivityRequest, ListProcessesRequest, PipelineStatsRequest, ProcessTreeRequest, SessionRequest, TimeRange,
    WhyRequest,
};

pub use args::*;
pub use time_arg::parse_time;

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
    let mut client = connect(cli).await?;
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
        Command::Hosts { host, span } => {
            let request = ActivityRequest {
                host: host.clone().unwrap_or_default(),
                range: span.range(),
                limit: span.limit,
                ..Default::default()
            };
            let response = client.host_health(request).await.map_err(status_error)?.into_inner();
            Ok(match cli.output {
                Output::Json => json(&response.hosts)?,
                Output::Table => render_hosts::hosts(&response),
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
        Command::Enforcement { scope, object } => {
            let response = client.list_enforcement(scope.request(object.as_ref())).await.map_err(status_error)?;
            output(cli, &response.into_inner().decisions, render::enforcement)
        }
        Command::Policy { host } => {
            let host = host.clone().unwrap_or_default();
            let request = ActivityRequest { host, limit: args::SERVICE_MAX_LIMIT, ..Default::default() };
            let response = client.list_policy(request).await.map_err(status_error)?;
            output(cli, &response.into_inner().nodes, render_policy::policy)
        }
        Command::Quarantine { scope, session } => {
            let response = client.list_quarantines(scope.request(session.as_ref())).await.map_err(status_error)?;
            output(cli, &response.into_inner().quarantines, render_quarantine::quarantines)
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

async fn gpu(cli: &Cli, client: &mut Client, command: &GpuCommand) -> anyhow::Result<String> {
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

fn status_error(status: tonic::Status) -> anyhow::Error {
    if status.code() == tonic::Code::Unauthenticated {
        return anyhow::anyhow!(
            "the query service wants a token: set {} or --token-file ({})",
            connect::TOKEN_ENV,
            status.message()
        );
    }
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
