//! The query service's configuration (`query.toml`, env prefix
//! `PLUMBLINE_QUERY_`).

use std::net::SocketAddr;

use plumbline_config::{ConfigError, MetricsConfig, Validate};
use plumbline_store::StoreConfig;
use serde::{Deserialize, Serialize};

use crate::doors::{AccessConfig, TlsConfig};

pub const ENV_PREFIX: &str = "PLUMBLINE_QUERY_";

/// Where `plumb` and the service meet unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Address of gRPC and the dashboard. Default `127.0.0.1:50051`;
    /// anything but loopback needs `[access] token_file`.
    pub listen: SocketAddr,
    /// `[access]`: the token gRPC and the dashboard ask for.
    pub access: AccessConfig,
    /// `[tls]`: certificate files, to serve TLS on `listen`.
    pub tls: TlsConfig,
    /// `[store]`: what to answer from.
    pub store: StoreConfig,
    /// `[metrics]`: requests and latency per RPC. Default `127.0.0.1:9466`.
    pub metrics: MetricsConfig,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().unwrap(),
            access: AccessConfig::default(),
            tls: TlsConfig::default(),
            store: StoreConfig::default(),
            metrics: MetricsConfig::at("127.0.0.1:9466"),
        }
    }
}

impl Validate for QueryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        crate::doors::check(self.listen, &self.access, &self.tls)?;
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

    #[test]
    fn listening_beyond_loopback_without_a_token_names_the_key() {
        let err = plumbline_config::from_toml::<QueryConfig>("listen = \"0.0.0.0:50051\"\n").unwrap_err().to_string();
        assert!(err.contains("access.token_file"), "{err}");
        let locked = "listen = \"0.0.0.0:50051\"\n[access]\ntoken_file = \"/etc/plumbline/query.token\"\n";
        plumbline_config::from_toml::<QueryConfig>(locked).unwrap();
    }
}
