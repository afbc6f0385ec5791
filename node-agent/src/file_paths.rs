//! Names the kernel does not repeat: the path of a file known by inode (for
//! write accounting), of an open known by its collapse key (for repeat
//! summaries), of a unix socket known by inode. Learned from records; bounded.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use foldhash::HashMap;

use plumbline_ebpf::abi::OpenKey;

const MAX_ENTRIES: usize = 65_536;

#[derive(Default)]
pub struct PathCache {
    // An open's path is kept once, shared by both maps (this runs per open).
    by_inode: HashMap<(u64, u64), Arc<str>>,
    by_open: HashMap<OpenKey, Arc<str>>,
    by_socket: HashMap<u64, Arc<str>>,
}

/// Inserts, forgetting everything first when the map is full: simple, bounded,
/// and a forgotten path only means a fallback name later.
fn bounded_insert<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Arc<str>>, key: K, path: Arc<str>) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, path);
}

impl PathCache {
    pub fn remember_open(&mut self, key: &OpenKey, path: &str) {
        let path: Arc<str> = path.into();
        if key.dev != 0 {
            bounded_insert(&mut self.by_inode, (key.dev, key.ino), Arc::clone(&path));
        }
        bounded_insert(&mut self.by_open, *key, path);
    }

    pub fn remember_socket(&mut self, ino: u64, path: &str) {
        if ino != 0 && !path.is_empty() {
            bounded_insert(&mut self.by_socket, ino, path.into());
        }
    }

    pub fn open(&self, key: &OpenKey) -> Option<&str> {
        self.by_open.get(key).map(|p| &**p)
    }

    pub fn socket(&self, ino: u64) -> Option<&str> {
        self.by_socket.get(&ino).map(|p| &**p)
    }

    /// The path of (dev, ino): from an open seen earlier, else from the file
    /// descriptors of `pid` (files opened before the agent started), else a
    /// name that says which inode it is.
    pub fn inode(&mut self, dev: u64, ino: u64, pid: u32) -> String {
        if let Some(path) = self.by_inode.get(&(dev, ino)) {
            return path.to_string();
        }
        match fd_path(pid, dev, ino) {
            Some(path) => {
                bounded_insert(&mut self.by_inode, (dev, ino), path.as_str().into());
                path
            }
            None => format!("[inode {}:{} {ino}]", dev >> 20, dev & 0xfffff),
        }
    }
}

/// The kernel's `s_dev` encoding (major << 20 | minor) of a stat `st_dev`.
fn kernel_dev(st_dev: u64) -> u64 {
    (u64::from(libc::major(st_dev)) << 20) | u64::from(libc::minor(st_dev))
}

/// Looks through `pid`'s open files for the one with (dev, ino).
fn fd_path(pid: u32, dev: u64, ino: u64) -> Option<String> {
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        let Ok(meta) = std::fs::metadata(entry.path()) else { continue };
        if meta.ino() == ino && kernel_dev(meta.dev()) == dev {
            return std::fs::read_link(entry.path()).ok().map(|p| p.display().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_this_process_has_open_is_found_by_inode() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let meta = file.as_file().metadata().unwrap();
        let mut cache = PathCache::default();
        let path = cache.inode(kernel_dev(meta.dev()), meta.ino(), std::process::id());
        assert_eq!(path, file.path().display().to_string());
        assert!(cache.inode(1 << 20, 42, std::process::id()).starts_with("[inode 1:0 42]"));
    }
}
