//! LLM semantics of one HTTP exchange: which API it was, the model, token
//! counts, stop reason, errors, the prompt and completion text, the tool
//! calls the model asked for and the tool results the agent sent back.
//!
//! Wire formats, each streamed or not:
//! - the OpenAI chat format (OpenAI, Mistral, Together AI, Groq, Fireworks
//!   AI and Perplexity speak it, with their own quirks), the OpenAI
//!   Responses API and OpenAI embeddings, in `openai/`;
//! - Anthropic messages;
//! - Google Gemini `generateContent` / `streamGenerateContent` (server-sent
//!   events with `alt=sse`, else a JSON array that grows as it streams);
//! - Cohere chat, v2 and v1.
//!
//! A streamed answer is read from whichever shape arrived: server-sent
//! events, a JSON array, or one JSON document per line. Reading never fails:
//! what cannot be read stays empty, so a cut or garbled exchange still
//! yields what it showed.

mod anthropic;
mod cohere;
mod gemini;
mod openai;
mod stream_end;

pub use stream_end::stream_ended;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{sse::SseParser, Head, Message};

/// Tool calls a stream may build; more is garbage, not calls (and would make
/// reading a hostile stream slow).
const MAX_TOOL_CALLS: usize = 128;
/// Sources kept per call.
const MAX_CITATIONS: usize = 256;

/// The wire format an endpoint speaks; the serde names are what
/// configuration uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Format {
    /// `/v1/chat/completions` and every API that copies it.
    #[serde(rename = "openai_chat")]
    OpenAiChat,
    /// `/v1/responses`.
    #[serde(rename = "openai_responses")]
    OpenAiResponses,
    /// `/v1/embeddings`.
    #[serde(rename = "openai_embeddings")]
    OpenAiEmbeddings,
    /// `/v1/messages`.
    #[serde(rename = "anthropic_messages")]
    AnthropicMessages,
    /// `/v1beta/models/{model}:generateContent` and its streaming twin.
    #[serde(rename = "gemini")]
    Gemini,
    /// Cohere `/v2/chat`.
    #[serde(rename = "cohere_chat")]
    CohereChat,
    /// Cohere's older `/v1/chat`.
    #[serde(rename = "cohere_chat_v1")]
    CohereChatV1,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::OpenAiChat,
        Format::OpenAiResponses,
        Format::OpenAiEmbeddings,
        Format::AnthropicMessages,
        Format::Gemini,
        Format::CohereChat,
        Format::CohereChatV1,
    ];

    /// The name configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Format::OpenAiChat => "openai_chat",
            Format::OpenAiResponses => "openai_responses",
            Format::OpenAiEmbeddings => "openai_embeddings",
            Format::AnthropicMessages => "anthropic_messages",
            Format::Gemini => "gemini",
            Format::CohereChat => "cohere_chat",
            Format::CohereChatV1 => "cohere_chat_v1",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToolCall {
    /// The call's id, which the tool result names. APIs without call ids
    /// (Gemini before it sent them, Cohere v1) pair a call and its result by
    /// function name, so the name stands in for the id.
    pub id: String,
    pub name: String,
    /// JSON text of the arguments, as the model produced them.
    pub arguments: String,
}

/// A tool's result the agent sent back, in a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToolResult {
    pub tool_call_id: String,
    pub content: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LlmCall {
    /// "chat", "responses", "embeddings", "messages", "generate_content" ...
    pub operation: &'static str,
    /// The model the server says answered, else the one the request named.
    pub model: Option<String>,
    pub status: u16,
    pub streamed: bool,
    /// Input tokens as the provider counts them (Anthropic leaves cache
    /// reads out; the others include them).
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Input tokens served from the provider's prompt cache.
    pub cached_tokens: Option<u64>,
    pub stop_reason: Option<String>,
    /// The API's error message: an error body, an error event in a stream,
    /// or the start of a failed response's body when it is not JSON.
    pub error: Option<String>,
    /// The last user turn of the request that has text (a turn carrying only
    /// tool results does not replace the instruction before it).
    pub prompt: String,
    /// The model's text answer (reasoning and thought text left out).
    pub completion: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_results: Vec<ToolResult>,
    /// Sources the answer cites (Perplexity's citations, URL annotations).
    pub citations: Vec<String>,
}

/// Reads one request/response exchange in `format`. The request's target
/// matters for Gemini, which names the model and the operation in the URL.
pub fn interpret(format: Format, request: &Message, response: &Message) -> LlmCall {
    let target = match &request.head {
        Head::Request { target, .. } => target.as_str(),
        Head::Response { .. } => "",
    };
    let status = match response.head {
        Head::Response { status, .. } => status,
        Head::Request { .. } => 0,
    };
    let mut call = LlmCall { status, operation: operation(format, target), ..LlmCall::default() };
    if let Ok(body) = serde_json::from_slice::<Value>(&request.body) {
        call.model = body.get("model").and_then(Value::as_str).map(str::to_string);
        match format {
            Format::OpenAiChat => openai::chat::read_request(&body, &mut call),
            Format::OpenAiResponses => openai::responses::read_request(&body, &mut call),
            Format::OpenAiEmbeddings => openai::embeddings::read_request(&body, &mut call),
            Format::AnthropicMessages => anthropic::read_request(&body, &mut call),
            Format::Gemini => gemini::read_request(&body, &mut call),
            Format::CohereChat => cohere::read_request(&body, &mut call),
            Format::CohereChatV1 => cohere::v1::read_request(&body, &mut call),
        }
    }
    if format == Format::Gemini {
        gemini::read_target(target, &mut call);
    }
    match response_body(response) {
        Body::Stream(chunks) => {
            call.streamed = true;
            for chunk in &chunks {
                read_error(chunk, &mut call);
            }
            match format {
                Format::OpenAiChat => openai::chat::read_stream(&chunks, &mut call),
                Format::OpenAiResponses => openai::responses::read_stream(&chunks, &mut call),
                Format::OpenAiEmbeddings => chunks.iter().for_each(|c| openai::embeddings::read_response(c, &mut call)),
                Format::AnthropicMessages => anthropic::read_stream(&chunks, &mut call),
                Format::Gemini => chunks.iter().for_each(|c| gemini::read_response(c, &mut call)),
                Format::CohereChat => cohere::read_stream(&chunks, &mut call),
                Format::CohereChatV1 => cohere::v1::read_stream(&chunks, &mut call),
            }
        }
        Body::Document(body) => {
            read_error(&body, &mut call);
            match format {
                Format::OpenAiChat => openai::chat::read_response(&body, &mut call),
                Format::OpenAiResponses => openai::responses::read_response(&body, &mut call),
                Format::OpenAiEmbeddings => openai::embeddings::read_response(&body, &mut call),
                Format::AnthropicMessages => anthropic::read_response(&body, &mut call),
                Format::Gemini => gemini::read_response(&body, &mut call),
                Format::CohereChat => cohere::read_response(&body, &mut call),
                Format::CohereChatV1 => cohere::v1::read_response(&body, &mut call),
            }
            if call.error.is_none() && status >= 400 {
                // Bodies like Cohere's `{"message": ...}` or `{"detail": ...}`.
                call.error = ["message", "detail"].iter().find_map(|k| body.get(k)).map(error_text);
            }
        }
        Body::Opaque => {}
    }
    if call.error.is_none() && status >= 400 {
        call.error = Some(body_excerpt(&response.body)).filter(|e| !e.is_empty());
    }
    call
}

/// What the request asked for, in the names the event schema uses.
fn operation(format: Format, target: &str) -> &'static str {
    match format {
        Format::OpenAiChat | Format::CohereChat | Format::CohereChatV1 => "chat",
        Format::OpenAiResponses => "responses",
        Format::OpenAiEmbeddings => "embeddings",
        Format::AnthropicMessages => "messages",
        Format::Gemini => gemini::operation(target),
    }
}

/// A response body by shape.
enum Body {
    /// One JSON document.
    Document(Value),
    /// The JSON pieces of a streamed answer, in order.
    Stream(Vec<Value>),
    /// Neither (empty, HTML, cut short before any JSON).
    Opaque,
}

fn response_body(response: &Message) -> Body {
    let body = response.body.trim_ascii_start();
    let content_type = response.header("content-type").unwrap_or_default().to_ascii_lowercase();
    let sse_start = [&b"data:"[..], b"event:", b"id:", b"retry:", b":"].iter().any(|s| body.starts_with(s));
    if content_type.starts_with("text/event-stream") || sse_start {
        let mut parser = SseParser::new();
        let mut events = parser.feed(body);
        // The body is over: dispatch the last event even without its blank
        // line (an event cut mid-way fails to parse below and is dropped).
        events.extend(parser.feed(b"\n\n"));
        return Body::Stream(events.iter().filter_map(|e| serde_json::from_str(&e.data).ok()).collect());
    }
    if body.starts_with(b"[") {
        return Body::Stream(array_items(body));
    }
    match serde_json::from_slice(body) {
        Ok(value) => Body::Document(value),
        Err(_) => {
            let lines = json_lines(body);
            if lines.is_empty() {
                Body::Opaque
            } else {
                Body::Stream(lines)
            }
        }
    }
}

/// The items of a top-level JSON array, as many as arrived whole: a
/// streamed array cut short still yields its first items.
fn array_items(body: &[u8]) -> Vec<Value> {
    let mut items = Vec::new();
    let mut rest = body.get(1..).unwrap_or_default();
    loop {
        let skip = rest.iter().take_while(|b| b.is_ascii_whitespace() || **b == b',').count();
        rest = &rest[skip..];
        if rest.first().is_none_or(|b| *b == b']') {
            return items;
        }
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => items.push(value),
            _ => return items,
        }
        rest = &rest[values.byte_offset()..];
    }
}

/// One JSON object per line (`application/stream+json`, `x-ndjson`).
fn json_lines(body: &[u8]) -> Vec<Value> {
    body.split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .filter(Value::is_object)
        .collect()
}

/// A top-level `error` (an object with a message, or a string).
fn read_error(body: &Value, call: &mut LlmCall) {
    if let Some(error) = body.get("error").filter(|e| e.is_object() || e.is_string()) {
        call.error = Some(error_text(error));
    }
}

/// An error object's message (or the whole value when it has none).
fn error_text(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        _ => error.get("message").and_then(Value::as_str).map_or_else(|| error.to_string(), str::to_string),
    }
}

/// The start of a body that is not JSON, as text.
fn body_excerpt(body: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_CHARS)]);
    text.trim().chars().take(MAX_CHARS).collect()
}

/// Text of a message's content: a string, or the text parts of an array
/// (parts of other kinds, images or reasoning, left out).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str).is_none_or(|t| t.ends_with("text")))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Sets the prompt to `text` unless it is empty (see `LlmCall::prompt`).
fn set_prompt(call: &mut LlmCall, text: String) {
    if !text.is_empty() {
        call.prompt = text;
    }
}

/// Adds a cited URL, once.
fn push_citation(call: &mut LlmCall, url: String) {
    if !url.is_empty() && call.citations.len() < MAX_CITATIONS && !call.citations.contains(&url) {
        call.citations.push(url);
    }
}

fn u64_at(value: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_u64()
}

/// The string at `key`, or empty.
fn str_at(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The array at `key`, or none.
fn array_at<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// JSON text of a value that should be JSON text already: a string as it
/// is, anything else serialized.
fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
