//! HTTP/1.1 messages from one direction of a connection, fed in arbitrary
//! pieces: heads parsed by `httparse`, bodies framed by Content-Length,
//! chunked transfer coding or the end of the connection, keep-alive (many
//! messages on one connection), and gzip bodies decoded.
//!
//! Bodies are kept up to a limit; past it the message still frames correctly
//! (the bytes are counted, not kept) and says `truncated`.

pub use crate::message::Direction;
use crate::message::{decode_body, Head, Message};

/// Headers a message may have before it is refused as garbage.
const MAX_HEADERS: usize = 128;
/// A head longer than this is not HTTP/1.1 (or is an attack on the parser).
const MAX_HEAD_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Http1Error {
    #[error("not an HTTP/1.x message: {0}")]
    BadHead(String),
    #[error("message head longer than {MAX_HEAD_BYTES} bytes")]
    HeadTooLong,
    #[error("bad chunk size line")]
    BadChunk,
    #[error("bad Content-Length `{0}`")]
    BadLength(String),
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

#[derive(Debug)]
struct Partial {
    head: Head,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    wire_body_bytes: u64,
    truncated: bool,
    framing: Framing,
    /// Handed out before its framing ended ([`Http1Stream::deliver_early`]):
    /// the rest of it is read and dropped.
    delivered: bool,
}

/// A header's name and value.
pub type Header = (String, String);

/// Reassembles the messages of one direction of one connection.
#[derive(Debug)]
pub struct Http1Stream {
    direction: Direction,
    max_body: usize,
    buf: Vec<u8>,
    partial: Option<Partial>,
    failed: bool,
    /// An error met after messages that the same bytes completed: those are
    /// returned first, the error by the next call.
    deferred: Option<Http1Error>,
}

impl Http1Stream {
    pub fn new(direction: Direction, max_body: usize) -> Self {
        Self { direction, max_body, buf: Vec::new(), partial: None, failed: false, deferred: None }
    }

    /// Adds captured bytes; returns the messages they completed. After an
    /// error the stream stays failed (its framing is lost) and ignores input.
    /// Messages completed before the error are never lost to it, however
    /// capture cut the bytes: they are returned, and the error by the next
    /// call.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Message>, Http1Error> {
        if let Some(err) = self.deferred.take() {
            return Err(err);
        }
        if self.failed {
            return Ok(Vec::new());
        }
        self.buf.extend_from_slice(bytes);
        let mut done = Vec::new();
        loop {
            let progressed = match self.step(&mut done) {
                Ok(progressed) => progressed,
                Err(err) => {
                    self.failed = true;
                    self.buf.clear();
                    if done.is_empty() {
                        return Err(err);
                    }
                    self.deferred = Some(err);
                    return Ok(done);
                }
            };
            if !progressed {
                return Ok(done);
            }
        }
    }

    /// The message being read: its headers and its body so far (as sent,
    /// not yet decoded), unless it was cut at the body limit.
    pub fn in_progress(&self) -> Option<(&[Header], &[u8])> {
        let partial = self.partial.as_ref().filter(|p| !p.delivered && !p.truncated)?;
        Some((&partial.headers, &partial.body))
    }

    /// Hands out the message being read as it is now: its sender has said
    /// all it means to (an LLM stream's terminal event), though the framing
    /// has not ended. What is left of the framing is read and dropped.
    pub fn deliver_early(&mut self) -> Option<Message> {
        let partial = self.partial.as_mut().filter(|p| !p.delivered)?;
        partial.delivered = true;
        Some(complete(Partial {
            head: partial.head.clone(),
            headers: partial.headers.clone(),
            body: partial.body.clone(),
            delivered: false,
            framing: Framing::Length(0),
            ..*partial
        }))
    }

    /// The connection closed: a body framed by the close is complete; any
    /// other unfinished message is returned marked truncated.
    pub fn finish(&mut self) -> Option<Message> {
        let mut partial = self.partial.take().filter(|p| !p.delivered)?;
        if !matches!(partial.framing, Framing::UntilClose) {
            partial.truncated = true;
        }
        Some(complete(partial))
    }

    /// One unit of progress: a head, a run of body bytes, or a chunk line.
    fn step(&mut self, done: &mut Vec<Message>) -> Result<bool, Http1Error> {
        let Some(partial) = self.partial.as_mut() else {
            return self.parse_head(done);
        };
        match partial.framing {
            Framing::Length(0) => {
                done.extend(self.partial.take().filter(|p| !p.delivered).map(complete));
                Ok(true)
            }
            Framing::Length(remaining) => {
                let n = take_body(partial, &mut self.buf, remaining, self.max_body);
                partial.framing = Framing::Length(remaining - n);
                Ok(n > 0 || remaining == n)
            }
            Framing::UntilClose => {
                let n = self.buf.len() as u64;
                take_body(partial, &mut self.buf, n, self.max_body);
                Ok(false)
            }
            Framing::Chunked(Chunk::Size) => {
                let Some(line_end) = find_crlf(&self.buf) else { return Ok(false) };
                let size = match httparse::parse_chunk_size(&self.buf[..line_end + 2]) {
                    Ok(httparse::Status::Complete((_, size))) => size,
                    _ => return Err(Http1Error::BadChunk),
                };
                self.buf.drain(..line_end + 2);
                partial.framing = Framing::Chunked(if size == 0 { Chunk::Trailers } else { Chunk::Data(size) });
                Ok(true)
            }
            Framing::Chunked(Chunk::Data(remaining)) => {
                let n = take_body(partial, &mut self.buf, remaining, self.max_body);
                partial.framing =
                    Framing::Chunked(if n == remaining { Chunk::DataEnd } else { Chunk::Data(remaining - n) });
                Ok(n > 0)
            }
            Framing::Chunked(Chunk::DataEnd) => {
                if self.buf.len() < 2 {
                    return Ok(false);
                }
                if &self.buf[..2] != b"\r\n" {
                    return Err(Http1Error::BadChunk);
                }
                self.buf.drain(..2);
                partial.framing = Framing::Chunked(Chunk::Size);
                Ok(true)
            }
            Framing::Chunked(Chunk::Trailers) => {
                let Some(line_end) = find_crlf(&self.buf) else { return Ok(false) };
                self.buf.drain(..line_end + 2);
                if line_end == 0 {
                    done.extend(self.partial.take().filter(|p| !p.delivered).map(complete));
                }
                Ok(true)
            }
        }
    }

    fn parse_head(&mut self, done: &mut Vec<Message>) -> Result<bool, Http1Error> {
        if self.buf.is_empty() {
            return Ok(false);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (len, head, headers, no_body) = match self.direction {
            Direction::Requests => {
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => {
                        let head = Head::Request {
                            method: req.method.unwrap_or_default().to_string(),
                            target: req.path.unwrap_or_default().to_string(),
                        };
                        (len, head, owned_headers(req.headers), false)
                    }
                    Ok(httparse::Status::Partial) => return self.wait_for_head(),
                    Err(err) => return Err(Http1Error::BadHead(err.to_string())),
                }
            }
            Direction::Responses => {
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = resp.code.unwrap_or_default();
                        let head = Head::Response { status, reason: resp.reason.unwrap_or_default().to_string() };
                        // 1xx, 204 and 304 never have a body.
                        let no_body = status < 200 || status == 204 || status == 304;
                        (len, head, owned_headers(resp.headers), no_body)
                    }
                    Ok(httparse::Status::Partial) => return self.wait_for_head(),
                    Err(err) => return Err(Http1Error::BadHead(err.to_string())),
                }
            }
        };
        self.buf.drain(..len);
        let framing = framing(&headers, self.direction, no_body)?;
        let partial = Partial {
            head,
            headers,
            body: Vec::new(),
            wire_body_bytes: 0,
            truncated: false,
            framing,
            delivered: false,
        };
        if matches!(partial.framing, Framing::Length(0)) {
            done.push(complete(partial));
        } else {
            self.partial = Some(partial);
        }
        Ok(true)
    }

    fn wait_for_head(&self) -> Result<bool, Http1Error> {
        if self.buf.len() > MAX_HEAD_BYTES {
            return Err(Http1Error::HeadTooLong);
        }
        Ok(false)
    }
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers.iter().map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string())).collect()
}

fn framing(headers: &[(String, String)], direction: Direction, no_body: bool) -> Result<Framing, Http1Error> {
    if no_body {
        return Ok(Framing::Length(0));
    }
    let value = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if value("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked")) {
        return Ok(Framing::Chunked(Chunk::Size));
    }
    if let Some(length) = value("content-length") {
        return length.parse().map(Framing::Length).map_err(|_| Http1Error::BadLength(length.to_string()));
    }
    Ok(match direction {
        // A request without either has no body (RFC 9112 §6.3).
        Direction::Requests => Framing::Length(0),
        Direction::Responses => Framing::UntilClose,
    })
}

/// Moves up to `want` buffered bytes into the body (keeping at most
/// `max_body`); returns how many were consumed.
fn take_body(partial: &mut Partial, buf: &mut Vec<u8>, want: u64, max_body: usize) -> u64 {
    let n = (buf.len() as u64).min(want) as usize;
    let keep = n.min(max_body.saturating_sub(partial.body.len()));
    partial.body.extend_from_slice(&buf[..keep]);
    if keep < n {
        partial.truncated = true;
    }
    partial.wire_body_bytes += n as u64;
    buf.drain(..n);
    n as u64
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn complete(partial: Partial) -> Message {
    let mut message = Message {
        head: partial.head,
        headers: partial.headers,
        body: partial.body,
        wire_body_bytes: partial.wire_body_bytes,
        truncated: partial.truncated,
        decode_error: None,
    };
    decode_body(&mut message);
    message
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Feeds `bytes` in pieces of `piece` bytes.
    fn feed_in_pieces(stream: &mut Http1Stream, bytes: &[u8], piece: usize) -> Vec<Message> {
        bytes.chunks(piece).flat_map(|p| stream.feed(p).unwrap()).collect()
    }

    #[test]
    fn keep_alive_requests_with_content_length_split_anywhere() {
        let wire = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example\r\nContent-Length: 5\r\n\r\nhelloGET /v1/models HTTP/1.1\r\nHost: api.example\r\n\r\n";
        for piece in [1, 3, 7, wire.len()] {
            let mut stream = Http1Stream::new(Direction::Requests, 1 << 20);
            let messages = feed_in_pieces(&mut stream, wire, piece);
            assert_eq!(messages.len(), 2, "piece {piece}");
            assert_eq!(
                messages[0].head,
                Head::Request { method: "POST".into(), target: "/v1/chat/completions".into() }
            );
            assert_eq!(messages[0].body, b"hello");
            assert_eq!(messages[0].header("host"), Some("api.example"));
            assert_eq!(messages[1].head, Head::Request { method: "GET".into(), target: "/v1/models".into() });
            assert!(messages[1].body.is_empty());
        }
    }

    #[test]
    fn chunked_responses_with_extensions_and_trailers() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n6\r\npedia \r\n0\r\nX-Trailer: t\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        for piece in [1, 5, wire.len()] {
            let mut stream = Http1Stream::new(Direction::Responses, 1 << 20);
            let messages = feed_in_pieces(&mut stream, wire, piece);
            assert_eq!(messages.len(), 2, "piece {piece}");
            assert_eq!(messages[0].body, b"Wikipedia ");
            assert_eq!(messages[0].head, Head::Response { status: 200, reason: "OK".into() });
            assert_eq!(messages[1].head, Head::Response { status: 204, reason: "No Content".into() });
        }
    }

    #[test]
    fn gzip_bodies_are_decoded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"model":"gpt-4o"}"#).unwrap();
        let body = gz.finish().unwrap();
        let mut wire =
            format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        wire.extend_from_slice(&body);
        let messages = Http1Stream::new(Direction::Responses, 1 << 20).feed(&wire).unwrap();
        assert_eq!(messages[0].body, br#"{"model":"gpt-4o"}"#);
        assert_eq!(messages[0].wire_body_bytes, body.len() as u64);
        assert_eq!(messages[0].decode_error, None);
    }

    #[test]
    fn a_body_over_the_limit_is_cut_and_said_so_and_the_next_message_still_frames() {
        let wire =
            b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nok";
        let messages = Http1Stream::new(Direction::Requests, 4).feed(wire).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            (messages[0].body.as_slice(), messages[0].truncated, messages[0].wire_body_bytes),
            (&b"0123"[..], true, 10)
        );
        assert_eq!((messages[1].body.as_slice(), messages[1].truncated), (&b"ok"[..], false));
    }

    #[test]
    fn a_response_without_length_ends_with_the_connection() {
        let mut stream = Http1Stream::new(Direction::Responses, 1 << 20);
        assert!(stream.feed(b"HTTP/1.0 200 OK\r\n\r\nstreamed ").unwrap().is_empty());
        assert!(stream.feed(b"until close").unwrap().is_empty());
        let message = stream.finish().unwrap();
        assert_eq!((message.body.as_slice(), message.truncated), (&b"streamed until close"[..], false));
    }

    #[test]
    fn a_connection_cut_mid_body_yields_a_truncated_message() {
        let mut stream = Http1Stream::new(Direction::Requests, 1 << 20);
        assert!(stream.feed(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial").unwrap().is_empty());
        let message = stream.finish().unwrap();
        assert!(message.truncated);
        assert_eq!(message.body, b"partial");
    }

    #[test]
    fn garbage_is_an_error_and_the_stream_then_stays_quiet() {
        let mut stream = Http1Stream::new(Direction::Requests, 1 << 20);
        assert!(matches!(stream.feed(b"\x16\x03\x01\x02\x00 not http\r\n\r\n"), Err(Http1Error::BadHead(_))));
        assert!(stream.feed(b"GET / HTTP/1.1\r\n\r\n").unwrap().is_empty());
        let mut stream = Http1Stream::new(Direction::Responses, 1 << 20);
        assert!(matches!(
            stream.feed(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n"),
            Err(Http1Error::BadLength(_))
        ));
        let mut stream = Http1Stream::new(Direction::Responses, 1 << 20);
        assert!(matches!(
            stream.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(Http1Error::BadChunk)
        ));
    }

    #[test]
    fn messages_before_garbage_in_the_same_bytes_are_not_lost() {
        let wire = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n\x16\x03 not http\r\n\r\n";
        let mut stream = Http1Stream::new(Direction::Requests, 1 << 20);
        let messages = stream.feed(wire).unwrap();
        assert_eq!(messages.len(), 2);
        assert!(matches!(stream.feed(b"GET /c HTTP/1.1\r\n\r\n"), Err(Http1Error::BadHead(_))));
        assert!(stream.feed(b"GET /c HTTP/1.1\r\n\r\n").unwrap().is_empty());
        // In pieces, the same messages.
        let mut stream = Http1Stream::new(Direction::Requests, 1 << 20);
        let pieces: Vec<Message> = wire.chunks(7).flat_map(|p| stream.feed(p).unwrap_or_default()).collect();
        assert_eq!(pieces, messages);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let valid =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        for bytes in crate::mangled(valid, 0, 2000) {
            for direction in [Direction::Requests, Direction::Responses] {
                let mut stream = Http1Stream::new(direction, 16);
                let _ = stream.feed(&bytes);
                let _ = stream.finish();
            }
        }
    }
}
