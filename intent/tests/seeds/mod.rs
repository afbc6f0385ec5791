//! The seed golden cases, built byte for byte as their clients and servers
//! put them on the wire: the clients' header names, order and framing (curl
//! and httpx for HTTP/1.1, Go's net/http for HTTP/2 with its SETTINGS and
//! WINDOW_UPDATE, HPACK by loona-hpack's encoder), the servers' gzip, chunked
//! transfer coding cut wherever it falls, pretty-printed JSON where the API
//! sends it so. Keys in them are fakes.

use std::io::Write;

use serde_json::{json, Value};

pub struct Seed {
    pub name: &'static str,
    description: &'static str,
    protocol: &'static str,
    host: &'static str,
    formats: &'static [&'static str],
    pub written: Vec<u8>,
    pub read: Vec<u8>,
}

impl Seed {
    pub fn case_toml(&self) -> String {
        let formats: Vec<String> = self.formats.iter().map(|f| format!("{f:?}")).collect();
        format!(
            "description = {:?}\nprotocol = {:?}\nhost = {:?}\nformats = [{}]\n",
            self.description,
            self.protocol,
            self.host,
            formats.join(", ")
        )
    }
}

pub fn all() -> Vec<Seed> {
    vec![
        openai_chat_http1_gzip(),
        anthropic_http1_chunked_sse(),
        openai_responses_http2(),
        gemini_http2(),
        cohere_v2_http1_sse(),
        groq_http1_sse(),
        perplexity_http1(),
        pypi_download_http1(),
    ]
}

// ---- HTTP/1.1 ----------------------------------------------------------

fn http1_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A response head (the status line and headers) and its body as sent.
fn http1_response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `body` in chunked transfer coding, cut into chunks of the given sizes in
/// turn (servers flush wherever their buffers end, not at event bounds).
fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// Server-sent events: `data:` lines, each event after its `event:` line
/// when `named`.
fn sse(events: &[Value], named: bool) -> Vec<u8> {
    let mut out = String::new();
    for event in events {
        if named {
            out.push_str(&format!("event: {}\n", event["type"].as_str().unwrap_or("message")));
        }
        out.push_str(&format!("data: {event}\n\n"));
    }
    out.into_bytes()
}

fn pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("JSON")
}

fn compact(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON")
}

/// The headers the OpenAI Python SDK (httpx) sends, in its order.
fn openai_python_headers<'a>(host: &'a str, key: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("Host", host),
        ("Accept-Encoding", "gzip, deflate"),
        ("Connection", "keep-alive"),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("User-Agent", "OpenAI/Python 1.99.9"),
        ("X-Stainless-Lang", "python"),
        ("X-Stainless-Package-Version", "1.99.9"),
        ("X-Stainless-OS", "Linux"),
        ("X-Stainless-Arch", "x64"),
        ("X-Stainless-Runtime", "CPython"),
        ("X-Stainless-Runtime-Version", "3.11.2"),
        ("Authorization", key),
        ("X-Stainless-Async", "false"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-read-timeout", "600"),
    ]
}

fn openai_chat_http1_gzip() -> Seed {
    let key = "Bearer sk-proj-goldenCaseNotARealKey0000000000";
    let headers = openai_python_headers("api.openai.com", key);
    let tools = json!([{"type": "function", "function": {"name": "run", "description": "Run a shell command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}]);
    let first = json!({"messages": [{"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Run the unit tests."}], "model": "gpt-4o", "tools": tools});
    let second = json!({"messages": [{"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Run the unit tests."},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_Vh2k9tGQ0d1x", "type": "function",
            "function": {"name": "run", "arguments": "{\"cmd\":\"cargo test\"}"}}]},
        {"role": "tool", "tool_call_id": "call_Vh2k9tGQ0d1x", "content": "test result: ok. 63 passed; 0 failed"}],
        "model": "gpt-4o", "tools": tools});
    let mut written = http1_request("GET", "/v1/models", &headers[..13], b"");
    written.extend(http1_request("POST", "/v1/chat/completions", &headers, &compact(&first)));
    written.extend(http1_request("POST", "/v1/chat/completions", &headers, &compact(&second)));

    let server = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("Date", "Mon, 23 Nov 2026 10:15:02 GMT"),
            ("Content-Type", "application/json"),
            ("Connection", "keep-alive"),
            ("access-control-expose-headers", "X-Request-ID"),
            ("openai-organization", "user-golden"),
            ("openai-processing-ms", "612"),
            ("openai-version", "2020-10-01"),
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-request-id", "req_6c1f0e7ad2f94bdf8e3b5b8e0d5c2a11"),
            ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
            ("cf-cache-status", "DYNAMIC"),
            ("X-Content-Type-Options", "nosniff"),
            ("Server", "cloudflare"),
            ("CF-RAY", "8e5a1c2b3d4e5f60-FRA"),
            ("alt-svc", "h3=\":443\"; ma=86400"),
        ];
        h.extend_from_slice(extra);
        h.into_iter().map(|(n, v)| (n, v.to_string())).collect()
    };
    let models = pretty(
        &json!({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}]}),
    );
    let tool_call = pretty(&json!({
        "id": "chatcmpl-BXk3Yx7Rkz0NqLc5xHj1sGfTa9pQe", "object": "chat.completion", "created": 1795428902,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_Vh2k9tGQ0d1x", "type": "function", "function": {"name": "run", "arguments": "{\"cmd\":\"cargo test\"}"}}],
            "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": "fp_07871e2ad8"}));
    let answer = pretty(&json!({
        "id": "chatcmpl-BXk3ZQ2mP8vT0s1yLw4eRb6nJc3dU", "object": "chat.completion", "created": 1795428905,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "All 63 tests passed.", "refusal": null, "annotations": []},
            "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1130, "completion_tokens": 7, "total_tokens": 1137,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": "fp_07871e2ad8"}));
    let models_gz = gzip(&models);
    let mut read = http1_response(
        "200 OK",
        &refs(&server(&[("Content-Encoding", "gzip"), ("Content-Length", &models_gz.len().to_string())])),
        &models_gz,
    );
    // Cloudflare compresses on the fly: gzip in chunks.
    read.extend(http1_response(
        "200 OK",
        &refs(&server(&[("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")])),
        &chunked(&gzip(&tool_call), &[10, 200, 4096]),
    ));
    let answer_gz = gzip(&answer);
    read.extend(http1_response(
        "200 OK",
        &refs(&server(&[("Content-Encoding", "gzip"), ("Content-Length", &answer_gz.len().to_string())])),
        &answer_gz,
    ));
    Seed {
        name: "openai_chat_http1_gzip",
        description: "OpenAI Python SDK over HTTP/1.1 keep-alive: a model list (no LLM call), a tool call, the tool's result sent back; gzip answers, one in chunks",
        protocol: "http1",
        host: "api.openai.com",
        formats: &["openai_chat", "openai_chat"],
        written,
        read,
    }
}

fn anthropic_http1_chunked_sse() -> Seed {
    let headers = [
        ("Host", "api.anthropic.com"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Connection", "keep-alive"),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("User-Agent", "Anthropic/Python 0.64.0"),
        ("X-Stainless-Lang", "python"),
        ("X-Stainless-Package-Version", "0.64.0"),
        ("x-api-key", "sk-ant-api03-goldenCaseNotARealKey000000000000"),
        ("anthropic-version", "2023-06-01"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-timeout", "600"),
    ];
    let body = json!({"max_tokens": 1024, "messages": [{"role": "user", "content": "Fix the failing test in src/lib.rs"}],
        "model": "claude-sonnet-4-5", "tools": [{"name": "bash", "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}], "stream": true});
    let mut written = http1_request("POST", "/v1/messages", &headers, &compact(&body));
    let mut retry = headers.to_vec();
    retry[10] = ("x-stainless-retry-count", "1");
    written.extend(http1_request("POST", "/v1/messages", &retry, &compact(&body)));

    let overloaded = compact(&json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_011CVxGolden0000000000001"}));
    let mut read = http1_response(
        "529 ",
        &[
            ("Date", "Mon, 23 Nov 2026 10:16:40 GMT"),
            ("Content-Type", "application/json"),
            ("Content-Length", &overloaded.len().to_string()),
            ("Connection", "keep-alive"),
            ("x-should-retry", "true"),
            ("request-id", "req_011CVxGolden0000000000001"),
            ("cf-cache-status", "DYNAMIC"),
            ("Server", "cloudflare"),
        ],
        &overloaded,
    );
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_01Golden", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 412, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 3,
                "service_tier": "standard"}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "I'll run the test"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " to see the failure."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01GoldenBash", "name": "bash", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"command\": \"cargo te"}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "st --lib\"}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 412, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 71}}),
        json!({"type": "message_stop"}),
    ];
    read.extend(http1_response(
        "200 OK",
        &[
            ("Date", "Mon, 23 Nov 2026 10:16:42 GMT"),
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "keep-alive"),
            ("Cache-Control", "no-cache"),
            ("request-id", "req_011CVxGolden0000000000002"),
            ("anthropic-organization-id", "00000000-0000-0000-0000-000000000000"),
            ("via", "1.1 google"),
            ("cf-cache-status", "DYNAMIC"),
            ("Server", "cloudflare"),
        ],
        &chunked(&sse(&events, true), &[61, 173, 29, 250, 7]),
    ));
    Seed {
        name: "anthropic_http1_chunked_sse",
        description: "Anthropic Python SDK over HTTP/1.1: a 529 overloaded error, then the retry streamed as chunked server-sent events cut mid-event, with text and a tool call",
        protocol: "http1",
        host: "api.anthropic.com",
        formats: &["anthropic_messages", "anthropic_messages"],
        written,
        read,
    }
}

// ---- HTTP/2 ------------------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame fits");
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> =
        pairs.iter().flat_map(|(id, value)| [&id.to_be_bytes()[..], &value.to_be_bytes()].concat()).collect();
    frame(SETTINGS, 0, 0, &payload)
}

fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

fn headers(encoder: &mut loona_hpack::Encoder<'_>, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
    let block = encoder.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    frame(HEADERS, END_HEADERS | if end_stream { END_STREAM } else { 0 }, stream, &block)
}

fn refs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// DATA frames of at most `max` bytes; the last ends the stream when `end`.
fn data(stream: u32, body: &[u8], max: usize, end: bool) -> Vec<Vec<u8>> {
    let pieces: Vec<&[u8]> = body.chunks(max).collect();
    let last = pieces.len().saturating_sub(1);
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| frame(DATA, if end && i == last { END_STREAM } else { 0 }, stream, p))
        .collect()
}

/// Go's net/http client: preface, SETTINGS (push off, 4 MiB stream window,
/// 10 MiB header list), a 1 GiB connection window.
fn go_client_start() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(settings(&[(0x2, 0), (0x4, 4_194_304), (0x6, 10_485_760)]));
    out.extend(window_update(0, 1_073_741_824));
    out
}

/// Frames interleaved: one from each list in turn.
fn interleave(lists: Vec<Vec<Vec<u8>>>) -> Vec<u8> {
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..longest {
        for list in &lists {
            if let Some(frame) = list.get(i) {
                out.extend_from_slice(frame);
            }
        }
    }
    out
}

fn openai_responses_http2() -> Seed {
    let mut enc = loona_hpack::Encoder::new();
    let request_fields = |path: &'static str, length: &str| -> Vec<(&'static str, String)> {
        vec![
            (":authority", "api.openai.com".into()),
            (":method", "POST".into()),
            (":path", path.into()),
            (":scheme", "https".into()),
            ("accept", "application/json".into()),
            ("authorization", "Bearer sk-proj-goldenCaseNotARealKey0000000000".into()),
            ("content-type", "application/json".into()),
            ("user-agent", "OpenAI/Go 2.7.1".into()),
            ("x-stainless-lang", "go".into()),
            ("x-stainless-package-version", "2.7.1".into()),
            ("x-stainless-retry-count", "0".into()),
            ("content-length", length.into()),
            ("accept-encoding", "gzip".into()),
        ]
    };
    let responses_body = compact(&json!({"input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Summarise open issues labelled bug"}]},
            {"type": "function_call", "call_id": "call_list0", "name": "list_issues", "arguments": "{\"label\":\"bug\"}"},
            {"type": "function_call_output", "call_id": "call_list0", "output": "[{\"id\":41,\"title\":\"panic on empty body\"}]"}],
        "model": "gpt-4.1", "stream": true,
        "tools": [{"type": "function", "name": "get_issue", "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}}, "strict": false}]}));
    let embeddings_body = compact(
        &json!({"input": ["panic on empty body", "timeout in CI"], "model": "text-embedding-3-small", "encoding_format": "base64"}),
    );
    let first = request_fields("/v1/responses", &responses_body.len().to_string());
    let second = request_fields("/v1/embeddings", &embeddings_body.len().to_string());
    let mut written = go_client_start();
    written.extend(headers(&mut enc, 1, &refs(&first), false));
    written.extend(data(1, &responses_body, 16_384, true).concat());
    written.extend(frame(SETTINGS, ACK, 0, &[]));
    written.extend(headers(&mut enc, 3, &refs(&second), false));
    written.extend(data(3, &embeddings_body, 16_384, true).concat());
    written.extend(frame(PING, ACK, 0, b"golden01"));

    let mut server = loona_hpack::Encoder::new();
    let mut read = settings(&[(0x3, 256), (0x4, 65_536), (0x5, 16_777_215)]);
    read.extend(window_update(0, 2_147_418_112));
    read.extend(frame(SETTINGS, ACK, 0, &[]));
    read.extend(frame(PING, 0, 0, b"golden01"));
    let response_fields = |content_type: &'static str, gzip: bool| -> Vec<(&'static str, &'static str)> {
        let mut f = vec![
            (":status", "200"),
            ("date", "Mon, 23 Nov 2026 10:20:11 GMT"),
            ("content-type", content_type),
            ("openai-organization", "user-golden"),
            ("openai-processing-ms", "98"),
            ("openai-version", "2020-10-01"),
            ("x-request-id", "req_9d0e4b1a7c3f4e2d8b6a5c4d3e2f1a0b"),
            ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
            ("cf-cache-status", "DYNAMIC"),
            ("server", "cloudflare"),
        ];
        if gzip {
            f.push(("content-encoding", "gzip"));
        }
        f
    };
    let events = [
        json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_golden", "object": "response", "created_at": 1795429211,
            "status": "in_progress", "error": null, "incomplete_details": null, "model": "gpt-4.1-2025-04-14", "output": [], "usage": null}}),
        json!({"type": "response.in_progress", "sequence_number": 1, "response": {"id": "resp_golden", "object": "response", "status": "in_progress",
            "model": "gpt-4.1-2025-04-14", "output": []}}),
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": {"id": "msg_golden", "type": "message",
            "status": "in_progress", "content": [], "role": "assistant"}}),
        json!({"type": "response.content_part.added", "sequence_number": 3, "item_id": "msg_golden", "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "annotations": [], "text": ""}}),
        json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_golden", "output_index": 0, "content_index": 0,
            "delta": "One open bug: #41, a panic", "logprobs": []}),
        json!({"type": "response.output_text.delta", "sequence_number": 5, "item_id": "msg_golden", "output_index": 0, "content_index": 0,
            "delta": " on an empty body. Fetching it.", "logprobs": []}),
        json!({"type": "response.output_text.done", "sequence_number": 6, "item_id": "msg_golden", "output_index": 0, "content_index": 0,
            "text": "One open bug: #41, a panic on an empty body. Fetching it.", "logprobs": []}),
        json!({"type": "response.content_part.done", "sequence_number": 7, "item_id": "msg_golden", "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "annotations": [], "text": "One open bug: #41, a panic on an empty body. Fetching it."}}),
        json!({"type": "response.output_item.done", "sequence_number": 8, "output_index": 0, "item": {"id": "msg_golden", "type": "message",
            "status": "completed", "role": "assistant", "content": [{"type": "output_text", "annotations": [],
            "text": "One open bug: #41, a panic on an empty body. Fetching it."}]}}),
        json!({"type": "response.output_item.added", "sequence_number": 9, "output_index": 1, "item": {"id": "fc_golden", "type": "function_call",
            "status": "in_progress", "arguments": "", "call_id": "call_get41", "name": "get_issue"}}),
        json!({"type": "response.function_call_arguments.delta", "sequence_number": 10, "item_id": "fc_golden", "output_index": 1, "delta": "{\"id\":"}),
        json!({"type": "response.function_call_arguments.delta", "sequence_number": 11, "item_id": "fc_golden", "output_index": 1, "delta": "41}"}),
        json!({"type": "response.function_call_arguments.done", "sequence_number": 12, "item_id": "fc_golden", "output_index": 1, "arguments": "{\"id\":41}"}),
        json!({"type": "response.output_item.done", "sequence_number": 13, "output_index": 1, "item": {"id": "fc_golden", "type": "function_call",
            "status": "completed", "arguments": "{\"id\":41}", "call_id": "call_get41", "name": "get_issue"}}),
        json!({"type": "response.completed", "sequence_number": 14, "response": {"id": "resp_golden", "object": "response", "created_at": 1795429211,
            "status": "completed", "error": null, "incomplete_details": null, "model": "gpt-4.1-2025-04-14",
            "output": [
                {"id": "msg_golden", "type": "message", "status": "completed", "role": "assistant", "content": [{"type": "output_text",
                    "annotations": [], "text": "One open bug: #41, a panic on an empty body. Fetching it."}]},
                {"id": "fc_golden", "type": "function_call", "status": "completed", "arguments": "{\"id\":41}", "call_id": "call_get41", "name": "get_issue"}],
            "usage": {"input_tokens": 141, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 33,
                "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 174}}}),
    ];
    let embeddings = pretty(&json!({"object": "list", "data": [
            {"object": "embedding", "index": 0, "embedding": "AAAAAAAAgD8AAABA"},
            {"object": "embedding", "index": 1, "embedding": "AACAPwAAAEAAAEBA"}],
        "model": "text-embedding-3-small", "usage": {"prompt_tokens": 9, "total_tokens": 9}}));
    read.extend(headers(&mut server, 1, &response_fields("text/event-stream; charset=utf-8", false), false));
    read.extend(headers(&mut server, 3, &response_fields("application/json", true), false));
    // The stream's events and the embeddings' gzip body interleave; the
    // server flushes the events in pieces of its own.
    read.extend(interleave(vec![data(1, &sse(&events, true), 700, true), data(3, &gzip(&embeddings), 150, true)]));
    read.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 0]));
    Seed {
        name: "openai_responses_http2",
        description: "OpenAI Go SDK over HTTP/2 (Go net/http): a streamed Responses call returning a tool's output and making a new call, and an embeddings call, their frames interleaved; the embeddings gzip",
        protocol: "http2",
        host: "api.openai.com",
        formats: &["openai_responses", "openai_embeddings"],
        written,
        read,
    }
}

fn gemini_http2() -> Seed {
    let mut enc = loona_hpack::Encoder::new();
    let stream_body =
        compact(&json!({"contents": [{"role": "user", "parts": [{"text": "Write a haiku about HTTP/2 frames."}]}],
        "generationConfig": {"temperature": 0.7}}));
    let call_body = compact(&json!({"contents": [
            {"role": "user", "parts": [{"text": "What is the disk usage of /var/log?"}]},
            {"role": "model", "parts": [{"functionCall": {"id": "du-1", "name": "du", "args": {"path": "/var/log"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "du-1", "name": "du", "response": {"output": "1.2G\t/var/log"}}}]}],
        "tools": [{"functionDeclarations": [{"name": "du", "description": "Disk usage", "parameters": {"type": "OBJECT",
            "properties": {"path": {"type": "STRING"}}}}]}]}));
    let fields = |path: &'static str, length: String| -> Vec<(&'static str, String)> {
        vec![
            (":authority", "generativelanguage.googleapis.com".into()),
            (":method", "POST".into()),
            (":path", path.into()),
            (":scheme", "https".into()),
            ("content-type", "application/json".into()),
            ("user-agent", "google-genai-sdk/1.30.0 gl-go/go1.22.5".into()),
            ("x-goog-api-client", "google-genai-sdk/1.30.0 gl-go/go1.22.5".into()),
            ("x-goog-api-key", "AIzaGoldenCaseNotARealKey0000000000000".into()),
            ("content-length", length),
            ("accept-encoding", "gzip".into()),
        ]
    };
    let first = fields("/v1beta/models/gemini-2.5-flash:streamGenerateContent", stream_body.len().to_string());
    let second = fields("/v1beta/models/gemini-2.5-flash:generateContent", call_body.len().to_string());
    let mut written = go_client_start();
    written.extend(headers(&mut enc, 1, &refs(&first), false));
    written.extend(data(1, &stream_body, 16_384, true).concat());
    written.extend(frame(SETTINGS, ACK, 0, &[]));
    written.extend(window_update(1, 32_768));
    written.extend(headers(&mut enc, 3, &refs(&second), false));
    written.extend(data(3, &call_body, 16_384, true).concat());

    let mut server = loona_hpack::Encoder::new();
    let google = |gzip: bool| -> Vec<(&'static str, &'static str)> {
        let mut f = vec![
            (":status", "200"),
            ("content-type", "application/json; charset=UTF-8"),
            ("vary", "Origin"),
            ("vary", "X-Origin"),
            ("vary", "Referer"),
            ("date", "Mon, 23 Nov 2026 10:22:31 GMT"),
            ("server", "scaffolding on HTTPServer2"),
            ("x-xss-protection", "0"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-content-type-options", "nosniff"),
            ("server-timing", "gfet4t7; dur=812"),
            ("alt-svc", "h3=\":443\"; ma=2592000,h3-29=\":443\"; ma=2592000"),
        ];
        if gzip {
            f.push(("content-encoding", "gzip"));
        }
        f
    };
    let chunks = [
        json!({"candidates": [{"content": {"parts": [{"text": "Streams interleave,"}], "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}]},
            "modelVersion": "gemini-2.5-flash", "responseId": "7xYtaGoldenA"}),
        json!({"candidates": [{"content": {"parts": [{"text": "\nheaders packed by HPACK,\n"}], "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 11, "totalTokenCount": 21},
            "modelVersion": "gemini-2.5-flash", "responseId": "7xYtaGoldenA"}),
        json!({"candidates": [{"content": {"parts": [{"text": "one socket hums."}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 16, "totalTokenCount": 634, "thoughtsTokenCount": 608,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}]},
            "modelVersion": "gemini-2.5-flash", "responseId": "7xYtaGoldenA"}),
    ];
    // The array streams item by item, pretty-printed, with ",\r\n" between.
    let items: Vec<String> = chunks.iter().map(|c| serde_json::to_string_pretty(c).expect("JSON")).collect();
    let mut array_pieces: Vec<Vec<u8>> = vec![];
    for (i, item) in items.iter().enumerate() {
        let lead = if i == 0 { "[" } else { ",\r\n" };
        array_pieces.push(format!("{lead}{item}\n").into_bytes());
    }
    array_pieces.push(b"]".to_vec());
    let answer = pretty(&json!({"candidates": [{"content": {"parts": [
            {"text": "/var/log uses 1.2G. The largest part is usually the journal; "},
            {"functionCall": {"id": "journal-2", "name": "du", "args": {"path": "/var/log/journal"}}}], "role": "model"},
        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 96, "candidatesTokenCount": 31, "totalTokenCount": 311, "cachedContentTokenCount": 64, "thoughtsTokenCount": 184},
        "modelVersion": "gemini-2.5-flash", "responseId": "8xYtaGoldenB"}));
    let mut read = settings(&[(0x3, 100), (0x4, 1_048_576), (0x6, 65_536)]);
    read.extend(window_update(0, 983_041));
    read.extend(frame(SETTINGS, ACK, 0, &[]));
    read.extend(headers(&mut server, 1, &google(false), false));
    let mut stream_frames: Vec<Vec<u8>> = array_pieces.iter().map(|p| frame(DATA, 0, 1, p)).collect();
    stream_frames.push(frame(DATA, END_STREAM, 1, b""));
    read.extend(headers(&mut server, 3, &google(true), false));
    read.extend(interleave(vec![stream_frames, data(3, &gzip(&answer), 120, true)]));
    Seed {
        name: "gemini_http2",
        description: "Google GenAI Go SDK over HTTP/2: streamGenerateContent without alt=sse (a JSON array streamed item by item) and a generateContent call sending a function's response back, its answer gzip; frames interleaved",
        protocol: "http2",
        host: "generativelanguage.googleapis.com",
        formats: &["gemini", "gemini"],
        written,
        read,
    }
}

fn cohere_v2_http1_sse() -> Seed {
    let body = compact(&json!({"model": "command-a-03-2025", "stream": true, "messages": [
            {"role": "user", "content": "What's the weather in Madrid?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]}));
    let written = http1_request(
        "POST",
        "/v2/chat",
        &[
            ("Host", "api.cohere.com"),
            ("User-Agent", "curl/7.88.1"),
            ("accept", "text/event-stream"),
            ("content-type", "application/json"),
            ("Authorization", "Bearer co-goldenCaseNotARealKey000000000000"),
        ],
        &body,
    );
    let events = [
        json!({"id": "b7f1c3a0-golden", "type": "message-start", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look up"}}}),
        json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": " the weather in Madrid."}}}),
        json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {"id": "get_weather_golden01", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "{\n    \""}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "location\": \"Madrid\"\n}"}}}}}),
        json!({"type": "tool-call-end", "index": 0}),
        json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": {"billed_units": {"input_tokens": 37, "output_tokens": 21},
            "tokens": {"input_tokens": 1462, "output_tokens": 44}, "cached_tokens": 0}}}),
    ];
    let read = http1_response(
        "200 OK",
        &[
            ("access-control-expose-headers", "X-Debug-Trace-ID"),
            ("cache-control", "no-cache, no-store, no-transform, must-revalidate, private, max-age=0"),
            ("content-type", "text/event-stream"),
            ("expires", "Thu, 01 Jan 1970 00:00:00 UTC"),
            ("pragma", "no-cache"),
            ("vary", "Origin"),
            ("x-accel-buffering", "no"),
            ("x-debug-trace-id", "4c1f2a3b5d6e7f809a1b2c3d4e5f6a7b"),
            ("x-endpoint-monthly-call-limit", "1000"),
            ("x-trial-endpoint-call-limit", "20"),
            ("x-trial-endpoint-call-remaining", "19"),
            ("date", "Mon, 23 Nov 2026 10:25:03 GMT"),
            ("x-envoy-upstream-service-time", "128"),
            ("server", "envoy"),
            ("Via", "1.1 google"),
            ("Alt-Svc", "h3=\":443\"; ma=2592000,h3-29=\":443\"; ma=2592000"),
            ("Transfer-Encoding", "chunked"),
        ],
        &chunked(&sse(&events, true), &[200, 13, 97]),
    );
    Seed {
        name: "cohere_v2_http1_sse",
        description: "curl to Cohere's v2 chat over HTTP/1.1: a tool call streamed as chunked server-sent events (tool plan, call start, argument pieces)",
        protocol: "http1",
        host: "api.cohere.com",
        formats: &["cohere_chat"],
        written,
        read,
    }
}

fn groq_http1_sse() -> Seed {
    let body = compact(&json!({"messages": [{"role": "user", "content": "Explain HPACK in one sentence."}],
        "model": "llama-3.3-70b-versatile", "stream": true}));
    let mut headers = openai_python_headers("api.groq.com", "Bearer gsk_goldenCaseNotARealKey0000000000000");
    headers[5] = ("User-Agent", "Groq/Python 0.31.0");
    let written = http1_request("POST", "/openai/v1/chat/completions", &headers, &body);
    let chunk = |delta: Value, finish: Value, x_groq: Option<Value>| {
        let mut c = json!({"id": "chatcmpl-golden-groq", "object": "chat.completion.chunk", "created": 1795429600,
            "model": "llama-3.3-70b-versatile", "system_fingerprint": "fp_3f3b593e33",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if let Some(x) = x_groq {
            c["x_groq"] = x;
        }
        c
    };
    let events = [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null, Some(json!({"id": "req_01golden"}))),
        chunk(json!({"content": "HPACK compresses HTTP/2 headers"}), Value::Null, None),
        chunk(json!({"content": " with static and dynamic tables plus Huffman coding."}), Value::Null, None),
        chunk(
            json!({}),
            json!("stop"),
            Some(json!({"id": "req_01golden", "usage": {"queue_time": 0.051, "prompt_tokens": 44,
            "prompt_time": 0.003, "completion_tokens": 19, "completion_time": 0.069, "total_tokens": 63, "total_time": 0.072}})),
        ),
    ];
    let mut stream = sse(&events, false);
    stream.extend_from_slice(b"data: [DONE]\n\n");
    let read = http1_response(
        "200 OK",
        &[
            ("Date", "Mon, 23 Nov 2026 10:26:40 GMT"),
            ("Content-Type", "text/event-stream"),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "keep-alive"),
            ("Cache-Control", "no-cache"),
            ("vary", "Origin"),
            ("x-groq-region", "gcp-europe-west3"),
            ("x-request-id", "req_01golden"),
            ("via", "1.1 google"),
            ("cf-cache-status", "DYNAMIC"),
            ("Server", "cloudflare"),
        ],
        &chunked(&stream, &[300, 301]),
    );
    Seed {
        name: "groq_http1_sse",
        description: "Groq Python SDK over HTTP/1.1: a chat stream whose usage comes in x_groq of the last chunk",
        protocol: "http1",
        host: "api.groq.com",
        formats: &["openai_chat"],
        written,
        read,
    }
}

fn perplexity_http1() -> Seed {
    let body =
        compact(&json!({"model": "sonar-pro", "messages": [{"role": "system", "content": "Be precise and concise."},
        {"role": "user", "content": "Which HTTP/2 frame type carries header blocks?"}]}));
    let written = http1_request(
        "POST",
        "/chat/completions",
        &[
            ("Host", "api.perplexity.ai"),
            ("User-Agent", "curl/7.88.1"),
            ("Accept", "*/*"),
            ("Authorization", "Bearer pplx-goldenCaseNotARealKey00000000000000"),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    let answer = compact(&json!({"id": "3c0f9e6a-golden", "model": "sonar-pro", "created": 1795429700,
        "usage": {"prompt_tokens": 17, "completion_tokens": 38, "total_tokens": 55, "search_context_size": "low"},
        "citations": ["https://www.rfc-editor.org/rfc/rfc9113.html", "https://developer.mozilla.org/en-US/docs/Glossary/HTTP_2"],
        "search_results": [
            {"title": "RFC 9113: HTTP/2", "url": "https://www.rfc-editor.org/rfc/rfc9113.html", "date": "2022-06-06"},
            {"title": "HTTP/2 - MDN", "url": "https://developer.mozilla.org/en-US/docs/Glossary/HTTP_2", "date": null}],
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
            "content": "HEADERS frames, continued by CONTINUATION frames when a block is large [1][2]."},
            "delta": {"role": "assistant", "content": ""}}]}));
    let read = http1_response(
        "200 OK",
        &[
            ("Date", "Mon, 23 Nov 2026 10:28:15 GMT"),
            ("Content-Type", "application/json"),
            ("Content-Length", &answer.len().to_string()),
            ("Connection", "keep-alive"),
            ("strict-transport-security", "max-age=31536000; includeSubDomains"),
            ("cf-cache-status", "DYNAMIC"),
            ("Server", "cloudflare"),
        ],
        &answer,
    );
    Seed {
        name: "perplexity_http1",
        description: "curl to Perplexity over HTTP/1.1: an answer with its citations and search results",
        protocol: "http1",
        host: "api.perplexity.ai",
        formats: &["openai_chat"],
        written,
        read,
    }
}

fn pypi_download_http1() -> Seed {
    let written = http1_request(
        "GET",
        "/packages/f9/9b/335f9764261e915ed497fcdeb11df5dfd6f7bf257d4a6a2a686d80da4d54/requests-2.32.3-py3-none-any.whl",
        &[
            ("Host", "files.pythonhosted.org"),
            ("User-Agent", "pip/23.0.1 {\"ci\":null,\"cpu\":\"x86_64\",\"implementation\":{\"name\":\"CPython\",\"version\":\"3.11.2\"}}"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Accept", "*/*"),
            ("Connection", "keep-alive"),
        ],
        b"",
    );
    // A wheel is a zip archive.
    let mut wheel = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    wheel.extend((0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let read = http1_response(
        "200 OK",
        &[
            ("Connection", "keep-alive"),
            ("Content-Length", &wheel.len().to_string()),
            ("Content-Type", "application/octet-stream"),
            ("Accept-Ranges", "bytes"),
            ("Cache-Control", "max-age=365000000, immutable, public"),
            ("ETag", "\"golden\""),
            ("Server", "Varnish"),
        ],
        &wheel,
    );
    Seed {
        name: "pypi_download_http1",
        description: "pip downloading a wheel over HTTP/1.1: no LLM call",
        protocol: "http1",
        host: "files.pythonhosted.org",
        formats: &[],
        written,
        read,
    }
}
