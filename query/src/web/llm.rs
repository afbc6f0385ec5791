//! LLM usage: calls and tokens over time by agent and model (in, out,
//! cached), the calls themselves (TTFT, latency, status, errors, tools
//! called), and the agents: processes mapped by a rule, and the ones that
//! called an LLM without matching any (discovered, for review).
//!
//! Buckets: the store keeps tokens per hour (TokenUsage), which is the
//! right grain for a day or a week but draws a 15-minute incident as one
//! point. For a range of six hours or less the page counts the calls
//! themselves (ListLlmCalls, at most [`MOST_CALLS`]) into buckets of ten
//! seconds to fifteen minutes; the count is exact, it needs no new store
//! query on either backend, and the cap keeps it bounded. A longer or open
//! range, or one with more calls than the cap, is drawn from the hourly
//! rows, and the chart says which it is.

use std::collections::BTreeMap;

use axum::{
    extract::{Query, State},
    routing::get,
    Router,
};
use maud::{html, Markup};
use plumbline_proto::v1::{
    query_service_server::QueryService, ActivityRequest, AgentView, LlmCallView, TimeRange, TokenUsageRow,
};
use serde::Deserialize;
use tonic::Request;

use super::{
    assets,
    error::PageError,
    layout::{badge, page, panel, scope_form, time},
    links,
    params::Scope,
    Web,
};
use crate::units::{millis, or_dash};

pub const PATH: &str = "/llm";
const CALLS: u32 = 100;
/// Calls counted one by one for a short range's chart.
pub const MOST_CALLS: u32 = 10_000;
const AGENTS: u32 = 200;
const HOUR_NS: u64 = 3_600_000_000_000;
/// Ranges this short are bucketed from the calls themselves.
const SHORT_RANGE_NS: u64 = 6 * HOUR_NS;

pub fn routes() -> Router<Web> {
    Router::new().route(PATH, get(usage))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Params {
    agent: String,
    model: String,
    limit: u32,
}

impl Params {
    /// What the API's `contains` is given (it looks at agent, model and
    /// provider); the exact filter is applied here.
    fn contains(&self) -> String {
        if self.model.is_empty() {
            self.agent.clone()
        } else {
            self.model.clone()
        }
    }

    fn keeps(&self, agent: &str, model: &str) -> bool {
        (self.agent.is_empty() || self.agent == agent) && (self.model.is_empty() || self.model == model)
    }
}

/// Calls and tokens of one agent and model at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub wall_ns: u64,
    pub key: String,
    pub calls: u64,
    pub input: u64,
    pub output: u64,
    pub cached: u64,
}

fn key(agent: &str, model: &str) -> String {
    format!("{} / {}", if agent.is_empty() { "(discovered)" } else { agent }, or_dash(model))
}

/// The bucket a range of `span_ns` is drawn in: the smallest of 10 s, 1 m,
/// 5 m and 15 m that gives at most 120 points; `None` past six hours
/// (hourly rows then).
pub fn bucket_for(span_ns: u64) -> Option<u64> {
    if span_ns == 0 || span_ns > SHORT_RANGE_NS {
        return None;
    }
    [10u64, 60, 300, 900].into_iter().map(|s| s * 1_000_000_000).find(|b| span_ns / b <= 120).or(Some(900_000_000_000))
}

/// Samples summed per bucket of `bucket_ns` from `from_ns` to `to_ns`,
/// empty buckets as zeros: x (seconds) and, per key, the sums.
pub fn buckets(
    samples: &[Sample],
    bucket_ns: u64,
    from_ns: u64,
    to_ns: u64,
) -> (Vec<u64>, BTreeMap<String, Vec<Sample>>) {
    let first = from_ns / bucket_ns;
    let last = (to_ns.max(from_ns) / bucket_ns).max(first);
    let n = (last - first + 1).min(10_000) as usize;
    let x: Vec<u64> = (0..n as u64).map(|i| (first + i) * bucket_ns / 1_000_000_000).collect();
    let mut by_key: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        let i = (s.wall_ns / bucket_ns).saturating_sub(first) as usize;
        if s.wall_ns < first * bucket_ns || i >= n {
            continue;
        }
        let row = by_key.entry(s.key.clone()).or_insert_with(|| {
            (0..n)
                .map(|j| Sample {
                    wall_ns: (first + j as u64) * bucket_ns,
                    key: s.key.clone(),
                    calls: 0,
                    input: 0,
                    output: 0,
                    cached: 0,
                })
                .collect()
        });
        row[i].calls += s.calls;
        row[i].input += s.input;
        row[i].output += s.output;
        row[i].cached += s.cached;
    }
    (x, by_key)
}

/// A uPlot chart: its data in an attribute (escaped like any other), drawn
/// by the page's script; the table beside it says the same without script.
fn chart(title: &str, x: &[u64], series: &[(String, Vec<u64>)]) -> Markup {
    let data = serde_json::json!({
        "x": x,
        "series": series.iter().map(|(label, values)| serde_json::json!({"label": label, "values": values})).collect::<Vec<_>>(),
    });
    html! {
        figure.timeseries {
            figcaption { (title) }
            div.timeseries data-series=(data.to_string()) {}
        }
    }
}

async fn usage(
    State(web): State<Web>,
    Query(scope): Query<Scope>,
    Query(params): Query<Params>,
) -> Result<Markup, PageError> {
    let range = scope.range()?;
    let limit = if params.limit == 0 { CALLS } else { params.limit.min(MOST_CALLS) };
    let activity = |limit: u32, contains: String| ActivityRequest {
        host: scope.host.clone(),
        range,
        contains,
        limit,
        ..Default::default()
    };
    let api = &web.api;
    let mut calls = api.list_llm_calls(Request::new(activity(limit + 1, params.contains()))).await?.into_inner().calls;
    calls.retain(|c| params.keeps(&c.agent, &c.model));
    let more = calls.len() > limit as usize;
    calls.truncate(limit as usize);
    let mut agents = api.list_agents(Request::new(activity(AGENTS, params.agent.clone()))).await?.into_inner().agents;
    if !params.agent.is_empty() {
        agents.retain(|a| a.agent == params.agent || a.agent.is_empty());
    }

    // The chart: calls bucketed here for a short range, else hourly rows.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let (from_ns, to_ns) = match range {
        Some(TimeRange { start_ns, end_ns }) => (start_ns, if end_ns == 0 { now } else { end_ns }),
        None => (0, now),
    };
    let mut grain = None;
    let mut samples = Vec::new();
    if let Some(bucket) = (from_ns != 0).then(|| bucket_for(to_ns.saturating_sub(from_ns))).flatten() {
        let all =
            api.list_llm_calls(Request::new(activity(MOST_CALLS + 1, params.contains()))).await?.into_inner().calls;
        if all.len() <= MOST_CALLS as usize {
            samples = all.iter().filter(|c| params.keeps(&c.agent, &c.model)).map(call_sample).collect();
            grain = Some(bucket);
        }
    }
    let grain_note;
    let (x, by_key) = if let Some(bucket) = grain {
        grain_note = match bucket / 1_000_000_000 {
            s if s < 60 => format!("per {s} s (counted from the calls)"),
            s => format!("per {} min (counted from the calls)", s / 60),
        };
        buckets(&samples, bucket, from_ns, to_ns)
    } else {
        let rows = api.token_usage(Request::new(activity(MOST_CALLS, params.contains()))).await?.into_inner().rows;
        samples = rows.iter().filter(|r| params.keeps(&r.agent, &r.model)).map(hour_sample).collect();
        grain_note = "per hour".into();
        let first = samples.iter().map(|s| s.wall_ns).min().unwrap_or(from_ns.max(now - HOUR_NS));
        let last = samples.iter().map(|s| s.wall_ns).max().unwrap_or(to_ns);
        buckets(&samples, HOUR_NS, if from_ns != 0 { from_ns.max(first) } else { first }, last.max(first))
    };
    let sum = |f: fn(&Sample) -> u64| -> Vec<u64> {
        (0..x.len()).map(|i| by_key.values().map(|row| f(&row[i])).sum()).collect()
    };
    let tokens = [
        ("in".to_string(), sum(|s| s.input)),
        ("out".to_string(), sum(|s| s.output)),
        ("cached in".to_string(), sum(|s| s.cached)),
    ];
    let calls_by_key: Vec<(String, Vec<u64>)> =
        by_key.iter().map(|(k, row)| (k.clone(), row.iter().map(|s| s.calls).collect())).collect();
    let tokens_by_key: Vec<(String, Vec<u64>)> =
        by_key.iter().map(|(k, row)| (k.clone(), row.iter().map(|s| s.input + s.output).collect())).collect();
    let totals: Vec<(String, [u64; 4])> = by_key
        .iter()
        .map(|(k, row)| {
            let t = row.iter().fold([0; 4], |a, s| [a[0] + s.calls, a[1] + s.input, a[2] + s.output, a[3] + s.cached]);
            (k.clone(), t)
        })
        .collect();

    let more_link = links::with_query(
        PATH,
        &[
            ("host", &scope.host),
            ("agent", &params.agent),
            ("model", &params.model),
            ("since", &scope.since),
            ("until", &scope.until),
            ("limit", &(limit * 4).min(MOST_CALLS).to_string()),
        ],
    );
    let body = html! {
        (scope_form(PATH, &scope, &[("agent", &params.agent), ("model", &params.model)]))
        form.scope method="get" action=(PATH) {
            @for (name, value) in links::scope_pairs(&scope) { input type="hidden" name=(name) value=(value); }
            label { "Agent" input type="text" name="agent" value=(params.agent) placeholder="every agent"; }
            label { "Model" input type="text" name="model" value=(params.model) placeholder="every model"; }
            button type="submit" { "Filter" }
        }
        (panel(&format!("Calls and tokens over time, {grain_note}"), totals.is_empty().then_some(
            "No LLM call in this range: no process called a configured LLM endpoint over TLS that capture could read \
             (see Fleet for TLS stacks not hooked)."), html! {
            link rel="stylesheet" href=(assets::UPLOT_STYLE);
            div.charts {
                (chart("Tokens: in, out, cached in", &x, &tokens))
                (chart("Calls by agent / model", &x, &calls_by_key))
                (chart("Tokens (in + out) by agent / model", &x, &tokens_by_key))
            }
            table {
                thead { tr { th { "Agent / model" } th.num { "Calls" } th.num { "In" } th.num { "Out" } th.num { "Cached in" } } }
                tbody { @for (k, t) in &totals { tr { td { (k) } td.num { (t[0]) } td.num { (t[1]) } td.num { (t[2]) } td.num { (t[3]) } } } }
            }
            p.legend { "Counts, not cost: capture records no price." }
            script src=(assets::UPLOT) {}
            script src=(assets::CHARTS) {}
        }))
        (panel("Calls", calls.is_empty().then_some("No LLM call matches: widen the range or clear the agent and model."), html! {
            (calls_table(&calls))
            @if more { p.more { "Showing the latest " (limit) ". " a href=(more_link) { "Show more" } } }
        }))
        (panel("Agents", agents.is_empty().then_some(
            "No agent in this range: no process matched an agent rule or called an LLM."), agents_table(&agents)))
    };
    Ok(page("LLM usage", PATH, &scope, body))
}

fn call_sample(c: &LlmCallView) -> Sample {
    Sample {
        wall_ns: c.wall_ns,
        key: key(&c.agent, &c.model),
        calls: 1,
        input: c.input_tokens,
        output: c.output_tokens,
        cached: c.cached_input_tokens,
    }
}

fn hour_sample(r: &TokenUsageRow) -> Sample {
    Sample {
        wall_ns: r.hour_wall_ns,
        key: key(&r.agent, &r.model),
        calls: r.calls,
        input: r.input_tokens,
        output: r.output_tokens,
        cached: r.cached_input_tokens,
    }
}

fn calls_table(calls: &[LlmCallView]) -> Markup {
    html! {
        table.calls {
            thead { tr {
                th { "When" } th { "Process" } th { "Agent" } th { "Provider" } th { "Model" } th { "Status" }
                th.num { "In" } th.num { "Out" } th.num { "Cached" } th.num { "TTFT ms" } th.num { "Latency ms" } th { "Tools called" } th { "Error" }
            } }
            tbody {
                @for c in calls {
                    @let failed = !c.error.is_empty() || c.http_status >= 400;
                    tr class=[failed.then_some("bad")] {
                        td { (time(c.wall_ns)) }
                        td { a href=(links::process(&c.host, c.pid, 0)) { (c.comm) " (" (c.pid) ")" } " " small { (c.host) } }
                        td { (or_dash(&c.agent)) } td { (c.provider) } td { (or_dash(&c.model)) }
                        td {
                            @if c.http_status == 0 { @if c.error.is_empty() { "-" } @else { (badge("bad", "error")) } }
                            @else { (badge(if failed { "bad" } else { "ok" }, &c.http_status.to_string())) }
                            @if c.streamed { " " small { "streamed" } }
                        }
                        td.num { (c.input_tokens) } td.num { (c.output_tokens) } td.num { (c.cached_input_tokens) }
                        td.num { (millis(c.ttft_ns)) } td.num { (millis(c.latency_ns)) }
                        td { (c.tool_calls.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (c.error) @if c.bytes_lost > 0 { " " (badge("warn", &format!("{} bytes lost", c.bytes_lost))) } }
                    }
                }
            }
        }
    }
}

fn agents_table(agents: &[AgentView]) -> Markup {
    html! {
        table.agents {
            thead { tr {
                th { "Status" } th { "Agent" } th { "Rule" } th { "Process" } th.num { "Calls" } th.num { "In" } th.num { "Out" }
                th { "First" } th { "Last" } th { "Sessions" }
            } }
            tbody {
                @for a in agents {
                    tr class=[a.agent.is_empty().then_some("warn")] {
                        td { @if a.agent.is_empty() { (badge("warn", "discovered")) } @else { (badge("ok", "mapped")) } }
                        td { (or_dash(&a.agent)) }
                        td { (or_dash(&a.rule)) @if !a.matched_on.is_empty() { " " small { "(" (a.matched_on) ")" } } }
                        td { a href=(links::process(&a.host, a.pid, 0)) { (a.comm) " (" (a.pid) ")" } " " small { (a.host) } }
                        td.num { (a.llm_calls) } td.num { (a.input_tokens) } td.num { (a.output_tokens) }
                        td { (time(a.first_wall_ns)) } td { (time(a.last_wall_ns)) }
                        td { a href=(links::sessions_of(&a.host, &a.agent)) { "sessions" } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(wall_s: u64, key: &str, input: u64) -> Sample {
        Sample { wall_ns: wall_s * 1_000_000_000, key: key.into(), calls: 1, input, output: 2, cached: 0 }
    }

    #[test]
    fn a_short_range_gets_at_most_120_points_and_a_long_one_hourly_rows() {
        assert_eq!(bucket_for(15 * 60 * 1_000_000_000), Some(10_000_000_000));
        assert_eq!(bucket_for(2 * HOUR_NS), Some(60_000_000_000));
        assert_eq!(bucket_for(6 * HOUR_NS), Some(300_000_000_000));
        assert_eq!(bucket_for(6 * HOUR_NS + 1), None);
        assert_eq!(bucket_for(0), None);
    }

    #[test]
    fn calls_are_summed_per_bucket_with_empty_buckets_as_zeros() {
        let samples = [sample(100, "a", 5), sample(105, "a", 7), sample(125, "b", 1), sample(999, "a", 9)];
        let (x, by_key) = buckets(&samples, 10_000_000_000, 100_000_000_000, 130_000_000_000);
        assert_eq!(x, [100, 110, 120, 130]);
        let a: Vec<(u64, u64)> = by_key["a"].iter().map(|s| (s.calls, s.input)).collect();
        assert_eq!(a, [(2, 12), (0, 0), (0, 0), (0, 0)], "the sample past the range is left out");
        let b: Vec<u64> = by_key["b"].iter().map(|s| s.calls).collect();
        assert_eq!(b, [0, 0, 1, 0]);
    }

    #[test]
    fn the_filter_is_exact_on_agent_and_model() {
        let params = Params { agent: "scripted".into(), model: String::new(), limit: 0 };
        assert!(params.keeps("scripted", "gpt"));
        assert!(!params.keeps("scripted-2", "gpt"));
        let params = Params { agent: String::new(), model: "gpt".into(), limit: 0 };
        assert_eq!(params.contains(), "gpt");
        assert!(!params.keeps("x", "gpt-4"));
    }

    #[test]
    fn chart_data_is_escaped_in_its_attribute() {
        let html = chart("t", &[1], &[("<script>".into(), vec![1])]).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
