//! What a shell command runs, as the kernel will see it: the programs it
//! must exec, with their arguments. The command is parsed as bash parses it
//! (`brush-parser`): lists (`;`, `&&`, `||`, `&`), pipelines, subshells and
//! groups, `if`/`while`/`for`/`case`, command substitutions, `bash -lc "…"`
//! and wrappers such as `env`, `sudo`, `timeout`, `nice`, `xargs`. Builtins
//! (`cd`, `echo`, `true`, `export`) run inside the shell and exec nothing, so
//! they are not effects; a program after `||`, or inside a branch or a loop
//! body, may rightly never run, so it is optional.

use brush_parser::ast::{self, AndOr, Command, CommandPrefixOrSuffixItem, CompoundCommand, CompoundList, IoRedirect};
use brush_parser::word::{self, WordPiece, WordPieceWithSource};
use brush_parser::ParserOptions;

/// One word of a command line: a literal, or something the shell expands
/// (a variable, a glob, `~`, `$(…)`) into any number of words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Word(String),
    Any,
}

/// An exec the command makes: `program` (a bare name is found through PATH)
/// with `args`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRun {
    pub program: String,
    pub args: Vec<Arg>,
}

impl ProgramRun {
    /// How it reads: `python -m pytest -q`, expansions as `…`.
    pub fn describe(&self) -> String {
        let mut out = self.program.clone();
        for arg in &self.args {
            out.push(' ');
            match arg {
                Arg::Word(word)
                    if word.is_empty() || word.contains(char::is_whitespace) || word.contains(['*', '?', '[']) =>
                {
                    out.push_str(&format!("'{word}'"))
                }
                Arg::Word(word) => out.push_str(word),
                Arg::Any => out.push('…'),
            }
        }
        out
    }
}

/// The programs a command runs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Runs {
    /// Programs that run whenever the command runs to its end.
    pub required: Vec<ProgramRun>,
    /// Programs that may rightly not run (after `||`, in a branch or a loop).
    pub optional: Vec<ProgramRun>,
    /// Why part of the command cannot be judged (a program named by a
    /// variable, a parse error); empty when all of it can.
    pub unknown: Vec<String>,
}

/// Nesting of `bash -c`, `eval` and substitutions followed before giving up.
const MAX_DEPTH: usize = 8;

/// The programs `command`, a shell command line, runs.
pub fn parse(command: &str) -> Runs {
    let mut runs = Runs::default();
    Walk { runs: &mut runs, functions: Vec::new() }.script(command, true, 0);
    runs
}

/// The programs an argv (Codex's `["bash", "-lc", "…"]`) runs.
pub fn parse_argv(argv: &[String]) -> Runs {
    let mut runs = Runs::default();
    let words = argv.iter().map(|w| Arg::Word(w.clone())).collect();
    Walk { runs: &mut runs, functions: Vec::new() }.words(words, true, 0);
    runs
}

struct Walk<'a> {
    runs: &'a mut Runs,
    /// Functions the script defines: calling one execs nothing.
    functions: Vec<String>,
}

impl Walk<'_> {
    fn script(&mut self, text: &str, required: bool, depth: usize) {
        if depth > MAX_DEPTH {
            self.runs.unknown.push("commands nested too deep".into());
            return;
        }
        let options = ParserOptions::default();
        let mut parser = brush_parser::Parser::new(std::io::BufReader::new(text.as_bytes()), &options);
        match parser.parse_program() {
            Ok(program) => {
                for list in &program.complete_commands {
                    self.list(list, required, depth);
                }
            }
            Err(error) => self.runs.unknown.push(format!("not a shell command bash would parse ({error})")),
        }
    }

    fn list(&mut self, list: &CompoundList, required: bool, depth: usize) {
        for item in &list.0 {
            let and_or = &item.0;
            self.pipeline(&and_or.first, required, depth);
            // After an `||` the rest depends on what failed: optional.
            let mut sure = required;
            for next in &and_or.additional {
                match next {
                    AndOr::And(p) => self.pipeline(p, sure, depth),
                    AndOr::Or(p) => {
                        sure = false;
                        self.pipeline(p, false, depth);
                    }
                }
            }
        }
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline, required: bool, depth: usize) {
        for command in &pipeline.seq {
            self.command(command, required, depth);
        }
    }

    fn command(&mut self, command: &Command, required: bool, depth: usize) {
        match command {
            Command::Simple(simple) => self.simple(simple, required, depth),
            Command::Compound(compound, redirects) => {
                self.compound(compound, required, depth);
                for redirect in redirects.iter().flat_map(|r| &r.0) {
                    self.redirect(redirect, required, depth);
                }
            }
            Command::Function(function) => {
                self.functions.push(function.fname.value.clone());
            }
            Command::ExtendedTest(..) => {}
        }
    }

    fn compound(&mut self, compound: &CompoundCommand, required: bool, depth: usize) {
        match compound {
            CompoundCommand::BraceGroup(group) => self.list(&group.list, required, depth),
            CompoundCommand::Subshell(subshell) => self.list(&subshell.list, required, depth),
            CompoundCommand::IfClause(clause) => {
                self.list(&clause.condition, required, depth);
                self.list(&clause.then, false, depth);
                for other in clause.elses.iter().flatten() {
                    if let Some(condition) = &other.condition {
                        self.list(condition, false, depth);
                    }
                    self.list(&other.body, false, depth);
                }
            }
            CompoundCommand::WhileClause(clause) | CompoundCommand::UntilClause(clause) => {
                self.list(&clause.0, required, depth);
                self.list(&clause.1.list, false, depth);
            }
            CompoundCommand::ForClause(clause) => self.list(&clause.body.list, false, depth),
            CompoundCommand::ArithmeticForClause(clause) => self.list(&clause.body.list, false, depth),
            CompoundCommand::CaseClause(clause) => {
                for case in &clause.cases {
                    if let Some(list) = &case.cmd {
                        self.list(list, false, depth);
                    }
                }
            }
            CompoundCommand::Coprocess(coprocess) => self.command(&coprocess.body, required, depth),
            CompoundCommand::Arithmetic(_) => {}
        }
    }

    fn simple(&mut self, simple: &ast::SimpleCommand, required: bool, depth: usize) {
        let items = simple.prefix.iter().flat_map(|p| &p.0).chain(simple.suffix.iter().flat_map(|s| &s.0));
        for item in items {
            match item {
                CommandPrefixOrSuffixItem::IoRedirect(redirect) => self.redirect(redirect, required, depth),
                CommandPrefixOrSuffixItem::ProcessSubstitution(_, subshell) => {
                    self.list(&subshell.list, required, depth)
                }
                CommandPrefixOrSuffixItem::AssignmentWord(..) => {}
                CommandPrefixOrSuffixItem::Word(_) => {}
            }
        }
        let Some(program) = &simple.word_or_name else { return };
        let mut args = vec![self.word(&program.value, required, depth)];
        for item in simple.suffix.iter().flat_map(|s| &s.0) {
            if let CommandPrefixOrSuffixItem::Word(word) = item {
                args.push(self.word(&word.value, required, depth));
            }
        }
        self.words(args, required, depth);
    }

    fn redirect(&mut self, redirect: &IoRedirect, required: bool, depth: usize) {
        if let IoRedirect::File(_, _, ast::IoFileRedirectTarget::ProcessSubstitution(_, subshell)) = redirect {
            self.list(&subshell.list, required, depth);
        }
    }

    /// A word as the exec will see it; command substitutions inside it run.
    fn word(&mut self, raw: &str, required: bool, depth: usize) -> Arg {
        let options = ParserOptions::default();
        let Ok(pieces) = word::parse(raw, &options) else { return Arg::Any };
        let mut literal = String::new();
        let mut expands = false;
        self.pieces(&pieces, &mut literal, &mut expands, required, depth);
        if expands {
            Arg::Any
        } else {
            Arg::Word(literal)
        }
    }

    fn pieces(
        &mut self,
        pieces: &[WordPieceWithSource],
        literal: &mut String,
        expands: &mut bool,
        required: bool,
        depth: usize,
    ) {
        for piece in pieces {
            match &piece.piece {
                WordPiece::Text(text) => {
                    // Unquoted glob or brace characters expand.
                    let glob = text.contains(['*', '?'])
                        || (text.contains('[') && text.contains(']'))
                        || (text.contains('{') && text.contains('}'));
                    *expands |= glob;
                    literal.push_str(text);
                }
                WordPiece::SingleQuotedText(text) | WordPiece::AnsiCQuotedText(text) => literal.push_str(text),
                WordPiece::EscapeSequence(escaped) => literal.push_str(escaped.strip_prefix('\\').unwrap_or(escaped)),
                WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(inner, literal, expands, required, depth)
                }
                WordPiece::CommandSubstitution(text) | WordPiece::BackquotedCommandSubstitution(text) => {
                    *expands = true;
                    self.script(text, required, depth + 1);
                }
                WordPiece::TildeExpansion(_)
                | WordPiece::ParameterExpansion(_)
                | WordPiece::ArithmeticExpression(_) => *expands = true,
            }
        }
    }

    /// A simple command's words, the program first: wrappers and shells are
    /// looked through to the programs they run.
    fn words(&mut self, mut words: Vec<Arg>, required: bool, depth: usize) {
        loop {
            let Some(first) = words.first() else { return };
            let Arg::Word(program) = first else {
                self.runs.unknown.push("a program named by an expansion".into());
                return;
            };
            let name = program.rsplit('/').next().unwrap_or(program).to_string();
            if !program.contains('/') && (BUILTINS.contains(&name.as_str()) || self.functions.contains(&name)) {
                match name.as_str() {
                    // These run their arguments as a command.
                    // `command -v` and `-V` only look the name up.
                    "command" if words.get(1).is_some_and(|w| matches!(w, Arg::Word(w) if w == "-v" || w == "-V")) => {}
                    "exec" | "command" | "builtin" => {
                        words = skip_options(&words[1..], &["-a"]);
                        continue;
                    }
                    "eval" => {
                        let text: Option<Vec<&str>> = words[1..]
                            .iter()
                            .map(|w| match w {
                                Arg::Word(w) => Some(w.as_str()),
                                Arg::Any => None,
                            })
                            .collect();
                        match text {
                            Some(text) => self.script(&text.join(" "), required, depth + 1),
                            None => self.runs.unknown.push("eval of an expansion".into()),
                        }
                    }
                    _ => {}
                }
                return;
            }
            if let Some(script) = shell_script(&name, &words[1..]) {
                match script {
                    Arg::Word(text) => self.script(&text, required, depth + 1),
                    Arg::Any => self.runs.unknown.push(format!("{name} -c of an expansion")),
                }
                return;
            }
            if let Some(rest) = unwrap(&name, &words[1..]) {
                if rest.is_empty() {
                    // `env` or `sudo` alone still run themselves.
                    break;
                }
                words = rest;
                continue;
            }
            break;
        }
        let mut words = words.into_iter();
        let Some(Arg::Word(program)) = words.next() else { return };
        let run = ProgramRun { program, args: words.collect() };
        if required {
            self.runs.required.push(run);
        } else {
            self.runs.optional.push(run);
        }
    }
}

/// Bash's builtins and keywords that can stand where a program does: they
/// run inside the shell and exec nothing.
const BUILTINS: [&str; 61] = [
    ".",
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
];

/// Shells that take a command string with `-c`.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"];

/// The script of `sh -c SCRIPT`, `bash -lc SCRIPT`, `bash -e -c SCRIPT`.
fn shell_script(name: &str, args: &[Arg]) -> Option<Arg> {
    if !SHELLS.contains(&name) {
        return None;
    }
    let mut takes_command = false;
    for arg in args {
        match arg {
            Arg::Word(flag) if flag.starts_with('-') && flag.len() > 1 && !flag.starts_with("--") => {
                takes_command |= flag[1..].contains('c');
            }
            Arg::Word(flag) if flag.starts_with("--") => {}
            other if takes_command => return Some(other.clone()),
            _ => return None,
        }
    }
    None
}

/// Wrappers that run the rest of their arguments as a command, each with
/// the options that take a value (`sudo -u USER`, `timeout -s KILL 60`).
fn unwrap(name: &str, args: &[Arg]) -> Option<Vec<Arg>> {
    let rest = match name {
        "env" => {
            let rest = skip_options(args, &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"]);
            let assignments = rest.iter().take_while(|w| matches!(w, Arg::Word(w) if w.contains('='))).count();
            rest[assignments..].to_vec()
        }
        "sudo" | "doas" => skip_options(args, &["-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T"]),
        "timeout" => skip_options(args, &["-s", "--signal", "-k", "--kill-after"]).into_iter().skip(1).collect(),
        "nice" => skip_options(args, &["-n", "--adjustment"]),
        "ionice" => skip_options(args, &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"]),
        "stdbuf" => skip_options(args, &["-i", "-o", "-e"]),
        "time" => skip_options(args, &["-f", "--format", "-o", "--output"]),
        "nohup" | "setsid" | "unbuffer" => skip_options(args, &[]),
        // The CPU mask or list comes first.
        "taskset" => skip_options(args, &[]).into_iter().skip(1).collect(),
        "xargs" => {
            let mut rest = skip_options(args, &["-n", "-P", "-I", "-L", "-s", "-d", "-E", "-a", "--max-args"]);
            // It adds the words it reads.
            if !rest.is_empty() {
                rest.push(Arg::Any);
            }
            rest
        }
        _ => return None,
    };
    Some(rest)
}

/// `args` after the leading options (`-x`, `--long`, `--long=value`), where
/// the options named in `with_value` take the next word as their value.
fn skip_options(args: &[Arg], with_value: &[&str]) -> Vec<Arg> {
    let mut i = 0;
    while let Some(Arg::Word(word)) = args.get(i) {
        if word == "--" {
            i += 1;
            break;
        }
        if !word.starts_with('-') || word == "-" {
            break;
        }
        i += if with_value.contains(&word.as_str()) { 2 } else { 1 };
    }
    args.get(i..).map(<[Arg]>::to_vec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The required programs as text.
    fn required(command: &str) -> Vec<String> {
        let runs = parse(command);
        assert!(runs.unknown.is_empty(), "{command}: {:?}", runs.unknown);
        runs.required.iter().map(ProgramRun::describe).collect()
    }

    fn optional(command: &str) -> Vec<String> {
        parse(command).optional.iter().map(ProgramRun::describe).collect()
    }

    #[test]
    fn lists_and_pipelines_run_every_program_builtins_none() {
        assert_eq!(required("cd proj && python -m pytest -q"), ["python -m pytest -q"]);
        assert_eq!(
            required("make -j4 all; ./run.sh 'a b' | tee log.txt"),
            ["make -j4 all", "./run.sh 'a b'", "tee log.txt"]
        );
        assert_eq!(required("python -m pytest -q || true"), ["python -m pytest -q"]);
        assert_eq!(optional("pytest -q || echo failed; ls"), Vec::<String>::new());
        assert_eq!(optional("make || make clean && make"), ["make clean", "make"]);
        assert!(required("echo python -m pytest -q").is_empty());
        assert!(required("cd /tmp && export X=1 && true && printf 'x\\n' && [ -f a ]").is_empty());
        assert_eq!(required("(cd sub && cargo test) && { npm test; }"), ["cargo test", "npm test"]);
    }

    #[test]
    fn shells_and_wrappers_are_looked_through() {
        assert_eq!(required("bash -lc \"cd /w && python -m pytest -q\""), ["python -m pytest -q"]);
        assert_eq!(required("sh -c 'echo python -m pytest -q'"), Vec::<String>::new());
        assert_eq!(required("bash -e -c 'uv run pytest tests/'"), ["uv run pytest tests/"]);
        assert_eq!(required("sudo -u build env CI=1 timeout -s KILL 60 nice -n 5 make test"), ["make test"]);
        assert_eq!(required("RUST_LOG=debug cargo test --workspace 2>&1 > out.log"), ["cargo test --workspace"]);
        assert_eq!(required("exec python3 app.py"), ["python3 app.py"]);
        assert_eq!(required("eval 'pytest -x'"), ["pytest -x"]);
        assert_eq!(
            required("find . -name '*.py' | xargs -n 1 python -m py_compile"),
            ["find . -name '*.py'", "python -m py_compile …"]
        );
        assert_eq!(required("bash script.sh"), ["bash script.sh"]);
        let argv = ["bash", "-lc", "cd /w && make test"].map(String::from);
        assert_eq!(
            parse_argv(&argv).required,
            [ProgramRun { program: "make".into(), args: vec![Arg::Word("test".into())] }]
        );
        let argv = ["python3", "-m", "pytest"].map(String::from);
        assert_eq!(parse_argv(&argv).required[0].describe(), "python3 -m pytest");
    }

    #[test]
    fn expansions_are_any_words_and_substitutions_run() {
        assert_eq!(required("pytest $ARGS tests/*.py ~/x"), ["pytest … … …"]);
        assert_eq!(required("python -m pytest $(git ls-files tests)"), ["git ls-files tests", "python -m pytest …"]);
        assert_eq!(required("echo \"$(date)\""), ["date"]);
        assert_eq!(required("grep -q \"a b\" 'c d' e\\ f"), ["grep -q 'a b' 'c d' 'e f'"]);
    }

    #[test]
    fn branches_and_loop_bodies_are_optional_functions_are_not_programs() {
        let runs = parse("if command -v pytest; then pytest -q; else python -m pytest -q; fi");
        assert_eq!(runs.required.iter().map(ProgramRun::describe).collect::<Vec<_>>(), Vec::<String>::new());
        assert_eq!(runs.optional.len(), 2);
        assert_eq!(optional("for f in *.py; do python $f; done"), ["python …"]);
        assert_eq!(required("while ./poll.sh; do sleep 1; done"), ["./poll.sh"]);
        assert!(required("t() { pytest; }; t").is_empty());
    }

    #[test]
    fn what_cannot_be_judged_says_why() {
        assert!(!parse("$RUNNER test").unknown.is_empty());
        assert!(!parse("echo 'unterminated").unknown.is_empty());
        assert!(!parse("bash -c \"$SCRIPT\"").unknown.is_empty());
    }
}
