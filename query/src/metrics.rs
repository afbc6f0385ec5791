//! The query service's Prometheus endpoint (`GET /metrics`): requests per
//! RPC and gRPC code, and how long they took. Counted by one layer around
//! every RPC, so a new RPC is counted without a line of its own.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

type Labels = Vec<(String, String)>;

/// Requests and their latency, by RPC (and, for requests, by gRPC code).
pub struct QueryMetrics {
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        let buckets: fn() -> Histogram = || Histogram::new(exponential_buckets(0.000_5, 2.0, 16));
        Self { requests: Family::default(), latency: Family::new_with_constructor(buckets) }
    }
}

impl QueryMetrics {
    fn observe(&self, rpc: &str, code: &str, seconds: f64) {
        let labels = vec![("rpc".to_string(), rpc.to_string()), ("code".to_string(), code.to_string())];
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&vec![("rpc".to_string(), rpc.to_string())]).observe(seconds);
    }

    /// The text exposition, as of now.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("plumbline_query");
        registry.register("requests", "RPCs answered, by RPC and gRPC code", self.requests.clone());
        registry.register("request_duration_seconds", "How long an RPC took to answer", self.latency.clone());
        let mut out = String::new();
        encode(&mut out, &registry).expect("formatting into a String");
        out
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
