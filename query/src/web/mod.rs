//! The incident dashboard: pages rendered on the server from the same
//! query API gRPC clients call ([`QueryServiceImpl`]), served on the query
//! service's own address beside gRPC. Every view is one URL holding its
//! whole state (host, job, session, time range) in its query string, so a
//! pasted address shows a colleague the same screen. No script is needed
//! to read a page; the two vendored ones (htmx, uPlot) are embedded in the
//! binary, and no page asks anything of another host.

mod assets;
mod effect_graph;
mod error;
mod findings;
mod fleet;
mod gpu;
mod gpu_heatmap;
mod gpu_timeline;
mod lanes;
mod layout;
mod links;
mod llm;
mod params;
mod processes;
mod session;
mod why;

use std::sync::Arc;

use axum::{response::Redirect, routing::get, Router};

use crate::service::QueryServiceImpl;

/// What every page handler is given: the query API.
#[derive(Clone)]
pub struct Web {
    api: Arc<QueryServiceImpl>,
}

/// The dashboard's routes, answering from `api`.
pub fn router(api: Arc<QueryServiceImpl>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to(fleet::PATH) }))
        .merge(assets::routes())
        .merge(fleet::routes())
        .merge(gpu::routes())
        .merge(findings::routes())
        .merge(why::routes())
        .merge(session::routes())
        .merge(llm::routes())
        .merge(processes::routes())
        .fallback(error::not_found)
        .with_state(Web { api })
}
