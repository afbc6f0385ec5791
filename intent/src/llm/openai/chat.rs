//! The OpenAI chat completions format (`/v1/chat/completions` and the
//! providers that copy it).

use serde_json::Value;

use super::{content_text, error_text, u64_at, LlmCall, ToolCall, ToolResult};
use crate::sse::SseEvent;

pub fn read_request(body: &Value, call: &mut LlmCall) {
    let messages = body.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for message in messages {
        match message.get("role").and_then(Value::as_str) {
            Some("user") => call.prompt = message.get("content").map(content_text).unwrap_or_default(),
            Some("tool") => call.tool_results.push(ToolResult {
                tool_call_id: message.get("tool_call_id").and_then(Value::as_str).unwrap_or_default().to_string(),
                content: message.get("content").map(content_text).unwrap_or_default(),
            }),
            _ => {}
        }
    }
}

pub fn read_response(body: &Value, call: &mut LlmCall) {
    if let Some(model) = body.get("model").and_then(Value::as_str) {
        call.model = Some(model.to_string());
    }
    read_usage(body, call);
    let Some(choice) = body.get("choices").and_then(|c| c.get(0)) else { return };
    call.stop_reason = choice.get("finish_reason").and_then(Value::as_str).map(str::to_string);
    let Some(message) = choice.get("message") else { return };
    call.completion = message.get("content").map(content_text).unwrap_or_default();
    for tool in message.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        call.tool_calls.push(ToolCall {
            id: tool.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
            name: tool.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string(),
            arguments: tool.pointer("/function/arguments").and_then(Value::as_str).unwrap_or_default().to_string(),
        });
    }
}

/// Chunks of `choices[0].delta`; tool calls arrive in pieces keyed by index.
pub fn read_stream(events: &[SseEvent], call: &mut LlmCall) {
    for event in events {
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else { continue }; // `[DONE]`
        if let Some(error) = chunk.get("error") {
            call.error = Some(error_text(error));
        }
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            call.model = Some(model.to_string());
        }
        read_usage(&chunk, call);
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else { continue };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            call.stop_reason = Some(reason.to_string());
        }
        let Some(delta) = choice.get("delta") else { continue };
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            call.completion.push_str(text);
        }
        for piece in delta.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let index = piece.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            if index >= 128 {
                continue;
            }
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
            if let Some(arguments) = piece.pointer("/function/arguments").and_then(Value::as_str) {
                tool.arguments.push_str(arguments);
            }
        }
    }
}

fn read_usage(body: &Value, call: &mut LlmCall) {
    let Some(usage) = body.get("usage").filter(|u| u.is_object()) else { return };
    call.input_tokens = u64_at(usage, &["prompt_tokens"]).or(call.input_tokens);
    call.output_tokens = u64_at(usage, &["completion_tokens"]).or(call.output_tokens);
    call.cached_tokens = u64_at(usage, &["prompt_tokens_details", "cached_tokens"]).or(call.cached_tokens);
}
