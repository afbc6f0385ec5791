//! Processes and what they did: the processes of a host, and for one
//! process its tree (ancestors, itself, descendants), the files it touched,
//! its connections with the DNS names it looked up, who it talked to over
//! pipes, unix sockets and shared memory, and where the kernel lost events
//! while it ran. A process that is an agent links to its sessions.

use axum::{
    extract::{Path, Query, State},
    routing::get,
    Router,
};
use maud::{html, Markup};
use plumbline_proto::v1::{
    query_service_server::QueryService, ActivityRequest, Connection, FileActivity, IpcEdge, ListProcessesRequest,
    LossRecord, Process, ProcessTreeNode, ProcessTreeRequest, SessionRequest, TimeRange,
};
use serde::Deserialize;
use tonic::Request;

use super::{
    error::PageError,
    lanes::clip,
    layout::{badge, page, panel, scope_form, time},
    links,
    params::Scope,
    Web,
};
use crate::units::{bytes, duration, or_dash};

pub const PATH: &str = "/processes";
const PROCESSES: u32 = 100;
const ROWS: u32 = 200;
/// Tree levels below the process unless the page asks for more.
const DEPTH: u32 = 6;
/// Tree entries drawn at most.
const TREE_NODES: usize = 400;

pub fn routes() -> Router<Web> {
    Router::new().route(PATH, get(list)).route("/processes/{host}/{pid}", get(one))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListParams {
    name: String,
    limit: u32,
}

fn command(p: &Process) -> String {
    if p.argv.is_empty() {
        format!("[{}]", p.comm)
    } else {
        p.argv.join(" ")
    }
}

fn state(p: &Process) -> Markup {
    match (p.exited, p.exit_signal) {
        (false, _) => badge("ok", "running"),
        (true, 0) if p.exit_code == 0 => badge("ok", "exit 0"),
        (true, 0) => badge("warn", &format!("exit {}", p.exit_code)),
        (true, signal) => badge("bad", &format!("signal {signal}")),
    }
}

async fn list(
    State(web): State<Web>,
    Query(scope): Query<Scope>,
    Query(params): Query<ListParams>,
) -> Result<Markup, PageError> {
    let limit = if params.limit == 0 { PROCESSES } else { params.limit.min(10_000) };
    let request = ListProcessesRequest {
        host: scope.host.clone(),
        range: scope.range()?,
        name_contains: params.name.clone(),
        limit: limit + 1,
        ..Default::default()
    };
    let mut processes = web.api.list_processes(Request::new(request)).await?.into_inner().processes;
    let more = processes.len() > limit as usize;
    processes.truncate(limit as usize);
    let more_link = links::with_query(
        PATH,
        &[
            ("host", &scope.host),
            ("name", &params.name),
            ("since", &scope.since),
            ("until", &scope.until),
            ("limit", &(limit * 4).min(10_000).to_string()),
        ],
    );
    let body = html! {
        (scope_form(PATH, &scope, &[("name", &params.name)]))
        form.scope method="get" action=(PATH) {
            @for (name, value) in links::scope_pairs(&scope) { input type="hidden" name=(name) value=(value); }
            label { "Name" input type="text" name="name" value=(params.name) placeholder="comm or executable"; }
            button type="submit" { "Filter" }
        }
        (panel("Processes", processes.is_empty().then_some(
            "No process matches in this range: none was started or seen running then (is the agent on this host running?)."), html! {
            table {
                thead { tr { th { "Host" } th { "PID" } th { "Parent" } th { "Command" } th { "Started" } th { "State" } } }
                tbody {
                    @for p in &processes {
                        tr {
                            td { (p.host) }
                            td { a href=(links::process(&p.host, p.pid, p.start_key_ns)) { (p.pid) } }
                            td { a href=(links::process(&p.host, p.ppid, 0)) { (p.ppid) } }
                            td { code { (command(p)) } }
                            td { (time(p.start_wall_ns)) @if p.seen_running { " " small { "(running at agent start)" } } }
                            td { (state(p)) }
                        }
                    }
                }
            }
            @if more { p.more { "Showing the newest " (limit) ". " a href=(more_link) { "Show more" } } }
        }))
    };
    Ok(page("Processes", PATH, &scope, body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProcessParams {
    /// Which run of the pid (its start key); 0: the most recent.
    start: u64,
    depth: u32,
}

async fn one(
    State(web): State<Web>,
    Path((host, pid)): Path<(String, u32)>,
    Query(scope): Query<Scope>,
    Query(params): Query<ProcessParams>,
) -> Result<Markup, PageError> {
    let depth = if params.depth == 0 { DEPTH } else { params.depth.min(64) };
    let api = &web.api;
    let tree = api
        .process_tree(Request::new(ProcessTreeRequest {
            host: host.clone(),
            pid,
            start_key_ns: params.start,
            max_depth: depth,
        }))
        .await?
        .into_inner();
    let root = tree.root.unwrap_or_default();
    let me = root.process.clone().unwrap_or_default();
    // What the process did: in the page's range, else while it ran.
    let range = match scope.range()? {
        Some(range) => range,
        None => TimeRange { start_ns: me.start_wall_ns, end_ns: if me.exited { me.exit_wall_ns } else { 0 } },
    };
    let activity = |pid: u32, limit: u32| ActivityRequest {
        host: host.clone(),
        range: Some(range),
        pid,
        limit,
        ..Default::default()
    };
    let files = api.list_file_activity(Request::new(activity(pid, ROWS))).await?.into_inner().files;
    let connections = api.list_connections(Request::new(activity(pid, ROWS))).await?.into_inner().connections;
    let ipc = api.list_ipc_edges(Request::new(activity(pid, ROWS))).await?.into_inner().edges;
    let losses = api.list_loss_markers(Request::new(activity(0, ROWS))).await?.into_inner().losses;
    let agents = api.list_agents(Request::new(activity(pid, 10))).await?.into_inner().agents;
    let agent = agents.iter().find(|a| a.pid == pid && !a.agent.is_empty()).map(|a| a.agent.clone());
    let sessions: Vec<_> = api
        .list_sessions(Request::new(SessionRequest { host: host.clone(), limit: 1000, ..Default::default() }))
        .await?
        .into_inner()
        .sessions
        .into_iter()
        .filter(|s| s.pid == pid)
        .collect();

    let mut drawn = 0usize;
    let body = html! {
        (scope_form(&links::process(&host, pid, 0), &scope, &[("start", &params.start.to_string())]))
        section.summary {
            div.tile.ok { div.value { code { (command(&me)) } } div.label { (me.comm) " (" (pid) ") on " (host) } }
            div.tile.ok { div.value { (state(&me)) } div.label { "started " (time(me.start_wall_ns)) } }
            @if let Some(agent) = &agent {
                div.tile.ok { div.value { a href=(links::sessions_of(&host, agent)) { (agent) } } div.label { "agent: its sessions" } }
            }
            @if !losses.is_empty() {
                div.tile.bad { div.value { (losses.iter().map(|l| l.count).sum::<u64>()) } div.label { "kernel events lost on this host meanwhile" } }
            }
        }
        @if !sessions.is_empty() {
            (panel("Agent sessions of this process", None, html! {
                ul { @for s in &sessions {
                    li { a href=(links::session(&s.session)) { code { (s.session) } } " " (or_dash(&s.agent)) ", "
                        (s.llm_calls) " LLM calls, " (s.effects) " effects, " (s.findings) " findings, last " (time(s.last_wall_ns)) }
                } }
            }))
        }
        (panel("Process tree", None, html! {
            @if !tree.ancestors.is_empty() {
                ol.ancestors { @for a in tree.ancestors.iter().rev() {
                    li { a href=(links::process(&a.host, a.pid, a.start_key_ns)) { (a.pid) } " " code { (clip(&command(a), 160)) } }
                } }
            }
            ul.tree { (tree_node(&root, pid, &mut drawn)) }
            @if drawn >= TREE_NODES {
                p.more { "Showing the first " (TREE_NODES) " processes of the tree." }
            } @else {
                p.more { (depth) " levels below. "
                    a href=(links::with_query(&links::process(&host, pid, params.start), &[("depth", &(depth * 2).min(64).to_string())])) { "Deeper" } }
            }
        }))
        (panel("Files", files.is_empty().then_some(
            "This process opened, wrote, renamed or unlinked no file in this range (or capture of files is off)."), files_table(&files)))
        (panel("Connections", connections.is_empty().then_some(
            "This process made or accepted no connection in this range."), connections_table(&host, &connections)))
        (panel("IPC", ipc.is_empty().then_some(
            "No data went through a pipe, unix socket or shared memory to or from this process in this range."), ipc_table(&host, &ipc)))
        (panel("Losses", losses.is_empty().then_some(
            "The kernel lost no event on this host while the process ran: what is shown is complete."), loss_table(&losses)))
    };
    Ok(page(&format!("Process {pid} on {host}"), PATH, &scope, body))
}

/// A tree entry and its children, at most [`TREE_NODES`] in all.
fn tree_node(node: &ProcessTreeNode, focus: u32, drawn: &mut usize) -> Markup {
    let p = node.process.clone().unwrap_or_default();
    *drawn += 1;
    html! {
        li class=[(p.pid == focus).then_some("focus")] {
            a href=(links::process(&p.host, p.pid, p.start_key_ns)) { (p.pid) }
            " " code { (clip(&command(&p), 300)) } " " (state(&p))
            @if !node.children.is_empty() {
                ul {
                    @for child in &node.children {
                        @if *drawn < TREE_NODES { (tree_node(child, focus, drawn)) }
                    }
                }
            }
        }
    }
}

fn files_table(files: &[FileActivity]) -> Markup {
    html! {
        table {
            thead { tr { th { "Path" } th.num { "Opens" } th.num { "Failed" } th.num { "Written" } th.num { "Unlinks" } th { "Renamed to" } } }
            tbody {
                @for f in files {
                    tr class=[(f.failed_opens > 0).then_some("warn")] {
                        td { code { (f.path) } }
                        td.num { (f.opens) }
                        td.num { (f.failed_opens) @if f.failed_opens > 0 { " (errno " (f.failed_errno) ")" } }
                        td.num { (bytes(f.bytes_written)) } td.num { (f.unlinks) } td { (or_dash(&f.renamed_to)) }
                    }
                }
            }
        }
    }
}

fn connections_table(host: &str, connections: &[Connection]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "When" } th { "Direction" } th { "Transport" } th { "Remote" } th { "DNS name" } th { "Result" }
                th.num { "Sent" } th.num { "Received" } th.num { "Lasted" } th { "Peer" }
            } }
            tbody {
                @for c in connections {
                    tr class=[(c.result != 0).then_some("bad")] {
                        td { (time(c.start_wall_ns)) } td { (c.direction) } td { (c.transport) }
                        td { code { (c.remote) } } td { (or_dash(&c.remote_name)) }
                        td { @if c.result == 0 { "ok" } @else { (badge("bad", &format!("errno {}", -c.result))) } }
                        td.num { (bytes(c.bytes_sent)) } td.num { (bytes(c.bytes_received)) }
                        td.num { @if c.closed { (duration(c.duration_ns)) } @else { "open" } }
                        td { @if c.peer_pid != 0 { a href=(links::process(host, c.peer_pid, 0)) { (c.peer_pid) } } @else { "-" } }
                    }
                }
            }
        }
    }
}

fn ipc_table(host: &str, edges: &[IpcEdge]) -> Markup {
    html! {
        table {
            thead { tr { th { "Kind" } th { "Channel" } th { "From" } th { "To" } th.num { "Bytes" } th.num { "Writer blocked" } th.num { "Reader blocked" } } }
            tbody {
                @for e in edges {
                    tr {
                        td { (e.kind) } td { code { (e.channel) } }
                        td { a href=(links::process(host, e.from_pid, 0)) { (or_dash(&e.from_comm)) " (" (e.from_pid) ")" } }
                        td { a href=(links::process(host, e.to_pid, 0)) { (or_dash(&e.to_comm)) " (" (e.to_pid) ")" } }
                        td.num { (bytes(e.bytes)) } td.num { (duration(e.writer_blocked_ns)) } td.num { (duration(e.reader_blocked_ns)) }
                    }
                }
            }
        }
    }
}

fn loss_table(losses: &[LossRecord]) -> Markup {
    html! {
        table {
            thead { tr { th { "Kind" } th { "Reason" } th { "CPU" } th.num { "Lost" } th { "From" } th { "To" } } }
            tbody {
                @for l in losses {
                    tr.bad {
                        td { (l.kind) } td { (l.reason) } td { @if l.cpu < 0 { "-" } @else { (l.cpu) } }
                        td.num { (l.count) } td { (time(l.from_wall_ns)) } td { (time(l.to_wall_ns)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, argv: &[&str]) -> Process {
        Process { pid, host: "h".into(), argv: argv.iter().map(|a| a.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn a_tree_is_drawn_with_its_focus_marked_and_its_text_escaped() {
        let tree = ProcessTreeNode {
            process: Some(process(1, &["sh", "<b>"])),
            children: vec![ProcessTreeNode { process: Some(process(2, &["pytest"])), children: vec![] }],
        };
        let mut drawn = 0;
        let html = tree_node(&tree, 2, &mut drawn).into_string();
        assert_eq!(drawn, 2);
        assert!(html.contains("sh &lt;b&gt;"), "{html}");
        assert!(html.contains("<li class=\"focus\"><a href=\"/processes/h/2\">2</a>"), "{html}");
    }

    #[test]
    fn a_huge_tree_is_cut() {
        let leaf = |pid| ProcessTreeNode { process: Some(process(pid, &["x"])), children: vec![] };
        let tree = ProcessTreeNode { process: Some(process(1, &["root"])), children: (2..2000).map(leaf).collect() };
        let mut drawn = 0;
        tree_node(&tree, 1, &mut drawn);
        assert_eq!(drawn, TREE_NODES);
    }
}
