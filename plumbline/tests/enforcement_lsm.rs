//! The `lsm` tier, for real, in qemu guests booted from Debian's 6.1 and 6.12
//! kernels (this host's kernel has no BPF LSM; `scripts/guest.sh`). In each
//! guest a real `plumbline run` loads a policy, workloads are started with
//! `plumbline enforce wrap`, and what they see is the syscalls' own results:
//! execs, opens, creations and removals refused with EPERM before the effect,
//! read back with `plumb enforcement`. A guest booted with an `lsm=` list
//! that lacks `bpf` enforces at the `fallback` tier and says so.

mod support;

use std::collections::BTreeMap;

use support::guest::{Guest, KERNELS, LSM_WITH_BPF};

/// One boot: start Plumbline with three roles (files, exec, network), run
/// one wrapped workload per role, print `key=value` lines of what happened,
/// then the decisions Plumbline stored. (No `[[workloads]]` rule: a pattern
/// written here would be in this script's own command line, and select it.)
fn script() -> String {
    format!(
        r#"set -u
PLUMBLINE={plumbline}
PLUMB={plumb}
W=/tmp/plb
mkdir -p $W/rw/secrets $W/other
echo SECRET > $W/rw/secrets/key
echo ORIGINAL > $W/other/notes
cat > $W/policy.toml <<EOF
[[roles]]
name = "files"
mode = "enforce"
[roles.files]
read_only = ["/"]
read_write = ["$W/rw", "/dev/null"]
deny = ["$W/rw/secrets"]

[[roles]]
name = "exec"
mode = "enforce"
[roles.exec]
allow = ["$(readlink -f /bin/sh)", "$(readlink -f /usr/bin/cat)"]

[[roles]]
name = "net"
mode = "enforce"
[roles.network]
allow = ["127.0.0.1:1"]
EOF
cat > $W/plumbline.toml <<EOF
listen = "127.0.0.1:7070"
[node]
host = "guest"
[sqlite]
path = "$W/plumbline.db"
[metrics]
listen = "127.0.0.1:9100"
[capture.enforce]
policy_file = "$W/policy.toml"
control_socket = "$W/enforce.sock"
EOF
$PLUMBLINE run --config $W/plumbline.toml > $W/run.log 2>&1 &
agent=$!
until [ -S $W/enforce.sock ] && grep -q capturing $W/run.log; do
  kill -0 $agent 2>/dev/null || {{ echo "plumbline run ended:"; cat $W/run.log; exit 3; }}
  sleep 1
done
# The metrics are served just after the agent says it is capturing.
until tier=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9100/metrics').read().decode())" 2>/dev/null \
  | sed -n 's/^plumbline_agent_enforcement_tier{{tier="\([a-z]*\)"}} 1$/\1/p') && [ -n "$tier" ]; do sleep 1; done
echo tier=$tier
wrap() {{ role=$1; shift; $PLUMBLINE enforce wrap $role --socket $W/enforce.sock -- "$@"; }}

wrap exec /bin/sh -c "/usr/bin/touch $W/touched; echo exec_denied=\$?; /usr/bin/cat $W/other/notes >/dev/null; echo exec_allowed=\$?"
[ -e $W/touched ] && echo touched=yes || echo touched=no

wrap files /bin/sh -c "cat $W/rw/secrets/key; echo read_secret=\$?
cat $W/other/notes >/dev/null; echo read_ro=\$?
echo x > $W/rw/new; echo write_rw=\$?
echo y > $W/other/notes; echo write_ro=\$?
touch $W/rw/secrets/created; echo create_in_deny=\$?
rm -f $W/other/notes; echo unlink_ro=\$?"
echo "notes=$(cat $W/other/notes)"
[ -e $W/rw/secrets/created ] && echo created=yes || echo created=no

wrap net python3 -c "
import errno, socket
def attempt(port):
    s = socket.socket()
    try:
        s.connect(('127.0.0.2' if port == 9 else '127.0.0.1', port)); return 'OK'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
print('connect_listed=' + attempt(1)); print('connect_unlisted=' + attempt(9))"

# Every decision, once the last one (the connect) is stored: they travel in order.
until $PLUMB --addr http://127.0.0.1:7070 enforcement --host guest -o json | grep -q '"network"'; do
  kill -0 $agent 2>/dev/null || {{ echo "plumbline run ended:"; cat $W/run.log; exit 3; }}
  sleep 1
done
$PLUMB --addr http://127.0.0.1:7070 enforcement --host guest -o json | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    print("decision=%s %s %s %s %s" % (d["family"], d["operation"], d["decision"], d["mechanism"], d.get("path") or ""))'
kill $agent
"#,
        plumbline = env!("CARGO_BIN_EXE_plumbline"),
        plumb = env!("CARGO_BIN_EXE_plumb"),
    )
}

/// What the script printed: each `key=value` once (decisions gathered apart).
struct Seen {
    values: BTreeMap<String, String>,
    decisions: Vec<String>,
    output: String,
}

impl Seen {
    fn of(kernel: &str, lsm: &str) -> Self {
        let out = Guest::new(kernel).lsm(lsm).run(&script());
        assert!(out.success(), "{kernel} lsm={lsm}: {out:#?}");
        let mut seen = Seen { values: BTreeMap::new(), decisions: Vec::new(), output: format!("{out:#?}") };
        for line in out.stdout.lines() {
            match line.split_once('=') {
                Some(("decision", decision)) => seen.decisions.push(decision.to_string()),
                Some((key, value)) => {
                    seen.values.insert(key.to_string(), value.to_string());
                }
                None => {}
            }
        }
        seen
    }

    fn get(&self, key: &str) -> &str {
        self.values.get(key).map_or("(missing)", String::as_str)
    }

    fn has_decision(&self, wanted: &str) -> bool {
        self.decisions.iter().any(|d| d.starts_with(wanted))
    }
}

#[test]
fn with_bpf_lsm_execs_opens_creations_and_removals_are_refused_before_the_effect() {
    for kernel in KERNELS {
        let seen = Seen::of(kernel, LSM_WITH_BPF);
        let output = &seen.output;
        assert_eq!(seen.get("tier"), "lsm", "{kernel}: {output}");
        // exec: EPERM from execve (a shell says 126), and touch never ran.
        assert_eq!((seen.get("exec_denied"), seen.get("exec_allowed")), ("126", "0"), "{kernel}: {output}");
        assert_eq!(seen.get("touched"), "no", "{kernel}: {output}");
        // files: refused before the effect — nothing truncated, created or removed.
        let files =
            ["read_secret", "read_ro", "write_rw", "write_ro", "create_in_deny", "unlink_ro"].map(|k| seen.get(k));
        assert_eq!(files, ["1", "0", "0", "2", "1", "1"], "{kernel}: {output}");
        assert_eq!((seen.get("notes"), seen.get("created")), ("ORIGINAL", "no"), "{kernel}: {output}");
        assert_eq!(
            (seen.get("connect_listed"), seen.get("connect_unlisted")),
            ("ECONNREFUSED", "EPERM"),
            "{kernel}: {output}"
        );
        for wanted in [
            "exec exec denied lsm /usr/bin/touch",
            "file open denied lsm /tmp/plb/rw/secrets/key",
            "file open_write denied lsm /tmp/plb/other/notes",
            "file create denied lsm /tmp/plb/rw/secrets/created",
            "file unlink denied lsm /tmp/plb/other/notes",
            "network connect denied cgroup_sock_addr",
        ] {
            assert!(seen.has_decision(wanted), "{kernel}: no decision {wanted:?} in {:#?}", seen.decisions);
        }
    }
}

#[test]
fn without_bpf_in_the_lsm_list_the_node_enforces_at_the_fallback_tier_and_says_so() {
    // LSM programs would load and attach here and never run: the agent must
    // not claim the lsm tier.
    let seen = Seen::of("6.12", "landlock,lockdown,yama,apparmor");
    let output = &seen.output;
    assert_eq!(seen.get("tier"), "fallback", "{output}");
    // Killed after the exec (SIGKILL: 128 + 9), not refused.
    assert_eq!((seen.get("exec_denied"), seen.get("touched")), ("137", "no"), "{output}");
    assert!(seen.has_decision("exec exec killed_after signal /usr/bin/touch"), "{:#?}", seen.decisions);
    // The open of the secret happened, and its process was killed.
    assert_eq!(seen.get("read_secret"), "137", "{output}");
    assert!(seen.has_decision("file open killed_after signal /tmp/plb/rw/secrets/key"), "{:#?}", seen.decisions);
}
