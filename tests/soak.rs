//! A bounded soak test of the gRPC service: a real server on 127.0.0.1:0,
//! N concurrent tonic clients sending a mix of good, bad, oversized,
//! article, streaming and cancelled calls for a few seconds, a refused
//! (corrupt) and a good model reload in the middle, then checks that every
//! good call succeeded, bad ones got their documented codes, the model id
//! changed exactly once, and resident memory and open file descriptors came
//! back to about where they were once warm.
//!
//! `SLANT_SOAK_SECS` (default 3) sets how long the mixed load runs;
//! `SLANT_SOAK_CLIENTS` (default 16) how many clients run it.

#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common_service::{model_a, model_b, save_corrupt, serve};
use slant::proto::scorer_client::ScorerClient;
use slant::proto::{ArticleRequest, ScoreRequest};
use slant::service::{Limits, ServerConfig};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

const MAX_BATCH: usize = 64;
const MAX_PASSAGE_BYTES: usize = 1024;
const MAX_MESSAGE_BYTES: usize = 128 * 1024;
const MAX_EXPLAIN: u32 = 8;
const FD_SLACK: usize = 8;

const SENTENCES: [&str; 8] = [
    "good news",
    "bad news",
    "SHOCKING news!!",
    "the senate voted on the budget",
    "great results for the team",
    "Good news, SHOCKING news!!",
    "",
    "an ordinary sentence about nothing in particular",
];

/// Reload phases, as seen by a call when it starts and when it ends.
const BEFORE_RELOAD: u8 = 0;
const RELOADING: u8 = 1;
const RELOADED: u8 = 2;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A small xorshift generator: deterministic per client, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one client saw.
#[derive(Default, Debug)]
struct Tally {
    sent: u64,
    good_ok: u64,
    good_failed: u64,
    bad_expected: u64,
    oversized_expected: u64,
    wrong_code: u64,
    article_ok: u64,
    stream_ok: u64,
    stream_bad_expected: u64,
    cancel_dropped: u64,
    cancel_deadline: u64,
    cancel_completed: u64,
    reconnects: u64,
    /// Good answers from calls that ended before the reload began.
    seen_a_before: u64,
    /// Good answers from calls that started after the reload finished.
    seen_b_after: u64,
    model_id_wrong: u64,
    failures: Vec<String>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.sent += o.sent;
        self.good_ok += o.good_ok;
        self.good_failed += o.good_failed;
        self.bad_expected += o.bad_expected;
        self.oversized_expected += o.oversized_expected;
        self.wrong_code += o.wrong_code;
        self.article_ok += o.article_ok;
        self.stream_ok += o.stream_ok;
        self.stream_bad_expected += o.stream_bad_expected;
        self.cancel_dropped += o.cancel_dropped;
        self.cancel_deadline += o.cancel_deadline;
        self.cancel_completed += o.cancel_completed;
        self.reconnects += o.reconnects;
        self.seen_a_before += o.seen_a_before;
        self.seen_b_after += o.seen_b_after;
        self.model_id_wrong += o.model_id_wrong;
        for f in o.failures {
            if self.failures.len() < 20 {
                self.failures.push(f);
            }
        }
    }

    fn fail(&mut self, what: String) {
        if self.failures.len() < 20 {
            self.failures.push(what);
        }
    }
}

/// Shared between the driver and the clients.
struct Shared {
    stop: AtomicBool,
    phase: AtomicU8,
    id_a: String,
    /// Set before the phase becomes RELOADED.
    id_b: std::sync::OnceLock<String>,
    /// Whether to do the mixed workload (false: good Score calls only).
    mixed: bool,
}

impl Shared {
    /// Checks a good answer's model id against the reload phases at the
    /// call's start and end.
    fn check_model(&self, t: &mut Tally, started: u8, id: &str) {
        let ended = self.phase.load(Ordering::SeqCst);
        if started == RELOADED {
            if Some(id) == self.id_b.get().map(String::as_str) {
                t.seen_b_after += 1;
            } else {
                t.model_id_wrong += 1;
                t.fail(format!("call started after the reload saw model {id}"));
            }
        } else if ended == BEFORE_RELOAD {
            if id == self.id_a {
                t.seen_a_before += 1;
            } else {
                t.model_id_wrong += 1;
                t.fail(format!("call ended before the reload saw model {id}"));
            }
        } else if id != self.id_a && Some(id) != self.id_b.get().map(String::as_str) {
            t.model_id_wrong += 1;
            t.fail(format!("call during the reload saw unknown model {id}"));
        }
    }
}

async fn connect(addr: SocketAddr) -> ScorerClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    ScorerClient::new(channel)
}

fn req(passages: Vec<String>) -> ScoreRequest {
    ScoreRequest {
        passages,
        ..Default::default()
    }
}

fn good_request(rng: &mut Rng, id: u64) -> ScoreRequest {
    let n = 1 + rng.below(8) as usize;
    let passages = (0..n)
        .map(|_| SENTENCES[rng.below(SENTENCES.len() as u64) as usize].to_string())
        .collect();
    let heads = match rng.below(4) {
        0 => vec!["sentiment".into()],
        1 => vec!["sensational".into()],
        2 => vec!["sensational".into(), "sentiment".into()],
        _ => vec![],
    };
    let explain = if rng.below(3) == 0 {
        1 + rng.below(MAX_EXPLAIN as u64) as u32
    } else {
        0
    };
    ScoreRequest {
        passages,
        heads,
        explain,
        request_id: format!("g-{id}"),
        ..Default::default()
    }
}

fn expect_code<T>(
    t: &mut Tally,
    result: Result<T, Status>,
    code: Code,
    what: &str,
    oversized: bool,
) {
    match result {
        Err(s) if s.code() == code => {
            if oversized {
                t.oversized_expected += 1
            } else {
                t.bad_expected += 1
            }
        }
        Err(s) => {
            t.wrong_code += 1;
            t.fail(format!("{what}: expected {code:?}, got {s:?}"));
        }
        Ok(_) => {
            t.wrong_code += 1;
            t.fail(format!("{what}: expected {code:?}, got an answer"));
        }
    }
}

async fn good_score(
    client: &mut ScorerClient<Channel>,
    shared: &Shared,
    t: &mut Tally,
    rng: &mut Rng,
) {
    let r = good_request(rng, t.sent);
    let n = r.passages.len();
    let rid = r.request_id.clone();
    let started = shared.phase.load(Ordering::SeqCst);
    t.sent += 1;
    match client.score(r).await {
        Ok(resp) => {
            let resp = resp.into_inner();
            if resp.results.len() == n && resp.request_id == rid {
                t.good_ok += 1;
                shared.check_model(t, started, &resp.model_id);
            } else {
                t.good_failed += 1;
                t.fail(format!("Score answered {} of {n}", resp.results.len()));
            }
        }
        Err(s) => {
            t.good_failed += 1;
            t.fail(format!("good Score failed: {s:?}"));
        }
    }
}

async fn one_op(client: &mut ScorerClient<Channel>, shared: &Shared, t: &mut Tally, rng: &mut Rng) {
    if !shared.mixed {
        return good_score(client, shared, t, rng).await;
    }
    match rng.below(100) {
        // Good Score calls.
        0..=44 => good_score(client, shared, t, rng).await,
        // Bad: no passages.
        45..=49 => {
            t.sent += 1;
            let r = client.score(ScoreRequest::default()).await;
            expect_code(t, r, Code::InvalidArgument, "empty Score", false);
        }
        // Bad: unknown head.
        50..=54 => {
            t.sent += 1;
            let r = ScoreRequest {
                heads: vec!["sentiment".into(), "nope".into()],
                ..req(vec!["good news".into()])
            };
            let r = client.score(r).await;
            expect_code(t, r, Code::InvalidArgument, "unknown head", false);
        }
        // Oversized: one passage over --max-passage-bytes.
        55..=58 => {
            t.sent += 1;
            let long = "a".repeat(MAX_PASSAGE_BYTES + 1 + rng.below(64) as usize);
            let r = client.score(req(vec!["ok".into(), long])).await;
            expect_code(t, r, Code::InvalidArgument, "long passage", true);
        }
        // Oversized: a batch over --max-batch.
        59..=62 => {
            t.sent += 1;
            let n = MAX_BATCH + 1 + rng.below(16) as usize;
            let r = client.score(req(vec!["good".into(); n])).await;
            expect_code(t, r, Code::ResourceExhausted, "big batch", true);
        }
        // Oversized: a message over --max-message-bytes.
        63 => {
            t.sent += 1;
            let huge = "b".repeat(MAX_MESSAGE_BYTES + 1024);
            let r = client.score(req(vec![huge])).await;
            expect_code(t, r, Code::ResourceExhausted, "huge message", true);
        }
        // Good ScoreArticle calls.
        64..=73 => {
            t.sent += 1;
            let started = shared.phase.load(Ordering::SeqCst);
            let text = (0..2 + rng.below(6))
                .map(|_| SENTENCES[rng.below(6) as usize].to_string() + ".")
                .collect::<Vec<_>>()
                .join(" ")
                + "\n\nThe senate voted on Tuesday. Great results, said Mr. Smith.";
            let r = ArticleRequest {
                text,
                title: "SHOCKING news for the senate".into(),
                heads: vec![],
                explain: rng.below(3) as u32,
                request_id: format!("a-{}", t.sent),
                ..Default::default()
            };
            match client.score_article(r).await {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    if resp.passages.len() >= 2 && !resp.summary.is_empty() {
                        t.good_ok += 1;
                        t.article_ok += 1;
                        shared.check_model(t, started, &resp.model_id);
                    } else {
                        t.good_failed += 1;
                        t.fail(format!("ScoreArticle answered {resp:?}"));
                    }
                }
                Err(s) => {
                    t.good_failed += 1;
                    t.fail(format!("good ScoreArticle failed: {s:?}"));
                }
            }
        }
        // ScoreStream with a few good messages, sometimes ending in a bad one.
        74..=83 => {
            t.sent += 1;
            let started = shared.phase.load(Ordering::SeqCst);
            let n = 2 + rng.below(4) as usize;
            let bad_last = rng.below(4) == 0;
            let mut reqs: Vec<ScoreRequest> = (0..n)
                .map(|i| ScoreRequest {
                    request_id: format!("s-{i}"),
                    ..good_request(rng, i as u64)
                })
                .collect();
            if bad_last {
                reqs.push(ScoreRequest {
                    heads: vec!["nope".into()],
                    ..req(vec!["x".into()])
                });
            }
            let mut stream = match client.score_stream(tokio_stream::iter(reqs)).await {
                Ok(s) => s.into_inner(),
                Err(s) => {
                    t.good_failed += 1;
                    t.fail(format!("ScoreStream refused: {s:?}"));
                    return;
                }
            };
            for i in 0..n {
                match stream.message().await {
                    Ok(Some(r)) if r.request_id == format!("s-{i}") => {
                        shared.check_model(t, started, &r.model_id)
                    }
                    other => {
                        t.good_failed += 1;
                        t.fail(format!("ScoreStream message {i}: {other:?}"));
                        return;
                    }
                }
            }
            match stream.message().await {
                Ok(None) if !bad_last => {
                    t.good_ok += 1;
                    t.stream_ok += 1;
                }
                Err(s) if bad_last && s.code() == Code::InvalidArgument => {
                    t.good_ok += 1;
                    t.stream_ok += 1;
                    t.stream_bad_expected += 1;
                    t.bad_expected += 1;
                }
                other => {
                    t.good_failed += 1;
                    t.fail(format!("ScoreStream end (bad_last={bad_last}): {other:?}"));
                }
            }
        }
        // Cancelled: a big call dropped by the caller after a short wait.
        84..=89 => {
            t.sent += 1;
            let r = ScoreRequest {
                passages: vec!["good news and bad news ".repeat(40); MAX_BATCH],
                explain: MAX_EXPLAIN,
                ..Default::default()
            };
            let wait = Duration::from_micros(200 + rng.below(3000));
            match tokio::time::timeout(wait, client.score(r)).await {
                Err(_) => t.cancel_dropped += 1,
                Ok(Ok(_)) => t.cancel_completed += 1,
                Ok(Err(s)) => {
                    t.wrong_code += 1;
                    t.fail(format!("dropped call failed: {s:?}"));
                }
            }
        }
        // Cancelled: a big call with a tiny gRPC deadline.
        90..=94 => {
            t.sent += 1;
            let mut r = Request::new(ScoreRequest {
                passages: vec!["good news and bad news ".repeat(40); MAX_BATCH],
                explain: MAX_EXPLAIN,
                ..Default::default()
            });
            r.set_timeout(Duration::from_micros(100 + rng.below(2000)));
            match client.score(r).await {
                Ok(_) => t.cancel_completed += 1,
                Err(s) if matches!(s.code(), Code::DeadlineExceeded | Code::Cancelled) => {
                    t.cancel_deadline += 1
                }
                Err(s) => {
                    t.wrong_code += 1;
                    t.fail(format!("deadline call failed: {s:?}"));
                }
            }
        }
        // Cancelled: a stream abandoned after its first answer.
        _ => {
            t.sent += 1;
            let (tx, rx) = mpsc::channel(4);
            tx.send(req(vec!["good news".into()])).await.unwrap();
            let call = client.score_stream(ReceiverStream::new(rx));
            match tokio::time::timeout(Duration::from_secs(5), call).await {
                Ok(Ok(resp)) => {
                    let mut stream = resp.into_inner();
                    match stream.message().await {
                        Ok(Some(_)) => t.cancel_dropped += 1,
                        other => {
                            t.wrong_code += 1;
                            t.fail(format!("abandoned stream: {other:?}"));
                        }
                    }
                    // Dropping both ends mid-stream cancels the call.
                    drop(stream);
                    drop(tx);
                }
                other => {
                    t.wrong_code += 1;
                    t.fail(format!("abandoned stream start: {other:?}"));
                }
            }
        }
    }
}

/// One client: runs `ops` operations, or until `stop` when `ops` is 0;
/// reconnects every hundred operations.
async fn client_loop(addr: SocketAddr, shared: Arc<Shared>, seed: u64, ops: u64) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut client = connect(addr).await;
    let mut i = 0u64;
    loop {
        if ops > 0 && i >= ops || ops == 0 && shared.stop.load(Ordering::Relaxed) {
            break;
        }
        one_op(&mut client, &shared, &mut t, &mut rng).await;
        i += 1;
        if i % 100 == 0 {
            client = connect(addr).await;
            t.reconnects += 1;
        }
    }
    t
}

async fn run_clients(addr: SocketAddr, shared: &Arc<Shared>, n: usize, ops: u64) -> Tally {
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(client_loop(addr, shared.clone(), i as u64 + 1, ops)))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        total.merge(task.await.unwrap());
    }
    total
}

fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_mixed_load_with_reloads_stays_bounded() {
    let secs = env_or("SLANT_SOAK_SECS", 3).max(1);
    let clients = env_or("SLANT_SOAK_CLIENTS", 16).max(1) as usize;

    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.slant");
    model_a().save(&model_path).unwrap();
    // The second good model, written over the served file for the reload.
    let model_b_path = dir.path().join("model-b.slant");
    model_b().save(&model_b_path).unwrap();
    let mut config = ServerConfig::new(&model_path);
    config.limits = Limits {
        max_batch: MAX_BATCH,
        max_passage_bytes: MAX_PASSAGE_BYTES,
        max_article_bytes: 16 * 1024,
        max_message_bytes: MAX_MESSAGE_BYTES,
        max_explain: MAX_EXPLAIN,
        ..Limits::default()
    };
    config.drain_timeout = Duration::from_secs(2);
    let server = serve(config).await;
    let (addr, reload) = (server.addr, server.reload.clone());
    let id_a = reload.model_id();

    // Warm up: a few hundred good calls, then the mixed load, both over all
    // clients; then drop the clients and let the connections close.
    let warm_shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        phase: AtomicU8::new(BEFORE_RELOAD),
        id_a: id_a.clone(),
        id_b: Default::default(),
        mixed: false,
    });
    let warm_good = run_clients(addr, &warm_shared, clients, 400 / clients as u64 + 1).await;
    let warm_shared = Arc::new(Shared {
        mixed: true,
        ..Arc::try_unwrap(warm_shared).ok().unwrap()
    });
    let mut warm = run_clients(addr, &warm_shared, clients, 40).await;
    warm.merge(warm_good);
    assert!(
        warm.failures.is_empty() && warm.good_ok >= 400,
        "warm-up: {warm:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (warm_rss, warm_fds) = (vm_rss_kib(), open_fds());

    // The soak.
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        phase: AtomicU8::new(BEFORE_RELOAD),
        id_a: id_a.clone(),
        id_b: Default::default(),
        mixed: true,
    });
    let started = Instant::now();
    let load = tokio::spawn({
        let shared = shared.clone();
        async move { run_clients(addr, &shared, clients, 0).await }
    });
    let total = Duration::from_secs(secs);

    // A corrupt file at 40 %: refused, the old model keeps serving.
    tokio::time::sleep(total * 2 / 5).await;
    save_corrupt(&model_b(), &model_path);
    let refused = reload.reload().await;
    assert!(refused.is_err(), "a corrupt model was accepted");
    assert_eq!(reload.model_id(), id_a);

    // The second good model at 50 %.
    tokio::time::sleep(total / 10).await;
    // The new model's id is known before it serves (the id is its
    // payload's checksum), so a call that sees it mid-reload can tell.
    let (_, expected_b) = slant::model::ModelData::from_bytes(
        &model_b().to_bytes().unwrap(),
        std::path::Path::new("model-b"),
    )
    .unwrap();
    shared.id_b.set(expected_b.clone()).unwrap();
    shared.phase.store(RELOADING, Ordering::SeqCst);
    std::fs::copy(&model_b_path, &model_path).unwrap();
    let id_b = reload.reload().await.expect("the good model reloads");
    assert_eq!(id_b, expected_b);
    assert_ne!(id_b, id_a);
    assert_eq!(reload.model_id(), id_b);
    shared.phase.store(RELOADED, Ordering::SeqCst);

    tokio::time::sleep(total.saturating_sub(started.elapsed())).await;
    shared.stop.store(true, Ordering::Relaxed);
    let t = tokio::time::timeout(Duration::from_secs(30), load)
        .await
        .expect("the clients stop")
        .unwrap();
    let elapsed = started.elapsed();

    // Settle: the clients are dropped; wait for the server to see their
    // connections close and its in-flight calls end.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let settle = Instant::now();
    let (mut final_rss, mut final_fds, mut in_flight);
    loop {
        final_rss = vm_rss_kib();
        final_fds = open_fds();
        in_flight = metric(&reload.metrics_text(), "slant_grpc_in_flight ");
        if final_fds <= warm_fds + FD_SLACK && in_flight == Some(0)
            || settle.elapsed() > Duration::from_secs(3)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    println!(
        "soak: {secs}s x {clients} clients ({:.1}s actual): sent={} good_ok={} good_failed={} \
         (articles={} streams={}) bad_expected={} oversized_expected={} wrong_code={} \
         cancelled: dropped={} deadline={} completed_anyway={} reconnects={} \
         model: a_before={} b_after={} wrong={} | rss warm={}KiB final={}KiB ({:.2}x) \
         fds warm={} final={}",
        elapsed.as_secs_f64(),
        t.sent,
        t.good_ok,
        t.good_failed,
        t.article_ok,
        t.stream_ok,
        t.bad_expected,
        t.oversized_expected,
        t.wrong_code,
        t.cancel_dropped,
        t.cancel_deadline,
        t.cancel_completed,
        t.reconnects,
        t.seen_a_before,
        t.seen_b_after,
        t.model_id_wrong,
        warm_rss,
        final_rss,
        final_rss as f64 / warm_rss as f64,
        warm_fds,
        final_fds,
    );

    assert!(t.failures.is_empty(), "failures: {:#?}", t.failures);
    assert_eq!(t.good_failed, 0);
    assert_eq!(t.wrong_code, 0);
    assert_eq!(t.model_id_wrong, 0);
    // Not vacuous: every kind of call happened, and both models served.
    assert!(t.good_ok > 100, "{t:?}");
    assert!(
        t.article_ok > 0 && t.stream_ok > 0 && t.stream_bad_expected > 0,
        "{t:?}"
    );
    assert!(t.bad_expected > 0 && t.oversized_expected > 0, "{t:?}");
    assert!(t.cancel_dropped + t.cancel_deadline > 0, "{t:?}");
    assert!(t.seen_a_before > 0 && t.seen_b_after > 0, "{t:?}");
    let metrics = reload.metrics_text();
    assert_eq!(
        metric(&metrics, "slant_model_reloads_total{result=\"ok\"}"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "slant_model_reloads_total{result=\"failed\"}"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(in_flight, Some(0), "calls still in flight:\n{metrics}");

    // A fresh call after the soak sees the new model.
    let mut client = connect(addr).await;
    let resp = client
        .score(req(vec!["good news".into()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.model_id, id_b);
    drop(client);

    assert!(
        final_rss * 2 <= warm_rss * 3,
        "resident memory grew from {warm_rss} KiB to {final_rss} KiB"
    );
    assert!(
        final_fds <= warm_fds + FD_SLACK,
        "open fds grew from {warm_fds} to {final_fds}"
    );

    server.stop().await;
}

/// One `name:sha256-of-key` line.
fn key_line(name: &str, key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}:{hex}\n")
}

/// What the rolling soak's clients saw.
#[derive(Default, Debug)]
struct Rolling {
    ok: u64,
    shed: u64,
    pinned_ok: u64,
    pinned_gone: u64,
    failures: Vec<String>,
}

/// Versions roll over two models while keyed clients call the latest and
/// pinned versions: every call answers, or is shed (RESOURCE_EXHAUSTED)
/// or finds its pinned version gone (NOT_FOUND, once it is two versions
/// old); resident memory and open files stay where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_rolling_versions_with_keyed_clients() {
    let secs = env_or("SLANT_SOAK_SECS", 3).max(1);
    let clients = env_or("SLANT_SOAK_CLIENTS", 16).max(1) as usize;
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    for name in ["default", "tweets"] {
        std::fs::create_dir_all(models.join(name)).unwrap();
    }
    model_a().save(&models.join("default/1.slant")).unwrap();
    model_b().save(&models.join("tweets/1.slant")).unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(
        &keys,
        key_line("newsroom", "k-news") + &key_line("analytics", "k-stats"),
    )
    .unwrap();
    let mut config = ServerConfig::new(&models);
    config.models = slant::service::ModelSource::Dir(models.clone());
    config.keep_versions = 2;
    config.callers = slant::service::CallerPolicy {
        api_keys: Some(keys),
        protect_all: false,
        max_concurrent_requests: Some(64),
        max_concurrent_per_key: Some(12),
    };
    config.drain_timeout = Duration::from_secs(2);
    let server = serve(config).await;
    let (addr, reload) = (server.addr, server.reload.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let run = |seed: u64| {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut client = connect(addr).await;
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut seen = Rolling::default();
            while !stop.load(Ordering::Relaxed) {
                let key = if rng.below(2) == 0 {
                    "k-news"
                } else {
                    "k-stats"
                };
                let name = if rng.below(2) == 0 {
                    "default"
                } else {
                    "tweets"
                };
                // Half the calls pin the version the latest call saw.
                let mut r = tonic::Request::new(ScoreRequest {
                    model: name.into(),
                    ..req(vec!["good news".into(), "SHOCKING news!!".into()])
                });
                r.metadata_mut()
                    .insert("authorization", format!("Bearer {key}").parse().unwrap());
                match client.score(r).await {
                    Ok(latest) => {
                        seen.ok += 1;
                        let version = latest.into_inner().model_version;
                        let mut pinned = tonic::Request::new(ScoreRequest {
                            model: name.into(),
                            model_version: version.clone(),
                            ..req(vec!["good news".into()])
                        });
                        pinned
                            .metadata_mut()
                            .insert("authorization", format!("Bearer {key}").parse().unwrap());
                        match client.score(pinned).await {
                            Ok(r) if r.get_ref().model_version == version => seen.pinned_ok += 1,
                            Ok(r) => seen.failures.push(format!(
                                "pinned {version}, answered by {}",
                                r.get_ref().model_version
                            )),
                            Err(s) if s.code() == Code::NotFound => seen.pinned_gone += 1,
                            Err(s) if s.code() == Code::ResourceExhausted => seen.shed += 1,
                            Err(s) => seen.failures.push(format!("pinned: {s:?}")),
                        }
                    }
                    Err(s) if s.code() == Code::ResourceExhausted => seen.shed += 1,
                    Err(s) => seen.failures.push(format!("latest: {s:?}")),
                }
            }
            seen
        })
    };

    // Warm up, then the rolling load: a new version every 150 ms, names
    // in turn, contents alternating; every fifth file is corrupt.
    let warm: Vec<_> = (0..clients as u64).map(run).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in warm {
        assert!(w.await.unwrap().failures.is_empty());
    }
    stop.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = (vm_rss_kib(), open_fds());
    let load: Vec<_> = (100..100 + clients as u64).map(run).collect();
    let total = Duration::from_secs(secs);
    let begun = Instant::now();
    let (mut written, mut refused, mut middle) = (0u64, 0u64, None);
    let mut next_version = [2u64, 2u64];
    while begun.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let which = (written % 2) as usize;
        let name = ["default", "tweets"][which];
        let path = models.join(format!("{name}/{}.slant", next_version[which]));
        next_version[which] += 1;
        written += 1;
        if written % 5 == 0 {
            save_corrupt(&model_a(), &path);
            refused += u64::from(reload.reload().await.is_err());
        } else {
            if written % 2 == 0 {
                model_a().save(&path).unwrap();
            } else {
                model_b().save(&path).unwrap();
            }
            reload.reload().await.unwrap();
        }
        if middle.is_none() && begun.elapsed() >= total / 2 {
            middle = Some((vm_rss_kib(), open_fds()));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = Rolling::default();
    for task in load {
        let t = task.await.unwrap();
        seen.ok += t.ok;
        seen.shed += t.shed;
        seen.pinned_ok += t.pinned_ok;
        seen.pinned_gone += t.pinned_gone;
        seen.failures.extend(t.failures);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let end = (vm_rss_kib(), open_fds());
    let middle = middle.unwrap_or(end);
    println!(
        "rolling soak: {secs}s x {clients} keyed clients, {written} versions written \
         ({refused} corrupt, refused): latest ok={} pinned ok={} pinned gone={} shed={} | \
         rss start={}KiB middle={}KiB end={}KiB ({:.2}x) | fds start={} middle={} end={}",
        seen.ok,
        seen.pinned_ok,
        seen.pinned_gone,
        seen.shed,
        start.0,
        middle.0,
        end.0,
        end.0 as f64 / start.0 as f64,
        start.1,
        middle.1,
        end.1,
    );
    assert!(
        seen.failures.is_empty(),
        "{:#?}",
        &seen.failures[..seen.failures.len().min(10)]
    );
    assert!(seen.ok > 100 && seen.pinned_ok > 50, "{seen:?}");
    assert!(
        written >= 8 && refused >= 1,
        "{written} written, {refused} refused"
    );
    // Each model keeps two good versions, the newest good one first.
    let list = connect(addr)
        .await
        .list_models(slant::proto::ListModelsRequest {})
        .await;
    assert_eq!(list.unwrap_err().code(), Code::Unauthenticated);
    let mut r = tonic::Request::new(slant::proto::ListModelsRequest {});
    r.metadata_mut()
        .insert("authorization", "Bearer k-news".parse().unwrap());
    let list = connect(addr)
        .await
        .list_models(r)
        .await
        .unwrap()
        .into_inner();
    for m in &list.models {
        assert_eq!(m.versions.len(), 2, "{m:?}");
    }
    let metrics = reload.metrics_text();
    assert!(metrics.contains("key=\"newsroom\""), "{metrics}");
    assert!(
        end.0 * 2 <= start.0 * 3,
        "resident memory grew from {} KiB to {} KiB",
        start.0,
        end.0
    );
    assert!(
        end.1 <= start.1 + FD_SLACK,
        "open fds grew from {} to {}",
        start.1,
        end.1
    );
    server.stop().await;
}
