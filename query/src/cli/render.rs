//! Tables and trees for people reading a terminal.

pub(super) use crate::units::{bytes, duration, millis, or_dash, time};

use plumbline_proto::v1::{
    AgentView, Connection, Container, DnsLookup, EnforcementView, FileActivity, IpcEdge, LlmCallView, LossRecord,
    PipelineStatsResponse, Process, ProcessTreeNode, ProcessTreeResponse, TlsStackView, TokenUsageRow,
};

fn exit(p: &Process) -> String {
    match (p.exited, p.exit_signal) {
        (false, _) => "-".into(),
        (true, 0) => p.exit_code.to_string(),
        (true, signal) => format!("sig {signal}"),
    }
}

fn command(p: &Process) -> String {
    if p.argv.is_empty() {
        format!("[{}]", p.comm)
    } else {
        p.argv.join(" ")
    }
}

/// Columns padded to their widest cell; the last column is not padded.
fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len() - 1;
        for (c, cell) in row.iter().enumerate() {
            if c == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

pub fn process_table(processes: &[Process]) -> String {
    let mut rows = vec![["HOST", "PID", "PPID", "START", "EXIT", "COMM", "COMMAND"].map(String::from).to_vec()];
    for p in processes {
        rows.push(vec![
            p.host.clone(),
            p.pid.to_string(),
            p.ppid.to_string(),
            time(p.start_wall_ns),
            exit(p),
            p.comm.clone(),
            command(p),
        ]);
    }
    columns(&rows)
}

pub fn process_tree(tree: &ProcessTreeResponse) -> String {
    let mut out = String::new();
    for ancestor in tree.ancestors.iter().rev() {
        out.push_str(&format!("{}  (ancestor)\n", line(ancestor)));
    }
    if let Some(root) = &tree.root {
        if let Some(p) = &root.process {
            out.push_str(&line(p));
            out.push('\n');
        }
        children(root, "", &mut out);
    }
    out
}

fn line(p: &Process) -> String {
    let state = match (p.exited, p.exit_signal) {
        (false, _) => "running".to_string(),
        (true, 0) => format!("exit {}", p.exit_code),
        (true, signal) => format!("killed by signal {signal}"),
    };
    format!("{} [{}] {}", p.pid, state, command(p))
}

fn children(node: &ProcessTreeNode, prefix: &str, out: &mut String) {
    for (i, child) in node.children.iter().enumerate() {
        let last = i + 1 == node.children.len();
        let Some(p) = &child.process else { continue };
        out.push_str(&format!("{prefix}{}{}\n", if last { "└── " } else { "├── " }, line(p)));
        children(child, &format!("{prefix}{}", if last { "    " } else { "│   " }), out);
    }
}

pub(super) fn table<T>(header: &[&str], rows: &[T], row: impl Fn(&T) -> Vec<String>) -> String {
    let mut cells = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    cells.extend(rows.iter().map(row));
    columns(&cells)
}

pub fn files(files: &[FileActivity]) -> String {
    table(&["HOST", "PID", "COMM", "OPENS", "FAILED", "WRITTEN", "LAST", "PATH"], files, |f| {
        let mut path = f.path.clone();
        if !f.renamed_to.is_empty() {
            path.push_str(&format!(" -> {}", f.renamed_to));
        }
        if f.unlinks > 0 {
            path.push_str(" (unlinked)");
        }
        let failed =
            if f.failed_opens > 0 { format!("{} (errno {})", f.failed_opens, f.failed_errno) } else { "0".into() };
        vec![
            f.host.clone(),
            f.pid.to_string(),
            f.comm.clone(),
            f.opens.to_string(),
            failed,
            bytes(f.bytes_written),
            time(f.last_wall_ns),
            path,
        ]
    })
}

pub fn connections(connections: &[Connection]) -> String {
    let header = ["HOST", "PID", "COMM", "DIR", "PROTO", "LOCAL", "REMOTE", "RESULT", "SENT", "RECV", "START", "NAME"];
    table(&header, connections, |c| {
        let result = if c.result == 0 { "ok".to_string() } else { format!("errno {}", -c.result) };
        let (sent, received) =
            if c.closed { (bytes(c.bytes_sent), bytes(c.bytes_received)) } else { ("-".into(), "-".into()) };
        let mut remote = c.remote.clone();
        if c.peer_pid != 0 {
            remote.push_str(&format!(" (pid {})", c.peer_pid));
        }
        vec![
            c.host.clone(),
            c.pid.to_string(),
            c.comm.clone(),
            c.direction.clone(),
            c.transport.clone(),
            c.local.clone(),
            remote,
            result,
            sent,
            received,
            time(c.start_wall_ns),
            c.remote_name.clone(),
        ]
    })
}

pub fn dns(queries: &[DnsLookup]) -> String {
    table(&["HOST", "PID", "COMM", "TYPE", "RCODE", "LATENCY", "TIME", "NAME", "ANSWERS"], queries, |q| {
        vec![
            q.host.clone(),
            q.pid.to_string(),
            q.comm.clone(),
            q.qtype.clone(),
            q.rcode.to_string(),
            duration(q.latency_ns),
            time(q.wall_ns),
            q.name.clone(),
            q.answers.join(","),
        ]
    })
}

pub fn ipc(edges: &[IpcEdge]) -> String {
    let header = ["HOST", "KIND", "FROM", "TO", "BYTES", "WRITER WAITED", "READER WAITED", "CHANNEL"];
    table(&header, edges, |e| {
        vec![
            e.host.clone(),
            e.kind.clone(),
            format!("{} ({})", e.from_pid, e.from_comm),
            if e.to_comm.is_empty() { e.to_pid.to_string() } else { format!("{} ({})", e.to_pid, e.to_comm) },
            bytes(e.bytes),
            duration(e.writer_blocked_ns),
            duration(e.reader_blocked_ns),
            e.channel.clone(),
        ]
    })
}

pub fn containers(containers: &[Container]) -> String {
    table(&["HOST", "CGROUP", "CONTAINER", "POD", "NAMESPACE", "PATH"], containers, |c| {
        vec![
            c.host.clone(),
            c.cgroup_id.to_string(),
            c.container_id.chars().take(12).collect(),
            c.pod_name.clone(),
            c.pod_namespace.clone(),
            c.cgroup_path.clone(),
        ]
    })
}

pub fn losses(losses: &[LossRecord]) -> String {
    table(&["HOST", "KIND", "REASON", "CPU", "COUNT", "FROM", "TO"], losses, |l| {
        vec![
            l.host.clone(),
            l.kind.clone(),
            l.reason.clone(),
            l.cpu.to_string(),
            l.count.to_string(),
            time(l.from_wall_ns),
            time(l.to_wall_ns),
        ]
    })
}

pub fn enforcement(decisions: &[EnforcementView]) -> String {
    table(&["TIME", "HOST", "PID", "COMM", "ROLE", "DECISION", "BY", "OPERATION", "OBJECT"], decisions, |d| {
        let mut object = if d.remote_addr.is_empty() {
            d.path.clone()
        } else {
            format!("{} {}", d.transport, crate::connections::endpoint(&d.remote_addr, d.remote_port, ""))
        };
        // LLM decisions name the endpoint host (or the guardrail) too.
        if d.family == "llm" && !d.remote_addr.is_empty() && !d.path.is_empty() {
            object = format!("{object} ({})", d.path);
        }
        vec![
            time(d.wall_ns),
            d.host.clone(),
            d.pid.to_string(),
            d.comm.clone(),
            d.role.clone(),
            d.decision.clone(),
            d.mechanism.clone(),
            d.operation.clone(),
            object,
        ]
    })
}

pub fn llm_calls(calls: &[LlmCallView]) -> String {
    let header = [
        "TIME",
        "HOST",
        "PID",
        "COMM",
        "AGENT",
        "PROVIDER",
        "MODEL",
        "STATUS",
        "IN",
        "OUT",
        "CACHED",
        "TTFT(ms)",
        "LATENCY(ms)",
        "TOOLS",
    ];
    table(&header, calls, |c| {
        let status = match (c.http_status, c.error.is_empty()) {
            (0, true) => "-".to_string(),
            (0, false) => "error".to_string(),
            (status, _) => status.to_string(),
        };
        let tools: Vec<&str> = c.tool_calls.iter().map(|t| t.name.as_str()).collect();
        vec![
            time(c.wall_ns),
            c.host.clone(),
            c.pid.to_string(),
            c.comm.clone(),
            or_dash(&c.agent),
            c.provider.clone(),
            or_dash(&c.model),
            status,
            c.input_tokens.to_string(),
            c.output_tokens.to_string(),
            c.cached_input_tokens.to_string(),
            millis(c.ttft_ns),
            millis(c.latency_ns),
            or_dash(&tools.join(",")),
        ]
    })
}

pub fn agents(agents: &[AgentView]) -> String {
    let header = ["HOST", "PID", "COMM", "AGENT", "STATUS", "RULE", "CALLS", "IN", "OUT", "LAST"];
    table(&header, agents, |a| {
        let (agent, status) = if a.agent.is_empty() { ("-", "discovered") } else { (a.agent.as_str(), "mapped") };
        let rule = match (a.rule.is_empty(), a.matched_on.is_empty()) {
            (true, _) => "-".to_string(),
            (false, true) => a.rule.clone(),
            (false, false) => format!("{} ({})", a.rule, a.matched_on),
        };
        vec![
            a.host.clone(),
            a.pid.to_string(),
            a.comm.clone(),
            agent.to_string(),
            status.to_string(),
            rule,
            a.llm_calls.to_string(),
            a.input_tokens.to_string(),
            a.output_tokens.to_string(),
            time(a.last_wall_ns),
        ]
    })
}

pub fn token_usage(rows: &[TokenUsageRow]) -> String {
    let header = ["HOUR", "AGENT", "PROVIDER", "MODEL", "CALLS", "IN", "OUT", "CACHED"];
    table(&header, rows, |r| {
        vec![
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(r.hour_wall_ns))
                .to_string(),
            if r.agent.is_empty() { "(discovered)".into() } else { r.agent.clone() },
            r.provider.clone(),
            or_dash(&r.model),
            r.calls.to_string(),
            r.input_tokens.to_string(),
            r.output_tokens.to_string(),
            r.cached_input_tokens.to_string(),
        ]
    })
}

pub fn tls_stacks(stacks: &[TlsStackView]) -> String {
    table(&["HOST", "PID", "COMM", "LIBRARY", "HOOKED", "FOUND", "PATH", "REASON"], stacks, |s| {
        vec![
            s.host.clone(),
            s.pid.to_string(),
            s.comm.clone(),
            s.library.clone(),
            if s.hooked { "yes" } else { "no" }.to_string(),
            time(s.wall_ns),
            s.path.clone(),
            or_dash(&s.reason),
        ]
    })
}

pub fn pipeline_stats(stats: &PipelineStatsResponse) -> String {
    columns(&[
        vec!["store".into(), stats.store.clone()],
        vec!["process events".into(), stats.process_events.to_string()],
        vec!["dead letters".into(), stats.dead_letters.to_string()],
        vec!["lost events".into(), stats.lost_events.to_string()],
        vec!["hosts".into(), stats.hosts.join(", ")],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, argv: &[&str], exited: bool, code: i32) -> Process {
        Process {
            host: "h".into(),
            pid,
            ppid: 1,
            comm: "sh".into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            exited,
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn table_aligns_columns_and_shows_exit_codes() {
        let table = process_table(&[process(7, &["sh", "-c", "exit 7"], true, 7), process(12345, &[], false, 0)]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("HOST  PID    PPID"), "{table}");
        assert!(lines[1].contains("  7      ") && lines[1].ends_with("sh -c exit 7"), "{table}");
        assert!(lines[2].ends_with("[sh]"), "a process without argv shows its comm: {table}");
    }

    fn call(agent: &str, tools: &[&str]) -> LlmCallView {
        LlmCallView {
            host: "h".into(),
            pid: 42,
            comm: "python3".into(),
            agent: agent.into(),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            http_status: 200,
            input_tokens: 1200,
            output_tokens: 34,
            cached_input_tokens: 1024,
            ttft_ns: 312_400_000,
            latency_ns: 1_204_000_000,
            tool_calls: tools
                .iter()
                .map(|t| plumbline_proto::v1::LlmToolCallView { name: t.to_string(), ..Default::default() })
                .collect(),
            wall_ns: 1_795_442_400_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn llm_calls_show_tokens_milliseconds_and_the_tools_called() {
        let failed = LlmCallView { http_status: 0, error: "connection reset".into(), ttft_ns: 0, ..call("", &[]) };
        let text = llm_calls(&[call("coder", &["bash", "read_file"]), failed]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("TIME  ") && lines[0].ends_with("TTFT(ms)  LATENCY(ms)  TOOLS"), "{text}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "2026-11-23T14:00:00.000Z",
                "h",
                "42",
                "python3",
                "coder",
                "openai",
                "gpt-4o",
                "200",
                "1200",
                "34",
                "1024",
                "312.4",
                "1204.0",
                "bash,read_file"
            ]
        );
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!((cells[4], cells[7], cells[11], cells[13]), ("-", "error", "-", "-"), "{text}");
    }

    #[test]
    fn agents_are_marked_mapped_or_discovered() {
        let mapped = AgentView {
            pid: 1,
            comm: "node".into(),
            agent: "reviewer".into(),
            rule: "by-name".into(),
            matched_on: "PROCESS_NAME".into(),
            ..Default::default()
        };
        let discovered = AgentView { pid: 2, comm: "curl".into(), llm_calls: 3, ..Default::default() };
        let text = agents(&[mapped, discovered]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("reviewer  mapped      by-name (PROCESS_NAME)  0"), "{text}");
        assert!(lines[2].contains("curl  -         discovered  -                       3"), "{text}");
    }

    #[test]
    fn token_usage_is_by_hour_and_names_discovered_calls() {
        let row = |agent: &str| TokenUsageRow {
            hour_wall_ns: 1_795_442_400_000_000_000,
            agent: agent.into(),
            provider: "anthropic".into(),
            model: "claude-sonnet-4".into(),
            calls: 2,
            input_tokens: 10,
            output_tokens: 20,
            cached_input_tokens: 5,
        };
        let text = token_usage(&[row("coder"), row("")]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["HOUR", "AGENT", "PROVIDER", "MODEL", "CALLS", "IN", "OUT", "CACHED"]
        );
        assert!(lines[1].starts_with("2026-11-23T14:00:00Z  coder "), "{text}");
        assert!(lines[2].contains(" (discovered)  anthropic  claude-sonnet-4  2      10  20   5"), "{text}");
    }

    #[test]
    fn tls_stacks_say_whether_they_are_hooked_and_why_not() {
        let hooked = TlsStackView {
            pid: 1,
            library: "openssl".into(),
            hooked: true,
            path: "/lib/libssl.so.3".into(),
            ..Default::default()
        };
        let unhooked = TlsStackView {
            pid: 2,
            library: "go".into(),
            path: "/usr/bin/gh".into(),
            reason: "stripped Go binary: no crypto/tls symbols".into(),
            ..Default::default()
        };
        let text = tls_stacks(&[hooked, unhooked]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains(" openssl  yes ") && lines[1].ends_with("/lib/libssl.so.3  -"), "{text}");
        assert!(
            lines[2].contains(" go       no ") && lines[2].ends_with("stripped Go binary: no crypto/tls symbols"),
            "{text}"
        );
    }

    #[test]
    fn tree_draws_branches() {
        let leaf = ProcessTreeNode { process: Some(process(3, &["cc"], true, 0)), children: vec![] };
        let child = ProcessTreeNode { process: Some(process(2, &["make"], true, 0)), children: vec![leaf] };
        let other = ProcessTreeNode { process: Some(process(4, &["ls"], true, 0)), children: vec![] };
        let root = ProcessTreeNode { process: Some(process(1, &["bash"], false, 0)), children: vec![child, other] };
        let text = process_tree(&ProcessTreeResponse { ancestors: vec![], root: Some(root) });
        assert_eq!(text, "1 [running] bash\n├── 2 [exit 0] make\n│   └── 3 [exit 0] cc\n└── 4 [exit 0] ls\n");
    }
}
