//! The gate every call on the API port passes, as a layer around the whole
//! router, whatever its protocol (gRPC, gRPC-Web, the JSON API and the
//! other HTTP routes; see `http`). Its refusals answer in the caller's
//! protocol: a JSON error for HTTP, trailers-only for gRPC and gRPC-Web.
//! It:
//! - refuses new calls while the server drains (health still answers);
//! - checks the caller's API key and takes its concurrency slots (see
//!   `callers`), refusing at once when there are none (the page and the
//!   OpenAPI document are open to all);
//! - sets the call's deadline from `grpc-timeout` (JSON calls too),
//!   counted from arrival,
//!   and answers DEADLINE_EXCEEDED when it passes, whatever the call was
//!   doing; cancels a call whose request data stops arriving for the
//!   receive timeout;
//! - gives the caller's faults the caller's codes: an oversized request
//!   message is RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE), one that does
//!   not decode INVALID_ARGUMENT (tonic says INTERNAL);
//! - counts every call by method, status code and key name, measures its
//!   latency and tracks calls in flight;
//! - holds the call's slots until its response has been sent, and then
//!   writes its access line.
//!
//! A call's status is known when its response head is ready: errors are
//! "trailers-only" responses carrying the [`Status`]; a response with a
//! body is a success for unary calls. ScoreStream reports its own final
//! status when the stream ends; other streams (health Watch, reflection)
//! count as OK once they start. A call dropped before answering (client
//! gone, deadline passed) counts as CANCELLED or DEADLINE_EXCEEDED.

use std::convert::Infallible;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Status};
use tower::Service;

use super::access::{timestamp, CallFacts, Line};
use super::callers::Slots;
use super::http::{refusal, Protocol};
use super::metrics::{code_name, Method};
use super::request::{caller_status, parse_grpc_timeout};
use super::state::Shared;

/// When a call must be answered by, from its `grpc-timeout`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub Instant);

/// Wraps a router in the gate.
#[derive(Debug, Clone)]
pub(crate) struct GateLayer(pub Arc<Shared>);

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            shared: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Gate<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// One call being measured; records itself when dropped unfinished.
struct Call {
    shared: Arc<Shared>,
    method: Method,
    key: Option<Arc<str>>,
    start: Instant,
    timeout: Option<Duration>,
    done: bool,
}

impl Call {
    fn start(shared: Arc<Shared>, method: Method, timeout: Option<Duration>) -> Self {
        shared.metrics.call_started();
        Self {
            shared,
            method,
            key: None,
            start: Instant::now(),
            timeout,
            done: false,
        }
    }

    fn finish(mut self, code: Code) {
        self.done = true;
        self.shared.metrics.call_finished(
            self.method,
            code,
            self.start.elapsed(),
            self.key.as_deref(),
        );
    }

    /// The stream task records the call when the stream ends.
    fn hand_over(mut self) {
        self.done = true;
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            let elapsed = self.start.elapsed();
            let code = if self.timeout.is_some_and(|t| elapsed >= t) {
                Code::DeadlineExceeded
            } else {
                Code::Cancelled
            };
            self.shared
                .metrics
                .call_finished(self.method, code, elapsed, self.key.as_deref());
        }
    }
}

impl<S> Service<Request<Body>> for Gate<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let protocol = Protocol::of(req.headers());
        let method = Method::of_request(protocol, req.uri().path());
        let timeout = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let shared = self.shared.clone();
        let arrived = SystemTime::now();
        let started = Instant::now();
        let mut call = Call::start(shared.clone(), method, timeout);
        let peer = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(|i| i.remote_addr);
        // The deadline runs from when the call arrived, not from when its
        // message was decoded; handlers read it from the extensions.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        if let Some(d) = deadline {
            req.extensions_mut().insert(Deadline(d));
        }
        let refused = if shared.draining() && !method.is_health() {
            Err(Status::unavailable("the server is shutting down"))
        } else if method == Method::Static {
            Ok((None, Slots::default()))
        } else {
            shared
                .callers
                .authenticate(req.headers(), method.is_scorer())
                .and_then(|caller| {
                    let slots = if method.is_scorer() {
                        shared.callers.admit(caller.as_ref())?
                    } else {
                        Slots::default()
                    };
                    Ok((caller, slots))
                })
        };
        let (caller, slots, early) = match refused {
            Ok((caller, slots)) => (caller, slots, None),
            Err(status) => (None, Slots::default(), Some(status)),
        };
        call.key = caller.as_ref().map(|c| c.0.clone());
        if let Some(c) = &caller {
            req.extensions_mut().insert(c.clone());
        }
        let receive_timeout = shared.receive_timeout;
        let starved = Starved(Arc::new(AtomicBool::new(false)));
        req.extensions_mut().insert(starved.clone());
        if !http_body::Body::is_end_stream(req.body()) {
            let flag = starved.0.clone();
            req = req.map(|b| {
                Body::new(Receiving {
                    inner: b,
                    last: tokio::time::Instant::now(),
                    idle: None,
                    timeout: receive_timeout,
                    starved: flag,
                })
            });
        }
        let logging = shared.access.enabled();
        let trailer_status = (logging && matches!(protocol, Protocol::GrpcWeb { .. })).then(|| {
            let cell = TrailerStatus(Arc::new(std::sync::atomic::AtomicI32::new(-1)));
            req.extensions_mut().insert(cell.clone());
            cell
        });
        let request_bytes = Arc::new(AtomicU64::new(0));
        if logging {
            let counter = request_bytes.clone();
            req = req.map(|b| {
                Body::new(Counted {
                    inner: b,
                    bytes: counter,
                })
            });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = match early {
                Some(status) => refusal(status, protocol),
                None => {
                    let answer = inner.call(req);
                    let answered = match deadline {
                        Some(d) => tokio::time::timeout_at(d.into(), answer).await,
                        None => Ok(answer.await),
                    };
                    match answered {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        // Whatever the call was doing (reading its message,
                        // waiting for a thread, scoring) stops with its
                        // future.
                        Err(_) => refusal(
                            Status::deadline_exceeded(format!(
                                "the call's deadline of {:?} passed",
                                timeout.unwrap_or_default()
                            )),
                            protocol,
                        ),
                    }
                }
            };
            let limit = shared.limits.max_message_bytes;
            let mut response = match response.extensions().get::<Status>() {
                // However tonic reported the body that stopped coming.
                Some(_) if starved.happened() => refusal(starved_status(receive_timeout), protocol),
                // What tonic says of a request message (gRPC, gRPC-Web).
                Some(s) if protocol != Protocol::Http => match caller_status(s, limit) {
                    Some(status) => refusal(status, protocol),
                    None => response,
                },
                Some(_) => response,
                None => response,
            };
            let head_code = response.extensions().get::<Status>().map(Status::code);
            match head_code {
                Some(code) => {
                    if let Some(s) = response.extensions().get::<Status>() {
                        tracing::debug!(?method, code = ?s.code(), message = s.message(), "call failed");
                    }
                    call.finish(code)
                }
                None if method == Method::ScoreStream => call.hand_over(),
                None => call.finish(Code::Ok),
            }
            let facts = response.extensions_mut().remove::<CallFacts>();
            let log = logging.then(|| Log {
                shared: shared.clone(),
                method,
                protocol: protocol.name(),
                key: caller.map(|c| c.0),
                peer: peer.map(|p| p.to_string()),
                facts: facts.unwrap_or_default(),
                arrived,
                started,
                request_bytes,
                response_bytes: 0,
                http_status: response.status().as_u16(),
                grpc_status: head_code.or_else(|| grpc_status(response.headers())),
                trailer_status,
                written: false,
            });
            Ok(response.map(|b| {
                Body::new(Tail {
                    inner: b,
                    _slots: slots,
                    log,
                })
            }))
        })
    }
}

/// Where a gRPC-Web call's final status is noted: tonic-web turns the
/// gRPC trailers into a frame of the body, which the gate's [`Tail`] sees
/// only as data, so a spy under tonic-web (`http::Dispatch`) notes the
/// `grpc-status` of the trailers here, for the access line. -1: none yet.
#[derive(Debug, Clone)]
pub(crate) struct TrailerStatus(pub Arc<std::sync::atomic::AtomicI32>);

impl TrailerStatus {
    pub(crate) fn note(&self, trailers: &http::HeaderMap) {
        if let Some(code) = grpc_status(trailers) {
            self.0.store(code as i32, Relaxed);
        }
    }

    fn get(&self) -> Option<Code> {
        let code = self.0.load(Relaxed);
        (code >= 0).then(|| Code::from_i32(code))
    }
}

/// The gRPC status in `grpc-status` headers or trailers.
pub(crate) fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
}

pin_project_lite::pin_project! {
    /// A request body that counts its bytes (for the access log).
    struct Counted {
        #[pin]
        inner: Body,
        bytes: Arc<AtomicU64>,
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.bytes.fetch_add(data.len() as u64, Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body that must keep arriving: when no data comes for
    /// `timeout` (before the message is whole, or between a stream's
    /// messages), it ends with CANCELLED, which ends the call and frees
    /// what it held. A client that opens calls and never sends their
    /// bodies cannot keep them.
    struct Receiving {
        #[pin]
        inner: Body,
        // When data last came (or the call arrived).
        last: tokio::time::Instant,
        // Armed only once the body has to be waited for: most request
        // bodies are already there when first read, and cost no timer.
        idle: Option<Pin<Box<tokio::time::Sleep>>>,
        timeout: Duration,
        // Set when the timeout fired, for the gate to report it.
        starved: Arc<AtomicBool>,
    }
}

/// Whether a call's request data stopped coming for the receive timeout
/// (in the request's extensions, for ScoreStream, whose response is under
/// way by then).
#[derive(Debug, Clone)]
pub(crate) struct Starved(Arc<AtomicBool>);

impl Starved {
    pub(crate) fn happened(&self) -> bool {
        self.0.load(Relaxed)
    }
}

pub(crate) fn starved_status(timeout: Duration) -> Status {
    Status::cancelled(format!(
        "no request data arrived for {timeout:?} (the server's receive-timeout)"
    ))
}

impl http_body::Body for Receiving {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_data() {
                    *this.last = tokio::time::Instant::now();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let due = *this.last + *this.timeout;
                let idle = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if idle.deadline() != due {
                    idle.as_mut().reset(due);
                }
                match idle.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.starved.store(true, Relaxed);
                        Poll::Ready(Some(Err(axum::Error::new(starved_status(*this.timeout)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What the access line of a call needs, filled as its response is sent.
struct Log {
    shared: Arc<Shared>,
    method: Method,
    protocol: &'static str,
    key: Option<Arc<str>>,
    peer: Option<String>,
    facts: CallFacts,
    arrived: SystemTime,
    started: Instant,
    request_bytes: Arc<AtomicU64>,
    response_bytes: u64,
    http_status: u16,
    grpc_status: Option<Code>,
    /// gRPC-Web: the status its trailers gave (see [`TrailerStatus`]).
    trailer_status: Option<TrailerStatus>,
    written: bool,
}

impl Log {
    fn write(&mut self, ended: bool) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let noted = self.trailer_status.as_ref().and_then(TrailerStatus::get);
        let status = match (self.protocol, self.grpc_status.or(noted)) {
            // HTTP calls log their HTTP status.
            ("http", _) => self.http_status.to_string(),
            (_, Some(code)) => code_name(code).to_string(),
            // A gRPC response that ended without a status was cut off.
            (_, None) if ended => "UNKNOWN".to_string(),
            (_, None) => "CANCELLED".to_string(),
        };
        let (_, method) = self.method.labels();
        let latency = self.started.elapsed();
        let facts = &self.facts;
        self.shared.access.write(&Line {
            time: timestamp(self.arrived),
            method,
            protocol: self.protocol,
            key: self.key.as_deref(),
            peer: self.peer.take(),
            model: (!facts.model.is_empty()).then_some(facts.model.as_str()),
            version: (!facts.version.is_empty()).then_some(facts.version.as_str()),
            passages: facts.passages,
            request_bytes: self.request_bytes.load(Relaxed),
            response_bytes: self.response_bytes,
            status: &status,
            latency_ms: latency.as_secs_f64() * 1e3,
        });
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its call's concurrency slots until it
    /// is sent or dropped, and then writes the call's access line.
    struct Tail {
        #[pin]
        inner: Body,
        _slots: Slots,
        log: Option<Log>,
    }

    impl PinnedDrop for Tail {
        fn drop(this: Pin<&mut Self>) {
            if let Some(log) = this.project().log.as_mut() {
                log.write(false);
            }
        }
    }
}

impl http_body::Body for Tail {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Some(log) = this.log.as_mut() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        log.response_bytes += data.len() as u64;
                    } else if let Some(trailers) = frame.trailers_ref() {
                        log.grpc_status = grpc_status(trailers).or(log.grpc_status);
                    }
                }
                Poll::Ready(None) => log.write(true),
                _ => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{ModelSource, ServerConfig};

    /// While the server drains, the gate refuses every call but health in
    /// the caller's protocol: JSON 503, or UNAVAILABLE in gRPC and gRPC-Web.
    #[tokio::test]
    async fn draining_refusals_are_in_the_callers_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(dir.path());
        config.models = ModelSource::Dir(dir.path().to_path_buf());
        let shared = Arc::new(Shared::load(&config).await.unwrap());
        shared.start_draining();
        let inner = tower::service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::from("served")))
        });
        let mut gate = tower::Layer::layer(&GateLayer(shared), inner);
        let call = |path: &str, ct: Option<&str>| {
            let mut req = Request::builder().method("POST").uri(path);
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            req.body(Body::empty()).unwrap()
        };
        let json = gate.call(call("/v1/score", None)).await.unwrap();
        assert_eq!(json.status(), 503);
        assert_eq!(json.headers()["content-type"], "application/json");
        let body = axum::body::to_bytes(json.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "UNAVAILABLE");
        assert!(body["message"].as_str().unwrap().contains("shutting down"));
        let grpc = gate
            .call(call("/slant.v1.Scorer/Score", Some("application/grpc")))
            .await
            .unwrap();
        assert_eq!(grpc.headers()["grpc-status"], "14");
        assert_eq!(grpc.headers()["content-type"], "application/grpc");
        let web = gate
            .call(call(
                "/slant.v1.Scorer/Score",
                Some("application/grpc-web+proto"),
            ))
            .await
            .unwrap();
        assert_eq!(web.headers()["grpc-status"], "14");
        assert_eq!(web.headers()["content-type"], "application/grpc-web+proto");
        // Health still answers (here: the inner service).
        let health = gate.call(call("/healthz", None)).await.unwrap();
        assert_eq!(health.status(), 200);
    }
}
