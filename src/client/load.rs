//! A closed-loop load generator for a running server (`slant bench grpc`).
//!
//! `concurrency` tasks, spread over `connections` HTTP/2 connections, each
//! send one call at a time for `duration` (after an unmeasured warm-up),
//! and the report gives throughput, latency percentiles and errors. The
//! calls go over gRPC, or over the JSON API ([`BenchProtocol`]): `POST
//! /v1/score` (health: `GET /healthz`) on one HTTP/1.1 keep-alive
//! connection per task, as scripts and most HTTP clients do, or on the
//! HTTP/2 connections.
//!
//! The generator shares the machine with the server, so it keeps its own
//! work small and equal for every RPC: requests are encoded once up front
//! and sent as bytes, and responses are kept as bytes (each worker fully
//! decodes and checks its first response only). Health and Score runs thus
//! differ only by what the server does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::bytes::{Buf, BufMut, Bytes};
use prost::Message as _;
use serde::Serialize;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::data::DataError;
use crate::proto::{ScoreRequest, ScoreResponse};

/// HTTP/2 flow-control windows the generator asks for: the server's own
/// (`service::transport`), so large responses on many streams do not wait
/// on the 64 KiB default.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 8 << 20;

/// The call to drive.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BenchRpc {
    /// slant.v1.Scorer/Score with `batch` passages per call.
    Score,
    /// grpc.health.v1.Health/Check: the transport's baseline.
    Health,
}

impl std::str::FromStr for BenchRpc {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "score" => Ok(Self::Score),
            "health" => Ok(Self::Health),
            _ => Err(format!("unknown rpc {s:?} (score or health)")),
        }
    }
}

/// How the calls travel.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BenchProtocol {
    /// gRPC over HTTP/2.
    Grpc,
    /// The JSON API over HTTP/1.1, one keep-alive connection per task.
    Json,
    /// The JSON API over HTTP/2 (prior knowledge), on `connections`
    /// connections.
    JsonH2,
}

impl std::str::FromStr for BenchProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "grpc" => Ok(Self::Grpc),
            "json" => Ok(Self::Json),
            "json-h2" => Ok(Self::JsonH2),
            _ => Err(format!("unknown protocol {s:?} (grpc, json or json-h2)")),
        }
    }
}

/// What to drive and for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Server address (HOST:PORT or http://HOST:PORT).
    pub addr: String,
    pub rpc: BenchRpc,
    pub protocol: BenchProtocol,
    /// Passages per Score call.
    pub batch: usize,
    /// Calls in flight at once (one task each, one call at a time).
    pub concurrency: usize,
    pub duration: Duration,
    /// Unmeasured warm-up before measuring.
    pub warmup: Duration,
    /// HTTP/2 connections to spread the calls over.
    pub connections: usize,
    /// Score the text of every */train.jsonl under this folder instead of
    /// the built-in news sentences.
    pub corpus: Option<PathBuf>,
    /// Heads to request (empty: all).
    pub heads: Vec<String>,
    /// Contributions per head to request.
    pub explain: u32,
    /// An API key to send (`authorization: Bearer KEY`).
    pub api_key: Option<String>,
}

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{what} must be at least 1")]
    Zero { what: &'static str },
    #[error(transparent)]
    Corpus(#[from] DataError),
    #[error("{path}: no passages found in */train.jsonl (\"text\" field)")]
    EmptyCorpus { path: PathBuf },
    #[error("{uri} is not a valid address")]
    Address {
        uri: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot connect to {uri}")]
    Connect {
        uri: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("the API key is not a valid header value (printable ASCII only)")]
    ApiKey,
    #[error("cannot connect to {addr}")]
    HttpConnect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP handshake with {addr} failed")]
    Handshake {
        addr: String,
        #[source]
        source: hyper::Error,
    },
    #[error("a load worker stopped unexpectedly")]
    Worker(#[source] tokio::task::JoinError),
}

/// What a bench run measured.
#[derive(Serialize, Debug, Clone)]
pub struct BenchReport {
    pub rpc: BenchRpc,
    pub protocol: BenchProtocol,
    pub addr: String,
    pub concurrency: usize,
    pub connections: usize,
    /// Passages per call (0 for health).
    pub batch: usize,
    pub duration_s: f64,
    /// Calls that succeeded.
    pub requests: u64,
    /// Calls that failed.
    pub errors: u64,
    pub rps: f64,
    pub passages_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Failed calls by status code.
    pub error_codes: BTreeMap<String, u64>,
    pub first_error: Option<String>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.rpc, self.protocol) {
            (BenchRpc::Score, BenchProtocol::Grpc) => format!("Score, batch {}", self.batch),
            (BenchRpc::Health, BenchProtocol::Grpc) => "Health/Check".to_string(),
            (BenchRpc::Score, p) => format!("POST /v1/score ({p:?}), batch {}", self.batch),
            (BenchRpc::Health, p) => format!("GET /healthz ({p:?})"),
        };
        writeln!(
            f,
            "{what} on {}: concurrency {}, {} connection(s), {:.1} s",
            self.addr, self.concurrency, self.connections, self.duration_s
        )?;
        writeln!(f, "  requests        {}", self.requests)?;
        writeln!(f, "  rps             {:.0}", self.rps)?;
        if self.rpc == BenchRpc::Score {
            writeln!(f, "  passages_per_s  {:.0}", self.passages_per_s)?;
        }
        writeln!(
            f,
            "  latency ms      p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        )?;
        write!(f, "  errors          {}", self.errors)?;
        for (code, n) in &self.error_codes {
            write!(f, "\n    {code}: {n}")?;
        }
        if let Some(e) = &self.first_error {
            write!(f, "\n  first error: {e}")?;
        }
        Ok(())
    }
}

/// Built-in passages: varied news sentences.
const SENTENCES: [&str; 20] = [
    "The city council approved the new budget on Tuesday after a three-hour debate.",
    "You won't BELIEVE what this senator said about the tax plan!!",
    "Scientists say the drug reduced symptoms in 40 percent of patients in a small trial.",
    "SHOCKING: Local man finds out the truth about his water bill.",
    "The central bank left interest rates unchanged, citing steady inflation.",
    "Fans were devastated as the team crashed out of the tournament in extra time.",
    "Officials confirmed that the bridge will reopen to traffic next month.",
    "This one weird trick will make you rich overnight, experts hate it.",
    "The company reported record profits, beating analyst expectations by a wide margin.",
    "Residents are furious after the storm left thousands without power for days.",
    "A new study links moderate exercise to better sleep in older adults.",
    "Vaccines contain microchips that track your location, a viral post claims.",
    "The president will travel to Brussels for talks with European leaders.",
    "Heartwarming: stranger returns lost wallet with every cent still inside.",
    "Unemployment fell to 3.9 percent in March, the lowest level in a year.",
    "Is this the end of the smartphone as we know it?",
    "Police are investigating a break-in at the downtown museum overnight.",
    "The film was praised by critics for its stunning visuals and moving score.",
    "Experts warn the housing market could collapse within weeks, sparking panic.",
    "The school board voted 5-2 to extend the academic year by two days.",
];

/// The peers' benchmark corpus (see [`crate::bench::corpus_texts`]),
/// without passages the server would refuse as empty or over 64 KiB.
fn load_corpus(dir: &Path) -> Result<Vec<String>, LoadError> {
    let mut out = crate::bench::corpus_texts(dir)?;
    out.retain(|t| !t.trim().is_empty() && t.len() <= 64 * 1024);
    if out.is_empty() {
        return Err(LoadError::EmptyCorpus {
            path: dir.to_path_buf(),
        });
    }
    Ok(out)
}

/// A gRPC codec that sends and receives message bytes as they are: the
/// load generator encodes each request once, and tests use it to send what
/// no well-behaved client would.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self {
        RawCodec
    }
    fn decoder(&mut self) -> Self {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, code: &str, message: String) {
        *self.errors.entry(code.to_string()).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }
}

/// What every worker sends.
struct Load {
    rpc: BenchRpc,
    path: PathAndQuery,
    /// Encoded requests, sent in turn.
    requests: Vec<Bytes>,
    /// Passages per Score request.
    batch: usize,
    /// `authorization: Bearer KEY`, when the server wants a key.
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Load {
    /// Whether a JSON API answer is the call's answer to one request.
    fn check_json(&self, body: &Bytes) -> Result<(), String> {
        match self.rpc {
            BenchRpc::Score => {
                let r: ScoreResponse = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                if r.results.len() != self.batch {
                    return Err(format!(
                        "{} results for {} passages",
                        r.results.len(),
                        self.batch
                    ));
                }
            }
            BenchRpc::Health => {
                serde_json::from_slice::<serde_json::Value>(body).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Whether a response decodes as the RPC's answer to one request.
    fn check(&self, response: &Bytes) -> Result<(), String> {
        match self.rpc {
            BenchRpc::Score => {
                let r = ScoreResponse::decode(response.clone()).map_err(|e| e.to_string())?;
                if r.results.len() != self.batch {
                    return Err(format!(
                        "{} results for {} passages",
                        r.results.len(),
                        self.batch
                    ));
                }
            }
            BenchRpc::Health => {
                HealthCheckResponse::decode(response.clone()).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

async fn worker(channel: Channel, load: Arc<Load>, id: usize, until: Instant) -> Tally {
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut tally = Tally::default();
    let n = load.requests.len().max(1);
    let mut next = id.wrapping_mul(7919) % n;
    let mut checked = false;
    while Instant::now() < until {
        let body = load.requests.get(next).cloned().unwrap_or_default();
        next = (next + 1) % n;
        let start = Instant::now();
        if let Err(e) = grpc.ready().await {
            tally.error("UNAVAILABLE", format!("the connection is not ready: {e}"));
            continue;
        }
        let mut request = tonic::Request::new(body);
        if let Some(auth) = &load.authorization {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        match grpc
            .unary::<Bytes, Bytes, _>(request, load.path.clone(), RawCodec)
            .await
        {
            Ok(response) => {
                let elapsed = start.elapsed();
                if !checked {
                    checked = true;
                    if let Err(e) = load.check(response.get_ref()) {
                        tally.error("BAD_RESPONSE", format!("a response does not decode: {e}"));
                        continue;
                    }
                }
                tally.ok += 1;
                tally
                    .latencies_us
                    .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
            }
            Err(status) => {
                let code = format!("{:?}", status.code());
                tally.error(&code, format!("{code}: {}", status.message()));
            }
        }
    }
    tally
}

/// Where the workers send their calls.
enum Target {
    Grpc(Vec<Channel>),
    /// The JSON API: HTTP/1.1 connections are made by each worker, HTTP/2
    /// ones shared.
    Json {
        addr: String,
        h2: Vec<http2::SendRequest<Full<Bytes>>>,
    },
}

async fn round(
    target: &Target,
    load: &Arc<Load>,
    concurrency: usize,
    length: Duration,
) -> Result<Tally, LoadError> {
    let until = Instant::now() + length;
    let mut tasks = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let load = load.clone();
        tasks.push(match target {
            Target::Grpc(channels) => {
                tokio::spawn(worker(channels[i % channels.len()].clone(), load, i, until))
            }
            Target::Json { addr, h2 } if h2.is_empty() => {
                let sender = Sender::H1(http1_connect(addr).await?);
                tokio::spawn(json_worker(sender, addr.clone(), load, i, until))
            }
            Target::Json { addr, h2 } => {
                let sender = Sender::H2(h2[i % h2.len()].clone());
                tokio::spawn(json_worker(sender, addr.clone(), load, i, until))
            }
        });
    }
    let mut total = Tally::default();
    for task in tasks {
        let t = task.await.map_err(LoadError::Worker)?;
        total.ok += t.ok;
        total.latencies_us.extend(t.latencies_us);
        for (code, n) in t.errors {
            *total.errors.entry(code).or_default() += n;
        }
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
    }
    Ok(total)
}

fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

/// A JSON API connection.
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

async fn tcp(addr: &str) -> Result<TokioIo<tokio::net::TcpStream>, LoadError> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| LoadError::HttpConnect {
            addr: addr.to_string(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    Ok(TokioIo::new(stream))
}

async fn http1_connect(addr: &str) -> Result<http1::SendRequest<Full<Bytes>>, LoadError> {
    let (sender, conn) =
        http1::handshake(tcp(addr).await?)
            .await
            .map_err(|source| LoadError::Handshake {
                addr: addr.to_string(),
                source,
            })?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn http2_connect(addr: &str) -> Result<http2::SendRequest<Full<Bytes>>, LoadError> {
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake(tcp(addr).await?)
        .await
        .map_err(|source| LoadError::Handshake {
            addr: addr.to_string(),
            source,
        })?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One JSON API call: the status and the whole body.
async fn json_call(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), hyper::Error> {
    let response = match sender {
        Sender::H1(s) => {
            s.ready().await?;
            s.send_request(request).await?
        }
        Sender::H2(s) => {
            s.ready().await?;
            s.send_request(request).await?
        }
    };
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn json_worker(
    mut sender: Sender,
    addr: String,
    load: Arc<Load>,
    id: usize,
    until: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let n = load.requests.len().max(1);
    let mut next = id.wrapping_mul(7919) % n;
    let mut checked = false;
    let (method, path) = match load.rpc {
        BenchRpc::Score => (http::Method::POST, "/v1/score"),
        BenchRpc::Health => (http::Method::GET, "/healthz"),
    };
    let uri = match sender {
        Sender::H1(_) => path.to_string(),
        Sender::H2(_) => format!("http://{addr}{path}"),
    };
    while Instant::now() < until {
        let body = load.requests.get(next).cloned().unwrap_or_default();
        next = (next + 1) % n;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(http::header::HOST, &addr);
        if load.rpc == BenchRpc::Score {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        if let Some(auth) = &load.authorization {
            builder = builder.header(http::header::AUTHORIZATION, auth.as_bytes());
        }
        let request = match builder.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => {
                tally.error("BAD_REQUEST", format!("the request cannot be built: {e}"));
                break;
            }
        };
        let start = Instant::now();
        match json_call(&mut sender, request).await {
            Ok((status, body)) if status.is_success() => {
                let elapsed = start.elapsed();
                if !checked {
                    checked = true;
                    if let Err(e) = load.check_json(&body) {
                        tally.error("BAD_RESPONSE", format!("a response does not parse: {e}"));
                        continue;
                    }
                }
                tally.ok += 1;
                tally
                    .latencies_us
                    .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
            }
            Ok((status, body)) => {
                let code = status.as_u16().to_string();
                let text = String::from_utf8_lossy(&body);
                tally.error(
                    &code,
                    format!("{code}: {}", text.chars().take(300).collect::<String>()),
                );
            }
            Err(e) => {
                tally.error("CONNECTION", format!("the call failed: {e}"));
                // An HTTP/1.1 connection that failed is gone: make another.
                if let Sender::H1(_) = sender {
                    match http1_connect(&addr).await {
                        Ok(s) => sender = Sender::H1(s),
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }
        }
    }
    tally
}

/// Runs the load described by `args` against a running server.
pub async fn bench_grpc(args: LoadSpec) -> Result<BenchReport, LoadError> {
    let zero = |what| Err(LoadError::Zero { what });
    if args.concurrency == 0 {
        return zero("the concurrency");
    }
    if args.connections == 0 {
        return zero("the number of connections");
    }
    if args.rpc == BenchRpc::Score && args.batch == 0 {
        return zero("the batch");
    }
    let passages = match (&args.corpus, args.rpc) {
        (Some(dir), BenchRpc::Score) => load_corpus(dir)?,
        _ => SENTENCES.iter().map(|s| s.to_string()).collect(),
    };
    let uri = if args.addr.contains("://") {
        args.addr.clone()
    } else {
        format!("http://{}", args.addr)
    };
    let connections = match args.protocol {
        BenchProtocol::Json => args.concurrency,
        _ => args.connections.min(args.concurrency),
    };
    let target =
        match args.protocol {
            BenchProtocol::Grpc => {
                let endpoint = Endpoint::from_shared(uri.clone())
                    .map_err(|source| LoadError::Address {
                        uri: uri.clone(),
                        source,
                    })?
                    .tcp_nodelay(true)
                    .initial_stream_window_size(STREAM_WINDOW)
                    .initial_connection_window_size(CONNECTION_WINDOW);
                let mut channels = Vec::with_capacity(connections);
                for _ in 0..connections {
                    channels.push(endpoint.connect().await.map_err(|source| {
                        LoadError::Connect {
                            uri: uri.clone(),
                            source,
                        }
                    })?);
                }
                Target::Grpc(channels)
            }
            BenchProtocol::Json | BenchProtocol::JsonH2 => {
                let addr = uri
                    .split_once("://")
                    .map_or(uri.as_str(), |(_, rest)| rest)
                    .trim_end_matches('/')
                    .to_string();
                let mut h2 = Vec::new();
                if args.protocol == BenchProtocol::JsonH2 {
                    for _ in 0..connections {
                        h2.push(http2_connect(&addr).await?);
                    }
                }
                Target::Json { addr, h2 }
            }
        };
    let json = args.protocol != BenchProtocol::Grpc;
    let (path, requests, batch) = match args.rpc {
        BenchRpc::Score => {
            let n = passages.len();
            // One request per starting passage (at most 1024 distinct ones).
            let requests = (0..n.min(1024))
                .map(|first| {
                    let req = ScoreRequest {
                        passages: (0..args.batch)
                            .map(|k| passages[(first * args.batch + k) % n].clone())
                            .collect(),
                        heads: args.heads.clone(),
                        explain: args.explain,
                        ..Default::default()
                    };
                    if json {
                        // pbjson's writer cannot fail on these types.
                        Bytes::from(serde_json::to_vec(&req).unwrap_or_default())
                    } else {
                        Bytes::from(req.encode_to_vec())
                    }
                })
                .collect();
            (
                PathAndQuery::from_static("/slant.v1.Scorer/Score"),
                requests,
                args.batch,
            )
        }
        BenchRpc::Health => {
            let req = HealthCheckRequest {
                service: String::new(),
            };
            let body = if json {
                Bytes::new()
            } else {
                Bytes::from(req.encode_to_vec())
            };
            (
                PathAndQuery::from_static("/grpc.health.v1.Health/Check"),
                vec![body],
                0,
            )
        }
    };
    let authorization = match &args.api_key {
        Some(key) => Some(
            format!("Bearer {key}")
                .parse()
                .map_err(|_| LoadError::ApiKey)?,
        ),
        None => None,
    };
    let load = Arc::new(Load {
        rpc: args.rpc,
        path,
        requests,
        batch,
        authorization,
    });
    if !args.warmup.is_zero() {
        round(&target, &load, args.concurrency, args.warmup).await?;
    }
    let start = Instant::now();
    let mut tally = round(&target, &load, args.concurrency, args.duration).await?;
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    tally.latencies_us.sort_unstable();
    let errors = tally.errors.values().sum();
    Ok(BenchReport {
        rpc: args.rpc,
        protocol: args.protocol,
        addr: args.addr,
        concurrency: args.concurrency,
        connections,
        batch: load.batch,
        duration_s: elapsed,
        requests: tally.ok,
        errors,
        rps: tally.ok as f64 / elapsed,
        passages_per_s: (tally.ok * load.batch as u64) as f64 / elapsed,
        p50_ms: percentile_ms(&tally.latencies_us, 0.50),
        p90_ms: percentile_ms(&tally.latencies_us, 0.90),
        p99_ms: percentile_ms(&tally.latencies_us, 0.99),
        max_ms: percentile_ms(&tally.latencies_us, 1.0),
        error_codes: tally.errors,
        first_error: tally.first_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&v, 1.0), 100.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn corpus_reads_sorted_train_files() {
        let dir = tempfile::tempdir().unwrap();
        for (folder, text) in [("b", "second"), ("a", "first")] {
            std::fs::create_dir(dir.path().join(folder)).unwrap();
            std::fs::write(
                dir.path().join(folder).join("train.jsonl"),
                format!("{{\"text\": \"{text}\", \"label\": \"x\"}}\n\n"),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("stray.jsonl"), "{\"text\": \"no\"}\n").unwrap();
        assert_eq!(load_corpus(dir.path()).unwrap(), ["first", "second"]);
        assert!(load_corpus(&dir.path().join("a/none")).is_err());
    }
}
