//! What a request asks for, read from its body the way each provider's API defines it, and the deterministic answer
//! the fixture gives: the text, or one tool call, and the token counts.
//!
//! Token counts are words (whitespace-separated): `input_tokens` counts the words of all message text in the
//! request (system prompt or instructions, every message's text parts and tool results; at least 1),
//! `output_tokens` the words of the completion (for a tool call, the words of its JSON arguments). `cached_tokens`
//! is the number in the `x-fixture-cached` request header (0 without it), capped at `input_tokens`; it is part of
//! `input_tokens`, as OpenAI's `prompt_tokens` includes `cached_tokens`.

use serde_json::Value;

/// Whose API a route speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
    Cohere,
    Mistral,
    Together,
    Groq,
    Fireworks,
    Perplexity,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Cohere => "cohere",
            Provider::Mistral => "mistral",
            Provider::Together => "together",
            Provider::Groq => "groq",
            Provider::Fireworks => "fireworks",
            Provider::Perplexity => "perplexity",
        }
    }
}

/// Which of a provider's APIs a route is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions and the providers that copy it.
    ChatCompletions,
    /// OpenAI's Responses API.
    Responses,
    /// OpenAI embeddings.
    Embeddings,
    /// Anthropic Messages.
    Messages,
    /// Gemini `generateContent` (`stream` false) or `streamGenerateContent` (`sse`: `alt=sse` was asked for,
    /// otherwise the stream is one JSON array).
    Gemini { stream: bool, sse: bool },
    /// Cohere v2 chat.
    CohereChat,
}

/// Id of the one tool call the fixture makes (Anthropic's `toolu_fixture_1`; Gemini's call has no id).
pub const TOOL_ID: &str = "call_fixture_1";
/// Arguments of the one tool call the fixture makes.
pub const TOOL_ARGUMENTS: &str = r#"{"path": "/etc/hostname"}"#;
/// The model name that answers with about 100 KiB of text.
pub const BIG_STREAM_MODEL: &str = "big-stream";
/// The model name that is refused with the provider's authentication error.
pub const FAIL_401_MODEL: &str = "fail-401";
/// How long the `big-stream` completion is, at least.
pub const BIG_STREAM_BYTES: usize = 100 * 1024;

/// A request, read.
#[derive(Debug, Default)]
pub struct Call {
    pub model: String,
    pub stream: bool,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
    /// Words of all message text.
    pub input_words: u64,
    /// Text of the last user message that has text of its own.
    pub last_user_text: String,
    /// How many assistant messages the conversation already has (chat completions, Anthropic and Cohere messages
    /// with role `assistant`, Gemini contents with role `model`): the turn a scripted conversation is at.
    pub assistant_messages: usize,
    /// Chat completions' `metadata`: its string values, which fill a scripted answer's `{KEY}`s.
    pub metadata: Vec<(String, String)>,
    /// The first declared tool, when the answer is a call to it (tools declared and the conversation does not end
    /// with a tool result).
    pub tool: Option<String>,
    /// Embeddings: how many inputs, and the dimensions asked for.
    pub embedding_inputs: usize,
    pub dimensions: Option<usize>,
    pub base64: bool,
}

/// One tool call of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// [`TOOL_ID`] for the built-in call; `call_<turn>_<i>` in a scripted answer.
    pub id: String,
    pub name: String,
    /// The arguments as the JSON text sent.
    pub arguments: String,
}

impl ToolCall {
    /// The arguments as the JSON object Anthropic (`input`) and Gemini (`args`) send: the text parsed, or `{}` when
    /// it is not a JSON object.
    pub fn arguments_object(&self) -> Value {
        match serde_json::from_str::<Value>(&self.arguments) {
            Ok(value @ Value::Object(_)) => value,
            _ => Value::Object(Default::default()),
        }
    }

    /// Whether this is the fixture's built-in call rather than a scripted one.
    pub fn is_builtin(&self) -> bool {
        self.id == TOOL_ID
    }

    /// The pieces the arguments are streamed in: split after the first space.
    pub fn argument_pieces(&self) -> Vec<String> {
        match self.arguments.find(' ') {
            Some(at) => vec![self.arguments[..=at].to_owned(), self.arguments[at + 1..].to_owned()],
            None => vec![self.arguments.clone()],
        }
    }
}

/// The answer to a call.
#[derive(Debug)]
pub struct Answer {
    /// The completion text (empty when the answer calls tools).
    pub text: String,
    /// The tool calls: none, the built-in one, or a scripted turn's (chat completions, Anthropic Messages and Gemini
    /// render them all; the Responses API and Cohere only the first).
    pub tool_calls: Vec<ToolCall>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
}

impl Answer {
    pub fn new(provider: Provider, call: &Call, cached: u64) -> Answer {
        let input_tokens = call.input_words.max(1);
        let cached_tokens = cached.min(input_tokens);
        if let Some(name) = &call.tool {
            let tool = ToolCall { id: TOOL_ID.into(), name: name.clone(), arguments: TOOL_ARGUMENTS.into() };
            return Answer::calling(vec![tool], input_tokens, cached_tokens);
        }
        let text = completion_text(provider, &call.last_user_text, call.model == BIG_STREAM_MODEL);
        Answer::text(text, input_tokens, cached_tokens)
    }

    /// A text answer: output tokens are its words.
    pub fn text(text: String, input_tokens: u64, cached_tokens: u64) -> Answer {
        Answer { output_tokens: words(&text), text, tool_calls: Vec::new(), input_tokens, cached_tokens }
    }

    /// An answer calling tools: output tokens are the words of their JSON arguments.
    pub fn calling(tool_calls: Vec<ToolCall>, input_tokens: u64, cached_tokens: u64) -> Answer {
        let output_tokens = tool_calls.iter().map(|tool| words(&tool.arguments)).sum();
        Answer { text: String::new(), tool_calls, input_tokens, output_tokens, cached_tokens }
    }

    /// The first tool call: the only one the Responses API and Cohere render.
    pub fn tool(&self) -> Option<&ToolCall> {
        self.tool_calls.first()
    }

    /// The pieces the completion is streamed in: a word per event, or many words per event for the big one.
    pub fn text_pieces(&self) -> Vec<String> {
        let per_piece = if self.text.len() > 4096 { 256 } else { 1 };
        let mut pieces = Vec::new();
        let mut current = String::new();
        for (i, word) in self.text.split(' ').enumerate() {
            if i > 0 {
                current.push(' ');
            }
            current.push_str(word);
            if (i + 1) % per_piece == 0 {
                pieces.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            pieces.push(current);
        }
        pieces
    }
}

/// "Hello from <provider> fixture: <first 8 words of the last user message>", and for the big model the words
/// `w00000 w00001 …` after it until the text is at least [`BIG_STREAM_BYTES`] long.
pub fn completion_text(provider: Provider, last_user_text: &str, big: bool) -> String {
    let mut text = format!("Hello from {} fixture:", provider.name());
    for word in last_user_text.split_whitespace().take(8) {
        text.push(' ');
        text.push_str(word);
    }
    if big {
        let mut i = 0;
        while text.len() < BIG_STREAM_BYTES {
            text.push_str(&format!(" w{i:05}"));
            i += 1;
        }
    }
    text
}

pub fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// All text in a message content: a string, or the text of its parts (`text`, tool results' `content`, Cohere
/// documents' `data`), joined by spaces.
fn all_text(content: &Value) -> String {
    let mut out = String::new();
    collect_text(content, &mut out, true);
    out
}

/// Only the text a user typed: strings and text parts, not tool results.
fn own_text(content: &Value) -> String {
    let mut out = String::new();
    collect_text(content, &mut out, false);
    out
}

fn push(out: &mut String, text: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(text);
}

fn collect_text(value: &Value, out: &mut String, tool_results: bool) {
    match value {
        Value::String(s) => push(out, s),
        Value::Array(parts) => {
            for part in parts {
                collect_text(part, out, tool_results);
            }
        }
        Value::Object(part) => {
            let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
            let is_tool_result = matches!(kind, "tool_result" | "function_call_output" | "document")
                || part.contains_key("functionResponse");
            if is_tool_result && !tool_results {
                return;
            }
            if let Some(Value::String(text)) = part.get("text") {
                push(out, text);
            }
            for key in ["content", "output"] {
                if let Some(inner) = part.get(key) {
                    collect_text(inner, out, tool_results);
                }
            }
            if let Some(document) = part.get("document") {
                match document.get("data") {
                    Some(Value::String(data)) => push(out, data),
                    Some(data) => push(out, &data.to_string()),
                    None => {}
                }
            }
            if let Some(response) = part.get("functionResponse").and_then(|f| f.get("response")) {
                push(out, &response.to_string());
            }
        }
        _ => {}
    }
}

fn str_field(body: &Value, key: &str) -> String {
    body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn is_true(body: &Value, key: &str) -> bool {
    body.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Reads a message list of `{role, content}` (OpenAI chat, Anthropic, Cohere): words of all text, and the last
/// user message's own text.
fn read_messages(messages: Option<&Value>, call: &mut Call) {
    let empty = Vec::new();
    let messages = messages.and_then(Value::as_array).unwrap_or(&empty);
    for message in messages {
        let content = message.get("content").unwrap_or(&Value::Null);
        call.input_words += words(&all_text(content));
        if message.get("role").and_then(Value::as_str) == Some("assistant") {
            call.assistant_messages += 1;
        }
        if message.get("role").and_then(Value::as_str) == Some("user") {
            let text = own_text(content);
            if !text.trim().is_empty() {
                call.last_user_text = text;
            }
        }
    }
}

/// The first declared tool's name, from `tools` (`[{type: function, function: {name}}]`, Anthropic's and the
/// Responses API's `[{name}]`, Gemini's `[{functionDeclarations: [{name}]}]`) or the legacy `functions`.
fn first_tool(body: &Value) -> Option<String> {
    let first_name = |list: &Value| -> Option<String> {
        list.as_array()?.iter().find_map(|tool| {
            let name = tool
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| tool.get("name"))
                .or_else(|| tool.get("functionDeclarations").and_then(|d| d.get(0)).and_then(|d| d.get("name")));
            name.and_then(Value::as_str).map(str::to_owned)
        })
    };
    body.get("tools").and_then(first_name).or_else(|| body.get("functions").and_then(first_name))
}

impl Call {
    /// Reads a request body for `api`. `gemini_model` is the model named in a Gemini path.
    pub fn read(api: Api, body: &Value, gemini_model: &str) -> Call {
        let mut call = Call { model: str_field(body, "model"), stream: is_true(body, "stream"), ..Call::default() };
        let last_is_tool_result;
        match api {
            Api::ChatCompletions | Api::CohereChat => {
                call.include_usage = body
                    .get("stream_options")
                    .and_then(|o| o.get("include_usage"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                read_messages(body.get("messages"), &mut call);
                if let Some(metadata) = body.get("metadata").and_then(Value::as_object) {
                    call.metadata = metadata
                        .iter()
                        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                        .collect();
                }
                let last_role = body
                    .get("messages")
                    .and_then(Value::as_array)
                    .and_then(|m| m.last())
                    .and_then(|m| m.get("role"))
                    .and_then(Value::as_str);
                last_is_tool_result = matches!(last_role, Some("tool" | "function"));
            }
            Api::Messages => {
                call.input_words += words(&all_text(body.get("system").unwrap_or(&Value::Null)));
                read_messages(body.get("messages"), &mut call);
                let last = body.get("messages").and_then(Value::as_array).and_then(|m| m.last());
                last_is_tool_result =
                    last.and_then(|m| m.get("content")).and_then(Value::as_array).is_some_and(|blocks| {
                        blocks.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                    });
            }
            Api::Responses => {
                call.input_words += words(&str_field(body, "instructions"));
                match body.get("input") {
                    Some(Value::String(text)) => {
                        call.input_words += words(text);
                        call.last_user_text = text.clone();
                        last_is_tool_result = false;
                    }
                    Some(Value::Array(items)) => {
                        for item in items {
                            let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
                            match kind {
                                "function_call_output" => {
                                    call.input_words += words(&all_text(item.get("output").unwrap_or(&Value::Null)))
                                }
                                "message" => {
                                    let content = item.get("content").unwrap_or(&Value::Null);
                                    call.input_words += words(&all_text(content));
                                    if item.get("role").and_then(Value::as_str) == Some("user") {
                                        let text = own_text(content);
                                        if !text.trim().is_empty() {
                                            call.last_user_text = text;
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                        last_is_tool_result = items
                            .last()
                            .and_then(|i| i.get("type"))
                            .and_then(Value::as_str)
                            .is_some_and(|t| t == "function_call_output");
                    }
                    _ => last_is_tool_result = false,
                }
            }
            Api::Embeddings => {
                let inputs: Vec<&Value> = match body.get("input") {
                    Some(Value::Array(items)) if items.iter().all(Value::is_number) => vec![&body["input"]],
                    Some(Value::Array(items)) => items.iter().collect(),
                    Some(other) => vec![other],
                    None => Vec::new(),
                };
                call.embedding_inputs = inputs.len();
                for input in inputs {
                    call.input_words += match input {
                        Value::String(text) => words(text),
                        Value::Array(tokens) => tokens.len() as u64,
                        _ => 0,
                    };
                }
                call.dimensions = body.get("dimensions").and_then(Value::as_u64).map(|d| d as usize);
                call.base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
                call.stream = false;
                last_is_tool_result = false;
            }
            Api::Gemini { stream, .. } => {
                call.model = gemini_model.to_owned();
                call.stream = stream;
                let system = body.get("systemInstruction").or_else(|| body.get("system_instruction"));
                if let Some(parts) = system.and_then(|s| s.get("parts")) {
                    call.input_words += words(&all_text(parts));
                }
                let empty = Vec::new();
                let contents = body.get("contents").and_then(Value::as_array).unwrap_or(&empty);
                for content in contents {
                    let parts = content.get("parts").unwrap_or(&Value::Null);
                    call.input_words += words(&all_text(parts));
                    let role = content.get("role").and_then(Value::as_str).unwrap_or("user");
                    if role == "model" {
                        call.assistant_messages += 1;
                    }
                    if role == "user" {
                        let text = own_text(parts);
                        if !text.trim().is_empty() {
                            call.last_user_text = text;
                        }
                    }
                }
                last_is_tool_result = contents
                    .last()
                    .and_then(|c| c.get("parts"))
                    .and_then(Value::as_array)
                    .is_some_and(|parts| parts.iter().any(|p| p.get("functionResponse").is_some()));
            }
        }
        if !last_is_tool_result && api != Api::Embeddings {
            call.tool = first_tool(body);
        }
        call
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_words_last_user_text_and_tools() {
        let body = json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "one two three four five six seven eight nine"}]},
            ],
            "tools": [{"type": "function", "function": {"name": "read_file"}}],
        });
        let call = Call::read(Api::ChatCompletions, &body, "");
        assert_eq!(call.input_words, 11);
        assert_eq!(call.tool.as_deref(), Some("read_file"));
        let answer = Answer::new(Provider::OpenAi, &call, 3);
        assert_eq!(answer.tool().unwrap().arguments, TOOL_ARGUMENTS);
        assert_eq!((answer.input_tokens, answer.output_tokens, answer.cached_tokens), (11, 2, 3));

        let mut call = call;
        call.tool = None;
        let answer = Answer::new(Provider::Mistral, &call, 100);
        assert_eq!(answer.text, "Hello from mistral fixture: one two three four five six seven eight");
        assert_eq!(answer.output_tokens, 12);
        assert_eq!(answer.cached_tokens, 11);
        assert_eq!(answer.text_pieces().concat(), answer.text);
    }

    #[test]
    fn a_tool_result_gets_text_back() {
        let body = json!({
            "model": "claude",
            "system": "sys words",
            "messages": [
                {"role": "user", "content": "read the hostname"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_fixture_1", "name": "read_file", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_fixture_1", "content": "myhost"}]},
            ],
            "tools": [{"name": "read_file", "input_schema": {"type": "object"}}],
        });
        let call = Call::read(Api::Messages, &body, "");
        assert_eq!(call.tool, None);
        assert_eq!(call.assistant_messages, 1);
        assert_eq!(call.last_user_text, "read the hostname");
        assert_eq!(call.input_words, 2 + 3 + 1);
    }

    #[test]
    fn big_stream_is_whole_and_split() {
        let text = completion_text(Provider::OpenAi, "hi", true);
        assert!(text.len() >= BIG_STREAM_BYTES && text.len() < BIG_STREAM_BYTES + 8);
        let answer = Answer::text(text.clone(), 1, 0);
        let pieces = answer.text_pieces();
        assert!(pieces.len() > 40);
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn gemini_and_responses_inputs() {
        let body = json!({
            "systemInstruction": {"parts": [{"text": "a b"}]},
            "contents": [{"role": "user", "parts": [{"text": "c d e"}]}],
            "tools": [{"functionDeclarations": [{"name": "read_file"}]}],
        });
        let call = Call::read(Api::Gemini { stream: true, sse: true }, &body, "gemini-2.0-flash");
        assert_eq!((call.input_words, call.stream, call.model.as_str()), (5, true, "gemini-2.0-flash"));
        assert_eq!(call.tool.as_deref(), Some("read_file"));
        assert_eq!(call.assistant_messages, 0);

        // The model's turns count as assistant messages, so a script advances.
        let body = json!({
            "contents": [
                {"role": "user", "parts": [{"text": "run the tests"}]},
                {"role": "model", "parts": [{"functionCall": {"id": "call_0_0", "name": "run", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"id": "call_0_0", "name": "run",
                                                                  "response": {"output": "ok"}}}]},
                {"role": "model", "parts": [{"text": "done"}]},
                {"parts": [{"text": "again"}]},
            ],
        });
        let call = Call::read(Api::Gemini { stream: false, sse: false }, &body, "script:x");
        assert_eq!(call.assistant_messages, 2);
        assert_eq!(call.last_user_text, "again");

        let body = json!({
            "model": "gpt-4.1", "instructions": "x y",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "p q r"}]},
                      {"type": "function_call_output", "call_id": "call_fixture_1", "output": "host"}],
            "tools": [{"type": "function", "name": "read_file"}],
        });
        let call = Call::read(Api::Responses, &body, "");
        assert_eq!((call.input_words, call.tool.clone()), (6, None));
        assert_eq!(call.last_user_text, "p q r");
    }
}
