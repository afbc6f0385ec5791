//! GPU capture on the real kernel (root), at the agent's edge: what it hands
//! its sink for a training step made through the real NVIDIA libraries. The
//! job's NCCL calls travel in a batch of their own, keyed `job-<name>` (so
//! every rank of the job lands on one Kafka partition), carrying the rank the
//! launcher gave the process; the CUDA calls travel with the host's events.
//! While the process lives, the job's batch leaves at least once a second,
//! empty if need be. Needs PLUMBLINE_TEST_PYTHON with the NVIDIA
//! wheels (scripts/test.sh).

#[path = "../../plumbline/tests/gpu/programs.rs"]
mod gpu_programs;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use plumbline_node_agent::{
    config::{CaptureConfig, MetricsConfig, NodeConfig},
    gpu::config::GpuConfig,
    AgentConfig,
};
use plumbline_proto::v1::{cuda_call, event::Body, nccl_call, EventBatch};
use plumbline_transport::{BatchSink, OutgoingBatch, SinkError};
use prost::Message;
use tokio_util::sync::CancellationToken;

/// Keeps every batch, as a broker would.
#[derive(Default)]
struct Kept(Mutex<Vec<(String, EventBatch)>>);

#[async_trait::async_trait]
impl BatchSink for Kept {
    async fn send(&self, batch: &OutgoingBatch) -> Result<(), SinkError> {
        let decoded = EventBatch::decode(batch.payload.clone()).expect("the agent sends valid batches");
        self.0.lock().unwrap().push((batch.key.clone(), decoded));
        Ok(())
    }

    fn name(&self) -> &'static str {
        "kept"
    }
}

impl Kept {
    /// The batch key and body of each GPU event of `pid`.
    fn gpu_events(&self, pid: u32) -> Vec<(String, Body)> {
        let batches = self.0.lock().unwrap();
        let events = batches.iter().flat_map(|(key, batch)| batch.events.iter().map(move |e| (key, e)));
        events
            .filter(|(_, e)| e.pid == pid && matches!(e.body, Some(Body::Cuda(_)) | Some(Body::Nccl(_))))
            .map(|(key, e)| (key.clone(), e.body.clone().unwrap()))
            .collect()
    }
}

#[test]
fn a_jobs_nccl_calls_travel_in_its_own_batch_with_heartbeats_and_the_rest_with_the_host() {
    let binary = gpu_programs::build_gpu_calls();
    let (cudart, nccl) = gpu_programs::nvidia_libraries();
    let host = format!("gpu-batches-{}", uuid::Uuid::new_v4().simple());
    let config = AgentConfig {
        node: NodeConfig { host: Some(host.clone()) },
        capture: CaptureConfig {
            network: false,
            ipc: false,
            tls: false,
            gpu: GpuConfig { preload: vec![cudart, nccl], ..GpuConfig::default() },
            ..CaptureConfig::default()
        },
        metrics: MetricsConfig { listen: String::new() },
        ..AgentConfig::default()
    };
    let kept = Arc::new(Kept::default());
    let shutdown = CancellationToken::new();
    let agent = {
        let (sink, shutdown) = (kept.clone(), shutdown.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            runtime.block_on(plumbline_node_agent::run(config.settings(), sink, shutdown))
        })
    };
    // The first batch (the processes found running) comes after every probe
    // is attached.
    while kept.0.lock().unwrap().is_empty() {
        assert!(!agent.is_finished(), "the agent stopped");
        std::thread::sleep(Duration::from_millis(100));
    }

    let program = gpu_programs::run_gpu_calls(&binary, "batches");
    let pid = program.pid();
    let events = loop {
        let events = kept.gpu_events(pid);
        if events.len() >= 7 {
            break events;
        }
        assert!(!agent.is_finished(), "the agent stopped");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Heartbeats: with the process alive and calling nothing more, the job's
    // batch still leaves (empty) while the agent runs.
    let job_key = "job-batches".to_string();
    let job_batches = || kept.0.lock().unwrap().iter().filter(|(key, _)| *key == job_key).count();
    let before = job_batches();
    while job_batches() < before + 2 {
        assert!(!agent.is_finished(), "the agent stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    program.stop();
    shutdown.cancel();
    let stats = agent.join().unwrap().expect("the agent ran");
    assert_eq!(stats.batches_lost, 0);

    let id_hash = xxhash_rust::xxh3::xxh3_64(&gpu_programs::unique_id()) & (u64::MAX >> 1);
    let global = Some(gpu_programs::GLOBAL_RANK);
    let mut apis = Vec::new();
    for (key, body) in &events {
        match body {
            Body::Nccl(call) if call.op == nccl_call::Op::CommInit as i32 => {
                assert_eq!(key, &job_key, "the init goes with its job");
                assert_eq!((call.comm_id_hash, call.rank, call.nranks, call.global_rank), (id_hash, 2, 4, global));
            }
            Body::Nccl(call) if call.op == nccl_call::Op::CommSplit as i32 => {
                assert_eq!((key, call.color, call.peer), (&job_key, 3, 9), "color 3, key 9");
                assert_eq!(call.parent_comm_id_hash, 0, "of a communicator the agent does not know");
            }
            Body::Nccl(call) => {
                assert_eq!(call.op, nccl_call::Op::AllReduce as i32);
                assert_eq!((key, call.comm_id_hash), (&job_key, 0), "on an unknown communicator, still the job's");
                assert_eq!(call.global_rank, global);
            }
            Body::Cuda(call) => {
                assert_eq!(key, &host);
                assert_eq!(call.rank, gpu_programs::GLOBAL_RANK, "CUDA calls carry the job's rank");
                apis.push(cuda_call::Api::try_from(call.api).unwrap());
            }
            _ => unreachable!(),
        }
    }
    use cuda_call::Api;
    assert_eq!(apis, [Api::Malloc, Api::Memcpy, Api::LaunchKernel, Api::StreamSynchronize]);

    // One agent run: every batch, the host's and the job's, has a
    // sequence number of its own and the same node.
    let batches = kept.0.lock().unwrap();
    let sequences: HashSet<u64> = batches.iter().map(|(_, b)| b.sequence).collect();
    assert_eq!(sequences.len(), batches.len(), "sequence numbers are unique");
    assert!(batches.iter().all(|(_, b)| b.node.as_ref().is_some_and(|n| n.host == host)));
    assert!(batches.iter().any(|(key, b)| key == &job_key && b.events.is_empty()), "a heartbeat");
}
