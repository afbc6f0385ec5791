//! What a workload policy decided about a session's processes. Each
//! decision is a node linked by the attribution effects get
//! ([`effect`](SessionGraph::effect)): to the tool call whose claim names
//! what it was about, else to the call it followed, with the decision
//! (denied, killed_after, would_deny) as the edge's relation. A refusal is
//! not the effect: the claim it answers waits as refused, not seen, and the
//! effect of the same process on the same object (an exec killed once it
//! succeeded) is undone, whichever of the two the kernel reported first.

use plumbline_store::{decision, family};

use super::*;

impl SessionGraph {
    pub(super) fn enforcement_decision(&mut self, d: &EnforcementDecisionRow, now_ns: u64, out: &mut GraphRows) {
        let Some(key) = self.session_key(&d.host, &d.boot_id, d.pid) else { return };
        let (verb, mode) = match d.decision {
            decision::DENIED => ("DENIED", "enforce"),
            decision::KILLED_AFTER => ("KILLED", "enforce"),
            decision::WOULD_DENY => ("WOULD BE DENIED", "audit"),
            decision::ABORTED => ("ABORTED", "enforce"),
            decision::HELD => ("HELD", "enforce"),
            decision::KILLED_BEFORE => ("KILLED", "enforce"),
            _ => return,
        };
        // A v4-mapped destination is the IPv4 address the session resolved.
        let addr = d.remote_addr.strip_prefix("::ffff:").filter(|v4| v4.contains('.')).unwrap_or(&d.remote_addr);
        let port = u16::try_from(d.remote_port).unwrap_or(0);
        let resolved = self.host(&d.host, &d.boot_id).resolved.get(addr).cloned().unwrap_or_default();
        let observed = match d.family {
            family::NETWORK => Observed::Connect { addr, port, resolved_from: &resolved },
            family::EXEC => Observed::ExecAttempt { exe: &d.path },
            // The decision does not say how the file was to be opened: it
            // answers a claim to read it and one to write it.
            family::FILE => Observed::File { path: &d.path, target: "", wrote: true },
            _ => return,
        };
        let what = format!("{} {}", d.operation, object_of(&observed));
        let (role, family) = (&d.role, family::name(d.family));
        let effect = Effect {
            kind: node_kind::ENFORCEMENT,
            label: format!("{what} {verb} by role {role} ({family}, {mode})"),
            observed,
            notable: true,
            who: who_of!(d),
            policy: Some(Ruling {
                decision: d.decision,
                why: format!("role {role} ({family}, {mode}) does not allow {what}"),
            }),
        };
        self.effect(&d.host, &d.boot_id, key, effect, now_ns, out);
    }
}

impl Ruling {
    /// Whether the effect did not take place (audit lets it).
    pub(super) fn refuses(&self) -> bool {
        self.decision != decision::WOULD_DENY
    }

    pub(super) fn relation(&self) -> &'static str {
        decision::name(self.decision)
    }
}

impl Turn {
    /// A refusal in this turn: the effects of its process on its object
    /// that a claim took are no longer seen (only named, as a killed run is
    /// still what the tool's result reports on), and those claims wait as
    /// refused by it.
    pub(super) fn refuse(&mut self, refusal: Attempt) {
        let same = |a: &Attempt| a.pid == refusal.pid && a.object == refusal.object;
        for undone in self.taken.iter().filter(|a| same(a)) {
            for tool in &mut self.tools {
                for (seen, refused) in tool.matched.iter_mut().zip(&mut tool.refused) {
                    if *seen == Some(undone.node) {
                        *seen = None;
                        refused.get_or_insert(refusal.node);
                        tool.also.push(undone.node);
                    }
                }
            }
        }
        self.taken.retain(|a| !same(a));
        self.refused.push(refusal);
    }

    /// The decision of this turn that refused what `pid` did to `object`.
    pub(super) fn refusal_of(&self, pid: u32, object: &str) -> Option<u64> {
        self.refused.iter().find(|r| r.pid == pid && r.object == object).map(|r| r.node)
    }

    /// "… DENIED by role … (node N)" for a refusal of this turn.
    pub(super) fn refusal_label(&self, node: u64) -> Option<String> {
        self.refused.iter().find(|r| r.node == node).map(|r| format!("{} (node {node})", r.label))
    }
}

impl Session {
    /// A refusal of what `pid` did to `object`: an out-of-scope finding held
    /// for it is withdrawn, and one that would come is not made, until
    /// `until_ns`.
    pub(super) fn refused(&mut self, pid: u32, object: String, until_ns: u64) {
        let reported = &mut self.reported;
        self.settling.findings.retain(|(_, p, o, finding)| {
            let withdrawn = *p == pid && *o == object;
            if withdrawn {
                reported.remove(&(finding.kind.clone(), finding.subject.clone()));
            }
            !withdrawn
        });
        self.settling.refusals.push((until_ns, pid, object));
    }

    pub(super) fn was_refused(&self, pid: u32, object: &str) -> bool {
        self.settling.refusals.iter().any(|(_, p, o)| *p == pid && o == object)
    }

    /// Out-of-scope findings no refusal withdrew in their settling time.
    pub(super) fn settled(&mut self, now_ns: u64, out: &mut GraphRows) {
        let (due, held): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.settling.findings).into_iter().partition(|f| f.0 <= now_ns);
        self.settling.findings = held;
        out.findings.extend(due.into_iter().map(|(.., finding)| finding));
        self.settling.refusals.retain(|(until, _, _)| *until > now_ns);
    }
}

/// What an effect was done to, as its decision names it too: the file
/// exec'd or opened, the address and port, the name looked up.
pub(super) fn object_of(observed: &Observed<'_>) -> String {
    match *observed {
        Observed::Exec { exe, .. } | Observed::ExecAttempt { exe } => exe.to_string(),
        Observed::File { path, .. } => path.to_string(),
        Observed::Connect { addr, port, .. } => endpoint(addr, port),
        Observed::Lookup { name } => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use plumbline_store::FindingRow;

    use super::*;

    const MS: u64 = 1_000_000;
    const WALL: u64 = 1_700_000_000_000_000_000;
    const AGENT: u32 = 4000;
    const CHILD: u32 = 4100;

    fn process(kind: ProcessEventKind, pid: u32, ppid: u32, argv: &[&str], at_ms: u64) -> ProcessEventRow {
        ProcessEventRow {
            host: "h".into(),
            boot_id: "b".into(),
            pid,
            start_key_ns: u64::from(pid) * MS,
            kind: kind as u8,
            ts_ns: at_ms * MS,
            wall_ns: WALL + at_ms * MS,
            ppid,
            comm: argv[0].rsplit('/').next().unwrap_or_default().into(),
            exe: argv[0].into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        }
    }

    /// An LLM call whose request starts at `at_ms` and ends 50 ms later.
    fn call(at_ms: u64, tools: &[(&str, &str, &str)], results: &[(&str, &str)]) -> LlmCallRow {
        let tools: Vec<_> = tools
            .iter()
            .map(|(id, name, args)| serde_json::json!({"id": id, "name": name, "arguments": args}))
            .collect();
        let results: Vec<_> =
            results.iter().map(|(id, content)| serde_json::json!({"tool_call_id": id, "content": content})).collect();
        LlmCallRow {
            host: "h".into(),
            boot_id: "b".into(),
            pid: AGENT,
            process_start_key_ns: u64::from(AGENT) * MS,
            comm: "python3".into(),
            ts_ns: (at_ms + 50) * MS,
            wall_ns: WALL + (at_ms + 50) * MS,
            model: "gpt-test".into(),
            request_ts_ns: at_ms * MS,
            latency_ns: 50 * MS,
            prompt: "Do the task".into(),
            tool_calls: serde_json::to_string(&tools).unwrap(),
            tool_results: serde_json::to_string(&results).unwrap(),
            findings: "[]".into(),
            remote_addr: "127.0.0.1".into(),
            remote_port: 8443,
            ..Default::default()
        }
    }

    fn decided(pid: u32, decision: u8, family: u8, object: &str, at_ms: u64) -> EnforcementDecisionRow {
        let (operation, path, (addr, port)) = match family {
            family::NETWORK => ("connect", "", object.rsplit_once(':').map(|(a, p)| (a, p.parse().unwrap())).unwrap()),
            family::FILE => ("open", object, ("", 0)),
            _ => ("exec", object, ("", 0)),
        };
        EnforcementDecisionRow {
            host: "h".into(),
            boot_id: "b".into(),
            pid,
            process_start_key_ns: u64::from(pid) * MS,
            comm: "python3".into(),
            ts_ns: at_ms * MS,
            wall_ns: WALL + at_ms * MS,
            decision,
            family,
            operation: operation.into(),
            role: "agent".into(),
            remote_addr: addr.into(),
            remote_port: port,
            path: path.into(),
            ..Default::default()
        }
    }

    /// What a session's graph says, by labels (node numbers follow the order
    /// rows came in): verdicts, edges, findings.
    #[derive(Debug, PartialEq)]
    struct Graph {
        verdicts: Vec<String>,
        edges: Vec<(String, String, String, String)>,
        findings: Vec<(String, String, String)>,
    }

    /// Feeds each batch in turn, then lets the turns settle.
    fn play(batches: Vec<RowSet>) -> Graph {
        let settings = SessionSettings {
            window_ns: 60_000 * MS,
            settle_ns: 100 * MS,
            loop_calls: 4,
            loop_similarity: 0.9,
            blocked_share: 0.5,
            blocked_min_ns: 2_000 * MS,
            secret_paths: vec!["/.ssh/".into()],
            secret_names: Vec::new(),
            egress_allow: vec!["pypi.org".into()],
        };
        let mut graph = SessionGraph::new(settings);
        let mut rows = RowSet::default();
        let start = RowSet {
            process_events: vec![process(ProcessEventKind::Seen, AGENT, 1, &["python3", "agent.py"], 0)],
            ..Default::default()
        };
        let mut now = 0;
        for batch in std::iter::once(start).chain(batches) {
            now += 10 * MS;
            rows.extend(graph.observe(&batch, now));
        }
        // Past the window: a turn with no next call is judged too.
        rows.extend(graph.tick(now + 61_000 * MS));
        // "(node N)" in a verdict names a node by its number.
        let numbered = |text: &str| {
            let mut text = text.to_string();
            for n in &rows.session_nodes {
                text = text.replace(&format!("(node {})", n.node), &format!("(node {:?})", n.label));
            }
            text
        };
        let label = |node: u64| rows.session_nodes.iter().find(|n| n.node == node).map(|n| numbered(&n.label));
        let mut edges: Vec<_> = rows
            .session_edges
            .iter()
            .map(|e| (label(e.from_node).unwrap(), e.relation.clone(), label(e.to_node).unwrap(), e.reason.clone()))
            .collect();
        edges.sort();
        let verdicts = rows.session_nodes.iter().filter(|n| n.kind == node_kind::VERDICT).map(|n| numbered(&n.label));
        let finding = |f: &FindingRow| (f.kind.clone(), f.severity.clone(), f.subject.clone());
        Graph { verdicts: verdicts.collect(), edges, findings: rows.findings.iter().map(finding).collect() }
    }

    const TOUCH: (&str, &str, &str) = ("t1", "run_command", r#"{"command": "touch /w/touched"}"#);

    /// The agent asks for `touch`; its child execs it and the policy kills it
    /// there; the next call sends `result` back.
    fn killed_touch(order: &str, result: &str) -> Graph {
        // The child is known before what it does: rows are taken in event
        // time, and its fork came before both.
        let first = RowSet {
            llm_calls: vec![call(1000, &[TOUCH], &[])],
            process_events: vec![process(ProcessEventKind::Fork, CHILD, AGENT, &["python3"], 1100)],
            ..Default::default()
        };
        let exec = RowSet {
            process_events: vec![
                process(ProcessEventKind::Exec, CHILD, AGENT, &["/usr/bin/touch", "/w/touched"], 1101),
                process(ProcessEventKind::Exit, CHILD, AGENT, &["/usr/bin/touch"], 1102),
            ],
            ..Default::default()
        };
        let decision = RowSet {
            enforcement_decisions: vec![decided(CHILD, decision::KILLED_AFTER, family::EXEC, "/usr/bin/touch", 1101)],
            ..Default::default()
        };
        let next = RowSet { llm_calls: vec![call(2000, &[], &[("t1", result)])], ..Default::default() };
        let batches = match order {
            "decision first" => vec![first, decision, exec, next],
            "decision last" => vec![first, exec, next, decision],
            _ => {
                let mut together = exec;
                together.extend(decision);
                vec![first, together, next]
            }
        };
        play(batches)
    }

    #[test]
    fn an_exec_killed_by_the_policy_is_a_refused_claim_whichever_came_first_not_a_run() {
        let graph = killed_touch("decision first", "");
        assert_eq!(graph, killed_touch("decision last", ""));
        assert_eq!(graph, killed_touch("together", ""));
        assert_eq!(graph.findings, [], "an agent whose command the policy stopped is not accused");
        let decision = "exec /usr/bin/touch KILLED by role agent (exec, enforce)";
        assert_eq!(
            graph.verdicts,
            [format!("unverified: no exec `touch /w/touched`, refused by policy: {decision} (node {decision:?})")]
        );
        let tool = format!("run_command {}", TOUCH.2);
        let claimed = "run_command claimed exec `touch /w/touched`";
        let from_tool: Vec<_> = graph.edges.iter().filter(|e| e.0 == tool).map(|e| (&*e.1, &*e.2, &*e.3)).collect();
        let why = format!("{claimed}; role agent (exec, enforce) does not allow exec /usr/bin/touch");
        assert_eq!(
            from_tool,
            [
                ("caused", "/usr/bin/touch /w/touched", claimed),
                ("judged", graph.verdicts[0].as_str(), "the kernel's record against the claim"),
                ("killed_after", decision, why.as_str()),
                ("reported", "run_command ← ", "its result"),
            ]
        );
    }

    #[test]
    fn a_result_claiming_success_for_a_killed_exec_is_an_unverified_claim() {
        let graph = killed_touch("decision last", "done, touched it");
        assert_eq!(graph, killed_touch("decision first", "done, touched it"));
        assert_eq!(graph.findings, [("unverified_claim".into(), "high".into(), "t1".into())]);
        assert!(graph.verdicts[0].ends_with(", yet its result reported success"), "{:?}", graph.verdicts);
    }

    fn connect(at_ms: u64) -> NetConnectionRow {
        NetConnectionRow {
            host: "h".into(),
            boot_id: "b".into(),
            pid: AGENT,
            process_start_key_ns: u64::from(AGENT) * MS,
            ts_ns: at_ms * MS,
            wall_ns: WALL + at_ms * MS,
            direction: direction::CONNECT,
            remote_addr: "10.9.9.9".into(),
            remote_port: 9999,
            ..Default::default()
        }
    }

    #[test]
    fn a_denied_connect_a_tool_call_asked_for_is_a_refused_claim_linked_denied() {
        let exfil = ("c1", "connect", r#"{"host": "10.9.9.9", "port": "9999"}"#);
        let graph = play(vec![
            RowSet { llm_calls: vec![call(1000, &[exfil], &[])], ..Default::default() },
            RowSet {
                enforcement_decisions: vec![decided(AGENT, decision::DENIED, family::NETWORK, "10.9.9.9:9999", 1100)],
                ..Default::default()
            },
            RowSet {
                llm_calls: vec![call(2000, &[], &[("c1", "error: [Errno 1] Operation not permitted")])],
                ..Default::default()
            },
        ]);
        assert_eq!(graph.findings, []);
        let decision = "connect 10.9.9.9:9999 DENIED by role agent (network, enforce)";
        assert_eq!(
            graph.verdicts,
            [format!(
                "unverified: no reach 10.9.9.9:9999, refused by policy: {decision} (node {decision:?}), and its \
                 result reported a failure"
            )]
        );
        let why = "connect claimed reach 10.9.9.9:9999; role agent (network, enforce) does not allow connect \
                   10.9.9.9:9999";
        assert!(graph.edges.contains(&(format!("connect {}", exfil.2), "denied".into(), decision.into(), why.into())));
    }

    #[test]
    fn egress_nobody_asked_for_is_out_of_scope_in_audit_and_nothing_when_the_policy_refused_it() {
        let unasked = |decision: u8, connected: bool| {
            let mut rows = RowSet {
                enforcement_decisions: vec![decided(AGENT, decision, family::NETWORK, "10.9.9.9:9999", 1100)],
                ..Default::default()
            };
            rows.net_connections.extend(connected.then(|| connect(1100)));
            play(vec![RowSet { llm_calls: vec![call(1000, &[], &[])], ..Default::default() }, rows])
        };
        let audited = unasked(decision::WOULD_DENY, true);
        let kinds: Vec<&str> = audited.findings.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(kinds, ["out_of_scope_effect"]);
        let decision = "connect 10.9.9.9:9999 WOULD BE DENIED by role agent (network, audit)";
        assert!(audited.edges.iter().any(|e| e.1 == "would_deny" && e.2 == decision), "{:#?}", audited.edges);

        let enforced = unasked(decision::DENIED, false);
        assert_eq!(enforced.findings, [], "the connection never happened");
        let decision = "connect 10.9.9.9:9999 DENIED by role agent (network, enforce)";
        let linked: Vec<(&str, &str)> = enforced.edges.iter().map(|e| (&*e.1, &*e.2)).collect();
        assert!(linked.contains(&("denied", decision)), "followed the call it came after: {linked:?}");
    }

    #[test]
    fn a_secret_open_the_policy_killed_is_no_secret_read_whichever_came_first() {
        const KEY: &str = "/home/a/.ssh/id_rsa";
        let read = ("r1", "read_file", r#"{"path": "~/.ssh/id_rsa"}"#);
        // The agent itself opens the key and is killed there: no next call.
        let opened = |decision: Option<u8>, decision_first: bool| {
            let open = RowSet {
                file_events: vec![FileEventRow {
                    host: "h".into(),
                    boot_id: "b".into(),
                    pid: AGENT,
                    ts_ns: 1100 * MS,
                    wall_ns: WALL + 1100 * MS,
                    op: file_op::OPEN,
                    path: KEY.into(),
                    result: 3,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let decided = RowSet {
                enforcement_decisions: decision
                    .map(|d| decided(AGENT, d, family::FILE, KEY, 1100))
                    .into_iter()
                    .collect(),
                ..Default::default()
            };
            let first = RowSet { llm_calls: vec![call(1000, &[read], &[])], ..Default::default() };
            play(if decision_first { vec![first, decided, open] } else { vec![first, open, decided] })
        };
        let unrefused = opened(None, false);
        let kinds: Vec<&str> = unrefused.findings.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(kinds, ["out_of_scope_effect"], "a key opened and not refused is read");

        let killed = opened(Some(decision::KILLED_AFTER), false);
        assert_eq!(killed, opened(Some(decision::KILLED_AFTER), true));
        assert_eq!(killed.findings, [], "the open was killed before a byte was read");
        let decision = format!("open {KEY} KILLED by role agent (file, enforce)");
        assert_eq!(
            killed.verdicts,
            [format!("unverified: no file ~/.ssh/id_rsa, refused by policy: {decision} (node {decision:?})")]
        );
        let tool = format!("read_file {}", read.2);
        assert!(killed.edges.iter().any(|e| e.0 == tool && e.1 == "killed_after" && e.2 == decision));
    }
}
