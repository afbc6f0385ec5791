//! The query service's configuration (`query.toml`, env prefix
//! `PLUMBLINE_QUERY_`).

use std::net::SocketAddr;

use plumbline_config::{ConfigError, MetricsConfig, Validate};
use plumbline_store::StoreConfig;
use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "PLUMBLINE_QUERY_";

/// Where `plumb` and the service meet unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// gRPC listen address. Default `127.0.0.1:50051`.
    pub listen: SocketAddr,
    /// `[store]`: what to answer from.
    pub store: StoreConfig,
    /// `[metrics]`: requests and latency per RPC. Default `127.0.0.1:9466`.
    pub metrics: MetricsConfig,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().unwrap(),
            store: StoreConfig::default(),
            metrics: MetricsConfig::at("127.0.0.1:9466"),
        }
    }
}

impl Validate for QueryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.store.validate("store")?;
        self.metrics.validate("metrics")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_listen_address_names_the_key() {
        let err = plumbline_config::from_toml::<QueryConfig>("listen = \"nowhere\"\n").unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
    }
}
