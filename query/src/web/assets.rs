//! The files pages load, embedded in the binary: the dashboard's style
//! sheet and chart script, and two vendored libraries (htmx 2.0.11, BSD-0;
//! uPlot 1.6.32, MIT; licenses beside them in `query/assets/vendor/`).

use axum::{
    http::header::{CACHE_CONTROL, CONTENT_TYPE},
    response::IntoResponse,
    routing::get,
    Router,
};

pub const STYLE: &str = "/assets/plumbline.css";
pub const HTMX: &str = "/assets/htmx-2.0.11.min.js";
pub const UPLOT: &str = "/assets/uplot-1.6.32.min.js";
pub const UPLOT_STYLE: &str = "/assets/uplot-1.6.32.min.css";
/// Draws the pages' time series with uPlot (load it after [`UPLOT`]).
pub const CHARTS: &str = "/assets/charts.js";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The file at each path, with its type.
const FILES: &[(&str, &str, &[u8])] = &[
    (STYLE, CSS, include_bytes!("../../assets/plumbline.css")),
    (HTMX, JS, include_bytes!("../../assets/vendor/htmx-2.0.11.min.js")),
    (UPLOT, JS, include_bytes!("../../assets/vendor/uplot-1.6.32.min.js")),
    (UPLOT_STYLE, CSS, include_bytes!("../../assets/vendor/uplot-1.6.32.min.css")),
    (CHARTS, JS, include_bytes!("../../assets/charts.js")),
];

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    FILES.iter().fold(Router::new(), |router, &(path, kind, bytes)| {
        let answer =
            move || async move { ([(CONTENT_TYPE, kind), (CACHE_CONTROL, "no-cache")], bytes).into_response() };
        router.route(path, get(answer))
    })
}
