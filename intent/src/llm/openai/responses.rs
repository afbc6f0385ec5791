//! The OpenAI Responses API (`/v1/responses`; Groq, Fireworks AI and
//! Perplexity's Agent API speak it too).
//!
//! The request's `input` is a string or a list of items: messages (a role and
//! content) and the agent's own bookkeeping, among it `function_call_output`
//! items, the tool results. The answer's `output` is a list of items too:
//! `message` (text parts with URL annotations), `function_call`, reasoning
//! and built-in tool items. There is no finish reason: the stop reason is the
//! response's status, or why it is incomplete.
//!
//! A stream is a sequence of typed events: text and argument deltas keyed by
//! output index, then `response.completed` (or `.incomplete`, `.failed`)
//! carrying the whole response, which is taken over the deltas when it came.

use serde_json::Value;

use crate::llm::{
    array_at, content_text, error_text, json_text, push_citation, set_prompt, str_at, u64_at, LlmCall, ToolCall,
    ToolResult, MAX_TOOL_CALLS,
};

pub fn read_request(body: &Value, call: &mut LlmCall) {
    match body.get("input") {
        Some(Value::String(text)) => call.prompt = text.clone(),
        Some(Value::Array(items)) => {
            for item in items {
                match item.get("type").and_then(Value::as_str) {
                    None | Some("message") if item.get("role").and_then(Value::as_str) == Some("user") => {
                        set_prompt(call, item.get("content").map(content_text).unwrap_or_default());
                    }
                    Some("function_call_output" | "custom_tool_call_output") => call.tool_results.push(ToolResult {
                        tool_call_id: str_at(item, "call_id"),
                        content: item.get("output").map(output_text).unwrap_or_default(),
                    }),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

pub fn read_response(body: &Value, call: &mut LlmCall) {
    if let Some(model) = body.get("model").and_then(Value::as_str) {
        call.model = Some(model.to_string());
    }
    if let Some(usage) = body.get("usage").filter(|u| u.is_object()) {
        call.input_tokens = u64_at(usage, &["input_tokens"]).or(call.input_tokens);
        call.output_tokens = u64_at(usage, &["output_tokens"]).or(call.output_tokens);
        call.cached_tokens = u64_at(usage, &["input_tokens_details", "cached_tokens"]).or(call.cached_tokens);
    }
    let incomplete = body.pointer("/incomplete_details/reason").and_then(Value::as_str);
    if let Some(reason) = incomplete.or_else(|| body.get("status").and_then(Value::as_str)) {
        call.stop_reason = Some(reason.to_string());
    }
    if let Some(error) = body.get("error").filter(|e| e.is_object()) {
        call.error = Some(error_text(error));
    }
    let output = array_at(body, "output");
    if output.is_empty() {
        return;
    }
    // The whole output: it replaces whatever deltas built before.
    call.completion.clear();
    call.tool_calls.clear();
    for item in output {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for part in array_at(item, "content") {
                    if part.get("type").and_then(Value::as_str) == Some("output_text") {
                        call.completion.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default());
                        read_annotations(array_at(part, "annotations"), call);
                    }
                }
            }
            Some("function_call" | "custom_tool_call") => call.tool_calls.push(tool_call(item)),
            _ => {}
        }
    }
}

/// Typed events; tool calls are keyed by their output index.
pub fn read_stream(chunks: &[Value], call: &mut LlmCall) {
    let mut tools: Vec<(u64, ToolCall)> = Vec::new();
    let output_index = |event: &Value| event.get("output_index").and_then(Value::as_u64).unwrap_or(0);
    for event in chunks {
        match event.get("type").and_then(Value::as_str) {
            Some("response.created" | "response.in_progress") => {
                if let Some(model) = event.pointer("/response/model").and_then(Value::as_str) {
                    call.model = Some(model.to_string());
                }
            }
            Some("response.output_text.delta") => {
                call.completion.push_str(event.get("delta").and_then(Value::as_str).unwrap_or_default());
            }
            Some("response.output_text.annotation.added") => {
                read_annotations(std::slice::from_ref(event.get("annotation").unwrap_or(&Value::Null)), call);
            }
            Some("response.output_item.added" | "response.output_item.done") => {
                let item = event.get("item").unwrap_or(&Value::Null);
                if matches!(item.get("type").and_then(Value::as_str), Some("function_call" | "custom_tool_call")) {
                    let index = output_index(event);
                    let tool = tool_call(item);
                    let room = tools.len() < MAX_TOOL_CALLS;
                    match tools.iter_mut().find(|(i, _)| *i == index) {
                        // `.added` has empty arguments; keep the deltas then.
                        Some((_, known)) if tool.arguments.is_empty() => {
                            known.id = tool.id;
                            known.name = tool.name;
                        }
                        Some((_, known)) => *known = tool,
                        None if room => tools.push((index, tool)),
                        None => {}
                    }
                }
            }
            Some("response.function_call_arguments.delta" | "response.custom_tool_call_input.delta") => {
                let index = output_index(event);
                if let Some((_, tool)) = tools.iter_mut().find(|(i, _)| *i == index) {
                    tool.arguments.push_str(event.get("delta").and_then(Value::as_str).unwrap_or_default());
                }
            }
            Some("response.function_call_arguments.done") => {
                let index = output_index(event);
                if let (Some((_, tool)), Some(arguments)) =
                    (tools.iter_mut().find(|(i, _)| *i == index), event.get("arguments").and_then(Value::as_str))
                {
                    tool.arguments = arguments.to_string();
                }
            }
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                call.tool_calls.extend(std::mem::take(&mut tools).into_iter().map(|(_, tool)| tool));
                if let Some(response) = event.get("response") {
                    read_response(response, call);
                }
            }
            Some("error") => {
                call.error =
                    Some(event.get("message").and_then(Value::as_str).map_or_else(|| error_text(event), str::to_string))
            }
            _ => {}
        }
    }
    // A stream cut before its end: the calls as far as they came.
    call.tool_calls.extend(tools.into_iter().map(|(_, tool)| tool));
}

fn tool_call(item: &Value) -> ToolCall {
    ToolCall {
        id: str_at(item, "call_id"),
        name: str_at(item, "name"),
        arguments: item.get("arguments").or_else(|| item.get("input")).map(json_text).unwrap_or_default(),
    }
}

/// A tool output: a string, or content parts.
fn output_text(output: &Value) -> String {
    match output {
        Value::Array(_) => content_text(output),
        other => json_text(other),
    }
}

/// URLs cited by `url_citation` annotations.
fn read_annotations(annotations: &[Value], call: &mut LlmCall) {
    for annotation in annotations {
        if annotation.get("type").and_then(Value::as_str) == Some("url_citation") {
            push_citation(call, str_at(annotation, "url"));
        }
    }
}
