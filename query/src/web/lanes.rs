//! A session's timeline drawn on the server as SVG: time on x, one lane
//! per process, a mark per node (LLM calls, tool calls and results, execs,
//! files, connects, policy decisions), and the spans where the kernel lost
//! events shaded across every lane, so a quiet stretch is not mistaken for
//! an idle agent. The layout is plain functions of the nodes, tested here.

use maud::{html, Markup};
use plumbline_proto::v1::SessionNodeView;

/// The drawing's width in SVG units (it scales to the panel).
pub const WIDTH: f64 = 1000.0;
/// Room on the left for each lane's process.
const LABELS: f64 = 190.0;
const LANE: f64 = 22.0;
/// Room at the top for the time axis.
const AXIS: f64 = 18.0;

/// A process of the session: the lane its nodes are drawn in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub host: String,
    pub pid: u32,
    pub comm: String,
}

/// One lane per process, in the order each process is first seen, so the
/// agent's own lane (its first LLM call) comes first.
pub fn lanes(nodes: &[SessionNodeView]) -> Vec<Lane> {
    let mut order: Vec<&SessionNodeView> = nodes.iter().collect();
    order.sort_by_key(|n| (n.wall_ns, n.node));
    let mut lanes: Vec<Lane> = Vec::new();
    for n in order {
        if !lanes.iter().any(|l| l.pid == n.pid && l.host == n.host) {
            lanes.push(Lane { host: n.host.clone(), pid: n.pid, comm: n.comm.clone() });
        }
    }
    lanes
}

/// Which lane a node is drawn in.
pub fn lane_of(lanes: &[Lane], node: &SessionNodeView) -> usize {
    lanes.iter().position(|l| l.pid == node.pid && l.host == node.host).unwrap_or(0)
}

/// Where a time falls on the x axis: `from_ns` at `left`, `to_ns` at
/// `left + width`; times outside are held at the edges.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    pub from_ns: u64,
    pub to_ns: u64,
    pub left: f64,
    pub width: f64,
}

impl Axis {
    /// An axis spanning `times` (a single instant gets a span of a second
    /// so its mark sits in the middle rather than at an edge).
    pub fn spanning(times: impl Iterator<Item = u64>, left: f64, width: f64) -> Self {
        let (mut from_ns, mut to_ns) = (u64::MAX, 0);
        for t in times.filter(|&t| t != 0) {
            from_ns = from_ns.min(t);
            to_ns = to_ns.max(t);
        }
        if from_ns > to_ns {
            (from_ns, to_ns) = (0, 1);
        }
        if from_ns == to_ns {
            from_ns = from_ns.saturating_sub(500_000_000);
            to_ns = to_ns.saturating_add(500_000_000);
        }
        Axis { from_ns, to_ns, left, width }
    }

    pub fn x(&self, ns: u64) -> f64 {
        let span = (self.to_ns - self.from_ns) as f64;
        let at = ns.clamp(self.from_ns, self.to_ns) - self.from_ns;
        self.left + self.width * at as f64 / span
    }
}

/// A span where events are known to be missing.
#[derive(Debug, Clone)]
pub struct Gap {
    pub from_ns: u64,
    pub to_ns: u64,
    /// What was lost, said on hover.
    pub what: String,
}

/// The gaps that overlap the axis, as x ranges at least 2 units wide (a
/// loss reported for an instant must still be seen).
pub fn gap_spans<'a>(axis: &Axis, gaps: &'a [Gap]) -> Vec<(f64, f64, &'a Gap)> {
    gaps.iter()
        .filter(|g| g.to_ns.max(g.from_ns) >= axis.from_ns && g.from_ns <= axis.to_ns)
        .map(|g| {
            let (a, b) = (axis.x(g.from_ns), axis.x(g.to_ns.max(g.from_ns)));
            (a, (b - a).max(2.0), g)
        })
        .collect()
}

/// Links of a node mark: the page that shows its detail, and the fragment
/// htmx loads into the side panel.
pub struct NodeLinks<'a> {
    pub page: &'a dyn Fn(&SessionNodeView) -> String,
    pub fragment: &'a dyn Fn(&SessionNodeView) -> String,
    pub process: &'a dyn Fn(&Lane) -> String,
}

/// The timeline as an SVG element.
pub fn svg(nodes: &[SessionNodeView], gaps: &[Gap], links: &NodeLinks) -> Markup {
    let lanes = lanes(nodes);
    let plot = WIDTH - LABELS - 10.0;
    let axis = Axis::spanning(nodes.iter().map(|n| n.wall_ns), LABELS, plot);
    let height = AXIS + LANE * lanes.len().max(1) as f64 + 4.0;
    let span = axis.to_ns - axis.from_ns;
    html! {
        svg.lanes viewBox={ "0 0 " (WIDTH) " " (height) } width="100%" role="img" aria-label="session timeline" {
            @for i in 0..=4u64 {
                @let x = axis.left + plot * i as f64 / 4.0;
                line.tick x1=(x) x2=(x) y1=(AXIS - 4.0) y2=(height) {}
                text.tick x=(x) y=(AXIS - 6.0) text-anchor=(if i == 4 { "end" } else if i == 0 { "start" } else { "middle" }) {
                    "+" @if i == 0 { "0" } @else { (crate::units::duration(span * i / 4)) }
                }
            }
            @for (i, lane) in lanes.iter().enumerate() {
                @let y = AXIS + LANE * i as f64;
                rect class={ "lane " @if i % 2 == 1 { "odd" } } x="0" y=(y) width=(WIDTH) height=(LANE) {}
                a href=((links.process)(lane)) {
                    text.lane x="4" y=(y + LANE * 0.68) { (clip(&lane.comm, 18)) " (" (lane.pid) ")" }
                }
            }
            @for (x, w, g) in gap_spans(&axis, gaps) {
                rect.gap x=(x) y=(AXIS) width=(w) height=(height - AXIS) { title { (g.what) } }
            }
            g hx-target="#detail" onclick="if (window.htmx) event.preventDefault()" {
                @for n in nodes {
                    @let (x, y) = (axis.x(n.wall_ns), AXIS + LANE * lane_of(&lanes, n) as f64 + LANE / 2.0);
                    a href=((links.page)(n)) hx-get=((links.fragment)(n)) {
                        @if is_effect(&n.kind) {
                            rect class={ "mark k-" (n.kind) } x=(x - 4.0) y=(y - 5.0) width="8" height="10" {
                                title { (n.kind) " #" (n.node) ": " (clip(&n.label, 200)) }
                            }
                        } @else {
                            circle class={ "mark k-" (n.kind) } cx=(x) cy=(y) r="5" {
                                title { (n.kind) " #" (n.node) ": " (clip(&n.label, 200)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Effects the kernel saw (squares) as opposed to the agent's words
/// (circles).
pub fn is_effect(kind: &str) -> bool {
    matches!(kind, "exec" | "file" | "connect" | "lookup" | "enforcement")
}

/// At most `chars` characters of one line.
pub fn clip(text: &str, chars: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None if line.len() < text.len() => format!("{line}…"),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(node: u64, pid: u32, wall_ns: u64, kind: &str) -> SessionNodeView {
        SessionNodeView {
            node,
            pid,
            wall_ns,
            kind: kind.into(),
            host: "h".into(),
            comm: format!("c{pid}"),
            label: format!("<n{node}>"),
            ..Default::default()
        }
    }

    #[test]
    fn a_lane_per_process_in_the_order_each_is_first_seen() {
        let nodes = [node(3, 20, 300, "exec"), node(1, 10, 100, "llm_call"), node(2, 10, 200, "tool_call")];
        let lanes = lanes(&nodes);
        assert_eq!(lanes.iter().map(|l| l.pid).collect::<Vec<_>>(), [10, 20]);
        assert_eq!(lanes[0].comm, "c10");
        assert_eq!(lane_of(&lanes, &nodes[0]), 1);
        assert_eq!(lane_of(&lanes, &nodes[2]), 0);
    }

    #[test]
    fn the_same_pid_on_two_hosts_is_two_lanes() {
        let mut other = node(2, 10, 200, "exec");
        other.host = "other".into();
        assert_eq!(lanes(&[node(1, 10, 100, "llm_call"), other]).len(), 2);
    }

    #[test]
    fn times_map_onto_the_axis_and_are_held_at_its_edges() {
        let axis = Axis::spanning([100, 300, 200].into_iter(), 10.0, 100.0);
        assert_eq!((axis.from_ns, axis.to_ns), (100, 300));
        assert_eq!(axis.x(100), 10.0);
        assert_eq!(axis.x(200), 60.0);
        assert_eq!(axis.x(300), 110.0);
        assert_eq!(axis.x(50), 10.0);
        assert_eq!(axis.x(900), 110.0);
    }

    #[test]
    fn a_single_instant_sits_in_the_middle() {
        let axis = Axis::spanning([5_000_000_000].into_iter(), 0.0, 100.0);
        assert_eq!(axis.x(5_000_000_000), 50.0);
        // No time at all still draws.
        let axis = Axis::spanning(std::iter::empty(), 0.0, 100.0);
        assert_eq!(axis.x(0), 0.0);
    }

    #[test]
    fn a_loss_is_drawn_where_it_overlaps_and_never_thinner_than_two_units() {
        let axis = Axis::spanning([1_000, 2_000].into_iter(), 0.0, 1000.0);
        let gap = |from_ns, to_ns| Gap { from_ns, to_ns, what: String::new() };
        let gaps = [gap(1_500, 1_500), gap(1_200, 1_400), gap(3_000, 4_000), gap(0, 1_100)];
        let spans: Vec<(f64, f64)> = gap_spans(&axis, &gaps).into_iter().map(|(x, w, _)| (x, w)).collect();
        assert_eq!(spans, [(500.0, 2.0), (200.0, 200.0), (0.0, 100.0)]);
    }

    #[test]
    fn captured_text_in_the_drawing_is_escaped_and_marks_link_to_their_detail() {
        let nodes = [node(1, 10, 100, "llm_call"), node(2, 11, 200, "exec")];
        let page = |n: &SessionNodeView| format!("/s/node/{}", n.node);
        let fragment = |n: &SessionNodeView| format!("/s/node/{}?f", n.node);
        let process = |l: &Lane| format!("/p/{}", l.pid);
        let links = NodeLinks { page: &page, fragment: &fragment, process: &process };
        let svg = svg(&nodes, &[Gap { from_ns: 150, to_ns: 160, what: "<lost>".into() }], &links).into_string();
        assert!(!svg.contains("<n1>") && svg.contains("&lt;n1&gt;"), "{svg}");
        assert!(svg.contains("&lt;lost&gt;") && svg.contains("class=\"gap\""), "{svg}");
        assert!(svg.contains("href=\"/s/node/2\"") && svg.contains("hx-get=\"/s/node/2?f\""), "{svg}");
        assert!(svg.contains("href=\"/p/11\""), "{svg}");
        assert!(svg.contains("<rect class=\"mark k-exec\""), "an effect is a square: {svg}");
        assert!(svg.contains("<circle class=\"mark k-llm_call\""), "an intent is a circle: {svg}");
    }

    #[test]
    fn clip_keeps_one_line_of_at_most_so_many_characters() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("ab\ncd", 5), "ab…");
        assert_eq!(clip("ab", 5), "ab");
    }
}
