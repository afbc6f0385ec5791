//! A policy file that may change while the agent runs.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{Policy, PolicyError};

/// What [`PolicyFile::reload`] found.
#[derive(Debug)]
pub enum Reload {
    /// The file is as it was (or broken as it was): nothing to do.
    Unchanged,
    /// A new policy is in force: push it.
    Replaced,
    /// The file changed and is broken; the last good policy stays in force.
    /// Reported once per breakage.
    Broken(PolicyError),
}

/// A policy file that may change while the agent runs.
#[derive(Debug)]
pub struct PolicyFile {
    path: PathBuf,
    policy: Arc<Policy>,
    /// SHA-256 (hex) of the text of the policy in force.
    version: String,
    /// The text last read (good or broken), or the read error's text.
    last_seen: Result<String, String>,
    /// LLM providers the node knows besides the catalog's.
    providers: Vec<String>,
}

impl PolicyFile {
    /// Loads the file; a broken file at start is an error (nothing would be
    /// in force).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, PolicyError> {
        Self::open_knowing(path, Vec::new())
    }

    /// [`PolicyFile::open`], knowing the LLM `providers` of the node's
    /// configured endpoints besides the catalog's.
    pub fn open_knowing(path: impl Into<PathBuf>, providers: Vec<String>) -> Result<Self, PolicyError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read { path: path.clone(), source })?;
        let policy = Arc::new(Policy::parse_knowing(&text, &providers)?);
        Ok(Self { path, policy, version: version(&text), last_seen: Ok(text), providers })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// SHA-256 (hex) of the file's text in force: what `sha256sum` prints
    /// for the file when it is the one in force.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Re-reads the file; replaces the policy when the text changed and
    /// parses. A broken file is logged and returned once, until it changes
    /// again.
    pub fn reload(&mut self) -> Reload {
        let read = std::fs::read_to_string(&self.path);
        let seen = read.as_ref().map(String::clone).map_err(|e| e.to_string());
        if seen == self.last_seen {
            return Reload::Unchanged;
        }
        self.last_seen = seen;
        let parsed = read
            .map_err(|source| PolicyError::Read { path: self.path.clone(), source })
            .and_then(|text| Ok((Policy::parse_knowing(&text, &self.providers)?, version(&text))));
        match parsed {
            Ok((policy, version)) => {
                self.policy = Arc::new(policy);
                self.version = version;
                let roles = self.policy.roles.len();
                tracing::info!(file = %self.path.display(), roles, "enforcement policy in force");
                Reload::Replaced
            }
            Err(err) => {
                let file = self.path.display();
                tracing::warn!(%file, %err, "enforcement policy not used; keeping the one in force");
                Reload::Broken(err)
            }
        }
    }
}

fn version(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
