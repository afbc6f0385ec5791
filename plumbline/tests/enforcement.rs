//! Workload policy on this host's kernel (the fallback tier: no BPF LSM, so
//! the network is decided by cgroup sock_addr programs at the cgroup2 root).
//! A real `plumbline run` loads the policy; workloads are started with
//! `plumbline enforce wrap`; what they see is the syscalls' own results, and
//! what Plumbline says is read back with `plumb enforcement`.

mod support;

use std::{
    net::{TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;
use support::*;

/// A policy file and the enrolment socket of one `plumbline run`.
struct Enforced {
    plumbline: Embedded,
    policy: PathBuf,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Enforced {
    fn start(policy: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (path, socket) = (dir.path().join("policy.toml"), dir.path().join("enforce.sock"));
        std::fs::write(&path, policy).unwrap();
        let plumbline = Embedded::start(&format!(
            "[capture.enforce]\npolicy_file = \"{}\"\ncontrol_socket = \"{}\"\n",
            path.display(),
            socket.display()
        ));
        Enforced { plumbline, policy: path, socket, _dir: dir }
    }

    /// Runs `python3 -c script` wrapped in `role`.
    fn wrap(&self, role: &str, script: &str) -> Output {
        self.wrap_command(role, &[python3(), "-c", script])
    }

    /// Runs `command` wrapped in `role`.
    fn wrap_command(&self, role: &str, command: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .args(["enforce", "wrap", role, "--socket"])
            .arg(&self.socket)
            .arg("--")
            .args(command)
            .output()
            .unwrap()
    }

    /// The decisions about `addr`, once `count` are stored.
    fn decisions(&self, addr: &str, count: usize) -> Vec<Value> {
        eventually_showing(&format!("{count} decisions about {addr}"), || {
            let rows = self.plumbline.view("enforcement", &["--object", addr]);
            if rows.len() >= count {
                Ok(rows)
            } else {
                Err(format!("{rows:?}"))
            }
        })
    }
}

fn policy(mode: &str, allow: &str) -> String {
    format!(
        "[[roles]]\nname = \"net\"\nmode = \"{mode}\"\n[roles.network]\nallow = [{allow}]\n\
         [[workloads]]\nrole = \"net\"\nfield = \"COMMAND_LINE\"\npattern = \"never-matches-{}\"\n",
        uuid::Uuid::new_v4().simple()
    )
}

/// Connects (TCP) to each address; one line per attempt: OK or the errno name.
fn connect_script(targets: &[(&str, u16, bool)]) -> String {
    let mut script = String::from("import errno, os, socket\n");
    script.push_str(
        "def attempt(family, addr):\n    s = socket.socket(family, socket.SOCK_STREAM)\n    s.settimeout(5)\n    try:\n        s.connect(addr)\n        return 'OK'\n    except OSError as e:\n        return errno.errorcode.get(e.errno, str(e.errno))\n    finally:\n        s.close()\n",
    );
    for (host, port, v6) in targets {
        let family = if *v6 { "socket.AF_INET6" } else { "socket.AF_INET" };
        script.push_str(&format!("print(attempt({family}, ('{host}', {port})))\n"));
    }
    script
}

fn lines(output: &Output) -> Vec<String> {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
}

fn listener(addr: &str) -> (TcpListener, u16) {
    let listener = TcpListener::bind((addr, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[test]
fn a_wrapped_workload_connects_where_its_role_allows_and_nowhere_else() {
    let (_allowed, allowed_port) = listener("127.0.0.1");
    let (_denied, denied_port) = listener("127.0.0.2");
    let run = Enforced::start(&policy("enforce", &format!("\"127.0.0.1:{allowed_port}\"")));

    let output = run.wrap(
        "net",
        &connect_script(&[
            ("127.0.0.1", allowed_port, false),
            ("127.0.0.2", denied_port, false),
            // IPv4-mapped IPv6 reaches connect6; it is still 127.0.0.2.
            ("::ffff:127.0.0.2", denied_port, true),
            ("::ffff:127.0.0.1", allowed_port, true),
        ]),
    );
    assert_eq!(lines(&output), ["OK", "EPERM", "EPERM", "OK"]);

    let decisions = run.decisions("127.0.0.2", 2);
    for d in &decisions {
        assert_eq!(
            (d["decision"].as_str(), d["mechanism"].as_str(), d["operation"].as_str(), d["role"].as_str()),
            (Some("denied"), Some("cgroup_sock_addr"), Some("connect"), Some("net")),
            "{d}"
        );
        assert_eq!(d["remote_port"], denied_port, "{d}");
        assert_eq!(d["family"], "network", "{d}");
    }
    let addrs: Vec<&str> = decisions.iter().map(|d| d["remote_addr"].as_str().unwrap()).collect();
    assert!(addrs.contains(&"127.0.0.2") && addrs.contains(&"::ffff:127.0.0.2"), "{addrs:?}");
    assert!(
        run.plumbline.view("enforcement", &["--object", "127.0.0.1"]).is_empty(),
        "allowed connects are not decisions"
    );

    // The node says what it enforces with, and counts what it decided.
    let metrics = run.plumbline.metrics();
    assert!(metrics.contains("plumbline_agent_enforcement_tier{tier=\"fallback\"} 1\n"), "{metrics}");
    let denied = "plumbline_agent_enforcement_decisions_total{role=\"net\",family=\"network\",decision=\"denied\"} 2\n";
    assert!(metrics.contains(denied), "{metrics}");
}

#[test]
fn udp_sends_and_connects_are_judged_too() {
    let receiver = UdpSocket::bind("127.0.0.2:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let run = Enforced::start(&policy("enforce", "\"127.0.0.1:53\""));
    let script = format!(
        "import errno, socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         try:\n    s.sendto(b'x', ('127.0.0.2', {port})); print('SENT')\n\
         except OSError as e: print(errno.errorcode[e.errno])\n\
         c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         try:\n    c.connect(('127.0.0.2', {port})); print('CONNECTED')\n\
         except OSError as e: print(errno.errorcode[e.errno])\n"
    );
    assert_eq!(lines(&run.wrap("net", &script)), ["EPERM", "EPERM"]);
    let ops: Vec<String> = run
        .decisions("127.0.0.2", 2)
        .iter()
        .map(|d| format!("{} {}", d["operation"].as_str().unwrap(), d["transport"].as_str().unwrap()))
        .collect();
    assert!(ops.contains(&"sendmsg udp".to_string()) && ops.contains(&"connect udp".to_string()), "{ops:?}");
}

#[test]
fn children_and_grandchildren_inherit_the_role() {
    let (_denied, port) = listener("127.0.0.2");
    let run = Enforced::start(&policy("enforce", "\"127.0.0.1:53\""));
    let child = connect_script(&[("127.0.0.2", port, false)]);
    let script = format!(
        "import subprocess, sys\n\
         child = {child:?}\n\
         grandchild = 'import subprocess, sys; subprocess.run([sys.executable, \"-c\", ' + repr(child) + '])'\n\
         subprocess.run([sys.executable, '-c', child])\n\
         subprocess.run([sys.executable, '-c', grandchild])\n"
    );
    assert_eq!(lines(&run.wrap("net", &script)), ["EPERM", "EPERM"]);
    let pids: std::collections::BTreeSet<u64> =
        run.decisions("127.0.0.2", 2).iter().map(|d| d["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 2, "two processes were refused: {pids:?}");
}

#[test]
fn audit_blocks_nothing_and_records_what_it_would_deny() {
    let (denied, port) = listener("127.0.0.2");
    let run = Enforced::start(&policy("audit", "\"127.0.0.1:53\""));
    assert_eq!(lines(&run.wrap("net", &connect_script(&[("127.0.0.2", port, false)]))), ["OK"]);
    drop(denied);
    let decision = &run.decisions("127.0.0.2", 1)[0];
    assert_eq!(decision["decision"], "would_deny", "{decision}");
}

#[test]
fn a_broken_policy_keeps_the_last_good_one_and_a_fixed_one_replaces_it() {
    let (_denied, port) = listener("127.0.0.2");
    let run = Enforced::start(&policy("enforce", "\"127.0.0.1:53\""));
    std::fs::write(&run.policy, "[[roles]]\nname = \"net\"\nmode = \"sometimes\"\n").unwrap();
    // Still the last good policy: the role exists and still refuses.
    let refused = || lines(&run.wrap("net", &connect_script(&[("127.0.0.2", port, false)])));
    assert_eq!(refused(), ["EPERM"]);

    let renamed = policy("enforce", &format!("\"127.0.0.2:{port}\"")).replace("\"net\"", "\"net2\"");
    std::fs::write(&run.policy, renamed).unwrap();
    eventually_showing("the fixed policy in force", || {
        let output = run.wrap("net2", &connect_script(&[("127.0.0.2", port, false)]));
        match output.status.success() {
            true if lines(&output) == ["OK"] => Ok(()),
            _ => Err(format!("{output:?}")),
        }
    });
}

#[test]
fn wrapping_in_a_role_the_policy_does_not_have_fails_and_runs_nothing() {
    let run = Enforced::start(&policy("enforce", "\"127.0.0.1:53\""));
    let marker = tempfile::NamedTempFile::new().unwrap();
    std::fs::remove_file(marker.path()).unwrap();
    let output = run.wrap("no-such-role", &format!("open({:?}, 'w')", marker.path().display().to_string()));
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no role named \"no-such-role\""), "{stderr}");
    assert!(!Path::new(marker.path()).exists(), "the command did not run");
}

/// A role that may run only the Python the tests use, in `mode`.
fn exec_policy(mode: &str) -> String {
    let python = std::fs::canonicalize(python3()).unwrap();
    format!(
        "[[roles]]\nname = \"exec\"\nmode = \"{mode}\"\n[roles.exec]\nallow = [\"{}\"]\n\
         [[workloads]]\nrole = \"exec\"\nfield = \"COMMAND_LINE\"\npattern = \"never-matches-{}\"\n",
        python.parent().unwrap().display(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Runs `touch marker` and the allowed Python from a wrapped Python; prints
/// each one's exit status.
fn exec_script(marker: &Path) -> String {
    format!(
        "import subprocess, sys\n\
         print(subprocess.run(['/usr/bin/touch', {marker:?}]).returncode)\n\
         r = subprocess.run([sys.executable, '-c', 'print(\"child ran\")'], capture_output=True, text=True)\n\
         print(r.returncode, r.stdout.strip())\n",
        marker = marker.display().to_string()
    )
}

#[test]
fn an_exec_the_role_does_not_allow_is_killed_before_the_program_runs() {
    let run = Enforced::start(&exec_policy("enforce"));
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("touched");
    // SIGKILL (-9): the exec had succeeded, and touch never ran an instruction.
    assert_eq!(lines(&run.wrap("exec", &exec_script(&marker))), ["-9", "0 child ran"]);
    assert!(!marker.exists(), "touch did not run");
    let decision = &run.decisions("/usr/bin/touch", 1)[0];
    assert_eq!(
        (decision["decision"].as_str(), decision["mechanism"].as_str(), decision["family"].as_str()),
        (Some("killed_after"), Some("signal"), Some("exec")),
        "{decision}"
    );
    assert_eq!((decision["operation"].as_str(), decision["path"].as_str()), (Some("exec"), Some("/usr/bin/touch")));
}

#[test]
fn an_exec_in_audit_runs_and_is_recorded_as_would_deny() {
    let run = Enforced::start(&exec_policy("audit"));
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("touched");
    assert_eq!(lines(&run.wrap("exec", &exec_script(&marker))), ["0", "0 child ran"]);
    assert!(marker.exists(), "touch ran");
    assert_eq!(run.decisions("/usr/bin/touch", 1)[0]["decision"], "would_deny");
}

/// A role that may read everything, write only `rw`, and not touch `secret`.
fn file_policy(mode: &str, rw: &Path, secret: &Path) -> String {
    format!(
        "[[roles]]\nname = \"files\"\nmode = \"{mode}\"\n[roles.files]\nread_only = [\"/\"]\n\
         read_write = [\"{}\"]\ndeny = [\"{}\"]\n\
         [[workloads]]\nrole = \"files\"\nfield = \"COMMAND_LINE\"\npattern = \"never-matches-{}\"\n",
        rw.display(),
        secret.display(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Each open in a child Python of its own; prints each child's exit status.
fn open_script(opens: &[(&Path, &str)]) -> String {
    let mut script = String::from("import subprocess, sys\n");
    for (path, mode) in opens {
        script.push_str(&format!(
            "print(subprocess.run([sys.executable, '-c', 'open({:?}, {mode:?}).close()']).returncode)\n",
            path.display().to_string()
        ));
    }
    script
}

/// The files the file tests open: a writable directory with a secret in it,
/// and a file elsewhere that the role may only read.
struct Files {
    _dir: tempfile::TempDir,
    rw: PathBuf,
    secret: PathBuf,
    read_only: PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (rw, other) = (dir.path().join("rw"), dir.path().join("other"));
        std::fs::create_dir_all(rw.join("secrets")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let secret = rw.join("secrets");
        std::fs::write(secret.join("key"), "SECRET").unwrap();
        let read_only = other.join("notes");
        std::fs::write(&read_only, "ORIGINAL").unwrap();
        Files { _dir: dir, rw, secret, read_only }
    }
}

#[test]
fn an_open_the_role_does_not_allow_is_killed_and_reported_with_what_it_already_did() {
    let files = Files::new();
    let run = Enforced::start(&file_policy("enforce", &files.rw, &files.secret));
    let key = files.secret.join("key");
    let new = files.rw.join("new");
    let opens = [
        (files.read_only.as_path(), "r"),
        (new.as_path(), "w"),
        (key.as_path(), "r"),
        (files.read_only.as_path(), "a"),
        (files.read_only.as_path(), "w"),
    ];
    // Killed after the open: the open happened. Appending wrote nothing, but
    // opening for writing had truncated the file before the kill.
    assert_eq!(lines(&run.wrap("files", &open_script(&opens))), ["0", "0", "-9", "-9", "-9"]);
    assert!(new.exists());
    assert_eq!(std::fs::read_to_string(&files.read_only).unwrap(), "", "O_TRUNC took effect before the kill");
    let decision = &run.decisions(&key.display().to_string(), 1)[0];
    assert_eq!(
        (decision["decision"].as_str(), decision["mechanism"].as_str(), decision["family"].as_str()),
        (Some("killed_after"), Some("signal"), Some("file")),
        "{decision}"
    );
    assert_eq!((decision["operation"].as_str(), decision["path"].as_str()), (Some("open"), key.to_str()));
    let writes = run.decisions(&files.read_only.display().to_string(), 2);
    assert!(writes.iter().all(|d| d["operation"] == "open_write"), "{writes:?}");
}

#[test]
fn an_open_in_audit_goes_on_and_is_recorded_as_would_deny() {
    let files = Files::new();
    let run = Enforced::start(&file_policy("audit", &files.rw, &files.secret));
    let key = files.secret.join("key");
    assert_eq!(lines(&run.wrap("files", &open_script(&[(key.as_path(), "r")]))), ["0"]);
    let decision = &run.decisions(&key.display().to_string(), 1)[0];
    assert_eq!((decision["decision"].as_str(), decision["operation"].as_str()), (Some("would_deny"), Some("open")));
}

/// `plumb policy --host <ours> -o json`: this node's status, once it says so
/// and `holds` is true of it.
fn policy_status(run: &Enforced, what: &str, holds: impl Fn(&Value) -> bool) -> Value {
    let host = run.plumbline.host.as_str();
    eventually_showing(what, || {
        let nodes = plumb_json(&run.plumbline.addr, &["policy", "--host", host]).unwrap_or_default();
        match nodes.as_array().map(Vec::as_slice) {
            Some([node]) if holds(node) => Ok(node.clone()),
            _ => Err(nodes.to_string()),
        }
    })
}

#[test]
fn plumb_policy_shows_the_roles_their_modes_and_the_tier_and_a_broken_reload_beside_the_roles_still_in_force() {
    let text = format!(
        "mode = \"audit\"\n\
         [[roles]]\nname = \"coder\"\nmode = \"enforce\"\n[roles.exec]\nallow = [\"/usr/bin/\"]\nmode = \"audit\"\n\
         [roles.network]\nallow = [\"127.0.0.1:53\", \"localhost:443\"]\n\
         [[roles]]\nname = \"reviewer\"\n[roles.files]\nread_only = [\"/usr/\"]\ndeny = [\"/root/\"]\n\
         [[workloads]]\nrole = \"coder\"\nfield = \"COMMAND_LINE\"\npattern = \"never-matches-{}\"\n",
        uuid::Uuid::new_v4().simple()
    );
    let run = Enforced::start(&text);
    let node = policy_status(&run, "this node's policy", |_| true);
    // No BPF LSM on this host: the fallback tier, and what it cannot cover.
    assert_eq!((node["tier"].as_str(), node["bpf_lsm_listed"].as_bool()), (Some("fallback"), Some(false)), "{node}");
    assert_eq!(node["policy_file"], run.policy.display().to_string(), "{node}");
    let sha256sum = Command::new("sha256sum").arg(&run.policy).output().unwrap();
    let version = String::from_utf8(sha256sum.stdout).unwrap();
    assert_eq!(node["policy_version"].as_str(), version.split_whitespace().next(), "{node}");
    assert_eq!(node["reload_error"], "", "{node}");
    let caveats: Vec<&str> = node["caveats"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(caveats.iter().any(|c| c.starts_with("exec: ") && c.contains("137")), "{caveats:?}");
    assert!(caveats.iter().any(|c| c.starts_with("files: ") && c.contains("io_uring")), "{caveats:?}");
    let roles = node["roles"].as_array().unwrap();
    let modes = |role: &Value| {
        ["exec", "files", "network"].map(|family| role[family]["mode"].as_str().unwrap_or("-").to_string())
    };
    assert_eq!(roles[0]["name"], "coder", "{node}");
    assert_eq!(modes(&roles[0]), ["audit", "-", "enforce"], "{node}");
    let network = roles[0]["network"]["rules"].as_str().unwrap();
    assert!(network.starts_with("1 address rule(s), 1 host rule(s)"), "{node}");
    assert_eq!(roles[1]["name"], "reviewer", "{node}");
    assert_eq!(modes(&roles[1]), ["-", "audit", "-"], "{node}");
    assert_eq!(roles[1]["files"]["rules"], "1 read-only, 0 read-write, 1 deny", "{node}");

    let table = plumb(&run.plumbline.addr, &["policy", "--host", &run.plumbline.host]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("tier fallback  bpf lsm not listed"), "{table}");
    assert!(table.contains("coder     audit: 1 allowed  -"), "{table}");

    // A broken file: said at once, naming the key, while the roles in force stay.
    std::fs::write(&run.policy, "[[roles]]\nname = \"coder\"\nmode = \"sometimes\"\n").unwrap();
    let node = policy_status(&run, "the failed reload", |node| node["reload_error"] != "");
    let error = node["reload_error"].as_str().unwrap();
    assert!(error.starts_with("roles[0].mode: "), "{error}");
    let names: Vec<&str> = node["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["coder", "reviewer"], "the last good policy is still in force");
    assert_eq!(node["policy_version"].as_str(), version.split_whitespace().next(), "{node}");
    let table = plumb(&run.plumbline.addr, &["policy", "--host", &run.plumbline.host]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("reload failed, the last good policy stays in force: roles[0].mode: "), "{table}");
}

#[test]
fn a_host_name_allowed_by_name_connects_after_a_real_lookup_and_its_neighbour_is_refused() {
    // Only the kernel's reading of the DNS answer can allow `*.suffix` names:
    // the agent cannot resolve every name below a suffix.
    let tag = 1 + (std::process::id() % 200) as u8;
    let (service, neighbour, resolver) = ([127, 78, tag, 9], [127, 78, tag, 10], [127, 54, tag, 53]);
    let name = format!("api-{}.models.test", uuid::Uuid::new_v4().simple());
    let (_service, port) = listener(&ip_text(service));
    let _neighbour = TcpListener::bind((ip_text(neighbour).as_str(), port)).unwrap();
    let _resolver = support::dns_server::start(resolver, &name, service);
    let run = Enforced::start(&policy("enforce", &format!("\"*.models.test:{port}\", \"{}:53\"", ip_text(resolver))));

    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {}\noptions attempts:1 timeout:2\n", ip_text(resolver))).unwrap();
    let mut script = connect_script(&[(&ip_text(neighbour), port, false)]);
    script
        .push_str(&format!("ip = socket.gethostbyname('{name}')\nprint(ip, attempt(socket.AF_INET, (ip, {port})))\n"));
    // Our resolver in a private mount namespace: nothing else on this machine sees it.
    let shell = format!("mount --bind {} /etc/resolv.conf && exec {} -c \"$0\"", resolv.display(), python3());
    let output = run.wrap_command("net", &["unshare", "--mount", "sh", "-c", &shell, &script]);
    // Refused before the lookup (no answer named it), allowed after it.
    assert_eq!(lines(&output), ["EPERM".to_string(), format!("{} OK", ip_text(service))]);
    let refused = &run.decisions(&ip_text(neighbour), 1)[0];
    assert_eq!(refused["decision"], "denied", "{refused}");
    let named = run.plumbline.view("enforcement", &["--object", &ip_text(service)]);
    assert!(named.is_empty(), "the named address was allowed: {named:?}");
}

fn ip_text(ip: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(ip).to_string()
}

#[test]
fn a_workload_rule_on_the_cgroup_enrols_a_process_started_in_that_cgroup() {
    // Selected the way agent mapping rules select: by where the cgroup places
    // the process (CGROUP here; CONTAINER_ID, K8S_POD and K8S_NAMESPACE come
    // from the same cgroup path).
    let root = PathBuf::from(
        String::from_utf8(
            Command::new("findmnt").args(["-n", "-o", "TARGET", "-t", "cgroup2"]).output().unwrap().stdout,
        )
        .unwrap()
        .lines()
        .next()
        .expect("a cgroup2 mount")
        .to_string(),
    );
    let name = format!("plb-enforce-{}", uuid::Uuid::new_v4().simple());
    let cgroup = root.join(&name);
    std::fs::create_dir(&cgroup).unwrap();
    let run = Enforced::start(&format!(
        "[[roles]]\nname = \"net\"\nmode = \"enforce\"\n[roles.network]\nallow = [\"127.0.0.1:1\"]\n\
         [[workloads]]\nrole = \"net\"\nfield = \"CGROUP\"\npattern = \"{name}\"\n"
    ));
    // The rule enrols the process once the agent has read its exec: the
    // program waits for its own enrolment before it tries.
    let script = format!(
        "import time\n{}\nfor _ in range(900):\n    if attempt(socket.AF_INET, ('127.0.0.2', 9)) == 'EPERM':\n        print('refused')\n        break\n    time.sleep(0.2)\nelse:\n    print('never refused')\n",
        connect_script(&[]).trim_end()
    );
    let output = Command::new("sh")
        .args(["-c", &format!("echo $$ > {}/cgroup.procs && exec {} -c \"$0\"", cgroup.display(), python3()), &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(&cgroup);
    assert_eq!(lines(&output), ["refused"]);
    let decision = &run.decisions("127.0.0.2", 1)[0];
    assert_eq!((decision["decision"].as_str(), decision["role"].as_str()), (Some("denied"), Some("net")), "{decision}");
}
