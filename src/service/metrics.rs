//! Metrics: counters, gauges and histograms kept with the Prometheus
//! project's client library (`prometheus-client`), rendered in the
//! Prometheus text format (0.0.4) at `GET /metrics` (an axum route,
//! served by the same transport as gRPC, on its own listener).
//!
//! Exposed series:
//! - `slant_grpc_requests_total{service,method,code,key}`: finished calls
//!   (`key`: the API key's name, for calls made with one). Calls over
//!   gRPC-Web and the JSON API count as the calls they make (`POST
//!   /v1/score` is `Score`, `GET /healthz` a health `Check`), with the
//!   gRPC code of their answer; the page and `/openapi.json` are
//!   `service="http",method="static"`.
//! - `slant_grpc_request_duration_seconds{service,method}`: latency
//!   histogram (for streams: the whole stream).
//! - `slant_grpc_in_flight`: calls running now.
//! - `slant_passages_scored_total`: passages (and titles) scored.
//! - `slant_model_reloads_total{result="ok"|"failed"}`.
//! - `slant_model_info{name,version,model_id,path}`: 1 per loaded version.
//! - `slant_model_loaded_timestamp_seconds{name,version}`.
//! - `slant_connections_open`, `slant_connections_refused_total`
//!   (over `--max-connections`), `slant_connections_closed_total{reason}`
//!   (closed by the server: `handshake`, `idle`, `unread`),
//!   `slant_tls_handshake_failures_total`.
//! - `slant_buffered_response_bytes`: responses not yet taken by clients.
//! - `slant_access_log_dropped_total`: access lines the writer fell behind on.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::catalog::Catalog;
use super::http::Protocol;
use super::state::Shared;
use super::transport::ConnectionStats;

/// The gRPC methods the server tells apart in its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Score,
    ScoreStream,
    ScoreArticle,
    GetModelInfo,
    ListModels,
    HealthCheck,
    HealthWatch,
    Reflection,
    ReflectionV1Alpha,
    /// The page and the OpenAPI document: open to anyone, even with
    /// `--protect-all`.
    Static,
    Other,
}

const METHODS: [Method; 11] = [
    Method::Score,
    Method::ScoreStream,
    Method::ScoreArticle,
    Method::GetModelInfo,
    Method::ListModels,
    Method::HealthCheck,
    Method::HealthWatch,
    Method::Reflection,
    Method::ReflectionV1Alpha,
    Method::Static,
    Method::Other,
];

impl Method {
    pub(crate) fn from_path(path: &str) -> Self {
        match path {
            "/slant.v1.Scorer/Score" => Self::Score,
            "/slant.v1.Scorer/ScoreStream" => Self::ScoreStream,
            "/slant.v1.Scorer/ScoreArticle" => Self::ScoreArticle,
            "/slant.v1.Scorer/GetModelInfo" => Self::GetModelInfo,
            "/slant.v1.Scorer/ListModels" => Self::ListModels,
            "/grpc.health.v1.Health/Check" => Self::HealthCheck,
            "/grpc.health.v1.Health/Watch" => Self::HealthWatch,
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" => Self::Reflection,
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" => {
                Self::ReflectionV1Alpha
            }
            _ => Self::Other,
        }
    }

    /// The method a request calls: by its gRPC path, or for the HTTP
    /// routes by the call they make (`POST /v1/score` is Score, `GET
    /// /healthz` a health check), so metrics, keys and limits count them
    /// alike.
    pub(crate) fn of_request(protocol: Protocol, path: &str) -> Self {
        match protocol {
            Protocol::Http => match path {
                "/v1/score" => Self::Score,
                "/v1/score-article" => Self::ScoreArticle,
                "/v1/model" => Self::GetModelInfo,
                "/v1/models" => Self::ListModels,
                "/healthz" => Self::HealthCheck,
                "/" | "/openapi.json" => Self::Static,
                _ => Self::Other,
            },
            Protocol::Grpc | Protocol::GrpcWeb { .. } => Self::from_path(path),
        }
    }

    /// (service, method) labels.
    pub(crate) fn labels(self) -> (&'static str, &'static str) {
        match self {
            Self::Score => ("slant.v1.Scorer", "Score"),
            Self::ScoreStream => ("slant.v1.Scorer", "ScoreStream"),
            Self::ScoreArticle => ("slant.v1.Scorer", "ScoreArticle"),
            Self::GetModelInfo => ("slant.v1.Scorer", "GetModelInfo"),
            Self::ListModels => ("slant.v1.Scorer", "ListModels"),
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
            Self::Static => ("http", "static"),
            Self::Other => ("other", "other"),
        }
    }

    pub(crate) fn is_health(self) -> bool {
        matches!(self, Self::HealthCheck | Self::HealthWatch)
    }

    /// slant.v1.Scorer's methods: the calls keys and concurrency limits
    /// apply to.
    pub(crate) fn is_scorer(self) -> bool {
        matches!(
            self,
            Self::Score
                | Self::ScoreStream
                | Self::ScoreArticle
                | Self::GetModelInfo
                | Self::ListModels
        )
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

/// The label set of a finished call. `key` is the API key's name; calls
/// without one have no `key` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct CallLabels {
    service: &'static str,
    method: &'static str,
    code: &'static str,
    key: String,
}

impl EncodeLabelSet for CallLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("service", self.service).encode(encoder.encode_label())?;
        ("method", self.method).encode(encoder.encode_label())?;
        ("code", self.code).encode(encoder.encode_label())?;
        if !self.key.is_empty() {
            ("key", self.key.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// A gRPC code's name, as in `slant_grpc_requests_total{code=...}`.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    CODE_NAMES[(code as usize).min(CODE_NAMES.len() - 1)]
}

/// The label set of a call's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    name: String,
    version: String,
    model_id: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    name: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub reason: &'static str,
}

/// Every metric the server keeps, registered in one Prometheus registry.
/// A call's counter and histogram are looked up in their family once and
/// kept (`OnceLock`), so the request path only touches atomics.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    request_cells: [[OnceLock<Counter>; CODE_NAMES.len()]; METHODS.len()],
    latency_cells: [OnceLock<Histogram>; METHODS.len()],
    in_flight: Gauge,
    passages: Counter,
    reloads: Family<ResultLabel, Counter>,
    model_info: Family<ModelLabels, Gauge>,
    loaded_at: Family<VersionLabels, Gauge<f64, AtomicU64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("in_flight", &self.in_flight.get())
            .field("passages", &self.passages.get())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics, with the transport's connection counters and the
    /// response budget's gauge registered beside them.
    pub(crate) fn new(
        connections: &ConnectionStats,
        buffered: &Gauge,
        access_dropped: &Counter,
    ) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<CallLabels, Counter>::default();
        registry.register(
            "slant_grpc_requests",
            "gRPC calls finished, by method and status code",
            requests.clone(),
        );
        let latency =
            Family::<MethodLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "slant_grpc_request_duration_seconds",
            "gRPC call latency (streams: whole stream)",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "slant_grpc_in_flight",
            "gRPC calls running now",
            in_flight.clone(),
        );
        let passages = Counter::default();
        registry.register(
            "slant_passages_scored",
            "Passages (and titles) scored",
            passages.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        for result in ["ok", "failed"] {
            let _ = reloads.get_or_create_owned(&ResultLabel { result });
        }
        registry.register(
            "slant_model_reloads",
            "Model reloads, by result",
            reloads.clone(),
        );
        let model_info = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "slant_model_info",
            "Each loaded model version (value 1)",
            model_info.clone(),
        );
        let loaded_at = Family::<VersionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "slant_model_loaded_timestamp_seconds",
            "When each loaded model version was loaded",
            loaded_at.clone(),
        );
        connections.register(&mut registry);
        registry.register(
            "slant_access_log_dropped",
            "Access log lines dropped because the writer fell behind",
            access_dropped.clone(),
        );
        registry.register(
            "slant_buffered_response_bytes",
            "Bytes of responses built and not yet taken by their clients",
            buffered.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            request_cells: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            latency_cells: std::array::from_fn(|_| OnceLock::new()),
            in_flight,
            passages,
            reloads,
            model_info,
            loaded_at,
        }
    }

    pub(crate) fn call_started(&self) {
        self.in_flight.inc();
    }

    /// Records one finished call (started with [`Metrics::call_started`]),
    /// made with the API key named `key` if any.
    pub(crate) fn call_finished(
        &self,
        method: Method,
        code: tonic::Code,
        elapsed: Duration,
        key: Option<&str>,
    ) {
        let m = method as usize;
        let c = (code as usize).min(CODE_NAMES.len() - 1);
        let (service, name) = method.labels();
        let labels = |key: &str| CallLabels {
            service,
            method: name,
            code: CODE_NAMES[c],
            key: key.to_string(),
        };
        match key {
            None => self.request_cells[m][c]
                .get_or_init(|| self.requests.get_or_create_owned(&labels("")))
                .inc(),
            Some(key) => self.requests.get_or_create(&labels(key)).inc(),
        };
        self.latency_cells[m]
            .get_or_init(|| {
                self.latency.get_or_create_owned(&MethodLabels {
                    service,
                    method: name,
                })
            })
            .observe(elapsed.as_secs_f64());
        self.in_flight.dec();
    }

    pub(crate) fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    pub(crate) fn passages_scored(&self, n: usize) {
        self.passages.inc_by(n as u64);
    }

    pub(crate) fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    /// The models now loaded: `slant_model_info` names only them.
    pub(crate) fn models_loaded(&self, catalog: &Catalog) {
        self.model_info.clear();
        self.loaded_at.clear();
        for (name, versions) in catalog.iter() {
            for l in versions {
                let version = l.version.to_string();
                self.model_info
                    .get_or_create(&ModelLabels {
                        name: name.to_string(),
                        version: version.clone(),
                        model_id: l.model.id().to_string(),
                        path: l.path.display().to_string(),
                    })
                    .set(1);
                let at = l
                    .loaded_at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                self.loaded_at
                    .get_or_create(&VersionLabels {
                        name: name.to_string(),
                        version,
                    })
                    .set(at);
            }
        }
    }

    /// Every series in the Prometheus text format (0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The metrics page, as `GET /metrics` answers it (on the API port and on
/// `--metrics-addr`).
pub(crate) fn metrics_page(shared: &Shared) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

/// `GET /metrics` (and HEAD) for the separate metrics listener; other
/// paths are 404, other methods 405.
pub(crate) fn metrics_router(shared: Arc<Shared>) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/metrics",
            get(move || std::future::ready(metrics_page(&shared))),
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
            if m != Method::Other && m != Method::Static {
                assert_eq!(Method::from_path(&format!("/{service}/{name}")), m);
            }
        }
        assert_eq!(Method::from_path("/x.Y/Z"), Method::Other);
        // Every Scorer route of the JSON API is the Scorer call it makes.
        for route in super::super::http::ROUTES {
            let m = Method::of_request(Protocol::Http, route.path);
            assert_eq!(m.is_scorer(), route.scorer, "{}", route.path);
            assert_eq!(
                m == Method::Other,
                route.path == "/metrics",
                "{}: only /metrics is counted as other",
                route.path
            );
        }
    }

    #[test]
    fn calls_render_in_the_text_format() {
        let metrics = Metrics::new(
            &ConnectionStats::default(),
            &Gauge::default(),
            &Counter::default(),
        );
        metrics.call_started();
        metrics.call_started();
        metrics.call_finished(
            Method::Score,
            tonic::Code::Ok,
            Duration::from_micros(50),
            None,
        );
        metrics.call_finished(
            Method::Score,
            tonic::Code::Ok,
            Duration::from_millis(3),
            None,
        );
        metrics.call_started();
        metrics.call_finished(
            Method::HealthCheck,
            tonic::Code::Unavailable,
            Duration::from_secs(60),
            Some("newsroom"),
        );
        let page = metrics.render();
        for needle in [
            "slant_grpc_requests_total{service=\"slant.v1.Scorer\",method=\"Score\",code=\"OK\"} 2",
            "slant_grpc_requests_total{service=\"grpc.health.v1.Health\",method=\"Check\",code=\"UNAVAILABLE\",key=\"newsroom\"} 1",
            "slant_grpc_request_duration_seconds_bucket{service=\"slant.v1.Scorer\",method=\"Score\",le=\"0.0001\"} 1",
            "slant_grpc_request_duration_seconds_bucket{service=\"slant.v1.Scorer\",method=\"Score\",le=\"0.005\"} 2",
            "slant_grpc_request_duration_seconds_count{service=\"slant.v1.Scorer\",method=\"Score\"} 2",
            "slant_grpc_in_flight 0",
            "slant_model_reloads_total{result=\"failed\"} 0",
            "# TYPE slant_grpc_request_duration_seconds histogram",
        ] {
            assert!(page.contains(needle), "{needle} not in\n{page}");
        }
    }
}
