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
struct Recent<K, V = Arc<str>> {
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self { current: HashMap::default(), previous: HashMap::default() }
    }
}

impl<K: Hash + Eq, V> Recent<K, V> {
    /// Learns `value`; returns what the current generation held for `key`.
    fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.current.len() >= GENERATION_ENTRIES {
            // The older half goes; both maps keep their capacity.
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        self.current.insert(key, value)
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    fn remove(&mut self, key: &K) {
        self.current.remove(key);
        self.previous.remove(key);
    }
}

/// One insert per successful open (this runs per open record).
#[derive(Default)]
pub struct PathCache {
    /// The path a file was last opened by, and by which process.
    by_file: Recent<FileId, (u32, Arc<str>)>,
    /// A process that opened the file by another path than its last opener
    /// (the file was renamed in between).
    by_opener: Recent<(u32, FileId)>,
    /// Failed opens by their collapse key, which holds the path's hash.
    failed_opens: Recent<OpenKey>,
    by_socket: Recent<u64>,
}

impl PathCache {
    pub fn remember_open(&mut self, key: &OpenKey, path: &str) {
        let path: Arc<str> = path.into();
        if key.dev == 0 {
            self.failed_opens.insert(*key, path);
            return;
        }
        let file = (key.dev, key.ino, key.gen_);
        if let Some((opener, earlier)) = self.by_file.insert(file, (key.tgid, Arc::clone(&path))) {
            if earlier != path {
                if opener != key.tgid {
                    self.by_opener.insert((opener, file), earlier);
                }
                // This process's latest open is the one just learned.
                self.by_opener.remove(&(key.tgid, file));
            }
        }
    }

    pub fn remember_socket(&mut self, ino: u64, path: &str) {
        if ino != 0 && !path.is_empty() {
            self.by_socket.insert(ino, path.into());
        }
    }

    /// The path of an open known by its collapse key.
    pub fn open(&self, key: &OpenKey) -> Option<&str> {
        let path = match key.dev {
            0 => self.failed_opens.get(key),
            dev => self.opened_by(key.tgid, (dev, key.ino, key.gen_)),
        };
        path.map(|p| &**p)
    }

    fn opened_by(&self, pid: u32, file: FileId) -> Option<&Arc<str>> {
        self.by_opener.get(&(pid, file)).or_else(|| self.by_file.get(&file).map(|(_, path)| path))
    }

    pub fn socket(&self, ino: u64) -> Option<&str> {
        self.by_socket.get(&ino).map(|p| &**p)
    }

    /// The path `pid` opened `file` by; else the path it was last opened by
    /// (a descriptor inherited across fork or passed over a socket); `None`
    /// when no open of it has been read (it may still be on its way).
    pub fn file(&self, file: FileId, pid: u32) -> Option<&str> {
        self.opened_by(pid, file).map(|p| &**p)
    }

    /// For a file no open of it was read for (opened before the agent
    /// started, or its open is still on its way or was lost): its current
    /// name in the file descriptors of `pid`, while they are still open.
    pub fn learn_unseen(&mut self, file: FileId, pid: u32) {
        if self.file(file, pid).is_none() {
            if let Some(path) = fd_path(pid, file.0, file.1) {
                self.by_file.insert(file, (pid, path.into()));
            }
        }
    }
}

/// The name of a file nothing told the path of: which inode it is.
pub fn unseen_name((dev, ino, _): FileId) -> String {
    format!("[inode {}:{} {ino}]", dev >> 20, dev & 0xfffff)
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
        OpenKey { tgid, flags: 1, dev: 8 << 20, ino, result: 0, gen_: gen }
    }

    #[test]
    fn a_file_this_process_has_open_is_found_by_inode() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let meta = file.as_file().metadata().unwrap();
        let mut cache = PathCache::default();
        let id = (kernel_dev(meta.dev()), meta.ino(), 0);
        assert_eq!(cache.file(id, std::process::id()), None);
        cache.learn_unseen(id, std::process::id());
        assert_eq!(cache.file(id, std::process::id()), Some(&*file.path().display().to_string()));
        cache.learn_unseen((1 << 20, 42, 0), std::process::id());
        assert_eq!(cache.file((1 << 20, 42, 0), std::process::id()), None);
        assert_eq!(unseen_name((1 << 20, 42, 0)), "[inode 1:0 42]");
    }

    #[test]
    fn a_reused_inode_number_keeps_each_file_s_own_name() {
        let mut cache = PathCache::default();
        cache.remember_open(&open_key(10, 77, 1), "/w/a1");
        cache.remember_open(&open_key(10, 77, 2), "/w/a2");
        cache.remember_open(&open_key(11, 77, 3), "/w/a3");
        let name = |gen, pid| cache.file((8 << 20, 77, gen), pid);
        assert_eq!(name(1, 10), Some("/w/a1"));
        assert_eq!(name(2, 10), Some("/w/a2"));
        assert_eq!(name(3, 11), Some("/w/a3"));
        // A child writing through its parent's descriptor.
        assert_eq!(name(1, 12), Some("/w/a1"));
        assert_eq!(name(4, 10), None);
    }

    #[test]
    fn a_process_s_own_open_names_the_file_it_writes_whoever_opens_it_later() {
        let mut cache = PathCache::default();
        cache.remember_open(&open_key(10, 5, 9), "/w/a.txt");
        cache.remember_open(&open_key(11, 5, 9), "/w/b.txt"); // renamed, then opened by another
        assert_eq!(cache.file((8 << 20, 5, 9), 10), Some("/w/a.txt"));
        assert_eq!(cache.file((8 << 20, 5, 9), 11), Some("/w/b.txt"));
    }

    #[test]
    fn an_open_is_named_by_its_key_failed_or_not() {
        let mut cache = PathCache::default();
        let failed = OpenKey { tgid: 10, flags: 0, dev: 0, ino: 0xfeed, result: -2, gen_: 0 };
        cache.remember_open(&failed, "/w/missing");
        cache.remember_open(&open_key(10, 5, 9), "/w/a.txt");
        cache.remember_open(&open_key(10, 5, 9), "/w/b.txt"); // renamed, opened again by the same process
        assert_eq!(cache.open(&failed), Some("/w/missing"));
        assert_eq!(cache.open(&open_key(10, 5, 9)), Some("/w/b.txt"));
        assert_eq!(cache.open(&open_key(10, 5, 8)), None);
    }

    #[test]
    fn a_full_generation_keeps_the_names_learned_last() {
        let mut cache = PathCache::default();
        for ino in 0..(GENERATION_ENTRIES as u64 * 2 + 10) {
            cache.remember_open(&open_key(1, ino, 1), &format!("/w/{ino}"));
        }
        let last = GENERATION_ENTRIES as u64 * 2 + 9;
        assert_eq!(cache.file((8 << 20, last, 1), 1), Some(&*format!("/w/{last}")));
        assert_eq!(
            cache.file((8 << 20, last - GENERATION_ENTRIES as u64, 1), 1),
            Some(&*format!("/w/{}", last - GENERATION_ENTRIES as u64))
        );
        assert_eq!(cache.file((8 << 20, 0, 1), 1), None);
    }
}
