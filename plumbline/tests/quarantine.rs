//! Quarantine, end to end as root on this kernel: a scripted agent (the real
//! `openai` SDK against our HTTPS LLM fixture, `plumbline/tests/agents/agent.py`
//! role `stubborn`) reads a planted SSH key and sends it out. The session
//! graph's out-of-scope finding is one `[[pipeline.quarantine]]` names, so the
//! aggregator sends a quarantine on the control road; the node agent enrols
//! the session's processes in the built-in role `quarantine` and answers. The
//! agent's next outside connect is refused (EPERM, the decision stored) while
//! its LLM calls still go through, and `plumb quarantine` shows when the node
//! applied it. The agent tries again only when the test says so (a line on its
//! stdin), after the acknowledgement is stored: nothing depends on timing.
//!
//! The same on the single-host default (`plumbline run`: in-process channels,
//! SQLite) and on the fleet road (agent → Kafka, control topic on Kafka →
//! aggregator → ClickHouse); and a node with no enforcement answers "not
//! applied" with the reason.

mod support;

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Stdio},
};

use plumbline_llm_fixture::{clients, Fixture, Options};
use serde_json::Value;
use support::*;

/// Quarantine on any out-of-scope finding of medium severity or more (a
/// secret read with nothing fetched before is medium).
const QUARANTINE: &str = "[[pipeline.quarantine]]\nkind = \"out_of_scope_effect\"\nseverity = \"medium\"\n";
const SESSIONS: &str = "[pipeline.sessions]\nsettle_ms = 1000\nwindow_ms = 30000\negress_allow = [\"pypi.org\"]\n";

/// The agent's intent capture: the fixture is an OpenAI endpoint on
/// `localhost`, which the quarantine role therefore allows.
fn capture(policy: Option<(&Path, &Path)>) -> String {
    let mut toml = "[capture.intent]\n\
         [[capture.intent.endpoints]]\nprovider = \"openai\"\nhost = \"localhost\"\n\
         path_prefix = \"/openai/v1/chat/completions\"\nformat = \"openai_chat\"\n\
         [[capture.intent.agents]]\nagent = \"scripted\"\npriority = 10\nfield = \"COMMAND_LINE\"\n\
         pattern = 'agent\\.py'\n"
        .to_string();
    if let Some((policy, socket)) = policy {
        toml.push_str(&format!(
            "[capture.enforce]\npolicy_file = \"{}\"\ncontrol_socket = \"{}\"\n",
            policy.display(),
            socket.display()
        ));
    }
    toml
}

/// A policy whose only role selects nothing: the node enforces, and nothing
/// is confined until a quarantine.
fn write_policy(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[roles]]\nname = \"idle\"\nmode = \"enforce\"\n[roles.network]\nallow = [\"127.0.0.1\"]\n\
             [[workloads]]\nrole = \"idle\"\nfield = \"COMMAND_LINE\"\npattern = \"never-matches-{}\"\n",
            uuid::Uuid::new_v4().simple()
        ),
    )
    .unwrap();
    (policy, dir.join("enforce.sock"))
}

fn fixture() -> Fixture {
    let scripts = clients::agents_dir().join("scripts");
    Fixture::in_process_with(Options { scripts_dir: Some(scripts), ..Default::default() })
        .expect("the HTTPS fixture starts")
}

/// The `stubborn` agent, running; the test says when it tries again.
struct Stubborn {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    lines: Vec<Value>,
    _work: tempfile::TempDir,
}

impl Stubborn {
    fn start(fixture: &Fixture, exfil_port: u16) -> Self {
        let work = tempfile::tempdir().unwrap();
        let ssh = work.path().join("home/.ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("id_rsa"), "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n").unwrap();
        let port = exfil_port.to_string();
        let mut command = clients::agent_command(fixture, "stubborn", work.path(), &[&port]);
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let (stdin, stdout) = (child.stdin.take(), BufReader::new(child.stdout.take().unwrap()));
        Self { child, stdin, stdout, lines: Vec::new(), _work: work }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads its lines until it waits for the test (true) or ends (false).
    fn until_waiting(&mut self) -> bool {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line).unwrap() == 0 {
                return false;
            }
            let Ok(value) = serde_json::from_str::<Value>(&line) else { continue };
            let waiting = value["event"] == "waiting";
            self.lines.push(value);
            if waiting {
                return true;
            }
        }
    }

    fn go(&mut self) {
        writeln!(self.stdin.as_mut().unwrap(), "go").unwrap();
    }

    /// Closes its stdin (it stops at its next try) and waits for its end.
    fn finish(&mut self) {
        self.stdin = None;
        while self.until_waiting() {}
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the agent failed: {:?}", self.lines);
        assert!(self.lines.iter().any(|l| l["done"] == true), "the agent did not finish: {:?}", self.lines);
    }

    /// Every action it took, in order.
    fn actions(&self) -> Vec<&Value> {
        self.lines.iter().flat_map(|l| l["actions"].as_array().into_iter().flatten()).collect()
    }

    fn llm_calls(&self) -> usize {
        self.lines.iter().filter(|l| l["event"] == "llm_call").count()
    }
}

/// `plumb quarantine` for the session of `pid`, once a node answered it.
fn answered(addr: &str, host: &str, pid: u32) -> Value {
    eventually_showing(&format!("a quarantine of pid {pid}'s session, answered"), || {
        let all = plumb_json(addr, &["quarantine", "--host", host, "--limit", "1000"]).unwrap_or(Value::Null);
        let found = all.as_array().into_iter().flatten().find(|q| {
            q["pids"].as_array().is_some_and(|p| p.contains(&pid.into()))
                && q["acks"].as_array().is_some_and(|a| !a.is_empty())
        });
        found.cloned().ok_or_else(|| format!("{all:#}"))
    })
}

/// The quarantine of the agent's session, applied by the node `host`.
fn applied(addr: &str, host: &str, agent: &Stubborn) -> Value {
    let pid = agent.pid();
    let quarantine = answered(addr, host, pid);
    let ack = &quarantine["acks"][0];
    assert_eq!(ack["host"], host, "{quarantine:#}");
    assert_eq!(ack["applied"], true, "{quarantine:#}");
    assert_eq!(ack["role"], "quarantine", "{quarantine:#}");
    assert!(ack["pids"].as_array().unwrap().contains(&pid.into()), "{quarantine:#}");
    assert_eq!(quarantine["finding_kind"], "out_of_scope_effect", "{quarantine:#}");
    let (found, applied) = (quarantine["found_wall_ns"].as_u64().unwrap(), ack["applied_wall_ns"].as_u64().unwrap());
    assert!(applied >= found, "applied after the finding: {quarantine:#}");
    quarantine
}

/// Once the session is quarantined on a node that enforces: the agent's next
/// outside connect is refused, its LLM still answers, the decision is stored
/// and `plumb` shows when the node applied the quarantine.
fn assert_cut_off(addr: &str, host: &str, agent: &mut Stubborn, quarantine: &Value, exfil_port: u16) {
    let pid = agent.pid();
    // Now, and only now, the agent tries again.
    let calls_before = agent.llm_calls();
    agent.go();
    agent.finish();
    let actions = agent.actions();
    let connects: Vec<&&Value> = actions.iter().filter(|a| a["tool"] == "connect").collect();
    assert_eq!(connects.len(), 2, "one connect before, one after: {:?}", agent.lines);
    assert!(connects[0]["result"].as_str().unwrap().starts_with("sent "), "the first went out: {}", connects[0]);
    let refused = connects[1]["result"].as_str().unwrap();
    assert!(refused.contains("Operation not permitted"), "the next was refused with EPERM: {refused}");
    assert!(agent.llm_calls() > calls_before, "its LLM still answered after the refusal: {:?}", agent.lines);

    // The kernel's decision, stored and shown.
    let object = format!("127.0.0.2:{exfil_port}");
    let decision = eventually_showing("the refused connect's decision", || {
        let rows = plumb_json(addr, &["enforcement", "--host", host, "--pid", &pid.to_string(), "--limit", "100"])
            .unwrap_or(Value::Null);
        let found = rows.as_array().into_iter().flatten().find(|d| d["remote_port"] == exfil_port);
        found.cloned().ok_or_else(|| format!("{rows:#}"))
    });
    assert_eq!(decision["decision"], "denied", "{decision:#}");
    assert_eq!(decision["role"], "quarantine", "{decision:#}");
    assert_eq!(decision["remote_addr"], "127.0.0.2", "{decision:#} ({object})");

    // What a person reads.
    let text = plumb(addr, &["quarantine", "--host", host]);
    let text = String::from_utf8_lossy(&text.stdout);
    let session = quarantine["session"].as_str().unwrap();
    let line = text.lines().find(|l| l.contains(session)).unwrap_or_else(|| panic!("a line for {session}:\n{text}"));
    assert!(line.contains(&format!("applied: role quarantine, pids {pid}")), "{text}");
    assert!(line.contains("out_of_scope_effect (medium)"), "{text}");
}

#[test]
fn on_one_host_a_finding_quarantines_its_session_and_its_next_outside_connect_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (policy, socket) = write_policy(dir.path());
    let fixture = fixture();
    let plumbline = Embedded::start(&format!("{}{QUARANTINE}{SESSIONS}", capture(Some((&policy, &socket)))));
    let exfil = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = exfil.local_addr().unwrap().port();
    let mut agent = Stubborn::start(&fixture, port);
    assert!(agent.until_waiting(), "the agent read the key and sent it once: {:?}", agent.lines);
    let quarantine = applied(&plumbline.addr, &plumbline.host, &agent);

    // The policy file changes while the session is quarantined: a role more
    // moves the quarantine role's id (it comes after the file's roles), and
    // its processes move with it.
    let text = std::fs::read_to_string(&policy).unwrap();
    let extra = "[[roles]]\nname = \"extra\"\n[roles.network]\nallow = [\"127.0.0.2\"]\n";
    std::fs::write(&policy, format!("{extra}{text}")).unwrap();
    eventually_showing("the changed policy file in force", || {
        let roles = policy_roles(&plumbline.addr, &plumbline.host);
        if roles == ["extra", "idle"] {
            Ok(())
        } else {
            Err(format!("{roles:?}"))
        }
    });
    assert_cut_off(&plumbline.addr, &plumbline.host, &mut agent, &quarantine, port);
    drop(exfil);
}

/// The roles `plumb policy` lists for `host`.
fn policy_roles(addr: &str, host: &str) -> Vec<String> {
    let nodes = eventually("the node's policy", || {
        plumb_json(addr, &["policy", "--host", host]).filter(|n| n.as_array().is_some_and(|n| !n.is_empty()))
    });
    nodes[0]["roles"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str().map(String::from)).collect()
}

#[test]
fn a_node_without_enforcement_answers_not_applied_and_says_why() {
    let fixture = fixture();
    let plumbline = Embedded::start(&format!("{}{QUARANTINE}{SESSIONS}", capture(None)));
    let exfil = TcpListener::bind("127.0.0.2:0").unwrap();
    let mut agent = Stubborn::start(&fixture, exfil.local_addr().unwrap().port());
    assert!(agent.until_waiting(), "{:?}", agent.lines);
    let quarantine = answered(&plumbline.addr, &plumbline.host, agent.pid());
    let ack = &quarantine["acks"][0];
    assert_eq!(ack["applied"], false, "{quarantine:#}");
    let reason = ack["reason"].as_str().unwrap();
    assert!(reason.contains("no enforcement on this node") && reason.contains("[capture.enforce]"), "{reason}");
    agent.finish();

    let text = plumb(&plumbline.addr, &["quarantine", "--host", &plumbline.host]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("not applied: no enforcement on this node"), "{text}");
}

#[test]
fn on_the_fleet_road_the_quarantine_travels_the_control_topic_and_the_answer_reaches_clickhouse() {
    let services = FleetServices::start("quarantine", &format!("{QUARANTINE}{SESSIONS}"));
    let (policy, socket) = write_policy(services.dir.path());
    let host = unique("quarantine-host");
    let (brokers, topic) = (kafka_brokers(), &services.topic);
    let agent_toml = write_config(
        services.dir.path(),
        "agent.toml",
        &format!(
            "[node]\nhost = \"{host}\"\n[sink]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\n\
             [metrics]\nlisten = \"127.0.0.1:{}\"\n{}",
            free_port(),
            capture(Some((&policy, &socket)))
        ),
    );
    let mut node = Component::start("agent", services.dir.path(), &["agent", "run", "--config", &agent_toml]);
    wait_until_this_process_is_visible(&services.addr, &host);
    assert!(node.log().contains("reading the control topic"), "{}", node.log());

    let fixture = fixture();
    let exfil = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = exfil.local_addr().unwrap().port();
    let mut agent = Stubborn::start(&fixture, port);
    assert!(agent.until_waiting(), "{:?}", agent.lines);
    let quarantine = applied(&services.addr, &host, &agent);
    assert_cut_off(&services.addr, &host, &mut agent, &quarantine, port);
    let stats = plumb_json(&services.addr, &["stats"]).unwrap();
    assert!(stats["store"].as_str().unwrap().starts_with("clickhouse"), "{stats}");
    assert!(node.is_running(), "{}", node.log());
    drop(exfil);
}
