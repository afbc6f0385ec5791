//! Anthropic's messages API (`/v1/messages`).

use serde_json::Value;

use super::{
    array_at, content_text, json_text, push_citation, set_prompt, str_at, u64_at, LlmCall, ToolCall, ToolResult,
    MAX_TOOL_CALLS,
};

pub fn read_request(body: &Value, call: &mut LlmCall) {
    for message in array_at(body, "messages").iter().filter(|m| m.get("role").and_then(Value::as_str) == Some("user")) {
        let Some(content) = message.get("content") else { continue };
        for block in content.as_array().map(Vec::as_slice).unwrap_or_default() {
            if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                call.tool_results.push(ToolResult {
                    tool_call_id: str_at(block, "tool_use_id"),
                    content: block.get("content").map(content_text).unwrap_or_default(),
                });
            }
        }
        set_prompt(call, content_text(content));
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
    for block in array_at(body, "content") {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                call.completion.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default());
                for citation in array_at(block, "citations") {
                    push_citation(call, str_at(citation, "url"));
                }
            }
            Some("tool_use") => call.tool_calls.push(ToolCall {
                id: str_at(block, "id"),
                name: str_at(block, "name"),
                arguments: block.get("input").map(json_text).unwrap_or_default(),
            }),
            _ => {}
        }
    }
}

/// message_start, content_block_start/delta (text and tool-input JSON in
/// pieces, keyed by block index), message_delta (stop reason, output tokens);
/// `error` events are read with every format's errors.
pub fn read_stream(events: &[Value], call: &mut LlmCall) {
    // Tool calls by content-block index.
    let mut tools: Vec<(u64, ToolCall)> = Vec::new();
    let null = Value::Null;
    for data in events {
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match data.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let message = data.get("message").unwrap_or(&null);
                if let Some(model) = message.get("model").and_then(Value::as_str) {
                    call.model = Some(model.to_string());
                }
                if let Some(usage) = message.get("usage") {
                    read_usage(usage, call);
                }
            }
            Some("content_block_start") => {
                let block = data.get("content_block").unwrap_or(&null);
                if block.get("type").and_then(Value::as_str) == Some("tool_use") && tools.len() < MAX_TOOL_CALLS {
                    let tool =
                        ToolCall { id: str_at(block, "id"), name: str_at(block, "name"), arguments: String::new() };
                    tools.push((index, tool));
                }
            }
            Some("content_block_delta") => {
                let delta = data.get("delta").unwrap_or(&null);
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    call.completion.push_str(text);
                }
                if let Some(json) = delta.get("partial_json").and_then(Value::as_str) {
                    if let Some((_, tool)) = tools.iter_mut().find(|(i, _)| *i == index) {
                        tool.arguments.push_str(json);
                    }
                }
                if let Some(citation) = delta.get("citation") {
                    push_citation(call, str_at(citation, "url"));
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
