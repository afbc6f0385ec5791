//! Every Plumbline daemon's telemetry, one pattern for all:
//!
//! - [`series`]: each daemon declares what it reports once, as a table of
//!   [`Series`] (name in base units, kind, help, labels) in its `metrics.rs`;
//! - [`InternalEvent`]: each occurrence worth reporting is one type whose
//!   `emit` logs it at its level and counts it, in one place (Vector's
//!   internal events);
//! - [`values`]: the declared series' values, rendered as Prometheus text;
//! - [`reference`]: `docs/metrics.md`, rendered from the same declarations;
//! - [`serve`]/[`spawn`]: `GET /metrics`, and [`join`] of two expositions
//!   into one (a single-host `plumbline run` shows its aggregator's and
//!   query service's after its agent's).

pub mod reference;
pub mod series;
pub mod values;

use std::{net::SocketAddr, sync::Arc};

use axum::{extract::State, routing::get, Router};
use tokio_util::sync::CancellationToken;

pub use reference::{reference, Daemon, REGENERATE};
pub use series::{check, Kind, Series};
pub use values::{Level, Metrics, Total};

/// Something a daemon reports. `emit` logs it (at the level it deserves)
/// and counts it into `to` together, so neither is forgotten or worded
/// twice.
pub trait InternalEvent<To: ?Sized> {
    fn emit(self, to: &To);
}

/// Renders the exposition as of now.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `GET /metrics` with `render`'s text on `listen` until `shutdown`.
pub async fn serve(listen: SocketAddr, render: Render, shutdown: CancellationToken) -> std::io::Result<()> {
    let app =
        Router::new().route("/metrics", get(|State(render): State<Render>| async move { render() })).with_state(render);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "metrics at /metrics");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// Serves on `listen` in the background, logging when the endpoint stops;
/// an empty `listen` serves nothing.
pub fn spawn(listen: &str, render: Render, shutdown: CancellationToken) -> Result<(), std::net::AddrParseError> {
    if listen.is_empty() {
        return Ok(());
    }
    let server = serve(listen.parse()?, render, shutdown);
    tokio::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!(%err, "the metrics endpoint stopped");
        }
    });
    Ok(())
}

/// `first` followed by `then`: an OpenMetrics exposition ends with one
/// `# EOF`, so `first` gives its own up.
pub fn join(first: &str, then: &str) -> String {
    let first = first.trim_end().strip_suffix("# EOF").unwrap_or(first);
    format!("{first}{then}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_expositions_end_with_one_eof() {
        let joined = join("# TYPE a counter\na_total 1\n# EOF\n", "# TYPE b counter\nb_total 2\n# EOF\n");
        assert_eq!(joined, "# TYPE a counter\na_total 1\n# TYPE b counter\nb_total 2\n# EOF\n");
    }
}
