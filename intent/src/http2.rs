//! HTTP/2 messages from one direction of a connection, fed in arbitrary
//! pieces: frames reassembled, header blocks (HEADERS + CONTINUATION)
//! decoded with HPACK (`loona-hpack`, one decoder per direction, as the
//! protocol keeps one table per direction), DATA gathered per stream, and a
//! message completed by END_STREAM — many streams interleaved.
//!
//! Every header block is decoded, even of streams not kept, or the HPACK
//! table would drift and every later header would be wrong.

use std::collections::HashMap;

use crate::message::{decode_body, Direction, Head, Message};

/// What a client sends before its first frame.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const FRAME_HEADER: usize = 9;
/// The largest frame a peer may be allowed to send (2^24 - 1).
const MAX_FRAME: usize = (1 << 24) - 1;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Http2Error {
    #[error("the client's connection preface is missing")]
    NoPreface,
    #[error("frame of {0} bytes is larger than HTTP/2 allows")]
    FrameTooLarge(usize),
    #[error("malformed {0} frame")]
    BadFrame(&'static str),
    #[error("HPACK: {0}")]
    Hpack(String),
}

/// A message of one stream, or the news that a stream was reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMessage {
    pub stream_id: u32,
    pub message: Message,
    /// Reset (RST_STREAM) before it ended: `message` holds what came.
    pub reset: bool,
}

#[derive(Debug, Default)]
struct Stream {
    head: Option<(Head, Vec<(String, String)>)>,
    body: Vec<u8>,
    wire_body_bytes: u64,
    truncated: bool,
}

/// A header block being gathered across HEADERS and CONTINUATION frames.
#[derive(Debug)]
struct Block {
    stream_id: u32,
    end_stream: bool,
    fragment: Vec<u8>,
}

/// Reassembles the messages of one direction of one HTTP/2 connection.
pub struct Http2Stream {
    direction: Direction,
    max_body: usize,
    buf: Vec<u8>,
    preface_pending: bool,
    hpack: loona_hpack::Decoder<'static>,
    streams: HashMap<u32, Stream>,
    block: Option<Block>,
    failed: bool,
    /// An error met after messages that the same bytes completed: those are
    /// returned first, the error by the next call.
    deferred: Option<Http2Error>,
}

impl std::fmt::Debug for Http2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Stream")
            .field("direction", &self.direction)
            .field("streams", &self.streams.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl Http2Stream {
    pub fn new(direction: Direction, max_body: usize) -> Self {
        Self {
            direction,
            max_body,
            buf: Vec::new(),
            preface_pending: direction == Direction::Requests,
            hpack: loona_hpack::Decoder::new(),
            streams: HashMap::new(),
            block: None,
            failed: false,
            deferred: None,
        }
    }

    /// Adds captured bytes; returns the messages they completed. After an
    /// error the connection's state is lost and the stream ignores input.
    /// Messages completed before the error are never lost to it, however
    /// capture cut the bytes: they are returned, and the error by the next
    /// call.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<StreamMessage>, Http2Error> {
        if let Some(err) = self.deferred.take() {
            return Err(err);
        }
        if self.failed {
            return Ok(Vec::new());
        }
        self.buf.extend_from_slice(bytes);
        let mut done = Vec::new();
        let Err(err) = self.frames(&mut done) else { return Ok(done) };
        self.failed = true;
        self.buf.clear();
        self.streams.clear();
        if done.is_empty() {
            return Err(err);
        }
        self.deferred = Some(err);
        Ok(done)
    }

    /// The connection closed: every stream still open, cut short.
    pub fn finish(&mut self) -> Vec<StreamMessage> {
        let mut open: Vec<_> = self.streams.drain().collect();
        open.sort_by_key(|(id, _)| *id);
        open.into_iter()
            .filter_map(|(stream_id, mut stream)| {
                stream.truncated = true;
                complete(stream_id, stream, false)
            })
            .collect()
    }

    fn frames(&mut self, done: &mut Vec<StreamMessage>) -> Result<(), Http2Error> {
        if self.preface_pending {
            let n = self.buf.len().min(PREFACE.len());
            if self.buf[..n] != PREFACE[..n] {
                return Err(Http2Error::NoPreface);
            }
            if n < PREFACE.len() {
                return Ok(());
            }
            self.buf.drain(..PREFACE.len());
            self.preface_pending = false;
        }
        while self.buf.len() >= FRAME_HEADER {
            let len = usize::from(self.buf[0]) << 16 | usize::from(self.buf[1]) << 8 | usize::from(self.buf[2]);
            if len > MAX_FRAME {
                return Err(Http2Error::FrameTooLarge(len));
            }
            if self.buf.len() < FRAME_HEADER + len {
                return Ok(());
            }
            let (kind, flags) = (self.buf[3], self.buf[4]);
            let stream_id = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = self.buf.drain(..FRAME_HEADER + len).skip(FRAME_HEADER).collect();
            self.frame(kind, flags, stream_id, payload, done)?;
        }
        Ok(())
    }

    fn frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream_id: u32,
        payload: Vec<u8>,
        done: &mut Vec<StreamMessage>,
    ) -> Result<(), Http2Error> {
        if self.block.is_some() && kind != CONTINUATION {
            return Err(Http2Error::BadFrame("interleaved header block"));
        }
        match kind {
            HEADERS => {
                let mut fragment = unpad(&payload, flags, "HEADERS")?;
                if flags & PRIORITY != 0 {
                    fragment = fragment.get(5..).ok_or(Http2Error::BadFrame("HEADERS"))?;
                }
                self.block =
                    Some(Block { stream_id, end_stream: flags & END_STREAM != 0, fragment: fragment.to_vec() });
                if flags & END_HEADERS != 0 {
                    self.end_block(done)?;
                }
            }
            CONTINUATION => {
                let block = self.block.as_mut().ok_or(Http2Error::BadFrame("CONTINUATION"))?;
                if block.stream_id != stream_id {
                    return Err(Http2Error::BadFrame("CONTINUATION"));
                }
                block.fragment.extend_from_slice(&payload);
                if flags & END_HEADERS != 0 {
                    self.end_block(done)?;
                }
            }
            PUSH_PROMISE => {
                // Its header block still moves the HPACK table.
                let fragment = unpad(&payload, flags, "PUSH_PROMISE")?;
                let fragment = fragment.get(4..).ok_or(Http2Error::BadFrame("PUSH_PROMISE"))?;
                self.hpack.decode(fragment).map_err(|e| Http2Error::Hpack(format!("{e:?}")))?;
            }
            DATA => {
                let data = unpad(&payload, flags, "DATA")?;
                let stream = self.streams.entry(stream_id).or_default();
                let keep = data.len().min(self.max_body.saturating_sub(stream.body.len()));
                stream.body.extend_from_slice(&data[..keep]);
                stream.truncated |= keep < data.len();
                stream.wire_body_bytes += data.len() as u64;
                if flags & END_STREAM != 0 {
                    self.end_stream(stream_id, false, done);
                }
            }
            RST_STREAM => self.end_stream(stream_id, true, done),
            // SETTINGS, PING, GOAWAY, WINDOW_UPDATE, PRIORITY and unknown
            // types carry nothing of the messages.
            _ => {}
        }
        Ok(())
    }

    fn end_block(&mut self, done: &mut Vec<StreamMessage>) -> Result<(), Http2Error> {
        let block = self.block.take().expect("called with a block");
        let fields = self.hpack.decode(&block.fragment).map_err(|e| Http2Error::Hpack(format!("{e:?}")))?;
        let stream = self.streams.entry(block.stream_id).or_default();
        if stream.head.is_none() {
            stream.head = Some(head(&fields));
        } else if let Some((_, headers)) = stream.head.as_mut() {
            // Trailers.
            headers.extend(regular(&fields));
        }
        if block.end_stream {
            self.end_stream(block.stream_id, false, done);
        }
        Ok(())
    }

    fn end_stream(&mut self, stream_id: u32, reset: bool, done: &mut Vec<StreamMessage>) {
        if let Some(mut stream) = self.streams.remove(&stream_id) {
            stream.truncated |= reset;
            done.extend(complete(stream_id, stream, reset));
        }
    }
}

/// A frame's payload without its padding.
fn unpad<'a>(payload: &'a [u8], flags: u8, frame: &'static str) -> Result<&'a [u8], Http2Error> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let pad = usize::from(*payload.first().ok_or(Http2Error::BadFrame(frame))?);
    payload.get(1..payload.len().saturating_sub(pad)).filter(|_| pad < payload.len()).ok_or(Http2Error::BadFrame(frame))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn regular(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    fields.iter().filter(|(n, _)| !n.starts_with(b":")).map(|(n, v)| (text(n).to_ascii_lowercase(), text(v))).collect()
}

fn head(fields: &[(Vec<u8>, Vec<u8>)]) -> (Head, Vec<(String, String)>) {
    let pseudo = |name: &[u8]| fields.iter().find(|(n, _)| n == name).map(|(_, v)| text(v));
    let head = match pseudo(b":status") {
        Some(status) => Head::Response { status: status.parse().unwrap_or(0), reason: String::new() },
        None => Head::Request {
            method: pseudo(b":method").unwrap_or_default(),
            target: match (pseudo(b":authority"), pseudo(b":path")) {
                (_, Some(path)) => path,
                (Some(authority), None) => authority,
                (None, None) => String::new(),
            },
        },
    };
    let mut headers = regular(fields);
    if let Some(authority) = pseudo(b":authority") {
        // HTTP/1.1's Host, so readers need not know the version.
        headers.insert(0, ("host".into(), authority));
    }
    (head, headers)
}

fn complete(stream_id: u32, stream: Stream, reset: bool) -> Option<StreamMessage> {
    // A stream reset before its headers has nothing to show.
    let (head, headers) = stream.head?;
    let mut message = Message {
        head,
        headers,
        body: stream.body,
        wire_body_bytes: stream.wire_body_bytes,
        truncated: stream.truncated,
        decode_error: None,
    };
    decode_body(&mut message);
    Some(StreamMessage { stream_id, message, reset })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&stream_id.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn block(encoder: &mut loona_hpack::Encoder<'_>, fields: &[(&str, &str)]) -> Vec<u8> {
        encoder.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    /// Two interleaved requests, one with its headers split over a
    /// CONTINUATION, the other padded; a SETTINGS frame between.
    fn client_bytes() -> Vec<u8> {
        let mut enc = loona_hpack::Encoder::new();
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(0x4, 0, 0, &[]));
        let first = block(
            &mut enc,
            &[(":method", "POST"), (":path", "/v1/messages"), (":authority", "api.example"), ("x-api-key", "k")],
        );
        let (a, b) = first.split_at(first.len() / 2);
        wire.extend(frame(HEADERS, 0, 1, a));
        wire.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        let second = block(&mut enc, &[(":method", "POST"), (":path", "/v1/messages"), (":authority", "api.example")]);
        wire.extend(frame(HEADERS, END_HEADERS, 3, &second));
        wire.extend(frame(DATA, 0, 1, b"{\"model\":"));
        let mut padded = vec![3];
        padded.extend_from_slice(b"{\"b\":2}");
        padded.extend_from_slice(&[0, 0, 0]);
        wire.extend(frame(DATA, END_STREAM | PADDED, 3, &padded));
        wire.extend(frame(DATA, END_STREAM, 1, b"\"claude\"}"));
        wire
    }

    #[test]
    fn interleaved_streams_reassemble_in_any_pieces() {
        let wire = client_bytes();
        for piece in [1, 7, 100, wire.len()] {
            let mut stream = Http2Stream::new(Direction::Requests, 1 << 20);
            let done: Vec<StreamMessage> = wire.chunks(piece).flat_map(|p| stream.feed(p).unwrap()).collect();
            assert_eq!(done.len(), 2, "piece {piece}");
            assert_eq!((done[0].stream_id, done[0].message.body.as_slice()), (3, &b"{\"b\":2}"[..]));
            assert_eq!((done[1].stream_id, done[1].message.body.as_slice()), (1, &b"{\"model\":\"claude\"}"[..]));
            assert_eq!(done[1].message.head, Head::Request { method: "POST".into(), target: "/v1/messages".into() });
            assert_eq!(done[1].message.header("host"), Some("api.example"));
            assert_eq!(done[1].message.header("x-api-key"), Some("k"));
            // The second block used the table the first one filled.
            assert_eq!(done[0].message.header("host"), Some("api.example"));
        }
    }

    #[test]
    fn responses_with_trailers_and_resets() {
        let mut enc = loona_hpack::Encoder::new();
        let mut wire = frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&mut enc, &[(":status", "200"), ("content-type", "text/event-stream")]),
        );
        wire.extend(frame(DATA, 0, 1, b"data: hi\n\n"));
        wire.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &block(&mut enc, &[("grpc-status", "0")])));
        wire.extend(frame(HEADERS, END_HEADERS, 3, &block(&mut enc, &[(":status", "200")])));
        wire.extend(frame(DATA, 0, 3, b"partial"));
        wire.extend(frame(RST_STREAM, 0, 3, &8u32.to_be_bytes()));
        let done = Http2Stream::new(Direction::Responses, 1 << 20).feed(&wire).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].message.head, Head::Response { status: 200, reason: String::new() });
        assert_eq!(done[0].message.body, b"data: hi\n\n");
        assert_eq!(done[0].message.header("grpc-status"), Some("0"));
        assert!(done[1].reset && done[1].message.truncated);
        assert_eq!(done[1].message.body, b"partial");
    }

    #[test]
    fn a_body_over_the_limit_is_cut_and_said_so() {
        let mut enc = loona_hpack::Encoder::new();
        let mut wire = frame(HEADERS, END_HEADERS, 1, &block(&mut enc, &[(":status", "200")]));
        wire.extend(frame(DATA, END_STREAM, 1, &[b'x'; 100]));
        let done = Http2Stream::new(Direction::Responses, 10).feed(&wire).unwrap();
        assert_eq!(
            (done[0].message.body.len(), done[0].message.truncated, done[0].message.wire_body_bytes),
            (10, true, 100)
        );
    }

    #[test]
    fn messages_before_a_bad_frame_in_the_same_bytes_are_not_lost() {
        let mut wire = client_bytes();
        // A CONTINUATION that continues nothing.
        wire.extend(frame(CONTINUATION, END_HEADERS, 5, b"x"));
        let mut stream = Http2Stream::new(Direction::Requests, 1 << 20);
        let done = stream.feed(&wire).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(stream.feed(b""), Err(Http2Error::BadFrame("CONTINUATION")));
        assert_eq!(stream.feed(&frame(DATA, END_STREAM, 7, b"")), Ok(Vec::new()));
    }

    #[test]
    fn garbage_is_an_error_and_never_a_panic() {
        assert_eq!(
            Http2Stream::new(Direction::Requests, 1 << 20).feed(b"GET / HTTP/1.1\r\n\r\n"),
            Err(Http2Error::NoPreface)
        );
        for bytes in crate::mangled(&client_bytes(), PREFACE.len(), 2000) {
            let mut stream = Http2Stream::new(Direction::Requests, 64);
            let _ = stream.feed(&bytes);
            let _ = stream.finish();
        }
    }
}
