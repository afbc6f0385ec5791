//! Plumbline's query side: the gRPC [`service`] over any store, and the
//! [`cli`] behind `plumb`.

mod activity;
pub mod cli;
pub mod config;
mod connections;
mod enforcement;
mod error;
mod gpu;
mod ipc_edges;
mod llm;
pub mod metrics;
pub mod process_tree;
mod quarantine;
mod request;
pub mod service;
mod sessions;
mod units;
pub mod web;

use std::{net::SocketAddr, sync::Arc};

use plumbline_proto::v1::query_service_server::QueryServiceServer;
use plumbline_store::Store;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

pub use config::QueryConfig;
pub use error::QueryError;
pub use metrics::QueryMetrics;

use metrics::MetricsLayer;

/// Serves the query API and the dashboard on `listener` until `shutdown`:
/// gRPC (HTTP/2) and the pages (HTTP/1.1) on one address, one door. Every
/// RPC is counted into `metrics`.
pub async fn serve(
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    metrics: Arc<QueryMetrics>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let api = Arc::new(service::QueryServiceImpl::new(store));
    let grpc =
        Routes::new(QueryServiceServer::from_arc(Arc::clone(&api))).into_axum_router().layer(MetricsLayer(metrics));
    let rpcs = format!("/{}/{{*rpc}}", <QueryServiceServer<service::QueryServiceImpl> as NamedService>::NAME);
    let doors = axum::Router::new().route(&rpcs, axum::routing::any_service(grpc)).merge(web::router(api));
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(Routes::from(doors))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// Where a browser finds the dashboard of a service listening on `addr`.
pub fn dashboard_url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

/// Binds `addr` (port 0 picks one) and returns the listener with its address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// The query service as its own process: the configured store, served on
/// the configured address, until `shutdown`.
pub async fn run(config: &QueryConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(store) = plumbline_store::open_when_ready(&config.store, &shutdown).await? else {
        return Ok(());
    };
    let (listener, addr) = bind(config.listen).await?;
    tracing::info!(%addr, store = %store.describe(), dashboard = dashboard_url(addr), "query service listening");
    let metrics = Arc::new(QueryMetrics::default());
    let exposition = Arc::clone(&metrics);
    let render = Arc::new(move || exposition.render());
    plumbline_metrics::spawn(&config.metrics.listen, render, shutdown.clone())?;
    serve(store, listener, metrics, shutdown).await?;
    Ok(())
}
