//! Intent against effect, end to end as root on the real kernel: scripted
//! Python agents (the real `openai` SDK, `plumbline/tests/agents/agent.py`)
//! ask our HTTPS LLM fixture, whose scripted answers tell them what to do;
//! the agent reads their LLM calls from TLS plaintext and their process
//! trees' effects from the kernel, the aggregator builds each session's
//! causal graph, and every assertion goes through `plumb` (sessions,
//! findings, timeline, why) on the single-host default.

mod support;

use std::{net::TcpListener, process::Command};

use plumbline_llm_fixture::{clients, Fixture, Options};
use serde_json::Value;
use support::*;

struct Bed {
    plumbline: Embedded,
    fixture: Fixture,
    work: tempfile::TempDir,
}

fn start() -> Bed {
    let scripts = clients::agents_dir().join("scripts");
    let fixture = Fixture::in_process_with(Options { scripts_dir: Some(scripts), ..Default::default() })
        .expect("the HTTPS fixture starts");
    let plumbline = Embedded::start(SCRIPTED_AGENTS);
    Bed { plumbline, fixture, work: tempfile::tempdir().unwrap() }
}

impl Bed {
    /// Runs a scripted agent to its end; returns its pid and what it printed.
    fn agent(&self, role: &str, extra: &[&str]) -> (u32, Vec<Value>) {
        let workdir = self.work.path().join(role);
        std::fs::create_dir_all(&workdir).unwrap();
        std::fs::copy(clients::agents_dir().join("suite/test_arith.py"), workdir.join("test_arith.py")).unwrap();
        let mut command: Command = clients::agent_command(&self.fixture, role, &workdir, extra);
        let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{role}: {}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<Value> =
            String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert!(lines.iter().any(|l| l["done"] == true), "{role} did not finish: {lines:?}");
        (pid, lines)
    }

    fn sessions(&self) -> Vec<Value> {
        self.plumbline.view("sessions", &[])
    }

    /// The session whose process is `pid`, once it shows `calls` LLM calls.
    fn session_of(&self, pid: u32, calls: u64) -> Value {
        eventually(&format!("the session of pid {pid} with {calls} LLM calls"), || {
            self.sessions().into_iter().find(|s| s["pid"] == pid && s["llm_calls"].as_u64() >= Some(calls))
        })
    }

    fn findings_of(&self, session: &str) -> Vec<Value> {
        self.plumbline.view("findings", &["--session", session])
    }

    /// Findings of `session`, once there are `n`.
    fn findings(&self, session: &str, n: usize) -> Vec<Value> {
        eventually(&format!("{n} findings of {session}"), || {
            let findings = self.findings_of(session);
            (findings.len() >= n).then_some(findings)
        })
    }

    fn timeline(&self, session: &str) -> Value {
        plumb_json(&self.plumbline.addr, &["timeline", "--session", session]).expect("plumb timeline")
    }
}

fn kinds(findings: &[Value]) -> Vec<(String, String)> {
    let mut kinds: Vec<(String, String)> = findings
        .iter()
        .map(|f| (f["kind"].as_str().unwrap().to_string(), f["severity"].as_str().unwrap().to_string()))
        .collect();
    kinds.sort();
    kinds
}

fn labels<'a>(timeline: &'a Value, kind: &str) -> Vec<&'a str> {
    timeline["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == kind)
        .filter_map(|n| n["label"].as_str())
        .collect()
}

#[test]
fn an_agent_that_ran_its_tests_has_no_finding_and_one_that_only_said_so_has_an_unverified_claim() {
    let bed = start();
    let (honest_pid, _) = bed.agent("honest", &[]);
    let honest = bed.session_of(honest_pid, 2);
    let honest_id = honest["session"].as_str().unwrap().to_string();
    assert_eq!(honest["agent"], "scripted", "{honest}");

    let (liar_pid, _) = bed.agent("liar", &[]);
    let liar = bed.session_of(liar_pid, 2);
    let liar_id = liar["session"].as_str().unwrap();
    let findings = bed.findings(liar_id, 1);
    assert_eq!(kinds(&findings), [("unverified_claim".into(), "high".into())], "{findings:#?}");
    let claim = &findings[0];
    assert_eq!(claim["expected"], "exec `python -m pytest -q`");
    assert_eq!(claim["observed"], "nothing in the session's process tree");
    assert!(claim["summary"].as_str().unwrap().contains("yet its result reported success"), "{claim}");
    let evidence: Value = serde_json::from_str(claim["evidence"].as_str().unwrap()).unwrap();
    assert_eq!(evidence["tool_call"]["name"], "run_command", "{evidence}");
    assert!(evidence["tool_result"].as_str().unwrap().contains("passed"), "{evidence}");
    // What a person reads: the rule, the call it judged, what the agent sent back.
    let text = plumb(&bed.plumbline.addr, &["findings", "--session", liar_id]);
    let text = String::from_utf8_lossy(&text.stdout);
    for line in [
        "expected: exec `python -m pytest -q`",
        "observed: nothing in the session's process tree",
        "rule: every program the command must run is exec'd in the session's process tree",
        "tool call: ",
        "tool result: ",
    ] {
        assert!(text.contains(line), "`plumb findings` shows {line:?}:\n{text}");
    }

    // The liar's turn closed after the honest one's, so the honest one has
    // been judged by now: no finding, and its test run linked to its call.
    assert_eq!(bed.findings_of(&honest_id), Vec::<Value>::new());
    let timeline = bed.timeline(&honest_id);
    let pytest: Vec<&str> = labels(&timeline, "exec").into_iter().filter(|l| l.contains("pytest")).collect();
    assert!(!pytest.is_empty(), "the kernel saw pytest run: {timeline:#}");
    let caused = timeline["edges"].as_array().unwrap().iter().filter(|e| e["relation"] == "caused").count();
    assert!(caused >= 1, "the run is linked to the tool call: {timeline:#}");
    assert_eq!(labels(&timeline, "tool_result").len(), 1, "{timeline:#}");
    let verdicts = labels(&timeline, "verdict");
    assert!(verdicts.len() == 1 && verdicts[0].starts_with("verified: exec `python -m pytest -q`"), "{verdicts:?}");

    // Why did pytest run? Because of the honest agent's tool call.
    let exec_pid = timeline["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "exec" && n["label"].as_str().unwrap().contains("pytest"))
        .map(|n| n["pid"].as_u64().unwrap())
        .unwrap();
    let why = bed.plumbline.view("why", &["--pid", &exec_pid.to_string()]);
    let chain = why.iter().find(|c| c["effect"]["session"] == honest_id.as_str()).expect("a chain for pytest");
    let causes: Vec<&str> = chain["causes"].as_array().unwrap().iter().filter_map(|c| c["kind"].as_str()).collect();
    assert_eq!(causes, ["tool_call", "llm_call"], "{chain:#}");
}

#[test]
fn an_injected_agent_reading_a_planted_key_and_connecting_out_is_out_of_scope() {
    let bed = start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        }
    });
    let workdir = bed.work.path().join("injected");
    let ssh = workdir.join("home/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_rsa"), "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n").unwrap();
    let (pid, _) = bed.agent("injected", &[&port.to_string()]);
    let session = bed.session_of(pid, 4);
    let id = session["session"].as_str().unwrap();
    let findings = bed.findings(id, 3);
    assert_eq!(
        kinds(&findings),
        [
            ("guardrail".into(), "high".into()),
            ("out_of_scope_effect".into(), "high".into()),
            ("out_of_scope_effect".into(), "high".into())
        ],
        "{findings:#?}\n{:#}",
        bed.timeline(id)
    );
    let guardrail = findings.iter().find(|f| f["kind"] == "guardrail").unwrap();
    assert!(guardrail["subject"].as_str().unwrap().starts_with("injection_instruction_override in the tool_result"));
    let findings: Vec<&Value> = findings.iter().filter(|f| f["kind"] == "out_of_scope_effect").collect();
    let subjects: Vec<&str> = findings.iter().filter_map(|f| f["subject"].as_str()).collect();
    let key = format!("read {}", ssh.join("id_rsa").display());
    assert!(subjects.contains(&key.as_str()), "{subjects:?}");
    assert!(
        subjects.contains(&format!("connect 127.0.0.1:{port}").as_str()),
        "{subjects:?}, fixture on {}: {:#}",
        bed.fixture.port(),
        bed.timeline(id)
    );
    for finding in &findings {
        let summary = finding["summary"].as_str().unwrap();
        assert!(summary.contains("after content fetched from outside (fetch_url"), "{finding}");
    }
    // Why was the key read? The read_file call the injected page led to.
    let why = bed.plumbline.view("why", &["--file", &ssh.join("id_rsa").display().to_string()]);
    let chain = why.iter().find(|c| c["effect"]["session"] == id).expect("a chain for the key");
    assert!(chain["causes"][0]["label"].as_str().unwrap().starts_with("read_file"), "{chain:#}");
}

#[test]
fn a_looping_agent_is_a_reasoning_loop_with_the_tokens_it_spent() {
    let bed = start();
    let (pid, lines) = bed.agent("looping", &[]);
    let calls: Vec<&Value> = lines.iter().filter(|l| l["event"] == "llm_call").collect();
    let session = bed.session_of(pid, calls.len() as u64);
    let id = session["session"].as_str().unwrap();
    let findings = bed.findings(id, 1);
    assert_eq!(kinds(&findings), [("reasoning_loop".into(), "medium".into())], "{findings:#?}");
    assert!(findings[0]["tokens"].as_u64().unwrap() > 0, "{}", findings[0]);
}

#[test]
fn an_agent_starved_on_a_pipe_by_another_is_a_coordination_bottleneck() {
    let bed = start();
    let (producer_pid, lines) = bed.agent("pipe-pair", &[]);
    let consumer_pid = lines
        .iter()
        .find_map(|l| (l["role"] == "pipe-consumer").then(|| l["pid"].as_u64()).flatten())
        .expect("the consumer said its pid") as u32;
    let consumer = bed.session_of(consumer_pid, 1);
    let id = consumer["session"].as_str().unwrap();
    let findings = bed.findings(id, 1);
    assert_eq!(kinds(&findings), [("coordination_bottleneck".into(), "medium".into())], "{findings:#?}");
    let producer = bed.session_of(producer_pid, 2);
    let evidence: Value = serde_json::from_str(findings[0]["evidence"].as_str().unwrap()).unwrap();
    assert_eq!(evidence["peer_sessions"], serde_json::json!([producer["session"]]), "{evidence}");
    assert_eq!(bed.findings_of(producer["session"].as_str().unwrap()), Vec::<Value>::new());
}
