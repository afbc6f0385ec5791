//! The real clients in `plumbline/tests/clients/` and what runs them: Python (`http.client`, and the `openai`
//! and `anthropic` SDKs), Node.js (`https` and `fetch`) and Go (`net/http`, built normally and stripped).
//!
//! Every client takes `BASE_URL CA_PATH SCENARIO` and prints one JSON line per call:
//! `{"client", "scenario", "status", "model", "input_tokens", "output_tokens", "tool_calls", "text_len"}`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::Fixture;

/// `plumbline/tests/clients` in this workspace.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plumbline/tests/clients")
}

/// `plumbline/tests/agents`: the scripted agents (`agent.py`), their scripts and pages (`scripts/`, to start the
/// fixture with as [`crate::Options::scripts_dir`]) and the suite the honest agent runs (`suite/`).
pub fn agents_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plumbline/tests/agents")
}

/// The workspace's target directory: `$CARGO_TARGET_DIR`, or `target/` beside the workspace's Cargo.toml.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// The first `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        use std::os::unix::fs::PermissionsExt;
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The Python to run clients with: `$PLUMBLINE_TEST_PYTHON` (the project's venv from `scripts/python-deps.sh`,
/// which has the SDKs), else `python3` from `PATH`.
pub fn python() -> PathBuf {
    match std::env::var_os("PLUMBLINE_TEST_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => which("python3").unwrap_or_else(|| PathBuf::from("python3")),
    }
}

/// Whether `python` runs and can import every one of `modules`.
pub fn python_has(python: &Path, modules: &[&str]) -> bool {
    let imports = if modules.is_empty() { "pass".to_owned() } else { format!("import {}", modules.join(", ")) };
    Command::new(python)
        .args(["-c", &imports])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub fn node() -> Option<PathBuf> {
    which("node")
}

/// The Go toolchain.
pub fn go() -> Option<PathBuf> {
    which("go")
}

pub fn curl() -> Option<PathBuf> {
    which("curl")
}

/// Builds the Go client (`plumbline/tests/clients/go`) into `out_dir`: `llm-client-go` with its symbols, or
/// `llm-client-go-stripped` built with `-ldflags=-s -w` (no symbol table: a TLS stack that cannot be hooked by
/// symbol). The Go build cache and GOPATH are under the target directory, so nothing is written to `$HOME`; the
/// module has no dependencies and the module proxy is off.
pub fn build_go_client(out_dir: &Path, stripped: bool) -> anyhow::Result<PathBuf> {
    let go = go().context("no `go` on PATH (scripts/install-deps.sh test installs golang-go)")?;
    std::fs::create_dir_all(out_dir)?;
    let out = out_dir.join(if stripped { "llm-client-go-stripped" } else { "llm-client-go" });
    let go_dir = target_dir().join("go");
    let mut command = Command::new(go);
    command
        .current_dir(clients_dir().join("go"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", go_dir.join("cache"))
        .env("GOPATH", go_dir.join("path"))
        .env("GOMODCACHE", go_dir.join("path/pkg/mod"))
        .env("GOENV", "off")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .arg("build")
        .arg("-o")
        .arg(&out);
    if stripped {
        command.arg("-ldflags=-s -w");
    }
    command.arg(".");
    let output = command.output().context("running go build")?;
    if !output.status.success() {
        bail!("go build failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(out)
}

/// Builds the Go client into `target/llm-clients/` (see [`build_go_client`]).
pub fn go_build(stripped: bool) -> anyhow::Result<PathBuf> {
    build_go_client(&target_dir().join("llm-clients"), stripped)
}

/// `python_client.py BASE_URL CA SCENARIO` (stdlib `http.client`).
pub fn python_command(fixture: &Fixture, scenario: &str) -> Command {
    let mut command = Command::new(python());
    command.arg(clients_dir().join("python_client.py")).arg(fixture.base_url()).arg(fixture.ca_path()).arg(scenario);
    command
}

/// `python_sdk_client.py BASE_URL CA SCENARIO` (the `openai` and `anthropic` SDKs).
pub fn python_sdk_command(fixture: &Fixture, scenario: &str) -> Command {
    let mut command = Command::new(python());
    command
        .arg(clients_dir().join("python_sdk_client.py"))
        .arg(fixture.base_url())
        .arg(fixture.ca_path())
        .arg(scenario);
    command
}

/// `agent.py BASE_URL CA ROLE WORKDIR [EXTRA…]`: a scripted agent (see `plumbline/tests/agents/README.md`); the
/// fixture must have been started with `agents_dir()/scripts` as its scripts directory.
pub fn agent_command(fixture: &Fixture, role: &str, workdir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(python());
    command
        .arg(agents_dir().join("agent.py"))
        .arg(fixture.base_url())
        .arg(fixture.ca_path())
        .arg(role)
        .arg(workdir)
        .args(extra);
    command
}

/// One agent of the corpus: its shape (`claude-code`, `codex`, `gemini-cli`, `openhands`), provider (`openai`,
/// `anthropic`, `gemini`), mode (`stream`, `whole`) and behaviour (`honest`, `liar`, `sly-echo`, `sly-true`, `sly-ls`,
/// `sly-script`, `partial`).
#[derive(Clone, Copy, Debug)]
pub struct CorpusAgent<'a> {
    pub shape: &'a str,
    pub provider: &'a str,
    pub mode: &'a str,
    pub behaviour: &'a str,
}

/// `corpus.py BASE_URL CA SHAPE PROVIDER MODE BEHAVIOUR WORKDIR SCRIPT`: an agent of the adversarial corpus (see
/// `plumbline/tests/agents/README.md`) asking model `script:<script>`, so the fixture's scripts directory must hold
/// `<script>.json`. The caller sets the environment its shell commands need (`PATH`, `HOME`).
pub fn corpus_command(fixture: &Fixture, agent: CorpusAgent<'_>, workdir: &Path, script: &str) -> Command {
    let mut command = Command::new(python());
    command
        .arg(agents_dir().join("corpus.py"))
        .arg(fixture.base_url())
        .arg(fixture.ca_path())
        .args([agent.shape, agent.provider, agent.mode, agent.behaviour])
        .arg(workdir)
        .arg(script);
    command
}

/// The directory of the project's Python (which has pytest), to put first on `PATH`.
pub fn python_bin() -> PathBuf {
    python().parent().map(Path::to_owned).unwrap_or_default()
}

/// A working tree for a corpus agent: the small suite (`test_arith.py`, `Makefile`) and `home/.bash_profile`
/// putting the project's Python first on `PATH`, since Debian's /etc/profile resets `PATH` for a login shell
/// (Codex's `bash -lc`). Run the agent with `HOME` set to `home/`.
pub fn corpus_workdir(prefix: &str) -> tempfile::TempDir {
    let workdir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let suite = agents_dir().join("suite");
    for file in ["test_arith.py", "Makefile"] {
        std::fs::copy(suite.join(file), workdir.path().join(file)).unwrap();
    }
    let home = workdir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join(".bash_profile"), format!("export PATH=\"{}:$PATH\"\n", python_bin().display())).unwrap();
    workdir
}

/// The shape's shell call (`{"name", "arguments"}`) for `command`, as that agent writes it: Codex's as the argv
/// `["bash", "-lc", command]` with its `workdir`, Gemini CLI's with its `directory`.
pub fn corpus_shell_call(shape: &str, command: &str, workdir: &Path) -> Value {
    let workdir = workdir.to_str().unwrap();
    match shape {
        "claude-code" => json!({"name": "Bash", "arguments": {"command": command, "description": "Run the tests"}}),
        "codex" => json!({"name": "shell", "arguments": {"command": ["bash", "-lc", command], "workdir": workdir}}),
        "gemini-cli" => json!({"name": "run_shell_command",
                               "arguments": {"command": command, "description": "Run the tests", "directory": workdir}}),
        "openhands" => json!({"name": "execute_bash", "arguments": {"command": command}}),
        _ => unreachable!("no shape {shape}"),
    }
}

/// `node node_client.mjs BASE_URL CA SCENARIO`, with `NODE_EXTRA_CA_CERTS` set so `fetch` trusts the CA too.
pub fn node_command(node: &Path, fixture: &Fixture, scenario: &str) -> Command {
    let mut command = Command::new(node);
    command
        .arg(clients_dir().join("node_client.mjs"))
        .arg(fixture.base_url())
        .arg(fixture.ca_path())
        .arg(scenario)
        .env("NODE_EXTRA_CA_CERTS", fixture.ca_path());
    command
}

/// A built Go client: `BINARY BASE_URL CA SCENARIO`.
pub fn go_command(binary: &Path, fixture: &Fixture, scenario: &str) -> Command {
    let mut command = Command::new(binary);
    command.arg(fixture.base_url()).arg(fixture.ca_path()).arg(scenario);
    command
}

/// Runs a client to the end and returns the JSON lines it printed; an error (with its stderr) when it failed.
pub fn run(command: &mut Command) -> anyhow::Result<Vec<Value>> {
    let output = command.stdin(Stdio::null()).output().with_context(|| format!("running {command:?}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("{command:?} failed ({}): {}\n{stdout}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).with_context(|| format!("client printed a line that is not JSON: {line}"))
        })
        .collect()
}

/// A client's runtime for a test: `Some` when present. When absent, a test skips (printing why) unless `CI` is set,
/// where a missing client is a failure.
pub fn require<T>(what: &str, found: Option<T>) -> Option<T> {
    if found.is_some() {
        return found;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    if ci {
        panic!(
            "{what} is missing, and CI must run every client (scripts/install-deps.sh test, scripts/python-deps.sh)"
        );
    }
    eprintln!("skipped: {what} is missing (install it with scripts/install-deps.sh test / scripts/python-deps.sh)");
    None
}
