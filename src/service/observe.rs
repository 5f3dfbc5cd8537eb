//! A wrapper around each gRPC service that counts every call by method and
//! status code, measures its latency, tracks calls in flight, refuses new
//! calls while the server drains, and gives the caller's faults the
//! caller's codes: an oversized request message is RESOURCE_EXHAUSTED
//! (tonic says OUT_OF_RANGE), one that does not decode INVALID_ARGUMENT
//! (tonic says INTERNAL).
//!
//! A call's status is known when its response head is ready: errors are
//! "trailers-only" responses carrying the [`Status`]; a response with a
//! body is a success for unary calls. ScoreStream reports its own final
//! status when the stream ends; other streams (health Watch, reflection)
//! count as OK once they start. A call dropped before answering (client
//! gone, deadline passed) counts as CANCELLED or DEADLINE_EXCEEDED.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::metrics::Method;
use super::request::{caller_status, parse_grpc_timeout};
use super::state::Shared;

/// When a call must be answered by, from its `grpc-timeout`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub Instant);

#[derive(Debug, Clone)]
pub(crate) struct Observed<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Observed<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S: NamedService> NamedService for Observed<S> {
    const NAME: &'static str = S::NAME;
}

/// One call being measured; records itself when dropped unfinished.
struct Call {
    shared: Arc<Shared>,
    method: Method,
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
            start: Instant::now(),
            timeout,
            done: false,
        }
    }

    fn finish(mut self, code: Code) {
        self.done = true;
        self.shared
            .metrics
            .call_finished(self.method, code, self.start.elapsed());
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
                .call_finished(self.method, code, elapsed);
        }
    }
}

impl<S> Service<http::Request<Body>> for Observed<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = Method::from_path(req.uri().path());
        let timeout = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let shared = self.shared.clone();
        let call = Call::start(shared.clone(), method, timeout);
        // The deadline runs from when the call arrived, not from when its
        // message was decoded; handlers read it from the extensions.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut req = req;
        if let Some(d) = deadline {
            req.extensions_mut().insert(Deadline(d));
        }
        if shared.draining() && !method.is_health() {
            call.finish(Code::Unavailable);
            let refused = Status::unavailable("the server is shutting down").into_http();
            return Box::pin(std::future::ready(Ok(refused)));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let answer = inner.call(req);
            let answered = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), answer).await,
                None => Ok(answer.await),
            };
            let response = match answered {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                // Whatever the call was doing (reading its message, waiting
                // for a thread, scoring) stops with its future.
                Err(_) => Status::deadline_exceeded(format!(
                    "the call's deadline of {:?} passed",
                    timeout.unwrap_or_default()
                ))
                .into_http(),
            };
            let limit = shared.limits.max_message_bytes;
            let response = match response
                .extensions()
                .get::<Status>()
                .and_then(|s| caller_status(s, limit))
            {
                Some(status) => status.into_http(),
                None => response,
            };
            match response.extensions().get::<Status>() {
                Some(status) => {
                    tracing::debug!(?method, code = ?status.code(), message = status.message(), "call failed");
                    call.finish(status.code())
                }
                None if method == Method::ScoreStream => call.hand_over(),
                None => call.finish(Code::Ok),
            }
            Ok(response)
        })
    }
}
