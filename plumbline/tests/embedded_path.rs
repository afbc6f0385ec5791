//! The single-host default, end to end: the kernel (eBPF) → agent →
//! in-process channel → aggregator → SQLite → query service → `plumb`, all in
//! one `plumbline run` process, no Kafka, no ClickHouse. Needs root.

mod support;

use support::*;

#[test]
fn a_shell_run_on_this_host_is_listed_and_in_the_process_tree_without_kafka_or_clickhouse() {
    let dir = tempfile::tempdir().unwrap();
    let host = unique("embedded-host");
    let port = free_port();
    let db = dir.path().join("data/plumbline.db");
    let config = dir.path().join("plumbline.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:{port}\"\n[node]\nhost = \"{host}\"\n[sqlite]\npath = \"{}\"\n", db.display()),
    )
    .unwrap();
    let mut plumbline = Component::start("plumbline-run", dir.path(), &["run", "--config", config.to_str().unwrap()]);
    let addr = format!("http://127.0.0.1:{port}");
    wait_until_this_process_is_visible(&addr, &host);

    let marker = unique("plumb-e2e-embedded");
    run_marked_shell(&marker);
    assert_marked_shell_recorded(&addr, &host, &marker);

    let stats = plumb_json(&addr, &["stats"]).unwrap();
    assert!(stats["store"].as_str().unwrap().starts_with("sqlite"), "{stats}");
    assert!(plumbline.stop(), "plumbline run did not shut down cleanly:\n{}", plumbline.log());
    assert!(db.exists(), "the SQLite file is where the configuration says");
}
