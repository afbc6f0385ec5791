//! Plumbline's query side: the gRPC [`service`] over any store, and the
//! [`cli`] behind `plumb`.

pub mod access;
mod activity;
pub mod cli;
pub mod config;
mod connections;
pub mod doors;
mod enforcement;
mod error;
mod gpu;
mod hosts;
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
pub use doors::Doors;
pub use error::QueryError;
pub use metrics::QueryMetrics;

use metrics::MetricsLayer;

/// Serves the query API and the dashboard on `listener` until `shutdown`:
/// gRPC (HTTP/2) and the pages (HTTP/1.1) on one address, one door, open
/// (for a loopback listener). Every RPC is counted into `metrics`.
pub async fn serve(
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    metrics: Arc<QueryMetrics>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    serve_doors(store, listener, Doors::default(), metrics, shutdown).await
}

/// [`serve`], locked and encrypted as `doors` says (see [`access`]).
pub async fn serve_doors(
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    doors: Doors,
    metrics: Arc<QueryMetrics>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let api = Arc::new(service::QueryServiceImpl::new(store));
    let grpc =
        Routes::new(QueryServiceServer::from_arc(Arc::clone(&api))).into_axum_router().layer(MetricsLayer(metrics));
    let rpcs = format!("/{}/{{*rpc}}", <QueryServiceServer<service::QueryServiceImpl> as NamedService>::NAME);
    let routes = axum::Router::new().route(&rpcs, axum::routing::any_service(grpc)).merge(web::router(api));
    let lock = doors.token.clone().map(|token| access::Access::new(token, doors.tls()));
    let routes = access::lock(routes, lock);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let mut server = tonic::transport::Server::builder();
    if let Some((cert, key)) = &doors.tls {
        // A client that never finishes its handshake must not hold a slot.
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key))
            .timeout(std::time::Duration::from_secs(10));
        server = server.tls_config(tls)?;
    }
    server
        .accept_http1(true)
        .add_routes(Routes::from(routes))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// Where a browser finds the dashboard of a service listening on `addr`.
pub fn dashboard_url(addr: SocketAddr, doors: &Doors) -> String {
    let scheme = if doors.tls() { "https" } else { "http" };
    format!("{scheme}://{addr}/")
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
    let doors = Doors::load(config.listen, &config.access, &config.tls)?;
    let Some(store) = plumbline_store::open_when_ready(&config.store, &shutdown).await? else {
        return Ok(());
    };
    let (listener, addr) = bind(config.listen).await?;
    let dashboard = dashboard_url(addr, &doors);
    tracing::info!(%addr, store = %store.describe(), %dashboard, ?doors, "query service listening");
    let metrics = Arc::new(QueryMetrics::default());
    let exposition = Arc::clone(&metrics);
    let render = Arc::new(move || exposition.render());
    plumbline_metrics::spawn(&config.metrics.listen, render, shutdown.clone())?;
    serve_doors(store, listener, doors, metrics, shutdown).await?;
    Ok(())
}
