//! Fleet health and loss: what is red first. Each host's last batch seen
//! (stale hosts first, in red), events stored and kernel events lost per
//! minute, the store's totals, loss markers, dead letters, clock skew, TLS
//! stacks capture cannot see into, and each node's enforcement tier. Every
//! panel with nothing to show says why.

use std::collections::{BTreeMap, BTreeSet};

use axum::{
    extract::{Query, State},
    routing::get,
    Router,
};
use maud::{html, Markup};
use plumbline_proto::v1::{
    query_service_server::QueryService, ActivityRequest, HostHealthResponse, HostView, LossRecord,
    PipelineStatsRequest, PolicyView, TlsStackView,
};
use tonic::Request;

use super::{
    assets,
    error::PageError,
    layout::{badge, page, panel, scope_form, time},
    params::Scope,
    Web,
};
use crate::units::duration;

pub const PATH: &str = "/fleet";

/// Rows each panel shows at most.
const ROWS: u32 = 500;
const MINUTE_NS: u64 = 60_000_000_000;
/// A chart's x axis has every minute of the range up to this many (a day);
/// past it, only the minutes with data.
const MOST_MINUTES: u64 = 1_440;
/// A host clock this far ahead of the service's is shown as skewed.
const AHEAD_NS: u64 = 1_000_000_000;

pub fn routes() -> Router<Web> {
    Router::new().route(PATH, get(fleet))
}

async fn fleet(State(web): State<Web>, Query(scope): Query<Scope>) -> Result<Markup, PageError> {
    let activity =
        ActivityRequest { host: scope.host.clone(), range: scope.range()?, limit: ROWS, ..Default::default() };
    let api = &web.api;
    let stats = api.pipeline_stats(Request::new(PipelineStatsRequest {})).await?.into_inner();
    let health = api.host_health(Request::new(activity.clone())).await?.into_inner();
    let losses = api.list_loss_markers(Request::new(activity.clone())).await?.into_inner().losses;
    let stacks = api.list_tls_stacks(Request::new(activity.clone())).await?.into_inner().stacks;
    let nodes = api.list_policy(Request::new(activity)).await?.into_inner().nodes;
    let unhooked: Vec<&TlsStackView> = stacks.iter().filter(|s| !s.hooked).collect();
    let stale = health.hosts.iter().filter(|h| h.stale).count();
    let ahead: Vec<&HostView> =
        health.hosts.iter().filter(|h| h.last_seen_wall_ns > health.now_wall_ns + AHEAD_NS).collect();
    let events =
        minute_series(&health, health.events_per_minute.iter().map(|m| (m.host.clone(), m.minute_wall_ns, m.events)));
    let lost = minute_series(
        &health,
        health.losses_per_minute.iter().map(|m| (format!("{} {}", m.host, m.kind), m.minute_wall_ns, m.lost)),
    );
    let span = if scope.since.is_empty() && scope.until.is_empty() { "the last hour" } else { "the range" };

    let body = html! {
        (scope_form(PATH, &scope, &[]))
        section.summary {
            (tile("Hosts", html! { (health.hosts.len()) }, if health.hosts.is_empty() { "warn" } else { "ok" }))
            (tile("Hosts silent", html! { (stale) }, if stale > 0 { "bad" } else { "ok" }))
            (tile("Kernel events lost", html! { (stats.lost_events) }, if stats.lost_events > 0 { "bad" } else { "ok" }))
            (tile("Dead letters", html! { (stats.dead_letters) }, if stats.dead_letters > 0 { "bad" } else { "ok" }))
            (tile("TLS stacks not hooked", html! { (unhooked.len()) }, if unhooked.is_empty() { "ok" } else { "warn" }))
            (tile("Process events stored", html! { (stats.process_events) }, "ok"))
            (tile("Store", html! { (stats.store) }, "ok"))
        }
        (panel(
            "Hosts",
            health.hosts.is_empty().then_some(
                "No host has sent anything the store kept up to the end of this range: no agent runs, \
                 or none sends to this pipeline.",
            ),
            host_table(&health),
        ))
        section.panel.charts {
            (chart_panel(
                &format!("Events stored per minute, by host ({span})"),
                "No event was stored in this range: the hosts were quiet, or their batches did not arrive.",
                &events,
            ))
            (chart_panel(
                "Kernel events lost per minute, by host and kind",
                "No kernel event was lost in this range: every ring buffer kept up.",
                &lost,
            ))
        }
        (panel(
            "Loss markers",
            losses.is_empty().then_some("No kernel event was lost in this range: every ring buffer kept up."),
            loss_table(&losses),
        ))
        (panel(
            "Dead letters",
            (stats.dead_letters == 0).then_some("No batch was set aside: every delivery decoded."),
            html! {
                p.bad {
                    (stats.dead_letters) " deliveries did not decode and were kept whole in the store's \
                     dead_letters table, with why; the aggregator logs each one."
                }
            },
        ))
        (panel(
            "Clock skew",
            ahead.is_empty().then_some(
                "No host's newest row is ahead of this service's clock. The store keeps no clock offsets: \
                 the aggregator learns each host's offset from the GPU collective join and exports it as \
                 plumbline_aggregator_clock_offset_seconds on its /metrics.",
            ),
            html! {
                table {
                    thead { tr { th { "Host" } th { "Newest row" } th.num { "Ahead of this service by at least" } } }
                    tbody {
                        @for h in &ahead {
                            tr.warn {
                                td { (h.host) } td { (time(h.last_seen_wall_ns)) }
                                td.num { (duration(h.last_seen_wall_ns - health.now_wall_ns)) }
                            }
                        }
                    }
                }
            },
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
        link rel="stylesheet" href=(assets::UPLOT_STYLE);
        script src=(assets::UPLOT) {}
        script src=(assets::CHARTS) {}
    };
    Ok(page("Fleet health", PATH, &scope, body))
}

fn tile(label: &str, value: Markup, level: &str) -> Markup {
    html! { div class={ "tile " (level) } { div.value { (value) } div.label { (label) } } }
}

fn host_table(health: &HostHealthResponse) -> Markup {
    html! {
        p.legend {
            "A host is silent when nothing was stored from it for "
            (health.stale_after_ns / 1_000_000_000) " s (an agent sends while its host does anything). \
             Last batch seen is the host's newest stored row, on its own clock."
        }
        table.hosts {
            thead {
                tr {
                    th { "Host" } th { "State" } th { "Last batch seen" } th.num { "Ago" }
                    th.num { "Events in range" } th.num { "Lost in range" }
                }
            }
            tbody {
                @for h in &health.hosts {
                    tr class=[h.stale.then_some("bad")] data-host=(h.host) {
                        td { (h.host) }
                        td { @if h.stale { (badge("bad", "silent")) } @else { (badge("ok", "sending")) } }
                        td { (time(h.last_seen_wall_ns)) }
                        td.num.ago { (duration(health.now_wall_ns.saturating_sub(h.last_seen_wall_ns))) }
                        td.num { (h.events) }
                        td.num { @if h.lost > 0 { (badge("bad", &h.lost.to_string())) } @else { "0" } }
                    }
                }
            }
        }
    }
}

/// Series by label over the range's minutes: (x in seconds, [(label, values)]).
type Series = (Vec<u64>, Vec<(String, Vec<u64>)>);

fn minute_series(health: &HostHealthResponse, points: impl Iterator<Item = (String, u64, u64)>) -> Series {
    let mut by_label: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    for (label, minute, value) in points {
        *by_label.entry(label).or_default().entry(minute).or_default() += value;
    }
    if by_label.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let range = health.range.unwrap_or_default();
    let (first, last) = (range.start_ns / MINUTE_NS, range.end_ns / MINUTE_NS);
    let minutes: Vec<u64> = if last >= first && last - first <= MOST_MINUTES {
        (first..=last).map(|m| m * MINUTE_NS).collect()
    } else {
        let seen: BTreeSet<u64> = by_label.values().flat_map(|m| m.keys().copied()).collect();
        seen.into_iter().collect()
    };
    let series = by_label
        .into_iter()
        .map(|(label, values)| (label, minutes.iter().map(|m| values.get(m).copied().unwrap_or(0)).collect()))
        .collect();
    (minutes.iter().map(|m| m / 1_000_000_000).collect(), series)
}

/// A uPlot chart: its data in an attribute maud escapes like any other
/// value, drawn by the page's constant script; the totals beside it say
/// the same without script.
fn chart_panel(title: &str, empty: &str, (x, series): &Series) -> Markup {
    let data = serde_json::json!({
        "x": x,
        "series": series.iter().map(|(label, values)| serde_json::json!({"label": label, "values": values})).collect::<Vec<_>>(),
    });
    html! {
        figure.timeseries {
            figcaption { (title) }
            @if series.is_empty() {
                p.empty { (empty) }
            } @else {
                div.timeseries data-series=(data.to_string()) {}
                p.legend {
                    @for (i, (label, values)) in series.iter().enumerate() {
                        @if i > 0 { " · " }
                        (label) ": " (values.iter().sum::<u64>())
                    }
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use plumbline_proto::v1::TimeRange;

    use super::*;

    #[test]
    fn minutes_without_events_are_zero_and_labels_are_escaped() {
        let health = HostHealthResponse {
            range: Some(TimeRange { start_ns: 10 * MINUTE_NS, end_ns: 12 * MINUTE_NS }),
            ..Default::default()
        };
        let (x, series) = minute_series(&health, [("<b>h</b>".to_string(), 11 * MINUTE_NS, 5)].into_iter());
        assert_eq!(x, [600, 660, 720]);
        assert_eq!(series, [("<b>h</b>".to_string(), vec![0, 5, 0])]);
        let html = chart_panel("t", "none", &(x, series)).into_string();
        assert!(!html.contains("<b>"), "{html}");
    }
}
