//! Host capture end to end, as root on the real kernel: files, TCP with byte
//! counts, opens told of the program that made them, DNS naming a later
//! connect, pipes and unix sockets with blocked time, a cgroup of its own, a
//! process older than the agent, and loss that is counted and shown. Every
//! assertion goes through `plumb`. `busy_cores.rs` runs the same checks on
//! saturated cores.

mod support;

use std::{io::Write, net::TcpListener, os::unix::fs::MetadataExt, process::Command};

use support::{checks::as_u64, *};

#[test]
fn a_file_created_written_renamed_and_unlinked_is_seen_with_its_paths_and_bytes() {
    checks::file_written_renamed_and_unlinked(&Embedded::start(""));
}

#[test]
fn a_tcp_conversation_is_seen_from_both_ends_with_the_bytes_each_sent() {
    checks::tcp_conversation(&Embedded::start(""));
}

#[test]
fn opens_made_right_after_an_exec_are_told_of_the_new_program() {
    checks::opens_right_after_exec_name_the_new_program(&Embedded::start(""), 50);
}

#[test]
fn a_dns_answer_names_the_address_the_process_then_connects_to() {
    let plumbline = Embedded::start("");
    let name = format!("svc-{}.plumbline.test", uuid::Uuid::new_v4().simple());
    // A loopback address of its own for the service, and one for the resolver.
    let service_ip = [127, 77, 1 + (std::process::id() % 200) as u8, 9];
    let resolver_ip = [127, 53, 1 + (std::process::id() % 200) as u8, 53];
    let listener = TcpListener::bind((std::net::Ipv4Addr::from(service_ip), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let resolver = dns_server::start(resolver_ip, &name, service_ip);
    std::thread::spawn(move || {
        while let Ok((mut c, _)) = listener.accept() {
            let _ = c.write_all(b"hi");
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {}\noptions attempts:1 timeout:2\n", ip_text(resolver_ip))).unwrap();
    // A private mount namespace gives the client our resolver and nothing
    // else on this machine sees it.
    let mut child = Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /etc/resolv.conf && exec {} -c \"import socket; \
             ip = socket.gethostbyname('{name}'); s = socket.create_connection((ip, {port})); s.recv(2); s.close()\"",
            resolv.display(),
            python3()
        ))
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    assert!(child.wait().unwrap().success(), "the client resolved and connected");
    drop(resolver);

    let lookup = eventually("the DNS lookup", || {
        plumbline.view("dns", &["--pid", &pid]).into_iter().find(|q| q["name"] == name.as_str() && q["qtype"] == "A")
    });
    assert_eq!(lookup["answers"], serde_json::json!([ip_text(service_ip)]), "{lookup}");
    assert_eq!(lookup["server"], format!("{}:53", ip_text(resolver_ip)));
    let connection = eventually("the connect carrying the name", || {
        plumbline.view("connections", &["--pid", &pid]).into_iter().find(|c| c["transport"] == "tcp")
    });
    assert_eq!(connection["remote_name"], name.as_str(), "{connection}");
    assert_eq!(connection["remote"], format!("{}:{port}", ip_text(service_ip)));
}

fn ip_text(ip: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(ip).to_string()
}

#[test]
fn a_pipe_and_a_unix_socket_show_who_talks_to_whom_and_who_waited() {
    let plumbline = Embedded::start("");
    // The reader sleeps before reading: the writer fills the channel and waits.
    let program = |make: &str, read: &str, write: &str| {
        format!(
            "import os, socket, time\n{make}\nif os.fork() == 0:\n    time.sleep(1.0)\n    n = 0\n    \
             while n < 1000000:\n        d = {read}\n        n += len(d)\n    os._exit(0)\n\
             data = b'z' * 1000000\nsent = 0\nwhile sent < len(data): sent += {write}\nos.wait()"
        )
    };
    let (pipe_writer, status) = python(&program("r, w = os.pipe()", "os.read(r, 65536)", "os.write(w, data[sent:])"));
    assert!(status.success());
    let (unix_writer, status) = python(&program("a, b = socket.socketpair()", "b.recv(65536)", "a.send(data[sent:])"));
    assert!(status.success());

    for (writer, kind) in [(pipe_writer, "pipe"), (unix_writer, "unix")] {
        let edge = eventually(&format!("the {kind} edge with its bytes"), || {
            plumbline.view("ipc", &["--pid", &writer.to_string()]).into_iter().find(|e| {
                e["kind"] == kind && as_u64(&e["from_pid"]) == u64::from(writer) && as_u64(&e["bytes"]) == 1_000_000
            })
        });
        assert_ne!(as_u64(&edge["to_pid"]), u64::from(writer), "{edge}");
        assert_eq!(edge["to_comm"], "python3", "{edge}");
        assert!(as_u64(&edge["writer_blocked_ns"]) > 500_000_000, "the writer waited for the sleeping reader: {edge}");
    }
}

#[test]
fn a_process_in_a_cgroup_of_its_own_is_attributed_to_it() {
    let plumbline = Embedded::start("");
    let root = std::path::Path::new("/sys/fs/cgroup/unified");
    let root = if root.join("cgroup.procs").exists() { root } else { std::path::Path::new("/sys/fs/cgroup") };
    let name = unique("plumb-test-cgroup");
    let cgroup = root.join(&name);
    std::fs::create_dir(&cgroup).unwrap();
    let cgroup_id = std::fs::metadata(&cgroup).unwrap().ino();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("echo $$ > {}/cgroup.procs && exec cat /etc/hostname > /dev/null", cgroup.display()))
        .status()
        .unwrap();
    assert!(status.success());

    let described = eventually("the cgroup described", || {
        plumbline.view("containers", &[]).into_iter().find(|c| as_u64(&c["cgroup_id"]) == cgroup_id)
    });
    assert_eq!(described["cgroup_path"], format!("/{name}"), "{described}");
    let files = eventually("cat's opens, found by its cgroup", || {
        let files = plumbline.view("files", &["--container", &name]);
        files.iter().any(|f| f["path"] == "/etc/hostname" && f["comm"] == "cat").then_some(files)
    });
    assert!(files.iter().all(|f| f["comm"] == "cat" || f["comm"] == "sh"), "only the cgroup's processes: {files:?}");
    let _ = std::fs::remove_dir(&cgroup);
}

#[test]
fn a_process_started_before_the_agent_is_covered_with_its_open_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("old.log");
    // Opens its log, then waits for a signal to write to it.
    let mut writer = Command::new(python3())
        .arg("-c")
        .arg(format!(
            "import sys, time\nf = open({:?}, 'w')\nsys.stdin.readline()\nf.write('w' * 4096)\nf.flush()\ntime.sleep(1)",
            log.to_str().unwrap()
        ))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let plumbline = Embedded::start("");
    let pid = writer.id().to_string();
    eventually("the older process listed", || {
        processes(&plumbline.addr, &["--host", &plumbline.host, "--argv", "old.log"])
            .into_iter()
            .find(|p| as_u64(&p["pid"]) == u64::from(writer.id()) && p["seen_running"] == true)
    });
    writer.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert!(writer.wait().unwrap().success());
    let file = eventually("its write to the file it opened before the agent", || {
        plumbline.view("files", &["--pid", &pid]).into_iter().find(|f| f["path"] == log.to_str().unwrap())
    });
    assert_eq!(as_u64(&file["bytes_written"]), 4096, "{file}");
}

#[test]
fn lost_events_are_counted_in_the_kernel_and_shown_as_loss_markers() {
    // Small rings, and the reader paused: records must be dropped.
    let plumbline = Embedded::start("[capture]\nring_buffer_kib = 16\nfile_ring_kib = 16\nwakeup_kib = 4\n");
    let pid = plumbline.process.pid() as i32;
    // SAFETY: signals to the plumbline process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    for _ in 0..300 {
        Command::new("/bin/true").arg("fill").status().unwrap();
    }
    unsafe { libc::kill(pid, libc::SIGCONT) };

    let kernel_lost = |metrics: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("plumbline_agent_bpf_events_total{") && l.contains("outcome=\"ringbuf_full\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let (counted, shown) = eventually("loss markers that add up to the kernel's count", || {
        let counted = kernel_lost(&plumbline.metrics());
        let shown: u64 = plumbline.view("losses", &[]).iter().map(|l| as_u64(&l["count"])).sum();
        (counted > 0 && shown == counted).then_some((counted, shown))
    });
    assert_eq!(shown, counted);
    let stats = plumb_json(&plumbline.addr, &["stats"]).unwrap();
    assert!(as_u64(&stats["lost_events"]) >= counted, "{stats}");
}

#[test]
fn a_denied_comm_never_leaves_the_kernel_and_is_counted_as_filtered() {
    let plumbline = Embedded::start("[filter]\ndeny_comms = [\"plumbnoisy\"]\n");
    let dir = tempfile::tempdir().unwrap();
    let noisy = dir.path().join("plumbnoisy");
    std::fs::copy("/bin/cat", &noisy).unwrap();
    let marker = dir.path().join("marker.txt");
    std::fs::write(&marker, "x").unwrap();
    for program in [noisy.as_path(), std::path::Path::new("/bin/cat")] {
        let status = Command::new(program).arg(&marker).stdout(std::process::Stdio::null()).status().unwrap();
        assert!(status.success());
    }
    let marker = marker.to_str().unwrap();
    // The allowed cat is seen; by then the denied one would have been too.
    let opened = eventually("the allowed cat's open of the marker", || {
        let files = plumbline.view("files", &["--path", marker]);
        files.iter().any(|f| f["comm"] == "cat").then_some(files)
    });
    assert!(opened.iter().all(|f| f["comm"] != "plumbnoisy"), "{opened:?}");
    // The kernel's counters reach /metrics when the agent next reads them,
    // which may be after the allowed open is stored.
    eventually("the kernel's count of what it filtered", || {
        let filtered = plumbline
            .metrics()
            .lines()
            .filter(|l| l.contains("outcome=\"filtered\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>();
        (filtered > 0).then_some(())
    });
}
