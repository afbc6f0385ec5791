//! Google's Gemini API (`generativelanguage.googleapis.com`):
//! `models/{model}:generateContent`, `:streamGenerateContent` (server-sent
//! events with `alt=sse`, else one JSON array whose items arrive as the
//! answer grows) and the embedding calls. The request names the model in the
//! URL, not the body; the answer names the exact version in `modelVersion`.
//!
//! Contents are turns of parts: `text` (thinking marked `thought: true`, left
//! out of the completion), `functionCall` and `functionResponse`. A chunk of
//! a stream has the shape of a whole answer holding the new parts and the
//! usage counted so far, so one reader serves both.

use serde_json::Value;

use crate::llm::{array_at, json_text, set_prompt, str_at, u64_at, LlmCall, ToolCall, ToolResult, MAX_TOOL_CALLS};

/// The operation a request target names, in the event schema's words.
pub fn operation(target: &str) -> &'static str {
    match model_and_method(target).map(|(_, method)| method) {
        Some("embedContent" | "batchEmbedContents") => "embed_content",
        Some("countTokens") => "count_tokens",
        _ => "generate_content",
    }
}

/// The model from the URL (it wins over anything in the body).
pub fn read_target(target: &str, call: &mut LlmCall) {
    if let Some((model, method)) = model_and_method(target) {
        if !model.is_empty() {
            call.model = Some(model.to_string());
        }
        call.streamed |= method == "streamGenerateContent";
    }
}

/// `(model, method)` from `…/models/{model}:{method}?query`; the method is
/// after the last colon (a model name may hold one).
fn model_and_method(target: &str) -> Option<(&str, &str)> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').next()?.rsplit_once(':')
}

pub fn read_request(body: &Value, call: &mut LlmCall) {
    for content in array_at(body, "contents") {
        let parts = array_at(content, "parts");
        for response in parts.iter().filter_map(|p| p.get("functionResponse")) {
            call.tool_results.push(ToolResult {
                tool_call_id: id_or_name(response),
                content: response.get("response").map(json_text).unwrap_or_default(),
            });
        }
        // A turn without a role is the user's.
        if content.get("role").and_then(Value::as_str).is_none_or(|role| role == "user") {
            set_prompt(call, text_of(parts, "\n"));
        }
    }
    // embedContent has one content, batchEmbedContents one per request.
    if let Some(content) = body.get("content") {
        set_prompt(call, text_of(array_at(content, "parts"), "\n"));
    }
    let texts: Vec<String> = array_at(body, "requests")
        .iter()
        .filter_map(|r| r.get("content"))
        .map(|c| text_of(array_at(c, "parts"), "\n"))
        .filter(|t| !t.is_empty())
        .collect();
    set_prompt(call, texts.join("\n"));
}

/// A whole answer, or one chunk of a stream (text and calls add up; usage
/// and finish reason are the latest).
pub fn read_response(body: &Value, call: &mut LlmCall) {
    if let Some(version) = body.get("modelVersion").and_then(Value::as_str) {
        call.model = Some(version.strip_prefix("models/").unwrap_or(version).to_string());
    }
    if let Some(usage) = body.get("usageMetadata").filter(|u| u.is_object()) {
        call.input_tokens = u64_at(usage, &["promptTokenCount"]).or(call.input_tokens);
        // Thinking is billed as output, as OpenAI and Anthropic count it.
        let candidates = u64_at(usage, &["candidatesTokenCount"]);
        let thoughts = u64_at(usage, &["thoughtsTokenCount"]);
        if candidates.is_some() || thoughts.is_some() {
            call.output_tokens = Some(candidates.unwrap_or(0).saturating_add(thoughts.unwrap_or(0)));
        }
        call.cached_tokens = u64_at(usage, &["cachedContentTokenCount"]).or(call.cached_tokens);
    }
    // A prompt refused outright has no candidates, only the reason.
    if let Some(reason) = body.pointer("/promptFeedback/blockReason").and_then(Value::as_str) {
        call.stop_reason = Some(reason.to_string());
    }
    let candidates = array_at(body, "candidates");
    let Some(candidate) = candidates.iter().find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0) else {
        return;
    };
    if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
        call.stop_reason = Some(reason.to_string());
    }
    let parts = candidate.get("content").map(|c| array_at(c, "parts")).unwrap_or_default();
    call.completion.push_str(&text_of(parts, ""));
    for function in parts.iter().filter_map(|p| p.get("functionCall")) {
        if call.tool_calls.len() < MAX_TOOL_CALLS {
            call.tool_calls.push(ToolCall {
                id: id_or_name(function),
                name: str_at(function, "name"),
                arguments: function.get("args").map(json_text).unwrap_or_default(),
            });
        }
    }
}

/// The text parts that are not thoughts.
fn text_of(parts: &[Value], separator: &str) -> String {
    parts
        .iter()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(separator)
}

/// A call's id; calls and results without one pair by function name.
fn id_or_name(function: &Value) -> String {
    function
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map_or_else(|| str_at(function, "name"), str::to_string)
}
