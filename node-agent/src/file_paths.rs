//! Names the kernel does not repeat: the path of a file known by inode (for
//! write accounting), of an open known by its collapse key (for repeat
//! summaries), of a unix socket known by inode. Learned from records; bounded.
//!
//! A file is known by (dev, ino, gen): filesystems give a freed inode number
//! to the next new file at once, and only the generation tells the two apart.
//! Its bytes are named by the path its writer opened it by, which is the name
//! it had when written; a rename or unlink afterwards is a row of its own.

use std::hash::Hash;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use foldhash::HashMap;

use plumbline_ebpf::abi::OpenKey;

/// Names kept per map before the older half is forgotten.
const GENERATION_ENTRIES: usize = 65_536;

/// A file: device, inode, generation.
pub type FileId = (u64, u64, u32);

/// A map that keeps the names learned lately: when the current generation
/// is full it becomes the previous one and the one before is forgotten. A
/// forgotten name only means a fallback name later, and never the name of
/// whatever was learned just now.
struct Recent<K> {
    current: HashMap<K, Arc<str>>,
    previous: HashMap<K, Arc<str>>,
}

impl<K> Default for Recent<K> {
    fn default() -> Self {
        Self { current: HashMap::default(), previous: HashMap::default() }
    }
}

impl<K: Hash + Eq> Recent<K> {
    fn insert(&mut self, key: K, path: Arc<str>) {
        if self.current.len() >= GENERATION_ENTRIES {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, path);
    }

    fn get(&self, key: &K) -> Option<&Arc<str>> {
        self.current.get(key).or_else(|| self.previous.get(key))
    }
}

#[derive(Default)]
pub struct PathCache {
    // An open's path is kept once, shared by all three maps (this runs per open).
    by_opener: Recent<(u32, FileId)>,
    by_file: Recent<FileId>,
    by_open: Recent<OpenKey>,
    by_socket: Recent<u64>,
}

/// What a file written to is called, or why not yet.
#[derive(Debug, PartialEq, Eq)]
pub enum FileName {
    Known(String),
    /// No open of it has been read: it may still be on its way.
    Unknown,
}

impl PathCache {
    pub fn remember_open(&mut self, key: &OpenKey, path: &str) {
        let path: Arc<str> = path.into();
        if key.dev != 0 {
            let file = (key.dev, key.ino, key.gen);
            self.by_opener.insert((key.tgid, file), Arc::clone(&path));
            self.by_file.insert(file, Arc::clone(&path));
        }
        self.by_open.insert(*key, path);
    }

    pub fn remember_socket(&mut self, ino: u64, path: &str) {
        if ino != 0 && !path.is_empty() {
            self.by_socket.insert(ino, path.into());
        }
    }

    pub fn open(&self, key: &OpenKey) -> Option<&str> {
        self.by_open.get(key).map(|p| &**p)
    }

    pub fn socket(&self, ino: u64) -> Option<&str> {
        self.by_socket.get(&ino).map(|p| &**p)
    }

    /// The path `pid` opened `file` by; else the path it was last opened by
    /// (a descriptor inherited across fork or passed over a socket).
    pub fn file(&self, file: FileId, pid: u32) -> FileName {
        match self.by_opener.get(&(pid, file)).or_else(|| self.by_file.get(&file)) {
            Some(path) => FileName::Known(path.to_string()),
            None => FileName::Unknown,
        }
    }

    /// For a file no open of it was read for (opened before the agent
    /// started, or its open is still on its way or was lost): its current
    /// name in the file descriptors of `pid`, while they are still open.
    pub fn learn_unseen(&mut self, file: FileId, pid: u32) {
        if self.file(file, pid) == FileName::Unknown {
            if let Some(path) = fd_path(pid, file.0, file.1) {
                self.by_file.insert(file, path.into());
            }
        }
    }

    /// The name of a file nothing told the path of: which inode it is.
    pub fn unseen_name(&self, (dev, ino, _): FileId) -> String {
        format!("[inode {}:{} {ino}]", dev >> 20, dev & 0xfffff)
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

    fn open_key(tgid: u32, ino: u64, gen: u32) -> OpenKey {
        OpenKey { tgid, flags: 1, dev: 8 << 20, ino, result: 0, gen }
    }

    #[test]
    fn a_file_this_process_has_open_is_found_by_inode() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let meta = file.as_file().metadata().unwrap();
        let mut cache = PathCache::default();
        let id = (kernel_dev(meta.dev()), meta.ino(), 0);
        assert_eq!(cache.file(id, std::process::id()), FileName::Unknown);
        cache.learn_unseen(id, std::process::id());
        assert_eq!(cache.file(id, std::process::id()), FileName::Known(file.path().display().to_string()));
        cache.learn_unseen((1 << 20, 42, 0), std::process::id());
        assert_eq!(cache.file((1 << 20, 42, 0), std::process::id()), FileName::Unknown);
        assert_eq!(cache.unseen_name((1 << 20, 42, 0)), "[inode 1:0 42]");
    }

    #[test]
    fn a_reused_inode_number_keeps_each_file_s_own_name() {
        let mut cache = PathCache::default();
        cache.remember_open(&open_key(10, 77, 1), "/w/a1");
        cache.remember_open(&open_key(10, 77, 2), "/w/a2");
        cache.remember_open(&open_key(11, 77, 3), "/w/a3");
        let name = |gen, pid| cache.file((8 << 20, 77, gen), pid);
        assert_eq!(name(1, 10), FileName::Known("/w/a1".into()));
        assert_eq!(name(2, 10), FileName::Known("/w/a2".into()));
        assert_eq!(name(3, 11), FileName::Known("/w/a3".into()));
        // A child writing through its parent's descriptor.
        assert_eq!(name(1, 12), FileName::Known("/w/a1".into()));
        assert_eq!(name(4, 10), FileName::Unknown);
    }

    #[test]
    fn a_process_s_own_open_names_the_file_it_writes_whoever_opens_it_later() {
        let mut cache = PathCache::default();
        cache.remember_open(&open_key(10, 5, 9), "/w/a.txt");
        cache.remember_open(&open_key(11, 5, 9), "/w/b.txt"); // renamed, then opened by another
        assert_eq!(cache.file((8 << 20, 5, 9), 10), FileName::Known("/w/a.txt".into()));
        assert_eq!(cache.file((8 << 20, 5, 9), 11), FileName::Known("/w/b.txt".into()));
    }

    #[test]
    fn a_full_generation_keeps_the_names_learned_last() {
        let mut cache = PathCache::default();
        for ino in 0..(GENERATION_ENTRIES as u64 * 2 + 10) {
            cache.remember_open(&open_key(1, ino, 1), &format!("/w/{ino}"));
        }
        let last = GENERATION_ENTRIES as u64 * 2 + 9;
        assert_eq!(cache.file((8 << 20, last, 1), 1), FileName::Known(format!("/w/{last}")));
        assert_eq!(
            cache.file((8 << 20, last - GENERATION_ENTRIES as u64, 1), 1),
            FileName::Known(format!("/w/{}", last - GENERATION_ENTRIES as u64))
        );
        assert_eq!(cache.file((8 << 20, 0, 1), 1), FileName::Unknown);
    }
}
