//! A running fixture server for tests: a child process (the `plumbline-llm-fixture` binary) or a server on a
//! thread of the test's own process; stopped when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::server::{Config, Server, CA_FILE, EXCHANGES_FILE};

/// How a fixture is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// Pause between the events of a streamed answer.
    pub stream_delay: Duration,
    /// Where `ca.pem` and `exchanges.jsonl` go; a temporary directory, removed on drop, when `None`.
    pub dir: Option<PathBuf>,
    /// Scripted conversations and pages (see [`crate::script`]); `script:` models and `/pages/` answer 404 without.
    pub scripts_dir: Option<PathBuf>,
    /// Where to listen; `127.0.0.1:0` when `None` (`0.0.0.0:0` answers on every loopback address).
    pub listen: Option<SocketAddr>,
    /// Names the server certificate carries besides `localhost` and `127.0.0.1`.
    pub server_names: Vec<String>,
    /// A request whose body holds this text is never answered: its answer is held until the client closes the
    /// connection (see [`Config::hold_requests_containing`]). `None` (the default): every request is answered.
    pub hold_requests_containing: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stream_delay: Duration::from_millis(30),
            dir: None,
            scripts_dir: None,
            listen: None,
            server_names: Vec::new(),
            hold_requests_containing: None,
        }
    }
}

enum Runner {
    Process(Child),
    Thread { shutdown: Option<tokio::sync::oneshot::Sender<()>>, thread: Option<JoinHandle<()>> },
}

pub struct Fixture {
    addr: SocketAddr,
    dir: PathBuf,
    runner: Runner,
    // Dropped after the server stops (fields drop in order).
    _tempdir: Option<tempfile::TempDir>,
}

fn directory(options: &Options) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &options.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok((dir.clone(), None))
        }
        None => {
            let tempdir = tempfile::Builder::new().prefix("llm-fixture-").tempdir()?;
            Ok((tempdir.path().to_owned(), Some(tempdir)))
        }
    }
}

impl Fixture {
    /// The binary when it can be found (`$PLUMBLINE_LLM_FIXTURE_BIN`, or built next to the running test in the
    /// same target directory), otherwise a server on a thread of this process.
    pub fn start() -> anyhow::Result<Fixture> {
        match Self::binary() {
            Some(binary) => Self::spawn(binary),
            None => Self::in_process(),
        }
    }

    /// Where the `plumbline-llm-fixture` binary is, if it was built: `$PLUMBLINE_LLM_FIXTURE_BIN`, or the target
    /// directory of the running executable (`target/debug/deps/<test>` → `target/debug/plumbline-llm-fixture`).
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("PLUMBLINE_LLM_FIXTURE_BIN") {
            return Some(PathBuf::from(path));
        }
        let exe = std::env::current_exe().ok()?;
        exe.ancestors()
            .skip(1)
            .take(3)
            .map(|dir| dir.join("plumbline-llm-fixture"))
            .find(|candidate| candidate.is_file())
    }

    /// Starts the binary with the default options.
    pub fn spawn(binary: impl AsRef<Path>) -> anyhow::Result<Fixture> {
        Self::spawn_with(binary, Options::default())
    }

    /// Starts the binary and waits for its `listening on` line.
    pub fn spawn_with(binary: impl AsRef<Path>, options: Options) -> anyhow::Result<Fixture> {
        let binary = binary.as_ref();
        let (dir, tempdir) = directory(&options)?;
        let mut command = Command::new(binary);
        command
            .arg("--listen")
            .arg(options.listen.map_or("127.0.0.1:0".to_string(), |a| a.to_string()))
            .arg("--dir")
            .arg(&dir)
            .arg("--stream-delay-ms")
            .arg(options.stream_delay.as_millis().to_string());
        if let Some(scripts) = &options.scripts_dir {
            command.arg("--scripts").arg(scripts);
        }
        for name in &options.server_names {
            command.arg("--server-name").arg(name);
        }
        if let Some(text) = &options.hold_requests_containing {
            command.arg("--hold-requests-containing").arg(text);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
        let addr = line.trim().strip_prefix("listening on ").and_then(|addr| addr.parse::<SocketAddr>().ok());
        match (read, addr) {
            (Ok(_), Some(addr)) => Ok(Fixture { addr, dir, runner: Runner::Process(child), _tempdir: tempdir }),
            (read, _) => {
                let _ = child.kill();
                let status = child.wait();
                bail!("{} did not say where it listens (read {read:?}: {line:?}; exit {status:?})", binary.display())
            }
        }
    }

    /// A server on a thread of this process, with the default options.
    pub fn in_process() -> anyhow::Result<Fixture> {
        Self::in_process_with(Options::default())
    }

    pub fn in_process_with(options: Options) -> anyhow::Result<Fixture> {
        let (dir, tempdir) = directory(&options)?;
        let config = Config {
            listen: options.listen.unwrap_or("127.0.0.1:0".parse()?),
            dir: dir.clone(),
            stream_delay: options.stream_delay,
            scripts_dir: options.scripts_dir,
            server_names: options.server_names,
            hold_requests_containing: options.hold_requests_containing,
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("llm-fixture".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(anyhow::Error::from(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                match Server::bind(config).await {
                    Ok(server) => {
                        let _ = ready_tx.send(Ok(server.local_addr()));
                        server
                            .serve_until(async {
                                let _ = shutdown_rx.await;
                            })
                            .await;
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            });
            runtime.shutdown_background();
        })?;
        let addr = ready_rx.recv().context("the fixture thread ended before it listened")??;
        Ok(Fixture {
            addr,
            dir,
            runner: Runner::Thread { shutdown: Some(shutdown_tx), thread: Some(thread) },
            _tempdir: tempdir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://localhost:PORT` (the certificate also names `127.0.0.1`: see [`Fixture::base_url_ip`]).
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url_ip(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(CA_FILE)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn exchanges_path(&self) -> PathBuf {
        self.dir.join(EXCHANGES_FILE)
    }

    /// The server's process id, when it runs as its own process.
    pub fn pid(&self) -> Option<u32> {
        match &self.runner {
            Runner::Process(child) => Some(child.id()),
            Runner::Thread { .. } => None,
        }
    }

    /// Every exchange served so far, in order (see [`crate::server::Exchange`] for the fields).
    pub fn exchanges(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.exchanges_path()).unwrap_or_default();
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    /// The exchanges once there are at least `n`, or what there is when `patience` runs out. A stream's line is
    /// written before its last event is sent, so a client that has finished has its lines there already; this is
    /// for clients still running.
    pub fn wait_for_exchanges(&self, n: usize, patience: Duration) -> Vec<Value> {
        let until = Instant::now() + patience;
        loop {
            let exchanges = self.exchanges();
            if exchanges.len() >= n || Instant::now() >= until {
                return exchanges;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        match &mut self.runner {
            Runner::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Runner::Thread { shutdown, thread } => {
                if let Some(shutdown) = shutdown.take() {
                    let _ = shutdown.send(());
                }
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}
