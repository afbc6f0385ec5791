//! Answers in each provider's wire format: JSON bodies, and server-sent event streams.

use serde_json::{json, Value};

use crate::call::{Answer, Api, Call, Provider, ToolCall};

/// A fixed creation time, so bodies are the same from run to run.
const CREATED: u64 = 1_767_225_600;

/// A rendered answer.
pub enum Rendered {
    Json(Value),
    /// The stream's events, each written and flushed on its own; `content_type` is `text/event-stream` except for
    /// Gemini's JSON-array stream.
    Stream {
        content_type: &'static str,
        events: Vec<String>,
    },
}

/// Ids are unique within a run: `n` counts the server's answers.
pub struct Ids {
    pub n: u64,
}

impl Ids {
    fn id(&self, prefix: &str) -> String {
        format!("{prefix}fixture{:06}", self.n)
    }
}

fn sse_data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

fn sse_event(name: &str, value: &Value) -> String {
    format!("event: {name}\ndata: {value}\n\n")
}

pub fn render(provider: Provider, api: Api, call: &Call, answer: &Answer, ids: &Ids) -> Rendered {
    match api {
        Api::ChatCompletions if call.stream => chat_stream(provider, call, answer, ids),
        Api::ChatCompletions => Rendered::Json(chat(provider, call, answer, ids)),
        Api::Responses if call.stream => responses_stream(call, answer, ids),
        Api::Responses => Rendered::Json(response_object(call, answer, ids, "completed")),
        Api::Embeddings => Rendered::Json(embeddings(call, answer)),
        Api::Messages if call.stream => messages_stream(call, answer, ids),
        Api::Messages => Rendered::Json(message(call, answer, ids)),
        Api::Gemini { stream: true, sse } => gemini_stream(call, answer, ids, sse),
        Api::Gemini { .. } => Rendered::Json(gemini(call, answer, ids)),
        Api::CohereChat if call.stream => cohere_stream(answer, ids),
        Api::CohereChat => Rendered::Json(cohere(answer, ids)),
    }
}

// ---- OpenAI chat completions and the providers that copy it ----

fn chat_usage(provider: Provider, answer: &Answer) -> Value {
    let mut usage = json!({
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    });
    if provider == Provider::OpenAi {
        usage["prompt_tokens_details"] = json!({"cached_tokens": answer.cached_tokens, "audio_tokens": 0});
        usage["completion_tokens_details"] = json!({
            "reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        });
    } else if answer.cached_tokens > 0 {
        usage["prompt_tokens_details"] = json!({"cached_tokens": answer.cached_tokens});
    }
    if provider == Provider::Groq {
        usage["queue_time"] = json!(0.01);
        usage["prompt_time"] = json!(0.002);
        usage["completion_time"] = json!(0.02);
        usage["total_time"] = json!(0.022);
    }
    usage
}

fn finish_reason(answer: &Answer) -> &'static str {
    if answer.tool().is_some() {
        "tool_calls"
    } else {
        "stop"
    }
}

fn chat(provider: Provider, call: &Call, answer: &Answer, ids: &Ids) -> Value {
    let message = if answer.tool_calls.is_empty() {
        json!({"role": "assistant", "content": answer.text, "refusal": null, "annotations": []})
    } else {
        let tool_calls: Vec<Value> = answer
            .tool_calls
            .iter()
            .map(|tool| {
                json!({"id": tool.id, "type": "function",
                               "function": {"name": tool.name, "arguments": tool.arguments}})
            })
            .collect();
        json!({"role": "assistant", "content": null, "tool_calls": tool_calls, "refusal": null, "annotations": []})
    };
    let mut body = json!({
        "id": ids.id("chatcmpl-"),
        "object": "chat.completion",
        "created": CREATED,
        "model": call.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(answer)}],
        "usage": chat_usage(provider, answer),
        "system_fingerprint": "fp_fixture",
    });
    match provider {
        Provider::OpenAi => body["service_tier"] = json!("default"),
        Provider::Perplexity => {
            body["citations"] = json!([]);
            body["search_results"] = json!([]);
        }
        Provider::Groq => body["x_groq"] = json!({"id": ids.id("req_")}),
        _ => {}
    }
    body
}

/// OpenAI sends usage only when `stream_options.include_usage` asks, in a last chunk with no choices (and
/// `"usage": null` on every other chunk). Mistral, Together, Fireworks and Perplexity put it on the chunk that
/// carries `finish_reason`; Groq in that chunk's `x_groq.usage`.
fn chat_stream(provider: Provider, call: &Call, answer: &Answer, ids: &Ids) -> Rendered {
    let id = ids.id("chatcmpl-");
    let usage_null = provider == Provider::OpenAi && call.include_usage;
    let chunk = |delta: Value, finish: Value| {
        let mut chunk = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": call.model,
            "system_fingerprint": "fp_fixture",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if usage_null {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut events = Vec::new();
    if answer.tool_calls.is_empty() {
        events.push(chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null));
        for piece in answer.text_pieces() {
            events.push(chunk(json!({"content": piece}), Value::Null));
        }
    }
    // Each call opens with its id and name (the first chunk also carries the role), then its arguments in pieces.
    for (index, tool) in answer.tool_calls.iter().enumerate() {
        let start = json!({"index": index, "id": tool.id, "type": "function",
                           "function": {"name": tool.name, "arguments": ""}});
        let delta = if index == 0 {
            json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [start]})
        } else {
            json!({"tool_calls": [start]})
        };
        events.push(chunk(delta, Value::Null));
        for piece in tool.argument_pieces() {
            events
                .push(chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}), Value::Null));
        }
    }
    let mut last = chunk(json!({}), json!(finish_reason(answer)));
    match provider {
        Provider::OpenAi => {}
        Provider::Groq => last["x_groq"] = json!({"id": ids.id("req_"), "usage": chat_usage(provider, answer)}),
        _ => last["usage"] = chat_usage(provider, answer),
    }
    events.push(last);
    if call.include_usage && matches!(provider, Provider::OpenAi | Provider::Groq) {
        let mut usage_chunk = chunk(json!({}), Value::Null);
        usage_chunk["choices"] = json!([]);
        usage_chunk["usage"] = chat_usage(provider, answer);
        events.push(usage_chunk);
    }
    let mut events: Vec<String> = events.iter().map(sse_data).collect();
    events.push("data: [DONE]\n\n".to_owned());
    Rendered::Stream { content_type: "text/event-stream; charset=utf-8", events }
}

// ---- OpenAI Responses ----

fn response_output(answer: &Answer, status: &str) -> Value {
    match answer.tool() {
        Some(ToolCall { name, arguments, .. }) => json!({
            "type": "function_call", "id": "fc_fixture_1", "call_id": "call_fixture_1",
            "name": name, "arguments": arguments, "status": status,
        }),
        None => json!({
            "type": "message", "id": "msg_fixture_1", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": answer.text, "annotations": [], "logprobs": []}],
        }),
    }
}

fn response_object(call: &Call, answer: &Answer, ids: &Ids, status: &str) -> Value {
    let done = status == "completed";
    json!({
        "id": ids.id("resp_"),
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": call.model,
        "output": if done { json!([response_output(answer, "completed")]) } else { json!([]) },
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": true,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": if done {
            json!({
                "input_tokens": answer.input_tokens,
                "input_tokens_details": {"cached_tokens": answer.cached_tokens},
                "output_tokens": answer.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": answer.input_tokens + answer.output_tokens,
            })
        } else {
            Value::Null
        },
        "user": null,
        "metadata": {},
    })
}

fn responses_stream(call: &Call, answer: &Answer, ids: &Ids) -> Rendered {
    let mut events: Vec<Value> = vec![
        json!({"type": "response.created", "response": response_object(call, answer, ids, "in_progress")}),
        json!({"type": "response.in_progress", "response": response_object(call, answer, ids, "in_progress")}),
    ];
    let added = match response_output(answer, "in_progress") {
        Value::Object(mut item) => {
            if answer.tool().is_some() {
                item.insert("arguments".into(), json!(""));
            } else {
                item.insert("content".into(), json!([]));
            }
            Value::Object(item)
        }
        other => other,
    };
    events.push(json!({"type": "response.output_item.added", "output_index": 0, "item": added}));
    match answer.tool() {
        Some(tool) => {
            for piece in tool.argument_pieces() {
                events.push(json!({"type": "response.function_call_arguments.delta", "item_id": "fc_fixture_1",
                                   "output_index": 0, "delta": piece}));
            }
            events.push(json!({"type": "response.function_call_arguments.done", "item_id": "fc_fixture_1",
                               "output_index": 0, "arguments": tool.arguments}));
        }
        None => {
            let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
            let at = json!({"item_id": "msg_fixture_1", "output_index": 0, "content_index": 0});
            let with = |kind: &str, extra: Value| {
                let mut event = at.clone();
                event["type"] = json!(kind);
                for (k, v) in extra.as_object().into_iter().flatten() {
                    event[k] = v.clone();
                }
                event
            };
            events.push(with("response.content_part.added", json!({"part": part("")})));
            for piece in answer.text_pieces() {
                events.push(with("response.output_text.delta", json!({"delta": piece, "logprobs": []})));
            }
            events.push(with("response.output_text.done", json!({"text": answer.text, "logprobs": []})));
            events.push(with("response.content_part.done", json!({"part": part(&answer.text)})));
        }
    }
    events.push(
        json!({"type": "response.output_item.done", "output_index": 0, "item": response_output(answer, "completed")}),
    );
    events.push(json!({"type": "response.completed", "response": response_object(call, answer, ids, "completed")}));
    let events = events
        .into_iter()
        .enumerate()
        .map(|(i, mut event)| {
            event["sequence_number"] = json!(i);
            sse_event(event["type"].as_str().unwrap_or_default(), &event)
        })
        .collect();
    Rendered::Stream { content_type: "text/event-stream; charset=utf-8", events }
}

// ---- OpenAI embeddings ----

fn embeddings(call: &Call, answer: &Answer) -> Value {
    let dimensions = call.dimensions.unwrap_or(1536).clamp(1, 4096);
    let data: Vec<Value> = (0..call.embedding_inputs.max(1))
        .map(|index| {
            let vector: Vec<f32> =
                (0..dimensions).map(|i| (((i * 7 + index * 13) % 200) as f32 - 100.0) / 1000.0).collect();
            let embedding = if call.base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                json!(base64(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": call.model,
        "usage": {"prompt_tokens": answer.input_tokens, "total_tokens": answer.input_tokens},
    })
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- Anthropic Messages ----

/// Anthropic counts cache reads apart: `input_tokens` excludes them.
fn anthropic_usage(answer: &Answer, output_tokens: u64) -> Value {
    json!({
        "input_tokens": answer.input_tokens - answer.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": answer.cached_tokens,
        "output_tokens": output_tokens,
    })
}

fn stop_reason(answer: &Answer) -> &'static str {
    if answer.tool().is_some() {
        "tool_use"
    } else {
        "end_turn"
    }
}

/// A tool call's `tool_use` id: the scripted call's own, `toolu_fixture_1` for the built-in one.
fn tool_use_id(tool: &ToolCall) -> &str {
    if tool.is_builtin() {
        "toolu_fixture_1"
    } else {
        &tool.id
    }
}

/// The pieces of a tool call's `input` as `input_json_delta`s: the arguments' text, or `{}` when it is not a JSON
/// object (what the whole message's `input` holds then).
fn input_pieces(tool: &ToolCall) -> Vec<String> {
    if serde_json::from_str::<Value>(&tool.arguments).is_ok_and(|value| value.is_object()) {
        tool.argument_pieces()
    } else {
        vec!["{}".to_owned()]
    }
}

fn message(call: &Call, answer: &Answer, ids: &Ids) -> Value {
    let content = if answer.tool_calls.is_empty() {
        json!([{"type": "text", "text": answer.text}])
    } else {
        let blocks: Vec<Value> = answer
            .tool_calls
            .iter()
            .map(|tool| {
                json!({"type": "tool_use", "id": tool_use_id(tool), "name": tool.name,
                       "input": tool.arguments_object()})
            })
            .collect();
        json!(blocks)
    };
    json!({
        "id": ids.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason(answer),
        "stop_sequence": null,
        "usage": anthropic_usage(answer, answer.output_tokens),
    })
}

fn messages_stream(call: &Call, answer: &Answer, ids: &Ids) -> Rendered {
    let mut events = vec![sse_event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": ids.id("msg_"), "type": "message", "role": "assistant", "model": call.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": anthropic_usage(answer, 1),
        }}),
    )];
    // One content block per tool call (or one text block): its start, deltas and stop; a ping after the first
    // start, as Anthropic sends.
    let blocks: Vec<(Value, Vec<Value>)> = if answer.tool_calls.is_empty() {
        let deltas =
            answer.text_pieces().into_iter().map(|piece| json!({"type": "text_delta", "text": piece})).collect();
        vec![(json!({"type": "text", "text": ""}), deltas)]
    } else {
        answer
            .tool_calls
            .iter()
            .map(|tool| {
                let block = json!({"type": "tool_use", "id": tool_use_id(tool), "name": tool.name, "input": {}});
                let deltas = input_pieces(tool)
                    .into_iter()
                    .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                    .collect();
                (block, deltas)
            })
            .collect()
    };
    for (index, (block, deltas)) in blocks.into_iter().enumerate() {
        events.push(sse_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        if index == 0 {
            events.push(sse_event("ping", &json!({"type": "ping"})));
        }
        for delta in deltas {
            events.push(sse_event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        events.push(sse_event("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
    }
    events.push(sse_event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(answer), "stop_sequence": null},
                "usage": {"output_tokens": answer.output_tokens}}),
    ));
    events.push(sse_event("message_stop", &json!({"type": "message_stop"})));
    Rendered::Stream { content_type: "text/event-stream; charset=utf-8", events }
}

// ---- Gemini ----

fn gemini_usage(answer: &Answer, output_tokens: Option<u64>) -> Value {
    let mut usage = json!({
        "promptTokenCount": answer.input_tokens,
        "totalTokenCount": answer.input_tokens + output_tokens.unwrap_or(0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.input_tokens}],
    });
    if let Some(output_tokens) = output_tokens {
        usage["candidatesTokenCount"] = json!(output_tokens);
    }
    if answer.cached_tokens > 0 {
        usage["cachedContentTokenCount"] = json!(answer.cached_tokens);
    }
    usage
}

fn gemini_chunk(call: &Call, answer: &Answer, ids: &Ids, parts: Value, last: bool) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if last {
        candidate["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": gemini_usage(answer, last.then_some(answer.output_tokens)),
        "modelVersion": call.model,
        "responseId": ids.id("resp-"),
    })
}

/// A text part, or a `functionCall` part per tool call: `{id, name, args}`, without an id for the built-in call.
fn gemini_parts(answer: &Answer, text: &str) -> Value {
    if answer.tool_calls.is_empty() {
        return json!([{"text": text}]);
    }
    let parts: Vec<Value> = answer
        .tool_calls
        .iter()
        .map(|tool| {
            let mut function = json!({"name": tool.name, "args": tool.arguments_object()});
            if !tool.is_builtin() {
                function["id"] = json!(tool.id);
            }
            json!({"functionCall": function})
        })
        .collect();
    json!(parts)
}

fn gemini(call: &Call, answer: &Answer, ids: &Ids) -> Value {
    gemini_chunk(call, answer, ids, gemini_parts(answer, &answer.text), true)
}

/// `alt=sse`: each chunk a `data:` event (Google ends events with CRLF CRLF). Without it: one JSON array whose
/// elements arrive one by one. Tool calls come whole, all of them in one chunk, as Gemini sends them.
fn gemini_stream(call: &Call, answer: &Answer, ids: &Ids, sse: bool) -> Rendered {
    let chunks: Vec<Value> = match answer.tool() {
        Some(_) => vec![gemini_chunk(call, answer, ids, gemini_parts(answer, ""), true)],
        None => {
            let pieces = answer.text_pieces();
            let n = pieces.len();
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, piece)| gemini_chunk(call, answer, ids, json!([{"text": piece}]), i + 1 == n))
                .collect()
        }
    };
    if sse {
        let events = chunks.iter().map(|chunk| format!("data: {chunk}\r\n\r\n")).collect();
        return Rendered::Stream { content_type: "text/event-stream", events };
    }
    let n = chunks.len();
    let events = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let open = if i == 0 { "[" } else { "" };
            let close = if i + 1 == n { "]" } else { ",\r\n" };
            format!("{open}{chunk}{close}")
        })
        .collect();
    Rendered::Stream { content_type: "application/json; charset=UTF-8", events }
}

// ---- Cohere v2 chat ----

fn cohere_usage(answer: &Answer) -> Value {
    json!({
        "billed_units": {"input_tokens": answer.input_tokens - answer.cached_tokens,
                         "output_tokens": answer.output_tokens},
        "tokens": {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
        "cached_tokens": answer.cached_tokens,
    })
}

fn cohere_finish(answer: &Answer) -> &'static str {
    if answer.tool().is_some() {
        "TOOL_CALL"
    } else {
        "COMPLETE"
    }
}

fn cohere(answer: &Answer, ids: &Ids) -> Value {
    let message = match answer.tool() {
        Some(ToolCall { id, name, arguments }) => json!({
            "role": "assistant",
            "tool_calls": [{"id": id, "type": "function",
                            "function": {"name": name, "arguments": arguments}}],
        }),
        None => json!({"role": "assistant", "content": [{"type": "text", "text": answer.text}]}),
    };
    json!({
        "id": ids.id("cohere-"),
        "message": message,
        "finish_reason": cohere_finish(answer),
        "usage": cohere_usage(answer),
    })
}

fn cohere_stream(answer: &Answer, ids: &Ids) -> Rendered {
    let mut events = vec![json!({"id": ids.id("cohere-"), "type": "message-start", "delta": {"message": {
        "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}})];
    match answer.tool() {
        Some(tool) => {
            events.push(json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
                "id": tool.id, "type": "function", "function": {"name": tool.name, "arguments": ""}}}}}));
            for piece in tool.argument_pieces() {
                events.push(json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {
                    "function": {"arguments": piece}}}}}));
            }
            events.push(json!({"type": "tool-call-end", "index": 0}));
        }
        None => {
            events.push(json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {
                "type": "text", "text": ""}}}}));
            for piece in answer.text_pieces() {
                events.push(json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {
                    "text": piece}}}}));
            }
            events.push(json!({"type": "content-end", "index": 0}));
        }
    }
    events.push(json!({"type": "message-end", "delta": {
        "finish_reason": cohere_finish(answer), "usage": cohere_usage(answer)}}));
    let events = events.iter().map(|event| sse_event(event["type"].as_str().unwrap_or_default(), event)).collect();
    Rendered::Stream { content_type: "text/event-stream", events }
}

// ---- Errors ----

/// The provider's authentication error: (status, body).
pub fn unauthorized(provider: Provider, ids: &Ids) -> Value {
    match provider {
        Provider::Anthropic => json!({
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            "request_id": ids.id("req_"),
        }),
        Provider::Gemini => json!({"error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            "status": "UNAUTHENTICATED",
        }}),
        Provider::Cohere => json!({"id": ids.id("cohere-"), "message": "invalid api token"}),
        Provider::OpenAi => openai_error(
            "Incorrect API key provided: sk-fixt*****. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        _ => openai_error("Invalid API Key", "invalid_request_error", json!("invalid_api_key")),
    }
}

pub fn openai_error(message: &str, kind: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_calls() -> Answer {
        let calls = vec![
            ToolCall { id: "call_2_0".into(), name: "Bash".into(), arguments: r#"{"command":"cd /w && ls"}"#.into() },
            ToolCall { id: "call_2_1".into(), name: "Read".into(), arguments: r#"{"file_path":"/w/a"}"#.into() },
        ];
        Answer::calling(calls, 5, 0)
    }

    fn stream_events(rendered: Rendered) -> Vec<Value> {
        let Rendered::Stream { events, .. } = rendered else { panic!("not a stream") };
        events
            .iter()
            .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    #[test]
    fn anthropic_renders_every_scripted_call() {
        let call = Call { model: "script:x".into(), ..Call::default() };
        let answer = two_calls();
        let Rendered::Json(body) = render(Provider::Anthropic, Api::Messages, &call, &answer, &Ids { n: 1 }) else {
            panic!("not JSON")
        };
        assert_eq!(
            body["content"],
            json!([{"type": "tool_use", "id": "call_2_0", "name": "Bash", "input": {"command": "cd /w && ls"}},
                   {"type": "tool_use", "id": "call_2_1", "name": "Read", "input": {"file_path": "/w/a"}}])
        );
        assert_eq!(body["stop_reason"], "tool_use");

        let call = Call { stream: true, ..call };
        let events = stream_events(render(Provider::Anthropic, Api::Messages, &call, &answer, &Ids { n: 2 }));
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[6]["index"], 1);
        assert_eq!(events[6]["content_block"]["id"], "call_2_1");
        assert_eq!(events[6]["content_block"]["name"], "Read");
        // Each block's deltas join to its arguments.
        for (index, tool) in answer.tool_calls.iter().enumerate() {
            let json: String = events
                .iter()
                .filter(|e| e["type"] == "content_block_delta" && e["index"] == index)
                .map(|e| e["delta"]["partial_json"].as_str().unwrap())
                .collect();
            assert_eq!(json, tool.arguments);
        }
    }

    #[test]
    fn gemini_renders_every_scripted_call_with_its_id() {
        let call = Call { model: "script:x".into(), ..Call::default() };
        let answer = two_calls();
        let api = Api::Gemini { stream: false, sse: false };
        let Rendered::Json(body) = render(Provider::Gemini, api, &call, &answer, &Ids { n: 1 }) else {
            panic!("not JSON")
        };
        let parts = json!([{"functionCall": {"id": "call_2_0", "name": "Bash", "args": {"command": "cd /w && ls"}}},
                           {"functionCall": {"id": "call_2_1", "name": "Read", "args": {"file_path": "/w/a"}}}]);
        assert_eq!(body["candidates"][0]["content"]["parts"], parts);
        let call = Call { stream: true, ..call };
        let events = stream_events(render(
            Provider::Gemini,
            Api::Gemini { stream: true, sse: true },
            &call,
            &answer,
            &Ids { n: 2 },
        ));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["candidates"][0]["content"]["parts"], parts);
        assert_eq!(events[0]["candidates"][0]["finishReason"], "STOP");
    }

    #[test]
    fn the_builtin_call_keeps_its_ids() {
        let call = Call { model: "m".into(), tool: Some("read_file".into()), ..Call::default() };
        let answer = Answer::new(Provider::Anthropic, &call, 0);
        let Rendered::Json(body) = render(Provider::Anthropic, Api::Messages, &call, &answer, &Ids { n: 1 }) else {
            panic!("not JSON")
        };
        assert_eq!(
            body["content"],
            json!([{"type": "tool_use", "id": "toolu_fixture_1", "name": "read_file", "input": {"path": "/etc/hostname"}}])
        );
        let api = Api::Gemini { stream: false, sse: false };
        let Rendered::Json(body) = render(Provider::Gemini, api, &call, &answer, &Ids { n: 2 }) else {
            panic!("not JSON")
        };
        assert_eq!(
            body["candidates"][0]["content"]["parts"],
            json!([{"functionCall": {"name": "read_file", "args": {"path": "/etc/hostname"}}}])
        );
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
