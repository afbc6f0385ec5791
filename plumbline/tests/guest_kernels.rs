//! The qemu guests the BPF LSM tests run in (`scripts/guest.sh`, through
//! `support::guest`): each Debian kernel boots with BPF LSM active by default
//! and without it when `lsm=` leaves it out, runs the host's glibc-linked
//! binaries as root in the host's directory with BTF, bpffs and securityfs
//! there, and brings back stdout, stderr and the exit status.

mod support;

use support::guest::run_in_guest;

/// An `lsm=` list without bpf (Ubuntu's, less `integrity`).
const LSM_WITHOUT_BPF: &str = "landlock,lockdown,yama,apparmor";

/// One boot for all the checks: each costs seconds.
fn boots_with_bpf_lsm_and_runs_host_binaries(kernel: &str) {
    let plumbline = env!("CARGO_BIN_EXE_plumbline");
    let script = format!(
        r#"echo "lsm=$(cat /sys/kernel/security/lsm)"
echo "release=$(uname -r)"
echo "uid=$(id -u)"
echo "cwd=$(pwd)"
test -f /sys/kernel/btf/vmlinux && echo "btf=present"
awk '$2 == "/sys/fs/bpf" {{ print "bpffs=" $3 }}' /proc/mounts
'{plumbline}' --version
echo "to stderr" >&2
exit 7"#
    );
    let out = run_in_guest(kernel, None, &script);

    assert_eq!(out.status, 7, "the script's exit status comes back: {out:#?}");
    assert_eq!(out.stderr, "to stderr\n", "{out:#?}");
    let value = |key: &str| {
        out.stdout
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key}= in the guest's stdout: {out:#?}"))
    };
    let lsms: Vec<&str> = value("lsm").split(',').collect();
    assert!(lsms.contains(&"bpf"), "BPF LSM is active by default on Debian {kernel}: {lsms:?}");
    assert!(value("release").starts_with(&format!("{kernel}.")), "booted Debian {kernel}: {out:#?}");
    assert_eq!(value("uid"), "0", "runs as root");
    let here = std::env::current_dir().unwrap();
    assert_eq!(value("cwd"), here.to_str().unwrap(), "runs in the host's current directory");
    assert_eq!(value("btf"), "present", "/sys/kernel/btf/vmlinux exists");
    assert_eq!(value("bpffs"), "bpf", "bpffs is mounted at /sys/fs/bpf");
    let version = format!("plumbline {}", env!("CARGO_PKG_VERSION"));
    assert!(
        out.stdout.lines().any(|line| line == version),
        "the host's glibc-linked plumbline runs in the guest and prints {version:?}: {out:#?}"
    );
}

fn has_no_bpf_lsm_when_the_lsm_list_leaves_it_out(kernel: &str) {
    let out = run_in_guest(kernel, Some(LSM_WITHOUT_BPF), "cat /sys/kernel/security/lsm");

    assert!(out.success(), "{out:#?}");
    let lsms: Vec<&str> = out.stdout.trim().split(',').collect();
    assert!(lsms.contains(&"landlock"), "lsm= was applied: {lsms:?}");
    assert!(!lsms.contains(&"bpf"), "bpf is not active when lsm= leaves it out: {lsms:?}");
}

#[test]
fn debian_6_1_boots_with_bpf_lsm_and_runs_host_binaries() {
    boots_with_bpf_lsm_and_runs_host_binaries("6.1");
}

#[test]
fn debian_6_12_boots_with_bpf_lsm_and_runs_host_binaries() {
    boots_with_bpf_lsm_and_runs_host_binaries("6.12");
}

#[test]
fn debian_6_1_has_no_bpf_lsm_when_the_lsm_list_leaves_it_out() {
    has_no_bpf_lsm_when_the_lsm_list_leaves_it_out("6.1");
}

#[test]
fn debian_6_12_has_no_bpf_lsm_when_the_lsm_list_leaves_it_out() {
    has_no_bpf_lsm_when_the_lsm_list_leaves_it_out("6.12");
}
