//! Uprobes placed on files. A uprobe lives on the file (its inode), so one
//! attach covers every process that maps it, now or later. Each file is
//! examined once by device and inode and its probes are attached all or
//! nothing; a failed attach is not remembered, so the next process holding
//! the file tries again. TLS and GPU capture both attach this way.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use aya::{
    programs::{
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
        UProbe,
    },
    Ebpf,
};
use object::{Object, ObjectSection};

/// A probe to attach in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePoint {
    /// The BPF program (`plb_ssl_write` ...).
    pub program: &'static str,
    /// File offset of the instruction to probe. Whether the probe fires at
    /// entry or on return is the program's own kind (`uprobe`/`uretprobe`).
    pub offset: u64,
    /// The symbol, for logs.
    pub symbol: String,
}

/// Attaching a file's probes failed: what the file is, and why.
#[derive(Debug)]
pub struct AttachFailed<T> {
    pub what: T,
    pub error: anyhow::Error,
}

/// A loaded object whose uprobe programs are attached file by file, and what
/// each file examined so far holds.
pub struct FileProbes<T> {
    ebpf: Ebpf,
    examined: HashMap<(u64, u64), T>,
}

impl<T: Clone> FileProbes<T> {
    pub fn new(ebpf: Ebpf) -> Self {
        Self { ebpf, examined: HashMap::new() }
    }

    /// What the file at `path` holds: `inspect` reads it, once per file, and
    /// names the probes to attach (none: nothing to hook). `None` when the
    /// file cannot be found.
    pub fn examine(
        &mut self,
        path: &Path,
        inspect: impl FnOnce(&Path) -> (T, Vec<ProbePoint>),
    ) -> Option<Result<T, AttachFailed<T>>> {
        let metadata = std::fs::metadata(path).ok()?;
        let key = (metadata.dev(), metadata.ino());
        if let Some(seen) = self.examined.get(&key) {
            return Some(Ok(seen.clone()));
        }
        let (what, probes) = inspect(path);
        if !probes.is_empty() {
            if let Err(error) = self.attach(path, &probes) {
                return Some(Err(AttachFailed { what, error }));
            }
        }
        self.examined.insert(key, what.clone());
        Some(Ok(what))
    }

    fn attach(&mut self, path: &Path, probes: &[ProbePoint]) -> anyhow::Result<()> {
        let mut links = Vec::new();
        for probe in probes {
            match self.attach_one(path, probe) {
                Ok(link) => links.push((probe.program, link)),
                Err(err) => {
                    // All or nothing: a retry must not attach a probe twice.
                    for (program, link) in links {
                        if let Some(p) = self.ebpf.program_mut(program).and_then(|p| <&mut UProbe>::try_from(p).ok()) {
                            let _ = p.detach(link);
                        }
                    }
                    return Err(err);
                }
            }
        }
        tracing::debug!(path = %path.display(), probes = probes.len(), "uprobes attached");
        Ok(())
    }

    fn attach_one(&mut self, path: &Path, probe: &ProbePoint) -> anyhow::Result<UProbeLinkId> {
        let program: &mut UProbe = self
            .ebpf
            .program_mut(probe.program)
            .ok_or_else(|| anyhow::anyhow!("no program {}", probe.program))?
            .try_into()?;
        let point = UProbeAttachPoint { location: UProbeAttachLocation::AbsoluteOffset(probe.offset), cookie: None };
        program.attach(point, path, UProbeScope::AllProcesses).map_err(|e| {
            anyhow::Error::from(e).context(format!(
                "attaching {} to {} in {}",
                probe.program,
                probe.symbol,
                path.display()
            ))
        })
    }
}

/// The file offset of a virtual address, through the section holding it.
pub fn file_offset(elf: &object::File<'_>, address: u64) -> Option<u64> {
    elf.sections().find_map(|section| {
        let (start, size) = (section.address(), section.size());
        let (file_start, _) = section.file_range()?;
        (address >= start && address < start + size).then(|| address - start + file_start)
    })
}

/// The files a process maps executable, each as `/proc/PID/root/<path>` so
/// that files inside containers are found; empty when the process is gone.
pub fn mapped_executables(pid: u32) -> Vec<PathBuf> {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else { return Vec::new() };
    let mut files: Vec<&str> = maps
        .lines()
        .filter(|line| line.split_whitespace().nth(1).is_some_and(|perms| perms.contains('x')))
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.starts_with('/'))
        .collect();
    files.sort_unstable();
    files.dedup();
    files.into_iter().map(|file| PathBuf::from(format!("/proc/{pid}/root{file}"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_maps_its_own_executable() {
        let files = mapped_executables(std::process::id());
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let root = format!("/proc/{}/root", std::process::id());
        assert!(
            files.iter().any(|f| f.strip_prefix(&root).is_ok_and(|p| Path::new("/").join(p) == exe)),
            "{files:?} holds {exe:?}"
        );
        assert!(mapped_executables(u32::MAX).is_empty());
    }
}
