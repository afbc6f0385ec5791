//! From a cgroup id to what it stands for: its path under cgroup v2, the
//! container in it (docker, containerd, cri-o, podman) and the Kubernetes pod,
//! as far as the path and /proc reveal them.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use procfs::process::Process;

/// Where cgroup v2 is mounted (`/sys/fs/cgroup` or, in the hybrid layout,
/// `/sys/fs/cgroup/unified`).
pub fn cgroup2_mount() -> Option<PathBuf> {
    Process::myself().ok()?.mountinfo().ok()?.into_iter().find(|m| m.fs_type == "cgroup2").map(|m| m.mount_point)
}

/// What a cgroup path says about its container and pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupIdentity {
    pub path: String,
    pub container_id: String,
    pub runtime: String,
    pub pod_uid: String,
    pub pod_namespace: String,
    pub pod_name: String,
}

fn hex_run(segment: &str) -> Option<&str> {
    let bytes = segment.as_bytes();
    (0..bytes.len().saturating_sub(63)).find_map(|start| {
        let run = &segment[start..start + 64];
        run.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()).then_some(run)
    })
}

/// Reads the container id, its runtime and the pod uid from a cgroup path,
/// for the usual cgroupfs and systemd layouts.
pub fn parse_cgroup_path(path: &str) -> CgroupIdentity {
    let mut id = CgroupIdentity { path: path.to_string(), ..Default::default() };
    for segment in path.split('/') {
        // cgroupfs: `pod<uid>`; systemd: `kubepods-burstable-pod<uid with _>.slice`.
        let candidate = match segment.strip_prefix("pod") {
            Some(rest) => Some(rest),
            None => segment.split('-').find_map(|part| part.strip_prefix("pod")),
        };
        if let Some(uid) = candidate.map(|u| u.trim_end_matches(".slice")).filter(|uid| uid.len() >= 32) {
            // systemd writes the uid's dashes as underscores.
            id.pod_uid = uid.replace('_', "-");
        }
        if let Some(hex) = hex_run(segment) {
            id.container_id = hex.to_string();
            id.runtime = match segment {
                s if s.starts_with("docker") || path.contains("/docker/") => "docker",
                s if s.starts_with("cri-containerd") || path.contains("containerd") => "containerd",
                s if s.starts_with("crio") => "cri-o",
                s if s.starts_with("libpod") => "podman",
                _ if path.contains("kubepods") => "kubernetes",
                _ => "",
            }
            .to_string();
        }
    }
    id
}

/// The pod's name and namespace, read inside the container of `pid`: its
/// hostname is the pod name; its service account names the namespace.
fn pod_details(pid: u32) -> (String, String) {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).map(|s| s.trim().to_string()).unwrap_or_default();
    (read("var/run/secrets/kubernetes.io/serviceaccount/namespace"), read("etc/hostname"))
}

/// Cgroup id → path, learned by walking the cgroup v2 tree; rescanned (at
/// most every few seconds) when an id is new.
pub struct CgroupResolver {
    root: Option<PathBuf>,
    by_id: HashMap<u64, String>,
    last_scan: Option<Instant>,
    /// Ids that were missing once: a new cgroup gets one immediate rescan,
    /// a vanished one only the rate-limited ones.
    missed: std::collections::HashSet<u64>,
}

const RESCAN_AFTER: Duration = Duration::from_secs(2);

impl Default for CgroupResolver {
    fn default() -> Self {
        Self { root: cgroup2_mount(), by_id: HashMap::new(), last_scan: None, missed: Default::default() }
    }
}

impl CgroupResolver {
    /// What `cgroup_id` stands for; `pid` is a process in it (for pod details).
    pub fn identify(&mut self, cgroup_id: u64, pid: u32) -> Option<CgroupIdentity> {
        if !self.by_id.contains_key(&cgroup_id)
            && (self.missed.insert(cgroup_id) || self.last_scan.is_none_or(|t| t.elapsed() >= RESCAN_AFTER))
        {
            self.scan();
        }
        let path = self.by_id.get(&cgroup_id)?;
        let mut identity = parse_cgroup_path(path);
        if !identity.pod_uid.is_empty() && pid != 0 {
            (identity.pod_namespace, identity.pod_name) = pod_details(pid);
        }
        Some(identity)
    }

    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        let Some(root) = self.root.clone() else { return };
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else { continue };
            let relative = dir.strip_prefix(&root).map(Path::to_path_buf).unwrap_or_default();
            self.by_id.insert(meta.ino(), format!("/{}", relative.display()));
            if let Ok(entries) = std::fs::read_dir(&dir) {
                stack.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f9c1b2e5a7d4c6b8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";

    #[test]
    fn kubernetes_systemd_layout_gives_container_and_pod_uid() {
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c2d3e4f_5a6b_7c8d_9e0f_a1b2c3d4e5f6.slice/cri-containerd-{ID}.scope"
        );
        let id = parse_cgroup_path(&path);
        assert_eq!(id.container_id, ID);
        assert_eq!(id.runtime, "containerd");
        assert_eq!(id.pod_uid, "1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6");
    }

    #[test]
    fn docker_and_cgroupfs_layouts_and_plain_cgroups() {
        let docker = parse_cgroup_path(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!((docker.container_id.as_str(), docker.runtime.as_str()), (ID, "docker"));
        let cgroupfs = parse_cgroup_path(&format!("/kubepods/besteffort/pod1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6/{ID}"));
        assert_eq!(
            (cgroupfs.container_id.as_str(), cgroupfs.pod_uid.as_str()),
            (ID, "1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6")
        );
        let plain = parse_cgroup_path("/user.slice/user-0.slice/session-1.scope");
        assert_eq!((plain.container_id.as_str(), plain.pod_uid.as_str()), ("", ""));
    }

    #[test]
    fn the_root_cgroup_of_this_machine_resolves() {
        let mut resolver = CgroupResolver::default();
        let root = cgroup2_mount().expect("cgroup v2 is mounted");
        let id = std::fs::metadata(root).unwrap().ino();
        assert_eq!(resolver.identify(id, 0).unwrap().path, "/");
    }
}
