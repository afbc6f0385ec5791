//! The agent's configuration (`agent.toml`, env prefix `PLUMBLINE_AGENT_`).

pub use plumbline_config::MetricsConfig;
use plumbline_config::{invalid, ConfigError, Validate};
use plumbline_transport::kafka::KafkaSinkConfig;
use serde::{Deserialize, Serialize};

/// Environment variables overriding the agent's configuration start with this.
pub const ENV_PREFIX: &str = "PLUMBLINE_AGENT_";

#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub node: NodeConfig,
    pub capture: CaptureConfig,
    pub filter: FilterConfig,
    pub batch: BatchConfig,
    pub metrics: MetricsConfig,
    pub sink: SinkConfig,
}

impl Validate for AgentConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.capture.validate("capture")?;
        self.metrics.validate("metrics")?;
        self.batch.validate("batch")?;
        match &self.sink {
            SinkConfig::Kafka(kafka) => kafka.validate("sink"),
            SinkConfig::Stdout => Ok(()),
        }
    }
}

impl AgentConfig {
    pub fn settings(&self) -> CaptureSettings<'_> {
        CaptureSettings {
            node: &self.node,
            capture: &self.capture,
            filter: &self.filter,
            batch: &self.batch,
            metrics: &self.metrics,
            more_metrics: None,
        }
    }
}

/// What capture needs whatever the sink: the sections the agent shares with
/// the single-host default (`plumbline run`).
#[derive(Debug, Clone, Copy)]
pub struct CaptureSettings<'a> {
    pub node: &'a NodeConfig,
    pub capture: &'a CaptureConfig,
    pub filter: &'a FilterConfig,
    pub batch: &'a BatchConfig,
    pub metrics: &'a MetricsConfig,
    /// Another exposition served after the agent's on its `/metrics` (the
    /// aggregator's, when both run in one process).
    pub more_metrics: Option<&'a crate::metrics::MoreMetrics>,
}

/// `[filter]`: what never leaves the kernel. Deny rules always apply; a
/// non-empty allow list keeps only what it names. Cgroups are paths under the
/// cgroup v2 mount (`/system.slice/ssh.service`) and cover their descendants.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Keep only these process ids (when not empty). Default empty.
    pub allow_pids: Vec<u32>,
    /// Never capture these process ids. Default empty.
    pub deny_pids: Vec<u32>,
    /// Keep only processes with these names (comm, when not empty). Default empty.
    pub allow_comms: Vec<String>,
    /// Never capture processes with these names (comm). Default empty.
    pub deny_comms: Vec<String>,
    /// Keep only processes in these cgroups or below them (when not empty). Default empty.
    pub allow_cgroups: Vec<String>,
    /// Never capture processes in these cgroups or below them. Default empty.
    pub deny_cgroups: Vec<String>,
    /// Leave the agent's own process out (its sends to the sink would
    /// otherwise be captured and sent again). Default true.
    pub ignore_self: bool,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            allow_pids: Vec::new(),
            deny_pids: Vec::new(),
            allow_comms: Vec::new(),
            deny_comms: Vec::new(),
            allow_cgroups: Vec::new(),
            deny_cgroups: Vec::new(),
            ignore_self: true,
        }
    }
}

/// `[node]`: who this node is.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Name the node's events carry. Default: the kernel's host name.
    pub host: Option<String>,
}

/// `[capture]`: the kernel side.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Size of the process-lifecycle ring buffer, KiB; a power of two, at
    /// least 4. Process events have a ring of their own so that a flood of
    /// file or network events cannot crowd them out. Default 8192 (about
    /// 20,000 processes' fork, exec with argv, and exit).
    pub ring_buffer_kib: u32,
    /// Ring of file events (opens, unlinks, renames), KiB. Default 8192.
    pub file_ring_kib: u32,
    /// Ring of network events (connects, accepts, closes, DNS), KiB. Default 4096.
    pub net_ring_kib: u32,
    /// Ring of shared-memory events, KiB. Default 256.
    pub ipc_ring_kib: u32,
    /// The kernel wakes the agent once this many KiB wait in a ring.
    /// Default 64.
    pub wakeup_kib: u32,
    /// Capture file opens, unlinks, renames and write volume. Default true.
    pub files: bool,
    /// Capture connects, accepts, connection closes with bytes, and DNS. Default true.
    pub network: bool,
    /// Capture pipes, unix sockets and shared memory. Default true.
    pub ipc: bool,
    /// Capture TLS plaintext (OpenSSL, Go) and read LLM calls from it. Default true.
    pub tls: bool,
    /// `[capture.intent]`: what TLS capture keeps and how it reads it.
    pub intent: crate::intent::config::IntentConfig,
    /// CUDA runtime and NCCL calls: `gpu = false` turns them off, a
    /// `[capture.gpu]` table says how. Default on.
    #[serde(deserialize_with = "crate::gpu::config::bool_or_table")]
    pub gpu: crate::gpu::config::GpuConfig,
    /// `[capture.enforce]`: a workload policy the kernel enforces. Off
    /// unless a policy file is named.
    pub enforce: crate::enforce::config::EnforceConfig,
    /// Repeats of an open of the same file by the same process within this
    /// window are counted in the kernel, not sent one by one. Default 1000.
    pub open_collapse_ms: u64,
    /// How often the kernel's IO and repeat counts are read and reported.
    /// Default 1000.
    pub sweep_interval_ms: u64,
    /// UDP port of DNS servers whose traffic is read. Default 53.
    pub dns_port: u16,
    /// The agent drains the ring at least this often, so a quiet ring below
    /// the wake-up mark is never stuck. Default 100.
    pub drain_interval_ms: u64,
    /// Records of all rings are turned into events in the order they were
    /// stamped; a drain holds back those stamped within this long before it
    /// began, which a program may still be committing. Records that come
    /// later than that are counted (`records_late`). Default 10.
    pub order_slack_ms: u64,
    /// How often the kernel's drop counters are read and turned into loss
    /// markers. Default 1000.
    pub counters_interval_ms: u64,
    /// How long an exited process stays in the process table for events that
    /// arrive late. Default 30000.
    pub exited_process_ttl_ms: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            ring_buffer_kib: 8192,
            file_ring_kib: 8192,
            net_ring_kib: 4096,
            ipc_ring_kib: 256,
            wakeup_kib: 64,
            files: true,
            network: true,
            ipc: true,
            tls: true,
            intent: Default::default(),
            gpu: Default::default(),
            enforce: Default::default(),
            open_collapse_ms: 1000,
            sweep_interval_ms: 1000,
            dns_port: 53,
            drain_interval_ms: 100,
            order_slack_ms: 10,
            counters_interval_ms: 1000,
            exited_process_ttl_ms: 30_000,
        }
    }
}

impl CaptureConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let rings = [
            ("ring_buffer_kib", self.ring_buffer_kib),
            ("file_ring_kib", self.file_ring_kib),
            ("net_ring_kib", self.net_ring_kib),
            ("ipc_ring_kib", self.ipc_ring_kib),
        ];
        for (key, kib) in rings {
            if kib < 4 || !kib.is_power_of_two() {
                return Err(invalid(&format!("{prefix}.{key}"), "must be a power of two, at least 4"));
            }
        }
        if self.wakeup_kib == 0 || rings.iter().any(|(_, kib)| self.wakeup_kib >= *kib) {
            return Err(invalid(&format!("{prefix}.wakeup_kib"), "must be above 0 and below every ring's size"));
        }
        for (key, value) in [
            ("drain_interval_ms", self.drain_interval_ms),
            ("counters_interval_ms", self.counters_interval_ms),
            ("sweep_interval_ms", self.sweep_interval_ms),
        ] {
            if value == 0 {
                return Err(invalid(&format!("{prefix}.{key}"), "must be above 0"));
            }
        }
        self.intent.validate(&format!("{prefix}.intent"))?;
        self.gpu.validate(&format!("{prefix}.gpu"))?;
        self.enforce.validate(&format!("{prefix}.enforce"))?;
        if self.wakeup_kib >= self.intent.ring_kib || self.wakeup_kib >= self.gpu.ring_kib {
            return Err(invalid(&format!("{prefix}.wakeup_kib"), "must be below every ring's size"));
        }
        Ok(())
    }
}

/// `[batch]`: how events are grouped on their way out.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send a batch once it holds this many events. Default 4096.
    pub max_events: usize,
    /// ... or about this many bytes. Default 1048576.
    pub max_bytes: usize,
    /// ... or once its first event is this old. Default 250.
    pub max_delay_ms: u64,
    /// Batches waiting for the sink before capture waits for it (and the
    /// kernel ring, then its drop counters, take the strain). Default 256.
    pub queue_batches: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_events: 4096, max_bytes: 1 << 20, max_delay_ms: 250, queue_batches: 256 }
    }
}

impl BatchConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        for (key, value) in [
            ("max_events", self.max_events as u64),
            ("max_bytes", self.max_bytes as u64),
            ("max_delay_ms", self.max_delay_ms),
            ("queue_batches", self.queue_batches as u64),
        ] {
            if value == 0 {
                return Err(invalid(&format!("{prefix}.{key}"), "must be above 0"));
            }
        }
        Ok(())
    }
}

/// `[sink]`: where batches go; `kind = "kafka"` (default) or `"stdout"`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SinkConfig {
    /// A Kafka topic: batches keyed by host (NCCL calls by job), acknowledged
    /// before they are forgotten.
    Kafka(KafkaSinkConfig),
    /// One JSON line per event, for a quick look.
    Stdout,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig::Kafka(KafkaSinkConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_a_valid_configuration_with_documented_defaults() {
        let config: AgentConfig = plumbline_config::from_toml("").unwrap();
        assert_eq!(config.capture.ring_buffer_kib, 8192);
        assert!(matches!(config.sink, SinkConfig::Kafka(ref k) if k.topic == "plumbline.events"));
    }

    #[test]
    fn kafka_sink_keys_sit_under_sink() {
        let config: AgentConfig =
            plumbline_config::from_toml("[sink]\nkind = \"kafka\"\nbrokers = \"k1:9092\"\ncompression = \"lz4\"\n")
                .unwrap();
        let SinkConfig::Kafka(kafka) = config.sink else { panic!() };
        assert_eq!((kafka.brokers.as_str(), kafka.compression.as_str()), ("k1:9092", "lz4"));
    }

    #[test]
    fn unknown_keys_are_named_wherever_they_are() {
        for (toml, key) in [
            ("[capture]\nring_bufer_kib = 8\n", "ring_bufer_kib"),
            ("[sink]\nkind = \"kafka\"\nbrokerz = \"x\"\n", "brokerz"),
            ("[sinks]\n", "sinks"),
        ] {
            let err = plumbline_config::from_toml::<AgentConfig>(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml:?} -> {err}");
        }
    }

    #[test]
    fn intent_settings_are_checked_by_name() {
        for (toml, key) in [
            ("[capture.intent]\nprompt_capture = \"partial\"\n", "prompt_capture"),
            ("[capture.intent]\nmax_capture_kib = 9000\n", "capture.intent.max_capture_kib"),
            ("[[capture.intent.agents]]\nagent = \"a\"\nfield = \"NAME\"\npattern = \"x\"\n", "field"),
            ("[[capture.intent.agents]]\nagent = \"a\"\nfield = \"CGROUP\"\npattern = \"(\"\n", "agents[0].pattern"),
            ("[[capture.intent.endpoints]]\nprovider = \"x\"\nhost = \"h\"\npath_prefix = \"/\"\nformat = \"soap\"\n", "format"),
        ] {
            let err = plumbline_config::from_toml::<AgentConfig>(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml:?} -> {err}");
        }
        let ok: AgentConfig = plumbline_config::from_toml(
            "[[capture.intent.agents]]\nagent = \"coder\"\npriority = 3\nfield = \"K8S_NAMESPACE\"\npattern = \"^ai$\"\n",
        )
        .unwrap();
        assert_eq!(ok.capture.intent.agents[0].priority, 3);
    }

    #[test]
    fn gpu_capture_is_on_by_default_and_turned_off_or_set_by_name() {
        let config: AgentConfig = plumbline_config::from_toml("").unwrap();
        assert!(config.capture.gpu.enabled);
        let off: AgentConfig = plumbline_config::from_toml("[capture]\ngpu = false\n").unwrap();
        assert!(!off.capture.gpu.enabled);
        let set: AgentConfig = plumbline_config::from_toml(
            "[capture.gpu]\npreload = [\"/opt/nvidia/libnccl.so.2\"]\nrescan_interval_ms = 500\n",
        )
        .unwrap();
        assert!(set.capture.gpu.enabled);
        assert_eq!(set.capture.gpu.preload, [std::path::PathBuf::from("/opt/nvidia/libnccl.so.2")]);
        assert_eq!(set.capture.gpu.rescan_interval_ms, 500);
        for (toml, key) in [
            ("[capture.gpu]\npreloads = []\n", "preloads"),
            ("[capture.gpu]\nring_kib = 100\n", "capture.gpu.ring_kib"),
            ("[capture]\ngpu = \"yes\"\n", "gpu"),
        ] {
            let err = plumbline_config::from_toml::<AgentConfig>(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml:?} -> {err}");
        }
        // What `validate` prints reads back the same.
        let printed = toml::to_string(&set).unwrap();
        let again: AgentConfig = plumbline_config::from_toml(&printed).unwrap();
        assert_eq!(again.capture.gpu.preload, set.capture.gpu.preload);
    }

    #[test]
    fn a_ring_that_is_not_a_power_of_two_is_refused() {
        let err = plumbline_config::from_toml::<AgentConfig>("[capture]\nring_buffer_kib = 100\n").unwrap_err();
        assert!(err.to_string().contains("capture.ring_buffer_kib"), "{err}");
    }
}
