//! Metrics: lock-free counters and histograms updated on the request path,
//! rendered in the Prometheus text format (0.0.4) at `GET /metrics` (an
//! axum route, served by the same transport as gRPC, on its own listener).
//!
//! Exposed series:
//! - `slant_grpc_requests_total{service,method,code}`: finished calls.
//! - `slant_grpc_request_duration_seconds{service,method}`: latency
//!   histogram (for streams: the whole stream).
//! - `slant_grpc_in_flight`: calls running now.
//! - `slant_passages_scored_total`: passages (and titles) scored.
//! - `slant_model_reloads_total{result="ok"|"failed"}`.
//! - `slant_model_info{model_id,path}`: 1 for the loaded model.
//! - `slant_model_loaded_timestamp_seconds`.
//! - `slant_connections_open`, `slant_connections_refused_total`
//!   (over `--max-connections`), `slant_connections_closed_total{reason}`
//!   (closed by the server: `handshake`, `idle`, `unread`),
//!   `slant_tls_handshake_failures_total`.
//! - `slant_buffered_response_bytes`: responses not yet taken by clients.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::state::Shared;

/// The gRPC methods the server tells apart in its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Score,
    ScoreStream,
    ScoreArticle,
    GetModelInfo,
    HealthCheck,
    HealthWatch,
    Reflection,
    ReflectionV1Alpha,
    Other,
}

const METHODS: [Method; 9] = [
    Method::Score,
    Method::ScoreStream,
    Method::ScoreArticle,
    Method::GetModelInfo,
    Method::HealthCheck,
    Method::HealthWatch,
    Method::Reflection,
    Method::ReflectionV1Alpha,
    Method::Other,
];

impl Method {
    pub(crate) fn from_path(path: &str) -> Self {
        match path {
            "/slant.v1.Scorer/Score" => Self::Score,
            "/slant.v1.Scorer/ScoreStream" => Self::ScoreStream,
            "/slant.v1.Scorer/ScoreArticle" => Self::ScoreArticle,
            "/slant.v1.Scorer/GetModelInfo" => Self::GetModelInfo,
            "/grpc.health.v1.Health/Check" => Self::HealthCheck,
            "/grpc.health.v1.Health/Watch" => Self::HealthWatch,
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" => Self::Reflection,
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" => {
                Self::ReflectionV1Alpha
            }
            _ => Self::Other,
        }
    }

    /// (service, method) labels.
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Self::Score => ("slant.v1.Scorer", "Score"),
            Self::ScoreStream => ("slant.v1.Scorer", "ScoreStream"),
            Self::ScoreArticle => ("slant.v1.Scorer", "ScoreArticle"),
            Self::GetModelInfo => ("slant.v1.Scorer", "GetModelInfo"),
            Self::HealthCheck => ("grpc.health.v1.Health", "Check"),
            Self::HealthWatch => ("grpc.health.v1.Health", "Watch"),
            Self::Reflection => (
                "grpc.reflection.v1.ServerReflection",
                "ServerReflectionInfo",
            ),
            Self::ReflectionV1Alpha => (
                "grpc.reflection.v1alpha.ServerReflection",
                "ServerReflectionInfo",
            ),
            Self::Other => ("other", "other"),
        }
    }

    pub(crate) fn is_health(self) -> bool {
        matches!(self, Self::HealthCheck | Self::HealthWatch)
    }
}

/// gRPC status code names, indexed by code number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Debug)]
struct Histogram {
    /// Non-cumulative counts; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
}

/// Every counter the server keeps.
#[derive(Debug)]
pub(crate) struct Metrics {
    requests: [[AtomicU64; CODE_NAMES.len()]; METHODS.len()],
    latency: [Histogram; METHODS.len()],
    pub(crate) in_flight: AtomicI64,
    pub(crate) passages: AtomicU64,
    pub(crate) reloads_ok: AtomicU64,
    pub(crate) reloads_failed: AtomicU64,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| Histogram::new()),
            in_flight: AtomicI64::new(0),
            passages: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }

    /// Records one finished call.
    pub(crate) fn record(&self, method: Method, code: tonic::Code, elapsed: Duration) {
        let m = method as usize;
        let c = (code as usize).min(CODE_NAMES.len() - 1);
        self.requests[m][c].fetch_add(1, Relaxed);
        self.latency[m].observe(elapsed);
    }

    /// Renders every series in the Prometheus text format.
    pub(crate) fn render(&self, shared: &Shared) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.write(&mut out, shared);
        out
    }

    fn write(&self, out: &mut String, shared: &Shared) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP slant_grpc_requests_total gRPC calls finished, by method and status code."
        )?;
        writeln!(out, "# TYPE slant_grpc_requests_total counter")?;
        for (m, method) in METHODS.iter().enumerate() {
            let (service, name) = method.labels();
            for (c, code) in CODE_NAMES.iter().enumerate() {
                let v = self.requests[m][c].load(Relaxed);
                if v > 0 {
                    writeln!(
                        out,
                        "slant_grpc_requests_total{{service=\"{service}\",method=\"{name}\",code=\"{code}\"}} {v}"
                    )?;
                }
            }
        }
        writeln!(
            out,
            "# HELP slant_grpc_request_duration_seconds gRPC call latency (streams: whole stream)."
        )?;
        writeln!(out, "# TYPE slant_grpc_request_duration_seconds histogram")?;
        for (m, method) in METHODS.iter().enumerate() {
            let h = &self.latency[m];
            let counts: Vec<u64> = h.buckets.iter().map(|b| b.load(Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let (service, name) = method.labels();
            let labels = format!("service=\"{service}\",method=\"{name}\"");
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(&counts) {
                cumulative += count;
                writeln!(out, "slant_grpc_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}")?;
            }
            writeln!(
                out,
                "slant_grpc_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {total}"
            )?;
            let sum = h.sum_ns.load(Relaxed) as f64 / 1e9;
            writeln!(
                out,
                "slant_grpc_request_duration_seconds_sum{{{labels}}} {sum}"
            )?;
            writeln!(
                out,
                "slant_grpc_request_duration_seconds_count{{{labels}}} {total}"
            )?;
        }
        writeln!(out, "# HELP slant_grpc_in_flight gRPC calls running now.")?;
        writeln!(out, "# TYPE slant_grpc_in_flight gauge")?;
        writeln!(out, "slant_grpc_in_flight {}", self.in_flight.load(Relaxed))?;
        writeln!(
            out,
            "# HELP slant_passages_scored_total Passages (and titles) scored."
        )?;
        writeln!(out, "# TYPE slant_passages_scored_total counter")?;
        writeln!(
            out,
            "slant_passages_scored_total {}",
            self.passages.load(Relaxed)
        )?;
        writeln!(
            out,
            "# HELP slant_model_reloads_total Model reloads, by result."
        )?;
        writeln!(out, "# TYPE slant_model_reloads_total counter")?;
        writeln!(
            out,
            "slant_model_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Relaxed)
        )?;
        writeln!(
            out,
            "slant_model_reloads_total{{result=\"failed\"}} {}",
            self.reloads_failed.load(Relaxed)
        )?;
        let loaded = shared.current();
        writeln!(out, "# HELP slant_model_info The loaded model (value 1).")?;
        writeln!(out, "# TYPE slant_model_info gauge")?;
        writeln!(
            out,
            "slant_model_info{{model_id=\"{}\",path=\"{}\"}} 1",
            escape(loaded.model.id()),
            escape(&loaded.path.display().to_string())
        )?;
        let at = loaded
            .loaded_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        writeln!(
            out,
            "# HELP slant_model_loaded_timestamp_seconds When the loaded model was loaded."
        )?;
        writeln!(out, "# TYPE slant_model_loaded_timestamp_seconds gauge")?;
        writeln!(out, "slant_model_loaded_timestamp_seconds {at}")?;
        let c = &shared.connections;
        writeln!(out, "# HELP slant_connections_open Connections open now.")?;
        writeln!(out, "# TYPE slant_connections_open gauge")?;
        writeln!(out, "slant_connections_open {}", c.open.load(Relaxed))?;
        writeln!(
            out,
            "# HELP slant_connections_refused_total Connections closed at once: over the max-connections limit."
        )?;
        writeln!(out, "# TYPE slant_connections_refused_total counter")?;
        writeln!(
            out,
            "slant_connections_refused_total {}",
            c.refused.load(Relaxed)
        )?;
        writeln!(
            out,
            "# HELP slant_connections_closed_total Connections the server closed, by reason."
        )?;
        writeln!(out, "# TYPE slant_connections_closed_total counter")?;
        for (reason, v) in [
            ("handshake", &c.closed_handshake),
            ("idle", &c.closed_idle),
            ("unread", &c.closed_unread),
        ] {
            writeln!(
                out,
                "slant_connections_closed_total{{reason=\"{reason}\"}} {}",
                v.load(Relaxed)
            )?;
        }
        writeln!(
            out,
            "# HELP slant_tls_handshake_failures_total TLS handshakes that failed or timed out."
        )?;
        writeln!(out, "# TYPE slant_tls_handshake_failures_total counter")?;
        writeln!(
            out,
            "slant_tls_handshake_failures_total {}",
            c.tls_failed.load(Relaxed)
        )?;
        writeln!(
            out,
            "# HELP slant_buffered_response_bytes Bytes of responses built and not yet taken by their clients."
        )?;
        writeln!(out, "# TYPE slant_buffered_response_bytes gauge")?;
        writeln!(
            out,
            "slant_buffered_response_bytes {}",
            shared.budget.used()
        )
    }
}

/// Escapes a Prometheus label value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /metrics` (and HEAD); other paths are 404, other methods 405.
pub(crate) fn metrics_router(shared: Arc<Shared>) -> axum::Router {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let page = shared.metrics.render(&shared);
                std::future::ready((
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    page,
                ))
            }),
        )
        .fallback(|| std::future::ready((StatusCode::NOT_FOUND, "not found; try /metrics\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip() {
        for m in METHODS {
            let (service, name) = m.labels();
            if m != Method::Other {
                assert_eq!(Method::from_path(&format!("/{service}/{name}")), m);
            }
        }
        assert_eq!(Method::from_path("/x.Y/Z"), Method::Other);
    }

    #[test]
    fn histogram_buckets() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        assert_eq!(h.buckets[0].load(Relaxed), 1);
        assert_eq!(h.buckets[5].load(Relaxed), 1);
        assert_eq!(h.buckets[BUCKETS.len()].load(Relaxed), 1);
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
