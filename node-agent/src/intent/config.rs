//! `[capture.intent]`: TLS plaintext capture and what the agent makes of it.

use std::path::PathBuf;

use plumbline_config::{invalid, ConfigError};
use plumbline_intent::endpoints::Endpoint;
use serde::{Deserialize, Serialize};

use super::agents::AgentRule;

/// How much of prompts, completions and tool results leaves the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PromptCapture {
    /// The text, secrets redacted.
    #[default]
    Full,
    /// `sha256:<hex>` of the redacted text: equal prompts can be matched,
    /// none can be read.
    Hashed,
    /// Nothing.
    Off,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IntentConfig {
    /// Plaintext bytes copied per TLS call, KiB; at most 4096. Bytes past it
    /// are counted as lost, never silently cut. Default 1024.
    pub max_capture_kib: u32,
    /// Ring of TLS plaintext, KiB; a power of two. Default 16384.
    pub ring_kib: u32,
    /// Longest HTTP body kept per message, KiB (the rest is counted, the
    /// message marked truncated). Default 1024.
    pub max_body_kib: u32,
    /// How much of prompts, completions and tool results leaves the node:
    /// `full` (the text, secrets redacted), `hashed` (`sha256:<hex>` of the
    /// redacted text: equal prompts can be matched, none can be read) or
    /// `off`. Default `full`.
    pub prompt_capture: PromptCapture,
    /// LLM endpoints beyond the built-in nine providers (checked first).
    pub endpoints: Vec<Endpoint>,
    /// Agent mapping rules (highest priority first).
    pub agents: Vec<AgentRule>,
    /// A TOML file of more `[[agents]]` rules, re-read when it changes, so
    /// rules can change while the agent runs. Default unset.
    pub agent_rules_file: Option<PathBuf>,
    /// A connection with no plaintext for this long is closed out (a body
    /// that runs until the connection closes is finished). Default 30000.
    pub idle_connection_ms: u64,
    /// Executables and libraries to examine and hook at start, besides the
    /// system libssl and every program that runs later. Default empty.
    pub preload: Vec<PathBuf>,
    /// Parser development only: append every connection's raw plaintext to
    /// `<dir>/<pid>-<connection>.{written,read}.bin`, the layout of the
    /// golden files in `intent/tests/golden/`. Holds secrets unredacted: never
    /// set it on a machine whose traffic is not yours. Default unset.
    pub dump_dir: Option<PathBuf>,
}

impl Default for IntentConfig {
    fn default() -> Self {
        Self {
            max_capture_kib: 1024,
            ring_kib: 16384,
            max_body_kib: 1024,
            prompt_capture: PromptCapture::Full,
            endpoints: Vec::new(),
            agents: Vec::new(),
            agent_rules_file: None,
            idle_connection_ms: 30_000,
            preload: Vec::new(),
            dump_dir: None,
        }
    }
}

impl IntentConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let ceiling = (plumbline_ebpf::abi::TLS_CHUNK * plumbline_ebpf::abi::TLS_MAX_CHUNKS / 1024) as u32;
        if self.max_capture_kib == 0 || self.max_capture_kib > ceiling {
            return Err(invalid(&format!("{prefix}.max_capture_kib"), format!("must be 1 to {ceiling}")));
        }
        if self.ring_kib < 64 || !self.ring_kib.is_power_of_two() {
            return Err(invalid(&format!("{prefix}.ring_kib"), "must be a power of two, at least 64"));
        }
        if self.max_body_kib == 0 {
            return Err(invalid(&format!("{prefix}.max_body_kib"), "must be above 0"));
        }
        for (i, rule) in self.agents.iter().enumerate() {
            rule.validate(&format!("{prefix}.agents[{i}]"))?;
        }
        Ok(())
    }
}
