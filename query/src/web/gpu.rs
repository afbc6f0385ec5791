//! GPU jobs: the training jobs seen with their verdict counts, and a job's
//! page — the lateness heatmap (ranks × collective sequences, binned by the
//! store), the stragglers, the hang per communicator with its missing
//! ranks, mismatches and kernels per rank — each panel from the same query
//! API `plumb gpu` reads. The multi-rank timeline is its own page
//! ([`super::gpu_timeline`]).

use axum::{
    extract::{Path, Query, State},
    routing::get,
    Router,
};
use maud::{html, Markup};
use plumbline_proto::v1::{
    query_service_server::QueryService, GpuArrivalsRequest, GpuArrivalsResponse, GpuHangResponse, GpuJobView,
    GpuKernelView, GpuMismatchView, GpuRequest, GpuStragglerView,
};
use serde::Deserialize;
use tonic::Request;

use super::{
    error::PageError,
    gpu_heatmap::{self, Mark},
    gpu_timeline,
    layout::{badge, page, panel, scope_form, time},
    links::{self, gpu_job, with_query},
    params::{number, Scope},
    Web,
};
use crate::units::duration;

pub const PATH: &str = links::GPU_JOBS;
/// Jobs the list shows at most.
const JOBS: u32 = 500;
/// Rows of the straggler, mismatch and kernel tables.
const ROWS: u32 = 50;

pub fn routes() -> Router<Web> {
    Router::new()
        .route(PATH, get(jobs))
        .route("/gpu/{job}", get(job_page))
        .route("/gpu/{job}/timeline", get(gpu_timeline::timeline))
}

fn scope_pairs(scope: &Scope) -> Vec<(&'static str, String)> {
    links::scope_pairs(scope).map(|(k, v)| (k, v.to_string())).to_vec()
}

fn request(job: &str, scope: &Scope, limit: u32) -> Result<GpuRequest, PageError> {
    Ok(GpuRequest {
        job: job.to_string(),
        range: scope.range()?,
        host: scope.host.clone(),
        limit,
        ..Default::default()
    })
}

async fn jobs(State(web): State<Web>, Query(scope): Query<Scope>) -> Result<Markup, PageError> {
    let jobs = web.api.list_gpu_jobs(Request::new(request("", &scope, JOBS)?)).await?.into_inner().jobs;
    let body = html! {
        (scope_form(PATH, &scope, &[]))
        (panel(
            "Training jobs",
            jobs.is_empty().then_some(
                "No training job was seen in this range: no node agent reported NCCL calls keyed by a job \
                 (or the collective join has judged none of its collectives yet).",
            ),
            jobs_table(&jobs, &scope),
        ))
    };
    Ok(page("GPU jobs", PATH, &scope, body))
}

fn count(level: &str, n: u64) -> Markup {
    if n == 0 {
        html! { "0" }
    } else {
        badge(level, &n.to_string())
    }
}

fn jobs_table(jobs: &[GpuJobView], scope: &Scope) -> Markup {
    html! {
        table.gpu-jobs {
            thead { tr {
                th { "Job" } th.num { "Ranks" } th.num { "Hosts" } th.num { "Communicators" } th.num { "Collectives" }
                th.num { "Stragglers" } th.num { "Hangs" } th.num { "Mismatches" } th { "First" } th { "Last" }
            } }
            tbody {
                @for j in jobs {
                    tr class=[(j.hangs > 0 || j.mismatches > 0).then_some("bad")] data-job=(j.job)
                        data-stragglers=(j.stragglers) data-hangs=(j.hangs) data-mismatches=(j.mismatches) {
                        td { a href=(with_query(&gpu_job(&j.job), &scope_pairs(scope))) { (j.job) } }
                        td.num { (j.ranks) } td.num { (j.hosts) } td.num { (j.communicators) }
                        td.num { (j.collectives) }
                        td.num.stragglers { (count("warn", j.stragglers)) }
                        td.num.hangs { (count("bad", j.hangs)) }
                        td.num.mismatches { (count("bad", j.mismatches)) }
                        td { (time(j.first_wall_ns)) } td { (time(j.last_wall_ns)) }
                    }
                }
            }
        }
    }
}

/// `/gpu/<job>?…`: the scope, and the heatmap's window.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct JobParams {
    pub host: String,
    pub since: String,
    pub until: String,
    /// The communicator, as its hash in decimal; empty: the largest.
    pub comm: String,
    pub seq_from: String,
    pub seq_to: String,
    pub rank_from: String,
    pub rank_to: String,
    pub rows: String,
    pub cols: String,
}

impl JobParams {
    pub fn scope(&self) -> Scope {
        Scope { host: self.host.clone(), since: self.since.clone(), until: self.until.clone() }
    }

    fn arrivals(&self, job: &str) -> Result<GpuArrivalsRequest, PageError> {
        Ok(GpuArrivalsRequest {
            job: job.to_string(),
            communicator: number("comm", &self.comm)?.unwrap_or(0),
            seq_from: number("seq_from", &self.seq_from)?,
            seq_to: number("seq_to", &self.seq_to)?,
            rank_from: number("rank_from", &self.rank_from)?.unwrap_or(0),
            rank_to: number("rank_to", &self.rank_to)?.unwrap_or(0),
            rank_bins: number("rows", &self.rows)?.unwrap_or(0),
            seq_bins: number("cols", &self.cols)?.unwrap_or(0),
        })
    }

    /// This page's pairs, with `changes` applied.
    fn pairs(&self, changes: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut pairs = scope_pairs(&self.scope());
        for (k, v) in [
            ("comm", &self.comm),
            ("seq_from", &self.seq_from),
            ("seq_to", &self.seq_to),
            ("rank_from", &self.rank_from),
            ("rank_to", &self.rank_to),
            ("rows", &self.rows),
            ("cols", &self.cols),
        ] {
            pairs.push((k, v.clone()));
        }
        for (k, v) in changes {
            match pairs.iter_mut().find(|(name, _)| name == k) {
                Some(pair) => pair.1 = v.clone(),
                None => pairs.push((k, v.clone())),
            }
        }
        pairs
    }
}

async fn job_page(
    State(web): State<Web>,
    Path(job): Path<String>,
    Query(params): Query<JobParams>,
) -> Result<Markup, PageError> {
    let scope = params.scope();
    let api = &web.api;
    let arrivals_request = params.arrivals(&job)?;
    let (jobs, grid, stragglers, hangs, mismatches, kernels) = tokio::try_join!(
        api.list_gpu_jobs(Request::new(request(&job, &scope, 1)?)),
        api.gpu_arrivals(Request::new(arrivals_request)),
        api.gpu_stragglers(Request::new(request(&job, &scope, ROWS)?)),
        api.gpu_hang(Request::new(request(&job, &scope, ROWS)?)),
        api.gpu_mismatches(Request::new(request(&job, &scope, ROWS)?)),
        api.gpu_kernels(Request::new(request(&job, &scope, ROWS)?)),
    )?;
    let Some(summary) = jobs.into_inner().jobs.into_iter().next() else {
        return Err(tonic::Status::not_found(format!("no training job `{job}` was seen in this range")).into());
    };
    let grid = grid.into_inner();
    let stragglers = stragglers.into_inner().ranks;
    let hangs = hangs.into_inner();
    let mismatches = mismatches.into_inner().mismatches;
    let kernels = kernels.into_inner().kernels;

    let straggler_marks: Vec<Mark> = stragglers
        .iter()
        .take(5)
        .map(|s| Mark { rank: s.rank, label: format!("rank {} · straggler, {}× last", s.rank, s.times_last) })
        .collect();
    let missing_marks: Vec<Mark> = hangs
        .hangs
        .iter()
        .filter(|h| h.communicator == grid.communicator)
        .flat_map(|h| h.missing.iter())
        .filter(|m| m.global_rank >= 0)
        .map(|m| Mark {
            rank: m.global_rank,
            label: format!("rank {} missing ({} GPU {})", m.global_rank, m.host, m.device),
        })
        .collect();
    let timeline = gpu_timeline::default_link(&job, &scope, &stragglers, &hangs);

    let body = html! {
        (scope_form(&gpu_job(&job), &scope, &[]))
        section.summary {
            (tile("Ranks", summary.ranks.to_string(), "ok"))
            (tile("Hosts", summary.hosts.to_string(), "ok"))
            (tile("Collectives judged", summary.collectives.to_string(), "ok"))
            (tile("Stragglers", summary.stragglers.to_string(), if summary.stragglers > 0 { "warn" } else { "ok" }))
            (tile("Hangs", summary.hangs.to_string(), if summary.hangs > 0 { "bad" } else { "ok" }))
            (tile("Mismatches", summary.mismatches.to_string(), if summary.mismatches > 0 { "bad" } else { "ok" }))
        }
        p { a.timeline-link href=(timeline) { "Timeline of CUDA and NCCL calls of the stragglers' and missing ranks" } }
        (panel(
            "Lateness by rank and collective",
            grid.cells.is_empty().then_some(
                "No collective of this job has been judged yet, or this communicator has none in the window.",
            ),
            heatmap_panel(&job, &params, &grid, &straggler_marks, &missing_marks),
        ))
        (panel(
            "Stragglers",
            stragglers.is_empty().then_some(
                "No rank arrived last and late enough to count at any collective of this job in this range.",
            ),
            straggler_table(&job, &scope, &stragglers),
        ))
        (panel(
            "Hangs",
            (hangs.hangs.is_empty() && hangs.silent.is_empty()).then_some(
                "No collective of this job waits for ranks that never arrived, and no host of it went silent.",
            ),
            hang_tables(&job, &scope, &hangs),
        ))
        (panel(
            "Mismatches",
            mismatches.is_empty().then_some("The ranks of every collective agreed on op, element count and data type."),
            mismatch_table(&mismatches),
        ))
        (panel(
            "Kernels per rank",
            kernels.is_empty().then_some("No kernel launch of this job was seen in this range (or none is traced)."),
            kernel_table(&kernels),
        ))
    };
    Ok(page(&format!("GPU job {job}"), PATH, &scope, body))
}

fn tile(label: &str, value: String, level: &str) -> Markup {
    html! { div class={ "tile " (level) } { div.value { (value) } div.label { (label) } } }
}

fn heatmap_panel(
    job: &str,
    params: &JobParams,
    grid: &GpuArrivalsResponse,
    stragglers: &[Mark],
    missing: &[Mark],
) -> Markup {
    let path = gpu_job(job);
    let width = grid.seq_to.saturating_sub(grid.seq_from) + 1;
    let last = grid.communicators.iter().find(|c| c.communicator == grid.communicator).map_or(0, |c| c.last_seq);
    let earlier = (grid.seq_from > 0).then(|| {
        let to = grid.seq_from - 1;
        with_query(
            &path,
            &params.pairs(&[("seq_from", to.saturating_sub(width - 1).to_string()), ("seq_to", to.to_string())]),
        )
    });
    let later = (grid.seq_to < last).then(|| {
        let from = grid.seq_to + 1;
        with_query(&path, &params.pairs(&[("seq_from", from.to_string()), ("seq_to", (from + width - 1).to_string())]))
    });
    let hidden: Vec<(&str, String)> = scope_pairs(&params.scope());
    html! {
        p.legend {
            "Sequences " (grid.seq_from) "–" (grid.seq_to) " (" (grid.collectives) " judged) of communicator "
            code { (format!("{:#x}", grid.communicator)) } " (" (grid.nranks) " ranks); ranks " (grid.rank_from) "–"
            (grid.rank_to.saturating_sub(1)) ". Each cell: " (grid.ranks_per_row) " rank(s) × " (grid.seqs_per_column)
            " sequence(s), the latest arrival after each collective's median, hosts' clock offsets taken out."
            @if let Some(href) = earlier { " " a href=(href) { "← earlier" } }
            @if let Some(href) = later { " " a href=(href) { "later →" } }
        }
        form.scope.heatmap-window method="get" action=(path) {
            @for (name, value) in &hidden { @if !value.is_empty() { input type="hidden" name=(name) value=(value); } }
            @if grid.communicators.len() > 1 {
                label { "Communicator" select name="comm" {
                    @for c in &grid.communicators {
                        option value=(c.communicator) selected[c.communicator == grid.communicator] {
                            (format!("{:#x}", c.communicator)) " · " (c.nranks) " ranks"
                            @if !c.role.is_empty() { " · " (c.role) }
                        }
                    }
                } }
            }
            label { "Sequences from" input type="text" name="seq_from" value=(params.seq_from) placeholder=(grid.seq_from); }
            label { "to" input type="text" name="seq_to" value=(params.seq_to) placeholder=(grid.seq_to); }
            label { "Ranks from" input type="text" name="rank_from" value=(params.rank_from) placeholder=(grid.rank_from); }
            label { "to (excl.)" input type="text" name="rank_to" value=(params.rank_to) placeholder=(grid.rank_to); }
            button type="submit" { "Show" }
        }
        div.heatmap-box { (gpu_heatmap::heatmap(grid, stragglers, missing)) }
        (gpu_heatmap::legend(grid))
        @if !grid.offsets.is_empty() {
            @let widest = grid.offsets.iter().max_by_key(|o| o.offset_ns.unsigned_abs());
            @if let Some(o) = widest {
                p.legend { "Clock offsets taken out over " (grid.offsets.len()) " hosts; the largest: " (o.host) " "
                    (if o.offset_ns < 0 { "-" } else { "+" }) (duration(o.offset_ns.unsigned_abs())) "." }
            }
        }
    }
}

fn straggler_table(job: &str, scope: &Scope, stragglers: &[GpuStragglerView]) -> Markup {
    html! {
        table.stragglers {
            thead { tr {
                th.num { "Rank" } th { "Host" } th.num { "GPU" } th.num { "Times last" } th.num { "Of" }
                th.num { "Mean late" } th.num { "Max late" } th.num { "Victims" } th { "Communicator rank / role" }
                th { "Latest" }
            } }
            tbody {
                @for s in stragglers {
                    tr.warn data-rank=(s.rank) data-host=(s.host) data-device=(s.device) {
                        td.num { a href=(gpu_timeline::link_for(job, scope, &[s.rank], s.last_wall_ns)) { (s.rank) } }
                        td { (s.host) } td.num { (s.device) } td.num { (s.times_last) } td.num { (s.collectives) }
                        td.num { (duration(s.mean_late_ns)) } td.num { (duration(s.max_late_ns)) } td.num { (s.victims) }
                        td { (s.comm_rank) @if !s.role.is_empty() { " / " (s.role) } }
                        td { "seq " (s.last_seq) " · " (time(s.last_wall_ns)) }
                    }
                }
            }
        }
    }
}

fn hang_tables(job: &str, scope: &Scope, hangs: &GpuHangResponse) -> Markup {
    html! {
        @for h in &hangs.hangs {
            @let consequence = h.cause_communicator != 0 || h.cause_rank >= 0;
            section.hang data-communicator=(h.communicator) data-seq=(h.seq) {
                h3 {
                    @if consequence { (badge("warn", "consequence")) } @else { (badge("bad", "hang")) }
                    " communicator " code { (format!("{:#x}", h.communicator)) }
                    @if !h.role.is_empty() { " (" (h.role) ")" }
                    " stuck at sequence " (h.seq) " · " (h.op) " · " (h.arrived) " of " (h.nranks) " arrived · since "
                    (time(h.first_wall_ns))
                    @if h.later_hung > 0 { " · " (h.later_hung) " later sequences also hung" }
                }
                @if consequence {
                    p { "Follows from communicator " code { (format!("{:#x}", h.cause_communicator)) } " sequence "
                        (h.cause_seq) @if h.cause_rank >= 0 { ", caused by rank " (h.cause_rank) } "." }
                }
                @let ranks: Vec<i32> = h.missing.iter().map(|m| if m.global_rank >= 0 { m.global_rank } else { m.rank }).collect();
                table.missing {
                    thead { tr {
                        th.num { "Rank" } th.num { "Communicator rank" } th { "Host" } th.num { "GPU" }
                        th.num { "Last completed" } th { "State" }
                    } }
                    tbody {
                        @for m in &h.missing {
                            @let rank = if m.global_rank >= 0 { m.global_rank } else { m.rank };
                            tr.missing.bad data-rank=(rank) data-host=(m.host) data-device=(m.device) {
                                td.num { a href=(gpu_timeline::link_for(job, scope, &ranks, h.first_wall_ns)) { (rank) } }
                                td.num { (m.rank) }
                                td { @if m.host.is_empty() { "never seen" } @else { (m.host) } }
                                td.num { @if m.device < 0 { "-" } @else { (m.device) } }
                                td.num { @if m.last_completed_seq < 0 { "none" } @else { (m.last_completed_seq) } }
                                td {
                                    @if m.silent { (badge("warn", "host silent")) }
                                    @else if m.blocked { (badge("warn", "waits elsewhere")) }
                                    @else { (badge("bad", "never arrived")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !hangs.silent.is_empty() {
            h3 { "Hosts gone silent" }
            table {
                thead { tr { th { "Host" } th { "Last heard" } } }
                tbody { @for s in &hangs.silent { tr.warn { td { (s.host) } td { (time(s.last_heard_wall_ns)) } } } }
            }
        }
    }
}

fn mismatch_table(mismatches: &[GpuMismatchView]) -> Markup {
    html! {
        table.mismatches {
            thead { tr {
                th { "Communicator" } th.num { "Seq" } th { "Field" } th { "Most ranks" } th { "Differing ranks" }
                th { "First" }
            } }
            tbody {
                @for m in mismatches {
                    tr.bad {
                        td { code { (format!("{:#x}", m.communicator)) } @if !m.role.is_empty() { " (" (m.role) ")" } }
                        td.num { (m.seq) } td { (m.field) } td { (m.expected) }
                        td {
                            @for (i, rank) in m.ranks.iter().enumerate() {
                                @let global = m.global_ranks.get(i).copied().unwrap_or(-1);
                                span.differing data-rank=(if global >= 0 { global } else { *rank }) {
                                    "rank " (if global >= 0 { global } else { *rank }) ": "
                                    (m.values.get(i).map(String::as_str).unwrap_or("?"))
                                    @if let Some(host) = m.hosts.get(i).filter(|h| !h.is_empty()) {
                                        " (" (host) " GPU " (m.devices.get(i).copied().unwrap_or(-1)) ")"
                                    }
                                }
                                @if i + 1 < m.ranks.len() { "; " }
                            }
                        }
                        td { (time(m.first_wall_ns)) }
                    }
                }
            }
        }
    }
}

fn kernel_table(kernels: &[GpuKernelView]) -> Markup {
    html! {
        table.kernels {
            thead { tr {
                th.num { "Rank" } th { "Host" } th { "Kernel" } th.num { "Launches" } th.num { "Launch time" }
                th.num { "Failed" } th { "Grid" } th { "Block" }
            } }
            tbody {
                @for k in kernels {
                    tr class=[(k.failed > 0).then_some("bad")] {
                        td.num { (k.rank) } td { (k.host) } td { code { (k.kernel) } } td.num { (k.launches) }
                        td.num { (duration(k.total_ns)) } td.num { (k.failed) } td { (k.grid) } td { (k.block) }
                    }
                }
            }
        }
    }
}
