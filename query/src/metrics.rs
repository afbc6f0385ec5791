//! What the query service reports on `GET /metrics`, declared once:
//! requests per RPC and gRPC code, and how long they took. Counted by one
//! layer around every RPC, so a new RPC is counted without a line of its
//! own.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use plumbline_metrics::{InternalEvent, Metrics, Series};

/// 0.5 ms to about 16 s, doubling.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];

pub static REQUESTS: Series =
    Series::counter("plumbline_query_requests_total", "RPCs answered, by RPC and gRPC code").labels(&["rpc", "code"]);
pub static REQUEST_DURATION: Series =
    Series::histogram("plumbline_query_request_duration_seconds", "How long an RPC took to answer", LATENCY_BUCKETS)
        .labels(&["rpc"]);

/// Everything the query service reports, in the order `/metrics` shows it.
pub static SERIES: &[&Series] = &[&REQUESTS, &REQUEST_DURATION];

/// Requests and their latency, by RPC (and, for requests, by gRPC code).
#[derive(Debug)]
pub struct QueryMetrics(Metrics);

impl Default for QueryMetrics {
    fn default() -> Self {
        Self(Metrics::new(SERIES))
    }
}

/// One RPC answered.
pub struct RpcAnswered<'a> {
    pub rpc: &'a str,
    /// The gRPC code's name: `Ok`, `InvalidArgument` ...
    pub code: &'a str,
    pub seconds: f64,
}

impl InternalEvent<QueryMetrics> for RpcAnswered<'_> {
    fn emit(self, metrics: &QueryMetrics) {
        // Errors are logged where they are mapped to a status (error.rs).
        tracing::debug!(rpc = self.rpc, code = self.code, seconds = self.seconds, "answered");
        metrics.0.counter(&REQUESTS, &[self.rpc, self.code]).inc();
        metrics.0.histogram(&REQUEST_DURATION, &[self.rpc]).observe(self.seconds);
    }
}

impl QueryMetrics {
    fn observe(&self, rpc: &str, code: &str, seconds: f64) {
        RpcAnswered { rpc, code, seconds }.emit(self);
    }

    /// The text exposition, as of now.
    pub fn render(&self) -> String {
        self.0.render()
    }
}

/// Counts every RPC of the service it wraps into [`QueryMetrics`].
#[derive(Clone)]
pub struct MetricsLayer(pub Arc<QueryMetrics>);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered { inner, metrics: Arc::clone(&self.0) }
    }
}

#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    metrics: Arc<QueryMetrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // "/plumbline.v1.QueryService/ListProcesses" → "ListProcesses".
        let rpc = request.uri().path().rsplit('/').next().unwrap_or_default().to_string();
        let (metrics, started) = (Arc::clone(&self.metrics), Instant::now());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await;
            // A unary RPC that fails answers with its status in the headers
            // (trailers only); one that succeeds sends OK in the trailers.
            let code = match &response {
                Ok(r) => {
                    r.headers().get("grpc-status").map_or(tonic::Code::Ok, |v| tonic::Code::from_bytes(v.as_bytes()))
                }
                Err(_) => tonic::Code::Unknown,
            };
            metrics.observe(&rpc, &format!("{code:?}"), started.elapsed().as_secs_f64());
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declarations_follow_the_naming_rules() {
        plumbline_metrics::check("plumbline_query_", SERIES).unwrap();
    }

    #[test]
    fn the_exposition_counts_requests_by_rpc_and_code_in_seconds() {
        let metrics = QueryMetrics::default();
        metrics.observe("GpuHang", "Ok", 0.002);
        metrics.observe("GpuHang", "InvalidArgument", 0.001);
        let text = metrics.render();
        assert!(text.contains(r#"plumbline_query_requests_total{rpc="GpuHang",code="Ok"} 1"#), "{text}");
        assert!(text.contains(r#"plumbline_query_requests_total{rpc="GpuHang",code="InvalidArgument"} 1"#), "{text}");
        assert!(text.contains(r#"plumbline_query_request_duration_seconds_count{rpc="GpuHang"} 2"#), "{text}");
    }
}
