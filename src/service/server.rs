//! The server: builds the gRPC services (Scorer, health, reflection v1 and
//! v1alpha), serves them on a listener until a shutdown future resolves,
//! then drains.
//!
//! Shutdown: the drain flag is set (new Scorer and reflection calls get
//! UNAVAILABLE), health turns NOT_SERVING for "" and "slant.v1.Scorer",
//! the listener closes, open connections get GOAWAY, and calls in flight
//! run to the end for up to the drain timeout; then [`Server::run`]
//! returns `Ok`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_stream::StreamExt as _;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};
use tonic_health::pb::health_check_response::ServingStatus;

use super::config::ServerConfig;
use super::error::ServiceError;
use super::health::health_service;
use super::metrics::serve_metrics;
use super::observe::Observed;
use super::scorer::ScorerService;
use super::state::{load_off_thread, watch_file, ReloadHandle, Shared};
use crate::proto::scorer_server::ScorerServer;

/// HTTP/2 flow-control windows (also used by the load generator).
pub(crate) const STREAM_WINDOW: u32 = 1 << 20;
pub(crate) const CONNECTION_WINDOW: u32 = 8 << 20;

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
        let loaded = load_off_thread(config.model_path.clone()).await?;
        let shared = Arc::new(Shared::new(loaded, config.limits.clone()));
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

    /// The id of the model serving new calls.
    pub fn model_id(&self) -> String {
        self.shared.current().model.id().to_string()
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

        let (health, health_service) = health_service();
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        let scorer = ScorerServer::new(ScorerService {
            shared: shared.clone(),
        })
        .max_decoding_message_size(config.limits.max_message_bytes);

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut background = Vec::new();
        if let Some(listener) = metrics_listener {
            if let Ok(a) = listener.local_addr() {
                tracing::info!(addr = %a, "serving Prometheus metrics on /metrics");
            }
            background.push(tokio::spawn(serve_metrics(
                listener,
                shared.clone(),
                stop_rx.clone(),
            )));
        }
        if let Some(interval) = config.watch {
            tracing::info!(path = %shared.path.display(), ?interval, "watching the model file");
            background.push(tokio::spawn(watch_file(
                shared.clone(),
                interval,
                stop_rx.clone(),
            )));
        }

        let drain_started = Arc::new(Notify::new());
        let signal = {
            let (shared, drain_started) = (shared.clone(), drain_started.clone());
            async move {
                shutdown.await;
                tracing::info!(
                    in_flight = shared
                        .metrics
                        .in_flight
                        .load(std::sync::atomic::Ordering::Relaxed),
                    "shutting down: refusing new calls, draining calls in flight"
                );
                shared.start_draining();
                health.send_replace(ServingStatus::NotServing);
                drain_started.notify_one();
            }
        };

        tracing::info!(%addr, model_id = shared.current().model.id(), path = %shared.path.display(), "serving slant.v1.Scorer");
        let incoming = TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .map(|accepted| accepted.map(CoalescingIo));
        // Receive windows big enough for many concurrent large requests on
        // one connection (h2's default 64 KiB connection window would
        // serialise them); the load generator sets the same for responses.
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &config.tls {
            builder = builder.tls_config(tls_config(tls)?)?;
            tracing::info!(cert = %tls.cert.display(), client_certificates = tls.client_ca.is_some(), "serving TLS");
        }
        let serve = builder
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .add_service(Observed::new(scorer, shared.clone()))
            .add_service(Observed::new(health_service, shared.clone()))
            .add_service(Observed::new(reflection_v1, shared.clone()))
            .add_service(Observed::new(reflection_v1alpha, shared.clone()))
            .serve_with_incoming_shutdown(incoming, signal);
        let drain_timeout = config.drain_timeout;
        let result = tokio::select! {
            result = serve => result.map_err(ServiceError::from),
            _ = async { drain_started.notified().await; tokio::time::sleep(drain_timeout).await } => {
                tracing::warn!(
                    in_flight = shared.metrics.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                    ?drain_timeout,
                    "drain timeout: abandoning the calls still in flight"
                );
                Ok(())
            }
        };
        let _ = stop_tx.send(true);
        for task in background {
            let _ = task.await;
        }
        if result.is_ok() {
            tracing::info!("server stopped");
        }
        result
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

/// An accepted connection that tells HTTP/2 it has no vectored writes.
///
/// h2 sends a DATA frame of 256 bytes or more (1 KiB without vectored
/// writes) from its own buffer, which costs a write of its own: with
/// vectored writes every Score response of a few hundred bytes took two
/// syscalls, twice what a health check takes. Without, frames under 1 KiB
/// are copied into h2's write buffer and many responses leave in one
/// write; bigger ones are written in two plain writes instead of one
/// vectored write, which their size amortises.
#[derive(Debug)]
struct CoalescingIo(TcpStream);

impl AsyncRead for CoalescingIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for CoalescingIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl Connected for CoalescingIo {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.connect_info()
    }
}

/// The rustls configuration for `tls`'s PEM files.
fn tls_config(tls: &super::TlsFiles) -> Result<tonic::transport::ServerTlsConfig, ServiceError> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ServiceError::TlsFile {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut config =
        ServerTlsConfig::new().identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
    if let Some(ca) = &tls.client_ca {
        config = config.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(config)
}
