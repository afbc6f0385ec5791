//! `docs/metrics.md` is rendered from each daemon's declared series (the
//! tables in `node-agent/src/metrics.rs`, `aggregator/src/metrics.rs` and
//! `query/src/metrics.rs`), so it lists exactly what `/metrics` shows. This
//! test fails when the checked-in page differs from what the declarations
//! render; `PLUMBLINE_BLESS=1` rewrites it.

use std::path::Path;

use plumbline_metrics::{reference, Daemon, REGENERATE};

fn rendered() -> String {
    reference(&[
        Daemon {
            name: "Node agent",
            about: "`plumbline agent run`, `[metrics] listen` in agent.toml. The BPF programs' counters are read from \
                    their maps; the rest are the agent's own.",
            series: plumbline_node_agent::metrics::SERIES,
        },
        Daemon {
            name: "Aggregator",
            about: "`plumbline aggregator run`, `[metrics] listen` in aggregator.toml. \
                    Under `plumbline run` the source is the in-process channel: there are no rebalances and no \
                    consumer lag.",
            series: plumbline_aggregator::metrics::SERIES,
        },
        Daemon {
            name: "Query service",
            about: "`plumbline query run`, `[metrics] listen` in query.toml. Every RPC is counted by one layer, \
                    whether it succeeded or not.",
            series: plumbline_query::metrics::SERIES,
        },
    ])
}

#[test]
fn the_metrics_reference_lists_every_declared_series() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
    let rendered = rendered();
    if std::env::var_os("PLUMBLINE_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != rendered {
        let first_difference = checked_in
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(checked_in.lines().count().min(rendered.lines().count()));
        panic!(
            "docs/metrics.md differs from the series the daemons declare (first at line {}: checked in {:?}, \
             declared {:?}).\nRegenerate it with:\n    {REGENERATE}",
            first_difference + 1,
            checked_in.lines().nth(first_difference).unwrap_or("<end of file>"),
            rendered.lines().nth(first_difference).unwrap_or("<end of file>"),
        );
    }
}
