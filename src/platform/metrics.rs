//! Prometheus metrics, rendered at `/metrics`. Labels never carry personal data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The matched route pattern, never the raw path (which may hold ids).
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RouteLabels, Counter>,
    pub http_seconds: Family<RouteLabels, Histogram>,
    pub jobs_run: Family<KindLabels, Counter>,
    pub notifications_sent: Family<KindLabels, Counter>,
    pub notifications_failed: Family<KindLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("anxin");
        let http_requests = Family::<RouteLabels, Counter>::default();
        let http_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let jobs_run = Family::<KindLabels, Counter>::default();
        let notifications_sent = Family::<KindLabels, Counter>::default();
        let notifications_failed = Family::<KindLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        registry.register(
            "http_request_seconds",
            "HTTP request latency in seconds",
            http_seconds.clone(),
        );
        registry.register("jobs_run", "Background jobs run, by kind", jobs_run.clone());
        registry.register(
            "notifications_sent",
            "Notifications delivered, by channel",
            notifications_sent.clone(),
        );
        registry.register(
            "notifications_failed",
            "Notification attempts that failed, by channel",
            notifications_failed.clone(),
        );
        Self {
            registry,
            http_requests,
            http_seconds,
            jobs_run,
            notifications_sent,
            notifications_failed,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }
}
