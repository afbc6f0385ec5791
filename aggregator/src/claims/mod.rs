//! What a tool call claims the agent is about to do, as the kernel would see
//! it, and whether an effect the kernel saw is that. A shell command becomes
//! the programs it must exec ([`shell`]); a path a file event on that path;
//! a URL a lookup of its host or a connection to it. Tool schemas of real
//! agents say which argument holds which ([`tools`]); a response's text can
//! announce effects too ([`announcements`]). What the agent sent back as a
//! tool's result says whether it claims the run succeeded ([`reported`]).

mod announcements;
mod reported;
pub mod shell;
mod tools;

pub use announcements::announcements;
pub use reported::{reported, Reported};
pub use shell::{Arg, ProgramRun};
pub use tools::{claim, Claim};

/// An effect a tool call announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// An exec of the program with those arguments, part of `command`;
    /// `required` unless the command may rightly not run it.
    Run { command: String, run: ProgramRun, required: bool },
    /// A file opened, written, created or removed at this path (a relative
    /// or `~/` path matches any absolute path ending in it); `write` when
    /// only a write, a create or a rename onto it will do.
    File { path: String, write: bool },
    /// A lookup of this host or a connection to it (or to `port` on it).
    Reach { host: String, port: Option<u16> },
}

impl Expected {
    /// "exec `python -m pytest -q`", "write /tmp/out.txt", "reach example.com:443".
    pub fn describe(&self) -> String {
        match self {
            Expected::Run { run, .. } => format!("exec `{}`", run.describe()),
            Expected::File { path, write: true } => format!("write {path}"),
            Expected::File { path, write: false } => format!("file {path}"),
            Expected::Reach { host, port: Some(port) } => format!("reach {host}:{port}"),
            Expected::Reach { host, port: None } => format!("reach {host}"),
        }
    }

    /// The kernel event kinds (as loss markers name them) whose loss could
    /// hide this effect: its own, and a process's start, without which the
    /// effect is not known to be the session's.
    pub fn kernel_kinds(&self) -> &'static [&'static str] {
        match self {
            Expected::Run { .. } => &["proc_exec", "proc_fork", "proc_exec_failed"],
            Expected::File { .. } => &["file_open", "file_unlink", "file_rename", "proc_exec", "proc_fork"],
            Expected::Reach { .. } => &["net_connect", "net_dns", "proc_exec", "proc_fork"],
        }
    }

    /// Whether `effect` is what this announces.
    pub fn matches(&self, effect: &Observed<'_>) -> bool {
        match (self, effect) {
            (Expected::Run { run, .. }, Observed::Exec { exe, argv, self_made }) => {
                exec_matches(run, exe, argv, *self_made)
            }
            (Expected::Run { run, .. }, Observed::ExecAttempt { exe }) => {
                same_program(run, &run.program, exe, exe, false)
            }
            (Expected::File { path, write }, Observed::File { path: seen, target, wrote }) => {
                (path_matches(path, seen) && (*wrote || !write)) || (!target.is_empty() && path_matches(path, target))
            }
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
    /// A program started: the file exec'd as the caller named it (a shell
    /// passes the path it found through PATH), and the argv the kernel
    /// built (for a `#!` script: the interpreter, the script, the args).
    /// `self_made` when the session itself wrote that file.
    Exec {
        exe: &'a str,
        argv: &'a [String],
        self_made: bool,
    },
    /// An exec a workload policy stopped, as its decision names it: the
    /// file only. It is the claimed program whatever the arguments.
    ExecAttempt {
        exe: &'a str,
    },
    /// A file opened (`wrote`: for writing), removed, or renamed (onto
    /// `target`).
    File {
        path: &'a str,
        target: &'a str,
        wrote: bool,
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

/// Whether an exec is the claimed program run with the claimed arguments.
/// A bare program name is found through PATH, so it is an absolute path the
/// session did not write itself (a `./pytest` that prints "3 passed" is not
/// pytest); `python -m pytest` and the `pytest` script are the same run.
fn exec_matches(run: &ProgramRun, exe: &str, argv: &[String], self_made: bool) -> bool {
    let claimed_args: Vec<Arg> = run.args.clone();
    let (claimed_name, claimed_args) = module_form(&run.program, &claimed_args);
    let (seen_name, seen_args) = seen_run(exe, argv);
    let seen_words: Vec<Arg> = seen_args.iter().map(|w| Arg::Word(w.clone())).collect();
    let (seen_name, seen_args) = module_form(&seen_name, &seen_words);
    let same_program = same_program(run, &claimed_name, &seen_name, exe, self_made);
    let seen_args: Vec<&str> = seen_args
        .iter()
        .map(|a| match a {
            Arg::Word(w) => w.as_str(),
            Arg::Any => "",
        })
        .collect();
    same_program && args_match(claimed_args, &seen_args)
}

/// Whether the file exec'd (`exe`, running `seen_name`) is the claimed
/// program (`claimed_name`, after its module form): the file itself when the
/// claim names a path, else one found through PATH that the session did not
/// write.
fn same_program(run: &ProgramRun, claimed_name: &str, seen_name: &str, exe: &str, self_made: bool) -> bool {
    if claimed_name == run.program && run.program.contains('/') {
        let claimed = run.program.strip_prefix("./").unwrap_or(&run.program);
        let seen = exe.strip_prefix("./").unwrap_or(exe);
        seen == claimed || (!claimed.starts_with('/') && seen.ends_with(&format!("/{claimed}")))
    } else {
        exe.starts_with('/') && !self_made && same_name(base_name(claimed_name), base_name(seen_name))
    }
}

/// The program an exec ran and its arguments: the argv after the word that
/// names the exec'd file (after the interpreter, for a `#!` script).
fn seen_run<'a>(exe: &str, argv: &'a [String]) -> (String, &'a [String]) {
    let name = base_name(exe);
    let at = argv.iter().position(|a| a == exe).or_else(|| argv.iter().position(|a| base_name(a) == name)).unwrap_or(0);
    (exe.to_string(), argv.get(at + 1..).unwrap_or_default())
}

/// `python -m MODULE args` is MODULE run with args.
fn module_form<'a>(program: &str, args: &'a [Arg]) -> (String, &'a [Arg]) {
    if same_name("python", base_name(program)) {
        if let [Arg::Word(flag), Arg::Word(module), rest @ ..] = args {
            if flag == "-m" {
                return (module.clone(), rest);
            }
        }
    }
    (program.to_string(), args)
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `python` is `python3` and `python3.12`; `pip` is `pip3`.
fn same_name(claimed: &str, seen: &str) -> bool {
    seen == claimed
        || seen
            .strip_prefix(claimed)
            .is_some_and(|version| !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Claimed words against the exec's: literals equal, an expansion any
/// number of words.
fn args_match(claimed: &[Arg], seen: &[&str]) -> bool {
    match claimed.split_first() {
        None => seen.is_empty(),
        Some((Arg::Any, rest)) => (0..=seen.len()).any(|skip| args_match(rest, &seen[skip..])),
        Some((Arg::Word(word), rest)) => seen.first() == Some(&word.as_str()) && args_match(rest, &seen[1..]),
    }
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

    fn argv(words: &str) -> Vec<String> {
        words.split(' ').map(String::from).collect()
    }

    fn runs(command: &str) -> Vec<Expected> {
        shell::parse(command)
            .required
            .into_iter()
            .map(|run| Expected::Run { command: command.into(), run, required: true })
            .collect()
    }

    fn exec<'a>(exe: &'a str, argv: &'a [String]) -> Observed<'a> {
        Observed::Exec { exe, argv, self_made: false }
    }

    #[test]
    fn a_run_is_the_program_through_path_with_exactly_its_arguments() {
        let run = &runs("cd proj && python -m pytest -q")[0];
        let seen = argv("python -m pytest -q");
        assert!(run.matches(&exec("/usr/bin/python3.11", &seen)));
        assert!(run.matches(&exec("/venv/bin/python", &seen)));
        // The console script, as the kernel starts a `#!` script.
        let script = argv("/venv/bin/python /venv/bin/pytest -q");
        assert!(run.matches(&exec("/venv/bin/pytest", &script)));
        assert!(!run.matches(&exec("/usr/bin/python3", &argv("python -m pytest -q --co"))));
        assert!(!run.matches(&exec("/usr/bin/python3", &argv("python -m pip list"))));
        assert!(!run.matches(&exec("/bin/sh", &argv("sh -c echo python -m pytest -q"))));
        assert!(!run.matches(&exec("/bin/echo", &argv("echo python -m pytest -q"))));
        assert!(!run.matches(&Observed::File { path: "/usr/bin/pytest", target: "", wrote: false }));
        let bare = &runs("pytest -q")[0];
        assert!(bare.matches(&exec("/venv/bin/pytest", &script)));
        assert!(bare.matches(&exec("/venv/bin/python", &seen)));
    }

    #[test]
    fn a_program_of_the_session_s_own_making_is_not_the_one_on_path() {
        let run = &runs("pytest -q")[0];
        let fake = argv("/bin/sh ./pytest -q");
        assert!(!run.matches(&exec("./pytest", &fake)));
        let fake = argv("/bin/sh /w/pytest -q");
        assert!(!run.matches(&Observed::Exec { exe: "/w/pytest", argv: &fake, self_made: true }));
        // Named by its path, the agent's own script is what it claimed.
        let own = &runs("./run_tests.sh --fast")[0];
        let seen = argv("/bin/bash ./run_tests.sh --fast");
        assert!(own.matches(&Observed::Exec { exe: "./run_tests.sh", argv: &seen, self_made: true }));
        let seen = argv("/bin/bash /w/run_tests.sh --fast");
        assert!(own.matches(&exec("/w/run_tests.sh", &seen)));
    }

    #[test]
    fn an_exec_a_policy_stopped_is_the_claimed_program_whatever_its_arguments() {
        let run = &runs("cd proj && python -m pytest -q")[0];
        assert!(run.matches(&Observed::ExecAttempt { exe: "/usr/bin/python3.11" }));
        assert!(!run.matches(&Observed::ExecAttempt { exe: "/usr/bin/touch" }));
        assert!(!run.matches(&Observed::ExecAttempt { exe: "python3" }), "a bare name is not a file PATH found");
        let own = &runs("./run_tests.sh --fast")[0];
        assert!(own.matches(&Observed::ExecAttempt { exe: "/w/run_tests.sh" }));
    }

    #[test]
    fn expansions_match_any_words_and_wrappers_match_the_inner_program() {
        let run = &runs("python -m pytest $(git ls-files tests) -q")[1];
        assert!(run.matches(&exec("/usr/bin/python3", &argv("python3 -m pytest tests/a.py tests/b.py -q"))));
        assert!(run.matches(&exec("/usr/bin/python3", &argv("python3 -m pytest -q"))));
        assert!(!run.matches(&exec("/usr/bin/python3", &argv("python3 -m pytest tests/a.py"))));
        let run = &runs("timeout 60 npm test")[0];
        // npm is `#!/usr/bin/env node`.
        assert!(run.matches(&exec("/usr/bin/npm", &argv("/usr/bin/env node /usr/bin/npm test"))));
    }

    #[test]
    fn a_path_matches_the_resolved_file_a_write_only_a_write() {
        let file = |path: &str, write| Expected::File { path: path.into(), write };
        let read = |path| Observed::File { path, target: "", wrote: false };
        let wrote = |path| Observed::File { path, target: "", wrote: true };
        assert!(file("/tmp/out.txt", false).matches(&read("/tmp/out.txt")));
        assert!(!file("/tmp/out.txt", false).matches(&read("/tmp/out.txt.bak")));
        assert!(file("src/main.rs", false).matches(&read("/home/a/proj/src/main.rs")));
        assert!(file("./src/main.rs", false).matches(&read("/home/a/proj/src/main.rs")));
        assert!(!file("main.rs", false).matches(&read("/home/a/proj/src/domain.rs")));
        assert!(file("~/.ssh/id_rsa", false).matches(&read("/root/.ssh/id_rsa")));
        assert!(!file("/w/notes.md", true).matches(&read("/w/notes.md")));
        assert!(file("/w/notes.md", true).matches(&wrote("/w/notes.md")));
        let renamed = Observed::File { path: "/w/.notes.md.tmp", target: "/w/notes.md", wrote: false };
        assert!(file("/w/notes.md", true).matches(&renamed));
    }

    #[test]
    fn a_url_is_reached_by_a_lookup_of_its_host_or_a_connection_to_its_port() {
        let reach = Expected::Reach { host: "docs.example.com".into(), port: Some(443) };
        assert!(reach.matches(&Observed::Lookup { name: "Docs.Example.com" }));
        let names = vec!["docs.example.com".to_string()];
        assert!(reach.matches(&Observed::Connect { addr: "10.1.2.3", port: 443, resolved_from: &names }));
        assert!(!reach.matches(&Observed::Connect { addr: "10.1.2.3", port: 80, resolved_from: &names }));
        assert!(!reach.matches(&Observed::Connect { addr: "10.1.2.3", port: 443, resolved_from: &[] }));
        let local = Expected::Reach { host: "localhost".into(), port: Some(8443) };
        assert!(local.matches(&Observed::Connect { addr: "127.0.0.1", port: 8443, resolved_from: &[] }));
    }
}
