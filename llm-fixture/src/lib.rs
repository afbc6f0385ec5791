//! A local HTTPS server that answers in LLM providers' real wire formats (OpenAI chat completions, Responses and
//! embeddings, Anthropic Messages, Gemini, Cohere v2, and the OpenAI-compatible Mistral, Together, Groq, Fireworks
//! and Perplexity), and helpers to run real clients against it: the test bed for capturing LLM calls from TLS
//! plaintext.
//!
//! Each provider lives under its own path prefix (`/openai/v1/chat/completions`, `/anthropic/v1/messages`,
//! `/gemini/v1beta/models/{model}:generateContent`, …). Answers are deterministic: the text is
//! `Hello from <provider> fixture: <first 8 words of the last user message>`, token counts are word counts (see
//! [`call`]), a request that declares tools gets one call to the first tool with `{"path": "/etc/hostname"}`, model
//! `big-stream` answers with about 100 KiB of text and `fail-401` with the provider's authentication error.
//! Every exchange is appended to `exchanges.jsonl` as a [`server::Exchange`].

pub mod call;
pub mod clients;
mod fixture;
mod render;
pub mod server;
mod tls;

pub use fixture::Fixture;
