//! Who this node is and what time it is, as every batch states them.

use std::{fs, io};

use plumbline_proto::v1::{ClockAnchor, NodeIdentity};

fn read_trimmed(path: &str) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_string())
}

/// Host name (or the configured one), boot id, machine id, kernel release.
pub fn identity(host_override: Option<&str>) -> io::Result<NodeIdentity> {
    let host = match host_override {
        Some(host) => host.to_string(),
        None => read_trimmed("/proc/sys/kernel/hostname")?,
    };
    Ok(NodeIdentity {
        host,
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id")?,
        machine_id: read_trimmed("/etc/machine-id").unwrap_or_default(),
        kernel_release: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_BOOTTIME now: the clock of `bpf_ktime_get_boot_ns()`.
pub fn boot_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

/// Reads the wall clock between two boot-clock reads and pairs it with their
/// midpoint; the gap between them bounds the error.
pub fn clock_anchor() -> ClockAnchor {
    let before = boot_ns();
    let wall_ns = clock_ns(libc::CLOCK_REALTIME);
    let after = boot_ns();
    ClockAnchor { boot_ns: before + (after - before) / 2, wall_ns, uncertainty_ns: after - before }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_reads_this_machine() {
        let node = identity(None).unwrap();
        assert!(!node.host.is_empty());
        assert_eq!(node.boot_id.len(), 36, "a boot id is a UUID: {}", node.boot_id);
        assert_eq!(identity(Some("gpu-17")).unwrap().host, "gpu-17");
    }

    #[test]
    fn anchor_maps_boot_time_to_the_present() {
        let anchor = clock_anchor();
        let now_wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        let mapped = plumbline_proto::wall_ns(&anchor, boot_ns());
        assert!(mapped.abs_diff(now_wall) < 1_000_000_000, "{mapped} vs {now_wall}");
        assert!(anchor.uncertainty_ns < 1_000_000_000);
    }
}
