//! OpenAI embeddings (`/v1/embeddings`), which Mistral, Together AI and
//! Fireworks AI copy: the prompt is the input text (or texts); there is no
//! completion, and only input tokens are counted.

use serde_json::Value;

use crate::llm::{str_at, u64_at, LlmCall};

/// `input` is a string, an array of strings, or token ids (which are not
/// text and are left out). Older Mistral clients send `inputs`.
pub fn read_request(body: &Value, call: &mut LlmCall) {
    let input = body.get("input").or_else(|| body.get("inputs"));
    call.prompt = match input {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    };
}

pub fn read_response(body: &Value, call: &mut LlmCall) {
    let model = str_at(body, "model");
    if !model.is_empty() {
        call.model = Some(model);
    }
    call.input_tokens = body.get("usage").and_then(|u| u64_at(u, &["prompt_tokens"])).or(call.input_tokens);
}
