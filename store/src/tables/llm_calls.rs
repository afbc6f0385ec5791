//! `llm_calls`: one request to an LLM API and its response, as the agent
//! understood it from TLS plaintext: who called, which model, tokens, timing,
//! the text (per the prompt capture mode), tool calls and results, and what
//! the local guardrails found.
//!
//! Tool calls, tool results and findings are JSON arrays in text columns:
//! ClickHouse 18.16 has no JSON functions and SQLite no arrays, and no view
//! filters on them; the row is read back whole.

use serde::{Deserialize, Serialize};

use super::row::activity_row;
use super::spec::{Col, TableSpec};
use crate::StoreError;

activity_row! {
    pub struct LlmCallRow {
        pub tid: u32,
        /// The agent the process is mapped to; empty when only discovered.
        pub agent: String,
        pub provider: String,
        pub model: String,
        /// "chat", "messages", "embeddings" ...
        pub operation: String,
        /// Request path and query, without secrets.
        pub endpoint: String,
        /// SNI, else the Host header, else the DNS name seen.
        pub server: String,
        /// "HTTP/1.1", "HTTP/2".
        pub protocol: String,
        /// TLS library: "openssl", "go" ...
        pub library: String,
        pub http_status: u32,
        pub error: String,
        pub stop_reason: String,
        pub streamed: u8,
        /// Boot-clock time of the first request byte.
        pub request_ts_ns: u64,
        pub ttft_ns: u64,
        pub latency_ns: u64,
        pub input_tokens: u64,
        pub output_tokens: u64,
        pub cached_input_tokens: u64,
        pub request_bytes: u64,
        pub response_bytes: u64,
        /// Plaintext the capture could not keep: the parse may be partial.
        pub bytes_lost: u64,
        pub prompt: String,
        pub completion: String,
        /// JSON array of [`LlmToolCall`].
        pub tool_calls: String,
        /// JSON array of [`LlmToolResult`].
        pub tool_results: String,
        /// JSON array of [`LlmFinding`].
        pub findings: String,
        pub local_addr: String,
        pub local_port: u32,
        pub remote_addr: String,
        pub remote_port: u32,
        pub fd: i32,
        /// The TLS connection within the process.
        pub connection_id: u64,
    }
}

/// An element of `tool_calls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmToolCall {
    pub id: String,
    pub name: String,
    /// JSON arguments, secrets redacted.
    pub arguments: String,
}

/// An element of `tool_results`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmToolResult {
    pub tool_call_id: String,
    pub content: String,
}

/// An element of `findings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmFinding {
    pub kind: String,
    pub location: String,
    pub excerpt: String,
}

/// The text of a JSON column.
pub fn to_json_column<T: Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("plain structs of strings serialize")
}

/// The array a JSON text column holds; `column` is "table.column", named
/// in the error of a value that does not parse.
pub(crate) fn from_json_column<T: for<'de> Deserialize<'de>>(column: &str, text: &str) -> Result<Vec<T>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|e| StoreError::Malformed(format!("{column}: {e}")))
}

impl LlmCallRow {
    pub fn tool_call_list(&self) -> Result<Vec<LlmToolCall>, StoreError> {
        from_json_column("llm_calls.tool_calls", &self.tool_calls)
    }

    pub fn tool_result_list(&self) -> Result<Vec<LlmToolResult>, StoreError> {
        from_json_column("llm_calls.tool_results", &self.tool_results)
    }

    pub fn finding_list(&self) -> Result<Vec<LlmFinding>, StoreError> {
        from_json_column("llm_calls.findings", &self.findings)
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "llm_calls",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("tid", Col::U32),
        ("agent", Col::Label),
        ("provider", Col::Label),
        ("model", Col::Label),
        ("operation", Col::Label),
        ("endpoint", Col::Text),
        ("server", Col::Text),
        ("protocol", Col::Label),
        ("library", Col::Label),
        ("http_status", Col::U32),
        ("error", Col::Text),
        ("stop_reason", Col::Label),
        ("streamed", Col::U8),
        ("request_ts_ns", Col::U64),
        ("ttft_ns", Col::U64),
        ("latency_ns", Col::U64),
        ("input_tokens", Col::U64),
        ("output_tokens", Col::U64),
        ("cached_input_tokens", Col::U64),
        ("request_bytes", Col::U64),
        ("response_bytes", Col::U64),
        ("bytes_lost", Col::U64),
        ("prompt", Col::LongText),
        ("completion", Col::LongText),
        ("tool_calls", Col::LongText),
        ("tool_results", Col::LongText),
        ("findings", Col::LongText),
        ("local_addr", Col::Text),
        ("local_port", Col::U32),
        ("remote_addr", Col::Text),
        ("remote_port", Col::U32),
        ("fd", Col::I32),
        ("connection_id", Col::U64),
    ],
    // One thread starts one request on a connection at a time; HTTP/2 can
    // start two in one write, which model and endpoint usually tell apart.
    key: &["host", "boot_id", "ts_ns", "pid", "tid", "connection_id", "endpoint", "model"],
    key_time_first: true,
    indexes: &["wall_ns"],
    added: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_columns_read_back_what_was_written_and_empty_text_is_no_items() {
        let calls = vec![LlmToolCall { id: "c1".into(), name: "bash".into(), arguments: "{\"cmd\":\"ls\"}".into() }];
        let row_text = to_json_column(&calls);
        assert_eq!(from_json_column::<LlmToolCall>("tool_calls", &row_text).unwrap(), calls);
        assert_eq!(to_json_column::<LlmFinding>(&[]), "[]");
        assert!(from_json_column::<LlmFinding>("findings", "").unwrap().is_empty());
        assert!(matches!(from_json_column::<LlmFinding>("findings", "{"), Err(StoreError::Malformed(_))));
    }
}
