//! Agent sessions: which agents ran, and for one session what it asked,
//! what it was told to do, and what the kernel saw it do. A timeline in
//! lanes per process, the intent→effect graph with each edge's relation and
//! reason, a node's prompt, argv, path or remote on a click, tokens and
//! calls per model, and the session's findings. Every page is bounded
//! (nodes, graph boxes, rows) and says how to see more.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::{
    extract::{Path, Query, State},
    http::{header::VARY, HeaderMap},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use maud::{html, Markup};
use plumbline_proto::v1::{
    query_service_server::QueryService, ActivityRequest, FindingView, SessionEdgeView, SessionNodeView, SessionRequest,
    SessionView, TimeRange,
};
use serde::Deserialize;
use tonic::Request;

use super::{
    effect_graph,
    error::PageError,
    lanes::{self, clip, Gap, Lane, NodeLinks},
    layout::{badge, page, panel, scope_form, time},
    links,
    params::Scope,
    Web,
};
use crate::units::or_dash;

pub const PATH: &str = "/sessions";
/// Sessions listed unless the page asks for more.
const SESSIONS: u32 = 100;
/// Timeline nodes drawn unless the page asks for more.
const NODES: u32 = 400;
/// Boxes of the graph unless the page asks for more.
const GRAPH: u32 = 150;
/// What a page may ask for at most.
const MOST_NODES: u32 = 5_000;
const FINDINGS: u32 = 50;

pub fn routes() -> Router<Web> {
    Router::new()
        .route(PATH, get(list))
        .route("/sessions/{session}", get(one))
        .route("/sessions/{session}/node/{node}", get(node))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListParams {
    agent: String,
    limit: u32,
}

async fn list(
    State(web): State<Web>,
    Query(scope): Query<Scope>,
    Query(params): Query<ListParams>,
) -> Result<Markup, PageError> {
    let limit = if params.limit == 0 { SESSIONS } else { params.limit.min(10_000) };
    let request = SessionRequest {
        agent: params.agent.clone(),
        host: scope.host.clone(),
        range: scope.range()?,
        limit: limit + 1,
        ..Default::default()
    };
    let mut sessions = web.api.list_sessions(Request::new(request)).await?.into_inner().sessions;
    let more = sessions.len() > limit as usize;
    sessions.truncate(limit as usize);
    let more_link = links::with_query(
        PATH,
        &[
            ("agent", &params.agent),
            ("host", &scope.host),
            ("since", &scope.since),
            ("until", &scope.until),
            ("limit", &(limit * 4).min(10_000).to_string()),
        ],
    );
    let empty = if params.agent.is_empty() {
        "No agent session in this range: no process made an LLM call that capture read (see LLM usage for \
         discovered agents and Fleet for TLS stacks not hooked)."
    } else {
        "This agent has no session in this range: widen the range or clear the agent."
    };
    let body = html! {
        (scope_form(PATH, &scope, &[("agent", &params.agent)]))
        form.scope method="get" action=(PATH) {
            @for (name, value) in links::scope_pairs(&scope) { input type="hidden" name=(name) value=(value); }
            label { "Agent" input type="text" name="agent" value=(params.agent) placeholder="every agent"; }
            button type="submit" { "Filter" }
            @if !params.agent.is_empty() {
                a href=(links::with_query(PATH, &links::scope_pairs(&scope))) { "every agent" }
            }
        }
        (panel("Sessions", sessions.is_empty().then_some(empty), html! {
            (sessions_table(&sessions, &scope))
            @if more {
                p.more { "Showing the latest " (limit) ". " a href=(more_link) { "Show more" } }
            }
        }))
    };
    Ok(page("Agent sessions", PATH, &scope, body))
}

fn sessions_table(sessions: &[SessionView], scope: &Scope) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Session" } th { "Agent" } th { "Host" } th { "Process" } th { "First" } th { "Last" }
                th.num { "LLM calls" } th.num { "Tool calls" } th.num { "Effects" } th.num { "Tokens" } th.num { "Findings" }
            } }
            tbody {
                @for s in sessions {
                    tr class=[(s.findings > 0).then_some("bad")] {
                        td { a href=(links::with_query(&links::session(&s.session), &links::scope_pairs(scope))) { code { (s.session) } } }
                        td {
                            @if s.agent.is_empty() { "-" }
                            @else { a href=(links::with_query(PATH, &[("agent", &s.agent), ("host", &scope.host), ("since", &scope.since), ("until", &scope.until)])) { (s.agent) } }
                        }
                        td { (s.host) }
                        td { a href=(links::process(&s.host, s.pid, 0)) { (s.comm) " (" (s.pid) ")" } }
                        td { (time(s.first_wall_ns)) } td { (time(s.last_wall_ns)) }
                        td.num { (s.llm_calls) } td.num { (s.tool_calls) } td.num { (s.effects) } td.num { (s.tokens) }
                        td.num {
                            @if s.findings > 0 { a href=(links::findings_of(&s.session)) { (badge("bad", &s.findings.to_string())) } }
                            @else { "0" }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SessionParams {
    /// Timeline nodes to draw.
    nodes: u32,
    /// Graph boxes to draw.
    graph: u32,
    /// A node whose detail the side panel shows.
    node: u64,
}

/// One session's nodes and edges, at most `limit` nodes; 404 when it has
/// none.
async fn load(
    web: &Web,
    id: &str,
    limit: u32,
) -> Result<(Option<SessionView>, Vec<SessionNodeView>, Vec<SessionEdgeView>), PageError> {
    let request = SessionRequest { session: id.to_string(), limit, ..Default::default() };
    let t = web.api.session_timeline(Request::new(request)).await?.into_inner();
    if t.session.is_none() && t.nodes.is_empty() {
        return Err(PageError::from(tonic::Status::not_found(format!("no session {id:?}: see the session list"))));
    }
    Ok((t.session, t.nodes, t.edges))
}

async fn one(
    State(web): State<Web>,
    Path(id): Path<String>,
    Query(scope): Query<Scope>,
    Query(params): Query<SessionParams>,
) -> Result<Markup, PageError> {
    let node_cap = if params.nodes == 0 { NODES } else { params.nodes.min(MOST_NODES) };
    let graph_cap = if params.graph == 0 { GRAPH } else { params.graph.min(MOST_NODES) };
    let (summary, mut nodes, edges) = load(&web, &id, node_cap.max(graph_cap) + 1).await?;
    let truncated = nodes.len() > node_cap.max(graph_cap) as usize;
    nodes.truncate(node_cap.max(graph_cap) as usize);
    let summary = summary.unwrap_or_default();
    let findings = web
        .api
        .list_findings(Request::new(SessionRequest { session: id.clone(), limit: FINDINGS, ..Default::default() }))
        .await?
        .into_inner()
        .findings;
    let (first, last) = (nodes.iter().map(|n| n.wall_ns).min().unwrap_or(0), nodes.iter().map(|n| n.wall_ns).max());
    let losses = web
        .api
        .list_loss_markers(Request::new(ActivityRequest {
            host: summary.host.clone(),
            range: Some(TimeRange { start_ns: first, end_ns: last.unwrap_or(0) }),
            limit: 200,
            ..Default::default()
        }))
        .await?
        .into_inner()
        .losses;
    let gaps: Vec<Gap> = losses
        .iter()
        .map(|l| Gap {
            from_ns: l.from_wall_ns,
            to_ns: l.to_wall_ns,
            what: format!("{} {} events lost ({}) on CPU {}", l.count, l.kind, l.reason, l.cpu),
        })
        .collect();

    let here = |extra: &[(&str, &str)]| {
        let mut pairs: Vec<(&str, &str)> = links::scope_pairs(&scope).to_vec();
        pairs.extend_from_slice(extra);
        links::with_query(&links::session(&id), &pairs)
    };
    let node_link = |n: &SessionNodeView| links::node(&id, n.node);
    let process_link = |l: &Lane| links::process(&l.host, l.pid, 0);
    let timeline_nodes = &nodes[..nodes.len().min(node_cap as usize)];
    let more_nodes = truncated || nodes.len() > timeline_nodes.len();
    let (graph_nodes, graph_left_out) = effect_graph::cut(&nodes, graph_cap as usize);
    let graph_left_out = graph_left_out + if truncated && nodes.len() <= graph_cap as usize { 1 } else { 0 };
    let shown: HashSet<u64> = graph_nodes.iter().map(|n| n.node).collect();
    let graph_edges: Vec<SessionEdgeView> =
        edges.iter().filter(|e| shown.contains(&e.from_node) && shown.contains(&e.to_node)).cloned().collect();
    let by_id: HashMap<u64, &SessionNodeView> = nodes.iter().map(|n| (n.node, n)).collect();
    let detail = match params.node {
        0 => None,
        n => Some(match by_id.get(&n) {
            Some(node) => node_detail(&id, node, &nodes, &edges),
            None => html! { p.empty { "Node " (n) " is not among the nodes loaded; ask for more nodes." } },
        }),
    };

    let body = html! {
        (scope_form(PATH, &scope, &[]))
        (summary_tiles(&summary, &findings))
        div.session-view {
            (panel("Timeline", timeline_nodes.is_empty().then_some("This session has no node yet: its first LLM call is still being joined."), html! {
                p.legend {
                    "One lane per process; circles are the agent's words (LLM calls, tool calls, results), squares what the kernel saw (execs, files, connects, policy decisions)."
                    @if gaps.is_empty() { " No kernel event was lost on this host while the session ran." }
                    @else { " Shaded: the kernel lost events then (" (losses.len()) " loss markers), so what is missing there is unknown." }
                }
                (lanes::svg(timeline_nodes, &gaps, &NodeLinks { page: &node_link, fragment: &node_link, process: &process_link }))
                @if more_nodes {
                    p.more { "Showing the first " (timeline_nodes.len()) " nodes. "
                        a href=(here(&[("nodes", &(node_cap * 4).min(MOST_NODES).to_string()), ("graph", &params.graph.to_string())])) { "Show more" } }
                }
            }))
            aside id="detail" class="panel" {
                @match detail {
                    Some(d) => (d),
                    None => { h2 { "Detail" } p.empty { "Click a mark or a box to see its prompt, argv, path or remote." } }
                }
            }
        }
        (panel("Intent → effect", graph_nodes.is_empty().then_some("No node to draw."), html! {
            (effect_graph::svg(&graph_nodes, &graph_edges, &node_link, &node_link))
            @if graph_left_out > 0 {
                p.more { (graph_left_out) " more nodes not drawn. "
                    a href=(here(&[("graph", &(graph_cap * 4).min(MOST_NODES).to_string()), ("nodes", &params.nodes.to_string())])) { "Draw more" } }
            }
        }))
        (panel("Edges", graph_edges.is_empty().then_some("No edge among the nodes drawn: nothing the kernel saw was linked to what the agent said."), edge_table(&id, &graph_edges, &by_id)))
        (panel("Tokens and calls per model", None, model_table(&nodes, truncated)))
        (panel("Findings", findings.is_empty().then_some("No finding: what this agent said and what the kernel saw agree."), findings_table(&id, &findings)))
    };
    Ok(page(&format!("Session {id}"), PATH, &scope, body))
}

fn summary_tiles(s: &SessionView, findings: &[FindingView]) -> Markup {
    let tile = |label: &str, value: Markup, level: &str| {
        html! { div class={ "tile " (level) } { div.value { (value) } div.label { (label) } } }
    };
    html! {
        section.summary {
            (tile("Agent", html! {
                @if s.agent.is_empty() { "unmapped" } @else { a href=(links::sessions_of(&s.host, &s.agent)) { (s.agent) } }
            }, if s.agent.is_empty() { "warn" } else { "ok" }))
            (tile(&format!("Process on {}", s.host), html! { a href=(links::process(&s.host, s.pid, 0)) { (s.comm) " (" (s.pid) ")" } }, "ok"))
            (tile("LLM calls", html! { (s.llm_calls) }, "ok"))
            (tile("Tool calls", html! { (s.tool_calls) }, "ok"))
            (tile("Kernel effects", html! { (s.effects) }, "ok"))
            (tile("Tokens", html! { (s.tokens) }, "ok"))
            (tile("Findings", html! { (s.findings.max(findings.len() as u64)) }, if findings.is_empty() { "ok" } else { "bad" }))
        }
        p.legend { "Ran from " (time(s.first_wall_ns)) " to " (time(s.last_wall_ns)) "." }
    }
}

fn edge_table(id: &str, edges: &[SessionEdgeView], nodes: &HashMap<u64, &SessionNodeView>) -> Markup {
    let cell = |n: u64| match nodes.get(&n) {
        Some(node) => html! { a href=(links::node(id, n)) { span.kind { (node.kind) } " " (clip(&node.label, 80)) } },
        None => html! { "#" (n) },
    };
    html! {
        table.edges {
            thead { tr { th { "From" } th { "Relation" } th { "To" } th { "Reason" } } }
            tbody {
                @for e in edges {
                    tr data-relation=(e.relation) {
                        td { (cell(e.from_node)) } td { b { (e.relation) } } td { (cell(e.to_node)) } td { (e.reason) }
                    }
                }
            }
        }
    }
}

/// Calls and tokens (in + out) per model, from the session's LLM call
/// nodes, whose label starts with the model.
pub fn per_model(nodes: &[SessionNodeView]) -> BTreeMap<String, (u64, u64)> {
    let mut models: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.kind == "llm_call") {
        let model = n.label.split(" → ").next().unwrap_or("").trim();
        let entry = models.entry(if model.is_empty() { "-".into() } else { model.to_string() }).or_default();
        entry.0 += 1;
        entry.1 += n.tokens;
    }
    models
}

fn model_table(nodes: &[SessionNodeView], truncated: bool) -> Markup {
    let models = per_model(nodes);
    if models.is_empty() {
        return html! { p.empty { "No LLM call among the nodes loaded." } };
    }
    html! {
        table {
            thead { tr { th { "Model" } th.num { "Calls" } th.num { "Tokens (in + out)" } } }
            tbody { @for (model, (calls, tokens)) in &models { tr { td { (model) } td.num { (calls) } td.num { (tokens) } } } }
        }
        p.legend {
            "Counts, not cost: capture records no price. Input, output and cached tokens per call are on the LLM usage page."
            @if truncated { " Of the nodes loaded only; the session has more." }
        }
    }
}

fn findings_table(id: &str, findings: &[FindingView]) -> Markup {
    html! {
        p { a href=(links::findings_of(id)) { "This session in the findings inbox" } }
        table {
            thead { tr { th { "When" } th { "Severity" } th { "Kind" } th { "Subject" } th { "Summary" } th { "Expected" } th { "Observed" } th { "Why" } } }
            tbody {
                @for f in findings {
                    tr class=[(f.severity == "high").then_some("bad")] {
                        td { (time(f.wall_ns)) }
                        td { (badge(if f.severity == "high" { "bad" } else { "warn" }, &f.severity)) }
                        td { (f.kind) } td { (f.subject) } td { (f.summary) }
                        td { (or_dash(&f.expected)) } td { (or_dash(&f.observed)) }
                        td {
                            a href=(links::why(&f.host, f.pid)) { "why" }
                            @if f.llm_call != 0 { " · " a href=(links::node(id, f.llm_call)) { "its LLM call" } }
                        }
                    }
                }
            }
        }
    }
}

/// What a node's detail is called, by kind.
fn detail_title(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "llm_call" => ("Model and tools asked for", "Prompt"),
        "tool_call" => ("Tool call", "Arguments"),
        "tool_result" => ("Tool result", "Result sent back"),
        "exec" => ("Command line (argv)", ""),
        "file" => ("Path", ""),
        "connect" => ("Remote", ""),
        "lookup" => ("DNS lookup", ""),
        "enforcement" => ("Policy decision", ""),
        "verdict" => ("Verdict", ""),
        _ => ("What", "Detail"),
    }
}

/// The chain of causes behind a node, nearest first: the edges reaching
/// it, a "caused" one before a "followed" one, reports and results sent
/// back left aside (as `plumb why` follows them).
pub fn causes(node: u64, edges: &[SessionEdgeView]) -> Vec<&SessionEdgeView> {
    crate::sessions::cause_chain(node, edges, |e| (e.from_node, e.to_node, &e.relation), |_| true)
}

fn node_detail(id: &str, n: &SessionNodeView, nodes: &[SessionNodeView], edges: &[SessionEdgeView]) -> Markup {
    let by_id: HashMap<u64, &SessionNodeView> = nodes.iter().map(|n| (n.node, n)).collect();
    let (what, more) = detail_title(&n.kind);
    let name = |k: u64| match by_id.get(&k) {
        Some(other) => {
            html! { a href=(links::node(id, k)) hx-get=(links::node(id, k)) hx-target="#detail" { span.kind { (other.kind) } " " (clip(&other.label, 80)) } }
        }
        None => html! { "#" (k) },
    };
    let incoming: Vec<&SessionEdgeView> = edges.iter().filter(|e| e.to_node == n.node).collect();
    let outgoing: Vec<&SessionEdgeView> = edges.iter().filter(|e| e.from_node == n.node).collect();
    let chain = causes(n.node, edges);
    html! {
        div.node-detail data-node=(n.node) {
            h2 { span.kind { (n.kind) } " #" (n.node) }
            dl {
                dt { "When" } dd { (time(n.wall_ns)) }
                dt { "Process" } dd { a href=(links::process(&n.host, n.pid, 0)) { (n.comm) " (" (n.pid) ")" } " on " (n.host) }
                @if n.tokens > 0 { dt { "Tokens" } dd { (n.tokens) } }
            }
            h3 { (what) }
            pre.label { (n.label) }
            @if !n.detail.is_empty() {
                h3 { (if more.is_empty() { "Detail" } else { more }) }
                pre.detail { (n.detail) }
            }
            @if !chain.is_empty() {
                h3 { "Why" }
                ol.why { @for e in &chain { li { (name(e.from_node)) " — " b { (e.relation) } ": " (e.reason) } } }
            }
            @if !incoming.is_empty() {
                h3 { "From" }
                ul { @for e in &incoming { li { (name(e.from_node)) " — " b { (e.relation) } ": " (e.reason) } } }
            }
            @if !outgoing.is_empty() {
                h3 { "Leads to" }
                ul { @for e in &outgoing { li { b { (e.relation) } " " (name(e.to_node)) ": " (e.reason) } } }
            }
            p { a href=(links::session(id)) { "The whole session" } }
        }
    }
}

/// A node's detail: the fragment htmx puts in the side panel, or, opened
/// as a plain link, a page of its own.
async fn node(
    State(web): State<Web>,
    Path((id, node_id)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (_, nodes, edges) = load(&web, &id, MOST_NODES * 2).await?;
    let Some(n) = nodes.iter().find(|n| n.node == node_id) else {
        return Err(PageError::from(tonic::Status::not_found(format!(
            "session {id:?} has no node {node_id} among its first {} nodes",
            MOST_NODES * 2
        ))));
    };
    let detail = node_detail(&id, n, &nodes, &edges);
    let markup = if headers.contains_key("hx-request") {
        detail
    } else {
        let body = html! { section.panel { (detail) } };
        page(&format!("Session {id}, node {node_id}"), PATH, &Scope::default(), body)
    };
    Ok(([(VARY, "HX-Request")], markup).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(node: u64, kind: &str, label: &str, tokens: u64) -> SessionNodeView {
        SessionNodeView { node, kind: kind.into(), label: label.into(), tokens, ..Default::default() }
    }

    fn edge(from_node: u64, to_node: u64, relation: &str) -> SessionEdgeView {
        SessionEdgeView { from_node, to_node, relation: relation.into(), reason: relation.into(), ..Default::default() }
    }

    #[test]
    fn calls_and_tokens_are_counted_per_model() {
        let nodes = [
            node(1, "llm_call", "gpt-4o → run_command", 100),
            node(2, "tool_call", "run_command {}", 0),
            node(3, "llm_call", "gpt-4o → done", 50),
            node(4, "llm_call", "claude → x", 7),
        ];
        let models = per_model(&nodes);
        assert_eq!(models["gpt-4o"], (2, 150));
        assert_eq!(models["claude"], (1, 7));
        assert_eq!(models.len(), 2);
    }

    #[test]
    fn why_follows_the_tool_call_before_what_the_effect_merely_followed() {
        let edges = [edge(1, 2, "requested"), edge(2, 3, "caused"), edge(1, 3, "followed"), edge(3, 4, "reported")];
        let chain: Vec<u64> = causes(3, &edges).iter().map(|e| e.from_node).collect();
        assert_eq!(chain, [2, 1]);
        assert!(causes(4, &edges).is_empty(), "a report is not a cause");
    }

    #[test]
    fn a_node_s_detail_shows_its_argv_escaped_with_its_causes() {
        let nodes = [
            node(1, "llm_call", "m → run", 1),
            node(2, "tool_call", "run {\"cmd\": \"pytest\"}", 0),
            node(3, "exec", "python -m pytest <script>", 0),
        ];
        let edges = [edge(1, 2, "requested"), edge(2, 3, "caused")];
        let html = node_detail("s1", &nodes[2], &nodes, &edges).into_string();
        assert!(html.contains("python -m pytest &lt;script&gt;"), "{html}");
        assert!(html.contains("Command line (argv)"), "{html}");
        assert!(html.contains("<b>caused</b>") && html.contains("/sessions/s1/node/2"), "{html}");
    }
}
