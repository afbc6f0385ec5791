//! Rows for store tests: a few hand-written lifecycles whose folded answer is
//! known, and a seeded generator of many more.

#![allow(dead_code)]

use plumbline_store::{ProcessEventKind, ProcessEventRow};

pub const SECOND: u64 = 1_000_000_000;
/// Wall clock = boot clock + this, for every generated row.
pub const WALL_OFFSET: u64 = 1_700_000_000 * SECOND;

pub fn row(host: &str, pid: u32, start_ns: u64, kind: ProcessEventKind, ts_ns: u64) -> ProcessEventRow {
    ProcessEventRow {
        host: host.into(),
        boot_id: "boot-1".into(),
        pid,
        start_key_ns: start_ns - start_ns % 10_000_000,
        kind: kind as u8,
        ts_ns,
        wall_ns: ts_ns + WALL_OFFSET,
        start_wall_ns: start_ns + WALL_OFFSET,
        ppid: 0,
        uid: 1000,
        gid: 1000,
        comm: String::new(),
        exe: String::new(),
        argv: Vec::new(),
        argv_truncated: false,
        cgroup_id: 1,
        exit_code: 0,
        exit_signal: 0,
        core_dumped: false,
        errno: 0,
    }
}

pub fn exec(host: &str, pid: u32, start_ns: u64, ts_ns: u64, ppid: u32, exe: &str, argv: &[&str]) -> ProcessEventRow {
    ProcessEventRow {
        ppid,
        comm: exe.rsplit('/').next().unwrap().chars().take(15).collect(),
        exe: exe.into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        ..row(host, pid, start_ns, ProcessEventKind::Exec, ts_ns)
    }
}

pub fn fork(host: &str, pid: u32, start_ns: u64, ppid: u32, comm: &str) -> ProcessEventRow {
    ProcessEventRow { ppid, comm: comm.into(), ..row(host, pid, start_ns, ProcessEventKind::Fork, start_ns) }
}

pub fn exit(host: &str, pid: u32, start_ns: u64, ts_ns: u64, code: i32, signal: u32, comm: &str) -> ProcessEventRow {
    ProcessEventRow {
        exit_code: code,
        exit_signal: signal,
        comm: comm.into(),
        ppid: 1,
        uid: 0,
        ..row(host, pid, start_ns, ProcessEventKind::Exit, ts_ns)
    }
}

pub fn seen(host: &str, pid: u32, start_ns: u64, ts_ns: u64, ppid: u32, exe: &str, argv: &[&str]) -> ProcessEventRow {
    ProcessEventRow { kind: ProcessEventKind::Seen as u8, ..exec(host, pid, start_ns, ts_ns, ppid, exe, argv) }
}

/// A small world with a known answer:
/// - bash (pid 100, seen running) forks 200, which execs `sh -c 'exit 7' marker-1` and exits 7;
/// - 200 also fails to exec `/nope`;
/// - 300 is forked by 200, execs twice (make, then cc) and is killed by signal 9;
/// - pid 400 is used twice (two start times);
/// - 500 is seen only at its exit;
/// - host-b has its own pid 100.
pub fn known_world() -> Vec<ProcessEventRow> {
    let a = "host-a";
    vec![
        seen(a, 100, SECOND, 50 * SECOND, 1, "/bin/bash", &["bash", "--login"]),
        fork(a, 200, 2 * SECOND, 100, "bash"),
        exec(a, 200, 2 * SECOND, 2 * SECOND + 1_000, 100, "/bin/sh", &["/bin/sh", "-c", "exit 7", "marker-1"]),
        ProcessEventRow {
            exe: "/nope".into(),
            argv: vec!["/nope".into()],
            errno: 2,
            comm: "sh".into(),
            ..row(a, 200, 2 * SECOND, ProcessEventKind::ExecFailed, 2 * SECOND + 500)
        },
        exit(a, 200, 2 * SECOND, 3 * SECOND, 7, 0, "sh"),
        fork(a, 300, 4 * SECOND, 200, "sh"),
        exec(a, 300, 4 * SECOND, 4 * SECOND + 10, 200, "/usr/bin/make", &["make", "-j2"]),
        exec(a, 300, 4 * SECOND, 5 * SECOND, 200, "/usr/bin/cc", &["cc", "-c", "x.c"]),
        exit(a, 300, 4 * SECOND, 6 * SECOND, 0, 9, "cc"),
        fork(a, 400, 7 * SECOND, 100, "bash"),
        exit(a, 400, 7 * SECOND, 8 * SECOND, 1, 0, "bash"),
        fork(a, 400, 9 * SECOND, 100, "bash"),
        exit(a, 500, 3 * SECOND, 10 * SECOND, 3, 0, "sleep"),
        seen("host-b", 100, SECOND, 50 * SECOND, 1, "/usr/sbin/sshd", &["sshd"]),
    ]
}

/// xorshift64*: deterministic and dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `count` processes over three hosts, in random trees, with random execs,
/// exits, failed execs and pid reuse.
pub fn generated_world(seed: u64, count: u32) -> Vec<ProcessEventRow> {
    let mut rng = Rng::new(seed);
    let hosts = ["gpu-01", "gpu-02", "cpu-01"];
    let programs = [
        ("/usr/bin/python3", &["python3", "train.py", "--epochs", "3"][..]),
        ("/usr/bin/git", &["git", "status"][..]),
        ("/bin/sh", &["sh", "-c", "pytest -q tests/"][..]),
        ("/usr/bin/pytest", &["pytest", "-q", "tests/"][..]),
        ("/usr/bin/curl", &["curl", "-s", "https://api.example.com/v1/chat"][..]),
    ];
    let mut rows = Vec::new();
    let mut pids: Vec<(usize, u32)> = Vec::new();
    for i in 0..count {
        let host_index = rng.below(3) as usize;
        let host = hosts[host_index];
        let start = (10 + i as u64) * SECOND + rng.below(SECOND);
        // Reuse a pid of the same host now and then.
        let pid = match pids.iter().filter(|(h, _)| *h == host_index).nth(rng.below(40) as usize) {
            Some(&(_, pid)) if rng.below(10) == 0 => pid,
            _ => 1000 + i,
        };
        let ppid = pids.iter().rfind(|(h, _)| *h == host_index).map_or(1, |(_, p)| *p);
        pids.push((host_index, pid));
        if rng.below(8) == 0 {
            let (exe, argv) = programs[rng.below(5) as usize];
            rows.push(seen(host, pid, start, start + 100 * SECOND, ppid, exe, argv));
        } else {
            rows.push(fork(host, pid, start, ppid, "bash"));
        }
        let execs = rng.below(3);
        for n in 0..execs {
            let (exe, argv) = programs[rng.below(5) as usize];
            let marker = format!("run-{}", rng.below(20));
            let mut argv: Vec<&str> = argv.to_vec();
            argv.push(&marker);
            rows.push(exec(host, pid, start, start + 1_000 + n * 777, ppid, exe, &argv));
        }
        if rng.below(6) == 0 {
            rows.push(ProcessEventRow {
                exe: "/usr/bin/missing".into(),
                errno: 2,
                ..row(host, pid, start, ProcessEventKind::ExecFailed, start + 500)
            });
        }
        if rng.below(4) != 0 {
            let signal = if rng.below(5) == 0 { 9 } else { 0 };
            rows.push(exit(host, pid, start, start + rng.below(30 * SECOND) + 5_000, rng.below(3) as i32, signal, "x"));
        }
    }
    rows
}

/// File, network, DNS, IPC, container and loss rows on three hosts, with
/// repeats, failures and pid reuse, for the activity views.
pub fn generated_activity(seed: u64, count: u32) -> plumbline_store::RowSet {
    use plumbline_store::*;
    let mut rng = Rng::new(seed);
    let hosts = ["gpu-01", "gpu-02", "cpu-01"];
    let comms = ["python3", "cc1", "curl", "node", "bash"];
    let paths = ["/etc/hosts", "/usr/include/stdio.h", "/tmp/build/a.o", "/dev/shm/torch_1", "/home/u/x.c"];
    let mut rows = RowSet::default();
    for (h, host) in hosts.iter().enumerate() {
        for container in 0..2u64 {
            rows.containers.push(ContainerRow {
                host: host.to_string(),
                boot_id: "boot-1".into(),
                cgroup_id: 100 + container,
                cgroup_path: format!("/kubepods/pod{h}{container}/cri-containerd-{container:064x}"),
                container_id: format!("{:064x}", container + 0xabc0 * (h as u64 + 1)),
                runtime: "containerd".into(),
                pod_uid: format!("uid-{h}-{container}"),
                pod_namespace: "ml".into(),
                pod_name: format!("trainer-{h}-{container}"),
                wall_ns: WALL_OFFSET,
            });
        }
    }
    for i in 0..count {
        let host = hosts[rng.below(3) as usize].to_string();
        let pid = 2000 + rng.below(40) as u32;
        let comm = comms[rng.below(5) as usize].to_string();
        let cgroup_id = 99 + rng.below(3);
        let ts_ns = (10 + i as u64) * SECOND + rng.below(SECOND);
        let wall_ns = ts_ns + WALL_OFFSET;
        let who = (host.clone(), pid, comm.clone(), cgroup_id, ts_ns, wall_ns);
        let path = paths[rng.below(5) as usize].to_string();
        match rng.below(7) {
            0 => {
                let failed = rng.below(4) == 0;
                rows.file_events.push(FileEventRow {
                    host: who.0,
                    boot_id: "boot-1".into(),
                    pid,
                    process_start_key_ns: SECOND,
                    comm,
                    cgroup_id,
                    ts_ns,
                    wall_ns,
                    op: file_op::OPEN,
                    path,
                    target: String::new(),
                    flags: 0,
                    result: if failed { -2 } else { 3 },
                    count: 1 + rng.below(5),
                    last_wall_ns: wall_ns + rng.below(SECOND),
                    dev: 8,
                    ino: if failed { 0 } else { 40 + rng.below(5) },
                    mode: 0o100644,
                    path_truncated: 0,
                });
            }
            1 => {
                let op = if rng.below(2) == 0 { file_op::UNLINK } else { file_op::RENAME };
                rows.file_events.push(FileEventRow {
                    host: who.0,
                    boot_id: "boot-1".into(),
                    pid,
                    process_start_key_ns: SECOND,
                    comm,
                    cgroup_id,
                    ts_ns,
                    wall_ns,
                    op,
                    target: if op == file_op::RENAME { format!("{path}.new") } else { String::new() },
                    path,
                    flags: 0,
                    result: 0,
                    count: 1,
                    last_wall_ns: wall_ns,
                    dev: 0,
                    ino: 0,
                    mode: 0,
                    path_truncated: 0,
                });
            }
            2 => rows.file_writes.push(FileWriteRow {
                host: who.0,
                boot_id: "boot-1".into(),
                pid,
                process_start_key_ns: SECOND,
                comm,
                cgroup_id,
                ts_ns,
                wall_ns,
                path,
                dev: 8,
                ino: 40,
                bytes: rng.below(1 << 20),
                calls: 1 + rng.below(100),
                window_start_wall_ns: wall_ns - SECOND,
            }),
            3 => {
                let sock_id = rng.below(1 << 40);
                let tcp = rng.below(3) != 0;
                rows.net_connections.push(NetConnectionRow {
                    host: who.0.clone(),
                    boot_id: "boot-1".into(),
                    pid,
                    process_start_key_ns: SECOND,
                    comm: comm.clone(),
                    cgroup_id,
                    ts_ns,
                    wall_ns,
                    direction: if rng.below(2) == 0 { direction::CONNECT } else { direction::ACCEPT },
                    transport: if tcp { transport::TCP } else { transport::UNIX_STREAM },
                    local_addr: if tcp { "10.0.0.5".into() } else { String::new() },
                    local_port: 40000 + rng.below(1000) as u32,
                    remote_addr: if tcp { format!("10.0.1.{}", rng.below(9)) } else { String::new() },
                    remote_port: 443,
                    unix_path: if tcp { String::new() } else { "/run/agent.sock".into() },
                    remote_name: if tcp { format!("api-{}.example.com", rng.below(3)) } else { String::new() },
                    result: if rng.below(5) == 0 { -111 } else { 0 },
                    latency_ns: rng.below(1_000_000),
                    sock_id,
                    peer_pid: if tcp { 0 } else { pid + 1 },
                    inode: 500 + rng.below(10),
                    peer_inode: 600 + rng.below(10),
                });
                if tcp && rng.below(2) == 0 {
                    rows.net_flows.push(NetFlowRow {
                        host: who.0,
                        boot_id: "boot-1".into(),
                        pid,
                        process_start_key_ns: SECOND,
                        comm,
                        cgroup_id,
                        ts_ns: ts_ns + SECOND,
                        wall_ns: wall_ns + SECOND,
                        direction: direction::CONNECT,
                        local_addr: "10.0.0.5".into(),
                        local_port: 40000,
                        remote_addr: "10.0.1.1".into(),
                        remote_port: 443,
                        remote_name: "api-1.example.com".into(),
                        bytes_sent: rng.below(1 << 20),
                        bytes_received: rng.below(1 << 20),
                        established_wall_ns: wall_ns,
                        duration_ns: SECOND,
                        sock_id,
                    });
                }
            }
            4 => rows.dns_queries.push(DnsQueryRow {
                host: who.0,
                boot_id: "boot-1".into(),
                pid,
                process_start_key_ns: SECOND,
                comm,
                cgroup_id,
                ts_ns,
                wall_ns,
                name: format!("api-{}.example.com", rng.below(3)),
                qtype: if rng.below(2) == 0 { 1 } else { 28 },
                rcode: if rng.below(6) == 0 { 3 } else { 0 },
                answers: format!("10.0.1.{},10.0.1.{}", rng.below(9), rng.below(9)),
                server: "127.0.0.53:53".into(),
                latency_ns: rng.below(5_000_000),
            }),
            5 => rows.ipc_events.push(IpcEventRow {
                host: who.0,
                boot_id: "boot-1".into(),
                pid,
                process_start_key_ns: SECOND,
                comm,
                cgroup_id,
                ts_ns,
                wall_ns,
                kind: if rng.below(2) == 0 { ipc_kind::PIPE } else { ipc_kind::UNIX_SOCKET },
                op: ipc_op::IO,
                object_id: 700 + rng.below(4),
                name: String::new(),
                peer_pid: 0,
                peer_object_id: 800 + rng.below(4),
                bytes_written: rng.below(1 << 16),
                bytes_read: rng.below(1 << 16),
                write_blocked_ns: rng.below(SECOND),
                read_blocked_ns: rng.below(SECOND),
                writes: rng.below(100),
                reads: rng.below(100),
                window_start_wall_ns: wall_ns - SECOND,
                result: 0,
            }),
            _ => rows.loss_markers.push(LossMarkerRow {
                host: who.0,
                boot_id: "boot-1".into(),
                kind: ["file_open", "net_dns", "proc_exec"][rng.below(3) as usize].into(),
                reason: 1,
                cpu: rng.below(2) as i32,
                count: 1 + rng.below(100),
                from_ns: ts_ns,
                to_ns: ts_ns + SECOND,
                from_wall_ns: wall_ns,
                to_wall_ns: wall_ns + SECOND,
            }),
        }
    }
    rows
}

/// LLM calls, agent mappings and TLS stacks on three hosts over several
/// hours: mapped processes (some remapped, one unmapped), discovered ones
/// (calls without a mapping), tool calls, findings and failed calls.
pub fn generated_llm(seed: u64, count: u32) -> plumbline_store::RowSet {
    use plumbline_store::*;
    let mut rng = Rng::new(seed);
    let hosts = ["gpu-01", "gpu-02", "cpu-01"];
    let agents = ["coder", "reviewer", "planner"];
    let models = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4"), ("gemini", "")];
    let mut rows = RowSet::default();
    // Processes 3000..3024 on each host; those below 3016 are mapped, at
    // times spread over the first hours, and every fifth is remapped later.
    let mapping = |host: &str, pid: u32, ts_ns: u64, agent: &str, rule: &str| AgentProcessRow {
        host: host.into(),
        boot_id: "boot-1".into(),
        pid,
        process_start_key_ns: u64::from(pid) * SECOND,
        comm: if pid.is_multiple_of(2) { "python3".into() } else { "node".into() },
        cgroup_id: 99 + u64::from(pid % 3),
        ts_ns,
        wall_ns: ts_ns + WALL_OFFSET,
        agent: agent.into(),
        rule: rule.into(),
        matched_on: if rule.is_empty() { String::new() } else { "COMMAND_LINE".into() },
    };
    for host in hosts {
        for pid in 3000..3016u32 {
            let at = u64::from(pid - 3000) * 600 * SECOND + rng.below(SECOND);
            let agent = agents[(pid % 3) as usize];
            rows.agent_processes.push(mapping(host, pid, at, agent, &format!("{agent}-rule")));
            if pid.is_multiple_of(5) {
                rows.agent_processes.push(mapping(host, pid, at + 3 * 3600 * SECOND, "planner", "planner-rule"));
            }
        }
        // Unmapped by a rule change.
        rows.agent_processes.push(mapping(host, 3001, 2 * 3600 * SECOND, "", ""));
        for (n, pid) in [3000u32, 3003, 3020].into_iter().enumerate() {
            let hooked = n != 2;
            rows.tls_stacks.push(TlsStackRow {
                host: host.into(),
                boot_id: "boot-1".into(),
                pid,
                process_start_key_ns: u64::from(pid) * SECOND,
                comm: if hooked { "python3".into() } else { "gh".into() },
                cgroup_id: 99 + u64::from(pid % 3),
                ts_ns: (n as u64 + 1) * 1000 * SECOND,
                wall_ns: (n as u64 + 1) * 1000 * SECOND + WALL_OFFSET,
                library: if hooked { "openssl".into() } else { "go".into() },
                path: if hooked { "/usr/lib/x86_64-linux-gnu/libssl.so.3".into() } else { "/usr/bin/gh".into() },
                hooked: hooked.into(),
                reason: if hooked { String::new() } else { "stripped Go binary: no crypto/tls symbols".into() },
            });
        }
    }
    for i in 0..count {
        let host = hosts[rng.below(3) as usize];
        let pid = 3000 + rng.below(24) as u32;
        let (provider, model) = models[rng.below(4) as usize];
        // Calls of mapped processes carry the agent; 3016.. are discovered.
        let agent = if pid < 3016 && pid != 3001 { agents[(pid % 3) as usize] } else { "" };
        // Over about six hours, in order, one call at a time per host.
        let ts_ns = u64::from(i) * 6 * 3600 * SECOND / u64::from(count) + 100 * SECOND + rng.below(1000);
        let failed = rng.below(10) == 0;
        let tools: Vec<LlmToolCall> = (0..rng.below(3))
            .map(|t| LlmToolCall {
                id: format!("call_{i}_{t}"),
                name: ["bash", "read_file", "search"][rng.below(3) as usize].into(),
                arguments: format!("{{\"n\":{t}}}"),
            })
            .collect();
        let results: Vec<LlmToolResult> = if rng.below(3) == 0 {
            vec![LlmToolResult { tool_call_id: format!("call_{}_0", i.saturating_sub(1)), content: "ok".into() }]
        } else {
            Vec::new()
        };
        let findings: Vec<LlmFinding> = if rng.below(8) == 0 {
            vec![LlmFinding { kind: "pii_email".into(), location: "prompt".into(), excerpt: "mail ***@***".into() }]
        } else {
            Vec::new()
        };
        let streamed = rng.below(2) == 0;
        rows.llm_calls.push(LlmCallRow {
            host: host.into(),
            boot_id: "boot-1".into(),
            pid,
            process_start_key_ns: u64::from(pid) * SECOND,
            comm: if pid.is_multiple_of(2) { "python3".into() } else { "node".into() },
            cgroup_id: 99 + u64::from(pid % 3),
            ts_ns,
            wall_ns: ts_ns + WALL_OFFSET,
            tid: pid + rng.below(3) as u32,
            agent: agent.into(),
            provider: provider.into(),
            model: model.into(),
            operation: if provider == "anthropic" { "messages".into() } else { "chat".into() },
            endpoint: if provider == "anthropic" { "/v1/messages".into() } else { "/v1/chat/completions".into() },
            server: format!("api.{provider}.com"),
            protocol: if rng.below(2) == 0 { "HTTP/1.1".into() } else { "HTTP/2".into() },
            library: "openssl".into(),
            http_status: if failed { 429 } else { 200 },
            error: if failed { "Rate limit reached".into() } else { String::new() },
            stop_reason: if failed { String::new() } else { "stop".into() },
            streamed: streamed.into(),
            request_ts_ns: ts_ns,
            ttft_ns: if streamed { 1_000_000 + rng.below(500_000_000) } else { 0 },
            latency_ns: 2_000_000 + rng.below(3 * SECOND),
            input_tokens: if failed { 0 } else { 10 + rng.below(5000) },
            output_tokens: if failed { 0 } else { rng.below(2000) },
            cached_input_tokens: rng.below(100),
            request_bytes: 200 + rng.below(10_000),
            response_bytes: 100 + rng.below(10_000),
            bytes_lost: if rng.below(20) == 0 { 4096 } else { 0 },
            prompt: format!("Say something about run {i}; \"quoted\", tab\tand ünïcode"),
            completion: if failed { String::new() } else { format!("Answer {i}") },
            tool_calls: to_json_column(&tools),
            tool_results: to_json_column(&results),
            findings: to_json_column(&findings),
            local_addr: "10.0.0.5".into(),
            local_port: 40000 + rng.below(1000) as u32,
            remote_addr: format!("10.0.1.{}", rng.below(9)),
            remote_port: 443,
            fd: 3 + rng.below(20) as i32,
            connection_id: 0x7f00_0000_0000 + rng.below(1 << 20),
        });
    }
    rows
}

/// A training job's rows on four hosts × 8 ranks: every rank's all-reduce
/// calls and kernel launches, and a verdict per collective — stragglers
/// (mostly rank 13), two mismatches and, at the end, hangs.
pub fn generated_gpu(seed: u64, collectives: u64) -> plumbline_store::RowSet {
    use plumbline_store::*;
    let mut rng = Rng::new(seed);
    let mut rows = RowSet::default();
    let kernels = ["void scale<float>(float*, int)", "ncclDevKernel_AllReduce_Sum_f32_RING_LL", "gemm_128x128"];
    for seq in 0..collectives {
        let step = 10_000 * SECOND + seq * SECOND / 10;
        for rank in 0..32u32 {
            let host = format!("gpu-{:02}", rank / 8);
            let ts_ns = step + u64::from(rank) * 1000 + rng.below(500);
            let who = |ts_ns: u64| (host.clone(), "boot-1".to_string(), 5000 + rank, ts_ns, ts_ns + WALL_OFFSET);
            let (h, b, pid, ts, wall) = who(ts_ns);
            rows.nccl_calls.push(NcclCallRow {
                host: h,
                boot_id: b,
                pid,
                process_start_key_ns: SECOND,
                comm: "python3".into(),
                cgroup_id: 7,
                ts_ns: ts,
                wall_ns: wall,
                tid: pid,
                job: "llama".into(),
                communicator: 0xabc,
                comm_handle: 0x7f00 + u64::from(rank),
                rank: rank as i32,
                nranks: 32,
                seq,
                op: "ALL_REDUCE".into(),
                count: 1 << 20,
                datatype: 7,
                reduce_op: 0,
                peer: -1,
                stream: 16,
                result: 0,
                duration_ns: 20_000 + rng.below(1000),
                device: (rank % 8) as i32,
                parent_communicator: 0,
                color: 0,
                comm_rank: rank as i32,
                world_size: 32,
                rank_in_job: u8::from(rank % 2 == 0),
            });
            let (h, b, pid, ts, wall) = who(ts_ns - 1_000_000);
            rows.cuda_calls.push(CudaCallRow {
                host: h,
                boot_id: b,
                pid,
                process_start_key_ns: SECOND,
                comm: "python3".into(),
                cgroup_id: 7,
                ts_ns: ts,
                wall_ns: wall,
                tid: pid,
                job: "llama".into(),
                rank: rank as i32,
                device: (rank % 8) as i32,
                api: if seq % 7 == 3 { "MEMCPY".into() } else { "LAUNCH_KERNEL".into() },
                kernel: kernels[rng.below(3) as usize].into(),
                grid_x: 1 + rng.below(64) as u32,
                grid_y: 1,
                grid_z: 1,
                block_x: 256,
                block_y: 1,
                block_z: 1,
                stream: 16,
                bytes: 4096,
                memcpy_kind: 1,
                result: if rng.below(20) == 0 { 35 } else { 0 },
                duration_ns: 4_000 + rng.below(1000),
                handle: 0x401000,
            });
        }
        let verdict = match seq {
            s if s + 3 >= collectives => "hang",
            s if s % 50 == 17 => "mismatch",
            s if s % 3 == 0 => "straggler",
            _ => "complete",
        };
        let late_rank = if seq % 9 == 0 { 21 } else { 13 };
        rows.collective_verdicts.push(CollectiveVerdictRow {
            job: "llama".into(),
            communicator: 0xabc,
            seq,
            op: "ALL_REDUCE".into(),
            count: 1 << 20,
            datatype: 7,
            nranks: 32,
            arrived: if verdict == "hang" { 30 } else { 32 },
            hosts: 4,
            verdict: verdict.into(),
            wall_ns: step + WALL_OFFSET,
            median_wall_ns: step + WALL_OFFSET + 16_000,
            last_wall_ns: step + WALL_OFFSET + 40_000_000,
            rank: if verdict == "hang" { -1 } else { late_rank },
            host: format!("gpu-{:02}", late_rank / 8),
            device: late_rank % 8,
            late_ns: 30_000_000 + rng.below(1_000_000),
            field: if verdict == "mismatch" { "count".into() } else { String::new() },
            expected: if verdict == "mismatch" { "1048576".into() } else { String::new() },
            differing: if verdict == "mismatch" { r#"[{"rank":9,"value":"1000"}]"#.into() } else { String::new() },
            missing: if verdict == "hang" {
                r#"[{"rank":3,"last_completed_seq":7,"host":"gpu-00","device":3}]"#.into()
            } else {
                String::new()
            },
            judged_wall_ns: step + WALL_OFFSET + SECOND,
            comm_rank: if verdict == "hang" { -1 } else { late_rank % 8 },
            role: "world".into(),
            cause_communicator: if verdict == "hang" && seq + 3 > collectives { 0xabc } else { 0 },
            cause_seq: if verdict == "hang" && seq + 3 > collectives { collectives - 3 } else { 0 },
            cause_rank: if verdict == "hang" && seq + 3 > collectives { 3 } else { -1 },
        });
    }
    // Each launch as the aggregator sums a batch holding only it.
    rows.kernel_launches = rows
        .cuda_calls
        .iter()
        .filter(|c| c.api == "LAUNCH_KERNEL")
        .map(|c| KernelLaunchesRow {
            host: c.host.clone(),
            boot_id: c.boot_id.clone(),
            pid: c.pid,
            process_start_key_ns: c.process_start_key_ns,
            comm: c.comm.clone(),
            cgroup_id: c.cgroup_id,
            ts_ns: c.ts_ns,
            wall_ns: c.wall_ns,
            job: c.job.clone(),
            rank: c.rank,
            device: c.device,
            kernel: c.kernel.clone(),
            launches: 1,
            failed: u64::from(c.result != 0),
            total_ns: c.duration_ns,
            grid_x: c.grid_x,
            grid_y: c.grid_y,
            grid_z: c.grid_z,
            block_x: c.block_x,
            block_y: c.block_y,
            block_z: c.block_z,
            last_ts_ns: c.ts_ns,
        })
        .collect();
    rows
}

/// Agent sessions as the aggregator writes them: per session an LLM call
/// (node 1, the session's process), tool calls, effects in its tree, edges
/// and findings.
pub fn generated_sessions(sessions: u64) -> plumbline_store::RowSet {
    use plumbline_store::{FindingRow, RowSet, SessionEdgeRow, SessionNodeRow};
    let mut rows = RowSet::default();
    let kinds = ["llm_call", "tool_call", "exec", "file", "connect", "tool_result", "llm_call", "lookup"];
    for s in 0..sessions {
        let session = format!("s{s:012x}");
        let (host, agent) = (format!("host-{}", s % 3), format!("agent-{}", s % 4));
        for (i, kind) in kinds.iter().enumerate() {
            let node = i as u64 + 1;
            let ts_ns = 1_000_000_000 * (s + 1) + node * 1_000_000;
            rows.session_nodes.push(SessionNodeRow {
                host: host.clone(),
                boot_id: "boot".into(),
                // The effects run in a child.
                pid: if ["exec", "file", "connect", "lookup"].contains(kind) {
                    9000 + s as u32
                } else {
                    100 + s as u32
                },
                process_start_key_ns: 7,
                comm: format!("comm-{}", i % 2),
                cgroup_id: 1,
                ts_ns,
                wall_ns: 1_700_000_000_000_000_000 + ts_ns,
                session: session.clone(),
                agent: agent.clone(),
                node,
                kind: kind.to_string(),
                label: format!("{kind} /tmp/file-{s}-{i}"),
                detail: String::new(),
                tokens: if *kind == "llm_call" { 100 + s } else { 0 },
            });
            if node > 1 {
                rows.session_edges.push(SessionEdgeRow {
                    session: session.clone(),
                    from_node: node - 1,
                    to_node: node,
                    relation: if i % 2 == 0 { "caused".into() } else { "followed".into() },
                    reason: "test".into(),
                    wall_ns: 1_700_000_000_000_000_000 + ts_ns,
                });
            }
        }
        for kind in ["unverified_claim", "reasoning_loop"].iter().take((s % 3) as usize) {
            rows.findings.push(FindingRow {
                session: session.clone(),
                agent: agent.clone(),
                host: host.clone(),
                boot_id: "boot".into(),
                pid: 100 + s as u32,
                kind: kind.to_string(),
                severity: "high".into(),
                subject: format!("call_{s}"),
                wall_ns: 1_700_000_000_000_000_000 + s * 1_000_000_000,
                summary: "summary".into(),
                llm_call: 1,
                expected: "run `make`".into(),
                observed: "nothing".into(),
                evidence: "{}".into(),
                tokens: 0,
                found_wall_ns: 1,
            });
        }
    }
    rows
}
