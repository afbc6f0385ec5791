//! OpenAI's formats: chat completions (which Mistral, Together AI, Groq,
//! Fireworks AI and Perplexity also speak), the Responses API, embeddings.

pub mod chat;
pub mod embeddings;
pub mod responses;
