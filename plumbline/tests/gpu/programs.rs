//! The GPU test programs (this folder) and the NVIDIA libraries they call:
//! `libcudart.so.12` and `libnccl.so.2` from the `nvidia-cuda-runtime-cu12`
//! and `nvidia-nccl-cu12` wheels in the test Python (`scripts/python-deps.sh`,
//! `PLUMBLINE_TEST_PYTHON`). Shared by the capture tests of `plumbline` and
//! `plumbline-node-agent`.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
};

use serde_json::Value;

/// The first 128 bytes `gpu_calls.cpp` passes to ncclCommInitRank as its
/// ncclUniqueId.
pub fn unique_id() -> Vec<u8> {
    (0..128u32).map(|i| (i * 7 + 1) as u8).collect()
}

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plumbline/tests/gpu")
}

pub fn python() -> PathBuf {
    PathBuf::from(std::env::var_os("PLUMBLINE_TEST_PYTHON").expect(
        "PLUMBLINE_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs the NVIDIA wheels \
         (scripts/python-deps.sh)",
    ))
}

/// (libcudart, libnccl) as the wheels installed them.
pub fn nvidia_libraries() -> (PathBuf, PathBuf) {
    let program = "import importlib.util as u\n\
                   for p in ('nvidia.cuda_runtime', 'nvidia.nccl'): print(u.find_spec(p).submodule_search_locations[0])";
    let output = Command::new(python()).args(["-c", program]).output().expect("running the test Python");
    assert!(
        output.status.success(),
        "the NVIDIA wheels are not installed in the test Python (scripts/python-deps.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let dirs: Vec<&str> = text.lines().collect();
    (Path::new(dirs[0]).join("lib/libcudart.so.12"), Path::new(dirs[1]).join("lib/libnccl.so.2"))
}

/// Compiles `gpu_calls.cpp` (C++: its kernel's name is mangled) into the
/// target directory; the binary is replaced atomically, so tests building
/// it at once do not trip on each other.
pub fn build_gpu_calls() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = dir.join("gpu_calls");
    let building = dir.join(format!("gpu_calls.{}", uuid::Uuid::new_v4().simple()));
    let output = Command::new("c++")
        .args(["-O0", "-g", "-o"])
        .arg(&building)
        .arg(here().join("gpu_calls.cpp"))
        .arg("-ldl")
        .output()
        .expect("running c++ (Debian: build-essential)");
    assert!(output.status.success(), "c++ gpu_calls.cpp: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::rename(&building, &out).unwrap();
    out
}

/// A test program running: the JSON line it printed first, and its standard
/// input, whose closing tells it to stop.
pub struct Running {
    pub child: Child,
    pub said: Value,
    stdin: Option<ChildStdin>,
}

impl Running {
    fn start(mut command: Command) -> Self {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("starting a GPU program");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let said = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{command:?} printed {line:?}"));
        Running { child, said, stdin }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its standard input and waits for it to exit.
    pub fn stop(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The job's rank `gpu_calls` is launched as (`RANK`, as torchrun sets it);
/// its communicator's own rank is 2.
pub const GLOBAL_RANK: i32 = 1337;

/// `gpu_calls` with the libraries, in job `job`: it makes its calls, prints
/// their return codes and waits.
pub fn run_gpu_calls(binary: &Path, job: &str) -> Running {
    let (cudart, nccl) = nvidia_libraries();
    let mut command = Command::new(binary);
    command.arg(cudart).arg(nccl).env("PLUMBLINE_JOB", job).env("RANK", GLOBAL_RANK.to_string());
    Running::start(command)
}

/// `ctypes_loop.py`: loads the libraries now and repeats its step until stopped.
pub fn run_ctypes_loop() -> Running {
    let mut command = Command::new(python());
    command.arg(here().join("ctypes_loop.py")).env_remove("PLUMBLINE_JOB");
    Running::start(command)
}
