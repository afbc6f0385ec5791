//! An outage of ClickHouse or of the broker means buffering and retry, not
//! loss: a process that runs while a service is away is still found once it is
//! back. Each test runs a private instance of the service it takes away
//! (scripts/services.sh with its own ports and state), so nothing else is
//! disturbed. Needs root, the installed services and PLUMBLINE_TEST_KAFKA.

mod support;

use std::{path::PathBuf, process::Command};

use support::*;

/// A private ClickHouse or broker, stopped when dropped.
struct PrivateService {
    service: &'static str,
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl PrivateService {
    fn clickhouse() -> Self {
        let env = vec![
            ("PLUMBLINE_CLICKHOUSE_HTTP_PORT", free_port().to_string()),
            ("PLUMBLINE_CLICKHOUSE_TCP_PORT", free_port().to_string()),
        ];
        Self::started("clickhouse", env)
    }

    fn kafka() -> Self {
        Self::started("kafka", vec![("PLUMBLINE_KAFKA_PORT", free_port().to_string())])
    }

    fn started(service: &'static str, env: Vec<(&'static str, String)>) -> Self {
        let this = Self { service, dir: tempfile::tempdir().unwrap(), env };
        this.run("start");
        this
    }

    fn run(&self, verb: &str) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh");
        let status = Command::new("bash")
            .arg(script)
            .args([verb, self.service])
            .env("PLUMBLINE_SERVICES_DIR", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .status()
            .unwrap();
        assert!(status.success(), "services.sh {verb} {}", self.service);
    }

    fn port(&self, name: &str) -> &str {
        &self.env.iter().find(|(k, _)| *k == name).unwrap().1
    }

    fn pid(&self) -> i32 {
        let file = if self.service == "kafka" { "tansu.pid" } else { "clickhouse.pid" };
        std::fs::read_to_string(self.dir.path().join(file)).unwrap().trim().parse().unwrap()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the service process we started.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }
}

impl Drop for PrivateService {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.run("stop");
    }
}

struct Fleet {
    _dir: tempfile::TempDir,
    host: String,
    addr: String,
    aggregator: Component,
    _query: Component,
    _agent: Component,
}

fn fleet(brokers: &str, clickhouse: &str) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let host = unique("outage-host");
    let topic = unique("plumbline-outage");
    let port = free_port();
    let store = format!(
        "[store]\nkind = \"clickhouse\"\nurl = \"{clickhouse}\"\ndatabase = \"{}\"\n",
        unique("plumbline_outage")
    );
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let aggregator = write(
        "aggregator.toml",
        format!("[source]\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ngroup_id = \"{topic}\"\n{store}"),
    );
    let query = write("query.toml", format!("listen = \"127.0.0.1:{port}\"\n{store}"));
    let agent = write(
        "agent.toml",
        format!("[node]\nhost = \"{host}\"\n[sink]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\n"),
    );
    let aggregator = Component::start("aggregator", dir.path(), &["aggregator", "run", "--config", &aggregator]);
    let query = Component::start("query", dir.path(), &["query", "run", "--config", &query]);
    let agent = Component::start("agent", dir.path(), &["agent", "run", "--config", &agent]);
    Fleet { _dir: dir, host, addr: format!("http://127.0.0.1:{port}"), aggregator, _query: query, _agent: agent }
}

#[test]
fn a_process_that_runs_while_clickhouse_is_down_is_stored_once_it_is_back() {
    let clickhouse = PrivateService::clickhouse();
    let url = format!("http://127.0.0.1:{}", clickhouse.port("PLUMBLINE_CLICKHOUSE_HTTP_PORT"));
    let fleet = fleet(&kafka_brokers(), &url);
    wait_until_this_process_is_visible(&fleet.addr, &fleet.host);

    clickhouse.run("stop");
    let refused = plumb(&fleet.addr, &["ps", "--host", &fleet.host]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(stderr.contains("unavailable"), "the query service says its store is unavailable: {stderr}");

    let marker = unique("plumb-outage-clickhouse");
    run_marked_shell(&marker);
    eventually("the aggregator to hold rows while ClickHouse is down", || {
        fleet.aggregator.log().contains("store unavailable; holding the rows").then_some(())
    });

    clickhouse.run("start");
    assert_marked_shell_recorded(&fleet.addr, &fleet.host, &marker);
}

#[test]
fn a_process_that_runs_while_the_broker_hangs_is_stored_once_it_answers_again() {
    let broker = PrivateService::kafka();
    let brokers = format!("127.0.0.1:{}", broker.port("PLUMBLINE_KAFKA_PORT"));
    let fleet = fleet(&brokers, &clickhouse_url());
    wait_until_this_process_is_visible(&fleet.addr, &fleet.host);

    broker.signal(libc::SIGSTOP);
    let marker = unique("plumb-outage-broker");
    run_marked_shell(&marker);
    // Long enough for the agent to have flushed the batch into a broker that
    // does not answer.
    std::thread::sleep(std::time::Duration::from_secs(5));
    broker.signal(libc::SIGCONT);
    assert_marked_shell_recorded(&fleet.addr, &fleet.host, &marker);
}
