//! What the kernel must be seen to do, exactly, through `plumb`: each check
//! makes something happen on this host and asserts the answer. The capture
//! tests run them on an idle machine and on two saturated cores, where only
//! how long an answer takes may differ.

use std::{
    io::{Read, Write},
    net::TcpListener,
    process::{Child, Command, Stdio},
};

use serde_json::Value;

use super::{
    assert_marked_shell_recorded, eventually, eventually_showing, python, python3, run_marked_shell, unique, Embedded,
};

pub fn as_u64(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Busy loops, two per core, that do no system calls (so they add no
/// events): no idle time is left for the agent, the store or the checks.
/// Stopped when dropped.
pub struct BusyCores(Vec<Child>);

impl BusyCores {
    pub fn start() -> Self {
        let loops = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
        let spin = || Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
        BusyCores((0..loops).map(|_| spin()).collect())
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        for spinner in &mut self.0 {
            let _ = spinner.kill();
            let _ = spinner.wait();
        }
    }
}

/// A process creates a file, writes 12,345 bytes, renames it and unlinks the
/// new name at once: the open, the bytes (under the name written to), the
/// rename and the unlink are all seen.
pub fn file_written_renamed_and_unlinked(plumbline: &Embedded) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    let (pid, status) = python(&format!(
        "import os\nwith open({a:?}, 'w') as f: f.write('x' * 12345)\nos.rename({a:?}, {b:?})\nos.unlink({b:?})",
        a = a.to_str().unwrap(),
        b = b.to_str().unwrap()
    ));
    assert!(status.success());
    let pid = pid.to_string();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (created, removed) = eventually_showing("the file's open, its bytes under its name, rename and unlink", || {
        let files = plumbline.view("files", &["--pid", &pid]);
        let row = |path| files.iter().find(|f| f["path"] == path).cloned();
        match (row(a), row(b)) {
            (Some(created), Some(removed))
                if as_u64(&created["bytes_written"]) == 12345
                    && created["renamed_to"] == b
                    && as_u64(&removed["unlinks"]) == 1 =>
            {
                Ok((created, removed))
            }
            _ => Err(format!("{files:#?}")),
        }
    });
    assert!(as_u64(&created["opens"]) >= 1, "{created}");
    assert_eq!(created["comm"], "python3", "{created}");
    assert_eq!(as_u64(&removed["bytes_written"]), 0, "{removed}");
}

/// A TCP conversation on loopback: the client's and the server's side,
/// closed, with the bytes each sent.
pub fn tcp_conversation(plumbline: &Embedded) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = vec![0u8; 3000];
        conn.read_exact(&mut got).unwrap();
        conn.write_all(&vec![b'y'; 700]).unwrap();
    });
    let (pid, status) = python(&format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}))\ns.sendall(b'x' * 3000)\n\
         got = b''\nwhile len(got) < 700: got += s.recv(4096)\ns.close()"
    ));
    assert!(status.success());
    server.join().unwrap();
    let remote = format!("127.0.0.1:{port}");
    let client = eventually("the client's connection, closed, with its bytes", || {
        plumbline
            .view("connections", &["--pid", &pid.to_string()])
            .into_iter()
            .find(|c| c["remote"] == remote.as_str() && c["closed"] == true)
    });
    assert_eq!((client["direction"].as_str(), client["transport"].as_str()), (Some("connect"), Some("tcp")));
    assert_eq!((as_u64(&client["bytes_sent"]), as_u64(&client["bytes_received"])), (3000, 700), "{client}");
    assert_eq!(client["result"], 0);

    let me = std::process::id().to_string();
    let server_side = eventually("the accepting side, closed", || {
        plumbline
            .view("connections", &["--pid", &me])
            .into_iter()
            .find(|c| c["local"] == remote.as_str() && c["direction"] == "accept" && c["closed"] == true)
    });
    assert_eq!((as_u64(&server_side["bytes_sent"]), as_u64(&server_side["bytes_received"])), (700, 3000));
}

/// A shell with a marker in its argv: listed with its parent, argv, exit
/// code and place in this process's tree.
pub fn marked_shell(plumbline: &Embedded) {
    let marker = unique("marker");
    run_marked_shell(&marker);
    assert_marked_shell_recorded(&plumbline.addr, &plumbline.host, &marker);
}

/// Programs that open a file right after their exec: every open is told of
/// the program that made it, never of the process as it was before the exec
/// (whose records travel on another ring and may be read later).
pub fn opens_right_after_exec_name_the_new_program(plumbline: &Embedded, runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("exec-marker.txt");
    std::fs::write(&marker, "x").unwrap();
    let pids: Vec<u32> = (0..runs)
        .map(|_| {
            let mut cat = Command::new("/bin/cat").arg(&marker).stdout(Stdio::null()).spawn().unwrap();
            assert!(cat.wait().unwrap().success());
            cat.id()
        })
        .collect();
    let marker = marker.to_str().unwrap();
    eventually_showing("every cat's open of the marker, made by cat", || {
        let opens = plumbline.view("files", &["--path", marker]);
        let by = |pid: &u32| opens.iter().find(|f| as_u64(&f["pid"]) == u64::from(*pid));
        let wrong: Vec<String> = pids
            .iter()
            .filter(|pid| by(pid).is_none_or(|open| open["comm"] != "cat"))
            .map(|pid| by(pid).map_or(format!("{pid}: not seen"), |open| open.to_string()))
            .collect();
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("\n"))
        }
    });
}

/// `writers` processes at once each create `files` files, write `size`
/// bytes to each, rename it and unlink the new name at once (a freed inode
/// number goes to the next new file): every file shows its own bytes.
pub fn short_lived_files_keep_their_own_bytes(plumbline: &Embedded, writers: usize, files: usize, size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let program = "import os, sys\nd, tag, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])\n\
                   for i in range(n):\n    a, b = f'{d}/{tag}-{i}.a', f'{d}/{tag}-{i}.b'\n    \
                   with open(a, 'wb') as f: f.write(b'w' * size)\n    os.rename(a, b)\n    os.unlink(b)\n";
    let run_all = |args: &dyn Fn(usize) -> Vec<String>| {
        let children: Vec<Child> = (0..writers)
            .map(|w| Command::new(python3()).arg("-c").arg(program).args(args(w)).spawn().unwrap())
            .collect();
        children.into_iter().map(|mut c| (c.id(), c.wait().unwrap())).collect::<Vec<_>>()
    };
    let dir_path = dir.path().to_str().unwrap().to_string();
    let ran = run_all(&|w| vec![dir_path.clone(), format!("w{w}"), files.to_string(), size.to_string()]);
    assert!(ran.iter().all(|(_, status)| status.success()));

    let expected = (writers * files * size) as u64;
    let rows = eventually_showing("every file with its own bytes, rename and unlink", || {
        let rows = plumbline.view("files", &["--path", &dir_path]);
        let mut wrong = Vec::new();
        for (w, (pid, _)) in ran.iter().enumerate() {
            for i in 0..files {
                let (a, b) = (format!("{dir_path}/w{w}-{i}.a"), format!("{dir_path}/w{w}-{i}.b"));
                let row = |path: &str| rows.iter().find(|f| f["path"] == path && as_u64(&f["pid"]) == u64::from(*pid));
                let right = match (row(&a), row(&b)) {
                    (Some(created), Some(removed)) => {
                        as_u64(&created["bytes_written"]) == size as u64
                            && created["renamed_to"] == b.as_str()
                            && as_u64(&removed["bytes_written"]) == 0
                            && as_u64(&removed["unlinks"]) == 1
                    }
                    _ => false,
                };
                if !right {
                    wrong.push(format!("{a}: {:?} / {:?}", row(&a), row(&b)));
                }
            }
        }
        let bytes: u64 = rows.iter().map(|f| as_u64(&f["bytes_written"])).sum();
        match wrong.len() {
            0 => Ok(rows),
            n => Err(format!("{n} of {} files wrong, {bytes} of {expected} bytes seen:\n{}", writers * files, {
                wrong.truncate(10);
                wrong.join("\n")
            })),
        }
    });
    assert_eq!(rows.iter().map(|f| as_u64(&f["bytes_written"])).sum::<u64>(), expected);
}

/// `writers` processes at once each open `channels` pipes and as many unix
/// socket pairs, fork a child that reads `size` bytes from it and exits
/// before the parent: every channel shows its bytes from parent to child.
pub fn short_lived_channels_keep_their_own_bytes(plumbline: &Embedded, writers: usize, channels: usize, size: usize) {
    let program = "import os, socket, sys\nn, size = int(sys.argv[1]), int(sys.argv[2])\ndata = b'p' * size\n\
        def one(make, read, write, close):\n    r, w = make()\n    child = os.fork()\n    if child == 0:\n        \
        got = 0\n        while got < size: got += len(read(r))\n        os._exit(0)\n    \
        sent = 0\n    while sent < size: sent += write(w, data[sent:])\n    os.waitpid(child, 0)\n    close(r, w)\n    \
        return child\n\
        kids = []\nfor i in range(n):\n    \
        kids.append(('pipe', one(os.pipe, lambda r: os.read(r, 65536), os.write, lambda r, w: (os.close(r), os.close(w)))))\n    \
        kids.append(('unix', one(lambda: socket.socketpair(), lambda r: r.recv(65536), lambda w, d: w.send(d), \
        lambda r, w: (r.close(), w.close()))))\n\
        print(' '.join(f'{k}:{p}' for k, p in kids))\n";
    let children: Vec<Child> = (0..writers)
        .map(|_| {
            Command::new(python3())
                .args(["-c", program, &channels.to_string(), &size.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut expected = Vec::new();
    for child in children {
        let writer = child.id();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        for kid in String::from_utf8(output.stdout).unwrap().split_whitespace() {
            let (kind, pid) = kid.split_once(':').unwrap();
            expected.push((writer, kind.to_string(), pid.parse::<u32>().unwrap()));
        }
    }
    assert_eq!(expected.len(), writers * channels * 2);
    for kids in expected.chunk_by(|a, b| a.0 == b.0) {
        let writer = kids[0].0;
        eventually_showing("every channel of a writer, to its own reader, with its bytes", || {
            let edges = plumbline.view("ipc", &["--pid", &writer.to_string()]);
            let wrong: Vec<String> = kids
                .iter()
                .filter_map(|(_, kind, kid)| {
                    let to_kid: Vec<&Value> = edges
                        .iter()
                        .filter(|e| e["kind"] == kind.as_str() && as_u64(&e["to_pid"]) == u64::from(*kid))
                        .collect();
                    let right = matches!(to_kid.as_slice(), [edge]
                        if as_u64(&edge["from_pid"]) == u64::from(writer) && as_u64(&edge["bytes"]) == size as u64);
                    (!right).then(|| format!("{kind} {writer} -> {kid}: {to_kid:?}"))
                })
                .collect();
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(wrong.join("\n"))
            }
        });
    }
}
