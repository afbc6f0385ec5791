//! The OpenAI Responses API.

use super::*;

#[test]
fn a_function_call_answered_whole_and_its_output_sent_back() {
    let req = request_to(
        "/v1/responses",
        r#"{"model":"gpt-4.1","instructions":"You are a coding agent.","input":[
        {"role":"user","content":[{"type":"input_text","text":"run the tests"}]},
        {"type":"function_call","id":"fc_67","call_id":"call_0","name":"shell","arguments":"{\"cmd\":\"make test\"}","status":"completed"},
        {"type":"function_call_output","call_id":"call_0","output":"3 passed"}],
        "tools":[{"type":"function","name":"shell","parameters":{"type":"object"}}]}"#,
    );
    let body = r#"{"id":"resp_68","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,
        "instructions":"You are a coding agent.","model":"gpt-4.1-2025-04-14",
        "output":[{"type":"reasoning","id":"rs_1","summary":[]},
          {"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Tests pass; committing.","annotations":[]}]},
          {"type":"function_call","id":"fc_68","call_id":"call_1","name":"shell","arguments":"{\"cmd\":\"git commit -am fix\"}","status":"completed"}],
        "parallel_tool_calls":true,"store":true,"tools":[],
        "usage":{"input_tokens":328,"input_tokens_details":{"cached_tokens":256},"output_tokens":52,"output_tokens_details":{"reasoning_tokens":32},"total_tokens":380}}"#;
    let call = interpret(Format::OpenAiResponses, &req, &response("application/json", body));
    assert_eq!((call.operation, call.model.as_deref()), ("responses", Some("gpt-4.1-2025-04-14")));
    assert_eq!(call.prompt, "run the tests");
    assert_eq!(call.tool_results, [ToolResult { tool_call_id: "call_0".into(), content: "3 passed".into() }]);
    assert_eq!(call.completion, "Tests pass; committing.");
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "call_1".into(), name: "shell".into(), arguments: r#"{"cmd":"git commit -am fix"}"#.into() }]
    );
    assert_eq!((call.input_tokens, call.output_tokens, call.cached_tokens), (Some(328), Some(52), Some(256)));
    assert_eq!((call.stop_reason.as_deref(), call.error.as_deref()), (Some("completed"), None));
}

/// The events of a streamed answer with text, a URL citation and a function
/// call, as the API sends them.
fn streamed_events() -> Vec<String> {
    [
        r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_9","object":"response","created_at":1741290958,"status":"in_progress","error":null,"model":"gpt-4o-2024-08-06","output":[],"usage":null}}"#,
        r#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_9","object":"response","status":"in_progress","model":"gpt-4o-2024-08-06","output":[]}}"#,
        r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_9","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
        r#"{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_9","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#,
        r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_9","output_index":0,"content_index":0,"delta":"Checking "}"#,
        r#"{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_9","output_index":0,"content_index":0,"delta":"the docs."}"#,
        r#"{"type":"response.output_text.annotation.added","sequence_number":6,"item_id":"msg_9","output_index":0,"content_index":0,"annotation_index":0,"annotation":{"type":"url_citation","url":"https://docs.rs/httparse","title":"httparse","start_index":0,"end_index":8}}"#,
        r#"{"type":"response.output_text.done","sequence_number":7,"item_id":"msg_9","output_index":0,"content_index":0,"text":"Checking the docs."}"#,
        r#"{"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"msg_9","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Checking the docs.","annotations":[]}]}}"#,
        r#"{"type":"response.output_item.added","sequence_number":9,"output_index":1,"item":{"type":"function_call","id":"fc_9","call_id":"call_9","name":"fetch","arguments":"","status":"in_progress"}}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":10,"item_id":"fc_9","output_index":1,"delta":"{\"url\":"}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":11,"item_id":"fc_9","output_index":1,"delta":"\"https://docs.rs\"}"}"#,
        r#"{"type":"response.function_call_arguments.done","sequence_number":12,"item_id":"fc_9","output_index":1,"arguments":"{\"url\":\"https://docs.rs\"}"}"#,
        r#"{"type":"response.output_item.done","sequence_number":13,"output_index":1,"item":{"type":"function_call","id":"fc_9","call_id":"call_9","name":"fetch","arguments":"{\"url\":\"https://docs.rs\"}","status":"completed"}}"#,
        r#"{"type":"response.completed","sequence_number":14,"response":{"id":"resp_9","object":"response","status":"completed","error":null,"incomplete_details":null,"model":"gpt-4o-2024-08-06",
          "output":[{"id":"msg_9","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Checking the docs.","annotations":[{"type":"url_citation","url":"https://docs.rs/httparse","title":"httparse","start_index":0,"end_index":8}]}]},
            {"type":"function_call","id":"fc_9","call_id":"call_9","name":"fetch","arguments":"{\"url\":\"https://docs.rs\"}","status":"completed"}],
          "usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}}"#,
    ]
    .iter()
    .map(|data| {
        let kind = serde_json::from_str::<Value>(data).unwrap()["type"].as_str().unwrap().to_string();
        // One line of JSON per event, as the API sends it.
        format!("event: {kind}\ndata: {}\n\n", data.replace('\n', ""))
    })
    .collect()
}

#[test]
fn a_stream_assembles_text_citations_and_calls() {
    let req = request_to("/v1/responses", r#"{"model":"gpt-4o","stream":true,"input":"Which crate parses HTTP/1?"}"#);
    let body = streamed_events().concat();
    let call = interpret(Format::OpenAiResponses, &req, &response("text/event-stream; charset=utf-8", &body));
    assert!(call.streamed);
    assert_eq!(call.prompt, "Which crate parses HTTP/1?");
    assert_eq!(call.completion, "Checking the docs.");
    assert_eq!(call.citations, ["https://docs.rs/httparse"]);
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "call_9".into(), name: "fetch".into(), arguments: r#"{"url":"https://docs.rs"}"#.into() }]
    );
    assert_eq!(
        (call.input_tokens, call.output_tokens, call.stop_reason.as_deref()),
        (Some(37), Some(11), Some("completed"))
    );
}

#[test]
fn a_stream_cut_before_its_end_keeps_what_came() {
    let req = request_to("/v1/responses", r#"{"model":"gpt-4o","stream":true,"input":"go"}"#);
    let events = streamed_events();
    let body = events[..12].concat();
    let call = interpret(Format::OpenAiResponses, &req, &response("text/event-stream", &body));
    assert_eq!(call.completion, "Checking the docs.");
    assert_eq!(call.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "call_9".into(), name: "fetch".into(), arguments: r#"{"url":"https://docs.rs"}"#.into() }]
    );
    assert_eq!((call.input_tokens, call.stop_reason), (None, None));
}

#[test]
fn failed_and_incomplete_responses() {
    let req = request_to("/v1/responses", r#"{"model":"o3","stream":true,"input":"go"}"#);
    let body = sse(&[
        r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_f","status":"in_progress","model":"o3-2025-04-16","output":[]}}"#,
        r#"{"type":"response.failed","sequence_number":1,"response":{"id":"resp_f","status":"failed","model":"o3-2025-04-16","output":[],"error":{"code":"server_error","message":"The model failed to generate a response."}}}"#,
    ]);
    let call = interpret(Format::OpenAiResponses, &req, &response("text/event-stream", &body));
    assert_eq!(call.error.as_deref(), Some("The model failed to generate a response."));
    assert_eq!(call.stop_reason.as_deref(), Some("failed"));

    let body = sse(&[
        r#"{"type":"error","sequence_number":1,"code":"rate_limit_exceeded","message":"Slow down.","param":null}"#,
    ]);
    let call = interpret(Format::OpenAiResponses, &req, &response("text/event-stream", &body));
    assert_eq!(call.error.as_deref(), Some("Slow down."));

    let body = r#"{"id":"resp_i","object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"error":null,"model":"o3-2025-04-16",
        "output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Partial","annotations":[]}]}],"usage":{"input_tokens":5,"output_tokens":16}}"#;
    let call = interpret(Format::OpenAiResponses, &req, &response("application/json", body));
    assert_eq!((call.stop_reason.as_deref(), call.completion.as_str()), (Some("max_output_tokens"), "Partial"));
}
