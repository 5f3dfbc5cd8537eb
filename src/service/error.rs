//! The service's error type: what can stop the server from starting or
//! running, and why a reload was refused. Errors a single call can cause
//! are gRPC statuses, never this type.

use std::path::PathBuf;

use crate::model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The model file could not be loaded (start-up) or was refused (reload).
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the listening socket: {0}")]
    Socket(std::io::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[source] rustls::Error),
    #[error(
        "loading the model {path} took longer than the reload timeout of {timeout:?}; abandoned"
    )]
    LoadTimeout {
        path: PathBuf,
        timeout: std::time::Duration,
    },
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("{path}:{line}: {reason}")]
    ApiKeys {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot read the API key file {path}: {source}")]
    ApiKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the access log {path}: {source}")]
    AccessLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the model directory {path}: {source}")]
    ModelDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the model loader for {path} stopped unexpectedly: {reason}")]
    Loader { path: PathBuf, reason: String },
    #[error("cannot read the TLS file {path}: {source}")]
    TlsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--cors-origin {origin:?} is not a valid origin (e.g. https://news.example.com, or *)"
    )]
    CorsOrigin { origin: String },
    #[error("cannot install the {signal} handler: {source}")]
    Signal {
        signal: &'static str,
        source: std::io::Error,
    },
}
