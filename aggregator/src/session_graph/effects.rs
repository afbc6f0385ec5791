//! What a session's processes did, as the kernel saw it: process
//! lifecycle, files, lookups, connections, IPC and losses, each linked to
//! the tool call or LLM call it followed. Policy decisions go the same way
//! ([`decisions`](super::decisions)).

use super::decisions::object_of;
use super::*;

impl SessionGraph {
    pub(super) fn process_event(&mut self, p: &ProcessEventRow, now_ns: u64, out: &mut GraphRows) {
        const EXIT: u8 = ProcessEventKind::Exit as u8;
        const EXEC: u8 = ProcessEventKind::Exec as u8;
        const STARTS: [u8; 3] = [EXEC, ProcessEventKind::Seen as u8, ProcessEventKind::Fork as u8];
        let host = self.host(&p.host, &p.boot_id);
        if p.kind == EXIT {
            if let Some(known) = host.processes.get_mut(&p.pid) {
                known.exited = true;
            }
        } else if STARTS.contains(&p.kind) {
            let process = Process { start_key_ns: p.start_key_ns, ppid: p.ppid, exited: false };
            // An exec keeps the parent a fork named, if the exec's is unknown.
            let ppid = host.processes.get(&p.pid).filter(|_| p.ppid == 0).map(|known| known.ppid);
            host.processes.insert(p.pid, Process { ppid: ppid.unwrap_or(process.ppid), ..process });
        }
        if p.kind != EXEC {
            return;
        }
        // Effects: only those of a session's processes are worth any work.
        let Some(key) = self.session_key(&p.host, &p.boot_id, p.pid) else { return };
        let argv = p.argv.join(" ");
        let self_made = self.session(&p.host, &p.boot_id, key).is_some_and(|s| s.written.contains(&p.exe));
        let who = Who {
            pid: p.pid,
            process_start_key_ns: p.start_key_ns,
            comm: &p.comm,
            cgroup_id: p.cgroup_id,
            ts_ns: p.ts_ns,
            wall_ns: p.wall_ns,
        };
        let effect = Effect {
            kind: node_kind::EXEC,
            label: argv,
            observed: Observed::Exec { exe: &p.exe, argv: &p.argv, self_made },
            notable: true,
            who,
            policy: None,
        };
        self.effect(&p.host, &p.boot_id, key, effect, now_ns, out);
    }

    pub(super) fn file_event(&mut self, f: &FileEventRow, now_ns: u64, out: &mut GraphRows) {
        let wrote = f.op == file_op::OPEN && f.flags & WRITE_FLAGS != 0;
        let (verb, notable) = match f.op {
            file_op::OPEN if wrote => ("write", true),
            file_op::OPEN => ("read", false),
            file_op::UNLINK => ("unlink", true),
            file_op::RENAME => ("rename", true),
            _ => return,
        };
        if f.result < 0 {
            return;
        }
        let Some(key) = self.session_key(&f.host, &f.boot_id, f.pid) else { return };
        if let Some(session) = self.session(&f.host, &f.boot_id, key) {
            let made = if f.op == file_op::RENAME { &f.target } else { &f.path };
            if (wrote || f.op == file_op::RENAME) && session.written.len() < MAX_WRITTEN {
                session.written.insert(made.clone());
            }
        }
        // Devices, kernel files and directories (a temporary file opened
        // in /tmp) are how programs work, not what they did.
        let plumbing = ["/dev/", "/proc/", "/sys/"].iter().any(|p| f.path.starts_with(p)) || f.mode & S_IFMT == S_IFDIR;
        let label = if f.op == file_op::RENAME && !f.target.is_empty() {
            format!("{verb} {} → {}", f.path, f.target)
        } else {
            format!("{verb} {}", f.path)
        };
        let effect = Effect {
            kind: node_kind::FILE,
            label,
            observed: Observed::File { path: &f.path, target: &f.target, wrote },
            notable: notable && !plumbing,
            who: who_of!(f),
            policy: None,
        };
        self.effect(&f.host, &f.boot_id, key, effect, now_ns, out);
    }

    pub(super) fn dns_query(&mut self, d: &DnsQueryRow, now_ns: u64, out: &mut GraphRows) {
        let Some(key) = self.session_key(&d.host, &d.boot_id, d.pid) else { return };
        // What the session's lookups answered names the addresses it then
        // connects to.
        let host = self.host(&d.host, &d.boot_id);
        for answer in d.answers.split([',', ' ']).filter(|a| !a.is_empty()) {
            let names = host.resolved.entry(answer.to_string()).or_default();
            if !names.contains(&d.name) {
                names.push(d.name.clone());
            }
        }
        let effect = Effect {
            kind: node_kind::LOOKUP,
            label: format!("lookup {}", d.name),
            observed: Observed::Lookup { name: &d.name },
            notable: true,
            who: who_of!(d),
            policy: None,
        };
        self.effect(&d.host, &d.boot_id, key, effect, now_ns, out);
    }

    pub(super) fn connection(&mut self, c: &NetConnectionRow, now_ns: u64, out: &mut GraphRows) {
        if c.direction != direction::CONNECT || c.remote_addr.is_empty() || c.result != 0 {
            return;
        }
        let Some(key) = self.session_key(&c.host, &c.boot_id, c.pid) else { return };
        let resolved = self.host(&c.host, &c.boot_id).resolved.get(&c.remote_addr).cloned().unwrap_or_default();
        let port = u16::try_from(c.remote_port).unwrap_or(0);
        let effect = Effect {
            kind: node_kind::CONNECT,
            label: format!("connect {}", endpoint(&c.remote_addr, port)),
            observed: Observed::Connect { addr: &c.remote_addr, port, resolved_from: &resolved },
            notable: true,
            who: who_of!(c),
            policy: None,
        };
        self.effect(&c.host, &c.boot_id, key, effect, now_ns, out);
    }

    pub(super) fn ipc_event(&mut self, i: &IpcEventRow, now_ns: u64) {
        let Some(key) = self.session_key(&i.host, &i.boot_id, i.pid) else { return };
        let host = self.host(&i.host, &i.boot_id);
        let session = host.sessions.get_mut(&key).expect("found above");
        *session.blocked.entry(i.object_id).or_default() += i.read_blocked_ns + i.write_blocked_ns;
        session.last_wall_ns = session.last_wall_ns.max(i.wall_ns);
        session.touched_ns = now_ns;
        host.ipc_users.entry(i.object_id).or_default().insert(session.id.clone());
    }

    /// Judges turns whose settling time passed, and open turns whose window
    /// elapsed with no next call; checks time blocked on other agents.
    pub(super) fn loss(&mut self, l: &LossMarkerRow) {
        let losses = &mut self.host(&l.host, &l.boot_id).losses;
        if losses.len() == MAX_LOSSES {
            losses.pop_front();
        }
        losses.push_back(Loss { kind: l.kind.clone(), count: l.count, from_ns: l.from_ns, to_ns: l.to_ns });
    }

    /// An effect of a process of session `key` on this host.
    pub(super) fn effect(
        &mut self,
        host_name: &str,
        boot_id: &str,
        key: ProcessKey,
        effect: Effect<'_>,
        now_ns: u64,
        out: &mut GraphRows,
    ) {
        let settings = &self.settings;
        let host = self.hosts.get_mut(host_name).and_then(|boots| boots.get_mut(boot_id)).expect("has the session");
        let llm_endpoints = &host.llm_endpoints;
        let session = host.sessions.get_mut(&key).expect("found by the caller");
        session.touched_ns = now_ns;
        if effect.who.wall_ns < session.first_wall_ns {
            return;
        }
        let secret = matches!(effect.observed, Observed::File { path, .. } if is_secret(settings, path));
        // What a policy decided is kept, even about the LLM endpoint.
        let is_llm_endpoint = effect.policy.is_none()
            && matches!(effect.observed, Observed::Connect { addr, port, .. }
            if llm_endpoints.contains(&endpoint(addr, port)));
        let unlisted = match effect.observed {
            Observed::Connect { addr, port, resolved_from } => {
                !settings.egress_allow.is_empty()
                    && !is_llm_endpoint
                    && port != 53
                    && !allowed(&settings.egress_allow, addr, port, resolved_from)
            }
            _ => false,
        };

        // Which tool call of the open turn (or of a closing one) names it.
        let ts = effect.who.ts_ns;
        let node = session.next_node;
        let (pid, object) = (effect.who.pid, object_of(&effect.observed));
        let refuses = effect.policy.as_ref().is_some_and(Ruling::refuses);
        // (why, the tool call's node, whether it was asked for after content
        // fetched from outside)
        let mut cause: Option<(String, u64, bool)> = None;
        let mut in_window = None;
        let turns = session.turn.iter_mut().chain(session.closing.iter_mut().map(|c| &mut c.turn));
        for turn in turns.filter(|t| (t.from_ts_ns..=t.until_ts_ns).contains(&ts)) {
            in_window.get_or_insert(turn.node);
            if turn.seen.len() < MAX_SEEN && effect.notable && !is_llm_endpoint {
                turn.seen.push(effect.label.clone());
            }
            let refused_by = if refuses {
                let label = effect.label.clone();
                turn.refuse(Attempt { node, pid, object: object.clone(), label });
                Some(node)
            } else if effect.policy.is_none() {
                turn.refusal_of(pid, &object)
            } else {
                None
            };
            if cause.is_some() {
                continue;
            }
            // The first claim still waiting for this effect takes it, as seen
            // or as refused; one run does not answer two claims of it. A
            // decision in audit only names the tool call.
            let takes = effect.policy.is_none() || refuses;
            let waiting = turn.tools.iter_mut().filter(|_| takes).find_map(|tool| {
                let at = (0..tool.claim.expected.len()).find(|&i| {
                    tool.matched[i].is_none()
                        && (refused_by.is_none() || tool.refused[i].is_none())
                        && tool.claim.expected[i].matches(&effect.observed)
                })?;
                match refused_by {
                    Some(by) => tool.refused[at] = Some(by),
                    None => tool.matched[at] = Some(node),
                }
                if refused_by.is_some() && !refuses {
                    tool.also.push(node);
                }
                Some((tool, at))
            });
            let seen = waiting.is_some() && refused_by.is_none();
            let named = match waiting {
                Some(found) => Some(found),
                None => turn.tools.iter_mut().find_map(|tool| {
                    let at = tool.claim.expected.iter().position(|e| e.matches(&effect.observed))?;
                    if effect.policy.is_none() {
                        tool.also.push(node);
                    }
                    Some((tool, at))
                }),
            };
            if let Some((tool, at)) = named {
                let reason = format!("{} claimed {}", tool.name, tool.claim.expected[at].describe());
                cause = Some((reason, tool.node, tool.tainted));
            }
            if seen {
                turn.taken.push(Attempt { node, pid, object: object.clone(), label: effect.label.clone() });
            }
        }
        if cause.is_none() && (is_llm_endpoint || !effect.notable && !secret) {
            return;
        }
        let wall = effect.who.wall_ns;
        session.last_wall_ns = session.last_wall_ns.max(wall);
        if effect.policy.is_none() {
            session.effects_since_call += 1;
        }
        let node = session.push_node(out, effect.kind, effect.label.clone(), String::new(), 0, effect.who);
        let (caused, followed) = match &effect.policy {
            Some(ruling) => (ruling.relation(), ruling.relation()),
            None => (edge_relation::CAUSED, edge_relation::FOLLOWED),
        };
        let with_why = |reason: String| match &effect.policy {
            Some(ruling) => format!("{reason}; {}", ruling.why),
            None => reason,
        };
        if let Some((reason, tool_node, _)) = &cause {
            session.link(out, *tool_node, node, caused, &with_why(reason.clone()), wall);
        } else if let Some(call_node) = in_window {
            let reason = format!("in the process tree within {} s of the call", settings.window_ns / 1_000_000_000);
            session.link(out, call_node, node, followed, &with_why(reason), wall);
        }
        // Egress a tool call asked for before any outside content came in is
        // the session's intent; after it, or asked by nobody, it is not. What
        // a policy refused did not take place.
        let egress = unlisted && !matches!(cause, Some((_, _, false)));
        let due_ns = now_ns + settings.settle_ns;
        if refuses {
            session.refused(pid, object, due_ns);
        } else if (secret || egress) && effect.policy.is_none() && !session.was_refused(pid, &object) {
            let why = OutOfScope { secret, caused_by: cause.map(|(reason, _, _)| reason), llm_call: in_window };
            if let Some(finding) = session.out_of_scope_finding(&effect, why, settings) {
                session.settling.findings.push((due_ns, pid, object, finding));
            }
        }
    }
}

fn is_secret(settings: &SessionSettings, path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    settings.secret_paths.iter().any(|s| path.contains(s.as_str()))
        || settings.secret_names.iter().any(|n| name == n || name.starts_with(&format!("{n}.")))
}

/// Whether `addr:port` (or a name it was resolved from) is allowed.
fn allowed(allow: &[String], addr: &str, port: u16, names: &[String]) -> bool {
    allow.iter().any(|entry| {
        let (host, entry_port) = match entry.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h.trim_matches(['[', ']']), p.parse().ok()),
            _ => (entry.as_str(), None),
        };
        let host_matches = host == addr || names.iter().any(|n| n.eq_ignore_ascii_case(host));
        host_matches && entry_port.is_none_or(|p: u16| p == port)
    })
}
