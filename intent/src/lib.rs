//! What an agent meant: the plaintext captured at the TLS boundary, turned
//! back into HTTP messages and server-sent events. Every parser here is fed
//! bytes in whatever pieces capture delivered them, never panics on garbage,
//! and says when it had to cut a body rather than cutting silently.

pub mod http1;
pub mod http2;
pub mod message;
pub mod sse;

pub use message::{Head, Message};
