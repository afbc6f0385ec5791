//! Fleet health and loss: what is red first. The store's totals, the
//! kernel events lost by host and kind, dead letters, TLS stacks capture
//! cannot see into, and each node's enforcement tier.

use axum::{
    extract::{Query, State},
    routing::get,
    Router,
};
use maud::{html, Markup};
use plumbline_proto::v1::{
    query_service_server::QueryService, ActivityRequest, LossRecord, PipelineStatsRequest, PolicyView, TlsStackView,
};
use tonic::Request;

use super::{
    error::PageError,
    layout::{badge, page, panel, scope_form, time},
    params::Scope,
    Web,
};

pub const PATH: &str = "/fleet";

/// Rows each panel shows at most.
const ROWS: u32 = 500;

pub fn routes() -> Router<Web> {
    Router::new().route(PATH, get(fleet))
}

async fn fleet(State(web): State<Web>, Query(scope): Query<Scope>) -> Result<Markup, PageError> {
    let activity =
        ActivityRequest { host: scope.host.clone(), range: scope.range()?, limit: ROWS, ..Default::default() };
    let api = &web.api;
    let stats = api.pipeline_stats(Request::new(PipelineStatsRequest {})).await?.into_inner();
    let losses = api.list_loss_markers(Request::new(activity.clone())).await?.into_inner().losses;
    let stacks = api.list_tls_stacks(Request::new(activity.clone())).await?.into_inner().stacks;
    let nodes = api.list_policy(Request::new(activity)).await?.into_inner().nodes;
    let unhooked: Vec<&TlsStackView> = stacks.iter().filter(|s| !s.hooked).collect();

    let body = html! {
        (scope_form(PATH, &scope, &[]))
        section.summary {
            (tile("Store", html! { (stats.store) }, "ok"))
            (tile("Hosts", html! { (stats.hosts.len()) }, if stats.hosts.is_empty() { "warn" } else { "ok" }))
            (tile("Process events stored", html! { (stats.process_events) }, "ok"))
            (tile("Kernel events lost", html! { (stats.lost_events) }, if stats.lost_events > 0 { "bad" } else { "ok" }))
            (tile("Dead letters", html! { (stats.dead_letters) }, if stats.dead_letters > 0 { "bad" } else { "ok" }))
            (tile("TLS stacks not hooked", html! { (unhooked.len()) }, if unhooked.is_empty() { "ok" } else { "warn" }))
        }
        (panel(
            "Loss markers",
            losses.is_empty().then_some("No kernel event was lost in this range: every ring buffer kept up."),
            loss_table(&losses),
        ))
        (panel(
            "TLS stacks not hooked",
            unhooked.is_empty().then_some(if stacks.is_empty() {
                "No TLS library was seen loaded in this range."
            } else {
                "Every TLS library seen loaded is hooked: its plaintext is captured."
            }),
            tls_table(&unhooked),
        ))
        (panel(
            "Enforcement per node",
            nodes.is_empty().then_some("No node reported an enforcement policy: none is configured, or none started."),
            policy_table(&nodes),
        ))
    };
    Ok(page("Fleet health", PATH, &scope, body))
}

fn tile(label: &str, value: Markup, level: &str) -> Markup {
    html! { div class={ "tile " (level) } { div.value { (value) } div.label { (label) } } }
}

fn loss_table(losses: &[LossRecord]) -> Markup {
    html! {
        table {
            thead { tr { th { "Host" } th { "Kind" } th { "Reason" } th { "CPU" } th.num { "Lost" } th { "From" } th { "To" } } }
            tbody {
                @for l in losses {
                    tr.bad {
                        td { (l.host) } td { (l.kind) } td { (l.reason) }
                        td { @if l.cpu < 0 { "-" } @else { (l.cpu) } }
                        td.num { (l.count) } td { (time(l.from_wall_ns)) } td { (time(l.to_wall_ns)) }
                    }
                }
            }
        }
    }
}

fn tls_table(stacks: &[&TlsStackView]) -> Markup {
    html! {
        table {
            thead { tr { th { "Host" } th { "Process" } th { "Library" } th { "Path" } th { "Why not" } th { "Seen" } } }
            tbody {
                @for s in stacks {
                    tr.warn {
                        td { (s.host) } td { (s.comm) " (" (s.pid) ")" } td { (s.library) } td { (s.path) }
                        td { (s.reason) } td { (time(s.wall_ns)) }
                    }
                }
            }
        }
    }
}

fn policy_table(nodes: &[PolicyView]) -> Markup {
    html! {
        table {
            thead { tr { th { "Host" } th { "Tier" } th { "Policy" } th { "Roles" } th { "Said" } th { "Caveats" } } }
            tbody {
                @for n in nodes {
                    tr {
                        td { (n.host) }
                        td { (badge(if n.tier == "lsm" { "ok" } else { "warn" }, &n.tier)) }
                        td {
                            @if n.reload_error.is_empty() { (n.policy_file) }
                            @else { (badge("bad", "not in force")) " " (n.reload_error) }
                        }
                        td { (n.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (time(n.wall_ns)) }
                        td { (n.caveats.join("; ")) }
                    }
                }
            }
        }
    }
}
