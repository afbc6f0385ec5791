//! What an agent meant: the plaintext captured at the TLS boundary, turned
//! back into HTTP messages and server-sent events, and, for requests to a
//! known LLM endpoint, into the LLM call they made. Every parser here is fed
//! bytes in whatever pieces capture delivered them, reads them the same
//! however they were cut, never panics on garbage (the cargo-fuzz targets in
//! `fuzz/` check both), and says when it had to cut a body rather than
//! cutting silently.

pub mod endpoints;
pub mod fuzzing;
pub mod guardrails;
pub mod http1;
pub mod http2;
pub mod llm;
pub mod message;
pub mod redact;
pub mod sse;

pub use endpoints::{Endpoint, EndpointCatalog};
pub use llm::{interpret, Format, LlmCall, ToolCall, ToolResult};
pub use message::{Head, Message};

/// Copies of `valid` with three bytes after `keep` overwritten, the same
/// every run: a small deterministic fuzz for the parsers' tests (the cargo
/// fuzz targets go further).
#[cfg(test)]
pub(crate) fn mangled(valid: &[u8], keep: usize, copies: usize) -> Vec<Vec<u8>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..copies)
        .map(|_| {
            let mut bytes = valid.to_vec();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = keep + (seed as usize) % (bytes.len() - keep);
                bytes[at] = (seed >> 32) as u8;
            }
            bytes
        })
        .collect()
}
