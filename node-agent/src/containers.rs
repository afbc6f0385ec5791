//! Says what each cgroup is (its path, container and pod) once per agent
//! run, before or alongside the first event from it.

use std::collections::HashSet;

use plumbline_proto::{
    v1::{event::Body, ContainerInfo},
    BatchBuilder,
};

use crate::cgroups::CgroupResolver;

#[derive(Default)]
pub struct ContainerAnnouncer {
    resolver: CgroupResolver,
    announced: HashSet<u64>,
}

impl ContainerAnnouncer {
    /// Adds a `ContainerInfo` for `cgroup_id` the first time it is seen;
    /// `pid` is a process in it (for the pod's name and namespace).
    pub fn announce(&mut self, cgroup_id: u64, pid: u32, ts_ns: u64, batch: &mut BatchBuilder) {
        if cgroup_id == 0 || self.announced.contains(&cgroup_id) {
            return;
        }
        // Not found yet (created since the last scan, which is rate-limited):
        // a later event of the same cgroup tries again.
        let Some(id) = self.resolver.identify(cgroup_id, pid) else { return };
        self.announced.insert(cgroup_id);
        let info = ContainerInfo {
            cgroup_id,
            cgroup_path_sid: batch.intern(&id.path),
            container_id_sid: batch.intern(&id.container_id),
            runtime_sid: batch.intern(&id.runtime),
            pod_uid_sid: batch.intern(&id.pod_uid),
            pod_namespace_sid: batch.intern(&id.pod_namespace),
            pod_name_sid: batch.intern(&id.pod_name),
        };
        batch.push(ts_ns, 0, 0, cgroup_id, Body::Container(info));
    }

    /// What `cgroup_id` stands for (path, container, pod), when known.
    pub fn identity(&mut self, cgroup_id: u64, pid: u32) -> Option<crate::cgroups::CgroupIdentity> {
        self.resolver.identify(cgroup_id, pid)
    }

    /// Forgets what was said: the next batch stream (a new sink after a
    /// restart, say) gets every cgroup described again.
    pub fn forget(&mut self) {
        self.announced.clear();
    }
}
