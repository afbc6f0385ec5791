//! `dead_letters`: payloads the aggregator could not decode, set aside with
//! where they came from and why, so nothing is lost and the rest flows.
//! Keyed by origin (topic/partition@offset) and payload hash: a re-delivered
//! payload is one row.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use crate::dialect::Dialect;

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct DeadLetterRow {
    pub origin: String,
    pub payload_hash: u64,
    pub received_wall_ns: u64,
    pub error: String,
    /// The message key (the sending host), when there was one.
    pub key: String,
    #[serde(with = "serde_bytes_as_string")]
    pub payload: Vec<u8>,
}

/// ClickHouse `String` holds arbitrary bytes; RowBinary sends them as a
/// length-prefixed byte string, which is what serde's str form produces.
mod serde_bytes_as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Vec::<u8>::deserialize(d)
    }
}

pub(crate) fn clickhouse_ddl(d: &Dialect) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS dead_letters (
            origin String,
            payload_hash UInt64,
            received_wall_ns UInt64,
            error String,
            key String,
            payload String{zstd}
        ) ENGINE = ReplacingMergeTree
        ORDER BY (origin, payload_hash)",
        zstd = d.codec("ZSTD(3)"),
    )
}

pub(crate) const SQLITE_DDL: &str = "
CREATE TABLE IF NOT EXISTS dead_letters (
    origin TEXT NOT NULL,
    payload_hash INTEGER NOT NULL,
    received_wall_ns INTEGER NOT NULL,
    error TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (origin, payload_hash)
) WITHOUT ROWID;
";
