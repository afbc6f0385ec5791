//! Processes that were running before the agent: read once from /proc.

use std::{collections::HashMap, os::unix::fs::MetadataExt, path::Path};

use procfs::process::{all_processes, Process};

use crate::process_table::ProcessInfo;

/// `task_struct.flags` of kernel threads (they never exec; not listed).
const PF_KTHREAD: u32 = 0x0020_0000;

/// Every user-space process in /proc. Processes that vanish mid-read are
/// skipped: they exited, and the kernel programs report that.
pub fn running_processes() -> Vec<ProcessInfo> {
    let tick_ns = 1_000_000_000 / procfs::ticks_per_second();
    let cgroup_root = crate::cgroups::cgroup2_mount();
    let mut cgroup_ids = HashMap::new();
    let Ok(processes) = all_processes() else {
        return Vec::new();
    };
    processes
        .filter_map(Result::ok)
        .filter_map(|process| read(&process, tick_ns, cgroup_root.as_deref(), &mut cgroup_ids))
        .collect()
}

fn read(
    process: &Process,
    tick_ns: u64,
    cgroup_root: Option<&Path>,
    cgroup_ids: &mut HashMap<String, u64>,
) -> Option<ProcessInfo> {
    let stat = process.stat().ok()?;
    if stat.flags & PF_KTHREAD != 0 {
        return None;
    }
    let status = process.status().ok();
    let cgroup_id = cgroup_root.and_then(|root| {
        let path = process.cgroups().ok()?.into_iter().find(|c| c.hierarchy == 0)?.pathname;
        Some(*cgroup_ids.entry(path.clone()).or_insert_with(|| cgroup_inode(root, &path)))
    });
    Some(ProcessInfo {
        pid: stat.pid as u32,
        ppid: stat.ppid as u32,
        uid: status.as_ref().map_or(0, |s| s.ruid),
        gid: status.as_ref().map_or(0, |s| s.rgid),
        comm: stat.comm.clone(),
        exe: process.exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        argv: process.cmdline().unwrap_or_default(),
        cgroup_id: cgroup_id.unwrap_or(0),
        start_ns: stat.starttime * tick_ns,
        exit_ns: None,
        exit_status: None,
    })
}

/// A cgroup v2 id is the inode number of its directory in cgroupfs, which
/// is what `bpf_get_current_cgroup_id()` returns in the kernel programs.
fn cgroup_inode(root: &Path, path: &str) -> u64 {
    std::fs::metadata(root.join(path.trim_start_matches('/'))).map_or(0, |m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_process_is_found_with_its_parent_argv_and_start() {
        let me = std::process::id();
        let processes = running_processes();
        let found = processes.iter().find(|p| p.pid == me).expect("this process is in /proc");
        assert_eq!(found.ppid, std::os::unix::process::parent_id());
        assert_eq!(found.argv.first(), std::env::args().next().as_ref());
        assert!(found.start_ns > 0 && found.start_ns % 10_000_000 == 0, "tick resolution: {}", found.start_ns);
        assert!(!processes.iter().any(|p| p.pid == 2), "kthreadd is a kernel thread and is not listed");
    }
}
