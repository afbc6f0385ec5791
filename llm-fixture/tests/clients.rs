//! The real clients of `plumbline/tests/clients/` against the fixture: what each client says it received must be
//! what the server's exchange log says it served, call by call. A client whose runtime is missing is skipped with
//! the reason printed, except under `CI`, where it fails.

use std::process::Command;

use plumbline_llm_fixture::clients::{self, require};
use plumbline_llm_fixture::Fixture;
use serde_json::{json, Value};

fn fixture() -> Fixture {
    Fixture::spawn(env!("CARGO_BIN_EXE_plumbline-llm-fixture")).expect("the fixture starts")
}

fn run(mut command: Command) -> Vec<Value> {
    clients::run(&mut command).unwrap_or_else(|error| panic!("{error:#}"))
}

/// Each call a client reports is the exchange at the same place in the server's log: same status, model, tokens
/// and tool calls (fields the client reports as null are not compared).
fn assert_matches_log(lines: &[Value], log: &[Value]) {
    assert_eq!(lines.len(), log.len(), "one exchange per call\nclient: {lines:#?}\nserver: {log:#?}");
    for (line, exchange) in lines.iter().zip(log) {
        let context = format!("client {line}\nserver {exchange}");
        assert_eq!(line["status"], exchange["status"], "{context}");
        for (client_key, server_key) in
            [("model", "model"), ("input_tokens", "input_tokens"), ("output_tokens", "output_tokens")]
        {
            if !line[client_key].is_null() {
                assert_eq!(line[client_key], exchange[server_key], "{client_key}: {context}");
            }
        }
        assert_eq!(line["tool_calls"], exchange["tool_calls"], "{context}");
    }
}

/// An exchange as (provider, path, stream, status).
type Served<'a> = (&'a str, &'a str, bool, u64);

fn versions(log: &[Value]) -> Vec<&str> {
    log.iter().map(|e| e["http_version"].as_str().unwrap()).collect()
}

#[test]
fn python_http_client_every_scenario() {
    let python = clients::python();
    let Some(_) = require("python3", clients::python_has(&python, &[]).then_some(python)) else { return };
    let fixture = fixture();
    // Each scenario with the exchanges it makes.
    let chat = "/openai/v1/chat/completions";
    let scenarios: &[(&str, &[Served])] = &[
        ("openai-chat", &[("openai", chat, false, 200)]),
        ("openai-chat-stream", &[("openai", chat, true, 200)]),
        ("openai-responses", &[("openai", "/openai/v1/responses", false, 200)]),
        ("openai-embeddings", &[("openai", "/openai/v1/embeddings", false, 200)]),
        ("anthropic-messages", &[("anthropic", "/anthropic/v1/messages", false, 200)]),
        ("anthropic-stream", &[("anthropic", "/anthropic/v1/messages", true, 200)]),
        ("gemini", &[("gemini", "/gemini/v1beta/models/gemini-2.0-flash:generateContent", false, 200)]),
        ("gemini-stream", &[("gemini", "/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent", true, 200)]),
        ("cohere", &[("cohere", "/cohere/v2/chat", false, 200)]),
        ("cohere-stream", &[("cohere", "/cohere/v2/chat", true, 200)]),
        ("mistral", &[("mistral", "/mistral/v1/chat/completions", false, 200)]),
        ("together", &[("together", "/together/v1/chat/completions", false, 200)]),
        ("groq", &[("groq", "/groq/openai/v1/chat/completions", false, 200)]),
        ("fireworks", &[("fireworks", "/fireworks/inference/v1/chat/completions", false, 200)]),
        ("perplexity", &[("perplexity", "/perplexity/chat/completions", false, 200)]),
        ("big-request", &[("openai", chat, false, 200)]),
        ("big-stream", &[("openai", chat, true, 200)]),
        ("tools", &[("openai", chat, false, 200), ("openai", chat, false, 200)]),
        ("error-401", &[("openai", chat, false, 401)]),
        ("download", &[("none", "/downloads/package.tar.gz", false, 200)]),
        ("pii", &[("openai", chat, false, 200)]),
        (
            "secret",
            &[
                ("openai", chat, false, 200),
                ("gemini", "/gemini/v1beta/models/gemini-2.0-flash:generateContent", false, 200),
            ],
        ),
    ];
    let mut lines = Vec::new();
    for (scenario, expected) in scenarios {
        let out = run(clients::python_command(&fixture, scenario));
        assert_eq!(out.len(), expected.len(), "{scenario}: {out:?}");
        for line in &out {
            assert_eq!(
                (line["client"].as_str(), line["scenario"].as_str()),
                (Some("python-http.client"), Some(*scenario))
            );
        }
        lines.extend(out);
    }
    let log = fixture.exchanges();
    assert_matches_log(&lines, &log);
    let expected: Vec<Served> = scenarios.iter().flat_map(|(_, e)| e.iter().copied()).collect();
    let served: Vec<Served> = log
        .iter()
        .map(|e| {
            let provider = e["provider"].as_str().unwrap();
            let path = e["path"].as_str().unwrap();
            (provider, path, e["stream"].as_bool().unwrap(), e["status"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(served, expected);
    // http.client speaks HTTP/1.1 only.
    assert!(versions(&log).iter().all(|v| *v == "HTTP/1.1"));

    let line = |scenario: &str| lines.iter().find(|l| l["scenario"] == scenario).unwrap();
    let exchange = |path_part: &str, nth: usize| {
        log.iter().filter(|e| e["path"].as_str().unwrap().contains(path_part)).nth(nth).unwrap()
    };
    // The big request: one body of about 23 KiB.
    let big_request = &log[15];
    assert!((22 * 1024..24 * 1024).contains(&big_request["request_bytes"].as_u64().unwrap()), "{big_request}");
    // The big stream: about 100 KiB of text.
    assert!(line("big-stream")["text_len"].as_u64().unwrap() >= 100 * 1024);
    assert!(log[16]["response_bytes"].as_u64().unwrap() > 100 * 1024);
    // The tool round trip: a call, then text once the result is sent back.
    assert_eq!(log[17]["tool_calls"], json!(["read_file"]));
    assert_eq!(log[18]["tool_calls"], json!([]));
    assert_eq!(line("download")["text_len"], exchange("/downloads/", 0)["response_bytes"]);
    assert_eq!(line("error-401")["status"], 401);
}

#[test]
fn python_openai_and_anthropic_sdks() {
    let python = clients::python();
    let Some(_) = require(
        "the openai and anthropic SDKs (scripts/python-deps.sh, PLUMBLINE_TEST_PYTHON)",
        clients::python_has(&python, &["openai", "anthropic"]).then_some(python),
    ) else {
        return;
    };
    let fixture = fixture();
    let mut lines = Vec::new();
    for scenario in ["openai-chat", "openai-stream", "openai-tools", "anthropic-messages", "anthropic-stream"] {
        lines.extend(run(clients::python_sdk_command(&fixture, scenario)));
    }
    let log = fixture.exchanges();
    assert_matches_log(&lines, &log);
    let shape: Vec<(&str, bool)> =
        log.iter().map(|e| (e["provider"].as_str().unwrap(), e["stream"].as_bool().unwrap())).collect();
    assert_eq!(
        shape,
        [
            ("openai", false),
            ("openai", true),
            ("openai", false),
            ("openai", false),
            ("anthropic", false),
            ("anthropic", true)
        ]
    );
    assert_eq!(log[2]["tool_calls"], json!(["read_file"]));
    assert_eq!(log[3]["tool_calls"], json!([]));
    assert!(lines
        .iter()
        .all(|l| l["text_len"].as_u64().unwrap() > 0 || !l["tool_calls"].as_array().unwrap().is_empty()));
    // httpx2 asks for gzip, so the non-streamed answers come compressed.
    assert!(log.iter().filter(|e| e["stream"] == false).all(|e| e["gzip_response"] == true));
    println!("SDK HTTP versions: {:?}", versions(&log));
}

#[test]
fn node_https_and_fetch() {
    let Some(node) = require("node", clients::node()) else { return };
    let fixture = fixture();
    let mut lines = Vec::new();
    for scenario in ["openai-chat", "anthropic-stream", "openai-chat-fetch"] {
        lines.extend(run(clients::node_command(&node, &fixture, scenario)));
    }
    let log = fixture.exchanges();
    assert_matches_log(&lines, &log);
    let clients: Vec<&str> = lines.iter().map(|l| l["client"].as_str().unwrap()).collect();
    assert_eq!(clients, ["node-https", "node-https", "node-fetch"]);
    assert_eq!(log[1]["stream"], true);
    assert_eq!(log[1]["provider"], "anthropic");
    // Node's https module and its fetch (undici) both speak HTTP/1.1.
    assert_eq!(versions(&log), ["HTTP/1.1", "HTTP/1.1", "HTTP/1.1"]);
}

/// The names of an ELF64 file's sections.
fn elf_sections(bytes: &[u8]) -> Vec<String> {
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&bytes[..5], b"\x7fELF\x02");
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3A), u16_at(0x3C), u16_at(0x3E));
    let strtab = u64_at(shoff + shstrndx * shentsize + 0x18);
    (0..shnum)
        .map(|i| {
            let name = strtab + u32::from_le_bytes(bytes[shoff + i * shentsize..][..4].try_into().unwrap()) as usize;
            let end = bytes[name..].iter().position(|b| *b == 0).unwrap();
            String::from_utf8_lossy(&bytes[name..name + end]).into_owned()
        })
        .collect()
}

#[test]
fn go_client_with_symbols_and_stripped_speaks_http2() {
    let Some(_) = require("go (golang-go)", clients::go()) else { return };
    let normal = clients::go_build(false).unwrap_or_else(|error| panic!("{error:#}"));
    let stripped = clients::go_build(true).unwrap_or_else(|error| panic!("{error:#}"));
    let sections = elf_sections(&std::fs::read(&normal).unwrap());
    assert!(sections.iter().any(|s| s == ".symtab"), "{sections:?}");
    let sections = elf_sections(&std::fs::read(&stripped).unwrap());
    assert!(!sections.iter().any(|s| s == ".symtab" || s.starts_with(".debug") || s.starts_with(".zdebug")));

    for binary in [&normal, &stripped] {
        let fixture = fixture();
        let mut lines = Vec::new();
        for scenario in ["openai-chat", "openai-stream", "anthropic-messages"] {
            lines.extend(run(clients::go_command(binary, &fixture, scenario)));
        }
        let log = fixture.exchanges();
        assert_matches_log(&lines, &log);
        assert_eq!(versions(&log), ["HTTP/2", "HTTP/2", "HTTP/2"], "{}", binary.display());
        assert!(lines.iter().all(|l| l["http_version"] == "HTTP/2.0"));
        assert_eq!(log[1]["stream"], true);
        assert_eq!(log[2]["provider"], "anthropic");
    }
}
