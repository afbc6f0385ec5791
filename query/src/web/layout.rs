//! The frame every page shares: head, navigation, and the small pieces
//! views are built from (a panel that says why it is empty, a time cell).
//! maud escapes every value it writes, so captured text (a prompt holding
//! `<script>`) is shown, never run.

use maud::{html, Markup, DOCTYPE};

use super::{assets, params::Scope};

/// The views, in the order the navigation shows them: (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/fleet", "Fleet"),
    ("/findings", "Findings"),
    ("/sessions", "Sessions"),
    ("/llm", "LLM usage"),
    ("/processes", "Processes"),
    ("/gpu", "GPU jobs"),
];

/// A whole page: `title`, the navigation with `active` (a path of [`NAV`])
/// marked and `scope` kept on every link, then `body`.
pub fn page(title: &str, active: &str, scope: &Scope, body: Markup) -> Markup {
    let kept = scope.query();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Plumbline" }
                link rel="stylesheet" href=(assets::STYLE);
                script src=(assets::HTMX) defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Plumbline" }
                    nav {
                        @for (path, label) in NAV {
                            a href={ (path) @if !kept.is_empty() { "?" (kept) } } class=[(*path == active).then_some("active")] { (label) }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A panel: a titled section; when `empty` is `Some(reason)` the panel
/// says why it has nothing to show instead of showing nothing.
pub fn panel(title: &str, empty: Option<&str>, content: Markup) -> Markup {
    html! {
        section.panel {
            h2 { (title) }
            @if let Some(reason) = empty {
                p.empty { (reason) }
            } @else {
                (content)
            }
        }
    }
}

/// A wall-clock time, readable, with the exact nanoseconds on hover.
pub fn time(wall_ns: u64) -> Markup {
    if wall_ns == 0 {
        return html! { "-" };
    }
    html! { time datetime=(crate::units::time(wall_ns)) title=(wall_ns) { (crate::units::time(wall_ns)) } }
}

/// A status word coloured by how bad it is: `ok`, `warn` or `bad`.
pub fn badge(level: &str, text: &str) -> Markup {
    html! { span class={ "badge " (level) } { (text) } }
}

/// The scope form every view starts with: host and time range, sent as
/// the page's own query string (extra hidden fields keep the view's other
/// state, e.g. the job).
pub fn scope_form(action: &str, scope: &Scope, keep: &[(&str, &str)]) -> Markup {
    html! {
        form.scope method="get" action=(action) {
            @for (name, value) in keep { input type="hidden" name=(name) value=(value); }
            label { "Host" input type="text" name="host" value=(scope.host) placeholder="every host"; }
            label { "Since" input type="text" name="since" value=(scope.since) placeholder="15m, 2h or RFC 3339"; }
            label { "Until" input type="text" name="until" value=(scope.until) placeholder="now"; }
            button type="submit" { "Show" }
        }
    }
}
