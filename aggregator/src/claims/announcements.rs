//! Effects a response's text announces ("I'll run `pytest -q` and then write
//! the summary to `notes.md`"): linked to what follows, never judged, since
//! prose is not a promise the way a tool call is.

use super::{shell, Expected};

/// Verbs that announce running a command, writing a file, fetching a URL.
const RUN_VERBS: [&str; 6] = ["run", "running", "execute", "executing", "invoke", "invoking"];
const WRITE_VERBS: [&str; 8] = ["write", "writing", "create", "creating", "save", "saving", "update", "updating"];
const FETCH_VERBS: [&str; 8] = ["fetch", "fetching", "download", "downloading", "open", "opening", "visit", "visiting"];

/// Effects a response's text announces, sentence by sentence: a `code span`
/// after a verb of running is a command, one that looks like a path after a
/// verb of writing is a file, a URL after a verb of fetching is reached.
pub fn announcements(text: &str) -> Vec<Expected> {
    let mut out = Vec::new();
    for sentence in sentences(text) {
        let lower = sentence.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
        let says = |verbs: &[&str]| verbs.iter().any(|v| words.contains(v));
        let spans: Vec<&str> = sentence.split('`').skip(1).step_by(2).filter(|s| !s.trim().is_empty()).collect();
        for span in &spans {
            if says(&RUN_VERBS) {
                let command = span.trim().to_string();
                for run in shell::parse(span).required {
                    out.push(Expected::Run { command: command.clone(), run, required: true });
                }
            } else if says(&WRITE_VERBS) && (span.contains('/') || span.contains('.')) && !span.contains(' ') {
                out.push(Expected::File { path: span.trim().to_string(), write: true });
            }
        }
        if says(&FETCH_VERBS) {
            for token in sentence.split_whitespace() {
                let token = token.trim_matches(|c: char| matches!(c, '`' | '(' | ')' | '<' | '>' | ',' | '"'));
                if let Ok(url) = url::Url::parse(token) {
                    if let (Some(host), true) = (url.host_str(), url.scheme().starts_with("http")) {
                        out.push(Expected::Reach { host: host.to_string(), port: url.port_or_known_default() });
                    }
                }
            }
        }
    }
    out
}

/// Sentences end at a line break, or at `.`, `!` or `?` before a space (so
/// `summary.md` and `example.com` stay whole).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&text[start..]);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_s_text_announces_commands_files_and_urls_in_its_sentences() {
        let text = "I'll run `python -m pytest -q` now. Then I will write the summary to `out/summary.md`!\n\
                    Let me fetch https://docs.example.com/guide. The `config` object looks fine.";
        let described: Vec<String> = announcements(text).iter().map(Expected::describe).collect();
        assert_eq!(described, ["exec `python -m pytest -q`", "write out/summary.md", "reach docs.example.com:443"]);
        assert!(announcements("All tests passed. The `ok` flag is set.").is_empty());
    }
}
