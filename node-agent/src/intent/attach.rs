//! Attaches the TLS programs to each file that holds a TLS library. A uprobe
//! lives on the file (its inode), so one attach covers every process that
//! maps it, now or later; each file is examined and attached once.

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

use super::targets::{self, TlsTarget};

/// The loaded TLS object and what has been examined.
pub struct TlsProbes {
    ebpf: Ebpf,
    /// (dev, ino) → what the file holds, and whether attaching worked.
    examined: HashMap<(u64, u64), Examined>,
}

/// A file's TLS stack as the agent handled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Examined {
    pub library: &'static str,
    pub path: PathBuf,
    pub hooked: bool,
    /// Why not hooked.
    pub reason: String,
}

/// Where Debian, Fedora and friends keep the system OpenSSL.
const SYSTEM_LIBRARY_DIRS: [&str; 6] =
    ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/usr/local/lib"];

impl TlsProbes {
    pub fn new(ebpf: Ebpf) -> Self {
        Self { ebpf, examined: HashMap::new() }
    }

    /// Hooks the system's OpenSSL libraries and the configured files before
    /// any process needs them.
    pub fn preload(&mut self, extra: &[PathBuf]) {
        let mut paths: Vec<PathBuf> = Vec::new();
        for dir in SYSTEM_LIBRARY_DIRS {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("libssl.so.") {
                    paths.push(entry.path());
                }
            }
        }
        paths.extend(extra.iter().cloned());
        for path in paths {
            if let Some(examined) = self.examine(&path) {
                tracing::info!(path = %path.display(), library = examined.library, hooked = examined.hooked, "TLS library at start");
            }
        }
    }

    /// Examines `path` (once per file) and attaches when it holds a stack the
    /// agent can hook. `None` when the file holds no TLS library.
    pub fn examine(&mut self, path: &Path) -> Option<Examined> {
        let metadata = std::fs::metadata(path).ok()?;
        let key = (metadata.dev(), metadata.ino());
        if let Some(seen) = self.examined.get(&key) {
            return (!seen.library.is_empty()).then(|| seen.clone());
        }
        let examined = match targets::examine(path) {
            Ok(TlsTarget::None) | Err(_) => {
                Examined { library: "", path: path.to_path_buf(), hooked: false, reason: String::new() }
            }
            Ok(TlsTarget::Unhookable { library, reason }) => {
                Examined { library, path: path.to_path_buf(), hooked: false, reason }
            }
            Ok(TlsTarget::Hookable { library, probes }) => match self.attach(path, &probes) {
                Ok(()) => Examined { library, path: path.to_path_buf(), hooked: true, reason: String::new() },
                Err(err) => {
                    // Not remembered: the next process with this file tries again.
                    tracing::warn!(path = %path.display(), error = format!("{err:#}"), "TLS library not hooked");
                    return Some(Examined {
                        library,
                        path: path.to_path_buf(),
                        hooked: false,
                        reason: format!("{err:#}"),
                    });
                }
            },
        };
        self.examined.insert(key, examined.clone());
        (!examined.library.is_empty()).then_some(examined)
    }

    fn attach(&mut self, path: &Path, probes: &[targets::ProbePoint]) -> anyhow::Result<()> {
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
        tracing::debug!(path = %path.display(), probes = probes.len(), "TLS probes attached");
        Ok(())
    }

    fn attach_one(&mut self, path: &Path, probe: &targets::ProbePoint) -> anyhow::Result<UProbeLinkId> {
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
