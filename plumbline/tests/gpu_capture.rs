//! GPU capture end to end, as root on the real kernel: programs call the real
//! NVIDIA libraries (`libcudart.so.12`, `libnccl.so.2` from the PyPI wheels;
//! with no GPU every call still runs and returns its error code), the agent
//! reads the calls with uprobes, and every assertion goes through the query
//! service's gRPC `GpuTimeline` and `GpuKernels` on the single-host default
//! (agent → channel → aggregator → SQLite → query service).

#[path = "gpu/programs.rs"]
mod gpu_programs;
mod support;

use std::time::Duration;

use gpu_programs::*;
use plumbline_proto::v1::{query_service_client::QueryServiceClient, GpuCallView, GpuKernelView, GpuRequest};
use support::*;

struct Bed {
    /// Dropped first (fields drop in order): its gRPC connections close, so
    /// `plumbline run` does not wait on them when it stops.
    runtime: tokio::runtime::Runtime,
    plumbline: Embedded,
}

impl Bed {
    /// `plumbline run` capturing processes and GPU calls (with `gpu`, a
    /// `[capture.gpu]` table's keys).
    fn start(gpu: &str) -> Self {
        let plumbline =
            Embedded::start(&format!("[capture]\nnetwork = false\nipc = false\ntls = false\n[capture.gpu]\n{gpu}"));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Bed { runtime, plumbline }
    }

    fn request(&self, request: GpuRequest) -> GpuRequest {
        GpuRequest { host: self.plumbline.host.clone(), limit: 1000, ..request }
    }

    /// A process's GPU calls in time order.
    fn timeline(&self, pid: u32) -> Vec<GpuCallView> {
        let request = self.request(GpuRequest { pid, ..GpuRequest::default() });
        self.runtime.block_on(async {
            let mut client = QueryServiceClient::connect(self.plumbline.addr.clone()).await.expect("the query service");
            client.gpu_timeline(request).await.expect("GpuTimeline").into_inner().calls
        })
    }

    fn kernels(&self, job: &str) -> Vec<GpuKernelView> {
        let request = self.request(GpuRequest { job: job.to_string(), ..GpuRequest::default() });
        self.runtime.block_on(async {
            let mut client = QueryServiceClient::connect(self.plumbline.addr.clone()).await.expect("the query service");
            client.gpu_kernels(request).await.expect("GpuKernels").into_inner().kernels
        })
    }

    /// Polls `probe` until it answers; fails if `plumbline run`, or the
    /// aggregator inside it, stopped.
    fn until<T>(&mut self, mut probe: impl FnMut(&Self) -> Option<T>) -> T {
        loop {
            if let Some(found) = probe(self) {
                return found;
            }
            let log = self.plumbline.process.log();
            assert!(self.plumbline.process.is_running(), "plumbline run stopped:\n{log}");
            assert!(!log.contains("aggregator stopped"), "the aggregator stopped:\n{log}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The value of a counter or gauge on the agent's /metrics.
    fn metric(&self, name: &str) -> u64 {
        let text = self.plumbline.metrics();
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0)
    }

    /// Waits for a gauge to reach `at_least`: the agent refreshes its GPU
    /// gauges on its periodic tick, not on every call.
    fn metric_reaches(&mut self, name: &str, at_least: u64) {
        self.until(|bed| (bed.metric(name) >= at_least).then_some(()));
    }
}

fn find<'a>(calls: &'a [GpuCallView], call: &str) -> &'a GpuCallView {
    calls.iter().find(|c| c.call == call).unwrap_or_else(|| panic!("no {call} in {calls:#?}"))
}

#[test]
fn a_training_step_through_the_real_libraries_reads_back_with_kernel_device_and_communicator() {
    let binary = build_gpu_calls();
    let (cudart, nccl) = nvidia_libraries();
    // Hooked at start: the program makes its calls as soon as it runs.
    let mut bed = Bed::start(&format!("preload = [{cudart:?}, {nccl:?}]\n"));
    let job = unique("gpu-step");
    let program = run_gpu_calls(&binary, &job);
    let (pid, said) = (program.pid(), program.said.clone());

    // cudaMalloc, cudaMemcpy, cudaLaunchKernel, cudaStreamSynchronize,
    // ncclCommInitRank, ncclAllReduce, ncclCommSplit; cudaSetDevice only
    // sets the device.
    let calls = bed.until(|bed| Some(bed.timeline(pid)).filter(|calls| calls.len() >= 7));
    program.stop();
    let order: Vec<&str> = calls.iter().map(|c| c.call.as_str()).collect();
    assert_eq!(
        order,
        ["MALLOC", "MEMCPY", "LAUNCH_KERNEL", "STREAM_SYNCHRONIZE", "COMM_INIT", "ALL_REDUCE", "COMM_SPLIT"],
        "{calls:#?}"
    );
    for call in &calls {
        assert_eq!((call.device, call.job.as_str(), call.pid), (3, job.as_str(), pid), "{call:?}");
        assert!(call.duration_ns > 0, "{call:?}");
    }

    let malloc = find(&calls, "MALLOC");
    assert_eq!(
        (malloc.library.as_str(), malloc.bytes, i64::from(malloc.result)),
        ("cuda", 1 << 20, said["malloc"].as_i64().unwrap())
    );
    let memcpy = find(&calls, "MEMCPY");
    assert_eq!((memcpy.bytes, memcpy.memcpy_kind), (4096, 1), "host to device");
    assert_eq!(i64::from(memcpy.result), said["memcpy"].as_i64().unwrap());
    let launch = find(&calls, "LAUNCH_KERNEL");
    assert_eq!(launch.kernel, "plumbtest::scale_vector(float*, int)", "{launch:?}");
    assert_eq!((launch.grid.as_str(), launch.block.as_str(), launch.bytes), ("4,2,1", "128,1,1", 256), "{launch:?}");
    assert_eq!(i64::from(launch.result), said["launch"].as_i64().unwrap());
    let sync = find(&calls, "STREAM_SYNCHRONIZE");
    assert_eq!(i64::from(sync.result), said["stream_synchronize"].as_i64().unwrap());

    let init = find(&calls, "COMM_INIT");
    assert_eq!(init.library, "nccl");
    assert_eq!((init.rank, init.nranks), (GLOBAL_RANK, 4), "the job's rank (RANK), of a 4-rank communicator: {init:?}");
    // xxh3 of the ncclUniqueId bytes, below 2^63 like every id the agent sends.
    let id_hash = xxhash_rust::xxh3::xxh3_64(&unique_id()) & (u64::MAX >> 1);
    assert_eq!(init.communicator, id_hash, "the hash of the ncclUniqueId bytes");
    assert_eq!(i64::from(init.result), said["comm_init_rank"].as_i64().unwrap());
    let all_reduce = find(&calls, "ALL_REDUCE");
    assert_eq!((all_reduce.count, all_reduce.datatype), (1024, 7), "1024 ncclFloat32: {all_reduce:?}");
    assert_eq!(i64::from(all_reduce.result), said["all_reduce"].as_i64().unwrap());
    assert_eq!(all_reduce.communicator, 0, "its NULL communicator is none the agent knows: {all_reduce:?}");
    assert_eq!(all_reduce.rank, GLOBAL_RANK, "yet the job's rank is known: {all_reduce:?}");
    let split = find(&calls, "COMM_SPLIT");
    assert_eq!(split.peer, 9, "the split's key, which orders the new ranks: {split:?}");
    assert_eq!(i64::from(split.result), said["comm_split"].as_i64().unwrap());

    let kernels = bed.until(|bed| Some(bed.kernels(&job)).filter(|k| !k.is_empty()));
    assert_eq!(kernels.len(), 1, "{kernels:#?}");
    let kernel = &kernels[0];
    assert_eq!(kernel.kernel, "plumbtest::scale_vector(float*, int)");
    assert_eq!((kernel.launches, kernel.failed), (1, u64::from(said["launch"] != 0)));
    assert_eq!((kernel.grid.as_str(), kernel.block.as_str()), ("4,2,1", "128,1,1"));

    bed.metric_reaches("plumbline_agent_gpu_cuda_calls_total", 4);
    bed.metric_reaches("plumbline_agent_gpu_nccl_calls_total", 2);
    bed.metric_reaches("plumbline_agent_gpu_libraries_hooked", 2);
}

#[test]
fn python_loading_the_libraries_after_the_agent_started_is_hooked_and_read() {
    let mut bed = Bed::start("");
    let program = run_ctypes_loop();
    let pid = program.pid();
    // Its first steps may run before the agent hooked the files it opened:
    // it repeats them until they are seen.
    let calls = bed.until(|bed| {
        let calls = bed.timeline(pid);
        (calls.iter().any(|c| c.call == "MALLOC") && calls.iter().any(|c| c.call == "ALL_REDUCE")).then_some(calls)
    });
    program.stop();
    let malloc = find(&calls, "MALLOC");
    assert_eq!((malloc.bytes, malloc.device, malloc.job.as_str()), (8192, 1, ""), "{malloc:?}");
    let memcpy = find(&calls, "MEMCPY");
    assert_eq!((memcpy.bytes, memcpy.memcpy_kind), (2048, 2), "device to host: {memcpy:?}");
    let all_reduce = find(&calls, "ALL_REDUCE");
    assert_eq!((all_reduce.count, all_reduce.datatype, all_reduce.device), (512, 7, 1), "{all_reduce:?}");
    bed.metric_reaches("plumbline_agent_gpu_libraries_hooked", 2);
}
