//! Anthropic messages.

use super::*;

#[test]
fn anthropic_messages_with_tool_use_and_tool_result() {
    let req = request(
        r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"list files"},
        {"role":"assistant","content":[{"type":"tool_use","id":"toolu_0","name":"ls","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_0","content":"a.txt b.txt"}]}]}"#,
    );
    let resp = response(
        "application/json",
        r#"{"id":"msg_1","type":"message","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Reading a.txt"},
        {"type":"tool_use","id":"toolu_1","name":"read","input":{"path":"a.txt"}}],"stop_reason":"tool_use",
        "usage":{"input_tokens":50,"output_tokens":20,"cache_read_input_tokens":10}}"#,
    );
    let call = interpret(Format::AnthropicMessages, &req, &resp);
    assert_eq!(call.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!((call.input_tokens, call.output_tokens, call.cached_tokens), (Some(50), Some(20), Some(10)));
    assert_eq!(call.completion, "Reading a.txt");
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "toolu_1".into(), name: "read".into(), arguments: r#"{"path":"a.txt"}"#.into() }]
    );
    assert_eq!(call.tool_results, [ToolResult { tool_call_id: "toolu_0".into(), content: "a.txt b.txt".into() }]);
    assert_eq!(call.stop_reason.as_deref(), Some("tool_use"));
    // The last user turn holds only a tool result: the instruction stands.
    assert_eq!(call.prompt, "list files");
}

#[test]
fn anthropic_stream_assembles_text_and_tool_input() {
    let req = request(r#"{"model":"claude-haiku-4-5","stream":true,"messages":[{"role":"user","content":"go"}]}"#);
    let body = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"On it\"}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"bash\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\": \\\"make\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" test\\\"}\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":33}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let call = interpret(Format::AnthropicMessages, &req, &response("text/event-stream", body));
    assert_eq!(call.completion, "On it");
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "toolu_9".into(), name: "bash".into(), arguments: r#"{"command": "make test"}"#.into() }]
    );
    assert_eq!(
        (call.input_tokens, call.output_tokens, call.stop_reason.as_deref()),
        (Some(12), Some(33), Some("tool_use"))
    );
}

#[test]
fn web_search_citations() {
    let req = request(r#"{"model":"claude-opus-4-1","messages":[{"role":"user","content":"Latest Rust release?"}]}"#);
    let resp = response(
        "application/json",
        r#"{"model":"claude-opus-4-1-20250805","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"rust release"}},
        {"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},
        {"type":"text","text":"Rust 1.95","citations":[{"type":"web_search_result_location","url":"https://blog.rust-lang.org/","title":"Rust Blog","cited_text":"Rust 1.95"}]}],
        "stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":5}}"#,
    );
    let call = interpret(Format::AnthropicMessages, &req, &resp);
    assert_eq!(
        (call.completion.as_str(), call.citations.as_slice()),
        ("Rust 1.95", &["https://blog.rust-lang.org/".to_string()][..])
    );
    assert!(call.tool_calls.is_empty());
}
