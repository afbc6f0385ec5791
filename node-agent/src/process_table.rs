//! What the agent knows about each live process: seeded from /proc at start,
//! kept current by fork, exec and exit records. Later capture (files,
//! sockets, TLS) attributes its events through it.

use std::collections::VecDeque;

use foldhash::HashMap;
use plumbline_proto::{BatchBuilder, Who};

/// One process as the agent knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub exe: String,
    pub argv: Vec<String>,
    pub cgroup_id: u64,
    /// Boot-clock ns (clock-tick resolution when read from /proc).
    pub start_ns: u64,
    /// Boot-clock ns of the exit, once it happened.
    pub exit_ns: Option<u64>,
    /// Wait status of the exit.
    pub exit_status: Option<u32>,
}

#[derive(Debug, Default)]
pub struct ProcessTable {
    by_pid: HashMap<u32, ProcessInfo>,
    /// (evict at boot ns, pid, start) in exit order.
    exited: VecDeque<(u64, u32, u64)>,
}

impl ProcessTable {
    /// Who `pid` is, from the table; `cgroup_id` 0 takes the process's own.
    pub fn who(&self, pid: u32, tid: u32, cgroup_id: u64, batch: &mut BatchBuilder) -> Who {
        let known = self.get(pid);
        let cgroup_id = if cgroup_id != 0 { cgroup_id } else { known.map_or(0, |p| p.cgroup_id) };
        let comm_sid = batch.intern(known.map_or("", |p| p.comm.as_str()));
        let process_start_ns = known.map_or(0, |p| p.start_ns);
        Who { pid, tid, cgroup_id, comm_sid, process_start_ns }
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ProcessInfo> {
        self.by_pid.values()
    }

    pub fn get(&self, pid: u32) -> Option<&ProcessInfo> {
        self.by_pid.get(&pid)
    }

    /// A process read from /proc at start; kernel records win over it.
    pub fn seed(&mut self, info: ProcessInfo) {
        self.by_pid.entry(info.pid).or_insert(info);
    }

    /// A new process: replaces whatever held the pid before.
    pub fn fork(&mut self, info: ProcessInfo) {
        self.by_pid.insert(info.pid, info);
    }

    /// An exec: the process keeps its identity and changes its image.
    pub fn exec(&mut self, info: ProcessInfo) {
        match self.by_pid.get_mut(&info.pid) {
            Some(known) if known.start_ns == info.start_ns || known.exit_ns.is_none() => {
                known.ppid = info.ppid;
                known.uid = info.uid;
                known.gid = info.gid;
                known.comm = info.comm;
                known.exe = info.exe;
                known.argv = info.argv;
                known.cgroup_id = info.cgroup_id;
                known.start_ns = info.start_ns;
            }
            _ => {
                self.by_pid.insert(info.pid, info);
            }
        }
    }

    /// The process left; it stays visible for `ttl_ns` for late events.
    /// Returns what was known of it, with the exit filled in.
    pub fn exit(&mut self, pid: u32, start_ns: u64, at_ns: u64, status: u32, ttl_ns: u64) -> ProcessInfo {
        let info = self.by_pid.entry(pid).or_insert_with(|| ProcessInfo { pid, start_ns, ..Default::default() });
        info.exit_ns = Some(at_ns);
        info.exit_status = Some(status);
        self.exited.push_back((at_ns + ttl_ns, pid, info.start_ns));
        info.clone()
    }

    /// Forgets processes that exited more than their ttl ago.
    pub fn evict(&mut self, now_ns: u64) -> usize {
        let mut evicted = 0;
        while let Some(&(evict_at, pid, start_ns)) = self.exited.front() {
            if evict_at > now_ns {
                break;
            }
            self.exited.pop_front();
            // The pid may belong to a newer process by now: keep that one.
            if self.by_pid.get(&pid).is_some_and(|p| p.start_ns == start_ns && p.exit_ns.is_some()) {
                self.by_pid.remove(&pid);
                evicted += 1;
            }
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pid: u32, start_ns: u64, comm: &str) -> ProcessInfo {
        ProcessInfo { pid, start_ns, comm: comm.into(), ..Default::default() }
    }

    #[test]
    fn exec_changes_the_image_and_keeps_the_identity() {
        let mut table = ProcessTable::default();
        table.fork(ProcessInfo { ppid: 1, ..info(10, 100, "bash") });
        table.exec(ProcessInfo { exe: "/bin/sh".into(), ppid: 1, ..info(10, 100, "sh") });
        let p = table.get(10).unwrap();
        assert_eq!((p.comm.as_str(), p.exe.as_str(), p.start_ns), ("sh", "/bin/sh", 100));
    }

    #[test]
    fn seeding_never_overrides_what_the_kernel_reported() {
        let mut table = ProcessTable::default();
        table.fork(info(10, 100, "from-kernel"));
        table.seed(info(10, 90, "from-proc"));
        assert_eq!(table.get(10).unwrap().comm, "from-kernel");
    }

    #[test]
    fn exited_processes_are_evicted_after_their_ttl_unless_the_pid_was_reused() {
        let mut table = ProcessTable::default();
        table.fork(info(10, 100, "a"));
        table.fork(info(11, 100, "b"));
        let gone = table.exit(10, 100, 1_000, 7 << 8, 500);
        assert_eq!(gone.exit_status, Some(7 << 8));
        table.exit(11, 100, 1_000, 0, 500);
        table.fork(info(11, 1_200, "b2")); // pid 11 reused
        assert_eq!(table.evict(1_499), 0);
        assert_eq!(table.evict(1_500), 1);
        assert!(table.get(10).is_none());
        assert_eq!(table.get(11).unwrap().comm, "b2");
    }

    #[test]
    fn an_exit_of_an_unknown_process_is_still_recorded() {
        let mut table = ProcessTable::default();
        let info = table.exit(42, 5, 10, 9, 100);
        assert_eq!((info.pid, info.start_ns, info.exit_status), (42, 5, Some(9)));
    }
}
