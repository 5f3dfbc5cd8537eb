//! Every protocol on the API port besides plain gRPC: the JSON API over
//! HTTP/1.1 and HTTP/2, gRPC-Web (tonic-web), `/healthz`, `/metrics`,
//! `/openapi.json` and the page at `/`.
//!
//! [`app`] builds one router for the port. A request goes to gRPC, to
//! gRPC-Web or to the HTTP routes by its content type ([`Protocol`]), and
//! the gate (`observe`) wraps all of it, so keys, concurrency slots,
//! deadlines, drain refusals, metrics and access lines are the same for
//! every protocol; TLS and client certificates are the transport's, under
//! all of them.
//!
//! The JSON handlers read the request in the proto3 JSON mapping (pbjson;
//! unknown fields are refused) and call the very `Scorer` implementation
//! the gRPC service runs, so checks, limits, budgets and thresholds are
//! the gRPC ones. A refusal is `{"code": "INVALID_ARGUMENT", "message":
//! …}` with the HTTP status of the same meaning ([`http_status`]).
//!
//! The routes are one table, [`ROUTES`]: the router is built from it and
//! so is the OpenAPI document (`openapi`), whose schemas come from the
//! proto's descriptor set.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::State;
use axum::routing::MethodRouter;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tower::{Service, ServiceExt as _};

use super::error::ServiceError;
use super::metrics::code_name;
use super::observe::{starved_status, Starved, TrailerStatus};
use super::reply::server::scorer_server::Scorer as _;
use super::request::Limit;
use super::scorer::ScorerService;
use super::state::Shared;
use crate::proto;

/// How a request came, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `application/grpc…`
    Grpc,
    /// `application/grpc-web…`; `text` when the answer goes base64
    /// (`-text`, as the `accept` header asks).
    GrpcWeb { text: bool },
    /// Anything else: the JSON API and the other HTTP routes.
    Http,
}

impl Protocol {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if ct.starts_with("application/grpc-web") {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Self::GrpcWeb {
                text: accept.starts_with("application/grpc-web-text"),
            }
        } else if ct.starts_with("application/grpc") {
            Self::Grpc
        } else {
            Self::Http
        }
    }

    /// As the access log names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb { .. } => "grpc-web",
            Self::Http => "http",
        }
    }
}

/// The HTTP status of the same meaning as a gRPC code, for the JSON API.
/// RESOURCE_EXHAUSTED depends on the limit that refused ([`Limit`]): a
/// size is 413 (the same request will never pass), shed load 429 (retry
/// later). CANCELLED is what a caller sees when its request body stopped
/// arriving (the receive timeout): 408.
pub(crate) fn http_status(code: Code, limit: Option<Limit>) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => match limit {
            Some(l) if !l.sheds_load() => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::TOO_MANY_REQUESTS,
        },
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal | Code::Unknown | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Seconds a shed caller is told to wait when the refusal gave no hint.
const RETRY_AFTER_S: &str = "1";

/// A refusal as the JSON API answers it: the status's code and message
/// in a JSON body, the HTTP status of the same meaning, `WWW-Authenticate`
/// on 401 and `Retry-After` on 429. The [`Status`] rides in the response's
/// extensions for the gate's metrics.
pub(crate) fn json_error(status: Status) -> Response<Body> {
    let http = http_status(status.code(), Limit::of(&status));
    json_error_as(http, status)
}

/// [`json_error`] with an HTTP status of the caller's choosing (404 for an
/// unknown route, 405, 415).
fn json_error_as(http: StatusCode, status: Status) -> Response<Body> {
    let body = serde_json::json!({
        "code": code_name(status.code()),
        "message": status.message(),
    });
    let mut response = json_response(http, body.to_string().into_bytes());
    let headers = response.headers_mut();
    if http == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if http == StatusCode::TOO_MANY_REQUESTS {
        let hint = status
            .metadata()
            .get("retry-after")
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            .unwrap_or(HeaderValue::from_static(RETRY_AFTER_S));
        headers.insert(header::RETRY_AFTER, hint);
    }
    if let Some(limit) = Limit::of(&status) {
        headers.insert(
            super::request::LIMIT_METADATA,
            HeaderValue::from_static(limit.flag()),
        );
    }
    response.extensions_mut().insert(status);
    response
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A refusal in the caller's protocol: JSON for HTTP, a trailers-only
/// response for gRPC and gRPC-Web (with gRPC-Web's content type).
pub(crate) fn refusal(status: Status, protocol: Protocol) -> Response<Body> {
    match protocol {
        Protocol::Http => json_error(status),
        Protocol::Grpc => status.into_http(),
        Protocol::GrpcWeb { text } => {
            let mut response = status.into_http::<Body>();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if text {
                    "application/grpc-web-text+proto"
                } else {
                    "application/grpc-web+proto"
                }),
            );
            response
        }
    }
}

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    shared: Arc<Shared>,
    scorer: ScorerService,
}

/// What a route takes and gives, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payload {
    None,
    /// A slant.v1 message in the proto3 JSON mapping (its short name).
    Message(&'static str),
    /// A slant.v1 message's fields as query parameters.
    Query(&'static str),
    /// `{"status": "SERVING" | "NOT_SERVING"}`.
    Health,
    /// Another document (the content type).
    Other(&'static str),
}

/// One route of the HTTP side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub path: &'static str,
    /// GET or POST (GET routes answer HEAD too).
    pub post: bool,
    pub summary: &'static str,
    pub request: Payload,
    pub response: Payload,
    /// Whether keys and concurrency slots apply (the Scorer's calls).
    pub scorer: bool,
    handler: fn() -> MethodRouter<Api>,
}

/// Every HTTP route on the API port (the router and the OpenAPI document
/// are both built from it).
pub(crate) const ROUTES: [Route; 8] = [
    Route {
        path: "/v1/score",
        post: true,
        summary: "Score a batch of passages (slant.v1.Scorer/Score)",
        request: Payload::Message("ScoreRequest"),
        response: Payload::Message("ScoreResponse"),
        scorer: true,
        handler: || axum::routing::post(score).fallback(allow_post),
    },
    Route {
        path: "/v1/score-article",
        post: true,
        summary: "Split an article into passages and score each, with a summary (slant.v1.Scorer/ScoreArticle)",
        request: Payload::Message("ArticleRequest"),
        response: Payload::Message("ArticleResponse"),
        scorer: true,
        handler: || axum::routing::post(score_article).fallback(allow_post),
    },
    Route {
        path: "/v1/model",
        post: false,
        summary: "Describe one loaded model version (slant.v1.Scorer/GetModelInfo)",
        request: Payload::Query("ModelInfoRequest"),
        response: Payload::Message("ModelInfo"),
        scorer: true,
        handler: || axum::routing::get(model_info).fallback(allow_get),
    },
    Route {
        path: "/v1/models",
        post: false,
        summary: "Every loaded model and version (slant.v1.Scorer/ListModels)",
        request: Payload::None,
        response: Payload::Message("ListModelsResponse"),
        scorer: true,
        handler: || axum::routing::get(list_models).fallback(allow_get),
    },
    Route {
        path: "/healthz",
        post: false,
        summary: "200 while serving; 503 while draining or with no model loaded",
        request: Payload::None,
        response: Payload::Health,
        scorer: false,
        handler: || axum::routing::get(healthz).fallback(allow_get),
    },
    Route {
        path: "/metrics",
        post: false,
        summary: "Prometheus metrics (text format 0.0.4)",
        request: Payload::None,
        response: Payload::Other("text/plain; version=0.0.4; charset=utf-8"),
        scorer: false,
        handler: || axum::routing::get(metrics).fallback(allow_get),
    },
    Route {
        path: "/openapi.json",
        post: false,
        summary: "This document",
        request: Payload::None,
        response: Payload::Other("application/json"),
        scorer: false,
        handler: || axum::routing::get(openapi).fallback(allow_get),
    },
    Route {
        path: "/",
        post: false,
        summary: "A page that scores an article and shows its framing",
        request: Payload::None,
        response: Payload::Other("text/html; charset=utf-8"),
        scorer: false,
        handler: || axum::routing::get(page).fallback(allow_get),
    },
];

/// The router of the API port: gRPC (`grpc`: tonic's routes), gRPC-Web
/// (the same routes behind tonic-web) and the HTTP routes, chosen by the
/// request's [`Protocol`]. The caller wraps it in the gate.
pub(crate) fn app(shared: Arc<Shared>, grpc: axum::Router) -> axum::Router {
    let api = Api {
        scorer: ScorerService {
            shared: shared.clone(),
        },
        shared,
    };
    let mut http = axum::Router::new();
    for route in ROUTES {
        http = http.route(route.path, (route.handler)());
    }
    let http = http.fallback(no_route).with_state(api);
    let web = tower::Layer::layer(&tonic_web::GrpcWebLayer::new(), TrailerSpy(grpc.clone()));
    axum::Router::new().fallback_service(Dispatch { http, grpc, web })
}

/// Sends each request to its protocol's service.
#[derive(Clone)]
struct Dispatch {
    http: axum::Router,
    grpc: axum::Router,
    web: tonic_web::GrpcWebService<TrailerSpy>,
}

/// Under tonic-web: notes the gRPC trailers' status for the gate's access
/// line (see `observe::TrailerStatus`) before tonic-web turns them into
/// body bytes.
#[derive(Clone)]
struct TrailerSpy(axum::Router);

impl Service<Request<tonic::body::Body>> for TrailerSpy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> BoxFuture {
        let cell = req.extensions().get::<TrailerStatus>().cloned();
        let router = self.0.clone();
        Box::pin(async move {
            let response = match router.oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(match cell {
                Some(cell) => response.map(|inner| Body::new(Spied { inner, cell })),
                None => response,
            })
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body whose trailers' status is noted as they pass.
    struct Spied {
        #[pin]
        inner: Body,
        cell: TrailerStatus,
    }
}

impl http_body::Body for Spied {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(trailers) = frame.trailers_ref() {
                this.cell.note(trailers);
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

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl Service<Request<Body>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> BoxFuture {
        match Protocol::of(req.headers()) {
            Protocol::Http => Box::pin(self.http.clone().oneshot(req)),
            Protocol::Grpc => Box::pin(self.grpc.clone().oneshot(req)),
            Protocol::GrpcWeb { .. } => {
                let web = self.web.clone();
                Box::pin(async move {
                    match web.oneshot(req).await {
                        Ok(response) => Ok(response.map(Body::new)),
                        Err(never) => match never {},
                    }
                })
            }
        }
    }
}

/// CORS for the given origins (`*`: any); `None` when there are none.
pub(crate) fn cors(
    origins: &[String],
) -> Result<Option<tower_http::cors::CorsLayer>, ServiceError> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim_end_matches('/')).map_err(|_| {
                    ServiceError::CorsOrigin {
                        origin: o.chars().take(100).collect(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    let names = |list: &[&'static str]| {
        list.iter()
            .map(|n| header::HeaderName::from_static(n))
            .collect::<Vec<_>>()
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([http::Method::GET, http::Method::POST])
            .allow_headers(names(&[
                "content-type",
                "authorization",
                "accept",
                "grpc-timeout",
                "x-grpc-web",
                "x-user-agent",
            ]))
            .expose_headers(names(&[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                "grpc-retry-pushback-ms",
                "retry-after",
                "www-authenticate",
                super::request::LIMIT_METADATA,
            ]))
            .max_age(std::time::Duration::from_secs(600)),
    ))
}

async fn no_route(req: Request<Body>) -> Response<Body> {
    let path: String = req.uri().path().chars().take(200).collect();
    json_error_as(
        StatusCode::NOT_FOUND,
        Status::not_found(format!(
            "no route {} {path}; the routes are listed at /openapi.json",
            req.method()
        )),
    )
}

fn not_allowed(method: &http::Method, allow: &'static str) -> Response<Body> {
    let mut response = json_error_as(
        StatusCode::METHOD_NOT_ALLOWED,
        Status::unimplemented(format!("{method} is not allowed here; use {allow}")),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

async fn allow_post(method: http::Method) -> Response<Body> {
    not_allowed(&method, "POST")
}

async fn allow_get(method: http::Method) -> Response<Body> {
    not_allowed(&method, "GET, HEAD")
}

/// Whether the request says its body is JSON (`application/json`, any
/// parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn too_large(limit: usize) -> Status {
    Limit::MaxMessageBytes.refuse(Status::resource_exhausted(format!(
        "the request body is over the max-message-bytes limit of {limit} bytes"
    )))
}

/// Reads a JSON request body of at most `max-message-bytes` and parses it
/// as `T` in the proto3 JSON mapping; else the refusal to answer with.
async fn read_json<T: serde::de::DeserializeOwned>(
    shared: &Shared,
    req: Request<Body>,
    name: &str,
) -> Result<(http::request::Parts, T), Response<Body>> {
    let (parts, mut body) = req.into_parts();
    if !is_json(&parts.headers) {
        let shown = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(100)
                    .collect()
            })
            .unwrap_or_else(|| "none".to_string());
        return Err(json_error_as(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Status::invalid_argument(format!(
                "the request body must be JSON (content-type: application/json), not {shown}"
            )),
        ));
    }
    let limit = shared.limits.max_message_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(json_error(too_large(limit)));
    }
    let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    if bytes.len().saturating_add(data.len()) > limit {
                        return Err(json_error(too_large(limit)));
                    }
                    bytes.extend_from_slice(data);
                }
            }
            Err(e) => {
                let starved = parts.extensions.get::<Starved>();
                return Err(json_error(if starved.is_some_and(Starved::happened) {
                    starved_status(shared.receive_timeout)
                } else {
                    Status::cancelled(format!("the request body could not be read: {e}"))
                }));
            }
        }
    }
    match serde_json::from_slice::<T>(&bytes) {
        Ok(message) => Ok((parts, message)),
        Err(e) => Err(json_error(Status::invalid_argument(format!(
            "the request body is not a slant.v1.{name} in the proto3 JSON mapping: {e}"
        )))),
    }
}

/// A Scorer answer as JSON; its extensions (the response budget's
/// reservation, the access log's facts) go with it.
fn reply<T: serde::Serialize>(result: Result<tonic::Response<T>, Status>) -> Response<Body> {
    match result {
        Ok(answer) => {
            let (_, message, extensions) = answer.into_parts();
            match serde_json::to_vec(&message) {
                Ok(body) => {
                    let mut response = json_response(StatusCode::OK, body);
                    response.extensions_mut().extend(extensions);
                    response
                }
                Err(e) => json_error(Status::internal(format!(
                    "the answer could not be written as JSON: {e}"
                ))),
            }
        }
        Err(status) => json_error(status),
    }
}

/// The tonic request the Scorer handlers take: the HTTP request's headers
/// and extensions (deadline, caller, connection budget) with `message`.
fn grpc_request<T>(parts: http::request::Parts, message: T) -> tonic::Request<T> {
    tonic::Request::from_http(Request::from_parts(parts, message))
}

async fn score(State(api): State<Api>, req: Request<Body>) -> Response<Body> {
    match read_json::<proto::ScoreRequest>(&api.shared, req, "ScoreRequest").await {
        Ok((parts, message)) => reply(
            api.scorer
                .score(grpc_request(parts, message))
                .await
                .map(|r| r.map(proto::ScoreResponse::from)),
        ),
        Err(refused) => refused,
    }
}

async fn score_article(State(api): State<Api>, req: Request<Body>) -> Response<Body> {
    match read_json::<proto::ArticleRequest>(&api.shared, req, "ArticleRequest").await {
        Ok((parts, message)) => reply(api.scorer.score_article(grpc_request(parts, message)).await),
        Err(refused) => refused,
    }
}

async fn model_info(State(api): State<Api>, req: Request<Body>) -> Response<Body> {
    let (parts, _) = req.into_parts();
    match model_info_query(parts.uri.query().unwrap_or("")) {
        Ok(message) => reply(
            api.scorer
                .get_model_info(grpc_request(parts, message))
                .await,
        ),
        Err(status) => json_error(status),
    }
}

async fn list_models(State(api): State<Api>, req: Request<Body>) -> Response<Body> {
    let (parts, _) = req.into_parts();
    reply(
        api.scorer
            .list_models(grpc_request(parts, proto::ListModelsRequest {}))
            .await,
    )
}

/// `?model=NAME&model_version=V` (also `modelVersion`) as a
/// ModelInfoRequest; anything else is INVALID_ARGUMENT.
pub(crate) fn model_info_query(query: &str) -> Result<proto::ModelInfoRequest, Status> {
    let mut request = proto::ModelInfoRequest::default();
    let (mut model, mut version) = (false, false);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        let value = percent_decode(value)?;
        let seen = match key.as_str() {
            "model" => {
                request.model = value;
                &mut model
            }
            "model_version" | "modelVersion" => {
                request.model_version = value;
                &mut version
            }
            _ => {
                let shown: String = key.chars().take(64).collect();
                return Err(Status::invalid_argument(format!(
                    "unknown query parameter {shown:?}: /v1/model takes model and model_version"
                )));
            }
        };
        if std::mem::replace(seen, true) {
            return Err(Status::invalid_argument(format!(
                "query parameter {key:?} is given more than once"
            )));
        }
    }
    Ok(request)
}

/// Decodes `%XX` escapes and `+` (a space) in a query component.
fn percent_decode(s: &str) -> Result<String, Status> {
    let bad = || Status::invalid_argument("the query string is not valid percent-encoded UTF-8");
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next().ok_or_else(bad)?, bytes.next().ok_or_else(bad)?];
                let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

async fn healthz(State(api): State<Api>) -> Response<Body> {
    let serving = *api.shared.health().borrow() == ServingStatus::Serving;
    let (status, name) = if serving {
        (StatusCode::OK, "SERVING")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")
    };
    json_response(status, format!("{{\"status\":\"{name}\"}}").into_bytes())
}

async fn metrics(State(api): State<Api>) -> Response<Body> {
    super::metrics::metrics_page(&api.shared)
}

async fn openapi() -> Response<Body> {
    match super::openapi::document() {
        Ok(doc) => json_response(StatusCode::OK, doc.to_vec()),
        Err(e) => json_error(Status::internal(format!(
            "the OpenAPI document could not be built: {e}"
        ))),
    }
}

/// The page, embedded in the binary.
pub(crate) const PAGE: &str = include_str!("page.html");

/// The page may load nothing from elsewhere and talk only to this server.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn page() -> Response<Body> {
    let mut response = Response::new(Body::from(Bytes::from_static(PAGE.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_http_status() {
        use Code::*;
        let plain = |code| http_status(code, None).as_u16();
        assert_eq!(plain(Ok), 200);
        assert_eq!(plain(InvalidArgument), 400);
        assert_eq!(plain(Unauthenticated), 401);
        assert_eq!(plain(PermissionDenied), 403);
        assert_eq!(plain(NotFound), 404);
        assert_eq!(plain(Cancelled), 408);
        assert_eq!(plain(ResourceExhausted), 429);
        assert_eq!(plain(Internal), 500);
        assert_eq!(plain(Unimplemented), 501);
        assert_eq!(plain(Unavailable), 503);
        assert_eq!(plain(DeadlineExceeded), 504);
        // RESOURCE_EXHAUSTED: a size is 413, shed load 429.
        for limit in Limit::ALL {
            let expected = match limit {
                Limit::MaxBatch
                | Limit::MaxMessageBytes
                | Limit::MaxResponseBytes
                | Limit::MaxContributions => 413,
                Limit::MaxBufferedBytes
                | Limit::MaxBufferedBytesPerConnection
                | Limit::MaxConcurrentRequests
                | Limit::MaxConcurrentPerKey => 429,
                // INVALID_ARGUMENT in gRPC: 400 whatever the tag.
                Limit::MaxPassageBytes | Limit::MaxArticleBytes | Limit::MaxExplain => {
                    assert_eq!(http_status(InvalidArgument, Some(limit)).as_u16(), 400);
                    continue;
                }
            };
            assert_eq!(
                http_status(ResourceExhausted, Some(limit)).as_u16(),
                expected,
                "{limit:?}"
            );
        }
    }

    #[test]
    fn refusals_carry_their_limit_and_hints() {
        let status = Limit::MaxConcurrentRequests.refuse(Status::resource_exhausted("busy"));
        let response = json_error(status);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()["slant-limit"], "max-concurrent-requests");
        let response = json_error(Status::unauthenticated("key"));
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let web = refusal(Status::unavailable("x"), Protocol::GrpcWeb { text: true });
        assert_eq!(
            web.headers()[header::CONTENT_TYPE],
            "application/grpc-web-text+proto"
        );
        assert_eq!(web.headers()["grpc-status"], "14");
    }

    #[test]
    fn protocols_by_content_type() {
        let of = |ct: &str, accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            h.insert(header::ACCEPT, accept.parse().unwrap());
            Protocol::of(&h)
        };
        assert_eq!(of("application/grpc", ""), Protocol::Grpc);
        assert_eq!(of("application/grpc+proto", ""), Protocol::Grpc);
        assert_eq!(
            of("application/grpc-web+proto", ""),
            Protocol::GrpcWeb { text: false }
        );
        assert_eq!(
            of("application/grpc-web-text", "application/grpc-web-text"),
            Protocol::GrpcWeb { text: true }
        );
        assert_eq!(of("application/json", ""), Protocol::Http);
        assert_eq!(Protocol::of(&HeaderMap::new()), Protocol::Http);
    }

    #[test]
    fn model_queries() {
        let q = model_info_query("model=news&model_version=2").unwrap();
        assert_eq!((q.model.as_str(), q.model_version.as_str()), ("news", "2"));
        let q = model_info_query("modelVersion=abc%20d+e").unwrap();
        assert_eq!(q.model_version, "abc d e");
        assert_eq!(model_info_query("").unwrap(), Default::default());
        for bad in [
            "x=1",
            "model=a&model=b",
            "model=%zz",
            "model=%ff",
            "model=%4",
        ] {
            assert_eq!(
                model_info_query(bad).unwrap_err().code(),
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn json_content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
