//! Cohere chat, v2 and v1.

use super::*;

const V2_REQUEST: &str = r#"{"model":"command-a-03-2025","messages":[
    {"role":"system","content":"You are a helpful assistant."},
    {"role":"user","content":"What's the weather in Madrid?"},
    {"role":"assistant","tool_plan":"I will look up the weather.","tool_calls":[{"id":"get_weather_1byjy32y4hvq","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Madrid\"}"}}]},
    {"role":"tool","tool_call_id":"get_weather_1byjy32y4hvq","content":[{"type":"document","document":{"data":"{\"temperature\": \"24C\"}"}}]}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}"#;

#[test]
fn v2_chat_with_a_tool_result_sent_back_and_a_new_call() {
    let req = request_to("/v2/chat", V2_REQUEST);
    let body = r#"{"id":"c14c80c3","message":{"role":"assistant","tool_plan":"I will check the forecast too.",
        "tool_calls":[{"id":"get_forecast_zqjz6hmr5h0c","type":"function","function":{"name":"get_forecast","arguments":"{\"location\":\"Madrid\",\"days\":3}"}}]},
        "finish_reason":"TOOL_CALL","usage":{"billed_units":{"input_tokens":37,"output_tokens":28},"tokens":{"input_tokens":1021,"output_tokens":60},"cached_tokens":512}}"#;
    let call = interpret(Format::CohereChat, &req, &response("application/json", body));
    assert_eq!((call.operation, call.model.as_deref()), ("chat", Some("command-a-03-2025")));
    assert_eq!(call.prompt, "What's the weather in Madrid?");
    assert_eq!(
        call.tool_results,
        [ToolResult { tool_call_id: "get_weather_1byjy32y4hvq".into(), content: r#"{"temperature": "24C"}"#.into() }]
    );
    assert_eq!(
        call.tool_calls,
        [ToolCall {
            id: "get_forecast_zqjz6hmr5h0c".into(),
            name: "get_forecast".into(),
            arguments: r#"{"location":"Madrid","days":3}"#.into()
        }]
    );
    assert_eq!((call.input_tokens, call.output_tokens, call.cached_tokens), (Some(1021), Some(60), Some(512)));
    assert_eq!(call.stop_reason.as_deref(), Some("TOOL_CALL"));
}

#[test]
fn v2_chat_text_answer_with_billed_units_only() {
    let req = request_to(
        "/v2/chat",
        r#"{"model":"command-r-plus-08-2024","messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}]}"#,
    );
    let body = r#"{"id":"5a50480a","message":{"role":"assistant","content":[{"type":"text","text":"Hello! How can I help?"}]},"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":1,"output_tokens":7}}}"#;
    let call = interpret(Format::CohereChat, &req, &response("application/json", body));
    assert_eq!((call.prompt.as_str(), call.completion.as_str()), ("Hello", "Hello! How can I help?"));
    assert_eq!(
        (call.input_tokens, call.output_tokens, call.stop_reason.as_deref()),
        (Some(1), Some(7), Some("COMPLETE"))
    );
}

#[test]
fn v2_stream_with_a_tool_plan_and_a_call_in_pieces() {
    let req = request_to(
        "/v2/chat",
        r#"{"model":"command-a-03-2025","stream":true,"messages":[{"role":"user","content":"Weather in Madrid and Brasilia?"}]}"#,
    );
    let events = [
        (
            "message-start",
            r#"{"id":"fba98ad3","type":"message-start","delta":{"message":{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}"#,
        ),
        ("tool-plan-delta", r#"{"type":"tool-plan-delta","delta":{"message":{"tool_plan":"I will"}}}"#),
        (
            "tool-call-start",
            r#"{"type":"tool-call-start","index":0,"delta":{"message":{"tool_calls":{"id":"get_weather_nsz5zm3w56q3","type":"function","function":{"name":"get_weather","arguments":""}}}}}"#,
        ),
        (
            "tool-call-delta",
            r#"{"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"{\n    \"location\""}}}}}"#,
        ),
        (
            "tool-call-delta",
            r#"{"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":": \"Madrid\"\n}"}}}}}"#,
        ),
        ("tool-call-end", r#"{"type":"tool-call-end","index":0}"#),
        (
            "message-end",
            r#"{"type":"message-end","delta":{"finish_reason":"TOOL_CALL","usage":{"billed_units":{"input_tokens":37,"output_tokens":75},"tokens":{"input_tokens":1001,"output_tokens":138}}}}"#,
        ),
    ];
    let body: String = events.iter().map(|(kind, data)| format!("event: {kind}\ndata: {data}\n\n")).collect();
    let call = interpret(Format::CohereChat, &req, &response("text/event-stream", &body));
    assert!(call.streamed);
    assert_eq!(
        call.tool_calls,
        [ToolCall {
            id: "get_weather_nsz5zm3w56q3".into(),
            name: "get_weather".into(),
            arguments: "{\n    \"location\": \"Madrid\"\n}".into()
        }]
    );
    assert_eq!(
        (call.input_tokens, call.output_tokens, call.stop_reason.as_deref()),
        (Some(1001), Some(138), Some("TOOL_CALL"))
    );

    let body = sse(&[
        r#"{"id":"29f14a5a","type":"message-start","delta":{"message":{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}"#,
        r#"{"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}"#,
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"It is sunny"}}}}"#,
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":" in Madrid."}}}}"#,
        r#"{"type":"content-end","index":0}"#,
        r#"{"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":50,"output_tokens":6},"tokens":{"input_tokens":1100,"output_tokens":8}}}}"#,
    ]);
    let call = interpret(Format::CohereChat, &req, &response("text/event-stream", &body));
    assert_eq!((call.completion.as_str(), call.stop_reason.as_deref()), ("It is sunny in Madrid.", Some("COMPLETE")));
}

#[test]
fn v2_errors_are_a_message() {
    let req = request_to("/v2/chat", r#"{"model":"command-a-03-2025","messages":[]}"#);
    let body = r#"{"id":"6f5f0c9b","message":"invalid request: messages must not be empty"}"#;
    let call = interpret(Format::CohereChat, &req, &response_with(400, "application/json", body));
    assert_eq!(call.error.as_deref(), Some("invalid request: messages must not be empty"));
}

#[test]
fn v1_chat_whole_and_streamed_as_json_lines() {
    let req = request_to(
        "/v1/chat",
        r#"{"model":"command-r","message":"","chat_history":[{"role":"USER","message":"Sales in September?"},{"role":"CHATBOT","message":"","tool_calls":[{"name":"query_daily_sales_report","parameters":{"day":"2023-09-29"}}]}],
        "tool_results":[{"call":{"name":"query_daily_sales_report","parameters":{"day":"2023-09-29"}},"outputs":[{"total_sales_amount":10000}]}]}"#,
    );
    let body = r#"{"response_id":"d0b1","text":"Total sales were 10,000.","generation_id":"77a6","chat_history":[],"finish_reason":"COMPLETE",
        "meta":{"api_version":{"version":"1"},"billed_units":{"input_tokens":58,"output_tokens":7},"tokens":{"input_tokens":970,"output_tokens":7}}}"#;
    let call = interpret(Format::CohereChatV1, &req, &response("application/json", body));
    assert_eq!(call.prompt, "Sales in September?");
    assert_eq!(
        call.tool_results,
        [ToolResult {
            tool_call_id: "query_daily_sales_report".into(),
            content: r#"[{"total_sales_amount":10000}]"#.into()
        }]
    );
    assert_eq!(
        (call.completion.as_str(), call.input_tokens, call.output_tokens),
        ("Total sales were 10,000.", Some(970), Some(7))
    );

    let req = request_to("/v1/chat", r#"{"model":"command-r","message":"Tell me a joke","stream":true}"#);
    let body = concat!(
        "{\"is_finished\":false,\"event_type\":\"stream-start\",\"generation_id\":\"2b8\"}\n",
        "{\"is_finished\":false,\"event_type\":\"text-generation\",\"text\":\"Why\"}\n",
        "{\"is_finished\":false,\"event_type\":\"text-generation\",\"text\":\" not?\"}\n",
        "{\"is_finished\":true,\"event_type\":\"stream-end\",\"response\":{\"response_id\":\"a1\",\"text\":\"Why not?\",\"generation_id\":\"2b8\",\"finish_reason\":\"COMPLETE\",\"meta\":{\"billed_units\":{\"input_tokens\":4,\"output_tokens\":3}}},\"finish_reason\":\"COMPLETE\"}\n",
    );
    let call = interpret(Format::CohereChatV1, &req, &response("application/stream+json", body));
    assert!(call.streamed);
    assert_eq!((call.prompt.as_str(), call.completion.as_str()), ("Tell me a joke", "Why not?"));
    assert_eq!(
        (call.input_tokens, call.output_tokens, call.stop_reason.as_deref()),
        (Some(4), Some(3), Some("COMPLETE"))
    );

    // Cut before stream-end: the pieces, and a tool call by name.
    let body = concat!(
        "{\"is_finished\":false,\"event_type\":\"stream-start\",\"generation_id\":\"2b8\"}\n",
        "{\"is_finished\":false,\"event_type\":\"tool-calls-generation\",\"text\":\"I will search.\",\"tool_calls\":[{\"name\":\"search\",\"parameters\":{\"q\":\"jokes\"}}]}\n",
    );
    let call = interpret(Format::CohereChatV1, &req, &response("application/stream+json", body));
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "search".into(), name: "search".into(), arguments: r#"{"q":"jokes"}"#.into() }]
    );
}
