//! Secrets never leave the node: credential headers are blanked and
//! key-shaped strings (provider API keys, bearer tokens, cloud and forge
//! tokens, JWTs, `key=` URL parameters) are replaced in any captured text
//! before it is put in an event.

use std::{borrow::Cow, sync::LazyLock};

use regex::{Captures, Regex};

pub const REDACTED: &str = "[REDACTED]";

/// Headers whose value is a credential, lower-case.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "anthropic-api-key",
    "cookie",
    "set-cookie",
];

/// Key shapes; the first group, when present, is kept (it names the key).
static SECRET_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i:((?:bearer|basic)\s+))[A-Za-z0-9._~+/=-]{8,}",
        r"|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",
        r"|\bAIza[0-9A-Za-z_-]{35}",
        r"|\b(?:gsk|fw|xai)_[A-Za-z0-9]{20,}",
        r"|\bpplx-[A-Za-z0-9]{20,}",
        r"|\bAKIA[0-9A-Z]{16}\b",
        r"|\bgh[pousr]_[A-Za-z0-9]{36,}",
        r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        r"|([?&](?:key|api_key|apikey|access_token|token)=)[^&\s#]+",
    ))
    .expect("the secret patterns compile")
});

/// Blanks the values of credential headers (names compared lower-case),
/// and of `extra` names from configuration; replaces key shapes in the rest.
pub fn redact_headers(headers: &mut [(String, String)], extra: &[String]) {
    for (name, value) in headers.iter_mut() {
        let lower = name.to_ascii_lowercase();
        if SECRET_HEADERS.contains(&lower.as_str()) || extra.iter().any(|e| e.eq_ignore_ascii_case(&lower)) {
            *value = REDACTED.to_string();
        } else if let Cow::Owned(clean) = redact_text(value) {
            *value = clean;
        }
    }
}

/// `text` with every key-shaped string replaced.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    SECRET_SHAPES.replace_all(text, |caps: &Captures<'_>| {
        let kept = caps.get(1).or_else(|| caps.get(2)).map_or("", |m| m.as_str());
        format!("{kept}{REDACTED}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_blanked_whatever_their_case() {
        let mut headers = vec![
            ("Authorization".to_string(), "Bearer sk-proj-abcdefghijklmnopqrstuvwx".to_string()),
            ("x-api-key".to_string(), "sk-ant-api03-abcdefghijklmnopqrstuvwxyz".to_string()),
            ("x-company-token".to_string(), "hunter2".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        redact_headers(&mut headers, &["X-Company-Token".to_string()]);
        assert!(headers[..3].iter().all(|(_, v)| v == REDACTED), "{headers:?}");
        assert_eq!(headers[3].1, "application/json");
    }

    #[test]
    fn key_shapes_in_text_are_replaced_and_their_names_kept() {
        let text = concat!(
            r#"{"api_key":"sk-abcdefghijklmnopqrstuvwxyz012345","note":"use AIzaSyA1234567890abcdefghijklmnopqrstuv"}"#,
            " GET /v1beta/models/gemini:generateContent?alt=sse&key=AIzaSecretSecret HTTP/1.1",
            " Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl",
            " aws AKIAABCDEFGHIJKLMNOP gh ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            " groq gsk_abcdefghijklmnopqrstuvwx pplx-abcdefghijklmnopqrstuvwx",
        );
        let clean = redact_text(text);
        for secret in [
            "sk-abcdefghij",
            "AIzaSyA123",
            "AIzaSecretSecret",
            "eyJhbGciOi",
            "AKIAABCDEFGHIJKLMNOP",
            "ghp_abcdef",
            "gsk_abcdef",
            "pplx-abcdef",
        ] {
            assert!(!clean.contains(secret), "{secret} left in {clean}");
        }
        assert!(clean.contains("&key=[REDACTED]"), "{clean}");
        assert!(clean.contains("Bearer [REDACTED]"), "{clean}");
    }

    #[test]
    fn ordinary_text_is_untouched_and_not_copied() {
        let text = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"run the tests with sk-learn"}]}"#;
        assert!(matches!(redact_text(text), Cow::Borrowed(_)));
    }
}
