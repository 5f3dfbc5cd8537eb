//! Service: the `slant.v1` server (gRPC, gRPC-Web and JSON over HTTP on
//! one port), as a library. The command line
//! (`cli`) builds a [`ServerConfig`] from flags, binds, handles signals
//! and calls [`Server::run`], which is also what the tests call on
//! `127.0.0.1:0`.
//!
//! # Layout
//! - `config`: [`ServerConfig`], [`Limits`] and [`ConnectionLimits`].
//! - `server`: [`Server`] (model loading, services, shutdown and drain).
//! - `transport`: accepting connections, TLS, HTTP/1.1 and HTTP/2, and the
//!   per-connection limits and timeouts.
//! - [`request`]: the checks every request passes before scoring (public
//!   for the request fuzz target).
//! - `scorer`: the Scorer handlers: scoring, chunks and deadlines.
//! - `reply`: what the handlers compute (`Scores`) and
//!   Score's answer, encoded straight from the model's names; the
//!   generated server.
//! - `budget`: the server-wide cap on responses not yet sent.
//! - `catalog`: the models by name and version, and loading them from a
//!   file or a directory with a version policy.
//! - `state`: the shared state, the swappable catalog, hot reload,
//!   `--watch`, health.
//! - `health`: `grpc.health.v1.Health` for "" and "slant.v1.Scorer".
//! - `http`: the JSON API, gRPC-Web, `/healthz`, `/metrics` and the page
//!   on the API port; the HTTP status of each refusal.
//! - `openapi`: the OpenAPI 3 document of the HTTP routes, its schemas
//!   made from the proto's descriptor set.
//! - `observe`: the gate every call passes: drain refusal, keys and
//!   concurrency slots, deadlines, status mapping, metrics, access lines.
//! - `callers`: API keys and concurrency limits.
//! - `access`: the access log's writer.
//! - `metrics`: counters, histograms and the `/metrics` route.
//! - `error`: [`ServiceError`].

mod access;
mod budget;
mod callers;
mod catalog;
mod config;
mod error;
mod health;
mod http;
mod metrics;
mod observe;
mod openapi;
mod reply;
pub mod request;
mod scorer;
mod server;
mod state;
mod transport;

pub use access::AccessLog;
pub use callers::CallerPolicy;
pub use catalog::{ModelSource, DEFAULT_MODEL};
pub use config::{ConnectionLimits, Limits, ServerConfig, TlsFiles};
pub use error::ServiceError;
pub use server::{run, Server, FILE_DESCRIPTOR_SET};
pub use state::{tune_allocator, ReloadHandle};
