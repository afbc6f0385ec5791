//! Golden files: the plaintext of whole TLS connections, read back into the
//! LLM calls they carried.
//!
//! Each case is a directory `tests/golden/<case>/` holding one connection:
//!
//! - `written.bin`: every byte the client wrote, in order (its requests,
//!   including an HTTP/2 client's preface and control frames);
//! - `read.bin`: every byte it read (the responses);
//! - `case.toml`: `protocol = "http1"` or `"http2"`; `host`, the TLS server
//!   name (a request's Host header or `:authority` wins over it); optionally
//!   `formats`, the wire formats the catalog must find (a check that does
//!   not depend on `expected.json`), `[[endpoints]]` beyond the built-in
//!   catalog, and a `description`;
//! - `expected.json`: the LLM calls found, in request order, each with the
//!   stream (HTTP/2 stream id, or the request's position on an HTTP/1.1
//!   connection), the endpoint's provider and format, the request target and
//!   the interpreted `LlmCall`. Requests to no known endpoint are left out, so
//!   a connection with no LLM call expects `[]`.
//!
//! The harness runs each connection through `Http1Stream`/`Http2Stream` in
//! both directions, pairs requests with responses (in order on HTTP/1.1, by
//! stream id on HTTP/2), looks each request up in the default endpoint
//! catalog and interprets it. It does so twice, bytes whole and in pieces of
//! 7 bytes, which must agree.
//!
//! A captured connection becomes a case by dropping its two byte files and a
//! `case.toml` into a new directory and running
//! `PLUMBLINE_BLESS=1 cargo test -p plumbline-intent --test golden`, which
//! writes `expected.json` for review. The seed cases were built byte for byte
//! as the clients named in their descriptions send them, by `seeds/mod.rs`
//! (`cargo test -p plumbline-intent --test golden -- --ignored` rewrites
//! their byte files).

mod seeds;

use std::path::{Path, PathBuf};

use plumbline_intent::{
    http1::{Direction, Http1Stream},
    http2::Http2Stream,
    interpret, EndpointCatalog, Format, Head, LlmCall, Message,
};
use serde::{Deserialize, Serialize};

/// Bodies are kept up to this, as the agent keeps them.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    protocol: Protocol,
    host: String,
    #[serde(default)]
    formats: Option<Vec<Format>>,
    #[allow(dead_code)]
    description: Option<String>,
    /// Endpoints beyond the built-in catalog (connections captured against
    /// the test fixture, which serves each provider under a path prefix).
    #[serde(default)]
    endpoints: Vec<plumbline_intent::Endpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Protocol {
    Http1,
    Http2,
}

/// One LLM call found on the connection.
#[derive(Debug, PartialEq, Serialize)]
struct Found {
    stream: u32,
    provider: String,
    format: Format,
    target: String,
    call: LlmCall,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_connections_read_as_expected() {
    let bless = std::env::var_os("PLUMBLINE_BLESS").is_some_and(|v| v == "1");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/golden exists")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no golden cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let case: Case =
            toml::from_str(&read_text(&dir.join("case.toml"))).unwrap_or_else(|e| panic!("{name}/case.toml: {e}"));
        let written = read(&dir.join("written.bin"));
        let read_back = read(&dir.join("read.bin"));
        let found = connection_calls(&case, &written, &read_back, None);
        assert_eq!(
            found,
            connection_calls(&case, &written, &read_back, Some(7)),
            "{name}: bytes in pieces read differently"
        );
        if let Some(formats) = &case.formats {
            let seen: Vec<Format> = found.iter().map(|f| f.format).collect();
            assert_eq!(&seen, formats, "{name}: the formats the catalog found");
        }
        let actual = serde_json::to_value(&found).expect("calls serialize");
        let expected_path = dir.join("expected.json");
        if bless {
            let mut text = serde_json::to_string_pretty(&actual).expect("calls serialize");
            text.push('\n');
            std::fs::write(&expected_path, text).unwrap_or_else(|e| panic!("{name}: writing expected.json: {e}"));
            continue;
        }
        let expected: serde_json::Value = serde_json::from_str(&read_text(&expected_path))
            .unwrap_or_else(|e| panic!("{name}/expected.json: {e} (PLUMBLINE_BLESS=1 writes it)"));
        if actual != expected {
            failures.push(format!(
                "{name}: expected\n{}\nfound\n{}",
                serde_json::to_string_pretty(&expected).unwrap_or_default(),
                serde_json::to_string_pretty(&actual).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}\n(PLUMBLINE_BLESS=1 rewrites expected.json)", failures.join("\n\n"));
}

/// Rewrites the seed cases' byte files and `case.toml`.
#[test]
#[ignore = "rewrites the seed cases; run on purpose, then bless and review"]
fn write_seed_cases() {
    for seed in seeds::all() {
        let dir = cases_dir().join(seed.name);
        std::fs::create_dir_all(&dir).expect("case directory");
        std::fs::write(dir.join("written.bin"), &seed.written).expect("written.bin");
        std::fs::write(dir.join("read.bin"), &seed.read).expect("read.bin");
        std::fs::write(dir.join("case.toml"), seed.case_toml()).expect("case.toml");
    }
}

/// The LLM calls on one connection; `piece` feeds the bytes that many at a
/// time instead of whole.
fn connection_calls(case: &Case, written: &[u8], read: &[u8], piece: Option<usize>) -> Vec<Found> {
    let catalog = EndpointCatalog::with_extra(case.endpoints.clone());
    exchanges(case, written, read, piece)
        .into_iter()
        .filter_map(|(stream, request, response)| {
            let Head::Request { target, .. } = &request.head else { return None };
            let host = request.header("host").unwrap_or(&case.host);
            let endpoint = catalog.find(host, target)?;
            Some(Found {
                stream,
                provider: endpoint.provider.clone(),
                format: endpoint.format,
                target: target.clone(),
                call: interpret(endpoint.format, &request, &response),
            })
        })
        .collect()
}

/// The connection's requests paired with their responses, each with its
/// stream (HTTP/2 stream id, or position on an HTTP/1.1 connection).
fn exchanges(case: &Case, written: &[u8], read: &[u8], piece: Option<usize>) -> Vec<(u32, Message, Message)> {
    let chunks = |bytes: &[u8]| -> Vec<Vec<u8>> {
        match piece {
            Some(n) => bytes.chunks(n).map(<[u8]>::to_vec).collect(),
            None => vec![bytes.to_vec()],
        }
    };
    match case.protocol {
        Protocol::Http1 => {
            let requests = http1_messages(Direction::Requests, &chunks(written));
            // Interim responses (100 Continue) answer no request of their own.
            let responses = http1_messages(Direction::Responses, &chunks(read))
                .into_iter()
                .filter(|m| !matches!(m.head, Head::Response { status: 100..=199, .. }) || status(m) == 101);
            (0..).zip(requests).zip(responses).map(|((i, req), resp)| (i, req, resp)).collect()
        }
        Protocol::Http2 => {
            let mut requests = http2_messages(Direction::Requests, &chunks(written));
            requests.sort_by_key(|(id, _)| *id);
            let mut responses = http2_messages(Direction::Responses, &chunks(read));
            requests
                .into_iter()
                .filter_map(|(id, req)| {
                    let at = responses.iter().position(|(rid, _)| *rid == id)?;
                    Some((id, req, responses.remove(at).1))
                })
                .collect()
        }
    }
}

/// Writes the fuzz targets' seed corpus (`fuzz/corpus/<target>/seed-*`)
/// from the golden cases: each connection's bytes for `http1`/`http2`, each
/// event-stream body for `sse`, each exchange's bodies for `llm`, plus the
/// shapes no golden case has yet.
#[test]
#[ignore = "rewrites the fuzz seeds; run on purpose"]
fn write_fuzz_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed");
    };
    let with = |head: &[u8], bytes: &[u8]| [head, bytes].concat();
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(cases_dir()).expect("tests/golden").map(|e| e.expect("entry").path()).collect();
    dirs.sort();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let case: Case = toml::from_str(&read_text(&dir.join("case.toml"))).expect("case.toml");
        let (written, read_back) = (read(&dir.join("written.bin")), read(&dir.join("read.bin")));
        // First byte: direction (bit 0) and pieces of 7 (bits 2-7 = 6).
        let target = if case.protocol == Protocol::Http1 { "http1" } else { "http2" };
        write(target, &format!("{name}-requests"), &with(&[6 << 2], &written));
        write(target, &format!("{name}-responses"), &with(&[6 << 2 | 1], &read_back));
        for (stream, request, response) in exchanges(&case, &written, &read_back, None) {
            let event_stream = response.header("content-type").is_some_and(|t| t.starts_with("text/event-stream"));
            if event_stream {
                write("sse", &format!("{name}-{stream}"), &with(&[6], &response.body));
            }
            let Head::Request { target, .. } = &request.head else { continue };
            let Some(endpoint) =
                EndpointCatalog::default().find(request.header("host").unwrap_or(&case.host), target).cloned()
            else {
                continue;
            };
            let format = Format::ALL.iter().position(|f| *f == endpoint.format).unwrap_or(0) as u8;
            let target_pick: u8 = if target.contains("alt=sse") {
                1
            } else if target.contains(":generateContent") || target.contains(":streamGenerateContent") {
                2
            } else {
                0
            };
            let content_type: u8 = match response.header("content-type") {
                None => 0,
                Some(t) if t.starts_with("text/event-stream") => 2,
                Some(t) if t.starts_with("application/stream+json") => 3,
                Some(_) => 1,
            };
            let status_pick: u8 = match status(&response) {
                200..=299 => 0,
                429 => 2,
                500.. => 3,
                _ => 1,
            };
            let len = u16::try_from(request.body.len()).expect("seed requests are small").to_le_bytes();
            let head = [format, target_pick | content_type << 2 | status_pick << 4, len[0], len[1]];
            write("llm", &format!("{name}-{stream}"), &[&head[..], &request.body, &response.body].concat());
        }
    }
    // Shapes no golden case has: Cohere v1 JSON lines, Gemini with alt=sse.
    let v1_request = br#"{"model":"command-r","message":"hi","tool_results":[{"call":{"name":"f","parameters":{}},"outputs":[{"a":1}]}]}"#;
    let v1_stream = b"{\"event_type\":\"text-generation\",\"text\":\"Hi\"}\n{\"event_type\":\"tool-calls-generation\",\"tool_calls\":[{\"name\":\"f\",\"parameters\":{\"q\":1}}]}\n{\"event_type\":\"stream-end\",\"finish_reason\":\"COMPLETE\",\"response\":{\"text\":\"Hi\",\"meta\":{\"tokens\":{\"input_tokens\":1,\"output_tokens\":2}}}}\n";
    let len = (v1_request.len() as u16).to_le_bytes();
    write("llm", "cohere-v1-lines", &[&[6u8, 3 << 2, len[0], len[1]][..], v1_request, v1_stream].concat());
    let gemini_request = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let gemini_sse = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\",\"thought\":true},{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":1}}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}]},\"finishReason\":\"STOP\"}],\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n";
    let len = (gemini_request.len() as u16).to_le_bytes();
    write("llm", "gemini-sse", &[&[4u8, 1 | 2 << 2, len[0], len[1]][..], gemini_request, gemini_sse].concat());
}

fn status(message: &Message) -> u16 {
    match message.head {
        Head::Response { status, .. } => status,
        Head::Request { .. } => 0,
    }
}

fn http1_messages(direction: Direction, pieces: &[Vec<u8>]) -> Vec<Message> {
    let mut stream = Http1Stream::new(direction, MAX_BODY);
    let mut messages = Vec::new();
    for piece in pieces {
        messages.extend(stream.feed(piece).unwrap_or_else(|e| panic!("{direction:?}: {e}")));
    }
    messages.extend(stream.finish());
    messages
}

/// Messages by stream id, in the order they completed.
fn http2_messages(direction: Direction, pieces: &[Vec<u8>]) -> Vec<(u32, Message)> {
    let mut stream = Http2Stream::new(direction, MAX_BODY);
    let mut messages = Vec::new();
    for piece in pieces {
        messages.extend(stream.feed(piece).unwrap_or_else(|e| panic!("{direction:?}: {e}")));
    }
    messages.extend(stream.finish());
    messages.into_iter().map(|m| (m.stream_id, m.message)).collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
