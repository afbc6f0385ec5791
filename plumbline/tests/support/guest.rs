//! Running a shell script as root inside a stock Debian kernel booted in qemu
//! (`scripts/guest.sh`): this host's kernel has no BPF LSM and refuses
//! trampoline programs; Debian's 6.1 and 6.12 have both, BPF LSM on by
//! default.
//!
//! The guest sees the host's root filesystem read-only at the same paths, so
//! the test's binaries (`env!("CARGO_BIN_EXE_plumbline")`) and files under
//! `target/` (e.g. `env!("CARGO_TARGET_TMPDIR")`) can be used as they are. It
//! has its own tmpfs on /tmp, /run and /var/tmp: a host directory under those
//! (a `tempfile::tempdir()`) is visible only when shared with
//! [`Guest::share`], which also makes it writable from the guest.
//! A boot costs seconds: do several checks in one script.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The kernels `scripts/guest.sh install` provides.
pub const KERNELS: [&str; 2] = ["6.1", "6.12"];

/// An `lsm=` list that has BPF LSM active (what Debian's kernels do by default,
/// spelled out for tests that must not depend on the default).
pub const LSM_WITH_BPF: &str = "lockdown,capability,landlock,yama,apparmor,bpf";

/// What the script did in the guest.
#[derive(Debug)]
pub struct GuestOutput {
    /// Its exit status (128 + the signal when killed by one).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl GuestOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Runs `script` with `sh -c` as root in a guest booted from `kernel` ("6.1"
/// or "6.12"), with `lsm=<lsm>` on its command line when given (otherwise the
/// kernel's default list), in this process's current directory.
pub fn run_in_guest(kernel: &str, lsm: Option<&str>, script: &str) -> GuestOutput {
    let mut guest = Guest::new(kernel);
    if let Some(lsm) = lsm {
        guest.lsm(lsm);
    }
    guest.run(script)
}

/// One boot, for when [`run_in_guest`] is not enough (shared directories).
pub struct Guest {
    kernel: String,
    lsm: Option<String>,
    shares: Vec<PathBuf>,
}

impl Guest {
    pub fn new(kernel: &str) -> Self {
        Guest { kernel: kernel.to_string(), lsm: None, shares: Vec::new() }
    }

    /// Boots with `lsm=<list>`.
    pub fn lsm(&mut self, list: &str) -> &mut Self {
        self.lsm = Some(list.to_string());
        self
    }

    /// Mounts the host directory `dir` read-write at the same path in the guest.
    pub fn share(&mut self, dir: &Path) -> &mut Self {
        self.shares.push(dir.to_path_buf());
        self
    }

    /// Boots, runs `script` with `sh -c`, powers off. Panics when the harness
    /// is not installed or the guest ended without a result; the script's own
    /// failures are in the returned status.
    pub fn run(&self, script: &str) -> GuestOutput {
        // One guest at a time: each emulates its CPU on a host core, and
        // two at once on a small machine slow each other several times over.
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let results = tempfile::tempdir().unwrap();
        let mut command = Command::new(guest_sh());
        command.args(["run", &self.kernel, "--results"]).arg(results.path());
        if let Some(lsm) = &self.lsm {
            command.args(["--lsm", lsm]);
        }
        for dir in self.shares.iter().chain(&hidden_workspace()) {
            command.arg("--share").arg(dir);
        }
        let harness = command
            .arg("--")
            .arg(script)
            .output()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", guest_sh().display()));
        let harness_stderr = String::from_utf8_lossy(&harness.stderr);
        let read = |name: &str| std::fs::read(results.path().join(name)).ok();
        let Some(status) = read("status") else {
            let hint = if harness.status.code() == Some(2) {
                "is the guest harness installed? run `scripts/guest.sh install` (as root); "
            } else {
                ""
            };
            panic!(
                "the guest ({}) gave no result: {hint}scripts/guest.sh exited with {}:\n{harness_stderr}",
                self.kernel, harness.status
            );
        };
        let text = |bytes: Option<Vec<u8>>| String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned();
        GuestOutput {
            status: String::from_utf8_lossy(&status).trim().parse().expect("status is a number"),
            stdout: text(read("stdout")),
            stderr: text(read("stderr")),
        }
    }
}

/// The workspace (its binaries, the tests' current directory), when the
/// guest's own tmpfs on /tmp, /var/tmp, /run or /dev/shm would hide it — a
/// clone under /tmp, as CI may make: shared, so the guest sees it.
fn hidden_workspace() -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.to_path_buf();
    let hidden = ["/tmp", "/var/tmp", "/run", "/dev/shm"].iter().any(|tmpfs| workspace.starts_with(tmpfs));
    hidden.then_some(workspace)
}

fn guest_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/guest.sh")
}
