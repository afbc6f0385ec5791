//! Running Plumbline's real binaries against real services, for the
//! end-to-end tests. Every run gets its own host name, topic and database, so
//! runs never see each other's data.

#![allow(dead_code)]

pub mod browser;
pub mod checks;
pub mod dns_server;
pub mod guest;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// How long the pipeline may take to show something. Generous: these
/// machines are shared; nothing here measures speed.
pub const PATIENCE: Duration = Duration::from_secs(180);

/// `plumbline run`'s configuration for the scripted agents (`agents/agent.py`)
/// calling the in-process LLM fixture: its endpoint, the rule naming them
/// `scripted`, and sessions settled within a second.
pub const SCRIPTED_AGENTS: &str = "[capture.intent]\n\
    [[capture.intent.endpoints]]\nprovider = \"openai\"\nhost = \"localhost\"\n\
    path_prefix = \"/openai/v1/chat/completions\"\nformat = \"openai_chat\"\n\
    [[capture.intent.agents]]\nagent = \"scripted\"\npriority = 10\nfield = \"COMMAND_LINE\"\n\
    pattern = 'agent\\.py'\n\
    [pipeline.sessions]\nsettle_ms = 1000\nwindow_ms = 30000\negress_allow = [\"pypi.org\"]\n";

pub fn kafka_brokers() -> String {
    std::env::var("PLUMBLINE_TEST_KAFKA")
        .expect("PLUMBLINE_TEST_KAFKA is not set: run the tests with scripts/test.sh, which starts a broker")
}

pub fn clickhouse_url() -> String {
    std::env::var("PLUMBLINE_TEST_CLICKHOUSE")
        .expect("PLUMBLINE_TEST_CLICKHOUSE is not set: run the tests with scripts/test.sh, which starts ClickHouse")
}

/// A name unique to this run, usable as host, topic and database name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A component process, stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Component {
    pub name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Component {
    /// `plumbline <args...>`, logging to a file in `dir`.
    pub fn start(name: &'static str, dir: &Path, args: &[&str]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { name, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Still running (not crashed).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL: a crash, no chance to flush or commit.
    pub fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill_hard();
        false
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        if self.is_running() {
            self.stop();
        }
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log());
        }
    }
}

/// The fleet's central components on real Kafka and ClickHouse: an
/// aggregator and a query service, with a topic and database of their own.
pub struct FleetServices {
    pub topic: String,
    /// The query service's gRPC address.
    pub addr: String,
    /// The aggregator's `/metrics` address.
    pub aggregator_metrics: String,
    /// The query service's `/metrics` address.
    pub query_metrics: String,
    pub aggregator: Component,
    pub query: Component,
    /// Holds the logs: dropped after the components, which print theirs
    /// when a test fails.
    pub dir: tempfile::TempDir,
}

impl FleetServices {
    /// Starts both; `aggregator_extra` is appended to the aggregator's
    /// configuration.
    pub fn start(name: &str, aggregator_extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let topic = unique(&format!("plumbline-{name}"));
        let database = unique(&format!("plumbline_{name}"));
        let port = free_port();
        let aggregator_metrics = format!("127.0.0.1:{}", free_port());
        let query_metrics = format!("127.0.0.1:{}", free_port());
        let (brokers, clickhouse) = (kafka_brokers(), clickhouse_url());
        let store = format!("[store]\nkind = \"clickhouse\"\nurl = \"{clickhouse}\"\ndatabase = \"{database}\"\n");
        let aggregator_toml = write_config(
            dir.path(),
            "aggregator.toml",
            &format!(
                "[source]\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ngroup_id = \"{topic}\"\n\
                 session_timeout_ms = 6000\n[metrics]\nlisten = \"{aggregator_metrics}\"\n{store}{aggregator_extra}"
            ),
        );
        let query_toml = write_config(
            dir.path(),
            "query.toml",
            &format!("listen = \"127.0.0.1:{port}\"\n[metrics]\nlisten = \"{query_metrics}\"\n{store}"),
        );
        let aggregator =
            Component::start("aggregator", dir.path(), &["aggregator", "run", "--config", &aggregator_toml]);
        let query = Component::start("query", dir.path(), &["query", "run", "--config", &query_toml]);
        let addr = format!("http://127.0.0.1:{port}");
        FleetServices { topic, addr, aggregator_metrics, query_metrics, aggregator, query, dir }
    }
}

/// Writes a configuration file into `dir`; returns its path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs `plumb` against `addr` with `-o json`; `None` when it failed (the
/// service may not be up yet).
pub fn plumb_json(addr: &str, args: &[&str]) -> Option<Value> {
    let output = plumb(addr, &[args, &["-o", "json"]].concat());
    output.status.success().then(|| {
        serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!(
                "plumb {args:?} -o json printed no JSON ({err}):\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    })
}

pub fn plumb(addr: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plumb")).arg("--addr").arg(addr).args(args).output().unwrap()
}

/// Polls `probe` until it returns `Some`, or fails after [`PATIENCE`] saying
/// what was awaited.
pub fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Polls `probe` until it returns `Ok`, or fails after [`PATIENCE`] saying
/// what was awaited and what the last `Err` said was still wrong.
pub fn eventually_showing<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(wrong) => assert!(Instant::now() < deadline, "gave up waiting for {what}; last seen:\n{wrong}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Processes `plumb ps` lists for these filters.
pub fn processes(addr: &str, filters: &[&str]) -> Vec<Value> {
    plumb_json(addr, &[&["ps"], filters].concat()).and_then(|v| v.as_array().cloned()).unwrap_or_default()
}

/// Waits until the pipeline shows this test process (seeded from /proc when
/// the agent started): proof that capture, transport, store and query are up.
pub fn wait_until_this_process_is_visible(addr: &str, host: &str) {
    let me = std::process::id();
    eventually("this test process to be listed (agent attached and pipeline flowing)", || {
        processes(addr, &["--host", host, "--limit", "10000"]).iter().any(|p| p["pid"] == me).then_some(())
    });
}

/// Runs `/bin/sh -c 'exit 7' <marker>` and checks the shell's own view.
pub fn run_marked_shell(marker: &str) {
    let status = Command::new("/bin/sh").args(["-c", "exit 7", marker]).status().unwrap();
    assert_eq!(status.code(), Some(7));
}

/// Checks what the pipeline recorded for [`run_marked_shell`]: listed with
/// the right parent, argv and exit code, and a child of this process in its
/// process tree.
pub fn assert_marked_shell_recorded(addr: &str, host: &str, marker: &str) {
    let me = std::process::id();
    // `plumb ps --argv <marker>` itself carries the marker in its argv and is
    // captured too: pick the shell by its executable.
    let shell = eventually("the marked shell to be listed with its exit", || {
        processes(addr, &["--host", host, "--argv", marker, "--name", "/bin/sh"])
            .into_iter()
            .find(|p| p["exited"] == true && p["exe"] == "/bin/sh")
    });
    assert_eq!(shell["ppid"], me, "{shell}");
    assert_eq!(shell["argv"], serde_json::json!(["/bin/sh", "-c", "exit 7", marker]), "{shell}");
    assert_eq!(shell["exit_code"], 7, "{shell}");
    assert_eq!(shell["exe"], "/bin/sh", "{shell}");
    assert_eq!(shell["host"], host, "{shell}");

    let pid = me.to_string();
    let tree = plumb_json(addr, &["tree", "--host", host, "--pid", &pid]).expect("plumb tree");
    assert_eq!(tree["root"]["process"]["pid"], me, "{tree}");
    let children = tree["root"]["children"].as_array().expect("children");
    assert!(
        children.iter().any(|c| c["process"]["pid"] == shell["pid"] && c["process"]["argv"][3] == marker),
        "the shell is a child of this process in its tree: {tree}"
    );
}

/// `plumbline run` (agent, channel, aggregator, SQLite, query service) with
/// its own host name, database, gRPC port and metrics port.
pub struct Embedded {
    pub host: String,
    pub addr: String,
    pub metrics: String,
    pub process: Component,
    /// Dropped last (fields drop in order): `plumbline run` stops while its
    /// database and configuration are still there.
    pub _dir: tempfile::TempDir,
}

impl Embedded {
    /// Starts it with `extra` TOML appended to its configuration, and waits
    /// until the pipeline shows this test process.
    pub fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = unique("capture-host");
        let (port, metrics_port) = (free_port(), free_port());
        let config = dir.path().join("plumbline.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\n[node]\nhost = \"{host}\"\n[sqlite]\npath = \"{}\"\n\
                 [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n{extra}",
                dir.path().join("plumbline.db").display()
            ),
        )
        .unwrap();
        let process = Component::start("plumbline-run", dir.path(), &["run", "--config", config.to_str().unwrap()]);
        let addr = format!("http://127.0.0.1:{port}");
        wait_until_this_process_is_visible(&addr, &host);
        Embedded { host, addr, metrics: format!("127.0.0.1:{metrics_port}"), process, _dir: dir }
    }

    /// `plumb <view> --host <ours> <args> -o json` as a list.
    pub fn view(&self, view: &str, args: &[&str]) -> Vec<Value> {
        plumb_json(&self.addr, &[&[view, "--host", &self.host, "--limit", "10000"], args].concat())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// The agent's Prometheus exposition, with the aggregator's after it.
    pub fn metrics(&self) -> String {
        metrics_at(&self.metrics)
    }
}

/// The Prometheus exposition served at `addr`.
pub fn metrics_at(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The Python interpreter itself, found once through `python3` on the PATH.
/// Tests start it directly: where `python3` is pyenv's shim, a bash script,
/// each start would also run about 240 programs and open about 1,400 files,
/// which every agent on the host then has to read.
pub fn python3() -> &'static str {
    static PYTHON3: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON3.get_or_init(|| {
        let output = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
        assert!(output.status.success(), "python3 runs");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    })
}

/// Runs a Python program and returns its pid and exit status.
pub fn python(program: &str) -> (u32, std::process::ExitStatus) {
    let mut child = Command::new(python3()).arg("-c").arg(program).spawn().unwrap();
    let pid = child.id();
    (pid, child.wait().unwrap())
}
