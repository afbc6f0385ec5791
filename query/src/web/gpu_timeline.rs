//! A job's CUDA and NCCL calls on several ranks at once: one SVG lane per
//! rank on the common wall clock, each call a bar as long as it took, so a
//! rank that enters an all-reduce late, or never returns from one, stands
//! out against its peers. `/gpu/<job>/timeline?ranks=3,7,170&at=<wall
//! ns>&span_ms=2000`: the ranks (at most [`MAX_RANKS`]) and the window
//! centred on `at`; without them, the stragglers' and the hang's missing
//! ranks around the hang (or the latest straggling collective).

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use plumbline_proto::v1::{
    query_service_server::QueryService, GpuCallView, GpuHangResponse, GpuRequest, GpuStragglerView, TimeRange,
};
use serde::Deserialize;
use tonic::Request;

use super::{
    error::PageError,
    layout::{page, panel, time},
    links::{gpu_job, with_query, GPU_JOBS},
    params::{number, Scope},
    Web,
};
use crate::units::duration;

/// Lanes a timeline shows at most.
pub const MAX_RANKS: usize = 32;
/// Calls read per rank at most.
const CALLS_PER_RANK: u32 = 2_000;
const DEFAULT_SPAN_MS: u64 = 2_000;
const MS: u64 = 1_000_000;
/// Plot geometry, px.
const WIDTH: f64 = 960.0;
const LEFT: f64 = 200.0;
const LANE: f64 = 22.0;
const TOP: f64 = 22.0;

/// `?ranks=…&at=…&span_ms=…` and the scope.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct TimelineParams {
    host: String,
    since: String,
    until: String,
    ranks: String,
    at: String,
    span_ms: String,
}

/// The timeline of `ranks` around `at` (wall ns).
pub fn link_for(job: &str, scope: &Scope, ranks: &[i32], at: u64) -> String {
    let ranks: Vec<String> = ranks.iter().take(MAX_RANKS).map(|r| r.to_string()).collect();
    with_query(
        &format!("{}/timeline", gpu_job(job)),
        &[
            ("host", scope.host.clone()),
            ("since", scope.since.clone()),
            ("until", scope.until.clone()),
            ("ranks", ranks.join(",")),
            ("at", if at == 0 { String::new() } else { at.to_string() }),
        ],
    )
}

/// The ranks worth seeing side by side: the stragglers, the missing ranks
/// of the first hang and a neighbour of each, as the page would pick them.
fn default_ranks(stragglers: &[GpuStragglerView], hangs: &GpuHangResponse) -> Vec<i32> {
    let mut ranks: Vec<i32> = stragglers.iter().take(4).map(|s| s.rank).collect();
    if let Some(hang) = hangs.hangs.first() {
        ranks.extend(hang.missing.iter().take(8).map(|m| if m.global_rank >= 0 { m.global_rank } else { m.rank }));
    }
    let neighbours: Vec<i32> = ranks.iter().map(|r| if *r > 0 { r - 1 } else { r + 1 }).collect();
    ranks.extend(neighbours);
    if ranks.is_empty() {
        ranks.extend(0..4);
    }
    ranks.sort_unstable();
    ranks.dedup();
    ranks.truncate(MAX_RANKS);
    ranks
}

/// Where to look by default: the first hang, else the latest straggling
/// collective; 0: the job's end.
fn default_at(stragglers: &[GpuStragglerView], hangs: &GpuHangResponse) -> u64 {
    hangs
        .hangs
        .first()
        .map(|h| h.first_wall_ns)
        .or_else(|| stragglers.iter().map(|s| s.last_wall_ns).max())
        .unwrap_or(0)
}

/// The job page's link to the timeline it would choose.
pub fn default_link(job: &str, scope: &Scope, stragglers: &[GpuStragglerView], hangs: &GpuHangResponse) -> String {
    link_for(job, scope, &default_ranks(stragglers, hangs), default_at(stragglers, hangs))
}

fn parse_ranks(text: &str) -> Result<Vec<i32>, PageError> {
    let mut ranks = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let rank: i32 = part.parse().ok().filter(|r: &i32| *r >= 0).ok_or_else(|| {
            PageError::bad_request(format!("ranks: `{part}` is not a rank (a comma-separated list of numbers)"))
        })?;
        ranks.push(rank);
    }
    ranks.sort_unstable();
    ranks.dedup();
    if ranks.len() > MAX_RANKS {
        return Err(PageError::bad_request(format!("ranks: at most {MAX_RANKS} lanes, {} asked", ranks.len())));
    }
    Ok(ranks)
}

pub async fn timeline(
    State(web): State<Web>,
    Path(job): Path<String>,
    Query(params): Query<TimelineParams>,
) -> Result<Markup, PageError> {
    let scope = Scope { host: params.host.clone(), since: params.since.clone(), until: params.until.clone() };
    let api = &web.api;
    let base = GpuRequest { job: job.clone(), range: scope.range()?, limit: 20, ..Default::default() };
    let mut ranks = parse_ranks(&params.ranks)?;
    let mut at: u64 = number("at", &params.at)?.unwrap_or(0);
    let span_ns = number::<u64>("span_ms", &params.span_ms)?.unwrap_or(DEFAULT_SPAN_MS).clamp(1, 3_600_000) * MS;
    if ranks.is_empty() || at == 0 {
        let stragglers = api.gpu_stragglers(Request::new(base.clone())).await?.into_inner().ranks;
        let hangs = api.gpu_hang(Request::new(base.clone())).await?.into_inner();
        if ranks.is_empty() {
            ranks = default_ranks(&stragglers, &hangs);
        }
        if at == 0 {
            at = default_at(&stragglers, &hangs);
        }
        if at == 0 {
            let jobs = api.list_gpu_jobs(Request::new(base.clone())).await?.into_inner().jobs;
            at = jobs.first().map_or(0, |j| j.last_wall_ns.saturating_sub(span_ns / 2));
        }
    }
    let start = at.saturating_sub(span_ns / 2);
    let window = TimeRange { start_ns: start, end_ns: start + span_ns };
    let mut lanes = Vec::with_capacity(ranks.len());
    for rank in &ranks {
        let request = GpuRequest {
            job: job.clone(),
            rank: Some(*rank),
            range: Some(window),
            limit: CALLS_PER_RANK,
            host: scope.host.clone(),
            ..Default::default()
        };
        let calls = api.gpu_timeline(Request::new(request)).await?.into_inner().calls;
        lanes.push((*rank, calls));
    }
    let ranks_text: Vec<String> = ranks.iter().map(|r| r.to_string()).collect();
    let shift = |by: i64| {
        with_query(
            &format!("{}/timeline", gpu_job(&job)),
            &[
                ("host", scope.host.clone()),
                ("since", scope.since.clone()),
                ("until", scope.until.clone()),
                ("ranks", ranks_text.join(",")),
                ("at", at.saturating_add_signed(by).to_string()),
                ("span_ms", (span_ns / MS).to_string()),
            ],
        )
    };
    let calls: usize = lanes.iter().map(|(_, c)| c.len()).sum();
    let body = html! {
        p { a href=(with_query(&gpu_job(&job), &[("host", scope.host.clone()), ("since", scope.since.clone()), ("until", scope.until.clone())])) { "← job " (job) } " · " a href=(GPU_JOBS) { "all GPU jobs" } }
        form.scope method="get" action={ (gpu_job(&job)) "/timeline" } {
            @for (name, value) in [("host", &scope.host), ("since", &scope.since), ("until", &scope.until)] {
                @if !value.is_empty() { input type="hidden" name=(name) value=(value); }
            }
            label { "Ranks" input type="text" name="ranks" value=(ranks_text.join(",")) placeholder="3,7,170"; }
            label { "At (wall ns)" input type="text" name="at" value=(at); }
            label { "Span (ms)" input type="text" name="span_ms" value=(span_ns / MS); }
            button type="submit" { "Show" }
        }
        p.legend {
            (time(start)) " + " (duration(span_ns)) " · " (calls) " calls on " (lanes.len()) " ranks · "
            a href=(shift(-(span_ns as i64) / 2)) { "← earlier" } " · " a href=(shift(span_ns as i64 / 2)) { "later →" }
            " · " span.swatch.c-nccl {} " NCCL " span.swatch.c-cuda {} " CUDA " span.swatch.c-failed {} " failed"
        }
        (panel(
            "CUDA and NCCL calls per rank",
            (calls == 0).then_some("None of these ranks made a CUDA or NCCL call in this window: widen the span or move it."),
            lanes_svg(&lanes, start, span_ns),
        ))
    };
    Ok(page(&format!("GPU job {job}: timeline"), GPU_JOBS, &scope, body))
}

fn lanes_svg(lanes: &[(i32, Vec<GpuCallView>)], start: u64, span_ns: u64) -> Markup {
    let height = TOP + LANE * lanes.len() as f64 + 8.0;
    let x_of = |wall: u64| LEFT + (wall.saturating_sub(start) as f64 / span_ns as f64 * WIDTH).min(WIDTH);
    let ticks: Vec<u64> = (0..=5).map(|i| span_ns * i / 5).collect();
    html! {
        svg.gpu-lanes xmlns="http://www.w3.org/2000/svg" width=(LEFT + WIDTH + 8.0) height=(height)
            viewBox={ "0 0 " (LEFT + WIDTH + 8.0) " " (height) } {
            @for t in &ticks {
                line.tick x1=(LEFT + *t as f64 / span_ns as f64 * WIDTH) x2=(LEFT + *t as f64 / span_ns as f64 * WIDTH)
                    y1=(TOP - 4.0) y2=(height - 8.0) {}
                text.tick x=(LEFT + *t as f64 / span_ns as f64 * WIDTH) y=(TOP - 8.0) text-anchor="middle" {
                    "+" (duration(*t))
                }
            }
            @for (i, (rank, calls)) in lanes.iter().enumerate() {
                @let y = TOP + LANE * i as f64;
                @let place = calls.first().map(|c| format!(" · {} GPU {}", c.host, c.device)).unwrap_or_default();
                g.gpu-lane data-rank=(rank) data-calls=(calls.len()) {
                    rect class={ "lane" @if i % 2 == 1 { " odd" } } x="0" y=(y) width=(LEFT + WIDTH) height=(LANE) {}
                    text.lane x="4" y=(y + LANE / 2.0 + 4.0) { "rank " (rank) (place) }
                    @for c in calls {
                        @let x = x_of(c.wall_ns);
                        @let w = (x_of(c.wall_ns + c.duration_ns) - x).max(1.0);
                        @let class = if c.result != 0 { "call c-failed" } else if c.library == "nccl" { "call c-nccl" } else { "call c-cuda" };
                        rect class=(class) x=(format!("{x:.1}")) y=(y + 4.0) width=(format!("{w:.1}")) height=(LANE - 8.0) {
                            title {
                                (c.call)
                                @if !c.kernel.is_empty() { " " (c.kernel) }
                                @if c.library == "nccl" { " seq " (c.seq) " count " (c.count) }
                                " · " (duration(c.duration_ns)) " · result " (c.result) " · " (time(c.wall_ns).into_string())
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_a_comma_separated_list_and_bad_ones_are_refused() {
        assert_eq!(parse_ranks("170, 3,3,511").unwrap(), vec![3, 170, 511]);
        assert_eq!(parse_ranks("").unwrap(), Vec::<i32>::new());
        assert!(parse_ranks("3,x").is_err());
        assert!(parse_ranks("-1").is_err());
        let many: Vec<String> = (0..40).map(|r| r.to_string()).collect();
        assert!(parse_ranks(&many.join(",")).is_err());
    }

    #[test]
    fn one_lane_per_rank_with_a_bar_per_call() {
        let call = |wall_ns: u64, library: &str| GpuCallView {
            wall_ns,
            duration_ns: 10 * MS,
            library: library.into(),
            call: "ALL_REDUCE".into(),
            host: "gpu-01".into(),
            ..Default::default()
        };
        let lanes = vec![(3, vec![call(1_000 * MS, "nccl"), call(1_100 * MS, "cuda")]), (7, vec![])];
        let svg = lanes_svg(&lanes, 1_000 * MS, 1_000 * MS).into_string();
        assert!(svg.contains("class=\"gpu-lane\" data-rank=\"3\" data-calls=\"2\""), "{svg}");
        assert!(svg.contains("class=\"gpu-lane\" data-rank=\"7\" data-calls=\"0\""), "{svg}");
        assert_eq!(svg.matches("class=\"call c-nccl\"").count(), 1);
        assert_eq!(svg.matches("class=\"call c-cuda\"").count(), 1);
    }
}
