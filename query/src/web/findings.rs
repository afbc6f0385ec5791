//! The findings inbox: where an agent's words and the kernel's record
//! disagree, newest first — kind, severity, agent, host and session, what
//! was expected and what was observed, the evidence, and links to the
//! session and to why the effect happened.

use axum::{
    extract::{Query, State},
    routing::get,
    Router,
};
use maud::{html, Markup};
use plumbline_proto::v1::{query_service_server::QueryService, FindingView, SessionRequest};
use serde::Deserialize;
use tonic::Request;

use super::{
    error::PageError,
    layout::{badge, page, panel, time},
    links,
    params::Scope,
    why, Web,
};

pub const PATH: &str = "/findings";

/// Findings shown unless the page asks for more.
const FINDINGS: u32 = 100;
/// What a page may ask for at most.
const MOST_FINDINGS: u32 = 2_000;
/// From least to most severe, as the aggregator judges them.
const SEVERITIES: [&str; 3] = ["low", "medium", "high"];
const KINDS: [&str; 5] =
    ["unverified_claim", "out_of_scope_effect", "guardrail", "reasoning_loop", "coordination_bottleneck"];

pub fn routes() -> Router<Web> {
    Router::new().route(PATH, get(inbox))
}

/// The inbox's own filters, beside the scope's host and range.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Params {
    agent: String,
    kind: String,
    /// This severity or higher.
    severity: String,
    session: String,
    limit: u32,
}

async fn inbox(
    State(web): State<Web>,
    Query(scope): Query<Scope>,
    Query(params): Query<Params>,
) -> Result<Markup, PageError> {
    let floor = match params.severity.as_str() {
        "" => 0,
        s => SEVERITIES
            .iter()
            .position(|known| *known == s)
            .ok_or_else(|| PageError::bad_request(format!("severity: {s:?} is none of {}", SEVERITIES.join(", "))))?,
    };
    let limit = if params.limit == 0 { FINDINGS } else { params.limit.min(MOST_FINDINGS) };
    let request = SessionRequest {
        session: params.session.clone(),
        agent: params.agent.clone(),
        host: scope.host.clone(),
        kind: params.kind.clone(),
        range: scope.range()?,
        // One more than shown says whether there are more.
        limit: limit + 1,
    };
    let mut findings = web.api.list_findings(Request::new(request)).await?.into_inner().findings;
    let more = findings.len() > limit as usize;
    findings.truncate(limit as usize);
    findings.retain(|f| severity_rank(&f.severity) >= floor);

    let filtered = [&params.agent, &params.kind, &params.severity, &params.session].iter().any(|p| !p.is_empty());
    let body = html! {
        form.scope method="get" action=(PATH) {
            @if !params.session.is_empty() { input type="hidden" name="session" value=(params.session); }
            label { "Host" input type="text" name="host" value=(scope.host) placeholder="every host"; }
            label { "Agent" input type="text" name="agent" value=(params.agent) placeholder="every agent"; }
            label { "Kind" select name="kind" {
                option value="" selected[params.kind.is_empty()] { "any" }
                @for k in KINDS { option value=(k) selected[params.kind == k] { (k) } }
            } }
            label { "Severity" select name="severity" {
                option value="" selected[params.severity.is_empty()] { "any" }
                @for s in SEVERITIES { option value=(s) selected[params.severity == s] { (s) " or higher" } }
            } }
            label { "Since" input type="text" name="since" value=(scope.since) placeholder="15m, 2h or RFC 3339"; }
            label { "Until" input type="text" name="until" value=(scope.until) placeholder="now"; }
            button type="submit" { "Show" }
        }
        (panel(
            "Findings, newest first",
            findings.is_empty().then_some(if filtered {
                "No finding matches these filters in this range."
            } else {
                "No finding in this range: every claim the sessions made that could be judged matched what the \
                 kernel saw, no effect went out of scope, and no guardrail, loop or bottleneck was found. \
                 (A finding needs an agent's LLM calls captured: see TLS stacks not hooked on the fleet page.)"
            }),
            html! {
                @for f in &findings { (finding(f)) }
                @if more { p.more { "Only the newest " (limit) " are shown: add limit= to the address for more." } }
            },
        ))
    };
    Ok(page("Findings", PATH, &scope, body))
}

fn severity_rank(severity: &str) -> usize {
    SEVERITIES.iter().position(|s| *s == severity).unwrap_or(SEVERITIES.len())
}

fn level(severity: &str) -> &'static str {
    match severity {
        "high" => "bad",
        "medium" => "warn",
        _ => "ok",
    }
}

fn finding(f: &FindingView) -> Markup {
    let evidence = serde_json::from_str::<serde_json::Value>(&f.evidence)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| f.evidence.clone());
    html! {
        article.finding class=(level(&f.severity)) data-kind=(f.kind) {
            header {
                (badge(level(&f.severity), &f.severity)) " "
                strong.kind { (f.kind) } " "
                span.subject { (f.subject) }
                span.when { (time(f.wall_ns)) }
            }
            dl {
                dt { "Agent" } dd { (f.agent) }
                dt { "Host" } dd { (f.host) " pid " (f.pid) }
                dt { "Session" } dd { a.session href=(links::session(&f.session)) { (f.session) } }
                @if f.tokens > 0 { dt { "Tokens" } dd { (f.tokens) } }
            }
            p.summary { (f.summary) }
            @if !f.expected.is_empty() || !f.observed.is_empty() {
                table.versus {
                    tr { th { "Expected" } td { (f.expected) } }
                    tr { th { "Observed" } td { (f.observed) } }
                }
            }
            details.evidence {
                summary { "Evidence" }
                pre { (evidence) }
            }
            p.links {
                a.session href=(links::session(&f.session)) { "Session" } " · "
                a.why href=(why::link(&f.host, why_pid(f), why_object(f))) { "Why" }
            }
        }
    }
}

/// The session page's address.
/// What to ask Why about: the effect an out-of-scope finding names (the
/// file read, the address connected to), else nothing (then the process).
fn why_object(f: &FindingView) -> &str {
    if f.kind != "out_of_scope_effect" {
        return "";
    }
    // "read /home/u/.ssh/id_rsa", "connect 10.0.0.7:443": the object after the verb.
    f.subject.split_once(' ').map_or(f.subject.as_str(), |(_, object)| object)
}

fn why_pid(f: &FindingView) -> u32 {
    if why_object(f).is_empty() {
        f.pid
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_shows_captured_text_as_text() {
        let f = FindingView {
            kind: "unverified_claim".into(),
            severity: "high".into(),
            session: "s<1>".into(),
            summary: "<script>window.__plb_pwned=1</script>".into(),
            evidence: r#"{"tool_call":{"arguments":"<script>x</script>"}}"#.into(),
            ..Default::default()
        };
        let html = finding(&f).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;window.__plb_pwned=1&lt;/script&gt;"), "{html}");
        assert!(html.contains(r#"href="/sessions/s%3C1%3E""#), "{html}");
    }

    #[test]
    fn why_asks_about_the_object_of_an_out_of_scope_effect_else_the_process() {
        let f = FindingView {
            kind: "out_of_scope_effect".into(),
            subject: "read /w/home/.ssh/id_rsa".into(),
            pid: 7,
            ..Default::default()
        };
        assert_eq!((why_object(&f), why_pid(&f)), ("/w/home/.ssh/id_rsa", 0));
        let claim = FindingView { kind: "unverified_claim".into(), subject: "python -m pytest".into(), pid: 7, ..f };
        assert_eq!((why_object(&claim), why_pid(&claim)), ("", 7));
    }
}
