//! The server: builds the gRPC services (Scorer, health, reflection v1 and
//! v1alpha) and, on the same port, gRPC-Web and the HTTP routes (the JSON
//! API, `/healthz`, `/metrics`, `/openapi.json` and the page; see `http`),
//! serves them on a listener until a shutdown future resolves, then
//! drains.
//!
//! Shutdown: the drain flag is set (new Scorer and reflection calls get
//! UNAVAILABLE), health turns NOT_SERVING for "" and "slant.v1.Scorer",
//! the listener closes, open connections get GOAWAY, and calls in flight
//! run to the end for up to the drain timeout; then [`Server::run`]
//! returns `Ok`.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::config::{ConnectionLimits, ServerConfig};
use super::error::ServiceError;
use super::health::health_service;
use super::http;
use super::metrics::metrics_router;
use super::observe::GateLayer;
use super::reply::server::scorer_server::ScorerServer;
use super::scorer::ScorerService;
use super::state::{watch_source, ReloadHandle, Shared};
use super::transport::{self, tls_acceptor, ConnectionStats, Transport};

/// Connections the separate metrics listener takes at once.
const METRICS_CONNECTIONS: usize = 64;

/// The encoded descriptor set of `slant.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/slant_descriptor.bin"));

/// A server with its model loaded, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    config: ServerConfig,
    metrics_listener: Option<TcpListener>,
}

impl Server {
    /// Loads and checks the model (off the async threads).
    pub async fn new(config: ServerConfig) -> Result<Self, ServiceError> {
        let shared = Arc::new(Shared::load(&config).await?);
        Ok(Self {
            shared,
            config,
            metrics_listener: None,
        })
    }

    /// Also serve `GET /metrics` (Prometheus text format) on `listener`.
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Self {
        self.metrics_listener = Some(listener);
        self
    }

    /// Reloads the model on demand (what SIGHUP does in `serve`).
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            shared: self.shared.clone(),
        }
    }

    /// The id of the default model's newest version (empty with none).
    pub fn model_id(&self) -> String {
        self.reload_handle().model_id()
    }

    /// Serves on `listener` until `shutdown` resolves, then drains.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        let Self {
            shared,
            config,
            metrics_listener,
        } = self;
        let addr = listener.local_addr().map_err(ServiceError::Socket)?;

        let health_service = health_service(shared.health());
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        let limits = &config.limits;
        let scorer = ScorerServer::new(ScorerService {
            shared: shared.clone(),
        })
        .max_decoding_message_size(limits.max_message_bytes)
        // A backstop: handlers refuse bigger responses with a clear status.
        .max_encoding_message_size(limits.max_response_bytes.saturating_add(1024));
        let grpc = tonic::service::Routes::new(scorer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .prepare()
            .into_axum_router();
        // gRPC, gRPC-Web and the HTTP routes, all behind the one gate;
        // CORS (when asked for) answers preflights before it.
        let mut api = http::app(shared.clone(), grpc).layer(GateLayer(shared.clone()));
        if let Some(cors) = http::cors(&config.cors_origins)? {
            tracing::info!(origins = ?config.cors_origins, "CORS allowed");
            api = api.layer(cors);
        }
        let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
        if let Some(tls) = &config.tls {
            tracing::info!(cert = %tls.cert.display(), client_certificates = tls.client_ca.is_some(), "serving TLS");
        }

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut background = Vec::new();
        if let Some(listener) = metrics_listener {
            if let Ok(a) = listener.local_addr() {
                tracing::info!(addr = %a, "serving Prometheus metrics on /metrics");
            }
            let limits = ConnectionLimits {
                max_connections: METRICS_CONNECTIONS,
                ..config.connections.clone()
            };
            let transport = Transport::new(limits, None, Arc::new(ConnectionStats::default()));
            background.push(tokio::spawn(transport::serve(
                listener,
                metrics_router(shared.clone()),
                transport,
                stop_rx.clone(),
            )));
        }
        if let Some(interval) = config.watch {
            tracing::info!(path = %shared.source.path().display(), ?interval, "watching the model source");
            background.push(tokio::spawn(watch_source(
                shared.clone(),
                interval,
                stop_rx.clone(),
            )));
        }

        for (name, versions) in shared.catalog().iter() {
            for l in versions {
                tracing::info!(model = name, version = l.version, model_id = l.model.id(), path = %l.path.display(), "model loaded");
            }
        }
        tracing::info!(%addr, source = %shared.source.path().display(), "serving slant.v1.Scorer over gRPC, gRPC-Web and JSON (HTTP/1.1 and HTTP/2); the page is at /");
        let transport = Transport::new(config.connections.clone(), tls, shared.connections.clone());
        let serve = transport::serve(listener, api, transport, stop_rx.clone());
        tokio::pin!(serve);
        let drain_timeout = config.drain_timeout;
        tokio::select! {
            _ = &mut serve => {}
            _ = shutdown => {
                tracing::info!(
                    in_flight = shared.metrics.in_flight(),
                    "shutting down: refusing new calls, draining calls in flight"
                );
                shared.start_draining();
                let _ = stop_tx.send(true);
                if tokio::time::timeout(drain_timeout, &mut serve).await.is_err() {
                    tracing::warn!(
                        in_flight = shared.metrics.in_flight(),
                        ?drain_timeout,
                        "drain timeout: abandoning the calls still in flight"
                    );
                }
            }
        }
        let _ = stop_tx.send(true);
        for task in background {
            let _ = task.await;
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Loads the model named by `config` and serves on `listener` until
/// `shutdown` resolves (see [`Server`] for reloads and metrics).
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    Server::new(config).await?.run(listener, shutdown).await
}
