//! Why did this happen: an effect (a process by its pid, a file or an
//! address it names) and the chain of nodes it follows from — the tool call
//! that named it and the LLM call that asked for it — from the Why RPC.

use axum::{
    extract::{Query, State},
    routing::get,
    Router,
};
use maud::{html, Markup};
use plumbline_proto::v1::{query_service_server::QueryService, SessionNodeView, WhyChain, WhyRequest};
use serde::Deserialize;
use tonic::Request;

use super::{
    error::PageError,
    layout::{page, panel, time},
    params::Scope,
    Web,
};

pub const PATH: &str = "/why";

/// Effects answered at most.
const EFFECTS: u32 = 20;

pub fn routes() -> Router<Web> {
    Router::new().route(PATH, get(why))
}

/// The address of the answer for an effect: by `contains` (a path or an
/// address) when given, else by `pid`; on `host` when given.
pub fn link(host: &str, pid: u32, contains: &str) -> String {
    let pid = if pid != 0 { pid.to_string() } else { String::new() };
    let pairs: Vec<(&str, &str)> = [("host", host), ("pid", pid.as_str()), ("contains", contains)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    format!("{PATH}?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Params {
    /// Empty or a pid; kept as text so a wrong one is said, not a 400 page.
    pid: String,
    contains: String,
}

async fn why(
    State(web): State<Web>,
    Query(scope): Query<Scope>,
    Query(params): Query<Params>,
) -> Result<Markup, PageError> {
    let pid: u32 = match params.pid.trim() {
        "" => 0,
        p => p.parse().map_err(|_| PageError::bad_request(format!("pid: {p:?} is not a process id")))?,
    };
    let form = html! {
        form.scope method="get" action=(PATH) {
            label { "Host" input type="text" name="host" value=(scope.host) placeholder="every host"; }
            label { "Pid" input type="text" name="pid" value=(params.pid) placeholder="a process"; }
            label { "Path or address" input type="text" name="contains" value=(params.contains) placeholder="/etc/passwd, 10.0.0.7:443"; }
            button type="submit" { "Why" }
        }
    };
    if pid == 0 && params.contains.is_empty() {
        let body = html! {
            (form)
            (panel("Why", Some("Name an effect: a process by its pid, or a file path or address it touched."), html! {}))
        };
        return Ok(page("Why", PATH, &scope, body));
    }
    let request = WhyRequest { host: scope.host.clone(), pid, contains: params.contains.clone(), limit: EFFECTS };
    let chains = web.api.why(Request::new(request)).await?.into_inner().chains;
    let body = html! {
        (form)
        (panel(
            "Effects and what they follow from",
            chains.is_empty().then_some(
                "No recorded effect of an agent session matches: the effect was not captured in a session's process \
                 tree (a process outside every session, or an agent whose LLM calls were not seen), or it never happened.",
            ),
            html! { @for c in &chains { (chain(c)) } },
        ))
    };
    Ok(page("Why", PATH, &scope, body))
}

fn chain(c: &WhyChain) -> Markup {
    html! {
        article.why-chain {
            @if let Some(effect) = &c.effect {
                header {
                    (node(effect)) " "
                    "in session " a.session href=(super::links::session(&effect.session)) { (effect.session) }
                    @if !c.agent.is_empty() { " of agent " (c.agent) }
                }
            }
            @if c.causes.is_empty() {
                p.empty { "Nothing in its session leads to it: no tool call named it and no LLM call came before it." }
            } @else {
                ol.causes {
                    @for (cause, edge) in c.causes.iter().zip(&c.edges) {
                        li {
                            span.relation { (edge.relation) } " by " (node(cause))
                            @if !edge.reason.is_empty() { div.reason { (edge.reason) } }
                        }
                    }
                }
            }
        }
    }
}

fn node(n: &SessionNodeView) -> Markup {
    html! {
        span.node {
            span.kind { (n.kind) } " " strong { (n.label) }
            " (" (n.comm) " pid " (n.pid) ", " (time(n.wall_ns)) ")"
        }
        @if !n.detail.is_empty() { details { summary { "detail" } pre { (n.detail) } } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_names_only_what_it_is_given() {
        assert_eq!(link("h", 0, "/a b"), "/why?host=h&contains=%2Fa+b");
        assert_eq!(link("", 7, ""), "/why?pid=7");
    }
}
