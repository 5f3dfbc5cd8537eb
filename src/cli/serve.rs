//! `slant serve` and `slant bench grpc`: their flags, the log set-up, the
//! signals, and the translation of flags into the library's
//! [`ServerConfig`] and [`LoadSpec`]. The server and the load generator
//! themselves are library code (`service`, `client`).
//!
//! Signals are installed before the port opens, so a SIGHUP that arrives
//! while the server starts is a reload, not the default action (exit).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::client::{BenchProtocol, BenchRpc, LoadSpec};
use crate::service::{
    AccessLog, CallerPolicy, ConnectionLimits, Limits, ModelSource, ReloadHandle, Server,
    ServerConfig, TlsFiles,
};

/// Log output format.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// Serve the slant.v1 API on one port: gRPC (with health and reflection),
/// gRPC-Web, and JSON over HTTP/1.1 and HTTP/2 (POST /v1/score,
/// /v1/score-article; GET /v1/model, /v1/models, /healthz, /metrics,
/// /openapi.json), and at / a page that scores an article. Limits, keys,
/// TLS and deadlines apply to every protocol; hot reload and metrics.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Model file to serve, as the model named "default".
    #[arg(long, env = "SLANT_MODEL", default_value = "models/default.slant")]
    pub model: PathBuf,
    /// Serve every model under DIR/<name>/<version>.slant (versions are
    /// whole numbers) instead of one --model file. Requests name a model
    /// (empty: "default") and may pin a version or a model id.
    #[arg(long, env = "SLANT_MODEL_DIR", conflicts_with = "model")]
    pub model_dir: Option<PathBuf>,
    /// Versions of each model kept loaded, newest first: a caller pinned
    /// to an older one keeps its answers while a new one rolls out. Each
    /// version held costs its memory (the default model: about 60 MiB).
    #[arg(long, env = "SLANT_KEEP_VERSIONS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_versions: u64,
    /// Address to serve on (HOST:PORT): gRPC, gRPC-Web, the JSON API and the page.
    #[arg(long, env = "SLANT_ADDR", default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// Also serve Prometheus metrics at /metrics on this address (HOST:PORT),
    /// besides /metrics on --addr.
    #[arg(long, env = "SLANT_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Most passages in one Score request; more is RESOURCE_EXHAUSTED (HTTP
    /// 413).
    #[arg(long, env = "SLANT_MAX_BATCH", default_value_t = 1024)]
    pub max_batch: usize,
    /// Largest passage (or title) in bytes, e.g. 65536 or 64KiB; larger is
    /// INVALID_ARGUMENT (HTTP 400). Articles are split into passages of at
    /// most this.
    #[arg(long, env = "SLANT_MAX_PASSAGE_BYTES", default_value = "64KiB", value_parser = parse_bytes)]
    pub max_passage_bytes: usize,
    /// Largest article (text plus title) in bytes; larger is
    /// INVALID_ARGUMENT (HTTP 400).
    #[arg(long, env = "SLANT_MAX_ARTICLE_BYTES", default_value = "1MiB", value_parser = parse_bytes)]
    pub max_article_bytes: usize,
    /// Largest request message in bytes (a JSON request body too); larger
    /// is RESOURCE_EXHAUSTED (HTTP 413).
    #[arg(long, env = "SLANT_MAX_MESSAGE_BYTES", default_value = "4MiB", value_parser = parse_bytes)]
    pub max_message_bytes: usize,
    /// Most feature contributions per head a request may ask for
    /// (`explain`); more is INVALID_ARGUMENT.
    #[arg(long, env = "SLANT_MAX_EXPLAIN", default_value_t = 64)]
    pub max_explain: u32,
    /// Most contributions one request may ask for in all: passages × heads ×
    /// explain. More is RESOURCE_EXHAUSTED (HTTP 413), before any scoring.
    #[arg(long, env = "SLANT_MAX_CONTRIBUTIONS", default_value_t = 16_384)]
    pub max_contributions: usize,
    /// Spans listed per contribution; a feature that occurs more often in
    /// a passage lists its first this many.
    #[arg(long, env = "SLANT_MAX_SPANS", default_value_t = 16)]
    pub max_spans: usize,
    /// Largest response in bytes (its protobuf encoding, whatever the
    /// protocol); a call whose answer would be larger is RESOURCE_EXHAUSTED
    /// (HTTP 413).
    #[arg(long, env = "SLANT_MAX_RESPONSE_BYTES", default_value = "4MiB", value_parser = parse_bytes)]
    pub max_response_bytes: usize,
    /// Responses built but not yet taken by their clients, in bytes, across
    /// the server; a call that would pass it is RESOURCE_EXHAUSTED (HTTP
    /// 429; slow readers cannot grow memory without bound).
    #[arg(long, env = "SLANT_MAX_BUFFERED_BYTES", default_value = "64MiB", value_parser = parse_bytes)]
    pub max_buffered_bytes: usize,
    /// Most open connections; one more is closed at once. Raise the
    /// process's open-file limit to match (slant raises its soft limit to
    /// the hard one at start).
    #[arg(long, env = "SLANT_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Most calls at once on one HTTP/2 connection
    /// (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "SLANT_MAX_CONCURRENT_STREAMS", default_value_t = 128)]
    pub max_concurrent_streams: u32,
    /// Largest request header block in bytes (HTTP/2
    /// SETTINGS_MAX_HEADER_LIST_SIZE; HTTP/1.1 read buffer).
    #[arg(long, env = "SLANT_MAX_HEADER_BYTES", default_value = "16KiB", value_parser = parse_bytes)]
    pub max_header_bytes: usize,
    /// A connection must finish its TLS handshake, and send its first
    /// request, within this; else it is closed.
    #[arg(long, env = "SLANT_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// A connection with no call running for this long is closed (HTTP/2
    /// GOAWAY).
    #[arg(long, env = "SLANT_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// HTTP/2 keepalive: a PING every this long...
    #[arg(long, env = "SLANT_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub keepalive_interval: Duration,
    /// ...answered within this, or the connection is closed.
    #[arg(long, env = "SLANT_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,
    /// A response its client does not take (a shut flow-control window, a
    /// socket it does not read) for this long closes the connection.
    #[arg(long, env = "SLANT_SEND_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub send_timeout: Duration,
    /// A call whose request data stops arriving for this long (before its
    /// message is whole, or between a stream's messages) is cancelled.
    #[arg(long, env = "SLANT_RECEIVE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub receive_timeout: Duration,
    /// One connection's share of --max-buffered-bytes: a client that does
    /// not read its responses cannot hold more (RESOURCE_EXHAUSTED, HTTP 429,
    /// beyond).
    #[arg(long, env = "SLANT_MAX_BUFFERED_BYTES_PER_CONNECTION", default_value = "16MiB", value_parser = parse_bytes)]
    pub max_buffered_bytes_per_connection: usize,
    /// A model load (start-up, SIGHUP or --watch) that takes longer is
    /// abandoned; the loaded model keeps serving.
    #[arg(long, env = "SLANT_RELOAD_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub reload_timeout: Duration,
    /// On SIGTERM or Ctrl-C, how long calls in flight may still run before
    /// the server exits anyway (e.g. 10s, 500ms).
    #[arg(long, env = "SLANT_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Reload when a model file changes, comes or goes, and the API keys
    /// when their file changes (checked every second), as well as on
    /// SIGHUP.
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
    /// File of API keys, one `name:sha256-of-key` a line (reloaded on
    /// SIGHUP): Scorer calls (gRPC, gRPC-Web and JSON) then need
    /// `authorization: Bearer KEY`, else UNAUTHENTICATED (HTTP 401). Make a line with `printf %s "$KEY" | sha256sum`.
    #[arg(long, env = "SLANT_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// With --api-keys, health checks (and /healthz), reflection and
    /// /metrics on the API port need a key too; the page and
    /// /openapi.json never do.
    #[arg(long, env = "SLANT_PROTECT_ALL", requires = "api_keys")]
    pub protect_all: bool,
    /// Most Scorer calls at once, server-wide (0: no limit); one more is
    /// refused at once with RESOURCE_EXHAUSTED (HTTP 429) and a retry hint.
    /// Each call
    /// in flight holds its request and response in memory, so this also
    /// bounds the memory all clients together can make the server hold.
    #[arg(long, env = "SLANT_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Most Scorer calls at once per API key (with --api-keys); one more
    /// is refused at once with RESOURCE_EXHAUSTED (HTTP 429) and a retry
    /// hint.
    #[arg(long, env = "SLANT_MAX_CONCURRENT_PER_KEY", requires = "api_keys")]
    pub max_concurrent_per_key: Option<usize>,
    /// One JSON line per call (time, method, key name, model, version,
    /// passages, bytes, status, latency; never the text): off, stdout or a
    /// file path (appended to, reopened on SIGHUP).
    #[arg(long, env = "SLANT_ACCESS_LOG", default_value = "off", value_parser = clap::builder::ValueParser::new(str::parse::<AccessLog>))]
    pub access_log: AccessLog,
    /// Let pages from ORIGIN (e.g. https://news.example.com; `*`: any)
    /// call the JSON API and gRPC-Web from a browser (CORS). Repeatable;
    /// comma-separated in SLANT_CORS_ORIGIN. Off unless given.
    #[arg(
        long = "cors-origin",
        env = "SLANT_CORS_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Log format (levels via RUST_LOG, default info).
    #[arg(long, env = "SLANT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            models: match &self.model_dir {
                Some(dir) => ModelSource::Dir(dir.clone()),
                None => ModelSource::File(self.model.clone()),
            },
            keep_versions: usize::try_from(self.keep_versions).unwrap_or(usize::MAX),
            limits: Limits {
                max_batch: self.max_batch,
                max_passage_bytes: self.max_passage_bytes,
                max_article_bytes: self.max_article_bytes,
                max_message_bytes: self.max_message_bytes,
                max_explain: self.max_explain,
                max_contributions: self.max_contributions,
                max_spans: self.max_spans,
                max_response_bytes: self.max_response_bytes,
                max_buffered_bytes: self.max_buffered_bytes,
            },
            connections: ConnectionLimits {
                max_connections: self.max_connections,
                max_concurrent_streams: self.max_concurrent_streams,
                max_header_bytes: u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX),
                handshake_timeout: self.handshake_timeout,
                idle_timeout: self.idle_timeout,
                keepalive_interval: self.keepalive_interval,
                keepalive_timeout: self.keepalive_timeout,
                send_timeout: self.send_timeout,
                receive_timeout: self.receive_timeout,
                max_buffered_bytes_per_connection: self.max_buffered_bytes_per_connection,
            },
            callers: CallerPolicy {
                api_keys: self.api_keys.clone(),
                protect_all: self.protect_all,
                max_concurrent_requests: (self.max_concurrent_requests > 0)
                    .then_some(self.max_concurrent_requests),
                max_concurrent_per_key: self.max_concurrent_per_key,
            },
            access_log: self.access_log.clone(),
            reload_timeout: self.reload_timeout,
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
            cors_origins: self.cors_origins.clone(),
        }
    }
}

/// Drive a running server over gRPC or its JSON API and report
/// throughput, latency and errors.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchGrpcArgs {
    /// Server address (HOST:PORT or http://HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// The call to make: score or health.
    #[arg(long, default_value = "score", value_parser = clap::builder::ValueParser::new(str::parse::<BenchRpc>))]
    pub rpc: BenchRpc,
    /// How to call: grpc; json (POST /v1/score, or GET /healthz for
    /// health, over HTTP/1.1 with one keep-alive connection per task); or
    /// json-h2 (the same over HTTP/2, on --connections connections).
    #[arg(long, default_value = "grpc", value_parser = clap::builder::ValueParser::new(str::parse::<BenchProtocol>))]
    pub protocol: BenchProtocol,
    /// Passages per Score call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Calls in flight at once (one task each, one call at a time).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to measure: seconds or a duration such as 10s or 500ms.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up before measuring.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// HTTP/2 connections to spread the calls over (json: one per task).
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Score the text of every */train.jsonl under DIR (folders in sorted
    /// order) instead of the built-in news sentences.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Heads to request (repeatable; default all).
    #[arg(long = "head")]
    pub heads: Vec<String>,
    /// Contributions per head to request.
    #[arg(long, default_value_t = 0)]
    pub explain: u32,
    /// API key to send (`authorization: Bearer KEY`) to a server run with
    /// --api-keys.
    #[arg(long, env = "SLANT_API_KEY")]
    pub api_key: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl BenchGrpcArgs {
    pub fn load_spec(&self) -> LoadSpec {
        LoadSpec {
            addr: self.addr.clone(),
            rpc: self.rpc,
            protocol: self.protocol,
            batch: self.batch,
            concurrency: self.concurrency,
            duration: self.duration,
            warmup: self.warmup,
            connections: self.connections,
            corpus: self.corpus.clone(),
            heads: self.heads.clone(),
            explain: self.explain,
            api_key: self.api_key.clone(),
        }
    }
}

/// Installs the global tracing subscriber: logs to stderr, filtered by
/// `RUST_LOG` (default `info`), as plain lines or JSON.
pub fn init_tracing(format: LogFormat) -> Result<()> {
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

/// `slant serve`: installs the signal handlers, binds, loads the model,
/// serves until SIGTERM or Ctrl-C, drains, returns `Ok` (exit code 0).
/// SIGHUP reloads the model.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let signals = Signals::install()?;
    let config = args.server_config();
    raise_open_file_limit(config.connections.max_connections);
    if config.tls.is_none() && !is_loopback(&args.addr) {
        tracing::warn!(addr = %args.addr, "serving plaintext on a non-loopback address; pass --tls-cert and --tls-key to encrypt it");
    }
    let bind = |addr: String| async move {
        tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))
    };
    let listener = bind(args.addr.clone()).await?;
    let metrics_listener = match &args.metrics_addr {
        Some(addr) => Some(bind(addr.clone()).await?),
        None => None,
    };
    let mut server = Server::new(config).await?;
    if let Some(listener) = metrics_listener {
        server = server.with_metrics_listener(listener);
    }
    let shutdown = signals.run(server.reload_handle());
    server.run(listener, shutdown).await?;
    Ok(())
}

/// The open-file limit bounds connections: raise the soft limit to the
/// hard one (as Go's runtime does), and warn when it is still below what
/// `--max-connections` needs.
fn raise_open_file_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
        }
        // Files besides connections: listeners, the model, logs, threads.
        let needed = max_connections as libc::rlim_t + 64;
        if lim.rlim_cur < needed {
            tracing::warn!(
                open_files = lim.rlim_cur,
                max_connections,
                "the open-file limit is below --max-connections + 64; connections past it fail to be accepted (raise `ulimit -n` or lower --max-connections)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}

/// The process's signal streams, created before anything else so that no
/// signal meets its default action once the server starts.
struct Signals {
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let make = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("cannot install the {name} handler"))
        };
        Ok(Self {
            hup: make(SignalKind::hangup(), "SIGHUP")?,
            term: make(SignalKind::terminate(), "SIGTERM")?,
            int: make(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> Result<Self> {
        Ok(Self {})
    }

    /// Spawns the SIGHUP → reload loop; returns a future that resolves on
    /// SIGTERM or Ctrl-C.
    #[cfg(unix)]
    fn run(self, reload: ReloadHandle) -> impl Future<Output = ()> {
        let Self {
            mut hup,
            mut term,
            mut int,
        } = self;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the model");
                // Failures are logged and counted by reload().
                let _ = reload.reload().await;
            }
        });
        async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
    }

    #[cfg(not(unix))]
    fn run(self, _reload: ReloadHandle) -> impl Future<Output = ()> {
        async {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C received");
            }
        }
    }
}

/// Parses a byte size: a plain number of bytes, or a number with a suffix
/// `K`/`KiB`, `M`/`MiB`, `G`/`GiB` (all powers of 1024; `B` alone = bytes).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (expected e.g. 65536, 64KiB or 4MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration: a number of seconds (`10`, `0.5`) or a number with a
/// unit `ms`, `s`, `m` or `h` (`500ms`, `10s`, `2m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (expected e.g. 10s, 500ms or 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "ms" => v / 1e3,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("4 MiB"), Ok(4 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:50051"));
        assert!(is_loopback("[::1]:50051"));
        assert!(is_loopback("localhost:1"));
        assert!(!is_loopback("0.0.0.0:50051"));
        assert!(!is_loopback("example.com:443"));
    }
}
