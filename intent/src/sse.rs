//! Server-sent events (the WHATWG `text/event-stream` format) from a body fed
//! in arbitrary pieces: lines end in LF, CRLF or CR; `data:` lines join with
//! LF; a blank line dispatches; `:` starts a comment. Streaming LLM APIs
//! (OpenAI, Anthropic, Gemini with `alt=sse`, ...) answer this way.

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; None means the default type, "message".
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous piece ended in CR: a following LF belongs to it.
    after_cr: bool,
    event: Option<String>,
    /// Data lines so far, each followed by LF.
    data: String,
    id: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds body bytes; returns the events they completed. An event still
    /// open when the stream ends is dropped, as the format says.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line) {
                        events.push(event);
                    }
                }
                _ => self.line.push(b),
            }
        }
        events
    }

    fn line_done(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            // Dispatch: without data there is no event (its type is reset,
            // its id kept as the last event id).
            let mut data = std::mem::take(&mut self.data);
            let event = self.event.take();
            if data.is_empty() {
                return None;
            }
            data.pop(); // the LF after the last data line
            return Some(SseEvent { event, data, id: self.id.clone() });
        }
        if line[0] == b':' {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(body: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        body.chunks(piece).flat_map(|p| parser.feed(p)).collect()
    }

    #[test]
    fn anthropic_style_events_split_anywhere() {
        let body = b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n: ping\n\nevent: content_block_delta\r\ndata: {\"delta\":\"Hi\"}\r\n\r\n";
        for piece in [1, 2, 9, body.len()] {
            let events = parse_in_pieces(body, piece);
            assert_eq!(events.len(), 2, "piece {piece}: {events:?}");
            assert_eq!(events[0].event.as_deref(), Some("message_start"));
            assert_eq!(events[0].data, "{\"type\":\"message_start\"}");
            assert_eq!(events[1].event.as_deref(), Some("content_block_delta"));
            assert_eq!(events[1].data, "{\"delta\":\"Hi\"}");
        }
    }

    #[test]
    fn data_lines_join_and_ids_carry_over() {
        let events = parse_in_pieces(b"id: 7\ndata: one\ndata:two\ndata\n\ndata: [DONE]\n\n", 4);
        assert_eq!(events[0], SseEvent { event: None, data: "one\ntwo\n".into(), id: Some("7".into()) });
        assert_eq!(events[1], SseEvent { event: None, data: "[DONE]".into(), id: Some("7".into()) });
    }

    #[test]
    fn cr_only_line_ends_and_an_unfinished_event_is_not_dispatched() {
        let mut parser = SseParser::new();
        assert_eq!(parser.feed(b"data: a\r\rdata: b").len(), 1);
        assert!(parser.feed(b"\n").is_empty());
    }
}
