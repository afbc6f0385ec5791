//! The dashboard's session, LLM usage and process views, end to end as root
//! on the real kernel: `plumbline run`, an honest scripted agent (the real
//! `openai` SDK, `plumbline/tests/agents/agent.py`) told by the LLM fixture
//! to run its tests, which it does (`python -m pytest -q`); then the pages
//! are fetched over HTTP from the query service's own address and the test
//! asserts on what they show: the session listed, the graph's edge from the
//! tool call to the pytest exec with its relation, the node's detail with
//! its argv, the LLM call with its model and tokens, the agent's process
//! tree. Then the same in headless chromium (`support::browser`): a click
//! from the list to the session and from a graph box to its detail in the
//! side panel, a screenshot of each view in target/dashboard-screenshots/.

mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::Command,
};

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
    /// Runs a scripted agent to its end; returns its pid.
    fn agent(&self, role: &str) -> u32 {
        let workdir = self.work.path().join(role);
        std::fs::create_dir_all(&workdir).unwrap();
        std::fs::copy(clients::agents_dir().join("suite/test_arith.py"), workdir.join("test_arith.py")).unwrap();
        let mut command: Command = clients::agent_command(&self.fixture, role, &workdir, &[]);
        let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{role}: {}", String::from_utf8_lossy(&output.stderr));
        pid
    }

    /// `GET path` on the query service's address: status and body.
    fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.plumbline.addr, path, &[])
    }

    /// The page at `path`, which must answer 200.
    fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}:\n{body}");
        body
    }
}

/// A plain HTTP/1.1 GET, as a browser sends it, without a client library.
fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let authority = addr.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).to_string();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    (status, if chunked { dechunk(body) } else { body.to_string() })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// The `<tr …>…</tr>` rows of a page that contain every one of `needles`.
fn rows_with<'a>(html: &'a str, needles: &[&str]) -> Vec<&'a str> {
    html.split("<tr")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or(""))
        .filter(|r| needles.iter().all(|n| r.contains(n)))
        .collect()
}

#[test]
fn a_session_s_pages_show_its_tool_call_causing_the_pytest_run_its_llm_call_and_its_process_tree() {
    let bed = start();
    let host = bed.plumbline.host.clone();
    let pid = bed.agent("honest");

    // The session, once the kernel's pytest run is linked to the tool call
    // (its turn judged): read from the API only to know what to look for.
    let session: Value = eventually("the honest agent's session with its two LLM calls", || {
        bed.plumbline.view("sessions", &[]).into_iter().find(|s| s["pid"] == pid && s["llm_calls"].as_u64() >= Some(2))
    });
    let id = session["session"].as_str().unwrap().to_string();
    let timeline = eventually("the pytest run linked to its tool call", || {
        let t = plumb_json(&bed.plumbline.addr, &["timeline", "--session", &id])?;
        let caused = t["edges"].as_array()?.iter().any(|e| e["relation"] == "caused");
        caused.then_some(t)
    });
    let nodes = timeline["nodes"].as_array().unwrap();
    let exec = nodes
        .iter()
        .find(|n| n["kind"] == "exec" && n["label"].as_str().unwrap().contains("pytest"))
        .expect("the pytest exec");
    let exec_id = exec["node"].as_u64().unwrap();

    // The session list names it, with its agent and a link to its page.
    let list = bed.page(&format!("/sessions?host={host}"));
    assert!(list.contains(&format!("href=\"/sessions/{id}?host={host}\"")), "{list}");
    let row = rows_with(&list, &[&id]);
    assert!(row.len() == 1 && row[0].contains(">scripted<"), "{row:?}");
    let by_agent = bed.page(&format!("/sessions?host={host}&agent=scripted"));
    assert!(by_agent.contains(&id), "{by_agent}");
    let other_agent = bed.page(&format!("/sessions?host={host}&agent=nobody"));
    assert!(!other_agent.contains(&id) && other_agent.contains("This agent has no session"), "{other_agent}");

    // The session page: the edge from the tool call to the pytest exec,
    // with its relation, in the graph and in the edge table.
    let page = bed.page(&format!("/sessions/{id}"));
    let edges = rows_with(&page, &["data-relation=\"caused\"", "tool_call", "pytest"]);
    assert!(!edges.is_empty(), "an edge caused: tool_call → pytest exec on the page:\n{page}");
    assert!(edges[0].contains(&format!("/sessions/{id}/node/{exec_id}")), "{}", edges[0]);
    assert!(page.contains("class=\"edge r-caused\""), "the graph draws the edge:\n{page}");
    assert!(page.contains(&format!("data-node=\"{exec_id}\"")), "the graph draws the exec:\n{page}");
    assert!(page.contains("class=\"mark k-exec\""), "the timeline marks the exec:\n{page}");
    assert!(page.contains(&format!("href=\"/processes/{host}/{pid}\"")), "the agent's lane links its process");
    assert!(page.contains("No finding: what this agent said and what the kernel saw agree."), "{page}");
    let model_rows = rows_with(&page, &["<td class=\"num\">2</td>"]);
    assert!(!model_rows.is_empty(), "two LLM calls counted for the model:\n{page}");

    // A node's detail: as a fragment for htmx, and as a page of its own.
    let node_path = format!("/sessions/{id}/node/{exec_id}");
    let (status, fragment) = http_get(&bed.plumbline.addr, &node_path, &[("HX-Request", "true")]);
    assert_eq!(status, 200, "{fragment}");
    assert!(!fragment.contains("<html"), "a fragment, not a page: {fragment}");
    assert!(fragment.contains("Command line (argv)"), "{fragment}");
    let argv = exec["label"].as_str().unwrap();
    assert!(fragment.contains(&escape(argv)), "the argv {argv:?} in {fragment}");
    assert!(fragment.contains("<b>caused</b>") && fragment.contains("tool_call"), "its cause: {fragment}");
    let whole = bed.page(&node_path);
    assert!(whole.starts_with("<!DOCTYPE html>") && whole.contains(&escape(argv)), "{whole}");
    assert_eq!(bed.get(&format!("/sessions/{id}/node/999999")).0, 404);
    assert_eq!(bed.get("/sessions/s-no-such-session").0, 404);

    // The LLM page: the call with its model and tokens, the agent mapped.
    let calls = bed.plumbline.view("llm", &[]);
    let call = calls.iter().find(|c| c["pid"] == pid).expect("the agent's LLM call");
    let model = call["model"].as_str().unwrap();
    for range in ["", "&since=15m"] {
        let llm = bed.page(&format!("/llm?host={host}{range}"));
        let rows = rows_with(&llm, &[&format!("/processes/{host}/{pid}\""), model]);
        assert_eq!(rows.len(), 2, "both calls of the agent listed with model {model}:\n{llm}");
        let input = format!("<td class=\"num\">{}</td>", call["input_tokens"]);
        let output = format!("<td class=\"num\">{}</td>", call["output_tokens"]);
        assert!(rows.iter().any(|r| r.contains(&input) && r.contains(&output)), "its tokens: {rows:?}");
        assert!(!rows_with(&llm, &[">mapped<", "scripted"]).is_empty(), "the agent is mapped:\n{llm}");
        assert!(llm.contains("class=\"timeseries\"") && llm.contains("scripted / "), "{llm}");
        let grain = if range.is_empty() { "per hour" } else { "counted from the calls" };
        assert!(llm.contains(grain), "{grain}:\n{llm}");
    }
    let filtered = bed.page(&format!("/llm?host={host}&model=no-such-model"));
    assert!(filtered.contains("No LLM call matches"), "{filtered}");

    // The process page: the agent's tree with its pytest run, its sessions.
    let process = bed.page(&format!("/processes/{host}/{pid}"));
    assert!(process.contains(&format!("<li class=\"focus\"><a href=\"/processes/{host}/{pid}")), "{process}");
    let tree = process.split("<ul class=\"tree\">").nth(1).expect("a tree");
    assert!(tree.contains("agent.py") && tree.contains("pytest"), "the agent and its pytest run:\n{process}");
    assert!(process.contains(&format!("href=\"/sessions/{id}\"")), "its session:\n{process}");
    assert!(process.contains("href=\"/sessions?host=") && process.contains("agent=scripted"), "{process}");
    let list = bed.page(&format!("/processes?host={host}&name=python"));
    assert!(list.contains(&format!("href=\"/processes/{host}/{pid}?start=")), "{list}");

    // Every view is in the navigation.
    for (path, label) in [("/sessions", "Sessions"), ("/llm", "LLM usage"), ("/processes", "Processes")] {
        assert!(list.contains(&format!("href=\"{path}?host={host}\"")) && list.contains(label), "{label}");
    }

    in_the_browser(&bed, &id, exec_id, pid);
}

/// The same views in a real browser: from the list to the session, from a
/// graph box to its detail (loaded into the side panel, the page staying
/// where it is), the charts drawn, nothing asked of another host; a
/// screenshot of each under target/dashboard-screenshots/.
fn in_the_browser(bed: &Bed, id: &str, exec_id: u64, pid: u32) {
    let (base, host) = (&bed.plumbline.addr, &bed.plumbline.host);
    let mut browser = browser::Browser::start();
    browser.open(&format!("{base}/sessions?host={host}"));
    browser.wait_for_text("table", id, false);
    browser.screenshot("sessions-list");
    browser.click(&format!("a[href^=\"/sessions/{id}?\"]"));
    assert_eq!(browser.text("h1"), format!("Session {id}"));
    browser.wait_for("svg.graph");
    browser.screenshot("session-page");

    let page = browser.url();
    browser.click(&format!("svg.graph g[data-node=\"{exec_id}\"] text"));
    let detail = browser.wait_for_text("#detail", "Command line (argv)", false);
    assert!(detail.contains("pytest") && detail.contains("caused"), "{detail}");
    assert_eq!(browser.url(), page, "the detail came into the side panel");
    browser.screenshot("session-node-detail");

    browser.open(&format!("{base}/llm?host={host}&since=1h"));
    browser.wait_for("div.timeseries .uplot");
    browser.screenshot("llm-usage");

    browser.open(&format!("{base}/processes/{host}/{pid}"));
    browser.wait_for("ul.tree li.focus");
    browser.screenshot("process-page");
    browser.assert_only_local_requests();
}

/// Text as maud writes it into HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
