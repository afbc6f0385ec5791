//! The job page's heatmap: ranks down, collective sequences across, each
//! cell the latest arrival of its (already binned, by the store) ranks and
//! sequences against each collective's median on a common clock. Drawn as
//! SVG on the server: cells in a nested SVG whose unit is one cell, runs of
//! equal colour in a row merged into one rect and on-time runs left to the
//! background, so a 256 × 400 grid weighs tens of kilobytes, not megabytes.
//! The stragglers' rows are outlined and marked on the rank axis, the
//! hang's missing ranks marked beside them.

use maud::{html, Markup};
use plumbline_proto::v1::{GpuArrivalCell, GpuArrivalsResponse};

use crate::units::duration;

/// Plot area, px.
const WIDTH: f64 = 960.0;
const MAX_HEIGHT: f64 = 768.0;
const LEFT: f64 = 96.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 40.0;
const RIGHT: f64 = 200.0;
/// Lateness at or under this, or under the scale's first step, is on time
/// (the background): the noise of healthy arrivals is not painted.
const ON_TIME_NS: i64 = 1_000_000;
/// The colour scale reaches its darkest at the grid's latest arrival, but
/// never below this (noise is not painted as a straggler).
const MIN_SCALE_NS: i64 = 5_000_000;
/// Colours of lateness, lightest first.
pub const LEVELS: u8 = 8;

/// What a cell is drawn as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shade {
    /// On time: left to the background.
    OnTime,
    /// No rank of the communicator, or no collective judged, in the cell.
    Empty,
    /// Some ranks never arrived.
    Missing,
    /// Late, 1..=LEVELS.
    Late(u8),
}

impl Shade {
    fn of(cell: &GpuArrivalCell, scale_ns: i64) -> Self {
        if cell.expected == 0 {
            Shade::Empty
        } else if cell.arrived < cell.expected {
            Shade::Missing
        } else if cell.late_ns <= ON_TIME_NS.max(scale_ns / i64::from(LEVELS)) {
            Shade::OnTime
        } else {
            let level = (cell.late_ns as f64 / scale_ns as f64 * f64::from(LEVELS)).ceil();
            Shade::Late(level.clamp(1.0, f64::from(LEVELS)) as u8)
        }
    }

    fn class(self) -> String {
        match self {
            Shade::OnTime => "h0".into(),
            Shade::Empty => "he".into(),
            Shade::Missing => "hm".into(),
            Shade::Late(level) => format!("h{level}"),
        }
    }
}

/// A rank to mark on the rank axis: a straggler or a missing rank.
pub struct Mark {
    pub rank: i32,
    pub label: String,
}

/// The colour scale's top: the grid's latest arrival, at least [`MIN_SCALE_NS`].
pub fn scale_ns(grid: &GpuArrivalsResponse) -> i64 {
    grid.cells.iter().filter(|c| c.arrived > 0).map(|c| c.late_ns).max().unwrap_or(0).max(MIN_SCALE_NS)
}

/// The row holding `rank`, if it is in the grid.
pub fn row_of(grid: &GpuArrivalsResponse, rank: i32) -> Option<u32> {
    let rank = u32::try_from(rank).ok()?;
    (grid.rank_from..grid.rank_to).contains(&rank).then(|| (rank - grid.rank_from) / grid.ranks_per_row.max(1))
}

fn rank_label(grid: &GpuArrivalsResponse, row: u32) -> String {
    let first = grid.rank_from + row * grid.ranks_per_row;
    let last = (first + grid.ranks_per_row).min(grid.rank_to) - 1;
    if first == last {
        format!("rank {first}")
    } else {
        format!("ranks {first}–{last}")
    }
}

fn seq_label(grid: &GpuArrivalsResponse, column: u32) -> String {
    let first = grid.seq_from + u64::from(column) * grid.seqs_per_column;
    let last = (first + grid.seqs_per_column - 1).min(grid.seq_to);
    if first == last {
        format!("seq {first}")
    } else {
        format!("seqs {first}–{last}")
    }
}

fn describe(grid: &GpuArrivalsResponse, row: u32, column: u32, cell: &GpuArrivalCell) -> String {
    let place = format!("{} · {}", rank_label(grid, row), seq_label(grid, column));
    if cell.arrived < cell.expected {
        return format!("{place}: {} of {} arrivals missing", cell.expected - cell.arrived, cell.expected);
    }
    let sign = if cell.late_ns < 0 { "-" } else { "+" };
    format!("{place}: latest {sign}{} after the median (rank {})", duration(cell.late_ns.unsigned_abs()), cell.rank)
}

/// The heatmap's SVG, with `stragglers` outlined and `missing` marked.
pub fn heatmap(grid: &GpuArrivalsResponse, stragglers: &[Mark], missing: &[Mark]) -> Markup {
    let (rows, columns) = (grid.rows.max(1), grid.columns.max(1));
    let row_px = (MAX_HEIGHT / f64::from(rows)).clamp(2.0, 16.0);
    let height = row_px * f64::from(rows);
    let column_px = WIDTH / f64::from(columns);
    let scale = scale_ns(grid);
    let y_of = |row: u32| TOP + (f64::from(row) + 0.5) * row_px;
    let rank_ticks: Vec<u32> = ticks(rows, 8);
    let seq_ticks: Vec<u32> = ticks(columns, 8);
    let total_w = LEFT + WIDTH + RIGHT;
    let total_h = TOP + height + BOTTOM;
    html! {
        svg.heatmap xmlns="http://www.w3.org/2000/svg" width=(total_w) height=(total_h)
            viewBox={ "0 0 " (total_w) " " (total_h) } role="img"
            aria-label={ "Lateness of " (grid.rank_to - grid.rank_from) " ranks at sequences " (grid.seq_from) " to " (grid.seq_to) }
            data-rows=(rows) data-columns=(columns) data-ranks-per-row=(grid.ranks_per_row)
            data-seqs-per-column=(grid.seqs_per_column) {
            svg.cells x=(LEFT) y=(TOP) width=(WIDTH) height=(height) viewBox={ "0 0 " (columns) " " (rows) }
                preserveAspectRatio="none" {
                rect.h0 x="0" y="0" width=(columns) height=(rows) {}
                @for row in 0..rows {
                    @for (start, end, shade) in runs(grid, row, scale) {
                        @let cell = worst(grid, row, start, end);
                        rect class=(shade.class()) x=(start) y=(row) width=(end - start) height="1" {
                            title { (describe(grid, row, cell.0, cell.1)) }
                        }
                    }
                }
                @for mark in stragglers {
                    @if let Some(row) = row_of(grid, mark.rank) {
                        rect.straggler-row x="0" y=(row) width=(columns) height="1" vector-effect="non-scaling-stroke"
                            data-straggler-rank=(mark.rank) {}
                    }
                }
            }
            // The rank axis, its ticks and the marked ranks.
            @for row in &rank_ticks {
                text.tick x=(LEFT - 6.0) y=(y_of(*row) + 4.0) text-anchor="end" {
                    (grid.rank_from + row * grid.ranks_per_row)
                }
            }
            text.axis x="12" y=(TOP + height / 2.0) transform={ "rotate(-90 12 " (TOP + height / 2.0) ")" }
                text-anchor="middle" { "rank" }
            @for mark in stragglers {
                @if let Some(row) = row_of(grid, mark.rank) {
                    g.straggler-mark data-rank=(mark.rank) {
                        path d={ "M" (LEFT + WIDTH + 2.0) " " (y_of(row)) " l8 -5 v10 z" } {}
                        text x=(LEFT + WIDTH + 12.0) y=(y_of(row) + 4.0) { (mark.label) }
                    }
                }
            }
            @for mark in missing {
                @if let Some(row) = row_of(grid, mark.rank) {
                    g.missing-mark data-rank=(mark.rank) {
                        path d={ "M" (LEFT - 40.0) " " (y_of(row)) " l-8 -5 v10 z" } {}
                        title { (mark.label) }
                    }
                }
            }
            // The sequence axis.
            @for column in &seq_ticks {
                text.tick x=(LEFT + (f64::from(*column) + 0.5) * column_px) y=(TOP + height + 14.0) text-anchor="middle" {
                    (grid.seq_from + u64::from(*column) * grid.seqs_per_column)
                }
            }
            text.axis x=(LEFT + WIDTH / 2.0) y=(TOP + height + 32.0) text-anchor="middle" { "collective sequence" }
        }
    }
}

/// The colour legend under the heatmap.
pub fn legend(grid: &GpuArrivalsResponse) -> Markup {
    let scale = scale_ns(grid) as f64;
    let step = scale / f64::from(LEVELS);
    html! {
        p.legend.heat-legend {
            span.swatch.h0 {} " on time (≤ " (duration((step as i64).max(ON_TIME_NS) as u64)) ") "
            @for level in 2..=LEVELS {
                span class={ "swatch h" (level) } title={ "up to " (duration((step * f64::from(level)) as u64)) } {}
            }
            " late, up to " (duration(scale as u64)) " after the median · "
            span.swatch.hm {} " ranks missing (hang) · "
            span.swatch.he {} " no rank or no collective"
        }
    }
}

/// Runs of equal shade in `row` that are not on time: (first column,
/// past-the-end column, shade).
fn runs(grid: &GpuArrivalsResponse, row: u32, scale: i64) -> Vec<(u32, u32, Shade)> {
    let columns = grid.columns;
    let base = (row * columns) as usize;
    let mut out: Vec<(u32, u32, Shade)> = Vec::new();
    for column in 0..columns {
        let Some(cell) = grid.cells.get(base + column as usize) else { break };
        let shade = Shade::of(cell, scale);
        if shade == Shade::OnTime {
            continue;
        }
        match out.last_mut() {
            Some((_, end, last)) if *end == column && *last == shade => *end += 1,
            _ => out.push((column, column + 1, shade)),
        }
    }
    out
}

/// The run's cell that says most: a missing arrival first, else the latest.
fn worst(grid: &GpuArrivalsResponse, row: u32, start: u32, end: u32) -> (u32, &GpuArrivalCell) {
    let base = (row * grid.columns) as usize;
    (start..end)
        .map(|c| (c, &grid.cells[base + c as usize]))
        .max_by_key(|(_, cell)| (cell.arrived < cell.expected, cell.late_ns))
        .expect("a run holds a cell")
}

/// About `n` evenly spread indices of `0..count`, the first always.
fn ticks(count: u32, n: u32) -> Vec<u32> {
    let step = count.div_ceil(n.max(1)).max(1);
    (0..count).step_by(step as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: u32, columns: u32) -> GpuArrivalsResponse {
        let on_time = GpuArrivalCell { late_ns: 100_000, rank: 0, arrived: 4, expected: 4 };
        GpuArrivalsResponse {
            rank_from: 0,
            rank_to: rows * 64,
            ranks_per_row: 64,
            seq_from: 0,
            seq_to: u64::from(columns) - 1,
            seqs_per_column: 1,
            rows,
            columns,
            cells: vec![on_time; (rows * columns) as usize],
            ..Default::default()
        }
    }

    #[test]
    fn a_straggler_s_row_is_outlined_and_marked_on_the_rank_axis_at_16384_ranks() {
        let mut g = grid(256, 400);
        let straggler = 5_461;
        let row = row_of(&g, straggler).unwrap();
        assert_eq!(row, 85);
        g.cells[(row * 400 + 17) as usize] =
            GpuArrivalCell { late_ns: 25_000_000, rank: straggler, arrived: 4, expected: 4 };
        let mark = Mark { rank: straggler, label: format!("rank {straggler}") };
        let svg = heatmap(&g, &[mark], &[]).into_string();
        assert!(svg.contains(&format!("data-straggler-rank=\"{straggler}\"")), "outlined");
        assert!(svg.contains(&format!("class=\"straggler-mark\" data-rank=\"{straggler}\"")), "marked");
        assert!(svg.contains("class=\"h8\" x=\"17\" y=\"85\""), "the darkest cell is the straggler's: {svg}");
        assert!(svg.len() < 20_000, "on-time cells are the background: {} bytes", svg.len());
    }

    #[test]
    fn equal_cells_in_a_row_are_one_rect_and_a_missing_arrival_has_its_own_colour() {
        let mut g = grid(2, 10);
        for c in 2..6 {
            g.cells[10 + c] = GpuArrivalCell { late_ns: 6_000_000, rank: 70, arrived: 4, expected: 4 };
        }
        g.cells[19] = GpuArrivalCell { late_ns: 0, rank: 66, arrived: 3, expected: 4 };
        let svg = heatmap(&g, &[], &[]).into_string();
        assert!(svg.contains("class=\"h8\" x=\"2\" y=\"1\" width=\"4\""), "{svg}");
        assert!(svg.contains("class=\"hm\" x=\"9\" y=\"1\" width=\"1\""), "{svg}");
        assert!(svg.contains("1 of 4 arrivals missing"), "{svg}");
    }
}
