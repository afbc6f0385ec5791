//! The OpenAI chat format and the providers that copy it.

use super::*;

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
fn groq_reports_stream_usage_in_x_groq() {
    let req =
        request(r#"{"model":"llama-3.3-70b-versatile","stream":true,"messages":[{"role":"user","content":"hello"}]}"#);
    let body = sse(&[
        r#"{"id":"chatcmpl-7d","object":"chat.completion.chunk","created":1730000000,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_c5","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"x_groq":{"id":"req_01j"}}"#,
        r#"{"id":"chatcmpl-7d","object":"chat.completion.chunk","created":1730000000,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_c5","choices":[{"index":0,"delta":{"content":"Hi there"},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-7d","object":"chat.completion.chunk","created":1730000000,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_c5","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_01j","usage":{"queue_time":0.017,"prompt_tokens":36,"prompt_time":0.002,"completion_tokens":3,"completion_time":0.01,"total_tokens":39,"total_time":0.012}}}"#,
        "[DONE]",
    ]);
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream", &body));
    assert_eq!((call.completion.as_str(), call.stop_reason.as_deref()), ("Hi there", Some("stop")));
    assert_eq!((call.input_tokens, call.output_tokens), (Some(36), Some(3)));
}

#[test]
fn perplexity_citations_answered_whole_and_streamed() {
    let req = request(
        r#"{"model":"sonar-pro","messages":[{"role":"system","content":"Be precise."},{"role":"user","content":"Who maintains httparse?"}]}"#,
    );
    let body = r#"{"id":"3c5e","model":"sonar-pro","created":1730000000,"usage":{"prompt_tokens":9,"completion_tokens":41,"total_tokens":50,"citation_tokens":812,"num_search_queries":1,"search_context_size":"low"},
        "citations":["https://github.com/seanmonstar/httparse","https://docs.rs/httparse"],
        "search_results":[{"title":"httparse","url":"https://github.com/seanmonstar/httparse","date":"2024-11-02"},{"title":"httparse - Rust","url":"https://docs.rs/httparse","date":null}],
        "object":"chat.completion","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Sean McArthur maintains it [1][2]."},"delta":{"role":"assistant","content":""}}]}"#;
    let call = interpret(Format::OpenAiChat, &req, &response("application/json", body));
    assert_eq!(call.citations, ["https://github.com/seanmonstar/httparse", "https://docs.rs/httparse"]);
    assert_eq!(
        (call.prompt.as_str(), call.completion.as_str()),
        ("Who maintains httparse?", "Sean McArthur maintains it [1][2].")
    );
    assert_eq!((call.input_tokens, call.output_tokens), (Some(9), Some(41)));

    // Every chunk carries the sources (newer responses only `search_results`)
    // and the message so far beside the delta.
    let body = sse(&[
        r#"{"id":"9a","model":"sonar","created":1730000000,"usage":{"prompt_tokens":6,"completion_tokens":2,"total_tokens":8},"search_results":[{"title":"A","url":"https://a.example/"}],"object":"chat.completion.chunk","choices":[{"index":0,"finish_reason":null,"message":{"role":"assistant","content":"Paris"},"delta":{"role":"assistant","content":"Paris"}}]}"#,
        r#"{"id":"9a","model":"sonar","created":1730000000,"usage":{"prompt_tokens":6,"completion_tokens":4,"total_tokens":10},"search_results":[{"title":"A","url":"https://a.example/"},{"title":"B","url":"https://b.example/"}],"object":"chat.completion.chunk","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Paris [1]."},"delta":{"role":"assistant","content":" [1]."}}]}"#,
    ]);
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream; charset=utf-8", &body));
    assert_eq!(call.completion, "Paris [1].");
    assert_eq!(call.citations, ["https://a.example/", "https://b.example/"]);
    assert_eq!((call.input_tokens, call.output_tokens), (Some(6), Some(4)));
}

#[test]
fn mistral_streams_usage_with_the_last_chunk_and_thinking_parts_apart() {
    let req =
        request(r#"{"model":"magistral-medium-latest","stream":true,"messages":[{"role":"user","content":"2+2?"}]}"#);
    let body = sse(&[
        r#"{"id":"f1","object":"chat.completion.chunk","created":1730000000,"model":"magistral-medium-latest","choices":[{"index":0,"delta":{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"Simple sum."}]}]},"finish_reason":null}]}"#,
        r#"{"id":"f1","object":"chat.completion.chunk","created":1730000000,"model":"magistral-medium-latest","choices":[{"index":0,"delta":{"content":[{"type":"text","text":"4"}]},"finish_reason":null}]}"#,
        r#"{"id":"f1","object":"chat.completion.chunk","created":1730000000,"model":"magistral-medium-latest","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"total_tokens":31,"completion_tokens":20}}"#,
        "[DONE]",
    ]);
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream", &body));
    assert_eq!(call.completion, "4");
    assert_eq!(
        (call.input_tokens, call.output_tokens, call.stop_reason.as_deref()),
        (Some(11), Some(20), Some("stop"))
    );
}

#[test]
fn mistral_tool_calls_arrive_whole_in_one_chunk() {
    let req = request(
        r#"{"model":"mistral-large-latest","messages":[{"role":"user","content":"weather in Paris"},
        {"role":"assistant","content":"","tool_calls":[{"id":"D681PevKs","type":"function","function":{"name":"weather","arguments":"{\"city\": \"Paris\"}"}}]},
        {"role":"tool","name":"weather","content":"18C","tool_call_id":"D681PevKs"}],"stream":true}"#,
    );
    let body = sse(&[
        r#"{"id":"a2","object":"chat.completion.chunk","created":1730000000,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"{"id":"a2","object":"chat.completion.chunk","created":1730000000,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"tool_calls":[{"id":"Qx9bT2kLm","function":{"name":"forecast","arguments":"{\"city\": \"Paris\", \"days\": 3}"},"index":0}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":90,"total_tokens":120,"completion_tokens":30}}"#,
        "[DONE]",
    ]);
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream", &body));
    assert_eq!(
        call.tool_calls,
        [ToolCall {
            id: "Qx9bT2kLm".into(),
            name: "forecast".into(),
            arguments: r#"{"city": "Paris", "days": 3}"#.into()
        }]
    );
    assert_eq!(call.tool_results, [ToolResult { tool_call_id: "D681PevKs".into(), content: "18C".into() }]);
    assert_eq!(call.prompt, "weather in Paris");
}

#[test]
fn together_and_fireworks_streams_with_usage_at_the_end() {
    let req = request(
        r#"{"model":"accounts/fireworks/models/llama-v3p1-8b-instruct","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let body = sse(&[
        r#"{"id":"6a","object":"chat.completion.chunk","created":1730000000,"model":"accounts/fireworks/models/llama-v3p1-8b-instruct","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"6a","object":"chat.completion.chunk","created":1730000000,"model":"accounts/fireworks/models/llama-v3p1-8b-instruct","choices":[{"index":0,"delta":{"content":"Hello!"},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"6a","object":"chat.completion.chunk","created":1730000000,"model":"accounts/fireworks/models/llama-v3p1-8b-instruct","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"total_tokens":15,"completion_tokens":3}}"#,
        "[DONE]",
    ]);
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream", &body));
    assert_eq!((call.completion.as_str(), call.input_tokens, call.output_tokens), ("Hello!", Some(12), Some(3)));
    // Together: `text` beside the delta, `tool_calls: null`.
    let body = sse(&[
        r#"{"id":"8f","object":"chat.completion.chunk","created":1730000000,"choices":[{"index":0,"text":"Hel","logprobs":null,"finish_reason":null,"seed":null,"delta":{"token_id":9906,"role":"assistant","content":"Hel","tool_calls":null}}],"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","usage":null}"#,
        r#"{"id":"8f","object":"chat.completion.chunk","created":1730000000,"choices":[{"index":0,"text":"lo","logprobs":null,"finish_reason":"stop","seed":42,"delta":{"token_id":385,"role":"assistant","content":"lo","tool_calls":null}}],"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","usage":{"prompt_tokens":40,"completion_tokens":2,"total_tokens":42}}"#,
        "[DONE]",
    ]);
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream;charset=utf-8", &body));
    assert_eq!(call.model.as_deref(), Some("meta-llama/Llama-3.3-70B-Instruct-Turbo"));
    assert_eq!((call.completion.as_str(), call.input_tokens, call.output_tokens), ("Hello", Some(40), Some(2)));
    assert!(call.tool_calls.is_empty());
}

#[test]
fn only_the_first_choice_is_read_when_several_stream() {
    let req = request(
        r#"{"model":"gpt-4o-mini","n":2,"stream":true,"messages":[{"role":"user","content":"name a colour"}]}"#,
    );
    let body = sse(&[
        r#"{"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Red"},"finish_reason":null}]}"#,
        r#"{"model":"gpt-4o-mini","choices":[{"index":1,"delta":{"content":"Blue"},"finish_reason":null}]}"#,
        r#"{"model":"gpt-4o-mini","choices":[{"index":1,"delta":{},"finish_reason":"length"}]}"#,
        r#"{"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    ]);
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream", &body));
    assert_eq!((call.completion.as_str(), call.stop_reason.as_deref()), ("Red", Some("stop")));
}

#[test]
fn the_older_function_call_form() {
    let req = request(
        r#"{"model":"gpt-3.5-turbo","messages":[{"role":"user","content":"time?"},{"role":"assistant","content":null,"function_call":{"name":"now","arguments":"{}"}},{"role":"function","name":"now","content":"12:00"}]}"#,
    );
    let body = r#"{"model":"gpt-3.5-turbo-0613","choices":[{"index":0,"message":{"role":"assistant","content":null,"function_call":{"name":"clock","arguments":"{\"tz\":\"UTC\"}"}},"finish_reason":"function_call"}]}"#;
    let call = interpret(Format::OpenAiChat, &req, &response("application/json", body));
    assert_eq!(call.tool_results, [ToolResult { tool_call_id: "now".into(), content: "12:00".into() }]);
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "clock".into(), name: "clock".into(), arguments: r#"{"tz":"UTC"}"#.into() }]
    );
    let body = sse(&[
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"function_call":{"name":"clock","arguments":""}}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"function_call":{"arguments":"{\"tz\":"}}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"function_call":{"arguments":"\"UTC\"}"}},"finish_reason":"function_call"}]}"#,
    ]);
    let call = interpret(Format::OpenAiChat, &req, &response("text/event-stream", &body));
    assert_eq!(
        call.tool_calls,
        [ToolCall { id: "clock".into(), name: "clock".into(), arguments: r#"{"tz":"UTC"}"#.into() }]
    );
}

#[test]
fn a_user_turn_without_text_keeps_the_prompt_before_it() {
    let req = request(
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"describe this"},{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
    );
    let call = interpret(Format::OpenAiChat, &req, &response("application/json", "{}"));
    assert_eq!((call.prompt.as_str(), call.operation), ("describe this", "chat"));
}
