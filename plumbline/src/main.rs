//! `plumbline`: every Plumbline component behind one binary.
//!
//! - `plumbline run`: everything on this host, no Kafka or ClickHouse needed.
//! - `plumbline agent run`, `plumbline aggregator run`, `plumbline query run`:
//!   the fleet components, each with `validate` to check its configuration.
//! - `plumbline policy validate FILE`: check an enforcement policy file.

#[cfg(test)]
mod config_reference;
mod embedded;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};
use plumbline_config::Validate;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// mimalloc: the agent and aggregator allocate and free millions of small
/// rows and strings a second; glibc's allocator spent a tenth of the
/// single-host process's time consolidating and kept freed memory resident.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "plumbline", version, about = "Plumbline: what agents and training jobs did, as the kernel saw it")]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax); RUST_LOG works too.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything on this host: agent, in-process channel, aggregator,
    /// SQLite and the query service (needs root for the eBPF programs).
    Run(ConfigArg),
    /// Check `plumbline run`'s configuration and print it with defaults.
    Validate(ConfigArg),
    /// The node agent: capture on this host and publish to Kafka.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// The aggregator: consume Kafka, write ClickHouse.
    Aggregator {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// The query service: answer gRPC (and `plumb`) from ClickHouse.
    Query {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Enforcement policies: what each workload may execute, open and connect to.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Run a workload under a role of the running agent's policy.
    Enforce {
        #[command(subcommand)]
        command: EnforceCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EnforceCommand {
    /// Enrol this process in ROLE through the agent, then run COMMAND in it:
    /// COMMAND and everything it starts are confined by ROLE from their
    /// first instruction.
    Wrap {
        /// A role of the agent's policy.
        role: String,
        /// The agent's enrolment socket (`[capture.enforce] control_socket`).
        #[arg(long, default_value = "/run/plumbline/enforce.sock")]
        socket: PathBuf,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check a policy file: print what it confines, or the key at fault and exit non-zero.
    Validate {
        /// The policy file (TOML).
        file: PathBuf,
        /// An agent (or `plumbline run`) configuration: the LLM providers of
        /// its `[[capture.intent.endpoints]]` are known besides the catalog's.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// TOML configuration file; without one, defaults and environment overrides apply.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Capture until SIGINT/SIGTERM.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Where batches go, overriding `[sink]`: `stdout` prints one JSON line per event.
        #[arg(long, value_parser = ["kafka", "stdout"])]
        output: Option<String>,
    },
    /// Check the configuration and print it with defaults.
    Validate(ConfigArg),
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Run until SIGINT/SIGTERM.
    Run(ConfigArg),
    /// Check the configuration and print it with defaults.
    Validate(ConfigArg),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("plumbline: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(arg) => embedded::run(load(&arg, embedded::ENV_PREFIX)?, shutdown_on_signal()).await,
        Command::Validate(arg) => validate::<embedded::EmbeddedConfig>(&arg, embedded::ENV_PREFIX),
        Command::Agent { command: AgentCommand::Run { config, output } } => {
            let mut config: plumbline_node_agent::AgentConfig =
                load(&config, plumbline_node_agent::config::ENV_PREFIX)?;
            if output.as_deref() == Some("stdout") {
                config.sink = plumbline_node_agent::SinkConfig::Stdout;
            }
            let sink = plumbline_node_agent::sink_from_config(&config.sink).await?;
            // Quarantines come on the control topic, next to the events topic.
            let node = plumbline_node_agent::node::identity(config.node.host.as_deref())?;
            let control = plumbline_node_agent::enforce::quarantine::control_from_config(&config.sink, &node).await;
            plumbline_node_agent::run_with_control(config.settings(), sink, control, shutdown_on_signal())
                .await
                .map(drop)
        }
        Command::Agent { command: AgentCommand::Validate(arg) } => {
            validate::<plumbline_node_agent::AgentConfig>(&arg, plumbline_node_agent::config::ENV_PREFIX)
        }
        Command::Aggregator { command: ServiceCommand::Run(arg) } => {
            let config = load(&arg, plumbline_aggregator::config::ENV_PREFIX)?;
            plumbline_aggregator::run(&config, shutdown_on_signal()).await.map(drop)
        }
        Command::Aggregator { command: ServiceCommand::Validate(arg) } => {
            validate::<plumbline_aggregator::AggregatorConfig>(&arg, plumbline_aggregator::config::ENV_PREFIX)
        }
        Command::Query { command: ServiceCommand::Run(arg) } => {
            let config = load(&arg, plumbline_query::config::ENV_PREFIX)?;
            plumbline_query::run(&config, shutdown_on_signal()).await
        }
        Command::Query { command: ServiceCommand::Validate(arg) } => {
            validate::<plumbline_query::QueryConfig>(&arg, plumbline_query::config::ENV_PREFIX)
        }
        Command::Policy { command: PolicyCommand::Validate { file, config } } => {
            validate_policy(&file, config.as_deref())
        }
        Command::Enforce { command: EnforceCommand::Wrap { role, socket, command } } => wrap(&role, &socket, &command),
    }
}

/// Enrols this process in `role`, then becomes `command` (exec keeps the
/// enrolment). Returns only on failure.
fn wrap(role: &str, socket: &Path, command: &[String]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let pod = plumbline_node_agent::enforce::control::enroll_self(socket, role)
        .map_err(|reason| anyhow::anyhow!("enrolling in role {role:?}: {reason}"))?;
    tracing::debug!(role, pod, "enrolled");
    let err = std::process::Command::new(&command[0]).args(&command[1..]).exec();
    Err(anyhow::Error::new(err).context(format!("running {:?}", command[0])))
}

/// Prints what the policy does and its warnings, or fails naming the key at
/// fault.
fn validate_policy(file: &Path, config: Option<&Path>) -> anyhow::Result<()> {
    use plumbline_node_agent::enforce::policy::{Policy, PolicyError};
    let providers = match config {
        Some(config) => endpoint_providers(config)?,
        None => Vec::new(),
    };
    let text = std::fs::read_to_string(file)
        .map_err(|source| PolicyError::Read { path: file.to_path_buf(), source })
        .map_err(anyhow::Error::new)?;
    let policy = Policy::parse_knowing(&text, &providers).map_err(|err| match err {
        PolicyError::Read { .. } => anyhow::Error::new(err),
        err => anyhow::anyhow!("{}: {err}", file.display()),
    })?;
    print!("{}", policy.summary());
    for warning in policy.warnings() {
        eprintln!("warning: {warning}");
    }
    eprintln!("policy is valid");
    Ok(())
}

/// The providers of the `[[capture.intent.endpoints]]` in configuration
/// file `config`.
fn endpoint_providers(config: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(config).map_err(|e| anyhow::anyhow!("reading {}: {e}", config.display()))?;
    let value: toml::Value =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not TOML: {e}", config.display()))?;
    let endpoints = value.get("capture").and_then(|c| c.get("intent")).and_then(|i| i.get("endpoints"));
    let mut providers: Vec<String> = endpoints
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("provider")?.as_str().map(str::to_string))
        .collect();
    providers.sort_unstable();
    providers.dedup();
    Ok(providers)
}

fn load<T: DeserializeOwned + Validate>(arg: &ConfigArg, env_prefix: &str) -> anyhow::Result<T> {
    Ok(plumbline_config::load(arg.config.as_deref(), env_prefix)?)
}

/// Prints the effective configuration, defaults filled in, as TOML.
fn validate<T: DeserializeOwned + Validate + serde::Serialize>(
    arg: &ConfigArg,
    env_prefix: &str,
) -> anyhow::Result<()> {
    let config: T = load(arg, env_prefix)?;
    print!("{}", toml::to_string_pretty(&config)?);
    eprintln!("configuration is valid");
    Ok(())
}

/// Cancelled on SIGINT or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}
