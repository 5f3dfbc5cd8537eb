//! Hostile clients over real sockets: each attack found against earlier
//! servers, now refused or cut off. For each, the test checks the status a
//! caller sees, that a health check and a small Score still answer within
//! a second during and after it, and (where memory was the problem) that
//! resident memory stays bounded. Timeouts are set short so the whole file
//! runs in seconds; the defaults are the same mechanisms with production
//! values (see `slant serve --help`).

#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common_service::{model_a, model_b, TestServer};
use prost::Message as _;
use slant::model::ModelError;
use slant::proto::{ArticleRequest, ScoreRequest};
use slant::service::{ConnectionLimits, Limits, ServerConfig, ServiceError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Short timeouts: what production sets in seconds or minutes.
fn test_connections() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 4096,
        max_concurrent_streams: 16,
        max_header_bytes: 16 * 1024,
        handshake_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(800),
        keepalive_interval: Duration::from_secs(60),
        keepalive_timeout: Duration::from_secs(20),
        send_timeout: Duration::from_millis(800),
        receive_timeout: Duration::from_millis(800),
        ..ConnectionLimits::default()
    }
}

/// Model A served with [`test_connections`], then `configure`'s changes.
async fn start(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
    common_service::start(|config, _| {
        config.connections = test_connections();
        configure(config);
    })
    .await
}

/// A health check and a small Score, each on a new connection, each
/// within a second.
async fn still_answers(server: &TestServer, when: &str) {
    let within = Duration::from_secs(1);
    let started = Instant::now();
    let health = tokio::time::timeout(within, async {
        HealthClient::new(server.channel().await)
            .check(HealthCheckRequest::default())
            .await
    })
    .await;
    assert!(
        matches!(health, Ok(Ok(_))),
        "{when}: no health answer within a second: {health:?}"
    );
    let score = tokio::time::timeout(within, async {
        server
            .scorer()
            .await
            .score(ScoreRequest {
                passages: vec!["good news".into()],
                ..Default::default()
            })
            .await
    })
    .await;
    assert!(
        matches!(&score, Ok(Ok(r)) if r.get_ref().results.len() == 1),
        "{when}: no Score answer within a second: {score:?}"
    );
    eprintln!(
        "{when}: health and Score answered in {:?}",
        started.elapsed()
    );
}

/// The tests of this file run one at a time: each reads the process's
/// resident memory, which tests running beside it would change.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

fn vm_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

fn code_of<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let status = r.expect_err("the call should fail");
    (status.code(), status.message().to_string())
}

// ---------------------------------------------------------------- requests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_heads_and_explanation_bombs_are_refused_before_scoring() {
    let _serial = serial().await;
    let server = start(|_| {}).await;
    let mut client = server
        .scorer()
        .await
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let rss0 = vm_rss_mib();

    // The request that grew the old server without bound: 1,024 passages,
    // one head 40,000 times, 64 contributions each.
    let started = Instant::now();
    let bomb = ScoreRequest {
        passages: vec!["Good news, SHOCKING news!!".into(); 1024],
        heads: vec!["sentiment".into(); 40_000],
        explain: 64,
        ..Default::default()
    };
    let (code, message) = code_of(client.score(bomb).await);
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("more than once"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Two copies are as wrong as 40,000.
    let twice = ScoreRequest {
        passages: vec!["good".into()],
        heads: vec!["sentiment".into(), "sentiment".into()],
        ..Default::default()
    };
    assert_eq!(code_of(client.score(twice).await).0, Code::InvalidArgument);
    // And in ScoreArticle.
    let article = ArticleRequest {
        text: "Good news.".into(),
        heads: vec!["sensational".into(), "sensational".into()],
        ..Default::default()
    };
    assert_eq!(
        code_of(client.score_article(article).await).0,
        Code::InvalidArgument
    );

    // Distinct heads, but more explanation than a request may cause.
    let heavy = ScoreRequest {
        passages: vec!["Good news, SHOCKING news!!".into(); 1024],
        explain: 64,
        ..Default::default()
    };
    let (code, message) = code_of(client.score(heavy).await);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("max-contributions"), "{message}");
    // An article split into many passages, the same.
    let article = ArticleRequest {
        text: "Good news. Bad news! ".repeat(10_000),
        explain: 64,
        ..Default::default()
    };
    let (code, message) = code_of(client.score_article(article).await);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("max-contributions"), "{message}");

    // One 60 KiB passage of one repeated word: each contribution lists at
    // most max-spans spans (the old server listed every occurrence; a word
    // written 6,144 times is one contribution with its first 16).
    let long = ScoreRequest {
        passages: vec!["good news ".repeat(6 * 1024)],
        explain: 64,
        ..Default::default()
    };
    let response = client.score(long).await.unwrap().into_inner();
    let spans = response.results[0]
        .heads
        .iter()
        .flat_map(|h| &h.contributions)
        .map(|c| c.spans.len())
        .max()
        .unwrap();
    assert_eq!(spans, Limits::default().max_spans);
    let bytes = response.encoded_len();
    eprintln!("a 60 KiB passage with explain 64: a {bytes}-byte response");
    assert!(bytes < 16 * 1024, "{bytes} bytes");
    let grown = vm_rss_mib() - rss0;
    eprintln!("RSS grew {grown:.1} MiB over the request attacks");
    assert!(grown < 64.0, "RSS grew {grown:.1} MiB");
    still_answers(&server, "after the request attacks").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_over_the_response_limit_are_refused() {
    let _serial = serial().await;
    let server = start(|c| c.limits.max_response_bytes = 4096).await;
    let mut client = server.scorer().await;
    let small = ScoreRequest {
        passages: vec!["good news".into(); 4],
        ..Default::default()
    };
    client.score(small).await.unwrap();
    let big = ScoreRequest {
        passages: vec!["good news".into(); 200],
        explain: 8,
        ..Default::default()
    };
    let (code, message) = code_of(client.score(big).await);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("max-response-bytes"), "{message}");
    still_answers(&server, "after a refused response").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_cuts_a_long_call_within_milliseconds() {
    let _serial = serial().await;
    let server = start(|c| {
        c.limits.max_contributions = 1 << 30;
        c.limits.max_message_bytes = 32 << 20;
    })
    .await;
    // About a second of work: 16 MB of passages explained in words. Sent
    // over raw HTTP/2 with a grpc-timeout header, so that what ends the
    // call is the server's deadline, not the client's.
    let request = ScoreRequest {
        passages: vec!["good news and bad news, SHOCKING news!! ".repeat(400); 1024],
        explain: 64,
        ..Default::default()
    };
    let (mut send, conn) = h2_connect(server.addr, 1 << 20).await;
    tokio::spawn(conn);
    let mut overruns = Vec::new();
    for deadline_ms in [50u64, 100, 200] {
        let (mut head, body) = grpc_request("/slant.v1.Scorer/Score", &request);
        head.headers_mut()
            .insert("grpc-timeout", format!("{deadline_ms}m").parse().unwrap());
        send = send.ready().await.unwrap();
        let started = Instant::now();
        let (response, mut stream) = send.send_request(head, false).unwrap();
        stream.send_data(body, true).unwrap();
        let response = response.await.unwrap();
        let mut elapsed = started.elapsed();
        let mut status = response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_string());
        if status.is_none() {
            // Not trailers-only: the status comes after the body.
            let mut body = response.into_body();
            let mut bytes = 0;
            while let Some(chunk) = body.data().await {
                bytes += chunk.unwrap().len();
            }
            let trailers = body.trailers().await.unwrap().unwrap_or_default();
            elapsed = started.elapsed();
            eprintln!("deadline {deadline_ms} ms: {bytes} body bytes, trailers {trailers:?} after {elapsed:?}");
            status = trailers
                .get("grpc-status")
                .map(|v| v.to_str().unwrap().to_string());
        }
        assert_eq!(
            status.as_deref(),
            Some("4"),
            "DEADLINE_EXCEEDED after {deadline_ms} ms"
        );
        let over = elapsed.as_secs_f64() * 1e3 - deadline_ms as f64;
        eprintln!("deadline {deadline_ms} ms: DEADLINE_EXCEEDED after {elapsed:?} ({over:+.1} ms)");
        overruns.push(over);
    }
    // The server checks between chunks of a millisecond or two.
    overruns.sort_by(f64::total_cmp);
    assert!(overruns[1] < 10.0, "median overrun {:.1} ms", overruns[1]);
    still_answers(&server, "after deadlines").await;
    server.stop().await;
}

// ------------------------------------------------------------------ reloads

/// Points `link` at `target`, replacing what was there.
fn repoint(link: &Path, target: &Path) {
    let tmp = link.with_extension("tmp-link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_of_hostile_files_are_refused_at_once_and_never_wedge() {
    let _serial = serial().await;
    let server = start(|_| {}).await;
    let dir = server.dir().to_path_buf();
    let good = dir.join("good.slant");
    model_b().save(&good).unwrap();
    // The served path becomes a symlink we can point anywhere.
    let first = dir.join("first.slant");
    std::fs::rename(&server.model_path, &first).unwrap();
    repoint(&server.model_path, &first);
    let id0 = server.reload.model_id();
    let rss0 = vm_rss_mib();

    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // A 1 GiB sparse file that is not a model, and one with a real header
    // that declares a 5-byte payload.
    let huge = dir.join("huge.slant");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let lying = dir.join("lying.slant");
    {
        let mut bytes = model_a().to_bytes().unwrap();
        bytes.truncate(56);
        bytes[16..24].copy_from_slice(&5u64.to_le_bytes());
        std::fs::write(&lying, &bytes).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&lying)
            .unwrap();
        f.set_len(1 << 30).unwrap();
    }

    let cases: [(&str, &Path); 4] = [
        ("/dev/zero", Path::new("/dev/zero")),
        ("a FIFO", &fifo),
        ("a 1 GiB file that is not a model", &huge),
        ("a 1 GiB file whose header lies", &lying),
    ];
    for (what, target) in cases {
        repoint(&server.model_path, target);
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(2), server.reload.reload()).await;
        let elapsed = started.elapsed();
        let err = match result {
            Ok(Err(e)) => e,
            other => panic!("{what}: expected a refusal within 2 s, got {other:?}"),
        };
        eprintln!("reload of {what}: refused in {elapsed:?}: {err}");
        assert!(elapsed < Duration::from_millis(500), "{what}: {elapsed:?}");
        match (what, &err) {
            ("/dev/zero" | "a FIFO", ServiceError::Model(ModelError::NotAFile { .. })) => {}
            (_, ServiceError::Model(ModelError::BadMagic { .. })) if target == huge => {}
            (_, ServiceError::Model(ModelError::LengthMismatch { .. })) if target == lying => {}
            _ => panic!("{what}: unexpected refusal {err:?}"),
        }
        assert_eq!(
            server.reload.model_id(),
            id0,
            "{what}: the old model serves"
        );
        still_answers(&server, &format!("after a reload of {what}")).await;
    }
    let grown = vm_rss_mib() - rss0;
    eprintln!("RSS grew {grown:.1} MiB over four hostile reloads");
    assert!(grown < 32.0, "RSS grew {grown:.1} MiB");

    // Later reloads still work.
    repoint(&server.model_path, &good);
    let id = server.reload.reload().await.unwrap();
    assert_ne!(id, id0);
    server.stop().await;
}

// ------------------------------------------------------------ connections

/// A raw HTTP/2 connection with h2's client: `window` is the stream
/// window this client grants (0: the server may send no DATA at all).
async fn h2_connect(
    addr: SocketAddr,
    window: u32,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::Connection<TcpStream, Bytes>,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    h2::client::Builder::new()
        .initial_window_size(window)
        .initial_connection_window_size(window.max(65_535))
        .handshake(tcp)
        .await
        .unwrap()
}

/// A gRPC request for `path` carrying `message`.
fn grpc_request(path: &str, message: &impl prost::Message) -> (http::Request<()>, Bytes) {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let encoded = message.encode_to_vec();
    let mut body = BytesMut::with_capacity(encoded.len() + 5);
    body.put_u8(0);
    body.put_u32(encoded.len() as u32);
    body.put_slice(&encoded);
    (request, body.freeze())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_are_capped_and_unread_responses_are_bounded() {
    let _serial = serial().await;
    let server = start(|c| {
        c.limits.max_buffered_bytes = 1 << 20;
        c.limits.max_contributions = 1 << 20;
    })
    .await;
    let rss0 = vm_rss_mib();

    // The server advertises its stream cap.
    let (mut send, mut conn) = h2_connect(server.addr, 0).await;
    let _ = tokio::time::timeout(Duration::from_millis(200), &mut conn).await;
    assert_eq!(conn.max_concurrent_send_streams(), 16);
    let conn = tokio::spawn(conn);

    // A client that never opens its window, asking for large responses on
    // every stream it may open: the server holds at most the buffered
    // budget, refuses the rest at once, and drops the connection when
    // nothing is taken for the send timeout.
    let request = ScoreRequest {
        passages: vec!["Good news, SHOCKING news!! ".repeat(20); 512],
        explain: 8,
        ..Default::default()
    };
    eprintln!("a {}-byte request", request.encoded_len());
    let mut statuses = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..16 {
        let (head, body) = grpc_request("/slant.v1.Scorer/Score", &request);
        send = send.ready().await.unwrap();
        let (response, mut stream) = send.send_request(head, false).unwrap();
        stream.send_data(body, true).unwrap();
        pending.push(response);
    }
    for response in pending {
        // Scoring takes a while in a debug build on a busy machine.
        let response = tokio::time::timeout(Duration::from_secs(60), response)
            .await
            .expect("response headers within 60 s")
            .unwrap();
        // Trailers-only answers (refusals) carry grpc-status in the headers.
        let status = response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_string());
        let message = response
            .headers()
            .get("grpc-message")
            .map(|v| v.to_str().unwrap_or("").to_string());
        statuses.push((status, message));
    }
    let held = statuses.iter().filter(|(s, _)| s.is_none()).count();
    let refused: Vec<_> = statuses
        .iter()
        .filter(|(s, _)| s.as_deref() == Some("8"))
        .collect();
    eprintln!(
        "16 large responses, never read: {held} held, {} refused (RESOURCE_EXHAUSTED)",
        refused.len()
    );
    assert!(held >= 1, "{statuses:?}");
    assert!(!refused.is_empty(), "{statuses:?}");
    assert!(
        refused
            .iter()
            .all(|(_, m)| m.as_deref().unwrap_or("").contains("max-buffered-bytes")),
        "{refused:?}"
    );
    still_answers(&server, "while a client leaves its responses unread").await;
    let peak = vm_rss_mib() - rss0;
    eprintln!("RSS grew {peak:.1} MiB while responses waited unread");
    assert!(peak < 64.0, "RSS grew {peak:.1} MiB");

    // The send timeout closes the connection, and the budget comes back.
    let closed = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(closed.is_ok(), "the connection was not closed");
    let mut client = server.scorer().await.max_decoding_message_size(64 << 20);
    let response = client.score(request.clone()).await;
    assert!(response.is_ok(), "{:?}", response.err());
    still_answers(&server, "after the slow reader was cut off").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_never_send_their_body_are_cancelled() {
    let _serial = serial().await;
    let server = start(|_| {}).await;
    let rss0 = vm_rss_mib();
    // Three connections, each with every stream it may open (16 here)
    // holding a Score call whose body never comes; then a stream call
    // that sends one message and stops.
    let mut pending = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let (mut send, conn) = h2_connect(server.addr, 65_535).await;
        conns.push(tokio::spawn(conn));
        for _ in 0..16 {
            let (head, _) = grpc_request("/slant.v1.Scorer/Score", &ScoreRequest::default());
            send = send.ready().await.unwrap();
            let (response, stream) = send.send_request(head, false).unwrap();
            pending.push((response, stream));
        }
    }
    still_answers(&server, "with 48 bodiless calls open").await;
    let started = Instant::now();
    for (response, _stream) in pending {
        let response = tokio::time::timeout(Duration::from_secs(5), response)
            .await
            .expect("an answer within 5 s")
            .unwrap();
        let status = response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_string());
        let message = response
            .headers()
            .get("grpc-message")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        assert_eq!(status.as_deref(), Some("1"), "CANCELLED: {response:?}");
        assert!(message.contains("receive-timeout"), "{message}");
    }
    eprintln!(
        "48 calls without a body cancelled after {:?}; RSS grew {:.1} MiB",
        started.elapsed(),
        vm_rss_mib() - rss0
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // Nothing is left running.
    let in_flight = |m: String| {
        m.lines()
            .find_map(|l| l.strip_prefix("slant_grpc_in_flight "))
            .map(|v| v.trim().to_string())
    };
    let mut left = None;
    for _ in 0..50 {
        left = in_flight(server.reload.metrics_text());
        if left.as_deref() == Some("0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left.as_deref(), Some("0"));
    still_answers(&server, "after the bodiless calls").await;

    // A stream that sends one message and then nothing: answered once,
    // then cancelled at the receive timeout (not left open, not "OK").
    let (tx, rx) = tokio::sync::mpsc::channel::<ScoreRequest>(1);
    tx.send(ScoreRequest {
        passages: vec!["good news".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut client = server.scorer().await;
    let mut stream = client
        .score_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    let started = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stalled stream ends");
    let status = end.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(status.message().contains("receive-timeout"), "{status:?}");
    eprintln!(
        "a stalled stream was cancelled after {:?}",
        started.elapsed()
    );
    drop(tx);
    drop(conns);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_reader_cannot_take_the_whole_response_budget() {
    let _serial = serial().await;
    let server = start(|c| {
        c.limits.max_buffered_bytes = 8 << 20;
        c.connections.max_buffered_bytes_per_connection = 1 << 20;
        c.connections.send_timeout = Duration::from_secs(30);
        c.limits.max_contributions = 1 << 20;
    })
    .await;
    let request = ScoreRequest {
        passages: vec!["Good news, SHOCKING news!! ".repeat(20); 512],
        explain: 8,
        ..Default::default()
    };
    let (mut send, conn) = h2_connect(server.addr, 0).await;
    let conn = tokio::spawn(conn);
    let mut statuses = Vec::new();
    // Responses are kept (not read): dropping one would reset its stream.
    let mut kept = Vec::new();
    for _ in 0..16 {
        let (head, body) = grpc_request("/slant.v1.Scorer/Score", &request);
        send = send.ready().await.unwrap();
        let (response, mut stream) = send.send_request(head, false).unwrap();
        stream.send_data(body, true).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(60), response)
            .await
            .expect("response headers")
            .unwrap();
        statuses.push(
            response
                .headers()
                .get("grpc-message")
                .map(|v| v.to_str().unwrap_or("").to_string()),
        );
        kept.push(response);
    }
    let refused = statuses.iter().flatten().count();
    let buffered = server.reload.metrics_text().lines().find_map(|l| {
        l.strip_prefix("slant_buffered_response_bytes ")
            .map(str::to_string)
    });
    assert!(refused >= 8, "{statuses:?} buffered {buffered:?}");
    assert!(
        statuses
            .iter()
            .flatten()
            .all(|m| m.contains("max-buffered-bytes-per-connection")),
        "{statuses:?}"
    );
    // Another client still gets the same large answer.
    let mut client = server.scorer().await.max_decoding_message_size(64 << 20);
    let answer = client.score(request.clone()).await;
    assert!(answer.is_ok(), "{:?}", answer.err());
    eprintln!("a slow reader held its 1 MiB share ({refused} refusals); another client was served");
    drop((kept, send));
    conn.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_open_connections_are_closed() {
    let _serial = serial().await;
    let server = start(|_| {}).await;
    // Idle TCP, an HTTP/2 preface without SETTINGS, and half an HTTP/1.1
    // request line (slowloris): none may stay.
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    for _ in 0..200 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        idle.push(s);
    }
    for _ in 0..100 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        idle.push(s);
    }
    still_answers(&server, "with 800 idle connections open").await;
    let started = Instant::now();
    for mut s in idle {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("a connection was still open after {:?}", started.elapsed()),
            }
        }
    }
    eprintln!("800 idle connections closed after {:?}", started.elapsed());

    // A connection that made a call and then idles gets closed too.
    let channel = server.channel().await;
    let mut client = HealthClient::new(channel);
    client.check(HealthCheckRequest::default()).await.unwrap();
    let (mut send, conn) = h2_connect(server.addr, 65_535).await;
    let conn = tokio::spawn(conn);
    let (head, body) = grpc_request(
        "/grpc.health.v1.Health/Check",
        &HealthCheckRequest::default(),
    );
    send = send.ready().await.unwrap();
    let (response, mut stream) = send.send_request(head, false).unwrap();
    stream.send_data(body, true).unwrap();
    let mut body = response.await.unwrap().into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let _keep = send;
    let closed = tokio::time::timeout(Duration::from_secs(3), conn).await;
    assert!(closed.is_ok(), "an idle HTTP/2 connection stayed open");
    still_answers(&server, "after the idle connections").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once() {
    let _serial = serial().await;
    let server = start(|c| c.connections.max_connections = 20).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The 21st is closed at once, not left waiting.
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(300), extra.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection over the cap was not closed: {read:?}"
    );
    // Once the idle ones time out, clients are served again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    still_answers(&server, "after the cap freed up").await;
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_are_closed() {
    let _serial = serial().await;
    let fixture = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    };
    let server = start(|c| {
        c.tls = Some(slant::service::TlsFiles {
            cert: fixture("server.pem"),
            key: fixture("server.key"),
            client_ca: None,
        })
    })
    .await;
    let mut stalled = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        if i % 2 == 0 {
            // Half a ClientHello record header, then nothing.
            s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        }
        stalled.push(s);
    }
    let started = Instant::now();
    for mut s in stalled {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("a stalled TLS handshake was still open"),
            }
        }
    }
    eprintln!(
        "200 stalled TLS handshakes closed after {:?}",
        started.elapsed()
    );
    // Each is counted just after its socket closes.
    let mut failed = 0u64;
    for _ in 0..100 {
        failed = server
            .reload
            .metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix("slant_tls_handshake_failures_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if failed >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(failed >= 200, "{failed} failed handshakes counted");
    server.stop().await;
}
