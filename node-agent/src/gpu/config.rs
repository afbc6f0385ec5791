//! `[capture.gpu]`: CUDA runtime and NCCL calls. `capture.gpu = false` turns
//! it off, like `capture.tls`; as a table it says how to capture.

use std::path::PathBuf;

use plumbline_config::{invalid, ConfigError};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    /// Capture CUDA runtime (libcudart) and NCCL calls. Default true.
    pub enabled: bool,
    /// Ring of GPU call records, KiB; a power of two, at least 64. Default 4096.
    pub ring_kib: u32,
    /// libcudart and libnccl files to hook at start, besides those found in
    /// processes' memory maps and opened while the agent runs. Default empty.
    pub preload: Vec<PathBuf>,
    /// How often every process's memory maps are read again for a library it
    /// loaded since (with file capture on, an open of one is seen at once).
    /// Default 10000.
    pub rescan_interval_ms: u64,
}

impl Default for GpuConfig {
    fn default() -> Self {
        Self { enabled: true, ring_kib: 4096, preload: Vec::new(), rescan_interval_ms: 10_000 }
    }
}

impl GpuConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.ring_kib < 64 || !self.ring_kib.is_power_of_two() {
            return Err(invalid(&format!("{prefix}.ring_kib"), "must be a power of two, at least 64"));
        }
        if self.rescan_interval_ms == 0 {
            return Err(invalid(&format!("{prefix}.rescan_interval_ms"), "must be above 0"));
        }
        Ok(())
    }
}

/// `gpu = true | false`, or a `[capture.gpu]` table (whose unknown keys are
/// named as anywhere else).
pub fn bool_or_table<'de, D: Deserializer<'de>>(deserializer: D) -> Result<GpuConfig, D::Error> {
    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = GpuConfig;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("true, false or a [capture.gpu] table")
        }

        fn visit_bool<E: serde::de::Error>(self, enabled: bool) -> Result<GpuConfig, E> {
            Ok(GpuConfig { enabled, ..GpuConfig::default() })
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<GpuConfig, A::Error> {
            GpuConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_any(Visitor)
}
