//! TLS plaintext back into HTTP exchanges, one connection at a time.
//!
//! The kernel sends each TLS call's plaintext as pieces (offset, length, and
//! the call's total); a connection puts the pieces of its writes and of its
//! reads back in order, notices what is missing (a piece a full ring refused,
//! bytes past the capture limit) and feeds the HTTP/1.1 or HTTP/2 parser of
//! that direction. Requests are paired with their responses (in order on
//! HTTP/1.1, by stream on HTTP/2) and timed: first request byte, first
//! response byte, last response byte.

use std::collections::{HashMap, VecDeque};

use plumbline_intent::{
    http1::Http1Stream,
    http2::{Http2Stream, StreamMessage},
    llm::stream_ended,
    message::Direction,
    Head, Message,
};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A request and its response, with when things happened (boot-clock ns).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Message,
    pub response: Message,
    pub protocol: &'static str,
    pub start_ns: u64,
    pub first_response_ns: u64,
    pub end_ns: u64,
    /// Plaintext of this connection known lost since the previous exchange.
    pub bytes_lost: u64,
}

/// One piece of plaintext as the kernel sent it.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    pub write: bool,
    pub call_start_ns: u64,
    pub ts_ns: u64,
    pub call_len: u64,
    pub offset: u64,
    pub data: &'a [u8],
}

/// Where one direction's current call has got to.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    call_start_ns: u64,
    next_offset: u64,
    /// Bytes of the call that will be sent (the call's length, capped).
    expected: u64,
    call_len: u64,
}

struct Pending {
    request: Message,
    start_ns: u64,
    first_response_ns: Option<u64>,
}

enum Protocol {
    Undecided,
    Http1 {
        requests: Http1Stream,
        responses: Http1Stream,
        pending: VecDeque<Pending>,
    },
    Http2 {
        requests: Http2Stream,
        responses: Http2Stream,
        pending: HashMap<u32, Pending>,
    },
    /// HTTP/2 after lost bytes: HPACK state is gone, nothing more can be read.
    Lost,
}

pub struct Connection {
    protocol: Protocol,
    cursors: [Cursor; 2],
    /// The direction lost bytes and waits for a message boundary.
    desynced: [bool; 2],
    request_start: Option<u64>,
    bytes_lost: u64,
    /// Every byte ever known lost on this connection.
    total_lost: u64,
    max_body: usize,
    max_capture: u64,
    pub last_ns: u64,
}

impl Connection {
    pub fn new(max_body: usize, max_capture: u64) -> Self {
        Self {
            protocol: Protocol::Undecided,
            cursors: [Cursor::default(); 2],
            desynced: [false; 2],
            request_start: None,
            bytes_lost: 0,
            total_lost: 0,
            max_body,
            max_capture,
            last_ns: 0,
        }
    }

    /// Every byte known lost on this connection so far.
    pub fn total_lost(&self) -> u64 {
        self.total_lost
    }

    /// Bytes known lost and not yet attributed to an exchange.
    pub fn unattributed_loss(&self) -> u64 {
        self.bytes_lost
    }

    /// Takes one piece; returns the exchanges it completed.
    pub fn feed(&mut self, piece: Piece<'_>) -> Vec<Exchange> {
        self.last_ns = self.last_ns.max(piece.ts_ns);
        let side = usize::from(!piece.write);
        self.account(side, &piece);
        if piece.offset == 0 && piece.write && piece.data.starts_with(H2_PREFACE) {
            // A new connection on a reused SSL object, or the first bytes.
            self.protocol = Protocol::Http2 {
                requests: Http2Stream::new(Direction::Requests, self.max_body),
                responses: Http2Stream::new(Direction::Responses, self.max_body),
                pending: HashMap::new(),
            };
            self.desynced = [false; 2];
        }
        if self.desynced[side] {
            if piece.offset != 0 || !starts_message(piece.write, piece.data) {
                return Vec::new();
            }
            // A message starts at this call: read again from here.
            self.resync();
        }
        if matches!(self.protocol, Protocol::Undecided) {
            if !piece.write {
                return Vec::new();
            }
            self.protocol = Protocol::Http1 {
                requests: Http1Stream::new(Direction::Requests, self.max_body),
                responses: Http1Stream::new(Direction::Responses, self.max_body),
                pending: VecDeque::new(),
            };
        }
        if piece.write && self.request_start.is_none() {
            self.request_start = Some(piece.call_start_ns);
        }
        let mut done = Vec::new();
        match &mut self.protocol {
            Protocol::Http1 { requests, responses, pending } => {
                if piece.write {
                    for request in requests.feed(piece.data).unwrap_or_default() {
                        let start_ns = self.request_start.take().unwrap_or(piece.call_start_ns);
                        pending.push_back(Pending { request, start_ns, first_response_ns: None });
                    }
                } else {
                    if let Some(front) = pending.front_mut() {
                        front.first_response_ns.get_or_insert(piece.ts_ns);
                    }
                    for response in responses.feed(piece.data).unwrap_or_default() {
                        if matches!(response.head, Head::Response { status: 100..=199, .. }) {
                            continue;
                        }
                        if let Some(p) = pending.pop_front() {
                            done.push(exchange(p, response, "HTTP/1.1", piece.ts_ns));
                        }
                    }
                    // A stream whose terminal event came is over for its
                    // client, whenever its framing ends.
                    let ended = responses.in_progress().is_some_and(|(headers, body)| stream_ended(headers, body));
                    if ended && !pending.is_empty() {
                        if let (Some(response), Some(p)) = (responses.deliver_early(), pending.pop_front()) {
                            done.push(exchange(p, response, "HTTP/1.1", piece.ts_ns));
                        }
                    }
                }
            }
            Protocol::Http2 { requests, responses, pending } => {
                if piece.write {
                    for StreamMessage { stream_id, message, reset } in requests.feed(piece.data).unwrap_or_default() {
                        let start_ns = self.request_start.take().unwrap_or(piece.call_start_ns);
                        if !reset {
                            pending.insert(stream_id, Pending { request: message, start_ns, first_response_ns: None });
                        }
                    }
                } else {
                    for p in pending.values_mut() {
                        p.first_response_ns.get_or_insert(piece.ts_ns);
                    }
                    for StreamMessage { stream_id, message, reset } in responses.feed(piece.data).unwrap_or_default() {
                        if let Some(p) = pending.remove(&stream_id) {
                            if !reset {
                                done.push(exchange(p, message, "HTTP/2", piece.ts_ns));
                            }
                        }
                    }
                }
            }
            Protocol::Undecided | Protocol::Lost => {}
        }
        self.attribute_loss(&mut done);
        done
    }

    /// The connection is over (idle, or its process exited): a response
    /// whose body ran until the close is complete now.
    pub fn finish(&mut self) -> Vec<Exchange> {
        let mut done = Vec::new();
        let end = self.last_ns;
        match &mut self.protocol {
            Protocol::Http1 { responses, pending, .. } => {
                if let (Some(response), Some(p)) = (responses.finish(), pending.pop_front()) {
                    done.push(exchange(p, response, "HTTP/1.1", end));
                }
            }
            Protocol::Http2 { responses, pending, .. } => {
                for StreamMessage { stream_id, message, .. } in responses.finish() {
                    if let Some(p) = pending.remove(&stream_id) {
                        done.push(exchange(p, message, "HTTP/2", end));
                    }
                }
            }
            Protocol::Undecided | Protocol::Lost => {}
        }
        self.attribute_loss(&mut done);
        done
    }

    fn attribute_loss(&mut self, done: &mut [Exchange]) {
        if let Some(first) = done.first_mut() {
            first.bytes_lost += std::mem::take(&mut self.bytes_lost);
        }
    }

    /// Checks the piece against its call: gaps and cut tails are lost bytes.
    fn account(&mut self, side: usize, piece: &Piece<'_>) {
        let cursor = &mut self.cursors[side];
        let mut lost = 0;
        if piece.call_start_ns != cursor.call_start_ns || piece.offset == 0 {
            // A new call: what the previous one did not deliver is lost.
            lost += cursor.expected.saturating_sub(cursor.next_offset);
            if cursor.call_len > cursor.expected {
                lost += cursor.call_len - cursor.expected;
            }
            *cursor = Cursor {
                call_start_ns: piece.call_start_ns,
                next_offset: 0,
                expected: piece.call_len.min(self.max_capture),
                call_len: piece.call_len,
            };
        }
        if piece.offset > cursor.next_offset {
            lost += piece.offset - cursor.next_offset;
        }
        cursor.next_offset = piece.offset + piece.data.len() as u64;
        if cursor.next_offset >= cursor.expected && cursor.call_len > cursor.expected {
            // Cut at the capture limit: the rest of the call never comes.
            lost += cursor.call_len - cursor.expected;
            cursor.call_len = cursor.expected;
        }
        if lost > 0 {
            self.lose(lost, side);
        }
    }

    fn lose(&mut self, bytes: u64, side: usize) {
        self.bytes_lost += bytes;
        self.total_lost += bytes;
        match self.protocol {
            Protocol::Http2 { .. } => self.protocol = Protocol::Lost,
            _ => self.desynced[side] = true,
        }
    }

    /// Starts reading HTTP/1.1 afresh at a message boundary.
    fn resync(&mut self) {
        if let Protocol::Http1 { requests, responses, pending } = &mut self.protocol {
            *requests = Http1Stream::new(Direction::Requests, self.max_body);
            *responses = Http1Stream::new(Direction::Responses, self.max_body);
            pending.clear();
        }
        self.request_start = None;
        self.desynced = [false; 2];
    }
}

fn exchange(p: Pending, response: Message, protocol: &'static str, end_ns: u64) -> Exchange {
    Exchange {
        request: p.request,
        response,
        protocol,
        start_ns: p.start_ns,
        first_response_ns: p.first_response_ns.unwrap_or(end_ns),
        end_ns,
        bytes_lost: 0,
    }
}

/// Does a call start an HTTP/1.1 message in this direction?
fn starts_message(write: bool, data: &[u8]) -> bool {
    if write {
        const METHODS: [&[u8]; 9] =
            [b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"CONNECT ", b"TRACE "];
        METHODS.iter().any(|m| data.starts_with(m))
    } else {
        data.starts_with(b"HTTP/1.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(write: bool, start: u64, call_len: usize, offset: usize, data: &[u8]) -> Piece<'_> {
        Piece { write, call_start_ns: start, ts_ns: start + 1, call_len: call_len as u64, offset: offset as u64, data }
    }

    const REQUEST: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

    #[test]
    fn a_request_written_in_pieces_pairs_with_its_response_and_is_timed() {
        let mut c = Connection::new(1 << 20, 1 << 20);
        assert!(c.feed(piece(true, 100, REQUEST.len(), 0, &REQUEST[..10])).is_empty());
        assert!(c.feed(piece(true, 100, REQUEST.len(), 10, &REQUEST[10..])).is_empty());
        assert!(c.feed(piece(false, 200, 17, 0, &RESPONSE[..17])).is_empty());
        let done = c.feed(piece(false, 300, RESPONSE.len() - 17, 0, &RESPONSE[17..]));
        assert_eq!(done.len(), 1);
        let e = &done[0];
        assert_eq!((e.start_ns, e.first_response_ns, e.end_ns, e.bytes_lost), (100, 201, 301, 0));
        assert_eq!(e.protocol, "HTTP/1.1");
    }

    #[test]
    fn a_missing_piece_is_counted_and_the_next_exchange_still_reads() {
        let mut c = Connection::new(1 << 20, 1 << 20);
        // First request: its second piece never arrives.
        c.feed(piece(true, 100, REQUEST.len(), 0, &REQUEST[..10]));
        c.feed(piece(true, 150, REQUEST.len(), 0, REQUEST));
        let done = c.feed(piece(false, 200, RESPONSE.len(), 0, RESPONSE));
        assert_eq!(done.len(), 1, "the complete second request pairs with the response");
        assert_eq!(done[0].bytes_lost, (REQUEST.len() - 10) as u64);
        assert_eq!(c.unattributed_loss(), 0);
    }

    #[test]
    fn a_stream_is_complete_at_its_terminal_event_before_its_last_chunk() {
        const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        const EVENTS: &[u8] = b"24\r\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n\r\n";
        let mut c = Connection::new(1 << 20, 1 << 20);
        c.feed(piece(true, 100, REQUEST.len(), 0, REQUEST));
        assert!(c.feed(piece(false, 200, HEAD.len(), 0, HEAD)).is_empty());
        let done = c.feed(piece(false, 300, EVENTS.len(), 0, EVENTS));
        assert_eq!(done.len(), 1, "the [DONE] event completes the call");
        assert_eq!(done[0].end_ns, 301);
        assert!(done[0].response.body.ends_with(b"data: [DONE]\n\n"));
        // The last chunk, read later or never, yields nothing more; the next
        // exchange on the connection still pairs.
        assert!(c.feed(piece(false, 400, 5, 0, b"0\r\n\r\n")).is_empty());
        assert!(c.finish().is_empty());
        c.feed(piece(true, 500, REQUEST.len(), 0, REQUEST));
        let done = c.feed(piece(false, 600, RESPONSE.len(), 0, RESPONSE));
        assert_eq!((done.len(), done[0].start_ns), (1, 500));
    }

    #[test]
    fn bytes_past_the_capture_limit_are_lost_not_silent() {
        let mut c = Connection::new(1 << 20, 16);
        c.feed(piece(true, 100, REQUEST.len(), 0, &REQUEST[..16]));
        assert_eq!(c.unattributed_loss(), (REQUEST.len() - 16) as u64);
    }
}
