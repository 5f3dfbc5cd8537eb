//! Server configuration: the limits a request is checked against, the
//! limits and timeouts of connections, and the reload, drain and watch
//! timings. (The command line builds it from flags.)

use std::path::PathBuf;
use std::time::Duration;

use super::access::AccessLog;
use super::callers::CallerPolicy;
use super::catalog::ModelSource;

/// Request limits. Each names the command-line flag that sets it, and
/// every refusal's message names that flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `--max-batch`: passages in one Score request (RESOURCE_EXHAUSTED).
    pub max_batch: usize,
    /// `--max-passage-bytes`: bytes in one passage or title
    /// (INVALID_ARGUMENT); also the length limit when splitting articles.
    pub max_passage_bytes: usize,
    /// `--max-article-bytes`: bytes of an article's text plus title
    /// (INVALID_ARGUMENT).
    pub max_article_bytes: usize,
    /// `--max-message-bytes`: size of one encoded request message
    /// (RESOURCE_EXHAUSTED), applied by the gRPC decoder.
    pub max_message_bytes: usize,
    /// `--max-explain`: contributions per head a request may ask for
    /// (INVALID_ARGUMENT).
    pub max_explain: u32,
    /// `--max-contributions`: passages × heads × explain in one request,
    /// the explanations it may cause (RESOURCE_EXHAUSTED, before scoring).
    pub max_contributions: usize,
    /// `--max-spans`: spans listed per contribution; a feature that occurs
    /// more often lists its first this many.
    pub max_spans: usize,
    /// `--max-response-bytes`: size of one encoded response
    /// (RESOURCE_EXHAUSTED).
    pub max_response_bytes: usize,
    /// `--max-buffered-bytes`: responses built but not yet taken by their
    /// clients, server-wide; a call that would go over is refused
    /// (RESOURCE_EXHAUSTED) rather than letting slow readers grow memory.
    pub max_buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            max_passage_bytes: 64 * 1024,
            max_article_bytes: 1024 * 1024,
            max_message_bytes: 4 * 1024 * 1024,
            max_explain: 64,
            max_contributions: 16_384,
            max_spans: 16,
            max_response_bytes: 4 * 1024 * 1024,
            max_buffered_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Per-connection limits and timeouts (see `transport`). Each names the
/// command-line flag that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `--max-connections`: open connections; one more is closed at once.
    pub max_connections: usize,
    /// `--max-concurrent-streams`: calls at once on one HTTP/2 connection
    /// (advertised in SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// `--max-header-bytes`: request header block (HTTP/2
    /// SETTINGS_MAX_HEADER_LIST_SIZE; HTTP/1.1's read buffer).
    pub max_header_bytes: u32,
    /// `--handshake-timeout`: TLS handshake and first request.
    pub handshake_timeout: Duration,
    /// `--idle-timeout`: a connection with no call for this long is closed.
    pub idle_timeout: Duration,
    /// `--keepalive-interval`: HTTP/2 PING every this long...
    pub keepalive_interval: Duration,
    /// `--keepalive-timeout`: ...and the connection is closed when the
    /// answer takes longer than this.
    pub keepalive_timeout: Duration,
    /// `--send-timeout`: a response the client does not take for this long
    /// closes its connection.
    pub send_timeout: Duration,
    /// `--receive-timeout`: a call whose request data stops arriving for
    /// this long (before its message is whole, or between a stream's
    /// messages) is cancelled.
    pub receive_timeout: Duration,
    /// `--max-buffered-bytes-per-connection`: one connection's share of
    /// the responses built but not yet taken (RESOURCE_EXHAUSTED beyond).
    pub max_buffered_bytes_per_connection: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_concurrent_streams: 128,
            max_header_bytes: 16 * 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
            send_timeout: Duration::from_secs(30),
            receive_timeout: Duration::from_secs(30),
            max_buffered_bytes_per_connection: 16 * 1024 * 1024,
        }
    }
}

/// Everything [`Server`](super::Server) needs besides its sockets.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Where the models come from: loaded at start, reloaded on request.
    pub models: ModelSource,
    /// Versions of each model kept loaded, newest first (`--keep-versions`).
    pub keep_versions: usize,
    pub limits: Limits,
    pub connections: ConnectionLimits,
    /// API keys and concurrency limits.
    pub callers: CallerPolicy,
    /// Where access lines go.
    pub access_log: AccessLog,
    /// A model load (start-up or reload) that takes longer is abandoned;
    /// the loaded model keeps serving.
    pub reload_timeout: Duration,
    /// How long calls in flight may run after shutdown starts.
    pub drain_timeout: Duration,
    /// Poll the model files' (length, mtime, inode) this often and reload
    /// when they change; `None` turns watching off.
    pub watch: Option<Duration>,
    /// Serve TLS (rustls) with these PEM files; `None` serves plaintext.
    pub tls: Option<TlsFiles>,
    /// Origins whose pages may call the API from a browser (CORS; `*`:
    /// any). Empty: CORS is off.
    pub cors_origins: Vec<String>,
}

/// PEM files for TLS: the server's certificate chain and key, and, to
/// require client certificates, the CA that signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl ServerConfig {
    /// One model file (served as `default`), two versions kept, default
    /// limits, a 10 s drain, a 30 s reload timeout, no watching, no CORS.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            models: ModelSource::File(model_path.into()),
            keep_versions: 2,
            limits: Limits::default(),
            connections: ConnectionLimits::default(),
            callers: CallerPolicy::default(),
            access_log: AccessLog::Off,
            reload_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            watch: None,
            tls: None,
            cors_origins: Vec::new(),
        }
    }
}
