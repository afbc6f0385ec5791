use std::net::IpAddr;

use super::*;

const EXAMPLE: &str = r#"
mode = "audit"

[[roles]]
name = "coder"
mode = "enforce"
[roles.exec]
allow = ["/usr/bin/", "/bin/", "/usr/local/bin/python3*", "/opt/*/bin/python3"]
mode = "audit"
[roles.files]
read_only = ["/repo/", "/usr/"]
read_write = ["/repo/build/", "/tmp/"]
deny = ["/repo/.git/hooks/", "/root/.ssh/"]
[roles.network]
allow = ["api.openai.com:443", "*.anthropic.com:443", "10.0.0.0/8", "[::1]:8080", "127.0.0.1:18080", "llm:anthropic", "fd00::/8"]

[[roles]]
name = "reviewer"

[[workloads]]
role = "coder"
field = "COMMAND_LINE"
pattern = "claude|codex"
"#;

fn example() -> Policy {
    Policy::parse(EXAMPLE).unwrap()
}

fn coder() -> Role {
    example().role_named("coder").unwrap().clone()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The error's text, for a policy that must not parse.
fn error(text: &str) -> String {
    Policy::parse(text).unwrap_err().to_string()
}

fn role_with(table: &str) -> String {
    format!("[[roles]]\nname = \"r\"\n{table}")
}

#[test]
fn the_example_parses_with_modes_ids_and_rules() {
    let policy = example();
    assert_eq!(policy.mode, Mode::Audit);
    let coder = policy.role_named("coder").unwrap();
    assert_eq!((coder.id, coder.mode), (RoleId(1), Mode::Enforce));
    assert_eq!(coder.exec.as_ref().unwrap().mode, Mode::Audit, "the family's mode overrides the role's");
    assert_eq!(coder.files.as_ref().unwrap().mode, Mode::Enforce, "else the role's");
    assert_eq!(coder.files.as_ref().unwrap().rules.len(), 6);
    let reviewer = policy.role_named("reviewer").unwrap();
    assert_eq!((reviewer.id, reviewer.mode), (RoleId(2), Mode::Audit), "else the file's");
    assert_eq!(policy.role(RoleId(2)).unwrap().name, "reviewer");
    assert!(policy.role(RoleId(0)).is_none());
    let net = coder.network.as_ref().unwrap();
    assert_eq!(net.addresses.len(), 4);
    assert!(net.hosts.iter().any(|h| h.host == "api.anthropic.com" && h.port == 443 && h.text == "llm:anthropic"));
    assert_eq!(coder.hosts_to_resolve(), [("api.openai.com", 443), ("api.anthropic.com", 443)]);
    assert_eq!(policy.hosts_to_resolve(), ["api.anthropic.com", "api.openai.com"]);
    let warnings = policy.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("\"reviewer\": no [[workloads]]"), "{warnings:?}");
    let summary = policy.summary();
    assert!(summary.contains("role \"coder\" (id 1): mode enforce"), "{summary}");
    assert!(summary.contains("files: 2 read-only, 2 read-write, 2 deny, else deny (enforce)"), "{summary}");
}

#[test]
fn an_empty_file_is_a_policy_that_confines_nothing() {
    let policy = Policy::parse("").unwrap();
    assert!(policy.roles.is_empty() && policy.workloads.is_empty());
    assert_eq!(policy.mode, Mode::Audit);
}

#[test]
fn a_family_a_role_does_not_list_is_not_confined() {
    let reviewer = example().role_named("reviewer").unwrap().clone();
    assert_eq!(reviewer.decide_exec("/anything"), Decision::Allow);
    assert_eq!(reviewer.decide_open("/etc/shadow", true), Decision::Allow);
    assert_eq!(reviewer.decide_connect(ip("1.1.1.1"), 53), Decision::Allow);
}

#[test]
fn workloads_select_the_first_matching_role() {
    let policy = example();
    let field = |value: &'static str| move |_: MatchField| std::borrow::Cow::Borrowed(value);
    assert_eq!(policy.select(field("node /usr/bin/claude --print")).unwrap().name, "coder");
    assert!(policy.select(field("bash")).is_none());
    assert!(policy.select(field("")).is_none(), "an empty field matches nothing");
}

#[test]
fn exec_allows_prefixes_and_globs_and_denies_the_rest() {
    let coder = coder();
    for allowed in ["/usr/bin/git", "/bin/sh", "/usr/local/bin/python3.12", "/opt/conda/bin/python3"] {
        assert_eq!(coder.decide_exec(allowed), Decision::Allow, "{allowed}");
    }
    for denied in ["/usr/local/bin/node", "/opt/a/b/bin/python3", "/usr/binx/evil", "/tmp/x"] {
        let decision = coder.decide_exec(denied);
        assert_eq!(
            decision,
            Decision::Deny { rule: None, mode: Mode::Audit, text: "exec: no exec.allow entry covers it".into() },
            "{denied}"
        );
        assert!(!decision.blocks(), "audit mode records only");
    }
}

#[test]
fn files_the_longest_entry_decides_and_deny_wins() {
    let coder = coder();
    let rules = coder.files.as_ref().unwrap();
    let index = |key: &str| rules.rules.iter().position(|r| r.key == key);
    assert_eq!(coder.decide_open("/repo/src/main.rs", false), Decision::Allow);
    let write = coder.decide_open("/repo/src/main.rs", true);
    assert_eq!(
        write,
        Decision::Deny {
            rule: index("files.read_only[0]"),
            mode: Mode::Enforce,
            text: "files.read_only[0] \"/repo/\"".into()
        }
    );
    assert!(write.blocks());
    // The longer read_write entry beats the read_only one above it.
    assert_eq!(coder.decide_open("/repo/build/out.o", true), Decision::Allow);
    assert_eq!(coder.decide_open("/repo/build", true), Decision::Allow, "the directory itself");
    // A deny wins however short it is.
    let hooks = coder.decide_open("/repo/.git/hooks/pre-commit", false);
    assert!(matches!(&hooks, Decision::Deny { rule, .. } if *rule == index("files.deny[0]")), "{hooks:?}");
    assert!(matches!(coder.decide_open("/repo/.git/hooks", false), Decision::Deny { .. }));
    assert_eq!(coder.decide_open("/repo/.git/config", false), Decision::Allow);
    // Prefixes end at a path segment.
    assert!(matches!(coder.decide_open("/repository/x", false), Decision::Deny { rule: None, .. }));
    assert!(matches!(coder.decide_open("/tmpfoo", true), Decision::Deny { rule: None, .. }));
    assert_eq!(coder.decide_open("/tmp/", true), Decision::Allow, "a trailing slash is the same path");
    assert!(matches!(coder.decide_open("/etc/passwd", false), Decision::Deny { rule: None, mode: Mode::Enforce, .. }));
}

#[test]
fn a_deny_below_a_read_write_entry_and_an_allow_below_a_deny() {
    let policy = Policy::parse(&role_with(
        "[roles.files]\nread_write = [\"/\", \"/home/a/.ssh/known_hosts\"]\ndeny = [\"/home/a/.ssh\"]\n",
    ))
    .unwrap();
    let role = &policy.roles[0];
    assert_eq!(role.decide_open("/etc/hosts", true), Decision::Allow, "/ covers everything");
    assert!(matches!(role.decide_open("/home/a/.ssh/id_ed25519", false), Decision::Deny { rule: Some(2), .. }));
    // Deny wins over any allow, even a longer one.
    assert!(matches!(role.decide_open("/home/a/.ssh/known_hosts", false), Decision::Deny { rule: Some(2), .. }));
}

#[test]
fn connects_are_decided_by_cidr_port_and_v4_mapped_addresses() {
    let coder = coder();
    let allowed = |addr: &str, port: u16| coder.decide_connect(ip(addr), port) == Decision::Allow;
    assert!(allowed("10.0.0.0", 1) && allowed("10.255.255.255", 65535), "10/8 edges, any port");
    assert!(!allowed("11.0.0.0", 80) && !allowed("9.255.255.255", 80));
    assert!(allowed("::ffff:10.1.2.3", 22), "v4-mapped is decided as IPv4");
    assert!(allowed("127.0.0.1", 18080) && !allowed("127.0.0.1", 18081), "a port is that port only");
    assert!(allowed("::ffff:127.0.0.1", 18080));
    assert!(allowed("::1", 8080) && !allowed("::1", 8081));
    assert!(allowed("fd00::", 1) && allowed("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1), "fd00::/8 edges");
    assert!(!allowed("fe00::", 1) && !allowed("fc00::1", 1));
    let denied = coder.decide_connect(ip("1.1.1.1"), 443);
    assert_eq!(
        denied,
        Decision::Deny { rule: None, mode: Mode::Enforce, text: "network: no network.allow entry allows it".into() }
    );
}

#[test]
fn ipv6_rules_cover_ipv4_only_through_the_v4_mapped_range() {
    let policy = Policy::parse(&role_with(
        "[roles.network]\nallow = [\"2001:db8::/32\", \"[::ffff:192.168.0.0]/112:53\"]\n\
         [[roles]]\nname = \"any\"\n[roles.network]\nallow = [\"[::]/0:443\"]\n",
    ))
    .unwrap();
    let role = &policy.roles[0];
    assert_eq!(role.decide_connect(ip("2001:db8::1"), 443), Decision::Allow);
    assert!(matches!(role.decide_connect(ip("32.1.13.184"), 443), Decision::Deny { .. }), "not 2001:db8's bytes");
    assert_eq!(role.decide_connect(ip("192.168.1.1"), 53), Decision::Allow, "a v4-mapped rule is IPv4");
    assert_eq!(role.decide_connect(ip("::ffff:192.168.1.1"), 53), Decision::Allow);
    let net = role.network.as_ref().unwrap();
    assert!(!net.addresses[0].is_ipv4() && net.addresses[1].is_ipv4());
    let (bytes, len) = net.addresses[1].key();
    assert_eq!((bytes, len), ("::ffff:192.168.0.0".parse::<std::net::Ipv6Addr>().unwrap().octets(), 112));
    // `::/0` is every 16-byte address, IPv4 ones included, as in the kernel's trie.
    let any = &policy.roles[1];
    assert_eq!(any.decide_connect(ip("8.8.8.8"), 443), Decision::Allow);
    assert_eq!(any.decide_connect(ip("2001:db8::1"), 443), Decision::Allow);
    assert_eq!(any.network.as_ref().unwrap().addresses[0].key(), ([0; 16], 0));
}

/// The kernel's lookup: the longest prefix covering the destination, and
/// its ports.
fn trie_decides(entries: &[PrefixEntry], addr: IpAddr, port: u16) -> bool {
    let target = mapped(addr);
    entries
        .iter()
        .filter(|e| ipnet::Ipv6Net::new(e.addr.into(), e.prefix_len).unwrap().contains(&target))
        .max_by_key(|e| e.prefix_len)
        .is_some_and(|e| e.allows(addr, port))
}

#[test]
fn the_kernels_longest_prefix_lookup_decides_as_the_rules_do() {
    let policy = Policy::parse(&role_with(
        "[roles.network]\nallow = [\"10.0.0.0/8\", \"10.1.0.0/16:443\", \"10.1.2.0/24:22\", \"10.1.2.0/24:23\", \
         \"172.16.0.0/12:80\", \"172.16.5.0/24:443\", \"[fd00::]/8:8080\", \"fd00:1::/32\", \"api.example.com:443\"]\n",
    ))
    .unwrap();
    let role = &policy.roles[0];
    let net = role.network.as_ref().unwrap();
    let resolved = [(ip("203.0.113.5"), 443), (ip("172.16.5.9"), 443), (ip("2001:db8::5"), 443)];
    let entries = net.prefixes(&resolved);
    let entry = |addr: &str, len: u8| {
        let key = mapped(ip(addr)).octets();
        entries.iter().find(|e| e.addr == key && e.prefix_len == len).unwrap().ports.clone()
    };
    assert_eq!(entry("10.1.0.0", 112), None, "covered by 10/8, any port");
    assert_eq!(entry("172.16.5.0", 120), Some(vec![80, 443]), "its own port and its cover's");
    assert_eq!(entry("172.16.5.9", 128), Some(vec![80, 443]), "a resolved address under a rule");
    assert_eq!(entry("fd00:1::", 32), None);
    assert_eq!(entries.len(), 10, "{entries:?}");
    let names = ["api.example.com"];
    for addr in [
        "10.0.0.1",
        "10.1.2.3",
        "::ffff:10.1.2.3",
        "10.1.3.1",
        "11.0.0.1",
        "172.16.0.1",
        "172.16.5.1",
        "172.16.5.9",
        "172.31.255.255",
        "172.32.0.0",
        "fd00::1",
        "fd00:1::1",
        "fe80::1",
        "203.0.113.5",
        "203.0.113.6",
        "2001:db8::5",
    ] {
        for port in [22, 23, 80, 443, 8080, 9] {
            let addr = ip(addr);
            let reference = role.decide_connect_named(addr, port, &[]) == Decision::Allow
                || resolved.iter().any(|(a, p)| mapped(*a) == mapped(addr) && (*p == 0 || *p == port));
            assert_eq!(trie_decides(&entries, addr, port), reference, "{addr} port {port}");
        }
    }
    assert!(role.decide_connect_named(ip("203.0.113.5"), 443, &names) == Decision::Allow);
}

#[test]
fn cidr_edges_slash_0_and_host_routes() {
    let policy = Policy::parse(&role_with(
        "[roles.network]\nallow = [\"0.0.0.0/0:53\", \"192.0.2.7/32\", \"[2001:db8::1]/128:443\", \"2001:db8:1::/48\"]\n",
    ))
    .unwrap();
    let role = &policy.roles[0];
    let allowed = |addr: &str, port: u16| role.decide_connect(ip(addr), port) == Decision::Allow;
    assert!(allowed("255.255.255.255", 53) && allowed("0.0.0.0", 53) && !allowed("8.8.8.8", 54));
    assert!(!allowed("::1", 53), "0.0.0.0/0 is IPv4 only");
    assert!(allowed("192.0.2.7", 1) && !allowed("192.0.2.8", 1) && !allowed("192.0.2.6", 1));
    assert!(allowed("2001:db8::1", 443) && !allowed("2001:db8::2", 443) && !allowed("2001:db8::1", 80));
    assert!(allowed("2001:db8:1:ffff::1", 9) && !allowed("2001:db8:2::", 9));
    let (bytes, len) = role.network.as_ref().unwrap().addresses[0].key();
    assert_eq!((bytes[10..12].to_vec(), len), (vec![0xff, 0xff], 96), "v4-mapped key, /0 + 96");
}

#[test]
fn a_suffix_rule_covers_names_below_it_not_itself() {
    let coder = coder();
    let net = coder.network.as_ref().unwrap();
    let rule = net.hosts.iter().find(|h| h.suffix).unwrap();
    assert_eq!(rule.host, "anthropic.com");
    assert!(rule.matches_name("api.anthropic.com") && rule.matches_name("A.B.Anthropic.COM."));
    assert!(!rule.matches_name("anthropic.com"), "the suffix itself is not below it");
    assert!(!rule.matches_name("evilanthropic.com") && !rule.matches_name(".anthropic.com"));
    let addr = ip("203.0.113.9");
    assert_eq!(coder.decide_connect_named(addr, 443, &["console.anthropic.com"]), Decision::Allow);
    assert!(matches!(coder.decide_connect_named(addr, 80, &["console.anthropic.com"]), Decision::Deny { .. }));
    assert!(matches!(coder.decide_connect_named(addr, 443, &["anthropic.com"]), Decision::Deny { .. }));
    assert_eq!(coder.decide_connect_named(addr, 443, &["API.OpenAI.com."]), Decision::Allow);
    assert!(matches!(coder.decide_connect(addr, 443), Decision::Deny { .. }), "no name known: addresses only");
}

#[test]
fn llm_entries_stand_for_the_catalogs_hosts_on_443() {
    let policy = Policy::parse(&role_with("[roles.network]\nallow = [\"llm:*\", \"api.openai.com\"]\n")).unwrap();
    let net = policy.roles[0].network.as_ref().unwrap();
    for host in ["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com", "api.cohere.ai"] {
        assert!(net.hosts.iter().any(|h| h.host == host && h.port == 443 && h.text == "llm:*"), "{host}");
    }
    assert!(net.hosts_to_resolve().contains(&("api.openai.com", 0)), "the port-any entry is its own");
}

#[test]
fn port_zero_and_no_port_are_any_port() {
    let policy = Policy::parse(&role_with("[roles.network]\nallow = [\"example.com:0\", \"192.0.2.1:0\"]\n")).unwrap();
    let role = &policy.roles[0];
    assert_eq!(role.hosts_to_resolve(), [("example.com", 0)]);
    assert_eq!(role.decide_connect(ip("192.0.2.1"), 12345), Decision::Allow);
    assert_eq!(role.decide_connect_named(ip("198.51.100.1"), 1, &["example.com"]), Decision::Allow);
}

/// (policy text, the error message it must give, whole)
fn assert_error(text: &str, expected: &str) {
    let err = error(text);
    assert_eq!(err, expected, "for:\n{text}");
}

#[test]
fn bad_network_entries_name_the_key_and_the_value() {
    let net = |entry: &str| {
        format!(
            "[[roles]]\nname = \"a\"\n[[roles]]\nname = \"b\"\n[roles.network]\nallow = [\"10.0.0.0/8\", {entry:?}]\n"
        )
    };
    let key = "roles[1].network.allow[1]";
    for (entry, reason) in [
        ("api.openai.com:99999", "port out of range (0 to 65535; 0 is any port)"),
        ("api.openai.com:https", "the port is not a number"),
        ("api.openai.com:", "an empty port after `:`"),
        ("10.0.0.0/33", "prefix length \"33\" is not a number from 0 to 32"),
        ("10.0.0.1/8", "bits are set past the prefix length; the network is 10.0.0.0/8"),
        ("10.0.0.256", "\"10.0.0.256\" is not an IPv4 address"),
        ("[::1", "`[` without its `]`"),
        ("[::1]8080", "after `]` come `/LEN` and `:PORT`"),
        ("[::g]:80", "\"::g\" is not an IPv6 address"),
        ("fd00::/129", "prefix length \"129\" is not a number from 0 to 128"),
        ("::1:8080:x", "not an IPv6 address (with a port, write [ADDRESS]:PORT)"),
        ("api.*.com", "a wildcard goes only at the start, as `*.SUFFIX`; for any address write 0.0.0.0/0 and ::/0"),
        ("*", "a wildcard goes only at the start, as `*.SUFFIX`; for any address write 0.0.0.0/0 and ::/0"),
        ("exa mple.com", "a destination holds no white space"),
        ("a..b", "each label of a host name has 1 to 63 characters"),
        ("api/openai", "\"api\" is not an IPv4 address"),
        ("", "an empty destination"),
    ] {
        assert_error(&net(entry), &format!("{key}: {entry:?}: {reason}"));
    }
    let err = error(&net("llm:openaii"));
    assert!(
        err.starts_with(&format!("{key}: \"llm:openaii\": unknown LLM provider (known: openai, anthropic")),
        "{err}"
    );
}

#[test]
fn bad_paths_name_the_key_and_the_value() {
    let files = |list: &str, entry: &str| role_with(&format!("[roles.files]\n{list} = [\"/ok/\", {entry:?}]\n"));
    assert_error(
        &files("deny", "~/.ssh/"),
        "roles[0].files.deny[1]: \"~/.ssh/\": `~` is not expanded: the kernel knows no home directory; \
         write the absolute path (/home/NAME/..., /root/...)",
    );
    assert_error(
        &files("read_only", "repo/"),
        "roles[0].files.read_only[1]: \"repo/\": a relative path: rules name absolute paths, as the kernel resolves them",
    );
    assert_error(
        &files("read_write", "/repo/../etc"),
        "roles[0].files.read_write[1]: \"/repo/../etc\": `.` and `..` are not allowed: the kernel reports resolved paths",
    );
    assert_error(
        &files("read_only", "/home/*/.ssh"),
        "roles[0].files.read_only[1]: \"/home/*/.ssh\": file rules are paths, not globs: a path covers everything below it",
    );
    assert_error(&files("read_only", ""), "roles[0].files.read_only[1]: \"\": an empty path");
    assert_error(
        &role_with("[roles.exec]\nallow = [\"/usr/bin/\", \"/opt/[ab/bin\"]\n"),
        "roles[0].exec.allow[1]: \"/opt/[ab/bin\": unclosed character class; missing ']'",
    );
    assert_error(
        &role_with("[roles.exec]\nallow = [\"bin/\"]\n"),
        "roles[0].exec.allow[0]: \"bin/\": a relative path: rules name absolute paths, as the kernel resolves them",
    );
}

#[test]
fn a_path_listed_in_two_lists_is_refused() {
    assert_error(
        &role_with("[roles.files]\nread_only = [\"/repo/\"]\ndeny = [\"/repo\"]\n"),
        "roles[0].files.deny[0]: \"/repo\": the same path as files.read_only[0] (\"/repo/\"); a path belongs in one list",
    );
    assert_error(
        &role_with("[roles.files]\nread_only = [\"/tmp\"]\nread_write = [\"//tmp/\"]\n"),
        "roles[0].files.read_write[0]: \"//tmp/\": the same path as files.read_only[0] (\"/tmp\"); a path belongs in one list",
    );
    // Twice in one list says nothing new, and is accepted.
    Policy::parse(&role_with("[roles.files]\nread_only = [\"/tmp\", \"/tmp/\"]\n")).unwrap();
}

#[test]
fn bad_roles_and_workloads_name_the_key() {
    assert_error("[[roles]]\nname = \"\"\n", "roles[0].name: \"\": a role needs a name");
    assert_error(
        "[[roles]]\nname = \"a\"\n[[roles]]\nname = \"b\"\n[[roles]]\nname = \"a\"\n",
        "roles[2].name: \"a\": also the name of roles[0]",
    );
    let workload = |role: &str, pattern: &str| {
        format!(
            "[[roles]]\nname = \"coder\"\n[[workloads]]\nrole = \"coder\"\nfield = \"PROCESS_NAME\"\npattern = \"x\"\n\
             [[workloads]]\nrole = {role:?}\nfield = \"COMMAND_LINE\"\npattern = {pattern:?}\n"
        )
    };
    assert_error(&workload("codr", "x"), "workloads[1].role: \"codr\": unknown role (roles: coder)");
    let err = error(&workload("coder", "claude("));
    assert!(err.starts_with("workloads[1].pattern: \"claude(\": regex parse error"), "{err}");
    assert_error(
        &workload("coder", ""),
        "workloads[1].pattern: \"\": an empty pattern would select every process; write \".\" if that is meant",
    );
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key_path() {
    let err = error("[[roles]]\nname = \"r\"\n[roles.files]\nraed_only = [\"/x\"]\n");
    assert!(err.starts_with("roles[0].files.raed_only: unknown field `raed_only`, expected one of"), "{err}");
    assert!(err.ends_with("(line 4)"), "{err}");
    let err = error("[[roles]]\nname = \"r\"\n[[roles]]\nname = \"s\"\n[roles.network]\nallow = [\"a\", 3]\n");
    assert!(err.starts_with("roles[1].network.allow[1]: invalid type: integer `3`, expected a string"), "{err}");
    let err = error("mode = \"enforced\"\n");
    assert!(err.starts_with("mode: unknown variant `enforced`, expected `audit` or `enforce`"), "{err}");
    let err = error("[[workloads]]\nrole = \"r\"\nfield = \"PID\"\npattern = \"x\"\n");
    assert!(err.starts_with("workloads[0].field: unknown variant `PID`"), "{err}");
    let err = error("[[roles]]\nmode = \"audit\"\n");
    assert!(err.starts_with("roles[0]: missing field `name`"), "{err}");
    let err = error("[[roles]]\nname = \"r\"\nname = \"s\"\n");
    assert!(err.contains("duplicate key") && err.ends_with("(line 3)"), "{err}");
}

#[test]
fn a_policy_file_keeps_the_last_good_policy_and_reports_a_breakage_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let mut file = PolicyFile::open(&path).unwrap();
    assert_eq!(file.policy().roles.len(), 2);
    assert!(matches!(file.reload(), Reload::Unchanged));
    std::fs::write(&path, "[[roles]]\nname = \"\"\n").unwrap();
    match file.reload() {
        Reload::Broken(err) => assert_eq!(err.key(), "roles[0].name"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(file.reload(), Reload::Unchanged), "reported once");
    assert_eq!(file.policy().roles.len(), 2, "the last good policy stays in force");
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(file.reload(), Reload::Broken(PolicyError::Read { .. })));
    assert!(matches!(file.reload(), Reload::Unchanged));
    std::fs::write(&path, "[[roles]]\nname = \"only\"\n").unwrap();
    assert!(matches!(file.reload(), Reload::Replaced));
    assert_eq!(file.policy().roles[0].name, "only");
    assert!(PolicyFile::open(dir.path().join("missing.toml")).is_err(), "nothing in force at start is an error");
}

#[test]
fn only_plumblines_own_process_is_exempt() {
    assert!(is_exempt(std::process::id()));
    assert!(!is_exempt(1));
}

#[test]
fn llm_rules_name_providers_rates_and_guardrails_and_bad_ones_are_named() {
    let policy = Policy::parse(
        "[[roles]]\nname = \"a\"\nmode = \"enforce\"\n[roles.llm]\nallow = [\"openai\", \"anthropic\"]\n\
         kill_on_guardrail = true\n[roles.llm.rate]\nrequests = 3\nwindow_s = 60\naction = \"hold\"\n",
    )
    .unwrap();
    let llm = policy.roles[0].llm.as_ref().unwrap();
    assert!(llm.allows_provider("openai") && llm.allows_provider("anthropic") && !llm.allows_provider("gemini"));
    assert_eq!(llm.mode, Mode::Enforce);
    let rate = llm.rate.unwrap();
    assert_eq!((rate.requests, rate.window_ns, rate.action), (3, 60_000_000_000, RateAction::Hold));
    assert_eq!((rate.max_hold_ns, rate.after_hold), (u64::from(DEFAULT_MAX_HOLD_S) * 1_000_000_000, RateAction::Kill));
    assert!(llm.kill_on_guardrail);

    let every = Policy::parse("[[roles]]\nname = \"a\"\n[roles.llm]\nallow = [\"*\"]\n").unwrap();
    assert!(every.roles[0].llm.as_ref().unwrap().allows_provider("gemini"));

    let err = |text: &str| Policy::parse(text).unwrap_err().to_string();
    let unknown = err("[[roles]]\nname = \"a\"\n[roles.llm]\nallow = [\"openai\", \"opneai\"]\n");
    assert!(unknown.starts_with("roles[0].llm.allow[1]: \"opneai\": unknown LLM provider (known: "), "{unknown}");
    let custom = Policy::compile_knowing(
        toml::from_str("[[roles]]\nname = \"a\"\n[roles.llm]\nallow = [\"inhouse\"]\n").unwrap(),
        &["inhouse".to_string()],
    );
    assert!(custom.is_ok(), "a configured endpoint's provider is known: {custom:?}");
    let action = err("[[roles]]\nname = \"a\"\n[roles.llm.rate]\nrequests = 3\nwindow_s = 60\naction = \"wait\"\n");
    assert!(action.starts_with("roles[0].llm.rate.action: unknown variant `wait`"), "{action}");
    let hold = err(
        "[[roles]]\nname = \"a\"\n[roles.llm.rate]\nrequests = 3\nwindow_s = 60\naction = \"deny\"\nmax_hold_s = 5\n",
    );
    assert_eq!(hold, "roles[0].llm.rate.max_hold_s: \"5\": only with action = \"hold\"");
    let zero = err("[[roles]]\nname = \"a\"\n[roles.llm.rate]\nrequests = 0\nwindow_s = 60\naction = \"kill\"\n");
    assert_eq!(zero, "roles[0].llm.rate.requests: \"0\": at least 1 request per window");
}
