//! Whether a streamed LLM answer is over before its HTTP framing is. SDKs
//! stop reading at the provider's terminal event (`data: [DONE]` for OpenAI
//! chat, `message_stop` for Anthropic, `response.completed` for OpenAI
//! responses, the candidate with a `finishReason` for Gemini, `message-end`
//! for Cohere) and may never read the chunked body's last, empty chunk,
//! which often comes in a later TLS record; the call is complete at that
//! event, and its time ends there.

use crate::sse::SseParser;

/// Event types (the `event:` field or the data's `type`) that end a stream.
const TERMINAL_EVENTS: [&str; 6] =
    ["message_stop", "response.completed", "response.failed", "response.incomplete", "message-end", "stream-end"];

/// Whether `body` (as received so far, not yet decoded) of a response with
/// these headers holds the whole answer.
pub fn stream_ended(headers: &[(String, String)], body: &[u8]) -> bool {
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    if header("content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity")) {
        return false;
    }
    let content_type = header("content-type").unwrap_or_default().to_ascii_lowercase();
    if content_type.starts_with("text/event-stream") {
        last_event_ends(body)
    } else if content_type.starts_with("application/json") {
        // Gemini's stream without `alt=sse`: one JSON array, whole once it
        // parses.
        let trimmed = body.trim_ascii();
        trimmed.starts_with(b"[")
            && trimmed.ends_with(b"]")
            && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok()
    } else {
        false
    }
}

/// Whether the last event the body completes is a terminal one. Only the
/// body's last event is read, so checking after every piece stays cheap.
fn last_event_ends(body: &[u8]) -> bool {
    let ends_event = body.ends_with(b"\n\n") || body.ends_with(b"\r\n\r\n") || body.ends_with(b"\r\r");
    if !ends_event {
        return false;
    }
    let trimmed = body.trim_ascii_end();
    let start = [&b"\n\n"[..], b"\r\n\r\n", b"\r\r"]
        .iter()
        .filter_map(|sep| trimmed.windows(sep.len()).rposition(|w| w == *sep).map(|at| at + sep.len()))
        .max()
        .unwrap_or(0);
    let Some(event) = SseParser::new().feed(&body[start..]).pop() else { return false };
    if event.data.trim() == "[DONE]" || event.event.as_deref().is_some_and(|e| TERMINAL_EVENTS.contains(&e)) {
        return true;
    }
    let Ok(data) = serde_json::from_str::<serde_json::Value>(&event.data) else { return false };
    if data.get("type").and_then(|t| t.as_str()).is_some_and(|t| TERMINAL_EVENTS.contains(&t)) {
        return true;
    }
    // Gemini: the last chunk's candidate says why it finished.
    data.get("candidates")
        .and_then(|c| c.as_array())
        .is_some_and(|candidates| candidates.iter().any(|c| c.get("finishReason").is_some_and(|r| r.is_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse() -> Vec<(String, String)> {
        vec![("Content-Type".into(), "text/event-stream; charset=utf-8".into())]
    }

    #[test]
    fn each_provider_s_terminal_event_ends_its_stream() {
        let ended = |body: &str| stream_ended(&sse(), body.as_bytes());
        assert!(ended("data: {\"choices\":[]}\n\ndata: [DONE]\n\n"));
        assert!(!ended("data: {\"choices\":[]}\n\ndata: [DO"));
        assert!(!ended("data: {\"choices\":[{\"delta\":{}}]}\n\n"));
        assert!(ended("event: message_delta\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        assert!(ended("event: response.completed\r\ndata: {\"type\":\"response.completed\"}\r\n\r\n"));
        assert!(ended("data: {\"candidates\":[{\"content\":{},\"finishReason\":\"STOP\"}]}\r\n\r\n"));
        assert!(!ended("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}]}}]}\r\n\r\n"));
        assert!(ended("event: message-end\ndata: {\"type\":\"message-end\"}\n\n"));
    }

    #[test]
    fn a_json_array_stream_ends_when_it_parses_and_compressed_bodies_are_left_alone() {
        let json = vec![("content-type".to_string(), "application/json; charset=UTF-8".to_string())];
        assert!(stream_ended(&json, b"[{\"candidates\": []}\n,{\"a\": [1]}\n]"));
        assert!(!stream_ended(&json, b"[{\"candidates\": [1]"));
        assert!(!stream_ended(&json, b"{\"id\": 1}"));
        let mut gzip = sse();
        gzip.push(("Content-Encoding".into(), "gzip".into()));
        assert!(!stream_ended(&gzip, b"data: [DONE]\n\n"));
    }
}
