//! `[store]`: which store and how to reach it.

use std::path::PathBuf;

use plumbline_config::{invalid, ConfigError};
use serde::{Deserialize, Serialize};

/// `[store]`, with `kind = "clickhouse"` or `kind = "sqlite"`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreConfig {
    /// ClickHouse over HTTP: the fleet's store.
    Clickhouse(ClickHouseConfig),
    /// An SQLite file: one host's store.
    Sqlite(SqliteConfig),
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Clickhouse(ClickHouseConfig::default())
    }
}

impl StoreConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        match self {
            StoreConfig::Clickhouse(c) => c.validate(prefix),
            StoreConfig::Sqlite(c) => c.validate(prefix),
        }
    }
}

/// `[store]` with `kind = "clickhouse"`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP endpoint. Default `http://127.0.0.1:8123`.
    pub url: String,
    /// Database, created when missing. Default `plumbline`.
    pub database: String,
    /// User to connect as. Default `default`.
    pub user: String,
    /// That user's password. Default empty.
    pub password: String,
    /// Days to keep events, enforced by table TTL on servers that have it
    /// (19.6 and later); 0 keeps everything. Default 30.
    pub retention_days: u32,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "plumbline".into(),
            user: "default".into(),
            password: String::new(),
            retention_days: 30,
        }
    }
}

impl ClickHouseConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(invalid(&format!("{prefix}.url"), "must be an http:// or https:// URL"));
        }
        let legal = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if self.database.is_empty() || !self.database.chars().all(legal) {
            return Err(invalid(&format!("{prefix}.database"), "must be letters, digits and underscores"));
        }
        Ok(())
    }
}

/// `[store]` with `kind = "sqlite"`, or `[sqlite]` of `plumbline run`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteConfig {
    /// Database file, created when missing. Default `/var/lib/plumbline/plumbline.db`.
    pub path: PathBuf,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self { path: PathBuf::from("/var/lib/plumbline/plumbline.db") }
    }
}

impl SqliteConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.path.as_os_str().is_empty() {
            return Err(invalid(&format!("{prefix}.path"), "must not be empty"));
        }
        Ok(())
    }
}
