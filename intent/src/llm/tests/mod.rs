//! Exchanges in each provider's wire format, as captured bytes through the
//! HTTP/1.1 parser, to the LLM call they describe.

use super::*;
use crate::http1::{Direction, Http1Stream};

fn message(direction: Direction, head: &str, body: &str) -> Message {
    let wire = format!("{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let mut messages = Http1Stream::new(direction, 1 << 20).feed(wire.as_bytes()).unwrap();
    assert_eq!(messages.len(), 1);
    messages.remove(0)
}

fn request(body: &str) -> Message {
    message(Direction::Requests, "POST /v1/x HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json", body)
}

fn response(content_type: &str, body: &str) -> Message {
    message(Direction::Responses, &format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}"), body)
}

#[test]
fn openai_chat_with_a_tool_call_and_the_result_sent_back() {
    let req = request(
        r#"{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"run the tests"},
        {"role":"assistant","tool_calls":[{"id":"call_0","type":"function","function":{"name":"shell","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"call_0","content":"3 passed"}]}"#,
    );
    let resp = response(
        "application/json",
        r#"{"id":"chatcmpl-1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":null,
        "tool_calls":[{"id":"call_1","type":"function","function":{"name":"shell","arguments":"{\"cmd\":\"pytest -q\"}"}}]},
        "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":120,"completion_tokens":18,"prompt_tokens_details":{"cached_tokens":64}}}"#,
    );
    let call = interpret(Format::OpenAiChat, &req, &resp);
    assert_eq!(call.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!((call.input_tokens, call.output_tokens, call.cached_tokens), (Some(120), Some(18), Some(64)));
    assert_eq!(call.stop_reason.as_deref(), Some("tool_calls"));
    assert_eq!(call.prompt, "run the tests");
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "call_1".into(), name: "shell".into(), arguments: r#"{"cmd":"pytest -q"}"#.into() }]
    );
    assert_eq!(call.tool_results, [ToolResult { tool_call_id: "call_0".into(), content: "3 passed".into() }]);
    assert!(!call.streamed);
}

#[test]
fn openai_stream_assembles_text_tool_arguments_and_usage() {
    let req = request(
        r#"{"model":"llama-3.1-70b","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
    );
    let body = concat!(
        "data: {\"model\":\"llama-3.1-70b\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"read_file\",\"arguments\":\"{\\\"pa\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"th\\\":\\\"a.txt\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\n\n",
        "data: [DONE]\n\n",
    );
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream; charset=utf-8", body));
    assert!(call.streamed);
    assert_eq!(call.prompt, "hi");
    assert_eq!(call.completion, "Hello");
    assert_eq!(call.tool_calls[0].name, "read_file");
    assert_eq!(call.tool_calls[0].arguments, r#"{"path":"a.txt"}"#);
    assert_eq!(
        (call.input_tokens, call.output_tokens, call.stop_reason.as_deref()),
        (Some(9), Some(4), Some("tool_calls"))
    );
}

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
fn errors_are_reported_with_their_status() {
    let req = request(r#"{"model":"gpt-4o","messages":[]}"#);
    let resp = message(
        Direction::Responses,
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json",
        r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
    );
    let call = interpret(Format::OpenAiChat, &req, &resp);
    assert_eq!((call.status, call.error.as_deref()), (429, Some("Rate limit reached")));
    let stream = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let call = interpret(Format::AnthropicMessages, &req, &response("text/event-stream", stream));
    assert_eq!(call.error.as_deref(), Some("Overloaded"));
}
