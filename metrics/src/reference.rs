//! `docs/metrics.md`: every daemon's series as a table, rendered from the
//! same declarations as the exposition.

use crate::series::{Kind, Series};

/// One daemon's part of the reference.
pub struct Daemon<'a> {
    /// A heading: "Node agent".
    pub name: &'static str,
    /// A sentence on where its `/metrics` is served.
    pub about: &'static str,
    pub series: &'a [&'a Series],
}

/// The command that rewrites `docs/metrics.md` from the declarations.
pub const REGENERATE: &str = "PLUMBLINE_BLESS=1 cargo test -p plumbline --test metrics_reference";

/// The Markdown reference of `daemons`' series.
pub fn reference(daemons: &[Daemon<'_>]) -> String {
    let mut out = String::from("# Metrics\n\n");
    out.push_str(&format!(
        "<!-- Generated from the declarations in each daemon's `src/metrics.rs`; do not edit.\n     \
         Regenerate with: {REGENERATE} -->\n\n"
    ));
    out.push_str(
        "Every Plumbline daemon serves Prometheus text on `GET /metrics` (`[metrics] listen`). \
         `plumbline run` serves the node agent's, aggregator's and query service's series on one endpoint. \
         Counters count from the daemon's start; a histogram `NAME` is scraped as `NAME_bucket`, `NAME_sum` and \
         `NAME_count`.\n",
    );
    for daemon in daemons {
        out.push_str(&format!("\n## {}\n\n{}\n\n", daemon.name, daemon.about));
        out.push_str("| Series | Type | Labels | Help |\n|---|---|---|---|\n");
        for s in daemon.series {
            let labels = s.labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ");
            let mut help = s.help.replace('|', "\\|");
            if let Kind::Histogram { buckets } = s.kind {
                let bounds = buckets.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
                help.push_str(&format!(" (buckets: {bounds})"));
            }
            out.push_str(&format!("| `{}` | {} | {} | {} |\n", s.name, s.kind.name(), labels, help));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROWS: Series = Series::counter("p_rows_total", "Rows | columns").labels(&["table"]);

    #[test]
    fn each_series_is_a_row_with_its_labels_and_escaped_help() {
        let text = reference(&[Daemon { name: "Thing", about: "At :1.", series: &[&ROWS] }]);
        assert!(text.contains("## Thing\n\nAt :1.\n"), "{text}");
        assert!(text.contains("| `p_rows_total` | counter | `table` | Rows \\| columns |\n"), "{text}");
    }
}
