//! Google Gemini.

use super::*;

const REQUEST: &str = r#"{"systemInstruction":{"parts":[{"text":"You are a coding agent."}]},
    "contents":[
      {"role":"user","parts":[{"text":"What is the weather in Boston?"}]},
      {"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Boston"}}}]},
      {"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"temperature":"12C"}}}]}],
    "tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"OBJECT"}}]}],
    "generationConfig":{"thinkingConfig":{"includeThoughts":true}}}"#;

#[test]
fn generate_content_with_thoughts_a_function_call_and_usage() {
    let req = request_to("/v1beta/models/gemini-2.5-flash:generateContent", REQUEST);
    let body = r#"{"candidates":[{"content":{"parts":[
          {"text":"The user wants a forecast too.","thought":true},
          {"text":"It is 12C in Boston. "},
          {"functionCall":{"name":"get_forecast","args":{"city":"Boston","days":2}},"thoughtSignature":"CiQB"}],
        "role":"model"},"finishReason":"STOP","index":0}],
      "usageMetadata":{"promptTokenCount":120,"candidatesTokenCount":25,"totalTokenCount":171,"cachedContentTokenCount":64,"thoughtsTokenCount":26,
        "promptTokensDetails":[{"modality":"TEXT","tokenCount":120}]},
      "modelVersion":"gemini-2.5-flash","responseId":"mAitaLmkHPPlz7IPvtfUqQ4"}"#;
    let call = interpret(Format::Gemini, &req, &response("application/json; charset=UTF-8", body));
    assert_eq!(
        (call.operation, call.model.as_deref(), call.streamed),
        ("generate_content", Some("gemini-2.5-flash"), false)
    );
    // The turn holding only the function's answer is not the prompt.
    assert_eq!(call.prompt, "What is the weather in Boston?");
    assert_eq!(
        call.tool_results,
        [ToolResult { tool_call_id: "get_weather".into(), content: r#"{"temperature":"12C"}"#.into() }]
    );
    assert_eq!(call.completion, "It is 12C in Boston. ");
    assert_eq!(
        call.tool_calls,
        [ToolCall {
            id: "get_forecast".into(),
            name: "get_forecast".into(),
            arguments: r#"{"city":"Boston","days":2}"#.into()
        }]
    );
    assert_eq!((call.input_tokens, call.output_tokens, call.cached_tokens), (Some(120), Some(51), Some(64)));
    assert_eq!(call.stop_reason.as_deref(), Some("STOP"));
}

#[test]
fn the_model_comes_from_the_url_until_the_answer_names_its_version() {
    let req = request_to(
        "/v1beta/models/gemini-2.0-flash-001:generateContent?key=AIzaSecret",
        r#"{"contents":[{"parts":[{"text":"hi"}]}]}"#,
    );
    let call = interpret(Format::Gemini, &req, &response("application/json", r#"{"candidates":[]}"#));
    assert_eq!((call.model.as_deref(), call.prompt.as_str()), (Some("gemini-2.0-flash-001"), "hi"));
    let req = request_to("/v1beta/models/gemini-flash-latest:generateContent", r#"{"contents":[]}"#);
    let call = interpret(
        Format::Gemini,
        &req,
        &response("application/json", r#"{"modelVersion":"gemini-2.5-flash-preview-09-2025"}"#),
    );
    assert_eq!(call.model.as_deref(), Some("gemini-2.5-flash-preview-09-2025"));
}

/// Three chunks of one answer: text in two pieces, then a call, the usage
/// growing, the finish reason last.
const CHUNKS: [&str; 3] = [
    r#"{"candidates":[{"content":{"parts":[{"text":"Let me"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":30,"totalTokenCount":30},"modelVersion":"gemini-2.5-pro","responseId":"r1"}"#,
    r#"{"candidates":[{"content":{"parts":[{"text":" check."}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":4,"totalTokenCount":34},"modelVersion":"gemini-2.5-pro","responseId":"r1"}"#,
    r#"{"candidates":[{"content":{"parts":[{"functionCall":{"id":"fc-1","name":"ls","args":{"path":"."}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":12,"totalTokenCount":42},"modelVersion":"gemini-2.5-pro","responseId":"r1"}"#,
];

fn assert_streamed(call: &LlmCall) {
    assert!(call.streamed);
    assert_eq!((call.model.as_deref(), call.completion.as_str()), (Some("gemini-2.5-pro"), "Let me check."));
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "fc-1".into(), name: "ls".into(), arguments: r#"{"path":"."}"#.into() }]
    );
    assert_eq!(
        (call.input_tokens, call.output_tokens, call.stop_reason.as_deref()),
        (Some(30), Some(12), Some("STOP"))
    );
}

#[test]
fn stream_generate_content_as_server_sent_events() {
    let req = request_to("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", REQUEST);
    // Google ends each event with CRLF CRLF.
    let body: String = CHUNKS.iter().map(|c| format!("data: {c}\r\n\r\n")).collect();
    assert_streamed(&interpret(Format::Gemini, &req, &response("text/event-stream", &body)));
}

#[test]
fn stream_generate_content_as_a_growing_json_array() {
    let req = request_to("/v1beta/models/gemini-2.5-pro:streamGenerateContent", REQUEST);
    let body = format!("[{}\n]", CHUNKS.join("\n,\r\n"));
    assert_streamed(&interpret(Format::Gemini, &req, &response("application/json; charset=UTF-8", &body)));
    // Cut in the middle of the third item: the first two stand.
    let cut = &body[..body.len() - 60];
    let call = interpret(Format::Gemini, &req, &response("application/json; charset=UTF-8", cut));
    assert_eq!((call.streamed, call.completion.as_str(), call.output_tokens), (true, "Let me check.", Some(4)));
}

#[test]
fn a_blocked_prompt_and_an_error() {
    let req = request_to("/v1beta/models/gemini-2.5-flash:generateContent", REQUEST);
    let body = r#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash"}"#;
    let call = interpret(Format::Gemini, &req, &response("application/json", body));
    assert_eq!((call.stop_reason.as_deref(), call.input_tokens, call.output_tokens), (Some("SAFETY"), Some(8), None));
    let body = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#;
    let call = interpret(Format::Gemini, &req, &response_with(400, "application/json", body));
    assert_eq!(call.error.as_deref(), Some("API key not valid. Please pass a valid API key."));
    // An error inside a streamed array.
    let req = request_to("/v1beta/models/gemini-2.5-flash:streamGenerateContent", REQUEST);
    let body = r#"[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]"#;
    let call = interpret(Format::Gemini, &req, &response_with(429, "application/json", body));
    assert_eq!(call.error.as_deref(), Some("Resource has been exhausted"));
}

#[test]
fn embed_content_has_a_prompt() {
    let req = request_to(
        "/v1beta/models/gemini-embedding-001:embedContent",
        r#"{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"What is the meaning of life?"}]}}"#,
    );
    let call = interpret(Format::Gemini, &req, &response("application/json", r#"{"embedding":{"values":[0.1,0.2]}}"#));
    assert_eq!(call.operation, "embed_content");
    assert_eq!(
        (call.model.as_deref(), call.prompt.as_str()),
        (Some("gemini-embedding-001"), "What is the meaning of life?")
    );
    let req = request_to(
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        r#"{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}},{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]}}]}"#,
    );
    let call = interpret(Format::Gemini, &req, &response("application/json", r#"{"embeddings":[]}"#));
    assert_eq!(call.prompt, "a\nb");
}
