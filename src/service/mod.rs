//! Service: the `slant.v1` gRPC server and its load generator.
//!
//! [`serve`] is `slant serve`: it parses nothing itself (flags arrive as
//! [`ServeArgs`]), binds, installs the signal handlers (SIGHUP reloads the
//! model, SIGTERM/Ctrl-C drains and stops) and calls [`Server::run`], which
//! is also what the tests call on `127.0.0.1:0`.
//!
//! # Layout
//! - `config`: [`ServerConfig`] and [`Limits`], size and duration parsers.
//! - `server`: [`Server`] (model loading, services, shutdown and drain).
//! - `scorer`: the Scorer handlers: request checks, scoring, wire types.
//! - `state`: the shared state, the swappable model, hot reload, `--watch`.
//! - `health`: `grpc.health.v1.Health` for "" and "slant.v1.Scorer".
//! - `observe`: per-call metrics, drain refusal, status mapping.
//! - `metrics`: counters, histograms and the `/metrics` responder.
//! - `bench`: `slant bench grpc`, the load generator.
//! - `error`: [`ServiceError`].

mod bench;
mod config;
mod error;
mod health;
mod metrics;
mod observe;
mod scorer;
mod server;
mod state;

use std::path::PathBuf;
use std::time::Duration;

pub use bench::{bench_grpc, BenchGrpcArgs, BenchReport, BenchRpc, RawCodec};
pub use config::{parse_bytes, parse_duration, Limits, ServerConfig, TlsFiles};
pub use error::ServiceError;
pub use server::{run, Server, FILE_DESCRIPTOR_SET};
pub use state::ReloadHandle;

/// Log output format.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// Serve the slant.v1 gRPC API (with health, reflection, limits, hot
/// reload and metrics).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Model file to serve.
    #[arg(long, env = "SLANT_MODEL", default_value = "models/default.slant")]
    pub model: PathBuf,
    /// Address to serve gRPC on (HOST:PORT).
    #[arg(long, env = "SLANT_ADDR", default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// Address to serve Prometheus metrics on, at /metrics (HOST:PORT); off
    /// unless given.
    #[arg(long, env = "SLANT_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Most passages in one Score request; more is RESOURCE_EXHAUSTED.
    #[arg(long, env = "SLANT_MAX_BATCH", default_value_t = 1024)]
    pub max_batch: usize,
    /// Largest passage (or title) in bytes, e.g. 65536 or 64KiB; larger is
    /// INVALID_ARGUMENT. Articles are split into passages of at most this.
    #[arg(long, env = "SLANT_MAX_PASSAGE_BYTES", default_value = "64KiB", value_parser = parse_bytes)]
    pub max_passage_bytes: usize,
    /// Largest article (text plus title) in bytes; larger is
    /// INVALID_ARGUMENT.
    #[arg(long, env = "SLANT_MAX_ARTICLE_BYTES", default_value = "1MiB", value_parser = parse_bytes)]
    pub max_article_bytes: usize,
    /// Largest request message in bytes; larger is RESOURCE_EXHAUSTED.
    #[arg(long, env = "SLANT_MAX_MESSAGE_BYTES", default_value = "4MiB", value_parser = parse_bytes)]
    pub max_message_bytes: usize,
    /// Most feature contributions per head a request may ask for
    /// (`explain`); more is INVALID_ARGUMENT.
    #[arg(long, env = "SLANT_MAX_EXPLAIN", default_value_t = 64)]
    pub max_explain: u32,
    /// On SIGTERM or Ctrl-C, how long calls in flight may still run before
    /// the server exits anyway (e.g. 10s, 500ms).
    #[arg(long, env = "SLANT_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Reload the model when its file changes (checked every second), as
    /// well as on SIGHUP.
    #[arg(long, env = "SLANT_WATCH")]
    pub watch: bool,
    /// TLS certificate chain (PEM); with --tls-key, serves TLS instead of plaintext.
    #[arg(long, env = "SLANT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, env = "SLANT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM) that client certificates must chain to; with it, clients must present one.
    #[arg(long, env = "SLANT_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Log format (levels via RUST_LOG, default info).
    #[arg(long, env = "SLANT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            model_path: self.model.clone(),
            limits: Limits {
                max_batch: self.max_batch,
                max_passage_bytes: self.max_passage_bytes,
                max_article_bytes: self.max_article_bytes,
                max_message_bytes: self.max_message_bytes,
                max_explain: self.max_explain,
            },
            drain_timeout: self.drain_timeout,
            watch: self.watch.then_some(Duration::from_secs(1)),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                }),
                _ => None,
            },
        }
    }
}

/// Installs the global tracing subscriber: logs to stderr, filtered by
/// `RUST_LOG` (default `info`), as plain lines or JSON.
pub fn init_tracing(format: LogFormat) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

/// Whether `addr` (HOST:PORT) names a loopback host.
fn is_loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `slant serve`: loads the model, serves until SIGTERM or Ctrl-C, drains,
/// returns `Ok` (exit code 0). SIGHUP reloads the model.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.server_config();
    if config.tls.is_none() && !is_loopback(&args.addr) {
        tracing::warn!(addr = %args.addr, "serving plaintext gRPC on a non-loopback address; pass --tls-cert and --tls-key to encrypt it");
    }
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: args.addr.clone(),
            source,
        })?;
    let metrics_listener = match &args.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServiceError::Bind {
                    addr: addr.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let mut server = Server::new(config).await?;
    if let Some(listener) = metrics_listener {
        server = server.with_metrics_listener(listener);
    }
    let reload = server.reload_handle();
    let shutdown = signals::install(reload)?;
    server.run(listener, shutdown).await?;
    Ok(())
}

mod signals {
    use std::future::Future;

    use super::{ReloadHandle, ServiceError};

    /// Spawns the SIGHUP → reload loop; returns a future that resolves on
    /// SIGTERM or Ctrl-C.
    #[cfg(unix)]
    pub(super) fn install(reload: ReloadHandle) -> Result<impl Future<Output = ()>, ServiceError> {
        use tokio::signal::unix::{signal, SignalKind};
        let err = |signal| move |source| ServiceError::Signal { signal, source };
        let mut hup = signal(SignalKind::hangup()).map_err(err("SIGHUP"))?;
        let mut term = signal(SignalKind::terminate()).map_err(err("SIGTERM"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(err("SIGINT"))?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the model");
                // Failures are logged and counted by reload().
                let _ = reload.reload().await;
            }
        });
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        })
    }

    #[cfg(not(unix))]
    pub(super) fn install(_reload: ReloadHandle) -> Result<impl Future<Output = ()>, ServiceError> {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C received");
            }
        })
    }
}
