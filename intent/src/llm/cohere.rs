//! Cohere's chat API: `/v2/chat` (messages much like OpenAI's, a stream of
//! typed server-sent events) and the older `/v1/chat` in `v1`.
//!
//! Cohere answers carry no model name: the model is the one the request
//! named. Usage comes as `tokens` (what the model processed) and
//! `billed_units` (what is charged); the tokens are taken when present.

use serde_json::Value;

use crate::llm::{
    array_at, content_text, json_text, set_prompt, str_at, u64_at, LlmCall, ToolCall, ToolResult, MAX_TOOL_CALLS,
};

pub fn read_request(body: &Value, call: &mut LlmCall) {
    for message in array_at(body, "messages") {
        let content = message.get("content").unwrap_or(&Value::Null);
        match message.get("role").and_then(Value::as_str) {
            Some("user") => set_prompt(call, content_text(content)),
            Some("tool") => call
                .tool_results
                .push(ToolResult { tool_call_id: str_at(message, "tool_call_id"), content: tool_content(content) }),
            _ => {}
        }
    }
}

pub fn read_response(body: &Value, call: &mut LlmCall) {
    if let Some(reason) = body.get("finish_reason").and_then(Value::as_str) {
        call.stop_reason = Some(reason.to_string());
    }
    if let Some(usage) = body.get("usage") {
        read_usage(usage, call);
    }
    let Some(message) = body.get("message") else { return };
    for part in array_at(message, "content") {
        if part.get("type").and_then(Value::as_str) == Some("text") {
            call.completion.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default());
        }
    }
    call.tool_calls.extend(array_at(message, "tool_calls").iter().take(MAX_TOOL_CALLS).map(tool_call));
}

/// message-start, content-delta (text), tool-call-start/-delta (a call's id
/// and name, then its arguments in pieces, keyed by index), message-end
/// (finish reason and usage).
pub fn read_stream(events: &[Value], call: &mut LlmCall) {
    let mut tools: Vec<(u64, ToolCall)> = Vec::new();
    for event in events {
        let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
        let message = event.pointer("/delta/message").unwrap_or(&Value::Null);
        // One call per event, though clients also accept a list of one.
        let tool = message.get("tool_calls").map(|t| t.get(0).unwrap_or(t)).unwrap_or(&Value::Null);
        match event.get("type").and_then(Value::as_str) {
            Some("content-delta") => {
                call.completion.push_str(message.pointer("/content/text").and_then(Value::as_str).unwrap_or_default());
            }
            Some("tool-call-start") if tools.len() < MAX_TOOL_CALLS => tools.push((index, tool_call(tool))),
            Some("tool-call-delta") => {
                if let Some((_, known)) = tools.iter_mut().find(|(i, _)| *i == index) {
                    known.arguments.push_str(&tool.pointer("/function/arguments").map(json_text).unwrap_or_default());
                }
            }
            Some("message-end") => {
                if let Some(reason) = event.pointer("/delta/finish_reason").and_then(Value::as_str) {
                    call.stop_reason = Some(reason.to_string());
                }
                if let Some(usage) = event.pointer("/delta/usage") {
                    read_usage(usage, call);
                }
            }
            _ => {}
        }
    }
    call.tool_calls.extend(tools.into_iter().map(|(_, tool)| tool));
}

fn tool_call(tool: &Value) -> ToolCall {
    ToolCall {
        id: str_at(tool, "id"),
        name: tool.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string(),
        arguments: tool.pointer("/function/arguments").map(json_text).unwrap_or_default(),
    }
}

/// A tool message's content: a string, or text and document parts (a
/// document's data as JSON text).
fn tool_content(content: &Value) -> String {
    match content {
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => part.get("text").and_then(Value::as_str).map(str::to_string),
                Some("document") => part.pointer("/document/data").map(json_text),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => json_text(other),
    }
}

fn read_usage(usage: &Value, call: &mut LlmCall) {
    let count = |key: &str| u64_at(usage, &["tokens", key]).or_else(|| u64_at(usage, &["billed_units", key]));
    call.input_tokens = count("input_tokens").or(call.input_tokens);
    call.output_tokens = count("output_tokens").or(call.output_tokens);
    call.cached_tokens = u64_at(usage, &["cached_tokens"]).or(call.cached_tokens);
}

/// Cohere's `/v1/chat`: the user's `message` beside a `chat_history`, tool
/// calls without ids (a call and its result pair by tool name), usage under
/// `meta`, and a stream of one JSON object per line, not server-sent events.
pub mod v1 {
    use serde_json::Value;

    use super::read_usage;
    use crate::llm::{array_at, json_text, set_prompt, str_at, LlmCall, ToolCall, ToolResult, MAX_TOOL_CALLS};

    pub fn read_request(body: &Value, call: &mut LlmCall) {
        for turn in array_at(body, "chat_history") {
            if turn.get("role").and_then(Value::as_str).is_some_and(|r| r.eq_ignore_ascii_case("user")) {
                set_prompt(call, str_at(turn, "message"));
            }
        }
        set_prompt(call, str_at(body, "message"));
        for result in array_at(body, "tool_results") {
            call.tool_results.push(ToolResult {
                tool_call_id: result.pointer("/call/name").and_then(Value::as_str).unwrap_or_default().to_string(),
                content: result.get("outputs").map(json_text).unwrap_or_default(),
            });
        }
    }

    pub fn read_response(body: &Value, call: &mut LlmCall) {
        if let Some(reason) = body.get("finish_reason").and_then(Value::as_str) {
            call.stop_reason = Some(reason.to_string());
        }
        if let Some(meta) = body.get("meta") {
            read_usage(meta, call);
        }
        call.completion.push_str(body.get("text").and_then(Value::as_str).unwrap_or_default());
        call.tool_calls.extend(array_at(body, "tool_calls").iter().take(MAX_TOOL_CALLS).map(tool_call));
    }

    /// stream-start, text-generation (text), tool-calls-generation (the
    /// calls, whole), stream-end (finish reason and the whole response,
    /// which is taken over the pieces).
    pub fn read_stream(events: &[Value], call: &mut LlmCall) {
        for event in events {
            match event.get("event_type").and_then(Value::as_str) {
                Some("text-generation") => {
                    call.completion.push_str(event.get("text").and_then(Value::as_str).unwrap_or_default());
                }
                Some("tool-calls-generation") => {
                    call.tool_calls =
                        array_at(event, "tool_calls").iter().take(MAX_TOOL_CALLS).map(tool_call).collect();
                }
                Some("stream-end") => {
                    if let Some(response) = event.get("response").filter(|r| r.get("text").is_some()) {
                        call.completion.clear();
                        call.tool_calls.clear();
                        read_response(response, call);
                    }
                    if let Some(reason) = event.get("finish_reason").and_then(Value::as_str) {
                        call.stop_reason = Some(reason.to_string());
                    }
                }
                _ => {}
            }
        }
    }

    fn tool_call(tool: &Value) -> ToolCall {
        let name = str_at(tool, "name");
        ToolCall { id: name.clone(), name, arguments: tool.get("parameters").map(json_text).unwrap_or_default() }
    }
}
