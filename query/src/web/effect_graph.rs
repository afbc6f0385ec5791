//! A session's intent→effect graph drawn on the server as SVG: the agent's
//! words on the left (LLM calls, then tool calls, results and verdicts),
//! what the kernel saw on the right (execs, files, connects, lookups,
//! policy decisions), every edge labelled with its relation and, on hover,
//! its reason. Each column runs down in time order, and a node sits no
//! higher than the node that led to it, so an effect lines up with its
//! tool call. Placement is a plain function of nodes and edges, tested here.

use std::collections::HashMap;

use maud::{html, Markup};
use plumbline_proto::v1::{SessionEdgeView, SessionNodeView};

use super::lanes::clip;

const COLUMNS: [(&str, f64); 3] = [("LLM calls", 10.0), ("Tool calls and results", 360.0), ("Kernel effects", 710.0)];
const BOX_W: f64 = 280.0;
const ROW: f64 = 22.0;
const TOP: f64 = 24.0;
pub const WIDTH: f64 = 1000.0;

/// The column a node kind is drawn in: 0 LLM calls, 1 the agent's other
/// words (tool calls, results, announcements, verdicts), 2 kernel effects.
pub fn column(kind: &str) -> usize {
    match kind {
        "llm_call" => 0,
        "exec" | "file" | "connect" | "lookup" | "enforcement" => 2,
        _ => 1,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub column: usize,
    pub row: usize,
}

/// Where each node goes: in its column, below the column's previous node
/// and no higher than the node its first incoming edge comes from (when
/// that one is placed already), in time order.
pub fn place(nodes: &[&SessionNodeView], edges: &[SessionEdgeView]) -> HashMap<u64, Place> {
    let mut order: Vec<&SessionNodeView> = nodes.to_vec();
    order.sort_by_key(|n| (n.wall_ns, n.node));
    let mut first_cause: HashMap<u64, u64> = HashMap::new();
    for e in edges {
        first_cause.entry(e.to_node).or_insert(e.from_node);
    }
    let mut next = [0usize; 3];
    let mut placed: HashMap<u64, Place> = HashMap::new();
    for n in order {
        let column = column(&n.kind);
        let cause_row = first_cause.get(&n.node).and_then(|c| placed.get(c)).map_or(0, |p| p.row);
        let row = next[column].max(cause_row);
        next[column] = row + 1;
        placed.insert(n.node, Place { column, row });
    }
    placed
}

/// The edge's path between two placed boxes: leaving the side that faces
/// the other box; an edge within a column bows out to the right.
pub fn path(from: Place, to: Place) -> (String, (f64, f64)) {
    let y = |p: Place| TOP + ROW * p.row as f64 + ROW / 2.0;
    let left = |p: Place| COLUMNS[p.column].1;
    let right = |p: Place| COLUMNS[p.column].1 + BOX_W;
    let (y1, y2) = (y(from), y(to));
    if from.column == to.column {
        let x = right(from);
        let bow = x + 30.0 + ((y2 - y1).abs() / 20.0).min(30.0);
        return (format!("M{x},{y1} C{bow},{y1} {bow},{y2} {x},{y2}"), (bow - 8.0, (y1 + y2) / 2.0));
    }
    let (x1, x2) = if from.column < to.column { (right(from), left(to)) } else { (left(from), right(to)) };
    let mid = (x1 + x2) / 2.0;
    (format!("M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"), (mid, (y1 + y2) / 2.0))
}

/// The graph of `nodes` (already cut to what is shown) and the edges
/// between them, each node linking to its detail.
pub fn svg(
    nodes: &[&SessionNodeView],
    edges: &[SessionEdgeView],
    page: &dyn Fn(&SessionNodeView) -> String,
    fragment: &dyn Fn(&SessionNodeView) -> String,
) -> Markup {
    let places = place(nodes, edges);
    let rows = places.values().map(|p| p.row + 1).max().unwrap_or(1);
    let height = TOP + ROW * rows as f64 + 6.0;
    let shown: Vec<(&SessionEdgeView, Place, Place)> =
        edges.iter().filter_map(|e| Some((e, *places.get(&e.from_node)?, *places.get(&e.to_node)?))).collect();
    html! {
        svg.graph viewBox={ "0 0 " (WIDTH) " " (height) } width="100%" role="img" aria-label="intent to effect graph" {
            @for (title, x) in COLUMNS {
                text.column x=(x) y="14" { (title) }
            }
            @for (e, from, to) in &shown {
                @let (d, (lx, ly)) = path(*from, *to);
                g class={ "edge r-" (e.relation) } {
                    title { (e.relation) ": " (e.reason) }
                    path d=(d) {}
                    // "followed" (an effect after a call, in its tree) is
                    // the common, weak link: drawn faint and unlabelled so
                    // the causes stand out; its relation is on hover.
                    @if e.relation != "followed" {
                        text.relation x=(lx) y=(ly - 2.0) text-anchor="middle" { (e.relation) }
                    }
                }
            }
            g hx-target="#detail" onclick="if (window.htmx) event.preventDefault()" {
                @for n in nodes {
                    @if let Some(p) = places.get(&n.node) {
                        @let (x, y) = (COLUMNS[p.column].1, TOP + ROW * p.row as f64);
                        a href=(page(n)) hx-get=(fragment(n)) {
                            g class={ "node k-" (n.kind) } data-node=(n.node) {
                                title { (n.kind) " #" (n.node) ": " (clip(&n.label, 300)) }
                                rect x=(x) y=(y + 2.0) width=(BOX_W) height=(ROW - 4.0) rx="3" {}
                                text x=(x + 5.0) y=(y + ROW * 0.68) { (clip(&n.label, 44)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The nodes a graph of at most `cap` shows: the first in time order.
/// Returns them and how many were left out.
pub fn cut(nodes: &[SessionNodeView], cap: usize) -> (Vec<&SessionNodeView>, usize) {
    let mut order: Vec<&SessionNodeView> = nodes.iter().collect();
    order.sort_by_key(|n| (n.wall_ns, n.node));
    let left_out = order.len().saturating_sub(cap);
    order.truncate(cap);
    (order, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(node: u64, kind: &str, wall_ns: u64) -> SessionNodeView {
        SessionNodeView { node, kind: kind.into(), wall_ns, label: format!("<{kind} {node}>"), ..Default::default() }
    }

    fn edge(from_node: u64, to_node: u64, relation: &str) -> SessionEdgeView {
        SessionEdgeView { from_node, to_node, relation: relation.into(), reason: "<why>".into(), ..Default::default() }
    }

    #[test]
    fn words_on_the_left_effects_on_the_right() {
        assert_eq!(column("llm_call"), 0);
        for kind in ["tool_call", "tool_result", "announcement", "verdict"] {
            assert_eq!(column(kind), 1, "{kind}");
        }
        for kind in ["exec", "file", "connect", "lookup", "enforcement"] {
            assert_eq!(column(kind), 2, "{kind}");
        }
    }

    #[test]
    fn an_effect_lines_up_with_the_tool_call_that_caused_it() {
        // Call 1 asks for two tools; the second tool's exec comes after
        // the first tool's two execs, yet no higher than its own tool call.
        let nodes = [
            node(1, "llm_call", 10),
            node(2, "tool_call", 11),
            node(3, "tool_call", 12),
            node(4, "exec", 13),
            node(5, "exec", 14),
            node(6, "exec", 15),
            node(7, "llm_call", 16),
        ];
        let edges = [edge(1, 2, "requested"), edge(1, 3, "requested"), edge(2, 4, "caused"), edge(3, 6, "caused")];
        let refs: Vec<&SessionNodeView> = nodes.iter().collect();
        let places = place(&refs, &edges);
        let at = |n| (places[&n].column, places[&n].row);
        assert_eq!(at(1), (0, 0));
        assert_eq!(at(2), (1, 0));
        assert_eq!(at(3), (1, 1));
        assert_eq!(at(4), (2, 0));
        assert_eq!(at(5), (2, 1));
        assert_eq!(at(6), (2, 2));
        assert_eq!(at(7), (0, 1));
        // Rows in a column never collide.
        let mut seen = std::collections::HashSet::new();
        assert!(places.values().all(|p| seen.insert((p.column, p.row))));
    }

    #[test]
    fn an_effect_whose_tool_call_sits_lower_waits_for_it() {
        let nodes = [node(1, "exec", 1), node(2, "tool_call", 2), node(3, "tool_call", 3), node(4, "exec", 4)];
        let refs: Vec<&SessionNodeView> = nodes.iter().collect();
        let places = place(&refs, &[edge(3, 4, "caused")]);
        assert_eq!(places[&3].row, 1);
        assert_eq!(places[&4].row, 1, "{places:?}");
    }

    #[test]
    fn edges_leave_the_side_facing_their_other_end() {
        let a = Place { column: 0, row: 0 };
        let b = Place { column: 2, row: 3 };
        let (forward, _) = path(a, b);
        assert!(forward.starts_with(&format!("M{},", COLUMNS[0].1 + BOX_W)), "{forward}");
        assert!(forward.ends_with(&format!(" {},{}", COLUMNS[2].1, TOP + ROW * 3.5)), "{forward}");
        let (back, _) = path(b, a);
        assert!(back.starts_with(&format!("M{},", COLUMNS[2].1)), "{back}");
        let (within, (x, _)) = path(Place { column: 1, row: 0 }, Place { column: 1, row: 2 });
        assert!(x > COLUMNS[1].1 + BOX_W, "bows out to the right: {within}");
    }

    #[test]
    fn a_graph_cut_keeps_the_earliest_and_counts_the_rest() {
        let nodes: Vec<SessionNodeView> = (1..=5).rev().map(|i| node(i, "exec", i * 10)).collect();
        let (kept, left_out) = cut(&nodes, 3);
        assert_eq!(kept.iter().map(|n| n.node).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(left_out, 2);
        assert_eq!(cut(&nodes, 10).1, 0);
    }

    #[test]
    fn the_drawing_labels_edges_and_escapes_captured_text() {
        let nodes = [node(1, "tool_call", 1), node(2, "exec", 2), node(3, "file", 3)];
        let refs: Vec<&SessionNodeView> = nodes.iter().collect();
        // An edge to a node not shown is not drawn.
        let edges = [edge(1, 2, "caused"), edge(1, 9, "caused")];
        let page = |n: &SessionNodeView| format!("/n/{}", n.node);
        let svg = svg(&refs, &edges, &page, &page).into_string();
        assert!(svg.contains("&lt;exec 2&gt;") && !svg.contains("<exec 2>"), "{svg}");
        assert!(svg.contains("caused: &lt;why&gt;"), "{svg}");
        assert_eq!(svg.matches("class=\"edge r-caused\"").count(), 1, "{svg}");
        assert!(svg.contains("href=\"/n/3\""), "{svg}");
    }
}
