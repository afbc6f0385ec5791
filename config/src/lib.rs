//! Configuration loading shared by every Plumbline component.
//!
//! A component's configuration is a serde struct with
//! `#[serde(deny_unknown_fields)]` and documented defaults. It is read from a
//! TOML file (optional: defaults alone are a valid configuration), then
//! overridden by environment variables with the component's prefix, nested
//! keys joined by `__`:
//! `PLUMBLINE_AGENT_SINK__BROKERS=10.0.0.1:9092` sets `sink.brokers`.
//! Unknown keys, from the file or the environment, are errors naming the key.
//! After parsing, [`Validate`] checks values that serde cannot.

use std::path::{Path, PathBuf};

use figment::{
    providers::{Env, Format, Toml},
    Figment,
};
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    Missing { path: PathBuf },
    /// Parse errors, unknown keys and wrong types; figment's message names the
    /// key and where it came from (file or environment variable).
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid configuration: `{key}` {message}")]
    InvalidValue { key: String, message: String },
}

/// Checks that serde cannot express (ranges, combinations).
pub trait Validate {
    fn validate(&self) -> Result<(), ConfigError>;
}

/// A value error for `key`.
pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue { key: key.to_string(), message: message.into() }
}

/// Reads `path` (if given), applies `env_prefix` overrides and validates.
pub fn load<T: DeserializeOwned + Validate>(path: Option<&Path>, env_prefix: &str) -> Result<T, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = path {
        if !path.exists() {
            return Err(ConfigError::Missing { path: path.to_path_buf() });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(Env::prefixed(env_prefix).split("__"));
    let config: T = figment.extract().map_err(|e| ConfigError::Invalid(describe(e)))?;
    config.validate()?;
    Ok(config)
}

/// Parses a TOML string (no environment), for tests and embedded defaults.
pub fn from_toml<T: DeserializeOwned + Validate>(toml: &str) -> Result<T, ConfigError> {
    let config: T = Figment::from(Toml::string(toml)).extract().map_err(|e| ConfigError::Invalid(describe(e)))?;
    config.validate()?;
    Ok(config)
}

/// `[metrics]`: a daemon's Prometheus endpoint (`GET /metrics`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of `GET /metrics`; empty turns it off. Default
    /// `127.0.0.1:9464` for the node agent and `plumbline run`,
    /// `127.0.0.1:9465` for the aggregator, `127.0.0.1:9466` for the query
    /// service.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self::at("127.0.0.1:9464")
    }
}

impl MetricsConfig {
    pub fn at(listen: &str) -> Self {
        Self { listen: listen.into() }
    }

    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !self.listen.is_empty() && self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(&format!("{prefix}.listen"), "must be an address like 127.0.0.1:9464, or empty"));
        }
        Ok(())
    }
}

/// Every error figment collected, each with its key path (without figment's
/// profile name, which Plumbline does not use).
fn describe(error: figment::Error) -> String {
    error.into_iter().map(|e| e.to_string().replace("for key \"default.", "for key \"")).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        kafka: Kafka,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Kafka {
        brokers: String,
        batch_ms: u64,
    }

    impl Default for Kafka {
        fn default() -> Self {
            Self { brokers: "127.0.0.1:9092".into(), batch_ms: 10 }
        }
    }

    impl Validate for Sample {
        fn validate(&self) -> Result<(), ConfigError> {
            if self.kafka.batch_ms == 0 {
                return Err(invalid("kafka.batch_ms", "must be above 0"));
            }
            Ok(())
        }
    }

    #[test]
    fn unknown_key_in_a_file_is_rejected_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[kafka]\nbrokerz = \"x\"\n").unwrap();
        let err = load::<Sample>(Some(&path), "PLUMBLINE_CONFIG_TEST_A_").unwrap_err().to_string();
        assert!(err.contains("brokerz"), "{err}");
        assert!(err.contains("kafka"), "{err}");
    }

    #[test]
    fn environment_overrides_nested_keys_and_unknown_variables_are_named() {
        // Unique prefixes: tests in this binary run in parallel.
        // SAFETY: these variables are only read by this test.
        unsafe { std::env::set_var("PLUMBLINE_CONFIG_TEST_B_KAFKA__BROKERS", "10.0.0.1:9092") };
        let config: Sample = load(None, "PLUMBLINE_CONFIG_TEST_B_").unwrap();
        assert_eq!(config.kafka.brokers, "10.0.0.1:9092");
        assert_eq!(config.kafka.batch_ms, 10);

        unsafe { std::env::set_var("PLUMBLINE_CONFIG_TEST_C_KAFKA__BATCHMS", "5") };
        let err = load::<Sample>(None, "PLUMBLINE_CONFIG_TEST_C_").unwrap_err().to_string();
        assert!(err.contains("batchms"), "{err}");
    }

    #[test]
    fn missing_file_and_bad_values_are_errors() {
        let err = load::<Sample>(Some(Path::new("/nonexistent/x.toml")), "PLUMBLINE_CONFIG_TEST_D_").unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }));
        let err = from_toml::<Sample>("[kafka]\nbatch_ms = 0\n").unwrap_err().to_string();
        assert!(err.contains("kafka.batch_ms"), "{err}");
    }
}
