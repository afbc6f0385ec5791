//! What a daemon reports, declared once: each series' name (in base units,
//! counters ending `_total`), kind, help and label names. The exposition is
//! rendered from these declarations and `docs/metrics.md` is generated from
//! them, so neither can name a series the code does not have.

/// How a series' value behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Only goes up (until the daemon restarts).
    Counter,
    /// Goes up and down: a level as of now.
    Gauge,
    /// Observations counted into buckets with these upper bounds.
    Histogram { buckets: &'static [f64] },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram { .. } => "histogram",
        }
    }
}

/// One series a daemon reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Series {
    /// The name as scraped: `plumbline_<daemon>_...`, in base units.
    pub name: &'static str,
    pub kind: Kind,
    /// One sentence, no trailing period.
    pub help: &'static str,
    pub labels: &'static [&'static str],
    /// A counter counted in whole fractions of its base unit (1000 for a
    /// count of milliseconds shown in seconds); 1 for whole units.
    pub counted_per_unit: u64,
}

impl Series {
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Self { name, kind: Kind::Counter, help, labels: &[], counted_per_unit: 1 }
    }

    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self { name, kind: Kind::Gauge, help, labels: &[], counted_per_unit: 1 }
    }

    pub const fn histogram(name: &'static str, help: &'static str, buckets: &'static [f64]) -> Self {
        Self { name, kind: Kind::Histogram { buckets }, help, labels: &[], counted_per_unit: 1 }
    }

    pub const fn labels(self, labels: &'static [&'static str]) -> Self {
        Self { labels, ..self }
    }

    /// A counter kept in `per_unit`ths of its base unit (a count of
    /// milliseconds for a `_seconds_total`), shown in the base unit.
    pub const fn counted_per_unit(self, per_unit: u64) -> Self {
        Self { counted_per_unit: per_unit, ..self }
    }

    /// The name `prometheus_client` registers: it appends `_total` to a
    /// counter's samples itself.
    pub(crate) fn registered_name(&self) -> &'static str {
        match self.kind {
            Kind::Counter => self.name.strip_suffix("_total").unwrap_or(self.name),
            _ => self.name,
        }
    }
}

/// What is wrong with a daemon's declarations, if anything: every name
/// starts with `prefix`, is unique and well formed; counters end `_total`
/// and nothing else does; help is one sentence without a trailing period.
pub fn check(prefix: &str, series: &[&Series]) -> Result<(), String> {
    let mut problems = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let name = s.name;
        if !name.starts_with(prefix) {
            problems.push(format!("{name}: does not start with {prefix}"));
        }
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            problems.push(format!("{name}: only a-z, 0-9 and _ belong in a name"));
        }
        if series[..i].iter().any(|earlier| earlier.name == name) {
            problems.push(format!("{name}: declared twice"));
        }
        match (s.kind, name.ends_with("_total")) {
            (Kind::Counter, false) => problems.push(format!("{name}: a counter's name ends with _total")),
            (Kind::Gauge | Kind::Histogram { .. }, true) => {
                problems.push(format!("{name}: only a counter's name ends with _total"))
            }
            _ => {}
        }
        if s.help.is_empty() || s.help.ends_with('.') || s.help.contains('\n') {
            problems.push(format!("{name}: help is one sentence without a trailing period"));
        }
        if s.counted_per_unit == 0 || (s.counted_per_unit != 1 && s.kind != Kind::Counter) {
            problems.push(format!("{name}: only a counter is counted in fractions of its unit, and never in 0ths"));
        }
        if let Kind::Histogram { buckets } = s.kind {
            if buckets.is_empty() || buckets.windows(2).any(|w| w[0] >= w[1]) {
                problems.push(format!("{name}: buckets must be non-empty and increasing"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_without_total_and_a_gauge_with_it_are_refused() {
        let bad_counter = Series::counter("p_rows", "Rows");
        let bad_gauge = Series::gauge("p_open_total", "Open");
        let problems = check("p_", &[&bad_counter, &bad_gauge]).unwrap_err();
        assert!(problems.contains("p_rows: a counter's name ends with _total"), "{problems}");
        assert!(problems.contains("p_open_total: only a counter's name ends with _total"), "{problems}");
        let good = Series::counter("p_rows_total", "Rows").labels(&["table"]);
        assert_eq!(check("p_", &[&good]), Ok(()));
        assert_eq!(check("p_", &[&good, &good]).unwrap_err(), "p_rows_total: declared twice");
    }
}
