//! `[filter]` turned into the kernel's filter maps and flags.

use std::os::unix::fs::MetadataExt;

use plumbline_ebpf::abi::{filter, CommKey, COMM_LEN};

use crate::config::FilterConfig;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("filter.{key}: comm `{comm}` is longer than the kernel's {max} bytes")]
    CommTooLong { key: &'static str, comm: String, max: usize },
    #[error("filter.{key}: cgroup `{path}` does not exist under {root}")]
    NoSuchCgroup { key: &'static str, path: String, root: String },
    #[error("filter.{key}: cgroup rules need cgroup v2, which is not mounted")]
    NoCgroup2 { key: &'static str },
}

/// The filter maps' entries and the flags that say which allow-lists apply.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters {
    pub pids: Vec<(u32, u8)>,
    pub comms: Vec<(CommKey, u8)>,
    pub cgroups: Vec<(u64, u8)>,
    /// The agent's own process, left out by a comparison rather than a map
    /// lookup (it is checked on every event); 0 for none.
    pub ignored_tgid: u32,
    allow_pids: bool,
    allow_comms: bool,
    allow_cgroups: bool,
}

impl Filters {
    /// Resolves `[filter]`; deny entries are added last so they win.
    /// `self_pid` is denied when `ignore_self` is set.
    pub fn resolve(config: &FilterConfig, self_pid: u32) -> Result<Self, FilterError> {
        let mut f = Filters {
            allow_pids: !config.allow_pids.is_empty(),
            allow_comms: !config.allow_comms.is_empty(),
            allow_cgroups: !config.allow_cgroups.is_empty(),
            ..Default::default()
        };
        f.pids.extend(config.allow_pids.iter().map(|&p| (p, filter::ALLOW)));
        f.pids.extend(config.deny_pids.iter().map(|&p| (p, filter::DENY)));
        if config.ignore_self {
            f.ignored_tgid = self_pid;
        }
        for (key, comms, verdict) in
            [("allow_comms", &config.allow_comms, filter::ALLOW), ("deny_comms", &config.deny_comms, filter::DENY)]
        {
            for comm in comms {
                f.comms.push((comm_key(key, comm)?, verdict));
            }
        }
        for (key, paths, verdict) in [
            ("allow_cgroups", &config.allow_cgroups, filter::ALLOW),
            ("deny_cgroups", &config.deny_cgroups, filter::DENY),
        ] {
            for path in paths {
                f.cgroups.push((cgroup_id(key, path)?, verdict));
            }
        }
        Ok(f)
    }

    /// `plb_filter_flags` for the objects.
    pub fn flags(&self) -> u32 {
        let mut flags = 0;
        for (on, bit) in [
            (self.allow_pids, filter::ALLOW_PIDS),
            (self.allow_comms, filter::ALLOW_COMMS),
            (self.allow_cgroups, filter::ALLOW_CGROUPS),
            (!self.pids.is_empty(), filter::HAS_PIDS),
            (!self.comms.is_empty(), filter::HAS_COMMS),
            (!self.cgroups.is_empty(), filter::HAS_CGROUPS),
        ] {
            if on {
                flags |= bit;
            }
        }
        flags
    }
}

fn comm_key(key: &'static str, comm: &str) -> Result<CommKey, FilterError> {
    // The kernel keeps 15 bytes and a NUL.
    if comm.len() >= COMM_LEN {
        return Err(FilterError::CommTooLong { key, comm: comm.to_string(), max: COMM_LEN - 1 });
    }
    let mut out = CommKey { comm: [0; COMM_LEN] };
    out.comm[..comm.len()].copy_from_slice(comm.as_bytes());
    Ok(out)
}

/// A cgroup v2 id is its directory's inode number.
fn cgroup_id(key: &'static str, path: &str) -> Result<u64, FilterError> {
    let root = crate::cgroups::cgroup2_mount().ok_or(FilterError::NoCgroup2 { key })?;
    let dir = root.join(path.trim_start_matches('/'));
    std::fs::metadata(&dir).map(|m| m.ino()).map_err(|_| FilterError::NoSuchCgroup {
        key,
        path: path.to_string(),
        root: root.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_entries_come_last_and_the_agent_denies_itself() {
        let config = FilterConfig {
            allow_pids: vec![1, 2],
            deny_pids: vec![2],
            deny_comms: vec!["node_exporter".into()],
            ..Default::default()
        };
        let f = Filters::resolve(&config, 99).unwrap();
        assert_eq!(f.pids, vec![(1, filter::ALLOW), (2, filter::ALLOW), (2, filter::DENY)]);
        assert_eq!(f.ignored_tgid, 99);
        assert_eq!(f.flags(), filter::ALLOW_PIDS | filter::HAS_PIDS | filter::HAS_COMMS);
        assert_eq!(&f.comms[0].0.comm[..13], b"node_exporter");
    }

    #[test]
    fn bad_rules_name_their_key() {
        let long = FilterConfig { deny_comms: vec!["a-name-too-long-for-comm".into()], ..Default::default() };
        assert!(Filters::resolve(&long, 1).unwrap_err().to_string().contains("filter.deny_comms"));
        let missing = FilterConfig { allow_cgroups: vec!["/no/such/cgroup".into()], ..Default::default() };
        assert!(Filters::resolve(&missing, 1).unwrap_err().to_string().contains("filter.allow_cgroups"));
    }
}
