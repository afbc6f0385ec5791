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
//!   not depend on `expected.json`), and a `description`;
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
    let chunks = |bytes: &[u8]| -> Vec<Vec<u8>> {
        match piece {
            Some(n) => bytes.chunks(n).map(<[u8]>::to_vec).collect(),
            None => vec![bytes.to_vec()],
        }
    };
    let exchanges: Vec<(u32, Message, Message)> = match case.protocol {
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
    };
    let catalog = EndpointCatalog::default();
    exchanges
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
