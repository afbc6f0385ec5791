//! Anthropic's messages API (`/v1/messages`).

use serde_json::Value;

use super::{content_text, error_text, u64_at, LlmCall, ToolCall, ToolResult};
use crate::sse::SseEvent;

pub fn read_request(body: &Value, call: &mut LlmCall) {
    let messages = body.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for message in messages.iter().filter(|m| m.get("role").and_then(Value::as_str) == Some("user")) {
        let content = message.get("content").cloned().unwrap_or_default();
        for block in content.as_array().map(Vec::as_slice).unwrap_or_default() {
            if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                call.tool_results.push(ToolResult {
                    tool_call_id: block.get("tool_use_id").and_then(Value::as_str).unwrap_or_default().to_string(),
                    content: block.get("content").map(content_text).unwrap_or_default(),
                });
            }
        }
        call.prompt = content_text(&content);
    }
}

pub fn read_response(body: &Value, call: &mut LlmCall) {
    if let Some(model) = body.get("model").and_then(Value::as_str) {
        call.model = Some(model.to_string());
    }
    call.stop_reason = body.get("stop_reason").and_then(Value::as_str).map(str::to_string);
    if let Some(usage) = body.get("usage") {
        read_usage(usage, call);
    }
    for block in body.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => call.completion.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("tool_use") => call.tool_calls.push(ToolCall {
                id: block.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                name: block.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                arguments: block.get("input").map(Value::to_string).unwrap_or_default(),
            }),
            _ => {}
        }
    }
}

/// message_start, content_block_start/delta (text and tool-input JSON in
/// pieces, keyed by block index), message_delta (stop reason, output tokens),
/// error.
pub fn read_stream(events: &[SseEvent], call: &mut LlmCall) {
    // Tool calls by content-block index.
    let mut tools: Vec<(u64, ToolCall)> = Vec::new();
    for event in events {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else { continue };
        match data.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let message = data.get("message").cloned().unwrap_or_default();
                if let Some(model) = message.get("model").and_then(Value::as_str) {
                    call.model = Some(model.to_string());
                }
                if let Some(usage) = message.get("usage") {
                    read_usage(usage, call);
                }
            }
            Some("content_block_start") => {
                let block = data.get("content_block").cloned().unwrap_or_default();
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let tool = ToolCall {
                        id: block.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                        name: block.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                        arguments: String::new(),
                    };
                    tools.push((data.get("index").and_then(Value::as_u64).unwrap_or(0), tool));
                }
            }
            Some("content_block_delta") => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    call.completion.push_str(text);
                }
                if let Some(json) = delta.get("partial_json").and_then(Value::as_str) {
                    let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                    if let Some((_, tool)) = tools.iter_mut().find(|(i, _)| *i == index) {
                        tool.arguments.push_str(json);
                    }
                }
            }
            Some("message_delta") => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    call.stop_reason = Some(reason.to_string());
                }
                if let Some(usage) = data.get("usage") {
                    read_usage(usage, call);
                }
            }
            Some("error") => call.error = data.get("error").map(error_text),
            _ => {}
        }
    }
    call.tool_calls.extend(tools.into_iter().map(|(_, tool)| tool));
}

fn read_usage(usage: &Value, call: &mut LlmCall) {
    call.input_tokens = u64_at(usage, &["input_tokens"]).or(call.input_tokens);
    call.output_tokens = u64_at(usage, &["output_tokens"]).or(call.output_tokens);
    call.cached_tokens = u64_at(usage, &["cache_read_input_tokens"]).or(call.cached_tokens);
}
