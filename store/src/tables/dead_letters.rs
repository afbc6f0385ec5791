//! `dead_letters`: payloads the aggregator could not decode, set aside with
//! where they came from and why, so nothing is lost and the rest flows.
//! Keyed by origin (topic/partition@offset) and payload hash: a re-delivered
//! payload is one row.

use super::row::table_row;
use super::spec::{Col, TableSpec};

table_row! {
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

/// Kept until deleted: a dead letter waits for someone to look at it.
pub const SPEC: TableSpec = TableSpec {
    name: "dead_letters",
    activity: false,
    day_of: None,
    columns: &[
        ("origin", Col::Text),
        ("payload_hash", Col::U64),
        ("received_wall_ns", Col::U64),
        ("error", Col::Text),
        ("key", Col::Text),
        ("payload", Col::Bytes),
    ],
    key: &["origin", "payload_hash"],
    key_time_first: true,
    indexes: &[],
    added: &[],
};
