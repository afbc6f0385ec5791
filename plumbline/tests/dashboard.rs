//! The dashboard in a real browser (headless chromium, `support::browser`),
//! end to end as root on the real kernel: `plumbline run` records scripted
//! agents (the real `openai` SDK against our HTTPS LLM fixture, as in
//! `intent_effect.rs`) — one led by an injected page to read a planted key
//! and send it out, one that claims a test run it never made, its claimed
//! command carrying a `<script>` — and the test reads the fleet page, the
//! findings inbox and the why page as a person would, clicks from the inbox
//! to the session, checks the script stayed text, and that no page asked
//! anything of another host. A screenshot per view lands in
//! `target/dashboard-screenshots/`.

mod support;

use std::{
    net::TcpListener,
    process::{Command, Stdio},
};

use plumbline_llm_fixture::{clients, Fixture, Options};
use serde_json::Value;
use support::{browser::Browser, *};

/// What the liar's scripted tool call carries in its command: captured
/// text a page must show, never run.
const PWN: &str = "<script>window.__plb_pwned=1</script>";

struct Bed {
    plumbline: Embedded,
    fixture: Fixture,
    work: tempfile::TempDir,
    _scripts: tempfile::TempDir,
}

/// The agents' scripts, with the liar's claimed command carrying [`PWN`].
fn scripts() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(clients::agents_dir().join("scripts")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let liar = dir.path().join("liar.json");
    let mut script: Value = serde_json::from_str(&std::fs::read_to_string(&liar).unwrap()).unwrap();
    let command = &mut script[0]["tool_calls"][0]["arguments"]["command"];
    assert_eq!(command, "python -m pytest -q", "liar.json changed");
    *command = Value::String(format!("python -m pytest -q -k '{PWN}'"));
    std::fs::write(&liar, script.to_string()).unwrap();
    dir
}

fn start() -> Bed {
    let scripts = scripts();
    let fixture =
        Fixture::in_process_with(Options { scripts_dir: Some(scripts.path().to_path_buf()), ..Default::default() })
            .expect("the HTTPS fixture starts");
    let plumbline = Embedded::start(SCRIPTED_AGENTS);
    Bed { plumbline, fixture, work: tempfile::tempdir().unwrap(), _scripts: scripts }
}

impl Bed {
    /// Runs a scripted agent to its end; returns its pid.
    fn agent(&self, role: &str, extra: &[&str]) -> u32 {
        let workdir = self.work.path().join(role);
        std::fs::create_dir_all(&workdir).unwrap();
        std::fs::copy(clients::agents_dir().join("suite/test_arith.py"), workdir.join("test_arith.py")).unwrap();
        let mut command: Command = clients::agent_command(&self.fixture, role, &workdir, extra);
        let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{role}: {}", String::from_utf8_lossy(&output.stderr));
        let done = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| l["done"] == true);
        assert!(done, "{role} did not finish");
        pid
    }

    /// The session of the agent `pid`, once its findings include `kind`.
    fn finding_of(&self, pid: u32, kind: &str) -> Value {
        eventually_showing(&format!("a {kind} finding of pid {pid}"), || {
            let findings = self.plumbline.view("findings", &[]);
            findings.iter().find(|f| f["pid"] == pid && f["kind"] == kind).cloned().ok_or(format!("{findings:#?}"))
        })
    }
}

fn dashboard(bed: &Bed) -> String {
    bed.plumbline.addr.clone()
}

#[test]
fn the_dashboard_shows_hosts_and_findings_in_a_real_browser_keeps_captured_script_inert_and_asks_no_other_host() {
    let bed = start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        }
    });
    let key = bed.work.path().join("injected/home/.ssh/id_rsa");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n").unwrap();
    let injected_pid = bed.agent("injected", &[&port.to_string()]);
    let liar_pid = bed.agent("liar", &[]);
    bed.finding_of(injected_pid, "out_of_scope_effect");
    let claim = bed.finding_of(liar_pid, "unverified_claim");
    let liar = claim["session"].as_str().unwrap().to_string();
    let base = dashboard(&bed);
    let host = &bed.plumbline.host;

    // `plumb hosts`: the host's last batch seen, as a rollout reads it.
    let hosts = plumb_json(&base, &["hosts", "--host", host]).expect("plumb hosts");
    let ours = &hosts[0];
    assert_eq!((&ours["host"], &ours["stale"]), (&Value::from(host.as_str()), &Value::Bool(false)), "{hosts}");
    assert!(ours["last_seen_wall_ns"].as_u64() > claim["wall_ns"].as_u64().map(|t| t - 60_000_000_000), "{hosts}");
    let table = String::from_utf8(plumb(&base, &["hosts", "--host", host]).stdout).unwrap();
    assert!(table.starts_with("HOST") && table.contains(host.as_str()) && table.contains(" ok"), "{table}");

    let mut browser = Browser::start();

    // Fleet: our host listed, sending, with a last batch; every panel there.
    browser.open(&format!("{base}/fleet"));
    assert_eq!(browser.text("h1"), "Fleet health");
    let row = format!("table.hosts tr[data-host='{host}']");
    let text = browser.wait_for(&row);
    assert!(text.contains("sending"), "{text}");
    let last_batch = browser.text(&format!("{row} td:nth-child(3)"));
    assert!(last_batch.starts_with("20"), "a last batch time: {text}");
    let panels = browser.texts("section.panel h2, figure.timeseries figcaption");
    for panel in [
        "Hosts",
        "Events stored per minute",
        "Kernel events lost per minute",
        "Loss markers",
        "Dead letters",
        "Clock skew",
        "TLS stacks not hooked",
        "Enforcement per node",
    ] {
        assert!(panels.iter().any(|p| p.starts_with(panel)), "panel {panel:?} in {panels:?}");
    }
    // The events chart is drawn by the embedded uPlot.
    browser.wait_for("figure.timeseries .uplot canvas");
    browser.screenshot("fleet");
    browser.assert_only_local_requests();

    // The inbox: both findings, newest first, the claim's text shown.
    browser.open(&format!("{base}/findings?host={host}"));
    browser.wait_for_text("section.panel", "unverified_claim", true);
    let kinds = browser.texts("article.finding strong.kind");
    assert!(kinds.contains(&"unverified_claim".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"out_of_scope_effect".to_string()), "{kinds:?}");
    browser.eval("document.querySelectorAll('details').forEach(d => d.open = true); return 0");
    let page = browser.text("main");
    assert!(page.contains(claim["summary"].as_str().unwrap()), "the claim's summary is shown:\n{page}");
    assert!(page.contains(claim["expected"].as_str().unwrap()), "what was expected is shown:\n{page}");
    // The captured <script> is text on the page, and never ran.
    assert!(page.contains(PWN), "the captured script shows as text:\n{page}");
    assert_eq!(browser.eval("return typeof window.__plb_pwned"), "undefined");
    assert_eq!(browser.eval("return document.querySelectorAll('main script').length"), 0, "no script in the findings");
    browser.screenshot("findings");
    browser.assert_only_local_requests();

    // Filters are the address: only the claim.
    browser.open(&format!("{base}/findings?host={host}&kind=unverified_claim&severity=high"));
    let kinds = browser.texts("article.finding strong.kind");
    assert!(!kinds.is_empty() && kinds.iter().all(|k| k == "unverified_claim"), "{kinds:?}");

    // From the inbox to the session page.
    let link = "article.finding[data-kind='unverified_claim'] a.session";
    assert_eq!(browser.attr(link, "href").as_deref(), Some(format!("/sessions/{liar}").as_str()));
    browser.click(link);
    assert!(browser.url().ends_with(&format!("/sessions/{liar}")), "{}", browser.url());
    assert_eq!(browser.text("h1"), format!("Session {liar}"));
    assert_eq!(browser.eval("return typeof window.__plb_pwned"), "undefined");
    browser.assert_only_local_requests();

    // Why was the key read: the read_file call the injected page led to.
    browser.open(&format!("{base}/findings?host={host}&kind=out_of_scope_effect"));
    let why = "article.finding[data-kind='out_of_scope_effect'] a.why";
    let key_link = browser
        .eval(&format!(
            "return [...document.querySelectorAll(\"{why}\")].map(a => a.getAttribute('href'))\
             .find(h => h.includes('id_rsa')) || ''"
        ))
        .as_str()
        .unwrap()
        .to_string();
    assert!(key_link.starts_with("/why?"), "a why link for the key: {key_link:?}");
    browser.open(&format!("{base}{key_link}"));
    let chain = browser.wait_for("article.why-chain");
    assert!(chain.contains(&key.display().to_string()), "{chain}");
    assert!(chain.contains("read_file"), "the tool call that read it: {chain}");
    browser.screenshot("why");
    browser.assert_only_local_requests();

    // Nothing the browser asked for left this machine's loopback.
    let requested = browser.requested();
    assert!(requested.iter().any(|u| u.contains("/assets/uplot")), "{requested:?}");
}

/// The harness's own check: a page on 127.0.0.1 that asks a CDN by name and
/// a server by address gets neither, and both requests are named.
const PAGE: &str = "<!doctype html><title>outside</title><h1>outside</h1>\
    <img id=cdn src=\"http://cdn.example.com/x.png\"><img id=ip src=\"http://192.0.2.7/y.png\">";

#[test]
fn the_test_browser_reaches_no_other_host_and_names_what_a_page_asked_of_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            // One thread a connection: the browser may open one it never uses.
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut request);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = std::io::Write::write_all(&mut stream, response.as_bytes());
            });
        }
    });
    let mut browser = Browser::start();
    browser.open(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(browser.text("h1"), "outside");
    browser.wait_until("both images to fail", || {
        browser.eval("return [...document.images].every(i => i.complete && i.naturalWidth === 0)") == true
    });
    let foreign = browser.foreign_requests();
    assert!(foreign.contains(&"http://cdn.example.com/x.png".to_string()), "{foreign:?}");
    assert!(foreign.contains(&"http://192.0.2.7/y.png".to_string()), "{foreign:?}");
}
