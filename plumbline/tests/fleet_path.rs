//! The fleet road, end to end on real parts: the kernel (eBPF) → node agent →
//! Kafka (tansu) → aggregator → ClickHouse → query service (gRPC) → `plumb`.
//! Needs root, PLUMBLINE_TEST_KAFKA and PLUMBLINE_TEST_CLICKHOUSE
//! (scripts/test.sh provides them).

mod support;

use support::*;

struct Fleet {
    _dir: tempfile::TempDir,
    host: String,
    addr: String,
    aggregator: Component,
    query: Component,
    agent: Component,
}

fn start_fleet() -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let host = unique("e2e-host");
    let topic = unique("plumbline-e2e");
    let database = unique("plumbline_e2e");
    let port = free_port();
    let (brokers, clickhouse) = (kafka_brokers(), clickhouse_url());

    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let store = format!("[store]\nkind = \"clickhouse\"\nurl = \"{clickhouse}\"\ndatabase = \"{database}\"\n");
    let aggregator_toml = write(
        "aggregator.toml",
        format!("[source]\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ngroup_id = \"{topic}\"\nsession_timeout_ms = 6000\n{store}"),
    );
    let query_toml = write("query.toml", format!("listen = \"127.0.0.1:{port}\"\n{store}"));
    let agent_toml = write(
        "agent.toml",
        format!("[node]\nhost = \"{host}\"\n[sink]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\n"),
    );

    let aggregator = Component::start("aggregator", dir.path(), &["aggregator", "run", "--config", &aggregator_toml]);
    let query = Component::start("query", dir.path(), &["query", "run", "--config", &query_toml]);
    let agent = Component::start("agent", dir.path(), &["agent", "run", "--config", &agent_toml]);
    Fleet { _dir: dir, host, addr: format!("http://127.0.0.1:{port}"), aggregator, query, agent }
}

#[test]
fn a_shell_run_on_this_host_is_listed_with_parent_argv_exit_code_and_in_the_process_tree() {
    let mut fleet = start_fleet();
    wait_until_this_process_is_visible(&fleet.addr, &fleet.host);

    let marker = unique("plumb-e2e-kafka");
    run_marked_shell(&marker);
    assert_marked_shell_recorded(&fleet.addr, &fleet.host, &marker);

    let stats = plumb_json(&fleet.addr, &["stats"]).unwrap();
    assert!(stats["store"].as_str().unwrap().starts_with("clickhouse"), "{stats}");
    assert_eq!(stats["dead_letters"], 0, "{stats}");

    for component in [&mut fleet.agent, &mut fleet.aggregator, &mut fleet.query] {
        assert!(component.is_running(), "{} crashed:\n{}", component.name, component.log());
        assert!(component.stop(), "{} did not shut down cleanly:\n{}", component.name, component.log());
    }
}
