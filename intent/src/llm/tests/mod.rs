//! Exchanges in each provider's wire format, as captured bytes through the
//! HTTP/1.1 parser, to the LLM call they describe.

mod anthropic;
mod cohere;
mod embeddings;
mod gemini;
mod openai_chat;
mod responses;

use serde_json::json;

use super::*;
use crate::http1::{Direction, Http1Stream};

fn message(direction: Direction, head: &str, body: &str) -> Message {
    let wire = format!("{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let mut messages = Http1Stream::new(direction, 1 << 20).feed(wire.as_bytes()).unwrap();
    assert_eq!(messages.len(), 1);
    messages.remove(0)
}

fn request(body: &str) -> Message {
    request_to("/v1/x", body)
}

fn request_to(target: &str, body: &str) -> Message {
    message(
        Direction::Requests,
        &format!("POST {target} HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json"),
        body,
    )
}

fn response(content_type: &str, body: &str) -> Message {
    response_with(200, content_type, body)
}

fn response_with(status: u16, content_type: &str, body: &str) -> Message {
    message(Direction::Responses, &format!("HTTP/1.1 {status} Status\r\nContent-Type: {content_type}"), body)
}

/// `data:` lines for each JSON chunk, as a server-sent event stream.
fn sse(chunks: &[&str]) -> String {
    chunks.iter().map(|c| format!("data: {c}\n\n")).collect()
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

#[test]
fn a_failed_response_that_is_not_json_still_says_why() {
    let req = request(r#"{"model":"gpt-4o","messages":[]}"#);
    let html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>cloudflare</body>\r\n</html>\r\n";
    let call = interpret(Format::OpenAiChat, &req, &response_with(502, "text/html", html));
    assert_eq!(call.error.as_deref(), Some(html.trim()));
    let call = interpret(Format::OpenAiChat, &req, &response_with(500, "text/plain", &"x".repeat(5000)));
    assert_eq!(call.error.map(|e| e.len()), Some(200));
    // A success with an empty body is no error.
    let call = interpret(Format::OpenAiChat, &req, &response_with(200, "application/json", ""));
    assert_eq!(call.error, None);
}

#[test]
fn a_null_error_is_no_error() {
    let req = request(r#"{"model":"gpt-4.1","input":"hi"}"#);
    let body = r#"{"id":"resp_1","object":"response","status":"completed","error":null,"incomplete_details":null,"model":"gpt-4.1-2025-04-14","output":[]}"#;
    let call = interpret(Format::OpenAiResponses, &req, &response("application/json", body));
    assert_eq!(call.error, None);
}

#[test]
fn streams_are_recognised_by_shape_when_the_content_type_does_not_say() {
    let req = request(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    // No blank line after the last event: the body ended, so it counts.
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}";
    let call = interpret(Format::OpenAiChat, &req, &response("application/octet-stream", body));
    assert_eq!((call.streamed, call.completion.as_str()), (true, "ab"));
    // An event cut mid-way is dropped, not misread.
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"con";
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream", body));
    assert_eq!(call.completion, "a");
}

#[test]
fn a_json_array_cut_short_yields_its_whole_items() {
    assert_eq!(array_items(b"[{\"a\":1}\n,\r\n{\"b\":[2]}\n,\r\n{\"c\":"), [json!({"a": 1}), json!({"b": [2]})]);
    assert_eq!(array_items(b"[ ]"), Vec::<Value>::new());
    assert_eq!(array_items(b"[1, 2, 3"), [json!(1), json!(2), json!(3)]);
    assert_eq!(array_items(b"[{\"a\":1}, {\"b\""), [json!({"a": 1})]);
    assert_eq!(array_items(b"["), Vec::<Value>::new());
}

#[test]
fn arbitrary_bodies_never_panic_in_any_format() {
    let request_body = br#"{"model":"m","input":[{"role":"user","content":"x"}],"messages":[{"role":"tool","tool_call_id":"1","content":[{"type":"text","text":"t"}]}],"contents":[{"parts":[{"functionResponse":{"name":"f","response":{}}}]}]}"#;
    let response_bodies: [&[u8]; 3] = [
        b"data: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"function_call\",\"call_id\":\"c\"}}\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":3}]}}]}\n\n",
        br#"[{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]}}],"usageMetadata":{"thoughtsTokenCount":18446744073709551615,"candidatesTokenCount":1}}]"#,
        b"{\"event_type\":\"tool-calls-generation\",\"tool_calls\":[{\"name\":\"f\"}]}\n{\"event_type\":\"stream-end\",\"response\":{\"text\":\"\"}}\n",
    ];
    for format in Format::ALL {
        for body in response_bodies {
            for (req, resp) in crate::mangled(request_body, 0, 300).iter().zip(crate::mangled(body, 0, 300)) {
                let mut request = request("{}");
                request.body = req.clone();
                let mut response = response("text/plain", "");
                response.body = resp;
                let _ = interpret(format, &request, &response);
            }
        }
    }
}
