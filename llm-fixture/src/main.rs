//! `plumbline-llm-fixture --listen 127.0.0.1:0 --dir DIR [--stream-delay-ms 30] [--scripts SCRIPTS]
//! [--hold-requests-containing TEXT]`: writes `DIR/ca.pem`, prints `listening on 127.0.0.1:PORT`, then answers LLM
//! API calls over HTTPS until killed, appending one JSON line per exchange to `DIR/exchanges.jsonl`. With
//! `--scripts`, models `script:<name>` are answered from `SCRIPTS/<name>.json` and `GET /pages/<file>` serves
//! `SCRIPTS/<file>` (see the crate's doc). With `--hold-requests-containing`, a request whose body holds TEXT is
//! never answered: the client ends it by closing its connection.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use plumbline_llm_fixture::server::{Config, Server};

#[derive(Parser)]
#[command(version, about = "A local HTTPS server that answers in LLM providers' wire formats")]
struct Args {
    /// Address to listen on (port 0: any free port; the one chosen is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory for ca.pem (the CA clients trust) and exchanges.jsonl (what was served).
    #[arg(long)]
    dir: PathBuf,
    /// Pause between the events of a streamed answer, in milliseconds.
    #[arg(long, default_value_t = 30)]
    stream_delay_ms: u64,
    /// Directory of scripted conversations (`<name>.json`, for model `script:<name>`) and pages (`/pages/<file>`).
    #[arg(long)]
    scripts: Option<PathBuf>,
    /// A further name the server certificate carries (repeatable).
    #[arg(long = "server-name")]
    server_names: Vec<String>,
    /// Never answer a request whose body holds TEXT: its answer is held until the client closes the connection
    /// (logged at once with `held: true`), so a test decides when such a call ends, not a timer.
    #[arg(long, value_name = "TEXT")]
    hold_requests_containing: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let config = Config {
            listen: args.listen,
            dir: args.dir,
            stream_delay: Duration::from_millis(args.stream_delay_ms),
            scripts_dir: args.scripts,
            server_names: args.server_names,
            hold_requests_containing: args.hold_requests_containing,
        };
        let server = Server::bind(config).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", server.local_addr())?;
        stdout.flush()?;
        drop(stdout);
        server.serve().await;
        Ok(())
    })
}
