//! What a tool call says the agent is about to do, as the kernel would see
//! it, and whether an effect the kernel saw is that: a command becomes a
//! process whose command line holds the command's words, a path a file
//! event on that path, a URL a DNS lookup of its host or a connection to it.

use serde_json::Value;

/// An effect a tool call announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A process whose command line contains every word (the command's
    /// program and its non-flag arguments, at most a few).
    Run { command: String, words: Vec<String> },
    /// A file opened, written, created or removed at this path (a relative
    /// or `~/` path matches any absolute path ending in it).
    File { path: String },
    /// A lookup of this host or a connection to it (or to `port` on it).
    Reach { host: String, port: Option<u16> },
}

impl Expected {
    /// "run `python -m pytest`", "file /tmp/out.txt", "reach example.com:443".
    pub fn describe(&self) -> String {
        match self {
            Expected::Run { command, .. } => format!("run `{command}`"),
            Expected::File { path } => format!("file {path}"),
            Expected::Reach { host, port: Some(port) } => format!("reach {host}:{port}"),
            Expected::Reach { host, port: None } => format!("reach {host}"),
        }
    }

    /// Whether `effect` is what this announces.
    pub fn matches(&self, effect: &Observed<'_>) -> bool {
        match (self, effect) {
            (Expected::Run { words, .. }, Observed::Exec { argv }) => {
                !words.is_empty() && words.iter().all(|w| argv.contains(w.as_str()))
            }
            (Expected::File { path }, Observed::File { path: seen }) => path_matches(path, seen),
            (Expected::Reach { host, .. }, Observed::Lookup { name }) => name.eq_ignore_ascii_case(host),
            (Expected::Reach { host, port }, Observed::Connect { addr, port: seen_port, resolved_from }) => {
                let loopback = host.eq_ignore_ascii_case("localhost") && (*addr == "127.0.0.1" || *addr == "::1");
                let same_host = addr == host || loopback || resolved_from.iter().any(|n| n.eq_ignore_ascii_case(host));
                same_host && port.is_none_or(|p| p == *seen_port)
            }
            _ => false,
        }
    }
}

/// An effect as the matcher needs to see it.
#[derive(Debug, Clone, Copy)]
pub enum Observed<'a> {
    /// A process started: its command line, words joined by spaces.
    Exec {
        argv: &'a str,
    },
    File {
        path: &'a str,
    },
    Lookup {
        name: &'a str,
    },
    /// A connection out; `resolved_from` the names the host's lookups
    /// answered with this address.
    Connect {
        addr: &'a str,
        port: u16,
        resolved_from: &'a [String],
    },
}

/// Argument names that carry a command line, a path, a URL, a host.
const COMMAND_KEYS: [&str; 5] = ["command", "cmd", "script", "shell_command", "args"];
const PATH_KEYS: [&str; 6] = ["path", "file", "file_path", "filename", "filepath", "target_file"];
const URL_KEYS: [&str; 3] = ["url", "uri", "href"];
const HOST_KEYS: [&str; 3] = ["host", "hostname", "address"];

/// The most words of a command that must all appear: the program and its
/// first arguments say what runs; later ones are often reworded by shells.
const MAX_WORDS: usize = 3;

/// The effects a tool call announces, from its JSON arguments; none when
/// they name nothing the kernel would see (or are not JSON).
pub fn expectations(arguments: &str) -> Vec<Expected> {
    let Ok(Value::Object(args)) = serde_json::from_str::<Value>(arguments) else {
        return Vec::new();
    };
    let text = |keys: &[&str]| keys.iter().find_map(|k| args.get(*k)).and_then(command_text);
    let mut out = Vec::new();
    if let Some(command) = text(&COMMAND_KEYS) {
        let words = command_words(&command);
        if !words.is_empty() {
            out.push(Expected::Run { command, words });
        }
    }
    if let Some(path) = text(&PATH_KEYS).filter(|p| !p.trim().is_empty()) {
        out.push(Expected::File { path: path.trim().to_string() });
    }
    if let Some(url) = text(&URL_KEYS) {
        if let Ok(parsed) = url::Url::parse(url.trim()) {
            if let Some(host) = parsed.host_str() {
                let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
                out.push(Expected::Reach { host, port: parsed.port_or_known_default() });
            }
        }
    }
    if let Some(host) = text(&HOST_KEYS).filter(|h| !h.trim().is_empty()) {
        let port = args.get("port").and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()));
        out.push(Expected::Reach { host: host.trim().to_string(), port: port.and_then(|p| u16::try_from(p).ok()) });
    }
    out
}

/// Verbs that announce running a command, writing a file, fetching a URL.
const RUN_VERBS: [&str; 6] = ["run", "running", "execute", "executing", "invoke", "invoking"];
const WRITE_VERBS: [&str; 8] = ["write", "writing", "create", "creating", "save", "saving", "update", "updating"];
const FETCH_VERBS: [&str; 8] = ["fetch", "fetching", "download", "downloading", "open", "opening", "visit", "visiting"];

/// Effects a response's text announces, sentence by sentence: a `code span`
/// after a verb of running is a command, one that looks like a path after a
/// verb of writing is a file, a URL after a verb of fetching is reached.
/// ("I'll run `pytest -q` and then write the summary to `notes.md`.")
pub fn announcements(text: &str) -> Vec<Expected> {
    let mut out = Vec::new();
    for sentence in sentences(text) {
        let lower = sentence.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
        let says = |verbs: &[&str]| verbs.iter().any(|v| words.contains(v));
        let spans: Vec<&str> = sentence.split('`').skip(1).step_by(2).filter(|s| !s.trim().is_empty()).collect();
        for span in &spans {
            if says(&RUN_VERBS) {
                let words = command_words(span);
                if !words.is_empty() {
                    out.push(Expected::Run { command: span.trim().to_string(), words });
                }
            } else if says(&WRITE_VERBS) && (span.contains('/') || span.contains('.')) && !span.contains(' ') {
                out.push(Expected::File { path: span.trim().to_string() });
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

/// A string argument, or an argv array joined by spaces.
fn command_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let words: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            (!words.is_empty()).then(|| words.join(" "))
        }
        _ => None,
    }
}

/// The words of a command's first simple command that a process running it
/// shows: the program's file name and the arguments that are not flags,
/// environment assignments or shell operators.
pub fn command_words(command: &str) -> Vec<String> {
    let tokens = shlex::split(command).unwrap_or_else(|| command.split_whitespace().map(str::to_string).collect());
    let mut words = Vec::new();
    for token in tokens {
        if matches!(token.as_str(), "&&" | "||" | ";" | "|" | "&") || token.ends_with(';') {
            break;
        }
        let is_assignment = words.is_empty() && token.contains('=') && !token.starts_with('=');
        if token.starts_with('-') || is_assignment || matches!(token.as_str(), "sudo" | "env" | "exec") {
            continue;
        }
        let word = if words.is_empty() { token.rsplit('/').next().unwrap_or(&token).to_string() } else { token };
        if !word.is_empty() {
            words.push(word);
        }
        if words.len() == MAX_WORDS {
            break;
        }
    }
    words
}

/// Whether a file event at `seen` (absolute, as the kernel resolved it) is
/// the file a tool call named as `named`.
fn path_matches(named: &str, seen: &str) -> bool {
    let named = named.strip_prefix("~/").or_else(|| named.strip_prefix("./")).unwrap_or(named);
    if named.starts_with('/') {
        return seen == named;
    }
    seen.ends_with(named) && seen[..seen.len() - named.len()].ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(argv: &str) -> Observed<'_> {
        Observed::Exec { argv }
    }

    #[test]
    fn a_command_is_its_program_and_first_arguments_without_flags() {
        assert_eq!(command_words("python -m pytest -q tests/"), ["python", "pytest", "tests/"]);
        assert_eq!(command_words("/usr/bin/make -j4 all && echo done"), ["make", "all"]);
        assert_eq!(command_words("RUST_LOG=debug cargo test --workspace"), ["cargo", "test"]);
        assert_eq!(command_words("sudo apt-get install -y curl jq"), ["apt-get", "install", "curl"]);
        assert_eq!(command_words("echo 'two words' | wc -w"), ["echo", "two words"]);
    }

    #[test]
    fn a_command_matches_the_process_that_ran_it_however_the_interpreter_is_named() {
        let run = &expectations(r#"{"command": "python -m pytest -q"}"#)[0];
        assert!(run.matches(&exec("/usr/bin/python3.11 -m pytest -q")));
        assert!(run.matches(&exec("/bin/sh -c python -m pytest -q")));
        assert!(!run.matches(&exec("python3 -m pip list")));
        assert!(!run.matches(&Observed::File { path: "/usr/bin/pytest" }));
        let argv = &expectations(r#"{"cmd": ["cargo", "build", "--release"]}"#)[0];
        assert!(argv.matches(&exec("cargo build --release")));
        assert_eq!(argv.describe(), "run `cargo build --release`");
    }

    #[test]
    fn a_path_matches_the_resolved_file_absolute_or_relative() {
        let file = |path: &str| Expected::File { path: path.into() };
        let seen = |path| Observed::File { path };
        assert!(file("/tmp/out.txt").matches(&seen("/tmp/out.txt")));
        assert!(!file("/tmp/out.txt").matches(&seen("/tmp/out.txt.bak")));
        assert!(file("src/main.rs").matches(&seen("/home/a/proj/src/main.rs")));
        assert!(file("./src/main.rs").matches(&seen("/home/a/proj/src/main.rs")));
        assert!(!file("main.rs").matches(&seen("/home/a/proj/src/domain.rs")));
        assert!(file("~/.ssh/id_rsa").matches(&seen("/root/.ssh/id_rsa")));
        let args = expectations(r#"{"path": "notes.md", "content": "x"}"#);
        assert_eq!(args, [file("notes.md")]);
    }

    #[test]
    fn a_url_is_reached_by_a_lookup_of_its_host_or_a_connection_to_its_port() {
        let reach = &expectations(r#"{"url": "https://Docs.Example.com/page?q=1"}"#)[0];
        assert_eq!(reach, &Expected::Reach { host: "docs.example.com".into(), port: Some(443) });
        assert!(reach.matches(&Observed::Lookup { name: "docs.example.com" }));
        let names = vec!["docs.example.com".to_string()];
        assert!(reach.matches(&Observed::Connect { addr: "10.1.2.3", port: 443, resolved_from: &names }));
        assert!(!reach.matches(&Observed::Connect { addr: "10.1.2.3", port: 80, resolved_from: &names }));
        assert!(!reach.matches(&Observed::Connect { addr: "10.1.2.3", port: 443, resolved_from: &[] }));
        let local = &expectations(r#"{"url": "http://127.0.0.1:8080/x"}"#)[0];
        assert!(local.matches(&Observed::Connect { addr: "127.0.0.1", port: 8080, resolved_from: &[] }));
        let local = &expectations(r#"{"url": "https://localhost:8443/pages/a.html"}"#)[0];
        assert!(local.matches(&Observed::Connect { addr: "127.0.0.1", port: 8443, resolved_from: &[] }));
        let host = &expectations(r#"{"host": "10.0.0.9", "port": "5432"}"#)[0];
        assert_eq!(host, &Expected::Reach { host: "10.0.0.9".into(), port: Some(5432) });
    }

    #[test]
    fn a_response_s_text_announces_commands_files_and_urls_in_its_sentences() {
        let text = "I'll run `python -m pytest -q` now. Then I will write the summary to `out/summary.md`!\n\
                    Let me fetch https://docs.example.com/guide. The `config` object looks fine.";
        assert_eq!(
            announcements(text),
            [
                Expected::Run { command: "python -m pytest -q".into(), words: vec!["python".into(), "pytest".into()] },
                Expected::File { path: "out/summary.md".into() },
                Expected::Reach { host: "docs.example.com".into(), port: Some(443) },
            ]
        );
        assert!(announcements("All tests passed. The `ok` flag is set.").is_empty());
    }

    #[test]
    fn arguments_naming_nothing_the_kernel_sees_announce_nothing() {
        assert!(expectations(r#"{"query": "weather in Paris"}"#).is_empty());
        assert!(expectations("not json").is_empty());
        assert!(expectations(r#"{"command": "   "}"#).is_empty());
        assert!(expectations(r#"{"url": "not a url"}"#).is_empty());
    }
}
