//! `tls_stacks`: a TLS library found in a process, hooked or not, and why
//! not: a process whose TLS the agent cannot read is on record, not missed.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

activity_row! {
    pub struct TlsStackRow {
        /// "openssl", "go", "gnutls", "nss", "boringssl" ...
        pub library: String,
        /// The file that holds it (a shared library or the executable).
        pub path: String,
        pub hooked: u8,
        /// Why it is not hooked.
        pub reason: String,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "tls_stacks",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[("library", Col::Label), ("path", Col::Text), ("hooked", Col::U8), ("reason", Col::Text)],
    key: &["host", "boot_id", "pid", "process_start_key_ns", "library", "path", "ts_ns"],
    key_time_first: true,
    indexes: &["wall_ns"],
    added: &[],
};
