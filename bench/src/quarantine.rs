//! How long a quarantine takes on the fleet road: from the finding to the
//! node's acknowledgement that it applied it, back on the events topic where
//! the aggregator reads it. The node agent runs here for real (eBPF loaded,
//! a workload policy in force, Kafka sink, the control topic read outside
//! any consumer group); the bench stands in for the aggregator's quarantine
//! stage, building each update from a finding with the aggregator's own code
//! (`quarantine::update_of`) and sending it with the aggregator's producer.
//! Each update quarantines one of `--updates` sleeping child processes, one
//! at a time: latency, not throughput.
//!
//! Measured per update: finding → applied on the node (the node's wall
//! clock, same host) and finding → acknowledgement read from the events
//! topic. One node agent: this host runs one.

use std::{collections::HashMap, process::Command};

use hdrhistogram::Histogram;
use plumbline_node_agent::{AgentConfig, SinkConfig};
use plumbline_proto::v1::{event::Body, EventBatch, NodeIdentity};
use plumbline_store::FindingRow;
use plumbline_transport::{
    control::{ControlPublisher, ControlSubscriber},
    kafka::{self, KafkaControlPublisher, KafkaControlSubscriber, KafkaSinkConfig},
};
use prost::Message;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Quarantine updates, one process each.
    #[arg(long, default_value_t = 100)]
    updates: usize,
    #[arg(long, env = "PLUMBLINE_TEST_KAFKA", default_value = "127.0.0.1:9092")]
    kafka: String,
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (events_topic, control_topic, host) =
        (format!("bench-quarantine-{run}"), format!("bench-control-{run}"), format!("bench-node-{run}"));
    let sink = KafkaSinkConfig {
        brokers: args.kafka.clone(),
        topic: events_topic.clone(),
        control_topic: control_topic.clone(),
        ..Default::default()
    };
    kafka::ensure_topic(&sink.topic_spec()).await?;

    // The node: a policy in force (its one role selects nothing).
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[roles]]\nname = \"idle\"\n[roles.network]\nallow = [\"127.0.0.1\"]\n\
             [[workloads]]\nrole = \"idle\"\nfield = \"COMMAND_LINE\"\npattern = \"never-{run}\"\n"
        ),
    )?;
    let mut config = AgentConfig::default();
    config.node.host = Some(host.clone());
    config.capture.enforce.policy_file = Some(policy);
    config.capture.enforce.control_socket = dir.path().join("enforce.sock");
    config.metrics.listen = "127.0.0.1:0".into();
    config.sink = SinkConfig::Kafka(sink.clone());
    let node = plumbline_node_agent::node::identity(Some(&host))?;
    let control = KafkaControlSubscriber::new(&sink.control_spec(), &host).await;
    let stop = CancellationToken::new();
    let agent_stop = stop.clone();
    let agent = tokio::spawn(async move {
        let sink = plumbline_node_agent::sink_from_config(&config.sink).await?;
        plumbline_node_agent::run_with_control(config.settings(), sink, Some(Box::new(control)), agent_stop).await
    });

    // The aggregator's side: its control producer, and a reader of every
    // partition of the events topic (assigned, as the agents read the control
    // topic: a consumer group's joins on this broker would be measured too)
    // that keeps the acknowledgements.
    let publisher = KafkaControlPublisher::new(&sink.control_spec())?;
    let mut source = KafkaControlSubscriber::new(&sink.topic_spec(), "bench-reader").await;

    let mut children = Vec::new();
    for _ in 0..args.updates {
        children.push(Command::new("sleep").arg("600").spawn()?);
    }
    let sender = NodeIdentity { host: "bench-aggregator".into(), ..Default::default() };
    let mut acked: HashMap<String, (u64, u64, bool, String)> = HashMap::new();
    // The node is ready once a first update (a process that does not exist)
    // comes back answered: the agent runs and reads the control topic.
    let mut to_applied = Histogram::<u64>::new(3)?;
    let mut to_acked = Histogram::<u64>::new(3)?;
    let warm = finding(&node, u32::MAX - 7, "warm-up");
    send(&publisher, &sender, &warm, Vec::new()).await?;
    wait_for(&mut source, &mut acked, &warm.session).await?;
    let mut not_applied = 0;
    for (i, child) in children.iter().enumerate() {
        let finding = finding(&node, child.id(), &format!("bench-{i}"));
        let id = send(&publisher, &sender, &finding, vec![child.id()]).await?;
        let (applied_ns, read_ns, applied, reason) = wait_for(&mut source, &mut acked, &id).await?;
        if !applied {
            not_applied += 1;
            eprintln!("update {i} not applied: {reason}");
        }
        to_applied.record(applied_ns.saturating_sub(finding.found_wall_ns).max(1))?;
        to_acked.record(read_ns.saturating_sub(finding.found_wall_ns).max(1))?;
    }
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    stop.cancel();
    agent.await??;

    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
    println!("quarantine: {} updates, one node agent, Kafka at {}", args.updates, args.kafka);
    println!("  not applied: {not_applied}");
    for (what, h) in [("finding -> applied on the node", &to_applied), ("finding -> ack read from Kafka", &to_acked)] {
        println!(
            "  {what:32} p50 {:8.2} ms  p99 {:8.2} ms  max {:8.2} ms",
            ms(h, 0.5),
            ms(h, 0.99),
            h.max() as f64 / 1e6
        );
    }
    Ok(())
}

fn finding(node: &NodeIdentity, pid: u32, session: &str) -> FindingRow {
    FindingRow {
        session: session.into(),
        agent: "bench".into(),
        host: node.host.clone(),
        boot_id: node.boot_id.clone(),
        pid,
        kind: "out_of_scope_effect".into(),
        severity: "high".into(),
        subject: "read /root/.ssh/id_rsa".into(),
        found_wall_ns: wall_ns(),
        ..Default::default()
    }
}

/// Sends the update for `finding` as the aggregator does; returns its id.
async fn send(
    publisher: &KafkaControlPublisher,
    sender: &NodeIdentity,
    finding: &FindingRow,
    pids: Vec<u32>,
) -> anyhow::Result<String> {
    let update = plumbline_aggregator::quarantine::update_of(finding, pids, wall_ns());
    let payload = plumbline_proto::control::encode_update(&update, sender.clone(), update.issued_wall_ns);
    publisher.publish(&update.host, payload.into()).await?;
    Ok(update.id)
}

/// Reads the events topic until the acknowledgement of `id` (or of the
/// session `id`, for the warm-up) was read; returns when the node applied
/// it, when it was read, whether it was applied and why.
async fn wait_for(
    source: &mut KafkaControlSubscriber,
    acked: &mut HashMap<String, (u64, u64, bool, String)>,
    id: &str,
) -> anyhow::Result<(u64, u64, bool, String)> {
    loop {
        if let Some(found) = acked.iter().find(|(k, _)| k.as_str() == id || k.starts_with(&format!("q-{id}-"))) {
            return Ok(found.1.clone());
        }
        let payload = source.next().await.ok_or_else(|| anyhow::anyhow!("the events topic reader stopped"))?;
        let read = wall_ns();
        let Ok(batch) = EventBatch::decode(payload.as_ref()) else { continue };
        for event in batch.events {
            if let Some(Body::QuarantineAck(ack)) = event.body {
                acked.insert(ack.id.clone(), (ack.applied_wall_ns, read, ack.applied, ack.reason.clone()));
            }
        }
    }
}
