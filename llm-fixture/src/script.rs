//! Scripted conversations and static pages, read from the scripts directory.
//!
//! An OpenAI chat-completions, Anthropic Messages or Gemini request (streamed or not) whose model is
//! `script:<name>` is answered from `<name>.json`: a list of turns, each
//! `{"tool_calls": [{"name": "run_command", "arguments": {"command": "python -m pytest -q"}}, …]}` or
//! `{"text": "…"}`. The turn answered is the number of assistant messages already in the request (Gemini's
//! contents with role `model`; the last turn once the conversation is longer than the script). Every call of a turn
//! is rendered, with ids `call_<turn>_<i>` (Anthropic's `tool_use.id`, Gemini's `functionCall.id`); `arguments` is
//! sent as its compact JSON text in chat completions (a string is sent as it is) and as the object itself by
//! Anthropic and Gemini. Each `{KEY}` in the arguments' strings and in a text is replaced by the request's
//! `metadata.KEY` (OpenAI's chat request field of string values), so the calls name the real paths and ports the
//! agent was given, as a model reading them from the prompt would. The file is read on every request, so a test may
//! write it after the server started.
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
    /// `(name, arguments)`: an object, or a string sent as it is.
    ToolCalls(Vec<(String, Value)>),
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
                    .map(|call| match call.arguments {
                        Value::Null => (call.name, Value::Object(Default::default())),
                        arguments => (call.name, arguments),
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

/// `text` with each `{KEY}` of `vars` replaced by its value.
pub fn fill(text: &str, vars: &[(String, String)]) -> String {
    vars.iter().fold(text.to_owned(), |text, (key, value)| text.replace(&format!("{{{key}}}"), value))
}

fn fill_value(value: &Value, vars: &[(String, String)]) -> Value {
    match value {
        Value::String(text) => Value::String(fill(text, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|item| fill_value(item, vars)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(key, item)| (key.clone(), fill_value(item, vars))).collect())
        }
        other => other.clone(),
    }
}

/// A turn's tool calls with their ids, `call_<turn>_<i>`, and `vars` filled in.
pub fn tool_calls(at: usize, calls: &[(String, Value)], vars: &[(String, String)]) -> Vec<ToolCall> {
    calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| ToolCall {
            id: format!("call_{at}_{i}"),
            name: name.clone(),
            arguments: match arguments {
                Value::String(text) => fill(text, vars),
                other => fill_value(other, vars).to_string(),
            },
        })
        .collect()
}

/// Page `name` with the query's `{KEY}`s filled in, and its content type.
pub fn page(dir: Option<&Path>, name: &str, query: &str) -> Result<(String, &'static str), Missing> {
    let path = file(dir, name)?;
    let text =
        std::fs::read_to_string(&path).map_err(|error| Missing::Invalid(format!("{}: {error}", path.display())))?;
    let vars: Vec<(String, String)> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let text = fill(&text, &vars);
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
                ("run_command".into(), serde_json::json!({"command": "ls -l"})),
                ("read_file".into(), serde_json::json!(r#"{"path": "x"}"#)),
            ])
        );
        assert_eq!(turn(&turns, 0).0, 0);
        assert_eq!(turn(&turns, 1), (1, &Turn::Text("done".into())));
        assert_eq!(turn(&turns, 7).0, 1);
        let Turn::ToolCalls(calls) = &turns[0] else { unreachable!() };
        let calls = tool_calls(0, calls, &[]);
        let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["call_0_0", "call_0_1"]);
        assert_eq!(calls[0].arguments, r#"{"command":"ls -l"}"#);
        assert_eq!(calls[1].arguments, r#"{"path": "x"}"#);
    }

    #[test]
    fn metadata_fills_arguments_as_json() {
        let calls = vec![("read_file".to_owned(), serde_json::json!({"path": "{DIR}/a", "n": 1, "l": ["{DIR}"]}))];
        let vars = [("DIR".to_owned(), r#"/tmp/x "y""#.to_owned())];
        let call = &tool_calls(3, &calls, &vars)[0];
        assert_eq!(call.id, "call_3_0");
        let arguments: Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(arguments, serde_json::json!({"path": "/tmp/x \"y\"/a", "n": 1, "l": ["/tmp/x \"y\""]}));
        assert_eq!(fill("at {DIR} {OTHER}", &vars), "at /tmp/x \"y\" {OTHER}");
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
