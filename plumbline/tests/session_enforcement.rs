//! Workload enforcement in the agent session graph, end to end as root on
//! this kernel: a scripted agent (`plumbline/tests/agents/agent.py`, the
//! real `openai` SDK against our HTTPS LLM fixture) runs under a role in
//! enforce mode, started with `plumbline enforce wrap`; its LLM asks for an
//! exec the role does not allow and a connection it does not allow. The
//! kernel kills the one and refuses the other, and `plumb timeline` shows
//! each tool call with what the policy decided about it; the honest agent,
//! whose actions the policy stopped, has no finding against it.

mod support;

use std::{net::TcpListener, path::PathBuf, process::Command};

use plumbline_llm_fixture::{clients, Fixture, Options};
use serde_json::Value;
use support::*;

/// What the LLM tells the agent: `touch` a file, then connect to the test's
/// listener; then it answers in text. The fixture fills in the agent's
/// WORKDIR and EXFIL_PORT.
const SCRIPT: &str = r#"[
  {"tool_calls": [{"name": "run_command", "arguments": {"command": "touch {WORKDIR}/touched"}}]},
  {"tool_calls": [{"name": "connect", "arguments": {"host": "127.0.0.2", "port": "{EXFIL_PORT}"}}]},
  {"text": "Neither worked: the file was not created and the connection was refused."}
]"#;

/// A role that may run only the agent's Python and reach only the LLM
/// fixture, in enforce mode.
fn policy(fixture_port: u16) -> String {
    let python = std::fs::canonicalize(clients::python()).unwrap();
    format!(
        "[[roles]]\nname = \"agent\"\nmode = \"enforce\"\n[roles.exec]\nallow = [\"{}\"]\n\
         [roles.network]\nallow = [\"127.0.0.1:{fixture_port}\", \"[::1]:{fixture_port}\"]\n\
         [[workloads]]\nrole = \"agent\"\nfield = \"COMMAND_LINE\"\npattern = \"never-matches-{}\"\n",
        python.parent().unwrap().display(),
        uuid::Uuid::new_v4().simple()
    )
}

struct Bed {
    plumbline: Embedded,
    fixture: Fixture,
    socket: PathBuf,
    work: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

fn start() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    // The `honest` role does what its LLM says and sends back the real
    // output; this script is what its LLM says.
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    std::fs::write(scripts.join("honest.json"), SCRIPT).unwrap();
    let fixture = Fixture::in_process_with(Options { scripts_dir: Some(scripts), ..Default::default() })
        .expect("the HTTPS fixture starts");
    let (policy_file, socket) = (dir.path().join("policy.toml"), dir.path().join("enforce.sock"));
    std::fs::write(&policy_file, policy(fixture.port())).unwrap();
    let config = format!(
        "[capture.intent]\n\
         [[capture.intent.endpoints]]\nprovider = \"openai\"\nhost = \"localhost\"\n\
         path_prefix = \"/openai/v1/chat/completions\"\nformat = \"openai_chat\"\n\
         [[capture.intent.agents]]\nagent = \"scripted\"\npriority = 10\nfield = \"COMMAND_LINE\"\n\
         pattern = 'agent\\.py'\n\
         [capture.enforce]\npolicy_file = \"{}\"\ncontrol_socket = \"{}\"\n\
         [pipeline.sessions]\nsettle_ms = 2000\nwindow_ms = 30000\negress_allow = [\"pypi.org\"]\n",
        policy_file.display(),
        socket.display()
    );
    let plumbline = Embedded::start(&config);
    Bed { plumbline, fixture, socket, work: tempfile::tempdir().unwrap(), _dir: dir }
}

impl Bed {
    /// Runs the agent enrolled in role `agent` to its end; returns its pid
    /// and what it printed.
    fn agent(&self, exfil_port: u16) -> (u32, Vec<Value>) {
        let port = exfil_port.to_string();
        let agent = clients::agent_command(&self.fixture, "honest", self.work.path(), &[&port]);
        let mut wrapped = Command::new(env!("CARGO_BIN_EXE_plumbline"));
        wrapped.args(["enforce", "wrap", "agent", "--socket"]).arg(&self.socket).arg("--");
        wrapped.arg(agent.get_program()).args(agent.get_args());
        let child = wrapped.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "the agent: {}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<Value> =
            String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert!(lines.iter().any(|l| l["done"] == true), "the agent did not finish: {lines:?}");
        (pid, lines)
    }

    fn timeline(&self, session: &str) -> Value {
        plumb_json(&self.plumbline.addr, &["timeline", "--session", session]).expect("plumb timeline")
    }
}

fn nodes<'a>(timeline: &'a Value, kind: &str) -> Vec<&'a Value> {
    timeline["nodes"].as_array().unwrap().iter().filter(|n| n["kind"] == kind).collect()
}

/// The labels of the nodes an edge of `relation` leads to from the node
/// labelled `from`.
fn linked<'a>(timeline: &'a Value, from: &str, relation: &str) -> Vec<&'a str> {
    let label = |id: &Value| timeline["nodes"].as_array().unwrap().iter().find(|n| n["node"] == *id);
    timeline["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["relation"] == relation && label(&e["from_node"]).is_some_and(|n| n["label"] == from))
        .filter_map(|e| label(&e["to_node"])?["label"].as_str())
        .collect()
}

#[test]
fn a_tool_call_the_policy_refused_shows_the_decision_and_the_honest_agent_has_no_finding() {
    let bed = start();
    let exfil = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = exfil.local_addr().unwrap().port();
    let (pid, lines) = bed.agent(port);

    // What the agent saw: touch died of SIGKILL, the connect failed with EPERM.
    let actions: Vec<&Value> = lines.iter().flat_map(|l| l["actions"].as_array().into_iter().flatten()).collect();
    assert_eq!(actions.len(), 2, "{lines:?}");
    assert_eq!(actions[0]["exit_code"], -9, "{}", actions[0]);
    assert!(actions[1]["result"].as_str().unwrap().contains("Operation not permitted"), "{}", actions[1]);
    assert!(!bed.work.path().join("touched").exists(), "touch never ran");

    let session = eventually(&format!("the session of pid {pid} with 3 LLM calls"), || {
        let sessions = bed.plumbline.view("sessions", &[]);
        sessions.into_iter().find(|s| s["pid"] == pid && s["llm_calls"].as_u64() >= Some(3))
    });
    let id = session["session"].as_str().unwrap().to_string();
    // Both tool calls judged, and both decisions in the graph.
    let timeline = eventually_showing("both tool calls judged", || {
        let timeline = bed.timeline(&id);
        match (nodes(&timeline, "verdict").len(), nodes(&timeline, "enforcement").len()) {
            (2, 2) => Ok(timeline),
            _ => Err(format!("{timeline:#}")),
        }
    });

    let tool = |name: &str| {
        let mut labels = nodes(&timeline, "tool_call").into_iter().filter_map(|n| n["label"].as_str());
        labels.find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {timeline:#}")).to_string()
    };
    let (touch, connect) = (tool("run_command "), tool("connect "));
    let killed = linked(&timeline, &touch, "killed_after");
    assert_eq!(killed, ["exec /usr/bin/touch KILLED by role agent (exec, enforce)"], "{timeline:#}");
    let denied = linked(&timeline, &connect, "denied");
    assert_eq!(denied, [format!("connect 127.0.0.2:{port} DENIED by role agent (network, enforce)")], "{timeline:#}");

    // Not verified by the exec the kernel killed, not accused either: the
    // claim is unverified and the policy is why.
    let verdicts: Vec<&str> = nodes(&timeline, "verdict").iter().filter_map(|n| n["label"].as_str()).collect();
    assert!(
        verdicts.iter().any(|v| v.starts_with("unverified: no exec `touch ")
            && v.contains("refused by policy: exec /usr/bin/touch KILLED by role agent (exec, enforce)")),
        "{verdicts:?}"
    );
    assert!(
        verdicts.iter().any(|v| v.starts_with(&format!("unverified: no reach 127.0.0.2:{port}, refused by policy"))
            && v.ends_with("and its result reported a failure")),
        "{verdicts:?}"
    );
    let findings = bed.plumbline.view("findings", &["--session", &id]);
    assert_eq!(findings, Vec::<Value>::new(), "no finding against an agent the policy stopped");

    // What a person reads: each tool call's line says what the policy did.
    let text = plumb(&bed.plumbline.addr, &["timeline", "--session", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    for (tool, decision) in [(touch.as_str(), killed[0].to_string()), (connect.as_str(), denied[0].to_string())] {
        let line = text.lines().find(|l| l.contains(" tool_call ") && l.contains(tool));
        let line = line.unwrap_or_else(|| panic!("a line for {tool}:\n{text}"));
        assert!(line.contains(&format!("{tool} → {decision}")), "{line}\n{text}");
    }

    // Why was touch killed? Because of the agent's tool call.
    let why = bed.plumbline.view("why", &["--file", "/usr/bin/touch"]);
    let chain = why
        .iter()
        .find(|c| c["effect"]["session"] == id.as_str() && c["effect"]["kind"] == "enforcement")
        .unwrap_or_else(|| panic!("a chain for the decision: {why:#?}"));
    let causes: Vec<&str> = chain["causes"].as_array().unwrap().iter().filter_map(|c| c["kind"].as_str()).collect();
    assert_eq!(causes, ["tool_call", "llm_call"], "{chain:#}");
    drop(exfil);
}
