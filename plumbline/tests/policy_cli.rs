//! `plumbline policy validate FILE`: a good policy is summarised and exits
//! 0; a bad one exits non-zero with a message naming the key at fault.

use std::process::{Command, Output};

fn validate(policy: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    Command::new(env!("CARGO_BIN_EXE_plumbline")).args(["policy", "validate"]).arg(&path).output().unwrap()
}

const GOOD: &str = r#"
mode = "audit"

[[roles]]
name = "coder"
mode = "enforce"
[roles.exec]
allow = ["/usr/bin/", "/bin/", "/usr/local/bin/python3*"]
mode = "audit"
[roles.files]
read_only = ["/repo/", "/usr/"]
read_write = ["/repo/build/", "/tmp/"]
deny = ["/repo/.git/hooks/"]
[roles.network]
allow = ["api.openai.com:443", "*.anthropic.com:443", "10.0.0.0/8", "[::1]:8080", "llm:*"]

[[workloads]]
role = "coder"
field = "COMMAND_LINE"
pattern = "claude|codex"
"#;

#[test]
fn a_good_policy_is_summarised_and_exits_zero() {
    let output = validate(GOOD);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("policy: default mode audit, 1 role(s), 1 workload selector(s)"), "{stdout}");
    assert!(stdout.contains("role \"coder\" (id 1): mode enforce"), "{stdout}");
    assert!(stdout.contains("exec: 3 allowed, else deny (audit)"), "{stdout}");
    assert!(stdout.contains("files: 2 read-only, 2 read-write, 1 deny, else deny (enforce)"), "{stdout}");
    assert!(stdout.contains("workloads[0]: COMMAND_LINE matching \"claude|codex\" -> role \"coder\""), "{stdout}");
    assert!(stderr.contains("policy is valid"), "{stderr}");
}

#[test]
fn a_bad_value_exits_non_zero_naming_its_key() {
    let output = validate(&GOOD.replace("\"api.openai.com:443\"", "\"api.openai.com:99999\""));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("roles[0].network.allow[0]: \"api.openai.com:99999\": port out of range"), "{stderr}");
}

#[test]
fn an_unknown_role_or_key_exits_non_zero_naming_it() {
    let output = validate(&GOOD.replace("role = \"coder\"", "role = \"codr\""));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("workloads[0].role: \"codr\": unknown role (roles: coder)"), "{stderr}");

    let output = validate(&GOOD.replace("read_only =", "raed_only ="));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("roles[0].files.raed_only: unknown field `raed_only`"), "{stderr}");
}

#[test]
fn a_missing_file_exits_non_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["policy", "validate", "/nonexistent/policy.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("reading /nonexistent/policy.toml"));
}
