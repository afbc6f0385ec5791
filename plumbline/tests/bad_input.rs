//! Bad input gets a clear error and loses nothing: garbage on the topic is
//! set aside in `dead_letters` while the valid batches around it arrive; a
//! crash of the aggregator re-delivers without duplicating rows; a
//! configuration with an unknown key is refused naming the key.
//! Needs PLUMBLINE_TEST_KAFKA and PLUMBLINE_TEST_CLICKHOUSE.

mod support;

use std::process::Command;

use bytes_payload::*;
use plumbline_transport::{kafka, BatchSink, OutgoingBatch};
use support::*;

/// Valid batches as an agent would send them, built with the same encoder.
mod bytes_payload {
    use plumbline_proto::{
        v1::{event::Body, ClockAnchor, NodeIdentity, ProcessExec, ProcessExit},
        BatchBuilder, BatchHeader,
    };
    use prost::Message;

    /// One process `pid` that ran `argv` and exited 0.
    pub fn process_batch(host: &str, pid: u32, argv: &[&str]) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        let start_ns = 1_000_000_000 * u64::from(pid);
        let exec = ProcessExec {
            start_ns,
            ppid: 1,
            comm_sid: b.intern(argv[0]),
            exe_sid: b.intern(argv[0]),
            argv_sids: argv.iter().map(|a| b.intern(a)).collect(),
            ..Default::default()
        };
        b.push(start_ns + 1, pid, pid, 0, Body::Exec(exec));
        let comm_sid = b.intern(argv[0]);
        b.push(start_ns + 2, pid, pid, 0, Body::Exit(ProcessExit { start_ns, comm_sid, ..Default::default() }));
        b.finish(BatchHeader {
            node: NodeIdentity { host: host.into(), boot_id: "boot-e2e".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: 1_700_000_000_000_000_000, uncertainty_ns: 0 },
            agent_run_id: "bad-input-test".into(),
            sequence: u64::from(pid),
        })
        .encode_to_vec()
    }
}

struct Services {
    dir: tempfile::TempDir,
    topic: String,
    aggregator_toml: String,
    addr: String,
    query: Component,
}

fn services() -> Services {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("plumbline-bad-input");
    let database = unique("plumbline_bad_input");
    let port = free_port();
    let store = format!("[store]\nkind = \"clickhouse\"\nurl = \"{}\"\ndatabase = \"{database}\"\n", clickhouse_url());
    let aggregator_toml = dir.path().join("aggregator.toml");
    std::fs::write(
        &aggregator_toml,
        format!(
            "[source]\nbrokers = \"{}\"\ntopic = \"{topic}\"\ngroup_id = \"{topic}\"\nsession_timeout_ms = 6000\n\
             [pipeline]\nmax_batches = 2\n{store}",
            kafka_brokers()
        ),
    )
    .unwrap();
    let query_toml = dir.path().join("query.toml");
    std::fs::write(&query_toml, format!("listen = \"127.0.0.1:{port}\"\n{store}")).unwrap();
    let query = Component::start("query", dir.path(), &["query", "run", "--config", query_toml.to_str().unwrap()]);
    Services {
        aggregator_toml: aggregator_toml.to_str().unwrap().to_string(),
        dir,
        topic,
        addr: format!("http://127.0.0.1:{port}"),
        query,
    }
}

async fn publish(topic: &str, payloads: Vec<Vec<u8>>) {
    let config = kafka::KafkaSinkConfig { brokers: kafka_brokers(), topic: topic.into(), ..Default::default() };
    kafka::ensure_topic(&config.topic_spec()).await.unwrap();
    let sink = kafka::KafkaSink::new(&config).unwrap();
    for payload in payloads {
        let batch = OutgoingBatch { key: "bad-input".into(), payload: payload.into(), events: 2 };
        sink.send(&batch).await.unwrap();
    }
}

fn stats(addr: &str) -> Option<serde_json::Value> {
    plumb_json(addr, &["stats"])
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_the_topic_is_set_aside_and_the_valid_batches_around_it_arrive() {
    let s = services();
    let host = unique("bad-input-host");
    publish(
        &s.topic,
        vec![
            process_batch(&host, 101, &["/usr/bin/make", "all"]),
            b"\xff\xfe this is not protobuf".to_vec(),
            process_batch(&host, 102, &["/usr/bin/cc", "-c", "a.c"]),
            vec![0x0a, 0x05, 0x01], // a protobuf prefix that ends too early
            process_batch(&host, 103, &["/usr/bin/ld", "-o", "a.out"]),
        ],
    )
    .await;
    let mut aggregator =
        Component::start("aggregator", s.dir.path(), &["aggregator", "run", "--config", &s.aggregator_toml]);

    let listed = eventually("all three valid batches to be listed", || {
        let found = processes(&s.addr, &["--host", &host]);
        (found.len() == 3).then_some(found)
    });
    let pids: Vec<u64> = listed.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids, vec![103, 102, 101]);
    let stats = eventually("two dead letters", || stats(&s.addr).filter(|st| st["dead_letters"] == 2));
    assert_eq!(stats["process_events"], 6, "{stats}");
    assert!(aggregator.is_running(), "the aggregator keeps going after garbage:\n{}", aggregator.log());
    assert!(aggregator.log().contains("dead letter"), "and says what it set aside:\n{}", aggregator.log());
    drop(s.query);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_aggregator_resumes_from_its_commits_and_re_delivery_adds_no_rows() {
    let s = services();
    let host = unique("crash-host");
    let first: Vec<Vec<u8>> =
        (1..=20).map(|pid| process_batch(&host, pid, &["/bin/true", &format!("n{pid}")])).collect();
    publish(&s.topic, first.clone()).await;
    let mut aggregator =
        Component::start("aggregator", s.dir.path(), &["aggregator", "run", "--config", &s.aggregator_toml]);
    eventually("some of the first batches to be stored", || {
        (!processes(&s.addr, &["--host", &host]).is_empty()).then_some(())
    });
    aggregator.kill_hard();

    // The same batches again (as a producer retry or a replay would send
    // them), then new ones, for a fresh aggregator in the same group.
    let mut second = first;
    second.extend((21..=30).map(|pid| process_batch(&host, pid, &["/bin/true", &format!("n{pid}")])));
    publish(&s.topic, second).await;
    let _aggregator =
        Component::start("aggregator-2", s.dir.path(), &["aggregator", "run", "--config", &s.aggregator_toml]);

    let listed = eventually("all 30 processes", || {
        let found = processes(&s.addr, &["--host", &host, "--limit", "1000"]);
        (found.len() == 30).then_some(found)
    });
    let mut pids: Vec<u64> = listed.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    pids.dedup();
    assert_eq!(pids.len(), 30, "each process once");
    let stats = stats(&s.addr).unwrap();
    assert_eq!(stats["process_events"], 60, "two rows per process, however often delivered: {stats}");
}

#[test]
fn a_configuration_with_an_unknown_key_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("agent", "[capture]\nring_buffer_kb = 64\n", "ring_buffer_kb"),
        ("agent", "[sink]\nkind = \"kafka\"\nbroker = \"k:9092\"\n", "broker"),
        ("aggregator", "[store]\nkind = \"clickhouse\"\ndatabse = \"x\"\n", "databse"),
        ("query", "listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n", "listen_addr"),
    ];
    for (component, toml, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .args([component, "validate", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{component} accepted {toml:?}");
        assert!(stderr.contains(&format!("`{key}`")), "{component}: the error names `{key}`: {stderr}");
    }
    // The single-host configuration, and an unknown key from the environment.
    let path = dir.path().join("run.toml");
    std::fs::write(&path, "[sqlite]\npth = \"/tmp/x.db\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["validate", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("`pth`"));
    let output = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["agent", "validate"])
        .env("PLUMBLINE_AGENT_BATCH__MAX_EVENTZ", "5")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("max_eventz"), "{output:?}");
}

#[test]
fn a_valid_configuration_validates_and_prints_with_defaults() {
    let output = Command::new(env!("CARGO_BIN_EXE_plumbline")).args(["agent", "validate"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("ring_buffer_kib = 8192"), "{printed}");
    assert!(printed.contains("ignore_self = true"), "{printed}");
    assert!(printed.contains("topic = \"plumbline.events\""), "{printed}");
}
