//! The fleet road, end to end on real parts: the kernel (eBPF) → node agent →
//! Kafka (tansu) → aggregator → ClickHouse → query service (gRPC) → `plumb`.
//! Needs root, PLUMBLINE_TEST_KAFKA and PLUMBLINE_TEST_CLICKHOUSE
//! (scripts/test.sh provides them).

mod support;

use support::*;

struct Fleet {
    host: String,
    addr: String,
    agent: Component,
    services: FleetServices,
}

fn start_fleet() -> Fleet {
    let services = FleetServices::start("e2e", "");
    let host = unique("e2e-host");
    let (brokers, topic) = (kafka_brokers(), &services.topic);
    let agent_toml = write_config(
        services.dir.path(),
        "agent.toml",
        &format!("[node]\nhost = \"{host}\"\n[sink]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\n"),
    );
    let agent = Component::start("agent", services.dir.path(), &["agent", "run", "--config", &agent_toml]);
    Fleet { host, addr: services.addr.clone(), agent, services }
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
    // The aggregator's own counters, on its /metrics.
    let metrics = metrics_at(&fleet.services.aggregator_metrics);
    let written = metrics
        .lines()
        .find_map(|l| l.strip_prefix("plumbline_aggregator_rows_written_total "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(written.is_some_and(|n| n > 0), "{metrics}");
    assert!(metrics.contains("plumbline_aggregator_session_rows_late_total"), "{metrics}");
    // How the store and the Kafka consumer are doing: the writes were timed,
    // joining the group was an assignment, and librdkafka's statistics give
    // the topic's partitions' lag (refreshed every few seconds).
    let lag = format!("plumbline_aggregator_consumer_lag_messages{{topic=\"{}\",partition=\"", fleet.services.topic);
    eventually_showing("the aggregator's store, Kafka and session series", || {
        let metrics = metrics_at(&fleet.services.aggregator_metrics);
        let value = |name: &str| metrics.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok());
        let ok = value("plumbline_aggregator_store_write_duration_seconds_count ").is_some_and(|n| n > 0.0)
            && value("plumbline_aggregator_rebalances_total ").is_some_and(|n| n >= 1.0)
            && metrics.lines().any(|l| l.starts_with(&lag))
            && value("plumbline_aggregator_sessions_open ").is_some()
            && value("plumbline_aggregator_collective_verdicts_total ").is_some()
            && value("plumbline_aggregator_findings_total ").is_some();
        if ok {
            Ok(())
        } else {
            Err(metrics)
        }
    });
    // The query service's, per RPC: `plumb stats` asked PipelineStats.
    let metrics = metrics_at(&fleet.services.query_metrics);
    assert!(metrics.contains(r#"plumbline_query_requests_total{rpc="PipelineStats",code="Ok"}"#), "{metrics}");
    assert!(metrics.contains(r#"plumbline_query_request_duration_seconds_count{rpc="ListProcesses"}"#), "{metrics}");

    for component in [&mut fleet.agent, &mut fleet.services.aggregator, &mut fleet.services.query] {
        assert!(component.is_running(), "{} crashed:\n{}", component.name, component.log());
        assert!(component.stop(), "{} did not shut down cleanly:\n{}", component.name, component.log());
    }
}
