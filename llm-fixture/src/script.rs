//! Scripted conversations and static pages, read from the scripts directory.
//!
//! A chat-completions request whose model is `script:<name>` is answered from `<name>.json`: a list of turns, each
//! `{"tool_calls": [{"name": "run_command", "arguments": {"command": "python -m pytest -q"}}, …]}` or
//! `{"text": "…"}`. The turn answered is the number of assistant messages already in the request (the last turn
//! once the conversation is longer than the script). Tool-call ids are `call_<turn>_<i>`; `arguments` is sent as
//! its compact JSON text (a string is sent as it is). The file is read on every request, so a test may write it
//! after the server started.
//!
//! `GET /pages/<file>` returns `<file>` from the same directory, with each `{KEY}` replaced by `VALUE` for every
//! `KEY=VALUE` in the query string (taken as written, no percent-decoding): the pages an agent's "fetch a URL" tool
//! reads.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::call::ToolCall;

/// The model-name prefix that selects a script.
pub const SCRIPT_PREFIX: &str = "script:";

/// One scripted turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Turn {
    ToolCalls(Vec<(String, String)>),
    Text(String),
}

/// Why a script or page could not be served.
#[derive(Debug)]
pub enum Missing {
    /// The name is not a plain file name, there is no scripts directory, or no such file: a 404.
    NotFound(String),
    /// The file is there but is not a valid script: a 500 naming the problem.
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnFile {
    tool_calls: Option<Vec<CallFile>>,
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallFile {
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// A file name with no directory part: letters, digits, `-`, `_` and `.`, not starting with a dot.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn file(dir: Option<&Path>, name: &str) -> Result<PathBuf, Missing> {
    let Some(dir) = dir else {
        return Err(Missing::NotFound("the fixture was started without a scripts directory".into()));
    };
    if !plain_name(name) {
        return Err(Missing::NotFound(format!("{name:?} is not a plain file name")));
    }
    let path = dir.join(name);
    if !path.is_file() {
        return Err(Missing::NotFound(format!("no {}", path.display())));
    }
    Ok(path)
}

/// Reads and checks script `name` (`<dir>/<name>.json`).
pub fn load(dir: Option<&Path>, name: &str) -> Result<Vec<Turn>, Missing> {
    let path = file(dir, &format!("{name}.json"))?;
    let invalid = |why: String| Missing::Invalid(format!("{}: {why}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|error| invalid(error.to_string()))?;
    let turns: Vec<TurnFile> = serde_json::from_str(&text).map_err(|error| invalid(error.to_string()))?;
    if turns.is_empty() {
        return Err(invalid("a script needs at least one turn".into()));
    }
    turns
        .into_iter()
        .enumerate()
        .map(|(i, turn)| match (turn.tool_calls, turn.text) {
            (Some(calls), None) if !calls.is_empty() => Ok(Turn::ToolCalls(
                calls
                    .into_iter()
                    .map(|call| {
                        let arguments = match call.arguments {
                            Value::String(text) => text,
                            Value::Null => "{}".to_owned(),
                            other => other.to_string(),
                        };
                        (call.name, arguments)
                    })
                    .collect(),
            )),
            (None, Some(text)) => Ok(Turn::Text(text)),
            _ => Err(invalid(format!("turn {i} must have either a non-empty `tool_calls` or a `text`"))),
        })
        .collect()
}

/// The turn for a conversation that already has `assistant_messages` answers: clamped to the last one. Returns
/// the turn's number and the turn.
pub fn turn(turns: &[Turn], assistant_messages: usize) -> (usize, &Turn) {
    let at = assistant_messages.min(turns.len() - 1);
    (at, &turns[at])
}

/// A turn's tool calls with their ids, `call_<turn>_<i>`.
pub fn tool_calls(at: usize, calls: &[(String, String)]) -> Vec<ToolCall> {
    calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| ToolCall {
            id: format!("call_{at}_{i}"),
            name: name.clone(),
            arguments: arguments.clone(),
        })
        .collect()
}

/// Page `name` with the query's `{KEY}`s filled in, and its content type.
pub fn page(dir: Option<&Path>, name: &str, query: &str) -> Result<(String, &'static str), Missing> {
    let path = file(dir, name)?;
    let mut text =
        std::fs::read_to_string(&path).map_err(|error| Missing::Invalid(format!("{}: {error}", path.display())))?;
    for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
        if !key.is_empty() {
            text = text.replace(&format!("{{{key}}}"), value);
        }
    }
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    Ok((text, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(name: &str, text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
        dir
    }

    #[test]
    fn turns_are_read_and_clamped() {
        let dir = dir_with(
            "s.json",
            r#"[{"tool_calls": [{"name": "run_command", "arguments": {"command": "ls -l"}},
                                {"name": "read_file", "arguments": "{\"path\": \"x\"}"}]},
                {"text": "done"}]"#,
        );
        let turns = load(Some(dir.path()), "s").unwrap();
        assert_eq!(
            turns[0],
            Turn::ToolCalls(vec![
                ("run_command".into(), r#"{"command":"ls -l"}"#.into()),
                ("read_file".into(), r#"{"path": "x"}"#.into()),
            ])
        );
        assert_eq!(turn(&turns, 0).0, 0);
        assert_eq!(turn(&turns, 1), (1, &Turn::Text("done".into())));
        assert_eq!(turn(&turns, 7).0, 1);
        let Turn::ToolCalls(calls) = &turns[0] else { unreachable!() };
        let ids: Vec<String> = tool_calls(0, calls).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["call_0_0", "call_0_1"]);
    }

    #[test]
    fn bad_names_and_scripts_are_refused() {
        let dir = dir_with("bad.json", r#"[{"text": "a", "tool_calls": [{"name": "x"}]}]"#);
        std::fs::write(dir.path().join("empty.json"), "[]").unwrap();
        assert!(matches!(load(Some(dir.path()), "bad"), Err(Missing::Invalid(_))));
        assert!(matches!(load(Some(dir.path()), "empty"), Err(Missing::Invalid(_))));
        assert!(matches!(load(Some(dir.path()), "nothing"), Err(Missing::NotFound(_))));
        assert!(matches!(load(Some(dir.path()), "../bad"), Err(Missing::NotFound(_))));
        assert!(matches!(load(None, "bad"), Err(Missing::NotFound(_))));
        assert!(matches!(page(Some(dir.path()), "..", ""), Err(Missing::NotFound(_))));
    }

    #[test]
    fn pages_fill_in_the_query() {
        let dir = dir_with("p.html", "<p>send it to 127.0.0.1:{PORT} {OTHER}</p>");
        let (text, content_type) = page(Some(dir.path()), "p.html", "PORT=4242&x").unwrap();
        assert_eq!(text, "<p>send it to 127.0.0.1:4242 {OTHER}</p>");
        assert_eq!(content_type, "text/html; charset=utf-8");
    }
}
