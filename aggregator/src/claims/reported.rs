//! What a tool result, as the agent sent it back to the LLM, says of the
//! run: success, failure, or neither. An exit code the result states wins
//! (`Exit Code: 0` from Gemini CLI, `[The command completed with exit code
//! 0.]` from OpenHands, `"exit_code": 0` from Codex); else its words.

/// What a tool result reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Success,
    Failure,
    Neither,
}

/// Words of a tool result that say it went well, and that it did not.
const SUCCESS_WORDS: [&str; 8] = ["passed", "success", "succeeded", "done", "completed", "ok", "wrote", "created"];
const FAILURE_WORDS: [&str; 5] = ["failed", "error", "failure", "traceback", "exception"];
const FAILURE_PHRASES: [&str; 4] = ["not found", "no such file", "permission denied", "exited with"];
/// Ways results say "no error".
const NO_ERROR: [&str; 3] = ["error: (none)", "\"error\": null", "errors: 0"];

pub fn reported(result: &str) -> Reported {
    let lower = result.to_lowercase();
    if let Some(code) = exit_code(&lower) {
        return if code == 0 { Reported::Success } else { Reported::Failure };
    }
    let mut text = lower.clone();
    for phrase in NO_ERROR {
        text = text.replace(phrase, "");
    }
    let words: std::collections::HashSet<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
    let failed = FAILURE_WORDS.iter().any(|w| words.contains(w)) || FAILURE_PHRASES.iter().any(|p| text.contains(p));
    let succeeded = SUCCESS_WORDS.iter().any(|w| words.contains(w)) || text.contains(" 0 failed");
    match (succeeded, failed) {
        (true, false) => Reported::Success,
        (_, true) => Reported::Failure,
        _ => Reported::Neither,
    }
}

/// The exit code a result states, if any.
fn exit_code(lower: &str) -> Option<i64> {
    ["exit code", "exit_code", "exitcode", "exit status"].iter().find_map(|label| {
        let at = lower.find(label)? + label.len();
        let rest = lower[at..].trim_start_matches([':', '"', ' ', '=', '\'']);
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
        digits.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stated_exit_code_wins_over_words() {
        let gemini =
            "Command: make test\nDirectory: (root)\nOutput: 3 passed\nError: (none)\nExit Code: 0\nSignal: (none)";
        assert_eq!(reported(gemini), Reported::Success);
        assert_eq!(reported("Output: 1 failed\nError: (none)\nExit Code: 1"), Reported::Failure);
        assert_eq!(reported("ok\n[The command completed with exit code 0.]"), Reported::Success);
        assert_eq!(reported(r#"{"output": "3 passed", "metadata": {"exit_code": 2}}"#), Reported::Failure);
    }

    #[test]
    fn else_the_words_say_it() {
        assert_eq!(reported("===== 3 passed in 0.01s ====="), Reported::Success);
        assert_eq!(reported("wrote 12 bytes to /w/notes.md"), Reported::Success);
        assert_eq!(reported("bash: pytest: command not found"), Reported::Failure);
        assert_eq!(reported("Traceback (most recent call last):"), Reported::Failure);
        assert_eq!(reported("here is the file"), Reported::Neither);
    }
}
