//! The OpenAI chat completions format (`/v1/chat/completions`) and the
//! providers that copy it, with what they add:
//! - Groq reports a stream's usage in `x_groq.usage` of its last chunk;
//! - Perplexity names its sources in `citations` (URLs) and `search_results`,
//!   in the answer and in every chunk of a stream;
//! - Mistral, Together AI and Fireworks AI send a stream's usage with its
//!   last chunk (OpenAI in a chunk of its own, with `choices` empty), and
//!   Mistral's reasoning models send content as an array of text and
//!   thinking parts.

use serde_json::Value;

use crate::llm::{
    array_at, content_text, json_text, set_prompt, str_at, u64_at, LlmCall, ToolCall, ToolResult, MAX_CITATIONS,
    MAX_TOOL_CALLS,
};

pub fn read_request(body: &Value, call: &mut LlmCall) {
    for message in array_at(body, "messages") {
        let content = || message.get("content").map(content_text).unwrap_or_default();
        match message.get("role").and_then(Value::as_str) {
            Some("user") => set_prompt(call, content()),
            Some("tool") => {
                call.tool_results.push(ToolResult { tool_call_id: str_at(message, "tool_call_id"), content: content() })
            }
            // The older function-calling form names results by function.
            Some("function") => {
                call.tool_results.push(ToolResult { tool_call_id: str_at(message, "name"), content: content() })
            }
            _ => {}
        }
    }
}

pub fn read_response(body: &Value, call: &mut LlmCall) {
    read_common(body, call);
    let Some(choice) = first_choice(body) else { return };
    if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
        call.stop_reason = Some(reason.to_string());
    }
    let Some(message) = choice.get("message") else { return };
    call.completion = message.get("content").map(content_text).unwrap_or_default();
    for tool in array_at(message, "tool_calls") {
        call.tool_calls.push(ToolCall {
            id: str_at(tool, "id"),
            name: tool.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string(),
            arguments: tool.pointer("/function/arguments").map(json_text).unwrap_or_default(),
        });
    }
    if let Some(function) = message.get("function_call").filter(|f| f.is_object()) {
        let name = str_at(function, "name");
        let arguments = function.get("arguments").map(json_text).unwrap_or_default();
        call.tool_calls.push(ToolCall { id: name.clone(), name, arguments });
    }
}

/// Chunks of `choices[0].delta`; tool calls arrive in pieces keyed by index.
pub fn read_stream(chunks: &[Value], call: &mut LlmCall) {
    let mut function_call: Option<ToolCall> = None;
    for chunk in chunks {
        read_common(chunk, call);
        let Some(choice) = first_choice(chunk) else { continue };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            call.stop_reason = Some(reason.to_string());
        }
        let Some(delta) = choice.get("delta") else { continue };
        match delta.get("content") {
            Some(Value::String(text)) => call.completion.push_str(text),
            Some(parts @ Value::Array(_)) => call.completion.push_str(&content_text(parts)),
            _ => {}
        }
        for piece in array_at(delta, "tool_calls") {
            let index = piece.get("index").and_then(Value::as_u64).unwrap_or(0);
            let Some(index) = usize::try_from(index).ok().filter(|i| *i < MAX_TOOL_CALLS) else { continue };
            if call.tool_calls.len() <= index {
                call.tool_calls.resize_with(index + 1, ToolCall::default);
            }
            let tool = &mut call.tool_calls[index];
            if let Some(id) = piece.get("id").and_then(Value::as_str) {
                tool.id = id.to_string();
            }
            if let Some(name) = piece.pointer("/function/name").and_then(Value::as_str) {
                tool.name.push_str(name);
            }
            if let Some(arguments) = piece.pointer("/function/arguments") {
                tool.arguments.push_str(&json_text(arguments));
            }
        }
        if let Some(piece) = delta.get("function_call").filter(|f| f.is_object()) {
            let tool = function_call.get_or_insert_with(ToolCall::default);
            tool.name.push_str(piece.get("name").and_then(Value::as_str).unwrap_or_default());
            tool.arguments.push_str(piece.get("arguments").and_then(Value::as_str).unwrap_or_default());
        }
    }
    if let Some(mut tool) = function_call {
        tool.id.clone_from(&tool.name);
        call.tool_calls.push(tool);
    }
}

/// What a whole answer and every chunk of a stream may carry alike.
fn read_common(body: &Value, call: &mut LlmCall) {
    if let Some(model) = body.get("model").and_then(Value::as_str) {
        call.model = Some(model.to_string());
    }
    for usage in [body.get("usage"), body.pointer("/x_groq/usage")].into_iter().flatten() {
        read_usage(usage, call);
    }
    let citations: Vec<String> = match body.get("citations").and_then(Value::as_array) {
        Some(urls) => urls.iter().filter_map(Value::as_str).take(MAX_CITATIONS).map(str::to_string).collect(),
        None => array_at(body, "search_results")
            .iter()
            .map(|r| str_at(r, "url"))
            .filter(|u| !u.is_empty())
            .take(MAX_CITATIONS)
            .collect(),
    };
    if !citations.is_empty() {
        call.citations = citations;
    }
}

/// The first choice: with `n` > 1 a stream's chunks carry other choices too.
fn first_choice(body: &Value) -> Option<&Value> {
    array_at(body, "choices").iter().find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
}

fn read_usage(usage: &Value, call: &mut LlmCall) {
    if !usage.is_object() {
        return;
    }
    call.input_tokens = u64_at(usage, &["prompt_tokens"]).or(call.input_tokens);
    call.output_tokens = u64_at(usage, &["completion_tokens"]).or(call.output_tokens);
    call.cached_tokens = u64_at(usage, &["prompt_tokens_details", "cached_tokens"]).or(call.cached_tokens);
}
