//! `[roles.llm.rate]` end to end as root on this kernel: a `plumbline run`
//! with a role allowing 3 LLM requests per window per process; the real
//! `openai` SDK (`plumbline/tests/clients/llm_rate_client.py`, on the system
//! OpenSSL) makes 4 calls to our HTTPS LLM fixture, enrolled with
//! `plumbline enforce wrap`. The 4th request is counted in the kernel at the
//! TLS library's write, before it leaves:
//! - `hold`: the process is stopped (state T) and the fixture has 3
//!   requests, not 4, while it is; the agent resumes it once the bucket
//!   holds a token again, and the 4th call completes;
//! - `deny`: with a new connection per call the 4th connect is refused
//!   (EPERM) and the call fails with a connection error; the fixture got 3.
//!   With one reused connection nothing is refused: `deny` limits
//!   connections, and all 4 calls go through;
//! - `kill`: the process dies of SIGKILL at the 4th, which never left.
//!
//! The windows are long enough that 4 calls always fall in one (a call takes
//! well under a second): the tests wait on states and counts, never on time.

mod support;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use plumbline_llm_fixture::{clients, Fixture};
use serde_json::Value;
use support::*;

struct Bed {
    plumbline: Embedded,
    fixture: Fixture,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

/// A role `llm` in enforce mode whose only rule is `rate` (TOML of
/// `[roles.llm.rate]`); the fixture's host is an LLM endpoint of the node.
fn start(rate: &str) -> Bed {
    start_in("enforce", rate)
}

/// As [`start`], the role's LLM rules in `mode`.
fn start_in(mode: &str, rate: &str) -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture::in_process().expect("the HTTPS fixture starts");
    let (policy_file, socket) = (dir.path().join("policy.toml"), dir.path().join("enforce.sock"));
    let policy = format!(
        "[[roles]]\nname = \"llm\"\nmode = \"enforce\"\n[roles.llm]\nmode = \"{mode}\"\n[roles.llm.rate]\n{rate}\n\
         [[workloads]]\nrole = \"llm\"\nfield = \"COMMAND_LINE\"\npattern = \"never-matches-{}\"\n",
        uuid::Uuid::new_v4().simple()
    );
    std::fs::write(&policy_file, policy).unwrap();
    let config = format!(
        "[capture.intent]\n\
         [[capture.intent.endpoints]]\nprovider = \"openai\"\nhost = \"localhost\"\n\
         path_prefix = \"/openai/v1/chat/completions\"\nformat = \"openai_chat\"\n\
         [capture.enforce]\npolicy_file = \"{}\"\ncontrol_socket = \"{}\"\n",
        policy_file.display(),
        socket.display()
    );
    let plumbline = Embedded::start(&config);
    Bed { plumbline, fixture, socket, _dir: dir }
}

impl Bed {
    /// Starts the client enrolled in role `llm`: `calls` chat completions,
    /// on a `fresh` connection each or one `reuse`d.
    fn client(&self, calls: u32, connections: &str) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plumbline"));
        command.args(["enforce", "wrap", "llm", "--socket"]).arg(&self.socket).arg("--");
        command
            .arg(clients::python())
            .arg(clients::clients_dir().join("llm_rate_client.py"))
            .arg(self.fixture.base_url())
            .arg(self.fixture.ca_path())
            .arg(calls.to_string())
            .arg(connections);
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the client starts")
    }

    /// The fixture's chat completions so far.
    fn served(&self) -> usize {
        self.fixture.exchanges().len()
    }

    /// The llm decisions about `pid` once `done` says they are all there.
    fn decisions(&self, pid: u32, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        eventually_showing(&format!("the LLM rate decisions about pid {pid}"), || {
            let rows: Vec<Value> = self
                .plumbline
                .view("enforcement", &[])
                .into_iter()
                .filter(|d| d["pid"] == pid && d["family"] == "llm")
                .collect();
            if done(&rows) {
                Ok(rows)
            } else {
                Err(format!("{rows:#?}"))
            }
        })
    }
}

/// The client's lines, once it ended.
fn finish(child: Child) -> (std::process::ExitStatus, Vec<Value>) {
    let output = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if !output.stderr.is_empty() {
        eprintln!("client stderr: {}", String::from_utf8_lossy(&output.stderr));
    }
    (output.status, lines)
}

/// The process's state letter (R, S, T ...); `None` once it is gone.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: the state
    // follows the last `)`.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn row<'a>(rows: &'a [Value], decision: &str, operation: &str) -> Option<&'a Value> {
    rows.iter().find(|d| d["decision"] == decision && d["operation"] == operation)
}

#[test]
fn hold_stops_the_process_before_the_fourth_request_leaves_and_resumes_it_when_a_token_is_back() {
    let bed = start("requests = 3\nwindow_s = 30\naction = \"hold\"");
    let mut child = bed.client(4, "reuse");
    let pid = child.id();

    // Stopped in the kernel at the 4th request's write: it has not left.
    let held = eventually("the client stopped by the rate limit", || match state(pid) {
        Some('T') => Some(bed.served()),
        Some('Z') | None => panic!("the client ended without being held: {:?}", child.try_wait()),
        _ => None,
    });
    assert_eq!(held, 3, "3 requests served while the 4th is held");
    assert_eq!(state(pid), Some('T'));

    // Resumed by the agent once the bucket holds a token; the call completes.
    let (status, lines) = finish(child);
    assert!(status.success(), "{status:?} {lines:?}");
    assert_eq!(lines.iter().filter(|l| l["ok"] == true).count(), 4, "{lines:?}");
    assert_eq!(bed.served(), 4);

    let rows = bed.decisions(pid, |rows| row(rows, "held", "release").is_some());
    let held = row(&rows, "held", "llm_request").unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(
        (held["mechanism"].as_str(), held["role"].as_str(), held["path"].as_str()),
        (Some("uprobe"), Some("llm"), Some("request 4 of 3 per 30 s")),
        "{held}"
    );
    let release = row(&rows, "held", "release").unwrap();
    let text = release["path"].as_str().unwrap();
    assert!(text.starts_with("request 4 of 3 per 30 s: held ") && text.ends_with(" s, released"), "{release}");
    assert_eq!(rows.len(), 2, "one hold, one release: {rows:#?}");

    // What a person reads.
    let listing = plumb(&bed.plumbline.addr, &["enforcement", "--host", &bed.plumbline.host]);
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.lines().any(|l| l.contains("held") && l.contains("uprobe") && l.contains("request 4 of 3 per 30 s")),
        "{listing}"
    );
}

#[test]
fn deny_refuses_the_new_connection_of_the_fourth_call_but_not_a_request_on_a_reused_one() {
    let bed = start("requests = 3\nwindow_s = 60\naction = \"deny\"");

    // A new connection per call: the 4th connect is refused before a SYN.
    let child = bed.client(4, "fresh");
    let pid = child.id();
    let (status, lines) = finish(child);
    assert!(status.success(), "{status:?} {lines:?}");
    let ok: Vec<bool> = lines.iter().map(|l| l["ok"] == true).collect();
    assert_eq!(ok, [true, true, true, false], "{lines:?}");
    assert_eq!(lines[3]["error"], "APIConnectionError", "{}", lines[3]);
    assert!(lines[3]["cause"].as_str().unwrap().contains("Operation not permitted"), "{}", lines[3]);
    assert_eq!(bed.served(), 3);

    let rows = bed.decisions(pid, |rows| row(rows, "denied", "connect").is_some());
    let denied = row(&rows, "denied", "connect").unwrap();
    assert_eq!((denied["mechanism"].as_str(), denied["role"].as_str()), (Some("cgroup_sock_addr"), Some("llm")));
    let text = denied["path"].as_str().unwrap();
    let port = bed.fixture.port();
    assert!(
        text.starts_with("request 4 of 3 per 60 s: connect ") && text.ends_with(&format!(":{port} refused")),
        "{text}"
    );

    // One keep-alive connection: `deny` refuses connections, and this client
    // opens none after its first; its 4th request is not stopped.
    let child = bed.client(4, "reuse");
    let pid = child.id();
    let (status, lines) = finish(child);
    assert!(status.success(), "{status:?} {lines:?}");
    assert_eq!(lines.iter().filter(|l| l["ok"] == true).count(), 4, "not limited: {lines:?}");
    assert_eq!(bed.served(), 3 + 4);
    let rows: Vec<Value> = bed.plumbline.view("enforcement", &[]).into_iter().filter(|d| d["pid"] == pid).collect();
    assert_eq!(rows, Vec::<Value>::new(), "nothing was refused");
}

#[test]
fn kill_kills_the_process_before_the_fourth_request_leaves() {
    use std::os::unix::process::ExitStatusExt;
    let bed = start("requests = 3\nwindow_s = 60\naction = \"kill\"");
    let child = bed.client(4, "reuse");
    let pid = child.id();
    let (status, lines) = finish(child);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?} {lines:?}");
    assert_eq!(lines.iter().filter(|l| l["ok"] == true).count(), 3, "{lines:?}");
    assert_eq!(bed.served(), 3, "the 4th request never left");

    let rows = bed.decisions(pid, |rows| row(rows, "killed_before", "llm_request").is_some());
    let killed = row(&rows, "killed_before", "llm_request").unwrap();
    assert_eq!(
        (killed["mechanism"].as_str(), killed["role"].as_str(), killed["path"].as_str()),
        (Some("uprobe"), Some("llm"), Some("request 4 of 3 per 60 s")),
        "{killed}"
    );
}

#[test]
fn a_hold_past_max_hold_s_ends_as_after_hold_says_killed_before_the_request_left() {
    use std::os::unix::process::ExitStatusExt;
    // One token per 60 s: the 4th request would wait far past max_hold_s.
    let bed = start("requests = 3\nwindow_s = 180\naction = \"hold\"\nmax_hold_s = 1\nafter_hold = \"kill\"");
    let child = bed.client(4, "reuse");
    let pid = child.id();
    let (status, lines) = finish(child);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?} {lines:?}");
    assert_eq!(lines.iter().filter(|l| l["ok"] == true).count(), 3, "{lines:?}");
    assert_eq!(bed.served(), 3, "the held request never left");

    let rows = bed.decisions(pid, |rows| row(rows, "killed_before", "llm_request").is_some());
    let held = row(&rows, "held", "llm_request").unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(held["path"], "request 4 of 3 per 180 s", "{held}");
    let killed = row(&rows, "killed_before", "llm_request").unwrap();
    assert_eq!(killed["mechanism"], "signal", "the agent killed it: {killed}");
    let text = killed["path"].as_str().unwrap();
    assert!(
        text.starts_with("request 4 of 3 per 180 s: held ") && text.ends_with("(max_hold_s 1), then killed"),
        "{text}"
    );
}

#[test]
fn a_hold_past_max_hold_s_that_ends_in_deny_lets_the_held_request_go_and_refuses_the_next_connection() {
    // One token per 60 s: the 4th request would wait far past max_hold_s.
    let bed = start("requests = 3\nwindow_s = 180\naction = \"hold\"\nmax_hold_s = 1\nafter_hold = \"deny\"");
    let child = bed.client(5, "fresh");
    let pid = child.id();
    let (status, lines) = finish(child);
    assert!(status.success(), "{status:?} {lines:?}");
    let ok: Vec<bool> = lines.iter().map(|l| l["ok"] == true).collect();
    // The held 4th request leaves once the hold ends (as documented); the
    // 5th call's new connection is refused before a SYN.
    assert_eq!(ok, [true, true, true, true, false], "{lines:?}");
    assert!(lines[4]["cause"].as_str().unwrap().contains("Operation not permitted"), "{}", lines[4]);
    assert_eq!(bed.served(), 4);

    let rows = bed.decisions(pid, |rows| row(rows, "denied", "connect").is_some());
    let held = row(&rows, "held", "llm_request").unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(held["path"], "request 4 of 3 per 180 s", "{held}");
    let denied = row(&rows, "denied", "connect").unwrap();
    assert_eq!(denied["mechanism"], "cgroup_sock_addr", "{denied}");
}

#[test]
fn in_audit_a_request_past_the_limit_goes_on_and_is_recorded_as_would_deny() {
    let bed = start_in("audit", "requests = 3\nwindow_s = 180\naction = \"kill\"");
    let child = bed.client(4, "reuse");
    let pid = child.id();
    let (status, lines) = finish(child);
    assert!(status.success(), "{status:?} {lines:?}");
    assert_eq!(lines.iter().filter(|l| l["ok"] == true).count(), 4, "nothing stopped: {lines:?}");
    assert_eq!(bed.served(), 4);
    let rows = bed.decisions(pid, |rows| row(rows, "would_deny", "llm_request").is_some());
    let would = row(&rows, "would_deny", "llm_request").unwrap();
    assert_eq!(would["path"], "request 4 of 3 per 180 s", "{would}");
    assert_eq!(rows.len(), 1, "one request past the limit: {rows:#?}");
}
