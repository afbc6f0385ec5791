//! Attaches the TLS programs to each file that holds a TLS library (see
//! [`crate::file_probes`]: once per file, all or nothing).

use std::path::{Path, PathBuf};

use aya::Ebpf;

use super::targets::{self, TlsTarget};
use crate::file_probes::{AttachFailed, FileProbes};

/// The loaded TLS object and what has been examined.
pub struct TlsProbes {
    files: FileProbes<Examined>,
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
pub(crate) const SYSTEM_LIBRARY_DIRS: [&str; 6] =
    ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/usr/local/lib"];

impl TlsProbes {
    pub fn new(ebpf: Ebpf) -> Self {
        Self { files: FileProbes::new(ebpf) }
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
        let examined = match self.files.examine(path, inspect)? {
            Ok(examined) => examined,
            Err(AttachFailed { what, error }) => {
                // Not remembered: the next process with this file tries again.
                tracing::warn!(path = %path.display(), error = format!("{error:#}"), "TLS library not hooked");
                Examined { hooked: false, reason: format!("{error:#}"), ..what }
            }
        };
        (!examined.library.is_empty()).then_some(examined)
    }
}

/// What the file holds, and the probes that hook it.
fn inspect(path: &Path) -> (Examined, Vec<crate::file_probes::ProbePoint>) {
    let examined = |library, hooked, reason| Examined { library, path: path.to_path_buf(), hooked, reason };
    match targets::examine(path) {
        Ok(TlsTarget::None) | Err(_) => (examined("", false, String::new()), Vec::new()),
        Ok(TlsTarget::Unhookable { library, reason }) => (examined(library, false, reason), Vec::new()),
        Ok(TlsTarget::Hookable { library, probes }) => (examined(library, true, String::new()), probes),
    }
}
