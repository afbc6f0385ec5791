//! A tool call's claim, read with the tool's schema: which argument holds a
//! shell command, a path or a URL depends on the agent. Known schemas:
//! Claude Code (`Bash.command`, `Read`/`Write`/`Edit.file_path`,
//! `WebFetch.url`), Codex (`shell.command` as an argv array, `workdir`),
//! Gemini CLI (`run_shell_command.command`, `read_file.absolute_path`,
//! `write_file.file_path`, `replace.file_path`, `web_fetch.prompt` with URLs
//! in it), OpenHands (`execute_bash.command`, `str_replace_editor`'s
//! `command` verb and `path`); other tools by their argument names.

use serde_json::{Map, Value};

use super::{shell, Expected};

/// What a tool call claims, and why any part of it cannot be judged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Claim {
    pub expected: Vec<Expected>,
    /// Why (part of) the call names nothing the kernel would see.
    pub unjudgeable: Vec<String>,
}

impl Claim {
    /// Whether it names anything the kernel must see.
    pub fn judgeable(&self) -> bool {
        self.expected.iter().any(|e| !matches!(e, Expected::Run { required: false, .. }))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shell,
    /// OpenHands' and Anthropic's text editor: a `command` verb and a `path`.
    Editor,
    Read,
    Write,
    Fetch,
    /// Tools that act inside the agent (search, plans, sub-agents).
    Inside,
    Unknown,
}

fn kind(tool: &str) -> Kind {
    let name: String = tool.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    match name.as_str() {
        "bash" | "shell" | "localshell" | "runshellcommand" | "executebash" | "runcommand" | "execcommand"
        | "executecommand" | "runterminalcmd" | "terminal" | "containerexec" | "shellcommand" | "runbash" => {
            Kind::Shell
        }
        "strreplaceeditor" | "strreplacebasededittool" | "texteditor" => Kind::Editor,
        "read" | "readfile" | "view" | "cat" | "openfile" | "readmanyfiles" => Kind::Read,
        "write" | "writefile" | "createfile" | "edit" | "multiedit" | "editfile" | "replace" | "notebookedit" => {
            Kind::Write
        }
        "webfetch" | "fetch" | "fetchurl" | "browse" | "httprequest" | "openurl" => Kind::Fetch,
        "websearch" | "googlewebsearch" | "todowrite" | "task" | "glob" | "grep" | "searchfilecontent" | "think"
        | "savememory" | "exitplanmode" => Kind::Inside,
        _ => Kind::Unknown,
    }
}

const COMMAND_KEYS: [&str; 5] = ["command", "cmd", "commands", "script", "shell_command"];
const PATH_KEYS: [&str; 8] =
    ["file_path", "absolute_path", "path", "file", "filename", "filepath", "target_file", "notebook_path"];
const URL_KEYS: [&str; 3] = ["url", "uri", "href"];
const HOST_KEYS: [&str; 3] = ["host", "hostname", "address"];
const DIR_KEYS: [&str; 4] = ["workdir", "directory", "cwd", "dir_path"];

/// The claim of tool `name` called with JSON `arguments`.
pub fn claim(name: &str, arguments: &str) -> Claim {
    let mut claim = Claim::default();
    let Ok(Value::Object(args)) = serde_json::from_str::<Value>(arguments) else {
        claim.unjudgeable.push("its arguments are not a JSON object".into());
        return claim;
    };
    let string = |keys: &[&str]| keys.iter().find_map(|k| args.get(*k)?.as_str()).filter(|s| !s.trim().is_empty());
    let dir = string(&DIR_KEYS);
    let kind = kind(name);
    match kind {
        Kind::Shell => command(&args, &mut claim),
        Kind::Editor => {
            let verb = string(&["command"]).unwrap_or_default();
            if let Some(path) = string(&PATH_KEYS) {
                let write = !matches!(verb, "view" | "");
                claim.expected.push(Expected::File { path: joined(dir, path), write });
            }
        }
        Kind::Read | Kind::Write => {
            let write = kind == Kind::Write;
            if let Some(path) = string(&PATH_KEYS) {
                claim.expected.push(Expected::File { path: joined(dir, path), write });
            }
            for path in args.get("paths").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if !path.contains(['*', '?', '[']) {
                    claim.expected.push(Expected::File { path: joined(dir, path), write });
                }
            }
        }
        Kind::Fetch => {
            let urls: Vec<&str> = match string(&URL_KEYS) {
                Some(url) => vec![url],
                // Gemini CLI's web_fetch: URLs inside a prompt.
                None => args.values().filter_map(Value::as_str).flat_map(str::split_whitespace).collect(),
            };
            for url in urls {
                reach_url(url, &mut claim);
            }
        }
        Kind::Inside => {}
        Kind::Unknown => {
            command(&args, &mut claim);
            let write = ["write", "create", "edit", "save", "replace", "patch"]
                .iter()
                .any(|w| name.to_ascii_lowercase().contains(w));
            if let Some(path) = string(&PATH_KEYS) {
                claim.expected.push(Expected::File { path: joined(dir, path), write });
            }
            if let Some(url) = string(&URL_KEYS) {
                reach_url(url, &mut claim);
            }
            if let Some(host) = string(&HOST_KEYS) {
                let port = args.get("port").and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()));
                let port = port.and_then(|p| u16::try_from(p).ok());
                claim.expected.push(Expected::Reach { host: host.trim().to_string(), port });
            }
        }
    }
    if !claim.judgeable() && claim.unjudgeable.is_empty() {
        claim.unjudgeable.push(match kind {
            Kind::Inside => format!("{name} acts inside the agent; the kernel sees nothing of it"),
            _ => "its arguments name no program, file or address".into(),
        });
    }
    claim
}

/// A shell command: a string, or an argv array.
fn command(args: &Map<String, Value>, claim: &mut Claim) {
    let Some(value) = COMMAND_KEYS.iter().find_map(|k| args.get(*k)) else { return };
    let (text, runs) = match value {
        Value::String(text) if !text.trim().is_empty() => (text.clone(), shell::parse(text)),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
            let argv: Vec<String> = items.iter().filter_map(Value::as_str).map(String::from).collect();
            (argv.join(" "), shell::parse_argv(&argv))
        }
        _ => return,
    };
    let run = |run, required| Expected::Run { command: text.clone(), run, required };
    claim.expected.extend(runs.required.into_iter().map(|r| run(r, true)));
    claim.expected.extend(runs.optional.into_iter().map(|r| run(r, false)));
    claim.unjudgeable.extend(runs.unknown);
    if !claim.judgeable() && claim.unjudgeable.is_empty() {
        claim.unjudgeable.push(format!("`{text}` runs only shell builtins, which exec nothing"));
    }
}

fn reach_url(url: &str, claim: &mut Claim) {
    let url = url.trim().trim_matches(|c: char| matches!(c, '`' | '(' | ')' | '<' | '>' | ',' | '"' | '\''));
    let Ok(parsed) = url::Url::parse(url) else { return };
    if !parsed.scheme().starts_with("http") {
        return;
    }
    if let Some(host) = parsed.host_str() {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        claim.expected.push(Expected::Reach { host, port: parsed.port_or_known_default() });
    }
}

/// A relative path under the tool's working directory.
fn joined(dir: Option<&str>, path: &str) -> String {
    let path = path.trim();
    match dir {
        Some(dir) if !path.starts_with('/') && !path.starts_with('~') => {
            format!("{}/{}", dir.trim_end_matches('/'), path.strip_prefix("./").unwrap_or(path))
        }
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(name: &str, arguments: &str) -> Vec<String> {
        claim(name, arguments).expected.iter().map(Expected::describe).collect()
    }

    #[test]
    fn each_agent_s_shell_tool_claims_the_programs_of_its_command() {
        let pytest = ["exec `python -m pytest -q`"];
        assert_eq!(described("Bash", r#"{"command": "cd /w && python -m pytest -q", "description": "x"}"#), pytest);
        assert_eq!(
            described("shell", r#"{"command": ["bash", "-lc", "python -m pytest -q"], "workdir": "/w"}"#),
            pytest
        );
        assert_eq!(described("run_shell_command", r#"{"command": "python -m pytest -q", "directory": "w"}"#), pytest);
        assert_eq!(described("execute_bash", r#"{"command": "python -m pytest -q"}"#), pytest);
        assert_eq!(described("run_command", r#"{"command": "python -m pytest -q"}"#), pytest);
        assert_eq!(
            described("anything", r#"{"cmd": ["cargo", "build", "--release"]}"#),
            ["exec `cargo build --release`"]
        );
    }

    #[test]
    fn file_tools_claim_a_read_or_a_write_under_their_working_directory() {
        assert_eq!(described("Read", r#"{"file_path": "/w/a.py"}"#), ["file /w/a.py"]);
        assert_eq!(described("Write", r#"{"file_path": "/w/a.py", "content": "x"}"#), ["write /w/a.py"]);
        assert_eq!(
            described("Edit", r#"{"file_path": "/w/a.py", "old_string": "a", "new_string": "b"}"#),
            ["write /w/a.py"]
        );
        assert_eq!(described("read_file", r#"{"absolute_path": "/w/a.py"}"#), ["file /w/a.py"]);
        assert_eq!(described("write_file", r#"{"file_path": "/w/b.md", "content": "x"}"#), ["write /w/b.md"]);
        assert_eq!(
            described("str_replace_editor", r#"{"command": "create", "path": "/w/c", "file_text": "x"}"#),
            ["write /w/c"]
        );
        assert_eq!(described("str_replace_editor", r#"{"command": "view", "path": "/w/c"}"#), ["file /w/c"]);
        assert_eq!(described("write_file", r#"{"path": "out/n.md", "workdir": "/w/"}"#), ["write /w/out/n.md"]);
    }

    #[test]
    fn fetch_tools_claim_their_urls_even_inside_a_prompt() {
        assert_eq!(
            described("WebFetch", r#"{"url": "https://docs.example.com/a", "prompt": "sum"}"#),
            ["reach docs.example.com:443"]
        );
        assert_eq!(
            described("web_fetch", r#"{"prompt": "Summarize https://a.example/x and (http://b.example:8080/y)"}"#),
            ["reach a.example:443", "reach b.example:8080"]
        );
        assert_eq!(described("connect", r#"{"host": "10.0.0.9", "port": "5432"}"#), ["reach 10.0.0.9:5432"]);
    }

    #[test]
    fn a_claim_naming_nothing_checkable_says_it_is_unjudgeable() {
        for (name, arguments) in [
            ("WebSearch", r#"{"query": "weather"}"#),
            ("Bash", r#"{"command": "cd /w && echo done"}"#),
            ("Bash", r#"{"command": "$RUNNER test"}"#),
            ("anything", r#"{"query": "x"}"#),
            ("Bash", "not json"),
            ("Bash", r#"{"command": "for f in *.py; do python $f; done"}"#),
        ] {
            let c = claim(name, arguments);
            assert!(!c.judgeable() && !c.unjudgeable.is_empty(), "{name} {arguments}: {c:?}");
        }
        let partly = claim("Bash", r#"{"command": "make && $RUNNER"}"#);
        assert!(partly.judgeable() && !partly.unjudgeable.is_empty());
    }
}
