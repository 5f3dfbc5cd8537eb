//! Known and limited callers over real sockets: API keys (required,
//! added and revoked by a reload, health open unless --protect-all), load
//! shed at once under a burst (server-wide and per key) with a retry hint,
//! and the access log's lines.

#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::time::{Duration, Instant};

use common_service::start;
use sha2::{Digest, Sha256};
use slant::proto::scorer_client::ScorerClient;
use slant::proto::{ArticleRequest, ScoreRequest};
use slant::service::{AccessLog, CallerPolicy};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn sha(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn keyed<T>(message: T, key: Option<&str>) -> Request<T> {
    let mut r = Request::new(message);
    if let Some(k) = key {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {k}").parse().unwrap());
    }
    r
}

fn small() -> ScoreRequest {
    ScoreRequest {
        passages: vec!["SECRET-TEXT good news".into()],
        ..Default::default()
    }
}

async fn score_code(client: &mut ScorerClient<Channel>, key: Option<&str>) -> Code {
    match client.score(keyed(small(), key)).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_required_and_reloaded() {
    let server = start(|c, dir| {
        let keys = dir.join("keys.txt");
        std::fs::write(
            &keys,
            format!("# who may call\nnewsroom:{}\n", sha("k-news")),
        )
        .unwrap();
        c.callers.api_keys = Some(keys);
    })
    .await;
    let mut client = server.scorer().await;
    assert_eq!(score_code(&mut client, None).await, Code::Unauthenticated);
    assert_eq!(
        score_code(&mut client, Some("wrong")).await,
        Code::Unauthenticated
    );
    assert_eq!(score_code(&mut client, Some("k-news")).await, Code::Ok);
    // Health stays open without --protect-all.
    HealthClient::new(server.channel().await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    // The key's name labels metrics; the key itself appears nowhere.
    let metrics = server.reload.metrics_text();
    assert!(
        metrics.contains("method=\"Score\",code=\"OK\",key=\"newsroom\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("code=\"UNAUTHENTICATED\"} 2"), "{metrics}");
    assert!(!metrics.contains("k-news"));

    // A reload adds a key and revokes another.
    std::fs::write(
        server.dir().join("keys.txt"),
        format!("analytics:{}\n", sha("k-stats")),
    )
    .unwrap();
    server.reload.reload().await.unwrap();
    assert_eq!(
        score_code(&mut client, Some("k-news")).await,
        Code::Unauthenticated
    );
    assert_eq!(score_code(&mut client, Some("k-stats")).await, Code::Ok);
    server.stop().await;

    // With --watch, a changed key file is picked up without a signal (a
    // Kubernetes Secret is updated in place).
    let server = start(|c, dir| {
        let keys = dir.join("keys.txt");
        std::fs::write(&keys, format!("newsroom:{}\n", sha("k-news"))).unwrap();
        c.callers.api_keys = Some(keys);
        c.watch = Some(Duration::from_millis(50));
    })
    .await;
    let mut client = server.scorer().await;
    assert_eq!(score_code(&mut client, Some("k-news")).await, Code::Ok);
    let tmp = server.dir().join("keys.tmp");
    std::fs::write(&tmp, format!("ops:{}\n", sha("k-ops"))).unwrap();
    std::fs::rename(&tmp, server.dir().join("keys.txt")).unwrap();
    let mut picked_up = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if score_code(&mut client, Some("k-ops")).await == Code::Ok {
            picked_up = true;
            break;
        }
    }
    assert!(picked_up, "--watch did not pick up the new key file");
    assert_eq!(
        score_code(&mut client, Some("k-news")).await,
        Code::Unauthenticated
    );
    server.stop().await;

    let server = start(|c, dir| {
        let keys = dir.join("keys.txt");
        std::fs::write(&keys, format!("ops:{}\n", sha("k-ops"))).unwrap();
        c.callers.api_keys = Some(keys);
        c.callers.protect_all = true;
    })
    .await;
    let mut health = HealthClient::new(server.channel().await);
    let refused = health
        .check(keyed(HealthCheckRequest::default(), None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    health
        .check(keyed(HealthCheckRequest::default(), Some("k-ops")))
        .await
        .unwrap();
    server.stop().await;
}

/// A request that takes a while to score (raw-feature explanations, the
/// slowest kind, on long passages).
fn slow() -> ScoreRequest {
    ScoreRequest {
        passages: vec!["good news and bad news, SHOCKING news!! ".repeat(200); 64],
        explain: 16,
        raw_features: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_shed_at_once_server_wide_and_per_key() {
    let server = start(|c, dir| {
        let keys = dir.join("keys.txt");
        std::fs::write(
            &keys,
            format!("greedy:{}\npolite:{}\n", sha("k-greedy"), sha("k-polite")),
        )
        .unwrap();
        c.callers = CallerPolicy {
            api_keys: Some(keys),
            protect_all: false,
            max_concurrent_requests: Some(3),
            max_concurrent_per_key: Some(2),
        };
    })
    .await;
    let channel = server.channel().await;
    // 24 slow calls from one key at once, each with a 5 s deadline.
    let burst: Vec<_> = (0..24)
        .map(|_| {
            let mut client = ScorerClient::new(channel.clone());
            tokio::spawn(async move {
                let mut r = keyed(slow(), Some("k-greedy"));
                r.set_timeout(Duration::from_secs(5));
                let started = Instant::now();
                let result = client.score(r).await;
                (result, started.elapsed())
            })
        })
        .collect();
    // Meanwhile another key still gets its call through.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut polite = server.scorer().await;
    let mut r = keyed(small(), Some("k-polite"));
    r.set_timeout(Duration::from_secs(5));
    polite.score(r).await.unwrap();
    let (mut ok, mut shed, mut per_key) = (0, 0, 0);
    for task in burst {
        let (result, elapsed) = task.await.unwrap();
        assert!(
            elapsed < Duration::from_secs(5),
            "a call waited {elapsed:?}"
        );
        match result {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                // The key's own limit, or, while the polite caller holds
                // the third slot, the server's.
                let limit = status
                    .metadata()
                    .get("slant-limit")
                    .map(|v| v.to_str().unwrap_or(""));
                assert!(
                    matches!(
                        limit,
                        Some("max-concurrent-per-key" | "max-concurrent-requests")
                    ),
                    "{status:?}"
                );
                per_key += usize::from(limit == Some("max-concurrent-per-key"));
                assert!(
                    status.metadata().get("grpc-retry-pushback-ms").is_some()
                        && status.metadata().get("retry-after").is_some(),
                    "{status:?}"
                );
                // Shed at once, not after queueing.
                assert!(elapsed < Duration::from_secs(1), "shed after {elapsed:?}");
                shed += 1;
            }
        }
    }
    eprintln!("burst of 24: {ok} served, {shed} shed ({per_key} by the key's limit)");
    assert!(
        ok >= 2 && per_key >= 1,
        "{ok} served, {shed} shed, {per_key} per key"
    );
    // Slots come back: the same key is served again.
    let mut client = server.scorer().await;
    assert_eq!(score_code(&mut client, Some("k-greedy")).await, Code::Ok);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_a_line_per_call_and_never_the_text() {
    let server = start(|c, dir| {
        let keys = dir.join("keys.txt");
        std::fs::write(&keys, format!("newsroom:{}\n", sha("k-news"))).unwrap();
        c.callers.api_keys = Some(keys);
        c.access_log = AccessLog::File(dir.join("access.jsonl"));
    })
    .await;
    let mut client = server.scorer().await;
    let two = ScoreRequest {
        passages: vec!["SECRET-TEXT one".into(), "SECRET-TEXT two".into()],
        ..Default::default()
    };
    client.score(keyed(two, Some("k-news"))).await.unwrap();
    client
        .score(keyed(ScoreRequest::default(), Some("k-news")))
        .await
        .unwrap_err();
    client.score(keyed(small(), None)).await.unwrap_err();
    client
        .score_article(keyed(
            ArticleRequest {
                text: "SECRET-TEXT first. SECRET-TEXT second.".into(),
                title: "SECRET-TEXT title".into(),
                ..Default::default()
            },
            Some("k-news"),
        ))
        .await
        .unwrap();
    let path = server.dir().join("access.jsonl");
    let mut lines = Vec::new();
    for _ in 0..200 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        lines = text.lines().map(str::to_string).collect();
        if lines.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines {
        assert!(!line.contains("SECRET-TEXT"), "{line}");
        assert!(!line.contains("k-news"), "{line}");
    }
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ok = &v[0];
    assert_eq!(ok["method"], "Score");
    assert_eq!(ok["protocol"], "grpc");
    assert_eq!(ok["key"], "newsroom");
    assert_eq!(ok["model"], "default");
    assert_eq!(ok["version"], "1");
    assert_eq!(ok["passages"], 2);
    assert_eq!(ok["status"], "OK");
    assert!(ok["request_bytes"].as_u64().unwrap() > 20, "{ok}");
    assert!(ok["response_bytes"].as_u64().unwrap() > 50, "{ok}");
    assert!(ok["latency_ms"].as_f64().unwrap() > 0.0, "{ok}");
    assert!(ok["time"].as_str().unwrap().ends_with('Z'), "{ok}");
    assert!(
        ok["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{ok}"
    );
    assert_eq!(v[1]["status"], "INVALID_ARGUMENT");
    assert_eq!(v[2]["status"], "UNAUTHENTICATED");
    assert!(v[2]["key"].is_null(), "{}", v[2]);
    assert_eq!(v[3]["method"], "ScoreArticle");
    assert_eq!(v[3]["passages"], 3);
    server.stop().await;
}
