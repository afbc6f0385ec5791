//! Arbitrary bytes through every parser: the bodies of the cargo-fuzz
//! targets in `fuzz/`, here so that the tests replay the saved corpus
//! through exactly what the fuzzer ran. Each body panics only when a parser
//! does, or when a property fails: the parsers must read the same bytes the
//! same way however capture cut them into pieces.

use std::sync::LazyLock;

use crate::{
    endpoints::EndpointCatalog,
    http1::{Direction, Http1Stream},
    http2::{Http2Stream, StreamMessage},
    llm::{interpret, Format},
    sse::{SseEvent, SseParser},
    Head, Message,
};

static CATALOG: LazyLock<EndpointCatalog> = LazyLock::new(EndpointCatalog::default);

/// How the first byte of an input steers a stream parser: direction (bit
/// 0), a small body limit (bit 1) and the piece size (bits 2-7, plus one).
struct Steer {
    direction: Direction,
    max_body: usize,
    piece: usize,
}

fn steer(control: u8) -> Steer {
    Steer {
        direction: if control & 1 == 0 { Direction::Requests } else { Direction::Responses },
        max_body: if control & 2 == 0 { 1 << 16 } else { 16 },
        piece: usize::from(control >> 2) + 1,
    }
}

/// An HTTP/1.1 stream fed whole and in pieces reads the same messages; the
/// requests among them go through the endpoint catalog, and those it finds
/// through `interpret`.
pub fn http1(data: &[u8]) {
    let Some((&control, bytes)) = data.split_first() else { return };
    let Steer { direction, max_body, piece } = steer(control);
    let read = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut stream = Http1Stream::new(direction, max_body);
        let mut messages: Vec<Message> = pieces.flat_map(|p| stream.feed(p).unwrap_or_default()).collect();
        messages.extend(stream.finish());
        messages
    };
    let whole = read(&mut std::iter::once(bytes));
    let pieces = read(&mut bytes.chunks(piece));
    assert_eq!(whole, pieces, "HTTP/1.1 read differently in pieces of {piece}");
    whole.iter().for_each(interpret_request);
}

/// The same for HTTP/2; bit 1 of the first byte also puts the client
/// preface before the bytes, so that the frames are reached.
pub fn http2(data: &[u8]) {
    let Some((&control, bytes)) = data.split_first() else { return };
    let Steer { direction, max_body, piece } = steer(control);
    let mut input = Vec::new();
    if control & 2 != 0 {
        input.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    }
    input.extend_from_slice(bytes);
    let read = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut stream = Http2Stream::new(direction, max_body);
        let mut messages: Vec<StreamMessage> = pieces.flat_map(|p| stream.feed(p).unwrap_or_default()).collect();
        messages.extend(stream.finish());
        messages
    };
    let whole = read(&mut std::iter::once(input.as_slice()));
    let pieces = read(&mut input.chunks(piece));
    assert_eq!(whole, pieces, "HTTP/2 read differently in pieces of {piece}");
    whole.iter().for_each(|m| interpret_request(&m.message));
}

/// Server-sent events fed whole and in pieces dispatch the same events.
pub fn sse(data: &[u8]) {
    let Some((&control, bytes)) = data.split_first() else { return };
    let piece = usize::from(control) + 1;
    let whole = SseParser::new().feed(bytes);
    let mut parser = SseParser::new();
    let pieces: Vec<SseEvent> = bytes.chunks(piece).flat_map(|p| parser.feed(p)).collect();
    assert_eq!(whole, pieces, "server-sent events read differently in pieces of {piece}");
}

/// Request targets an input may pick (Gemini reads the URL).
const TARGETS: [&str; 4] = [
    "/v1/chat/completions",
    "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    "/v1beta/models/gemini-2.5-flash:generateContent",
    "/v1beta/models/gemini-embedding-001:embedContent",
];
const CONTENT_TYPES: [Option<&str>; 4] =
    [None, Some("application/json"), Some("text/event-stream; charset=utf-8"), Some("application/stream+json")];
const STATUSES: [u16; 4] = [200, 400, 429, 500];

/// One exchange through `interpret`: the first byte picks the format; the
/// second the target (bits 0-1), the response's content type (bits 2-3) and
/// status (bits 4-5); two more give the request body's length
/// (little-endian); the request body and then the response body follow.
pub fn llm(data: &[u8]) {
    let [format, shape, len_lo, len_hi, rest @ ..] = data else { return };
    let format = Format::ALL[usize::from(*format) % Format::ALL.len()];
    let pick = |shift: u8| usize::from((shape >> shift) & 3);
    let split = usize::from(u16::from_le_bytes([*len_lo, *len_hi])).min(rest.len());
    let (request_body, response_body) = rest.split_at(split);
    let request = Message {
        head: Head::Request { method: "POST".into(), target: TARGETS[pick(0)].into() },
        headers: vec![("content-type".into(), "application/json".into())],
        body: request_body.to_vec(),
        wire_body_bytes: request_body.len() as u64,
        truncated: false,
        decode_error: None,
    };
    let response = Message {
        head: Head::Response { status: STATUSES[pick(4)], reason: String::new() },
        headers: CONTENT_TYPES[pick(2)].map(|t| ("content-type".to_string(), t.to_string())).into_iter().collect(),
        body: response_body.to_vec(),
        wire_body_bytes: response_body.len() as u64,
        truncated: false,
        decode_error: None,
    };
    let call = interpret(format, &request, &response);
    // The agent and the golden tests serialize what `interpret` read.
    serde_json::to_value(&call).expect("an LlmCall serializes");
}

/// A request found in the catalog is interpreted against an empty answer.
fn interpret_request(message: &Message) {
    let Head::Request { target, .. } = &message.head else { return };
    let host = message.header("host").unwrap_or_default();
    if let Some(endpoint) = CATALOG.find(host, target) {
        let response = Message {
            head: Head::Response { status: 200, reason: String::new() },
            headers: Vec::new(),
            body: Vec::new(),
            wire_body_bytes: 0,
            truncated: false,
            decode_error: None,
        };
        let _ = interpret(endpoint.format, message, &response);
    }
}
