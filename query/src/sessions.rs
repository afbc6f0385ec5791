//! Answers of the session views: the request's filter, sessions with their
//! finding counts, a session's timeline and graph, findings, and the chain
//! of causes behind an effect (`why`).

use std::collections::{HashMap, HashSet};

use plumbline_proto::v1::{
    FindingView, SessionEdgeView, SessionNodeView, SessionRequest, SessionView, WhyChain, WhyRequest,
};
use plumbline_store::{EffectFilter, FindingRow, SessionEdgeRow, SessionFilter, SessionNodeRow, SessionRow, StoreRead};

use crate::error::QueryError;
use crate::request::{self, non_empty};

const DEFAULT_NODES: u32 = 1000;
use crate::request::MAX_LIMIT;
/// Steps followed back from an effect.
const MAX_CHAIN: usize = 16;

pub fn session_filter(request: &SessionRequest) -> Result<SessionFilter, QueryError> {
    if !request.kind.is_empty() && !plumbline_store::finding_kind::ALL.contains(&request.kind.as_str()) {
        return Err(QueryError::InvalidArgument(format!(
            "unknown finding kind {:?}; one of {}",
            request.kind,
            plumbline_store::finding_kind::ALL.join(", ")
        )));
    }
    Ok(SessionFilter {
        session: non_empty(&request.session),
        agent: non_empty(&request.agent),
        host: non_empty(&request.host),
        kind: non_empty(&request.kind),
        range: request::time_range(request.range)?,
        limit: request::limit(request.limit),
    })
}

/// Sessions, each with how many findings it has.
pub async fn sessions(store: &dyn StoreRead, filter: &SessionFilter) -> Result<Vec<SessionView>, QueryError> {
    let rows = store.list_sessions(filter).await?;
    let counts: HashMap<String, u64> =
        store.finding_counts(filter).await?.into_iter().map(|c| (c.session, c.findings)).collect();
    Ok(rows.into_iter().map(|r| session(r, &counts)).collect())
}

fn session(row: SessionRow, findings: &HashMap<String, u64>) -> SessionView {
    SessionView {
        findings: findings.get(&row.session).copied().unwrap_or(0),
        session: row.session,
        agent: row.agent,
        host: row.host,
        pid: row.pid,
        comm: row.comm,
        first_wall_ns: row.first_wall_ns,
        last_wall_ns: row.last_wall_ns,
        llm_calls: row.llm_calls,
        tool_calls: row.tool_calls,
        effects: row.effects,
        tokens: row.tokens,
    }
}

/// One session: its summary, nodes and edges.
pub async fn timeline(
    store: &dyn StoreRead,
    request: &SessionRequest,
) -> Result<(Option<SessionView>, Vec<SessionNodeView>, Vec<SessionEdgeView>), QueryError> {
    if request.session.is_empty() {
        return Err(QueryError::InvalidArgument("a session is required (see ListSessions)".into()));
    }
    let filter = SessionFilter { session: Some(request.session.clone()), limit: 1, ..Default::default() };
    let summary = sessions(store, &filter).await?.into_iter().next();
    let limit = match request.limit {
        0 => DEFAULT_NODES,
        n => n.min(MAX_LIMIT * 10),
    };
    let nodes = store.session_nodes(&request.session, limit).await?;
    let edges = store.session_edges(&request.session).await?;
    Ok((summary, nodes.into_iter().map(node).collect(), edges.into_iter().map(edge).collect()))
}

pub fn node(row: SessionNodeRow) -> SessionNodeView {
    SessionNodeView {
        node: row.node,
        kind: row.kind,
        label: row.label,
        detail: row.detail,
        wall_ns: row.wall_ns,
        pid: row.pid,
        comm: row.comm,
        tokens: row.tokens,
        session: row.session,
        host: row.host,
    }
}

pub fn edge(row: SessionEdgeRow) -> SessionEdgeView {
    SessionEdgeView {
        from_node: row.from_node,
        to_node: row.to_node,
        relation: row.relation,
        reason: row.reason,
        wall_ns: row.wall_ns,
    }
}

pub fn finding(row: FindingRow) -> FindingView {
    FindingView {
        session: row.session,
        agent: row.agent,
        host: row.host,
        pid: row.pid,
        kind: row.kind,
        severity: row.severity,
        subject: row.subject,
        wall_ns: row.wall_ns,
        summary: row.summary,
        llm_call: row.llm_call,
        expected: row.expected,
        observed: row.observed,
        evidence: row.evidence,
        tokens: row.tokens,
    }
}

/// Each effect the request names, with the nodes it follows from: the tool
/// call that named it and the LLM call that asked for it, or the call it
/// followed in its process tree.
pub async fn why(store: &dyn StoreRead, request: &WhyRequest) -> Result<Vec<WhyChain>, QueryError> {
    if request.pid == 0 && request.contains.is_empty() {
        return Err(QueryError::InvalidArgument("name an effect: a pid, or a path or address it contains".into()));
    }
    let filter = EffectFilter {
        host: (!request.host.is_empty()).then(|| request.host.clone()),
        pid: (request.pid != 0).then_some(request.pid),
        contains: (!request.contains.is_empty()).then(|| request.contains.clone()),
        // A pid alone asks why the process ran.
        processes_only: request.contains.is_empty(),
        limit: match request.limit {
            0 => 20,
            n => n.min(request::DEFAULT_LIMIT),
        },
    };
    let effects = store.effect_nodes(&filter).await?;
    let mut graphs: HashMap<String, (HashMap<u64, SessionNodeRow>, Vec<SessionEdgeRow>)> = HashMap::new();
    let mut chains = Vec::new();
    for effect in effects {
        if !graphs.contains_key(&effect.session) {
            let nodes = store.session_nodes(&effect.session, MAX_LIMIT * 10).await?;
            let edges = store.session_edges(&effect.session).await?;
            graphs.insert(effect.session.clone(), (nodes.into_iter().map(|n| (n.node, n)).collect(), edges));
        }
        let (nodes, edges) = &graphs[&effect.session];
        let chain =
            cause_chain(effect.node, edges, |e| (e.from_node, e.to_node, &e.relation), |n| nodes.contains_key(&n));
        let causes = chain.iter().map(|link| node(nodes[&link.from_node].clone())).collect();
        let links = chain.into_iter().map(|link| edge(link.clone())).collect();
        chains.push(WhyChain { agent: effect.agent.clone(), effect: Some(node(effect)), causes, edges: links });
    }
    Ok(chains)
}

/// The chain of causes behind `node`, nearest first: the edge reaching it
/// from a tool call that named it ("caused") before one it merely followed,
/// reports and results sent back left aside, each cause a node `known`
/// holds; at most [`MAX_CHAIN`] links, and never round a loop. `link` gives
/// an edge's (from, to, relation), so store rows and API views share it.
pub(crate) fn cause_chain<E>(
    node: u64,
    edges: &[E],
    link: impl Fn(&E) -> (u64, u64, &str),
    known: impl Fn(u64) -> bool,
) -> Vec<&E> {
    let mut chain = Vec::new();
    let mut seen = HashSet::from([node]);
    let mut current = node;
    while chain.len() < MAX_CHAIN {
        let Some(edge) = edges
            .iter()
            .filter(|e| {
                let (_, to, relation) = link(e);
                to == current && relation != "reported" && relation != "sent_in"
            })
            .min_by_key(|e| if link(e).2 == "caused" { 0 } else { 1 })
        else {
            break;
        };
        let from = link(edge).0;
        if !seen.insert(from) || !known(from) {
            break;
        }
        chain.push(edge);
        current = from;
    }
    chain
}
