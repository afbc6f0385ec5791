//! A request or response as the application saw it, whichever HTTP version
//! carried it.

use std::io::Read;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    Request { method: String, target: String },
    Response { status: u16, reason: String },
}

/// Which side of the connection the bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server: requests.
    Requests,
    /// Server to client: responses.
    Responses,
}

/// One complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub head: Head,
    /// Header names lower-cased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The body as the application sees it: de-chunked and, for gzip, decoded.
    pub body: Vec<u8>,
    /// Body bytes on the wire (after de-chunking, before decoding).
    pub wire_body_bytes: u64,
    /// The body was longer than the limit; `body` holds its beginning.
    pub truncated: bool,
    /// Why `body` is still encoded, when decoding failed.
    pub decode_error: Option<String>,
}

impl Message {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Decodes a gzip body in place (a cut body as far as it goes); on failure
/// the body stays as sent and `decode_error` says why.
pub fn decode_body(message: &mut Message) {
    let encoding = message.header("content-encoding").map(str::to_ascii_lowercase);
    if !matches!(encoding.as_deref(), Some("gzip" | "x-gzip")) || message.body.is_empty() {
        return;
    }
    let mut decoded = Vec::new();
    match flate2::read::MultiGzDecoder::new(message.body.as_slice()).read_to_end(&mut decoded) {
        Ok(_) => message.body = decoded,
        Err(_) if message.truncated && !decoded.is_empty() => message.body = decoded,
        Err(err) => message.decode_error = Some(format!("gzip: {err}")),
    }
}
