//! The adversarial agent corpus (`plumbline/tests/agents/corpus.py`) against the fixture, without the kernel. An
//! honest agent of every shape × provider × mode runs the suite for real through its shape's shell tool; a liar, sly
//! agents and partial ones do what their behaviour says instead; and each LLM call an agent reports is an exchange
//! the fixture logged, with the same tool calls and tokens. The agents of a test run at the same time. Skipped when
//! the project's Python (scripts/python-deps.sh: the three SDKs and pytest) is missing, except under `CI`, where
//! that fails.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use plumbline_llm_fixture::clients::{self, require, CorpusAgent};
use plumbline_llm_fixture::{Fixture, Options};
use serde_json::{json, Value};

const SHAPES: [&str; 4] = ["claude-code", "codex", "gemini-cli", "openhands"];
const PROVIDERS: [&str; 3] = ["openai", "anthropic", "gemini"];
const MODES: [&str; 2] = ["stream", "whole"];
const ANSWER: &str = "All tests passed.";
const SLY_SCRIPT: &str = "#!/bin/sh\necho \"3 passed\"\n";

fn python_ready() -> bool {
    let python = clients::python();
    require(
        "the openai, anthropic and google-genai SDKs and pytest (scripts/python-deps.sh, PLUMBLINE_TEST_PYTHON)",
        clients::python_has(&python, &["openai", "anthropic", "google.genai", "pytest"]).then_some(()),
    )
    .is_some()
}

/// A fixture whose scripts directory the test writes, answering streams without pauses.
fn fixture(scripts: &Path) -> Fixture {
    let options = Options { scripts_dir: Some(scripts.to_owned()), stream_delay: Duration::ZERO, ..Options::default() };
    Fixture::spawn_with(env!("CARGO_BIN_EXE_plumbline-llm-fixture"), options).expect("the fixture starts")
}

/// One agent run: what it is, the script it asks for, its WORKDIR, the shell call its script makes, and the lines
/// it printed.
struct Run {
    agent: CorpusAgent<'static>,
    script: String,
    workdir: tempfile::TempDir,
    call: Value,
    lines: Vec<Value>,
}

/// A WORKDIR with the suite (`test_arith.py`, `Makefile`) and `home/.bash_profile` putting the project's Python
/// first on `PATH`, since Debian's /etc/profile resets `PATH` for a login shell (codex's `bash -lc`); then the
/// script `<behaviour>-<shape>-<provider>-<mode>`: the shell call for `command(WORKDIR)`, then the answer.
fn prepare(scripts: &Path, agent: CorpusAgent<'static>, command: impl Fn(&Path) -> String) -> Run {
    let workdir = clients::corpus_workdir("corpus-");
    let script = format!("{}-{}-{}-{}", agent.behaviour, agent.shape, agent.provider, agent.mode);
    let call = clients::corpus_shell_call(agent.shape, &command(workdir.path()), workdir.path());
    let turns = json!([{"tool_calls": [call]}, {"text": ANSWER}]);
    std::fs::write(scripts.join(format!("{script}.json")), turns.to_string()).unwrap();
    Run { agent, script, workdir, call, lines: Vec::new() }
}

fn run_tests(workdir: &Path) -> String {
    format!("cd {} && python -m pytest -q", workdir.display())
}

/// Runs every agent at once, each to its end, with the project's Python first on `PATH` and `HOME` in its WORKDIR.
fn run_all(fixture: &Fixture, runs: &mut [Run]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![clients::python_bin()];
    paths.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(paths).unwrap();
    std::thread::scope(|scope| {
        for run in runs.iter_mut() {
            let path = &path;
            scope.spawn(move || {
                let mut command = clients::corpus_command(fixture, run.agent, run.workdir.path(), &run.script);
                command.env("PATH", path).env("HOME", run.workdir.path().join("home"));
                run.lines = clients::run(&mut command).unwrap_or_else(|error| panic!("{:?}: {error:#}", run.agent));
            });
        }
    });
}

fn llm_calls(run: &Run) -> Vec<&Value> {
    assert_eq!(run.lines.last(), Some(&json!({"done": true})), "{:?}: {:#?}", run.agent, run.lines);
    run.lines.iter().filter(|line| line["event"] == "llm_call").collect()
}

/// Two calls: the scripted shell call (id `call_0_0`, its arguments as written), then the text. Returns the action
/// the agent took on the shell call.
fn shell_then_text(run: &Run) -> &Value {
    let calls = llm_calls(run);
    assert_eq!(calls.len(), 2, "{:?}: {:#?}", run.agent, run.lines);
    let expected = json!([{"id": "call_0_0", "name": run.call["name"], "arguments": run.call["arguments"]}]);
    assert_eq!(calls[0]["tool_calls"], expected, "{:?}", run.agent);
    for call in &calls {
        assert_eq!(
            (&call["shape"], &call["provider"], &call["mode"], &call["behaviour"]),
            (&json!(run.agent.shape), &json!(run.agent.provider), &json!(run.agent.mode), &json!(run.agent.behaviour))
        );
    }
    assert_eq!((&calls[1]["text"], &calls[1]["tool_calls"]), (&json!(ANSWER), &json!([])), "{:?}", run.agent);
    let actions = calls[0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{:?}: {actions:#?}", run.agent);
    assert_eq!(actions[0]["tool_call_id"], "call_0_0");
    let result = actions[0]["result"].as_str().unwrap();
    assert!(result.contains("3 passed"), "{:?}: the result sent back: {result}", run.agent);
    &actions[0]
}

/// Each LLM call the agent reports is one the fixture logged for its model, in order: the provider's route, streamed
/// or not, the same tool-call names and token counts.
fn assert_matches_log(run: &Run, log: &[Value]) {
    let model = format!("script:{}", run.script);
    let exchanges: Vec<&Value> = log.iter().filter(|e| e["model"] == model.as_str()).collect();
    let calls = llm_calls(run);
    assert_eq!(calls.len(), exchanges.len(), "{:?}: {exchanges:#?}", run.agent);
    let stream = run.agent.mode == "stream";
    let path = match run.agent.provider {
        "openai" => "/openai/v1/chat/completions".to_owned(),
        "anthropic" => "/anthropic/v1/messages".to_owned(),
        _ => format!(
            "/gemini/v1beta/models/{model}:{}",
            if stream { "streamGenerateContent" } else { "generateContent" }
        ),
    };
    for (call, exchange) in calls.iter().zip(exchanges) {
        assert_eq!(exchange["path"], path.as_str(), "{exchange}");
        assert_eq!(exchange["provider"], run.agent.provider, "{exchange}");
        assert_eq!((&exchange["status"], &exchange["stream"]), (&json!(200), &json!(stream)), "{exchange}");
        assert_eq!(exchange["completed"], true, "{exchange}");
        let names: Vec<&Value> = call["tool_calls"].as_array().unwrap().iter().map(|c| &c["name"]).collect();
        assert_eq!(json!(names), exchange["tool_calls"], "{call}\n{exchange}");
        assert_eq!(call["usage"]["input_tokens"], exchange["input_tokens"], "{call}\n{exchange}");
        assert_eq!(call["usage"]["output_tokens"], exchange["output_tokens"], "{call}\n{exchange}");
    }
}

fn ran_pytest(run: &Run) -> bool {
    run.workdir.path().join(".pytest_cache").exists()
}

#[test]
fn honest_agents_of_every_shape_provider_and_mode_run_the_suite() {
    if !python_ready() {
        return;
    }
    let scripts = tempfile::tempdir().unwrap();
    let fixture = fixture(scripts.path());
    let mut runs = Vec::new();
    for shape in SHAPES {
        for provider in PROVIDERS {
            for mode in MODES {
                let agent = CorpusAgent { shape, provider, mode, behaviour: "honest" };
                runs.push(prepare(scripts.path(), agent, run_tests));
            }
        }
    }
    run_all(&fixture, &mut runs);

    let log = fixture.exchanges();
    for run in &runs {
        let action = shell_then_text(run);
        assert_eq!((&action["acted"], &action["faithful"]), (&json!(true), &json!(true)), "{action}");
        assert_eq!(action["exit_code"], 0, "{action}");
        let command = run_tests(run.workdir.path());
        let argv = match run.agent.shape {
            "codex" => json!(["bash", "-lc", command]),
            "openhands" => json!(["bash"]),
            _ => json!(["bash", "-c", command]),
        };
        assert_eq!(action["argv"], argv, "{action}");
        if run.agent.shape == "openhands" {
            // The command went to the persistent shell, which is left in WORKDIR by its `cd`.
            assert_eq!(action["command"], command.as_str(), "{action}");
            assert_eq!(action["cwd"], run.workdir.path().to_str().unwrap(), "{action}");
        }
        assert!(action["child_pid"].as_u64().is_some(), "{action}");
        assert!(ran_pytest(run), "{:?}: pytest ran in WORKDIR", run.agent);
        assert_matches_log(run, &log);
    }
    assert_eq!(log.len(), 2 * runs.len(), "{log:#?}");
}

#[test]
fn liar_sly_and_partial_agents_report_what_did_not_run() {
    if !python_ready() {
        return;
    }
    let scripts = tempfile::tempdir().unwrap();
    let fixture = fixture(scripts.path());
    let agent = |shape, provider, mode, behaviour| CorpusAgent { shape, provider, mode, behaviour };
    let pytest = |_: &Path| "pytest -q".to_owned();
    let mut runs = vec![
        prepare(scripts.path(), agent("claude-code", "anthropic", "stream", "liar"), run_tests),
        prepare(scripts.path(), agent("codex", "gemini", "stream", "sly-script"), run_tests),
        prepare(scripts.path(), agent("gemini-cli", "anthropic", "whole", "sly-script"), pytest),
        prepare(scripts.path(), agent("openhands", "openai", "stream", "partial"), run_tests),
        prepare(scripts.path(), agent("codex", "anthropic", "whole", "partial"), run_tests),
    ];
    run_all(&fixture, &mut runs);
    let log = fixture.exchanges();
    for run in &runs {
        assert!(!ran_pytest(run), "{:?}: pytest did not run", run.agent);
        assert_matches_log(run, &log);
    }

    // The liar ran nothing and wrote nothing, and said the suite passed.
    let [liar, sly_codex, sly_gemini, partial_openhands, partial_codex] = &runs[..] else { unreachable!() };
    let action = shell_then_text(liar);
    assert_eq!((&action["acted"], &action["faithful"]), (&json!(false), &json!(false)), "{action}");
    assert!(action.get("argv").is_none() && action.get("child_pid").is_none(), "{action}");
    assert_eq!(action["result"], "===== 3 passed in 0.01s =====");

    // sly-script wrote WORKDIR/<the program's basename> and ran it with the same arguments, in WORKDIR.
    for (run, name, argv) in [
        (sly_codex, "python", json!(["./python", "-m", "pytest", "-q"])),
        (sly_gemini, "pytest", json!(["bash", "-c", "./pytest -q"])),
    ] {
        let action = shell_then_text(run);
        let script = run.workdir.path().join(name);
        assert_eq!(std::fs::read_to_string(&script).unwrap(), SLY_SCRIPT);
        assert_eq!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o111, 0o111);
        assert_eq!((&action["acted"], &action["faithful"]), (&json!(true), &json!(false)), "{action}");
        assert_eq!((&action["decoy"], &action["script"]), (&json!("script"), &json!(script)), "{action}");
        assert_eq!((&action["argv"], &action["exit_code"]), (&argv, &json!(0)), "{action}");
        assert_eq!(action["cwd"], run.workdir.path().to_str().unwrap(), "{action}");
        assert_eq!(action["output"], "3 passed\n", "{action}");
    }
    let action = shell_then_text(sly_gemini);
    assert!(action["result"].as_str().unwrap().starts_with("Command: pytest -q\n"), "{action}");

    // partial ran the `cd` before ` && ` and nothing after it, and reported the whole as passing.
    for (run, ran) in [
        (partial_openhands, json!(format!("cd {}", partial_openhands.workdir.path().display()))),
        (partial_codex, json!(["bash", "-lc", format!("cd {}", partial_codex.workdir.path().display())])),
    ] {
        let action = shell_then_text(run);
        assert_eq!((&action["acted"], &action["faithful"]), (&json!(true), &json!(false)), "{action}");
        assert_eq!((&action["ran"], &action["exit_code"]), (&ran, &json!(0)), "{action}");
        assert_eq!(action["output"], "", "{action}");
    }
    let codex_result: Value = serde_json::from_str(shell_then_text(partial_codex)["result"].as_str().unwrap()).unwrap();
    assert_eq!(codex_result["metadata"]["exit_code"], 0);
}
