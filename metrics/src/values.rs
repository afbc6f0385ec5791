//! The values of a daemon's declared series, and their text exposition.
//! [`Metrics::new`] registers one family per declaration, once; emitting
//! an event updates a value in place, and a scrape only encodes.

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc,
};

use prometheus_client::{
    encoding::{text::encode, EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{
        family::{Family, MetricConstructor},
        histogram::Histogram,
        MetricType, TypedMetric,
    },
    registry::Registry,
};

use crate::series::{Kind, Series};

type Labels = Vec<(String, String)>;

/// A counter's value, counted in `per_unit`ths of the series' unit.
/// Cloning shares it.
#[derive(Debug, Clone)]
pub struct Total {
    count: Arc<AtomicU64>,
    per_unit: u64,
}

impl Default for Total {
    fn default() -> Self {
        Self { count: Arc::default(), per_unit: 1 }
    }
}

impl Total {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.count.fetch_add(n, Relaxed);
    }

    /// Brings the counter up to `total`, a count kept elsewhere (the BPF
    /// maps, the Kafka client) that only grows.
    pub fn catch_up(&self, total: u64) {
        self.count.fetch_max(total, Relaxed);
    }

    /// The count, in the series' fractions of its unit.
    pub fn get(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

impl TypedMetric for Total {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Total {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        match self.per_unit {
            1 => encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None),
            per_unit => encoder.encode_counter::<NoLabelSet, _, u64>(&(self.get() as f64 / per_unit as f64), None),
        }
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A gauge's value: whole numbers are shown as integers, others as
/// decimals. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Level(Arc<AtomicU64>);

impl Level {
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Relaxed);
    }

    /// Raises a high-water mark.
    pub fn raise(&self, value: f64) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |bits| (value > f64::from_bits(bits)).then(|| value.to_bits()));
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
}

impl TypedMetric for Level {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for Level {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let value = self.get();
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            encoder.encode_gauge(&(value as i64))
        } else {
            encoder.encode_gauge(&value)
        }
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Makes a series' counters in its declared fractions of a unit.
#[derive(Debug, Clone, Copy)]
struct PerUnit(u64);

impl MetricConstructor<Total> for PerUnit {
    fn new_metric(&self) -> Total {
        Total { count: Arc::default(), per_unit: self.0 }
    }
}

/// Makes a series' histograms with its declared buckets.
#[derive(Debug, Clone)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// A series' values: one, or one per label set (a family shows `{}` for
/// an empty label set, so an unlabelled series is registered bare).
enum Values<M, C = fn() -> M> {
    One(M),
    Many(Family<Labels, M, C>),
}

impl<M: Clone, C: MetricConstructor<M>> Values<M, C> {
    fn get(&self, labels: Labels) -> M {
        match self {
            Values::One(metric) => metric.clone(),
            Values::Many(family) => family.get_or_create(&labels).clone(),
        }
    }

    fn clear(&self) {
        if let Values::Many(family) = self {
            family.clear();
        }
    }
}

fn values<M, C>(registry: &mut Registry, series: &Series, one: M, constructor: C) -> Values<M, C>
where
    M: EncodeMetric + TypedMetric + Clone + std::fmt::Debug + Send + Sync + 'static,
    C: MetricConstructor<M> + Clone + Send + Sync + 'static,
{
    let (name, help) = (series.registered_name(), series.help);
    if series.labels.is_empty() {
        registry.register(name, help, one.clone());
        Values::One(one)
    } else {
        let family = Family::new_with_constructor(constructor);
        registry.register(name, help, family.clone());
        Values::Many(family)
    }
}

enum Slot {
    Counter(Values<Total, PerUnit>),
    Gauge(Values<Level>),
    Histogram(Values<Histogram, Buckets>),
}

/// The values of one daemon's declared series.
pub struct Metrics {
    series: Vec<(&'static Series, Slot)>,
    registry: Registry,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.series.iter().map(|(s, _)| s.name)).finish()
    }
}

impl Metrics {
    /// One family per declaration, shown in this order. A series without
    /// labels is shown from the start (at 0); one with labels once it has
    /// a value.
    pub fn new(declared: &[&'static Series]) -> Self {
        let mut registry = Registry::default();
        let mut series = Vec::with_capacity(declared.len());
        for &s in declared {
            let slot = match s.kind {
                Kind::Counter => {
                    let per_unit = PerUnit(s.counted_per_unit);
                    Slot::Counter(values(&mut registry, s, per_unit.new_metric(), per_unit))
                }
                Kind::Gauge => Slot::Gauge(values(&mut registry, s, Level::default(), Level::default as fn() -> _)),
                Kind::Histogram { buckets } => {
                    Slot::Histogram(values(&mut registry, s, Buckets(buckets).new_metric(), Buckets(buckets)))
                }
            };
            series.push((s, slot));
        }
        Self { series, registry }
    }

    fn slot(&self, series: &Series) -> &Slot {
        self.series
            .iter()
            .find(|(s, _)| s.name == series.name)
            .map(|(_, slot)| slot)
            .unwrap_or_else(|| panic!("{} is not among this daemon's declared series", series.name))
    }

    fn labels(series: &Series, values: &[&str]) -> Labels {
        assert_eq!(series.labels.len(), values.len(), "{} takes the labels {:?}", series.name, series.labels);
        series.labels.iter().zip(values).map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    /// The counter of `series` with these label values (in declared order).
    pub fn counter(&self, series: &Series, labels: &[&str]) -> Total {
        match self.slot(series) {
            Slot::Counter(values) => values.get(Self::labels(series, labels)),
            _ => panic!("{} is not a counter", series.name),
        }
    }

    /// The gauge of `series` with these label values (in declared order).
    pub fn gauge(&self, series: &Series, labels: &[&str]) -> Level {
        match self.slot(series) {
            Slot::Gauge(values) => values.get(Self::labels(series, labels)),
            _ => panic!("{} is not a gauge", series.name),
        }
    }

    /// The histogram of `series` with these label values (in declared order).
    pub fn histogram(&self, series: &Series, labels: &[&str]) -> Histogram {
        match self.slot(series) {
            Slot::Histogram(values) => values.get(Self::labels(series, labels)),
            _ => panic!("{} is not a histogram", series.name),
        }
    }

    /// Forgets every labelled value of `series`: for a gauge sampled whole
    /// from elsewhere, whose label sets come and go (partitions, hosts).
    pub fn clear(&self, series: &Series) {
        match self.slot(series) {
            Slot::Counter(values) => values.clear(),
            Slot::Gauge(values) => values.clear(),
            Slot::Histogram(values) => values.clear(),
        }
    }

    /// The text exposition, as of now.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("formatting into a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROWS: Series = Series::counter("p_rows_total", "Rows written");
    static LAG: Series = Series::gauge("p_lag_messages", "Behind the end").labels(&["topic", "partition"]);
    static LATENESS: Series = Series::gauge("p_lateness_seconds", "How late");
    static WRITE: Series = Series::histogram("p_write_duration_seconds", "How long", &[0.1, 1.0]);
    static CPU: Series = Series::counter("p_cpu_seconds_total", "CPU time").counted_per_unit(1000);

    #[test]
    fn declared_series_are_shown_in_order_with_their_values() {
        let metrics = Metrics::new(&[&ROWS, &LAG, &LATENESS, &WRITE]);
        metrics.counter(&ROWS, &[]).inc_by(3);
        metrics.gauge(&LAG, &["t", "0"]).set(12.0);
        metrics.gauge(&LATENESS, &[]).raise(1.5);
        metrics.gauge(&LATENESS, &[]).raise(0.5);
        metrics.histogram(&WRITE, &[]).observe(0.05);
        metrics.histogram(&WRITE, &[]).observe(0.5);
        let text = metrics.render();
        assert!(text.contains("# TYPE p_rows counter\np_rows_total 3\n"), "{text}");
        assert!(text.contains("p_lag_messages{topic=\"t\",partition=\"0\"} 12\n"), "{text}");
        assert!(text.contains("p_lateness_seconds 1.5\n"), "{text}");
        assert!(text.contains("p_write_duration_seconds_bucket{le=\"0.1\"} 1\n"), "{text}");
        assert!(text.contains("p_write_duration_seconds_count 2\n"), "{text}");
        assert!(text.find("p_rows_total").unwrap() < text.find("p_lag_messages").unwrap(), "{text}");
        metrics.clear(&LAG);
        assert!(!metrics.render().contains("p_lag_messages{"));
    }

    #[test]
    fn a_counter_catches_up_with_a_total_kept_elsewhere_and_never_goes_back() {
        let total = Total::default();
        total.catch_up(7);
        total.catch_up(5);
        assert_eq!(total.get(), 7);
    }

    #[test]
    fn a_counter_kept_in_milliseconds_is_shown_in_seconds() {
        let metrics = Metrics::new(&[&CPU]);
        metrics.counter(&CPU, &[]).catch_up(1_250);
        assert!(metrics.render().contains("p_cpu_seconds_total 1.25\n"), "{}", metrics.render());
    }
}
