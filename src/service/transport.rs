//! Connections: the accept loop, TLS, HTTP/1.1 and HTTP/2 (hyper), and the
//! limits that keep one client from holding what others need.
//!
//! tonic's own server offers no cap on connections, no deadline for a
//! connection's first request, no idle timeout and no bound on responses a
//! client leaves unread, and it retries a failing `accept` (out of file
//! descriptors) in a busy loop. So slant accepts connections itself and
//! hands each to hyper's connection builder (the same one tonic uses),
//! with a watchdog per connection:
//!
//! - **Connections**: at most `max_connections`; one over the cap is
//!   accepted and closed at once (counted, logged at debug), so the kernel
//!   backlog never fills with clients that wait for nothing.
//! - **Handshake**: TLS must finish, and the first request must arrive,
//!   within `handshake_timeout` (an idle socket, an HTTP/2 preface without
//!   SETTINGS, a stalled TLS handshake: all closed then).
//! - **Idle**: a connection with no call running for `idle_timeout` is
//!   closed gracefully (GOAWAY on HTTP/2).
//! - **Unread responses**: a response the client does not take (its
//!   flow-control window stays shut, or it stops reading the socket) for
//!   `send_timeout` closes the connection, which frees the response.
//!   HTTP/2 also caps streams per connection and header bytes, sends
//!   keepalive PINGs, and bounds what it buffers per stream.
//! - **Accept errors** (EMFILE and the like) back off and are logged at
//!   most once every few seconds.
//!
//! Shutdown: when `stop` turns true the listener closes, every connection
//! is asked to finish gracefully, and [`serve`] returns once all are gone.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::TcpConnectInfo;
use tower::Service;

use super::budget::{Budget, ConnectionBudget, Held};
use super::config::ConnectionLimits;
use super::metrics::ReasonLabel;
use super::state::stopped;

/// HTTP/2 flow-control windows (the load generator asks for the same):
/// big enough for many concurrent large requests on one connection (h2's
/// default 64 KiB connection window would serialise them).
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 8 << 20;
/// What HTTP/2 buffers per stream beyond the client's window; the rest of
/// a response waits in its body, which `send_timeout` bounds in time.
const SEND_BUFFER: usize = 256 * 1024;
/// Streams a client may reset before it is shut out (rapid reset).
const PENDING_RESETS: usize = 64;
/// After a graceful close is asked for, how long a connection may take to
/// finish before it is dropped (a client that never reads the GOAWAY).
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How often a failing `accept` may be logged.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(5);

/// Milliseconds since the first call, a cheap clock for the watchdogs.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Counters the transport keeps for `/metrics`.
#[derive(Debug)]
pub(crate) struct ConnectionStats {
    open: Gauge,
    refused: Counter,
    /// Closed by the watchdog, by reason (each shares its counter with
    /// `closed`).
    closed: Family<ReasonLabel, Counter>,
    closed_handshake: Counter,
    closed_idle: Counter,
    closed_unread: Counter,
    tls_failed: Counter,
}

impl Default for ConnectionStats {
    fn default() -> Self {
        let closed = Family::<ReasonLabel, Counter>::default();
        let reason = |reason| closed.get_or_create_owned(&ReasonLabel { reason });
        Self {
            open: Gauge::default(),
            refused: Counter::default(),
            closed_handshake: reason("handshake"),
            closed_idle: reason("idle"),
            closed_unread: reason("unread"),
            closed,
            tls_failed: Counter::default(),
        }
    }
}

impl ConnectionStats {
    /// Adds these counters to `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "slant_connections_open",
            "Connections open now",
            self.open.clone(),
        );
        registry.register(
            "slant_connections_refused",
            "Connections closed at once: over the max-connections limit",
            self.refused.clone(),
        );
        registry.register(
            "slant_connections_closed",
            "Connections the server closed, by reason (handshake, idle, unread)",
            self.closed.clone(),
        );
        registry.register(
            "slant_tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            self.tls_failed.clone(),
        );
    }
}

/// How connections on one listener are served.
#[derive(Clone)]
pub(crate) struct Transport {
    builder: Arc<auto::Builder<TokioExecutor>>,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.tls.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(
        limits: ConnectionLimits,
        tls: Option<TlsAcceptor>,
        stats: Arc<ConnectionStats>,
    ) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.handshake_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192) as usize)
            .writev(false);
        builder
            .http2()
            .timer(TokioTimer::new())
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(limits.max_header_bytes)
            .max_send_buf_size(SEND_BUFFER)
            .max_pending_accept_reset_streams(PENDING_RESETS)
            .keep_alive_interval(limits.keepalive_interval)
            .keep_alive_timeout(limits.keepalive_timeout);
        Self {
            builder: Arc::new(builder),
            tls,
            limits,
            stats,
        }
    }
}

/// Serves `service` on `listener` until `stop` turns true, then asks every
/// connection to finish and returns when they have.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    service: S,
    transport: Transport,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<axum::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let cap = transport.limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(cap));
    let mut last_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                if !transient(&e) {
                    // Out of file descriptors or similar: back off, and
                    // say so now and then rather than every time.
                    if last_log.is_none_or(|t| t.elapsed() >= ACCEPT_LOG_EVERY) {
                        tracing::warn!(error = %e, "accept failed; retrying");
                        last_log = Some(Instant::now());
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = stopped(&mut stop) => break,
                    }
                }
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            transport.stats.refused.inc();
            tracing::debug!(%peer, max_connections = cap, "refusing a connection: at the max-connections limit");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (transport, service, stop) = (transport.clone(), service.clone(), stop.clone());
        tokio::spawn(async move {
            transport.stats.open.inc();
            connection(tcp, peer, service, &transport, stop).await;
            transport.stats.open.dec();
            drop(slot);
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends.
    let _ = slots.acquire_many(cap as u32).await;
}

/// Errors that concern one connection attempt, not the listener.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// One connection from accept to close.
async fn connection<S>(
    tcp: TcpStream,
    peer: SocketAddr,
    service: S,
    transport: &Transport,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<axum::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let limits = &transport.limits;
    let local = tcp.local_addr().ok();
    let io = match &transport.tls {
        None => Io::Plain(tcp),
        Some(acceptor) => {
            let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
            let outcome = tokio::select! {
                outcome = handshake => outcome,
                _ = stopped(&mut stop) => return,
            };
            match outcome {
                Ok(Ok(tls)) => Io::Tls(Box::new(tls)),
                Ok(Err(e)) => {
                    transport.stats.tls_failed.inc();
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    transport.stats.tls_failed.inc();
                    transport.stats.closed_handshake.inc();
                    tracing::debug!(%peer, timeout = ?limits.handshake_timeout, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let state = Arc::new(ConnState::new(now_ms()));
    let service = Tracked {
        inner: service,
        state: state.clone(),
        budget: ConnectionBudget(Budget::new(limits.max_buffered_bytes_per_connection)),
        info: TcpConnectInfo {
            local_addr: local,
            remote_addr: Some(peer),
        },
    };
    let conn = transport
        .builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let tick = [
        limits.handshake_timeout,
        limits.idle_timeout,
        limits.send_timeout,
    ]
    .into_iter()
    .min()
    .unwrap_or(Duration::from_secs(1))
    .div_f64(4.0)
    .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whether a graceful close was asked for, and until when it may take
    // (a server drain: until the server's drain timeout gives up on it).
    let mut closing: Option<Option<Instant>> = None;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stopped(&mut stop), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(None);
            }
            _ = ticks.tick() => {
                if closing.flatten().is_some_and(|at| Instant::now() >= at) {
                    tracing::debug!(%peer, "closing a connection that did not finish closing");
                    return;
                }
                match state.verdict(limits, now_ms()) {
                    Verdict::Keep => {}
                    Verdict::Close(why) => {
                        transport.stats.closed_handshake.inc();
                        tracing::debug!(%peer, why, "closing the connection");
                        return;
                    }
                    Verdict::Unread(why) => {
                        transport.stats.closed_unread.inc();
                        tracing::debug!(%peer, why, "closing the connection");
                        return;
                    }
                    Verdict::Idle if closing.is_none() => {
                        transport.stats.closed_idle.inc();
                        tracing::debug!(%peer, idle_timeout = ?limits.idle_timeout, "closing an idle connection");
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Some(Instant::now() + CLOSE_GRACE));
                    }
                    Verdict::Idle => {}
                }
            }
        }
    }
}

/// What the watchdog decides about a connection.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Keep,
    /// Drop it now: it never sent a request in time.
    Close(&'static str),
    /// Drop it now: a response waits unread.
    Unread(&'static str),
    /// Close it gracefully: nothing has run on it for a while.
    Idle,
}

/// What a connection's watchdog reads; updated by [`Tracked`] and
/// [`TrackedBody`].
#[derive(Debug)]
struct ConnState {
    opened_ms: u64,
    /// Calls started.
    requests: AtomicU64,
    /// Calls whose response body is not finished.
    in_flight: AtomicU64,
    /// When a call last started or finished.
    last_active_ms: AtomicU64,
    /// Response bodies holding data hyper has not come back for.
    waiting: AtomicU64,
    /// When hyper last asked any body of this connection for data.
    last_taken_ms: AtomicU64,
}

impl ConnState {
    fn new(now: u64) -> Self {
        Self {
            opened_ms: now,
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(now),
            waiting: AtomicU64::new(0),
            last_taken_ms: AtomicU64::new(now),
        }
    }

    /// A response body is ready and waits for hyper to take it. The send
    /// timeout counts from the oldest wait: when nothing else waits, the
    /// clock starts now, not when hyper last took data (maybe long ago: a
    /// trailers-only answer is never polled). Ordered so the watchdog
    /// never sees the new wait with the old clock.
    fn response_ready(&self, now: u64) {
        if self.waiting.load(Acquire) == 0 {
            self.last_taken_ms.store(now, Relaxed);
        }
        self.waiting.fetch_add(1, Release);
    }

    fn verdict(&self, limits: &ConnectionLimits, now: u64) -> Verdict {
        let since = |t: &AtomicU64| now.saturating_sub(t.load(Relaxed));
        if self.requests.load(Relaxed) == 0 {
            return if now.saturating_sub(self.opened_ms) >= millis(limits.handshake_timeout) {
                Verdict::Close("no request within the handshake timeout")
            } else {
                Verdict::Keep
            };
        }
        if self.waiting.load(Acquire) > 0
            && since(&self.last_taken_ms) >= millis(limits.send_timeout)
        {
            return Verdict::Unread("the client has not taken a response within the send timeout");
        }
        if self.in_flight.load(Relaxed) == 0
            && since(&self.last_active_ms) >= millis(limits.idle_timeout)
        {
            return Verdict::Idle;
        }
        Verdict::Keep
    }
}

/// The service for one connection: records each call in [`ConnState`] and
/// gives handlers the peer's address (`Request::remote_addr`).
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
    /// The connection's share of the response budget.
    budget: ConnectionBudget,
    info: TcpConnectInfo,
}

impl<S> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>, Response = Response<axum::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Incoming>) -> Self::Future {
        let state = self.state.clone();
        state.requests.fetch_add(1, Relaxed);
        state.in_flight.fetch_add(1, Relaxed);
        state.last_active_ms.store(now_ms(), Relaxed);
        req.extensions_mut().insert(self.info.clone());
        req.extensions_mut().insert(self.budget.clone());
        // Dropped with the future if the call is abandoned before it answers.
        let call = CallGuard(Some(state));
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = match inner.call(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let mut call = call;
            let state = call.0.take();
            let (mut parts, body) = response.into_parts();
            // A handler's reservation in the response budget stays with the
            // body until it is sent.
            let hold = parts.extensions.remove::<Held>();
            Ok(Response::from_parts(
                parts,
                TrackedBody::new(body, state, hold),
            ))
        })
    }
}

/// Ends a call that never produced a response body.
struct CallGuard(Option<Arc<ConnState>>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            state.in_flight.fetch_sub(1, Relaxed);
            state.last_active_ms.store(now_ms(), Relaxed);
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that tells its connection's watchdog whether hyper
    /// is waiting for it (fine) or it is waiting for hyper (the client is
    /// not taking data), and ends its call when finished or dropped.
    pub(crate) struct TrackedBody {
        #[pin]
        inner: axum::body::Body,
        state: Option<Arc<ConnState>>,
        waiting: bool,
        // Budget held while the response is unsent (see `budget`).
        hold: Option<Held>,
    }

    impl PinnedDrop for TrackedBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(state) = this.state.take() {
                if *this.waiting {
                    state.waiting.fetch_sub(1, Relaxed);
                }
                state.in_flight.fetch_sub(1, Relaxed);
                state.last_active_ms.store(now_ms(), Relaxed);
            }
        }
    }
}

impl TrackedBody {
    fn new(inner: axum::body::Body, state: Option<Arc<ConnState>>, hold: Option<Held>) -> Self {
        let waiting = state.is_some();
        if let Some(s) = &state {
            // Ready to send: from now on hyper is expected to take it.
            s.response_ready(now_ms());
        }
        Self {
            inner,
            state,
            waiting,
            hold,
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        // One clock read: hyper takes data now, and any data it gets
        // waits from now.
        let now = now_ms();
        if let Some(state) = this.state.as_ref() {
            state.last_taken_ms.store(now, Relaxed);
            if *this.waiting {
                *this.waiting = false;
                state.waiting.fetch_sub(1, Relaxed);
            }
        }
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => {
                if let Some(state) = this.state.as_ref() {
                    *this.waiting = true;
                    state.response_ready(now);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                *this.hold = None;
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A plaintext or TLS connection. Writes are never vectored: h2 sends a
/// DATA frame of 256 bytes or more (1 KiB without vectored writes) from
/// its own buffer, which costs a write of its own; without, small
/// responses are copied into h2's write buffer and many leave in one
/// write (measured: a Score response took two syscalls with vectored
/// writes, twice what a health check takes).
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The rustls acceptor for `tls`'s PEM files: the server's chain and key,
/// and with a client CA, client certificates required. ALPN offers h2
/// and HTTP/1.1.
pub(crate) fn tls_acceptor(tls: &super::TlsFiles) -> Result<TlsAcceptor, super::ServiceError> {
    use super::ServiceError;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let file_err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e: rustls::pki_types::pem::Error| ServiceError::TlsFile {
            path: path.clone(),
            source: match e {
                rustls::pki_types::pem::Error::Io(io) => io,
                other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
            },
        }
    };
    let certs = |path: &std::path::Path| -> Result<Vec<CertificateDer<'static>>, ServiceError> {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(file_err(path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(file_err(path))?;
        if certs.is_empty() {
            return Err(ServiceError::TlsFile {
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidData, "no certificate in the file"),
            });
        }
        Ok(certs)
    };
    let chain = certs(&tls.cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(file_err(&tls.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ServiceError::Tls)?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs(ca)? {
                roots.add(cert).map_err(ServiceError::Tls)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| ServiceError::TlsFile {
                path: ca.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(ServiceError::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            handshake_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(200),
            send_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn watchdog_verdicts() {
        let l = limits();
        let s = ConnState::new(1_000);
        assert_eq!(s.verdict(&l, 1_050), Verdict::Keep);
        // No request within the handshake timeout.
        assert!(matches!(s.verdict(&l, 1_100), Verdict::Close(_)));
        // A request ran and ended: idle once nothing runs for the idle timeout.
        s.requests.store(1, Relaxed);
        s.last_active_ms.store(1_100, Relaxed);
        assert_eq!(s.verdict(&l, 1_299), Verdict::Keep);
        assert_eq!(s.verdict(&l, 1_300), Verdict::Idle);
        // Not idle while a call runs.
        s.in_flight.store(1, Relaxed);
        assert_eq!(s.verdict(&l, 5_000), Verdict::Keep);
        // A response waiting unread past the send timeout.
        s.waiting.store(1, Relaxed);
        s.last_taken_ms.store(1_100, Relaxed);
        assert_eq!(s.verdict(&l, 1_399), Verdict::Keep);
        assert!(matches!(s.verdict(&l, 1_400), Verdict::Unread(_)));
        // Taken again: fine.
        s.last_taken_ms.store(1_390, Relaxed);
        assert_eq!(s.verdict(&l, 1_400), Verdict::Keep);
    }

    #[test]
    fn the_send_timeout_counts_from_when_a_response_is_ready() {
        let l = limits();
        let s = ConnState::new(1_000);
        s.requests.store(1, Relaxed);
        s.in_flight.store(2, Relaxed);
        // Hyper last took data long ago (or never: a trailers-only answer
        // is not polled); a response ready now has the whole send timeout.
        s.response_ready(5_000);
        assert_eq!(s.verdict(&l, 5_000), Verdict::Keep);
        assert_eq!(s.verdict(&l, 5_299), Verdict::Keep);
        // A second one ready later does not restart the first one's clock.
        s.response_ready(5_200);
        assert!(matches!(s.verdict(&l, 5_300), Verdict::Unread(_)));
    }
}
