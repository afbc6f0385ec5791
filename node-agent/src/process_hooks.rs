//! How the captures that follow processes (intent, GPU) hear of them: one
//! surface, called from one place in the encoder, for every process that
//! starts, forks or exits, and for their periodic work.

use plumbline_proto::BatchBuilder;

use crate::{containers::ContainerAnnouncer, dns::DnsTracker, process_table::ProcessTable};

/// Which process, and when. The thread and cgroup are its record's (a
/// process found running at start: its pid and its own cgroup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessAt {
    pub pid: u32,
    pub tid: u32,
    pub cgroup_id: u64,
    pub ts_ns: u64,
}

/// What a hook may read of the host, and the batch its events go to.
pub struct Host<'a> {
    pub table: &'a ProcessTable,
    pub containers: &'a mut ContainerAnnouncer,
    pub dns: &'a DnsTracker,
    pub batch: &'a mut BatchBuilder,
}

/// A capture that follows processes through their lives. The process table
/// already holds the change when a hook is called.
pub trait ProcessHooks {
    /// `process` exec'd a new image, or was found running when the agent
    /// started (`seeded`).
    fn started(&mut self, process: ProcessAt, seeded: bool, host: &mut Host<'_>);

    /// `process` forked; it runs its parent's image until it execs.
    fn forked(&mut self, _process: ProcessAt, _host: &mut Host<'_>) {}

    /// `process`, which started at `start_ns`, exited.
    fn exited(&mut self, process: ProcessAt, start_ns: u64);

    /// Periodic work, after each sweep.
    fn tick(&mut self, now_ns: u64, host: &mut Host<'_>);
}
