//! `[capture.enforce]`: whether the agent enforces a workload policy, and
//! where the policy and the enrolment socket are.

use std::path::PathBuf;

use plumbline_config::{invalid, ConfigError};
use serde::{Deserialize, Serialize};

/// `[capture.enforce]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EnforceConfig {
    /// The policy file (roles and the workloads they confine; see
    /// docs/enforcement.md). Unset: nothing is enforced and no enforcement
    /// program is loaded. Re-read when it changes; a broken file keeps the
    /// last good policy in force.
    pub policy_file: Option<PathBuf>,
    /// The unix socket `plumbline enforce wrap` enrols its process through
    /// (root only). Default `/run/plumbline/enforce.sock`.
    pub control_socket: PathBuf,
}

impl Default for EnforceConfig {
    fn default() -> Self {
        Self { policy_file: None, control_socket: PathBuf::from("/run/plumbline/enforce.sock") }
    }
}

impl EnforceConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if let Some(path) = &self.policy_file {
            if !path.is_absolute() {
                return Err(invalid(&format!("{prefix}.policy_file"), "must be an absolute path"));
            }
        }
        if !self.control_socket.is_absolute() {
            return Err(invalid(&format!("{prefix}.control_socket"), "must be an absolute path"));
        }
        Ok(())
    }
}
