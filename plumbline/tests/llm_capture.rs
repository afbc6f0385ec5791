//! Intent capture end to end, as root on the real kernel: real TLS clients
//! (curl, Python's http.client and the openai/anthropic SDKs, Node, Go) call
//! our HTTPS fixture, which answers in each provider's wire format; the agent
//! reads their plaintext with uprobes, and every assertion goes through
//! `plumb` (llm, agents, tokens, tls) on the single-host default.

mod support;

use std::{path::PathBuf, process::Command};

use plumbline_llm_fixture::{clients, Fixture};
use serde_json::Value;
use support::*;

/// The fixture serves each provider under its own path prefix on localhost.
const ENDPOINTS: [(&str, &str, &str); 11] = [
    ("openai", "/openai/v1/chat/completions", "openai_chat"),
    ("openai", "/openai/v1/responses", "openai_responses"),
    ("openai", "/openai/v1/embeddings", "openai_embeddings"),
    ("anthropic", "/anthropic/v1/messages", "anthropic_messages"),
    ("gemini", "/gemini/v1beta/models/", "gemini"),
    ("cohere", "/cohere/v2/chat", "cohere_chat"),
    ("mistral", "/mistral/v1/chat/completions", "openai_chat"),
    ("together", "/together/v1/chat/completions", "openai_chat"),
    ("groq", "/groq/openai/v1/chat/completions", "openai_chat"),
    ("fireworks", "/fireworks/inference/v1/chat/completions", "openai_chat"),
    ("perplexity", "/perplexity/chat/completions", "openai_chat"),
];

/// Secrets the clients send; none may be found downstream.
const SECRETS: [&str; 4] = [
    "sk-proj-fixtureKey0123456789abcdefABCDEF",
    "sk-proj-SECRETfixture0123456789abcdefghijklmnop",
    "sk-ant-api03-fixtureKey0123456789",
    "AIzaSyFixtureKey0123456789abcdefghijk",
];

struct Bed {
    plumbline: Embedded,
    fixture: Fixture,
    go: PathBuf,
    go_stripped: PathBuf,
    node: PathBuf,
}

fn start() -> Bed {
    start_with("")
}

fn start_with(intent: &str) -> Bed {
    let fixture = Fixture::in_process().expect("the HTTPS fixture starts");
    let go = clients::go_build(false).expect("the Go client builds");
    let go_stripped = clients::go_build(true).expect("the stripped Go client builds");
    let node = clients::node().expect("node is installed");
    let mut extra = format!("[capture]\nfiles = false\nipc = false\n[capture.intent]\n{intent}");
    // Binaries hooked before they run: a program that does TLS in its first
    // milliseconds would otherwise race its own exec being seen.
    extra.push_str(&format!("preload = [{:?}, {:?}, {:?}]\n", node, go, go_stripped));
    for (provider, path, format) in ENDPOINTS {
        extra.push_str(&format!(
            "[[capture.intent.endpoints]]\nprovider = \"{provider}\"\nhost = \"localhost\"\n\
             path_prefix = \"{path}\"\nformat = \"{format}\"\n"
        ));
    }
    extra.push_str(
        "[[capture.intent.agents]]\nagent = \"py-agent\"\npriority = 10\nfield = \"COMMAND_LINE\"\n\
         pattern = 'python_(sdk_)?client\\.py'\n",
    );
    let plumbline = Embedded::start(&extra);
    Bed { plumbline, fixture, go, go_stripped, node }
}

/// Runs a client; returns its pid and the calls it says it made.
fn run(mut command: Command) -> (u32, Vec<Value>) {
    let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    let calls = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect::<Vec<Value>>();
    assert!(!calls.is_empty(), "{command:?} printed no call");
    (pid, calls)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

impl Bed {
    /// The LLM calls of `pid`, once there are `n`.
    fn calls_of(&self, pid: u32, n: usize) -> Vec<Value> {
        let pid = pid.to_string();
        let mut calls = eventually(&format!("{n} LLM calls of pid {pid}"), || {
            let calls = self.plumbline.view("llm", &["--pid", &pid]);
            (calls.len() >= n).then_some(calls)
        });
        calls.sort_by_key(|c| u(&c["wall_ns"]));
        calls
    }

    fn python(&self, scenario: &str) -> (u32, Vec<Value>) {
        run(clients::python_command(&self.fixture, scenario))
    }
}

/// What the client received, the agent read: model and token counts.
fn assert_same_call(seen: &Value, client: &Value) {
    assert_eq!(seen["model"], client["model"], "{seen}\n{client}");
    assert_eq!(u(&seen["input_tokens"]), u(&client["input_tokens"]), "{seen}\n{client}");
    assert_eq!(u(&seen["output_tokens"]), u(&client["output_tokens"]), "{seen}\n{client}");
    assert_eq!(u(&seen["http_status"]), u(&client["status"]), "{seen}\n{client}");
    assert_eq!(u(&seen["bytes_lost"]), 0, "{seen}");
}

#[test]
fn every_provider_format_from_python_is_read_with_model_tokens_and_ttft() {
    let bed = start();
    let scenarios = [
        ("openai-chat", "openai"),
        ("openai-chat-stream", "openai"),
        ("openai-responses", "openai"),
        ("openai-embeddings", "openai"),
        ("anthropic-messages", "anthropic"),
        ("anthropic-stream", "anthropic"),
        ("gemini", "gemini"),
        ("gemini-stream", "gemini"),
        ("cohere", "cohere"),
        ("cohere-stream", "cohere"),
        ("mistral", "mistral"),
        ("together", "together"),
        ("groq", "groq"),
        ("fireworks", "fireworks"),
        ("perplexity", "perplexity"),
    ];
    for (scenario, provider) in scenarios {
        let (pid, client_calls) = bed.python(scenario);
        let seen = bed.calls_of(pid, client_calls.len());
        assert_eq!(seen.len(), client_calls.len(), "{scenario}: {seen:?}");
        for (seen, client) in seen.iter().zip(&client_calls) {
            assert_eq!(seen["provider"], provider, "{scenario}: {seen}");
            assert_same_call(seen, client);
            assert_eq!(seen["agent"], "py-agent", "{scenario}: mapped by its command line");
            assert!(u(&seen["ttft_ns"]) > 0 && u(&seen["ttft_ns"]) <= u(&seen["latency_ns"]), "{scenario}: {seen}");
            if seen["streamed"] == true {
                // The fixture spaces a stream's events: the first comes well before the last.
                assert!(u(&seen["ttft_ns"]) < u(&seen["latency_ns"]), "{scenario}: {seen}");
            }
            if provider != "openai" || scenario != "openai-embeddings" {
                assert!(!seen["prompt"].as_str().unwrap_or("").is_empty(), "{scenario}: {seen}");
            }
        }
    }
}

#[test]
fn a_23_kib_request_and_a_100_kib_stream_arrive_whole() {
    let bed = start();
    let (pid, client) = bed.python("big-request");
    let seen = bed.calls_of(pid, 1);
    assert_same_call(&seen[0], &client[0]);
    assert!(u(&seen[0]["request_bytes"]) > 23_000, "{}", seen[0]["request_bytes"]);
    assert!(seen[0]["prompt"].as_str().unwrap().ends_with("lorem2359"), "the prompt's last word is there");

    let (pid, client) = bed.python("big-stream");
    let seen = bed.calls_of(pid, 1);
    assert_same_call(&seen[0], &client[0]);
    let completion = seen[0]["completion"].as_str().unwrap();
    assert_eq!(completion.len() as u64, u(&client[0]["text_len"]), "the whole streamed text");
    assert!(completion.len() > 100 * 1024);
    assert_eq!(seen[0]["streamed"], true);
    // The agent's own counters say the same: calls read, nothing lost.
    let metric = |text: &str, name: &str| -> Option<u64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    let metrics = eventually("the agent's intent counters", || {
        let text = bed.plumbline.metrics();
        (metric(&text, "plumbline_agent_llm_calls_total")? >= 2).then_some(text)
    });
    assert_eq!(metric(&metrics, "plumbline_agent_tls_bytes_lost_total"), Some(0), "{metrics}");
}

#[test]
fn tool_calls_and_results_secrets_and_guardrail_findings() {
    let bed = start();
    let (pid, client) = bed.python("tools");
    let seen = bed.calls_of(pid, 2);
    let asked = &seen[0]["tool_calls"][0];
    assert_eq!(asked["name"], "read_file", "{}", seen[0]);
    assert_eq!(asked["name"], client[0]["tool_calls"][0], "{}", seen[0]);
    assert!(asked["arguments"].as_str().unwrap().contains("/etc/hostname"), "{asked}");
    let answered = &seen[1]["tool_results"][0];
    assert_eq!(answered["tool_call_id"], asked["id"], "{}", seen[1]);
    assert_eq!(answered["content"], "fixture-host");

    let (pid, _) = bed.python("pii");
    let seen = bed.calls_of(pid, 1);
    let kinds: Vec<&str> = seen[0]["findings"].as_array().unwrap().iter().filter_map(|f| f["kind"].as_str()).collect();
    for kind in ["pii_ssn", "pii_email", "pii_credit_card", "injection_instruction_override"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let findings = seen[0]["findings"].to_string();
    assert!(!findings.contains("123-45-6789"), "a finding does not repeat the SSN: {findings}");

    let (pid, _) = bed.python("secret");
    let seen = bed.calls_of(pid, 2);
    assert!(seen.iter().any(|c| c["provider"] == "gemini"), "{seen:?}");
    // Nothing downstream holds a key: not the views, not the database file.
    let everything = serde_json::to_string(&bed.plumbline.view("llm", &[])).unwrap();
    let database = std::fs::read(bed.plumbline._dir.path().join("plumbline.db")).unwrap();
    for secret in SECRETS {
        assert!(!everything.contains(secret), "{secret} leaked into plumb llm");
        assert!(!database.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} leaked into the store");
    }

    let (pid, client) = bed.python("error-401");
    let seen = bed.calls_of(pid, 1);
    assert_eq!(u(&seen[0]["http_status"]), 401);
    assert_eq!(u(&client[0]["status"]), 401);
    assert!(!seen[0]["error"].as_str().unwrap().is_empty(), "{}", seen[0]);
}

#[test]
fn curl_node_go_and_the_sdks_are_read_and_a_download_is_not_an_llm_call() {
    let bed = start();
    // curl over HTTP/2 with an API key in its header.
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--http2", "--cacert"])
        .arg(bed.fixture.ca_path())
        .arg(format!("{}/openai/v1/chat/completions", bed.fixture.base_url()))
        .args(["-H", &format!("Authorization: Bearer {}", SECRETS[0]), "-H", "content-type: application/json"])
        .args(["-d", r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello from curl"}]}"#]);
    let (pid, _) = run(curl);
    let seen = bed.calls_of(pid, 1);
    assert_eq!((seen[0]["protocol"].as_str(), seen[0]["library"].as_str()), (Some("HTTP/2"), Some("openssl")));
    assert_eq!(seen[0]["model"], "gpt-4o");
    assert!(u(&seen[0]["input_tokens"]) > 0 && u(&seen[0]["output_tokens"]) > 0, "{}", seen[0]);
    assert_eq!(seen[0]["remote"], format!("127.0.0.1:{}", bed.fixture.port()), "{}", seen[0]);
    assert_eq!(seen[0]["server"], "localhost", "{}", seen[0]);

    // The server name comes from the TLS handshake (SNI) when it differs from the Host header.
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--http1.1", "-k", "--connect-to"])
        .arg(format!("llm.sni-check.example:443:127.0.0.1:{}", bed.fixture.port()))
        .arg("https://llm.sni-check.example/openai/v1/chat/completions")
        .args(["-H", "Host: localhost", "-H", "content-type: application/json"])
        .args(["-d", r#"{"model":"gpt-4o","messages":[{"role":"user","content":"which server?"}]}"#]);
    let (pid, _) = run(curl);
    let seen = bed.calls_of(pid, 1);
    assert_eq!(seen[0]["server"], "llm.sni-check.example", "{}", seen[0]);

    for (command, n) in [
        (clients::python_sdk_command(&bed.fixture, "openai-chat"), 1),
        (clients::python_sdk_command(&bed.fixture, "anthropic-stream"), 1),
        (clients::node_command(&bed.node, &bed.fixture, "openai-chat"), 1),
        (clients::node_command(&bed.node, &bed.fixture, "openai-chat-fetch"), 1),
        (clients::go_command(&bed.go, &bed.fixture, "openai-chat"), 1),
        (clients::go_command(&bed.go, &bed.fixture, "openai-stream"), 1),
    ] {
        let what = format!("{command:?}");
        let (pid, client) = run(command);
        let seen = bed.calls_of(pid, n);
        for (seen, client) in seen.iter().zip(&client) {
            assert_same_call(seen, client);
        }
        if what.contains("llm-clients") {
            assert_eq!((seen[0]["library"].as_str(), seen[0]["protocol"].as_str()), (Some("go"), Some("HTTP/2")));
        }
    }

    // An HTTPS download over the same kind of connection is not an LLM call.
    let (pid, client) = bed.python("download");
    assert_eq!(u(&client[0]["status"]), 200);
    let (marker, _) = bed.python("openai-chat");
    bed.calls_of(marker, 1);
    assert!(bed.plumbline.view("llm", &["--pid", &pid.to_string()]).is_empty(), "a download is not an LLM call");

    // The stripped Go binary is reported, not silently missed.
    let (pid, _) = run(clients::go_command(&bed.go_stripped, &bed.fixture, "openai-chat"));
    let stacks = eventually("the stripped Go binary's TLS stack", || {
        let stacks = bed.plumbline.view("tls", &["--pid", &pid.to_string()]);
        (!stacks.is_empty()).then_some(stacks)
    });
    assert_eq!(stacks[0]["hooked"], false, "{stacks:?}");
    assert!(stacks[0]["reason"].as_str().unwrap().contains("symbol table"), "{stacks:?}");

    // Agents: the SDK's Python is mapped by rule, curl only discovered.
    let agents = bed.plumbline.view("agents", &[]);
    let curl_row = agents.iter().find(|a| a["comm"] == "curl").expect("curl is listed as discovered");
    assert_eq!(curl_row["agent"], "", "{curl_row}");
    assert!(agents.iter().any(|a| a["agent"] == "py-agent" && u(&a["llm_calls"]) > 0), "{agents:?}");
    let tokens = bed.plumbline.view("tokens", &[]);
    assert!(tokens.iter().any(|t| t["agent"] == "py-agent" && u(&t["input_tokens"]) > 0), "{tokens:?}");
}

#[test]
fn hashed_capture_keeps_no_text_and_agent_rules_change_while_the_agent_runs() {
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rules.path(), "").unwrap();
    let bed = start_with(&format!("prompt_capture = \"hashed\"\nagent_rules_file = {:?}\n", rules.path()));

    // Hashed: equal prompts hash equal; no text of the prompt or completion is kept.
    let (first, _) = run(clients::go_command(&bed.go, &bed.fixture, "openai-chat"));
    let (second, _) = run(clients::go_command(&bed.go, &bed.fixture, "openai-chat"));
    let (a, b) = (&bed.calls_of(first, 1)[0], &bed.calls_of(second, 1)[0]);
    let prompt = a["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("sha256:") && prompt.len() == 71, "{a}");
    assert_eq!(a["prompt"], b["prompt"], "the same prompt, the same hash");
    assert!(a["completion"].as_str().unwrap().starts_with("sha256:"), "{a}");
    assert_eq!(u(&a["input_tokens"]), u(&b["input_tokens"]));

    // No rule yet: the Go client is only discovered.
    assert_eq!(a["agent"], "", "{a}");
    // A rule written to the rules file while the agent runs maps the next run.
    std::fs::write(
        rules.path(),
        "[[agents]]\nagent = \"go-agent\"\nfield = \"EXECUTABLE_PATH\"\npattern = 'llm-client-go$'\n",
    )
    .unwrap();
    let mapped = eventually("the new rule in force", || {
        let (pid, _) = run(clients::go_command(&bed.go, &bed.fixture, "openai-chat"));
        let call = bed.calls_of(pid, 1).remove(0);
        (call["agent"] == "go-agent").then_some(call)
    });
    assert_eq!(mapped["model"], a["model"]);
    let agents = bed.plumbline.view("agents", &["--agent", "go-agent"]);
    assert!(agents.iter().any(|r| r["matched_on"] == "EXECUTABLE_PATH"), "{agents:?}");
}

#[test]
fn plaintext_past_the_capture_limit_is_counted_as_lost_not_cut_silently() {
    let bed = start_with("max_capture_kib = 8\n");
    let (_, client) = bed.python("big-request");
    assert_eq!(u(&client[0]["status"]), 200);
    let metric = |text: &str, name: &str| -> Option<u64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    // The request's one ~23 KiB write was copied up to 8 KiB; the rest is counted.
    let lost = eventually("the bytes past the limit counted", || {
        metric(&bed.plumbline.metrics(), "plumbline_agent_tls_bytes_lost_total").filter(|lost| *lost > 0)
    });
    assert!(lost >= 23_000 - 8 * 1024, "{lost}");
    // A later request on a new connection is read again in full.
    let (pid, client) = bed.python("openai-chat");
    assert_same_call(&bed.calls_of(pid, 1)[0], &client[0]);
}
