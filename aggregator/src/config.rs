//! The aggregator's configuration (`aggregator.toml`, env prefix
//! `PLUMBLINE_AGGREGATOR_`).

use plumbline_config::{invalid, ConfigError, MetricsConfig, Validate};
use plumbline_store::StoreConfig;
use plumbline_transport::kafka::KafkaSourceConfig;
use serde::{Deserialize, Serialize};

use crate::collective_join::JoinSettings;

pub const ENV_PREFIX: &str = "PLUMBLINE_AGGREGATOR_";

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// `[source]`: the Kafka topic and consumer group.
    pub source: KafkaSourceConfig,
    /// `[store]`: where rows go.
    pub store: StoreConfig,
    /// `[pipeline]`: how deliveries become store writes, and the joins.
    pub pipeline: PipelineConfig,
    /// `[metrics]`: `GET /metrics`. Default `127.0.0.1:9465`.
    pub metrics: MetricsConfig,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        Self {
            source: KafkaSourceConfig::default(),
            store: StoreConfig::default(),
            pipeline: PipelineConfig::default(),
            metrics: MetricsConfig::at(DEFAULT_METRICS),
        }
    }
}

/// Where the aggregator serves `GET /metrics` unless told otherwise.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9465";

impl Validate for AggregatorConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.source.validate("source")?;
        self.store.validate("store")?;
        self.metrics.validate("metrics")?;
        self.pipeline.validate("pipeline")
    }
}

/// `[pipeline]`: how deliveries are grouped into store writes.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Deliveries (agent batches) per store write at most. Default 1024.
    pub max_batches: usize,
    /// Payload bytes (encoded batches) per store write at most; a write
    /// stops gathering once past it. Default 16 MiB: a write is large enough
    /// for ClickHouse (each insert makes a part) and its rows stay well
    /// under a gigabyte of memory.
    pub max_bytes: usize,
    /// How long to wait for more deliveries once one arrived. Default 200.
    pub linger_ms: u64,
    /// `[pipeline.gpu]`: how NCCL collectives are judged across ranks.
    pub gpu: GpuJoinConfig,
    /// `[pipeline.sessions]`: how agent sessions' intents and effects are
    /// linked and judged.
    pub sessions: SessionsConfig,
    /// `[[pipeline.quarantine]]`: the findings that quarantine their agent
    /// session — its processes may then reach only LLM endpoints (see
    /// docs/enforcement.md). Default none: nothing quarantines.
    pub quarantine: Vec<QuarantineRule>,
}

/// One `[[pipeline.quarantine]]` entry: a finding of `kind` with `severity`
/// or higher quarantines its session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineRule {
    /// A finding kind: `unverified_claim`, `out_of_scope_effect`,
    /// `reasoning_loop`, `coordination_bottleneck` or `guardrail`.
    pub kind: String,
    /// `low`, `medium` or `high`: that severity or higher. Default `high`.
    #[serde(default = "QuarantineRule::default_severity")]
    pub severity: String,
}

/// Finding severities, lowest first.
pub const SEVERITIES: [&str; 3] = ["low", "medium", "high"];

impl QuarantineRule {
    fn default_severity() -> String {
        "high".into()
    }

    /// Does a finding of `kind` and `severity` match?
    pub fn matches(&self, kind: &str, severity: &str) -> bool {
        let rank = |s: &str| SEVERITIES.iter().position(|known| *known == s);
        self.kind == kind && rank(severity).zip(rank(&self.severity)).is_some_and(|(found, least)| found >= least)
    }

    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !plumbline_store::finding_kind::ALL.contains(&self.kind.as_str()) {
            let known = plumbline_store::finding_kind::ALL.join(", ");
            return Err(invalid(&format!("{key}.kind"), format!("{:?} is not a finding kind ({known})", self.kind)));
        }
        if !SEVERITIES.contains(&self.severity.as_str()) {
            let known = SEVERITIES.join(", ");
            return Err(invalid(
                &format!("{key}.severity"),
                format!("{:?} is not a severity ({known})", self.severity),
            ));
        }
        Ok(())
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            max_batches: 1024,
            max_bytes: 16 << 20,
            linger_ms: 200,
            gpu: GpuJoinConfig::default(),
            sessions: SessionsConfig::default(),
            quarantine: Vec::new(),
        }
    }
}

/// `[pipeline.sessions]`: the causal graph of agent sessions and the
/// thresholds of its findings. Node agents key batches by host, so one
/// aggregator sees every event of a session.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// How long after an LLM response its tool calls may take effect; effects
    /// of the session's process tree within it are linked to the call.
    /// Default 60000.
    pub window_ms: u64,
    /// How long a closed turn waits for effects still in flight before its
    /// announced effects are judged missing. Default 2000.
    pub settle_ms: u64,
    /// How far behind the newest row of its host a row is held so that rows
    /// reach the graph in event time: more than the agent's sweep and
    /// open-collapse intervals. Default 2500.
    pub reorder_ms: u64,
    /// Near-identical calls in a row, with no effect between, that make a
    /// reasoning loop. Default 4.
    pub loop_calls: usize,
    /// Word overlap (0..1) above which two requests are near-identical.
    /// Default 0.9.
    pub loop_similarity: f64,
    /// Share of a session's wall time blocked on IPC with another agent that
    /// makes a coordination bottleneck ... Default 0.5.
    pub blocked_share: f64,
    /// ... when at least this long. Default 2000.
    pub blocked_min_ms: u64,
    /// Path substrings that mark a secret; a session's read of one is an
    /// out-of-scope effect.
    pub secret_paths: Vec<String>,
    /// File names that are secrets (also with any suffix: `.env.local`).
    pub secret_names: Vec<String>,
    /// Where sessions may connect: host names, addresses, `host:port`. Empty
    /// leaves egress unchecked; a session's own LLM endpoints are allowed.
    pub egress_allow: Vec<String>,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            settle_ms: 2_000,
            reorder_ms: 2_500,
            loop_calls: 4,
            loop_similarity: 0.9,
            blocked_share: 0.5,
            blocked_min_ms: 2_000,
            secret_paths: [
                "/.ssh/id_",
                "/.ssh/identity",
                "/.aws/credentials",
                "/.config/gcloud/",
                "/.azure/",
                "/.kube/config",
                "/.docker/config.json",
                "/etc/shadow",
                "/etc/gshadow",
                "/.mozilla/firefox/",
                "/.config/google-chrome/",
                "/.config/chromium/",
                "/.gnupg/",
                "/.git-credentials",
                "/.netrc",
            ]
            .map(String::from)
            .to_vec(),
            secret_names: [".env", ".npmrc", ".pypirc"].map(String::from).to_vec(),
            egress_allow: Vec::new(),
        }
    }
}

impl SessionsConfig {
    pub fn settings(&self) -> crate::session_graph::SessionSettings {
        crate::session_graph::SessionSettings {
            window_ns: self.window_ms * 1_000_000,
            settle_ns: self.settle_ms * 1_000_000,
            loop_calls: self.loop_calls,
            loop_similarity: self.loop_similarity,
            blocked_share: self.blocked_share,
            blocked_min_ns: self.blocked_min_ms * 1_000_000,
            secret_paths: self.secret_paths.clone(),
            secret_names: self.secret_names.clone(),
            egress_allow: self.egress_allow.clone(),
        }
    }
}

/// `[pipeline.gpu]`: when the collective join calls a rank a straggler and a
/// collective hung. One aggregator must see every rank of a communicator:
/// node agents key NCCL batches by communicator, so Kafka puts them on one
/// partition.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GpuJoinConfig {
    /// The last rank is a straggler when it arrived at least this long after
    /// the median rank ... Default 5.
    pub straggler_min_ms: u64,
    /// ... and at least this many times the median rank's distance from the
    /// median. Default 4.
    pub straggler_spread_factor: u64,
    /// Ranks still missing once every live host of the job reported this
    /// far past a collective's first arrival (event time) make it a hang; a
    /// host this far behind the job's newest report is silent. Default 30000.
    pub hang_after_ms: u64,
    /// Open collectives are checked for hangs with every delivery and, with
    /// none, this often. Default 1000.
    pub hang_check_interval_ms: u64,
    /// The largest clock offset between hosts that the join estimates and
    /// takes out; a whole host uniformly late by less looks like an offset.
    /// 0 turns the correction off. Default 100.
    pub clock_skew_max_ms: u64,
}

impl Default for GpuJoinConfig {
    fn default() -> Self {
        let settings = JoinSettings::default();
        Self {
            straggler_min_ms: settings.straggler_min_ns / 1_000_000,
            straggler_spread_factor: settings.straggler_spread_factor,
            hang_after_ms: settings.hang_after_ns / 1_000_000,
            hang_check_interval_ms: 1000,
            clock_skew_max_ms: settings.clock_skew_max_ns / 1_000_000,
        }
    }
}

impl GpuJoinConfig {
    pub fn settings(&self) -> JoinSettings {
        JoinSettings {
            straggler_min_ns: self.straggler_min_ms * 1_000_000,
            straggler_spread_factor: self.straggler_spread_factor,
            hang_after_ns: self.hang_after_ms * 1_000_000,
            clock_skew_max_ns: self.clock_skew_max_ms * 1_000_000,
        }
    }
}

impl PipelineConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.max_batches == 0 {
            return Err(invalid(&format!("{prefix}.max_batches"), "must be above 0"));
        }
        if self.max_bytes == 0 {
            return Err(invalid(&format!("{prefix}.max_bytes"), "must be above 0"));
        }
        if self.gpu.hang_after_ms == 0 {
            return Err(invalid(&format!("{prefix}.gpu.hang_after_ms"), "must be above 0"));
        }
        if self.gpu.hang_check_interval_ms == 0 {
            return Err(invalid(&format!("{prefix}.gpu.hang_check_interval_ms"), "must be above 0"));
        }
        let sessions = &self.sessions;
        if sessions.loop_calls < 2 {
            return Err(invalid(&format!("{prefix}.sessions.loop_calls"), "must be at least 2"));
        }
        for (key, value) in [("loop_similarity", sessions.loop_similarity), ("blocked_share", sessions.blocked_share)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(invalid(&format!("{prefix}.sessions.{key}"), "must be between 0 and 1"));
            }
        }
        if sessions.window_ms == 0 {
            return Err(invalid(&format!("{prefix}.sessions.window_ms"), "must be above 0"));
        }
        for (i, rule) in self.quarantine.iter().enumerate() {
            rule.validate(&format!("{prefix}.quarantine[{i}]"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_read_kafka_and_write_clickhouse() {
        let config: AggregatorConfig = plumbline_config::from_toml("").unwrap();
        assert_eq!(config.source.group_id, "plumbline-aggregator");
        assert!(matches!(config.store, StoreConfig::Clickhouse(_)));
    }

    #[test]
    fn nothing_quarantines_by_default_and_a_rule_takes_its_severity_and_above() {
        let config: AggregatorConfig = plumbline_config::from_toml("").unwrap();
        assert!(config.pipeline.quarantine.is_empty());
        let config: AggregatorConfig = plumbline_config::from_toml(
            "[[pipeline.quarantine]]\nkind = \"out_of_scope_effect\"\nseverity = \"medium\"\n\n\
             [[pipeline.quarantine]]\nkind = \"guardrail\"\n",
        )
        .unwrap();
        let [oos, guard] = &config.pipeline.quarantine[..] else { panic!("two rules") };
        assert!(oos.matches("out_of_scope_effect", "medium") && oos.matches("out_of_scope_effect", "high"));
        assert!(!oos.matches("out_of_scope_effect", "low") && !oos.matches("guardrail", "high"));
        assert_eq!(guard.severity, "high");
        assert!(guard.matches("guardrail", "high") && !guard.matches("guardrail", "medium"));
        assert!(!guard.matches("guardrail", "severe"), "an unknown severity matches nothing");
    }

    #[test]
    fn an_unknown_quarantine_kind_or_severity_is_refused_naming_the_key() {
        let load = |toml: &str| {
            let path = std::env::temp_dir().join(format!("quarantine-{}-{}.toml", std::process::id(), toml.len()));
            std::fs::write(&path, toml).unwrap();
            let result = plumbline_config::load::<AggregatorConfig>(Some(&path), "PLUMBLINE_TEST_NONE_");
            std::fs::remove_file(&path).unwrap();
            result.unwrap_err().to_string()
        };
        let err = load("[[pipeline.quarantine]]\nkind = \"out_of_scope\"\n");
        assert!(err.contains("pipeline.quarantine[0].kind") && err.contains("out_of_scope_effect"), "{err}");
        let err = load(
            "[[pipeline.quarantine]]\nkind = \"guardrail\"\n[[pipeline.quarantine]]\n\
             kind = \"reasoning_loop\"\nseverity = \"critical\"\n",
        );
        assert!(err.contains("pipeline.quarantine[1].severity") && err.contains("low, medium, high"), "{err}");
        let err = load("[[pipeline.quarantine]]\nkind = \"guardrail\"\nseverty = \"high\"\n");
        assert!(err.contains("severty"), "{err}");
    }

    #[test]
    fn store_keys_sit_under_store_and_unknown_ones_are_named() {
        let config: AggregatorConfig =
            plumbline_config::from_toml("[store]\nkind = \"sqlite\"\npath = \"/tmp/x.db\"\n").unwrap();
        assert!(matches!(config.store, StoreConfig::Sqlite(ref s) if s.path.to_str() == Some("/tmp/x.db")));
        let err = plumbline_config::from_toml::<AggregatorConfig>("[store]\nkind = \"clickhouse\"\nurll = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
    }
}
