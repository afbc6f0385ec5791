//! LLM semantics of one HTTP exchange: which API it was, the model, token
//! counts, stop reason, errors, the tool calls the model asked for and the
//! tool results the agent sent back. Wire formats: the OpenAI chat format
//! (OpenAI, Mistral, Together AI, Groq, Fireworks AI and Perplexity speak
//! it) and Anthropic messages, each streamed (server-sent events) or not.

mod anthropic;
mod openai;

use serde_json::Value;

use crate::{sse::SseParser, Head, Message};

/// The wire format an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenAiChat,
    AnthropicMessages,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of the arguments, as the model produced them.
    pub arguments: String,
}

/// A tool's result the agent sent back, in a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolResult {
    pub tool_call_id: String,
    pub content: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LlmCall {
    pub model: Option<String>,
    pub status: u16,
    pub streamed: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    /// The last user turn of the request, as text.
    pub prompt: String,
    /// The model's text answer.
    pub completion: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_results: Vec<ToolResult>,
}

/// Reads one request/response exchange in `format`.
pub fn interpret(format: Format, request: &Message, response: &Message) -> LlmCall {
    let mut call = LlmCall {
        status: match response.head {
            Head::Response { status, .. } => status,
            Head::Request { .. } => 0,
        },
        ..LlmCall::default()
    };
    if let Ok(body) = serde_json::from_slice::<Value>(&request.body) {
        call.model = body.get("model").and_then(Value::as_str).map(str::to_string);
        match format {
            Format::OpenAiChat => openai::read_request(&body, &mut call),
            Format::AnthropicMessages => anthropic::read_request(&body, &mut call),
        }
    }
    let event_stream = response.header("content-type").is_some_and(|t| t.starts_with("text/event-stream"));
    if event_stream {
        call.streamed = true;
        let events = SseParser::new().feed(&response.body);
        match format {
            Format::OpenAiChat => openai::read_stream(&events, &mut call),
            Format::AnthropicMessages => anthropic::read_stream(&events, &mut call),
        }
    } else if let Ok(body) = serde_json::from_slice::<Value>(&response.body) {
        if let Some(error) = body.get("error") {
            call.error = Some(error_text(error));
        }
        match format {
            Format::OpenAiChat => openai::read_response(&body, &mut call),
            Format::AnthropicMessages => anthropic::read_response(&body, &mut call),
        }
    }
    call
}

/// An error object's message (or the whole object when it has none).
fn error_text(error: &Value) -> String {
    error.get("message").and_then(Value::as_str).map_or_else(|| error.to_string(), str::to_string)
}

/// Text of a message's content: a string, or the text parts of an array.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

fn u64_at(value: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_u64()
}

#[cfg(test)]
mod tests;
