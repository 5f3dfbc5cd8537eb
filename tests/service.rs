//! End-to-end tests of the gRPC service: a real server on 127.0.0.1:0 and
//! tonic clients over real sockets.

#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common_service::{model_a, model_b, save_corrupt, start, start_model};
use prost::bytes::Bytes;
use slant::cli::ServeArgs;
use slant::client::{bench_grpc, BenchProtocol, BenchRpc, LoadSpec, RawCodec};
use slant::model::{ModelError, Scope};
use slant::proto::scorer_client::ScorerClient;
use slant::proto::{ArticleRequest, ModelInfoRequest, ScoreRequest};
use slant::service::{Limits, ModelSource, ServiceError};
use slant::text::split::split_article;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn score_req(passages: &[&str]) -> ScoreRequest {
    ScoreRequest {
        passages: passages.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// `check()` every 20 ms until `done` holds of its answer, for at most
/// 10 s; the last answer.
async fn poll<T>(mut check: impl AsyncFnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let mut last = check().await;
    for _ in 0..500 {
        if done(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = check().await;
    }
    last
}

fn assert_status(result: Result<impl std::fmt::Debug, Status>, code: Code, needle: &str) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "{:?} does not mention {needle:?}",
        status.message()
    );
}

fn probabilities_sum_to_one(h: &slant::proto::HeadScore) {
    let sum: f64 = h.probabilities.iter().map(|p| p.probability).sum();
    assert!((sum - 1.0).abs() < 1e-9, "{h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_answers_in_order_with_explanations() {
    let server = start(|_, _| {}).await;
    let mut client = server.scorer().await;
    let passages = [
        "Good news, SHOCKING news!!",
        "bad news",
        "the senate voted",
        "",
    ];
    let req = ScoreRequest {
        explain: 3,
        request_id: "r-1".into(),
        ..score_req(&passages)
    };
    let resp = client.score(req).await.unwrap().into_inner();
    assert_eq!(resp.request_id, "r-1");
    assert_eq!(resp.model_id, server.reload.model_id());
    assert_eq!(resp.results.len(), passages.len());
    for (passage, result) in passages.iter().zip(&resp.results) {
        let names: Vec<&str> = result.heads.iter().map(|h| h.head.as_str()).collect();
        assert_eq!(names, ["sentiment", "sensational"]);
        for h in &result.heads {
            probabilities_sum_to_one(h);
            assert!(h.contributions.len() <= 3);
            for c in &h.contributions {
                assert!(!c.feature.is_empty());
                assert!(!c.spans.is_empty(), "{c:?}");
                for s in &c.spans {
                    assert!(
                        s.start < s.end && s.end as usize <= passage.len(),
                        "{s:?} outside {passage:?}"
                    );
                    assert!(
                        passage.get(s.start as usize..s.end as usize).is_some(),
                        "not on char boundaries"
                    );
                }
            }
        }
    }
    let labels = |i: usize| -> Vec<&str> {
        resp.results[i]
            .heads
            .iter()
            .map(|h| h.label.as_str())
            .collect()
    };
    assert_eq!(labels(0), ["positive", "sensational"]);
    assert_eq!(labels(1), ["negative", "not_sensational"]);
    assert_eq!(labels(2), ["neutral", "not_sensational"]);
    let sentiment = &resp.results[0].heads[0];
    let order: Vec<&str> = sentiment
        .probabilities
        .iter()
        .map(|p| p.label.as_str())
        .collect();
    assert_eq!(order, ["negative", "neutral", "positive"]);
    // The strongest push towards "sensational" is the ALL-CAPS word (its
    // <caps> marker folded into it), named as written.
    let top = &resp.results[0].heads[1].contributions[0];
    assert_eq!(top.feature, "SHOCKING");
    assert_eq!(top.spans.len(), 1);
    let s = &top.spans[0];
    assert_eq!(&passages[0][s.start as usize..s.end as usize], "SHOCKING");
    let good = sentiment
        .contributions
        .iter()
        .find(|c| c.feature == "Good")
        .unwrap();
    assert!(good.weight > 0.0);
    assert_eq!(
        &passages[0][good.spans[0].start as usize..good.spans[0].end as usize],
        "Good"
    );

    // Selected heads come back in the requested order; no explanation asked, none given.
    let req = ScoreRequest {
        heads: vec!["sensational".into(), "sentiment".into()],
        ..score_req(&["bad news"])
    };
    let resp = client.score(req).await.unwrap().into_inner();
    let heads = &resp.results[0].heads;
    assert_eq!(
        (heads[0].head.as_str(), heads[1].head.as_str()),
        ("sensational", "sentiment")
    );
    assert!(heads.iter().all(|h| h.contributions.is_empty()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_batches_are_scored_in_order() {
    let server = start(|_, _| {}).await;
    let mut client = server.scorer().await;
    // Over the inline threshold: scored in chunks on blocking threads.
    let passages: Vec<String> = (0..1024)
        .map(|i| {
            format!(
                "{} {}",
                if i % 2 == 0 { "good" } else { "bad" },
                "filler words ".repeat(8)
            )
        })
        .collect();
    let req = ScoreRequest {
        passages: passages.clone(),
        heads: vec!["sentiment".into()],
        ..Default::default()
    };
    let resp = client.score(req).await.unwrap().into_inner();
    assert_eq!(resp.results.len(), 1024);
    for (i, r) in resp.results.iter().enumerate() {
        assert_eq!(
            r.heads[0].label,
            if i % 2 == 0 { "positive" } else { "negative" },
            "passage {i}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_stream_answers_in_order_and_a_bad_request_ends_it() {
    let server = start(|_, _| {}).await;
    let mut client = server.scorer().await;
    let req = |id: &str, head: &str| ScoreRequest {
        passages: vec!["good news".into(), "bad news".into()],
        heads: vec![head.into()],
        request_id: id.into(),
        explain: 0,
        ..Default::default()
    };
    // All good: one response per request, in order.
    let reqs: Vec<_> = (0..5)
        .map(|i| req(&format!("ok-{i}"), "sentiment"))
        .collect();
    let mut stream = client
        .score_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    for i in 0..5 {
        let r = stream.message().await.unwrap().unwrap();
        assert_eq!(r.request_id, format!("ok-{i}"));
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.model_id, server.reload.model_id());
    }
    assert!(stream.message().await.unwrap().is_none());

    // The fourth request is bad: three answers, then its status; the fifth is never answered.
    let reqs = vec![
        req("s0", "sentiment"),
        req("s1", "sentiment"),
        req("s2", "sensational"),
        req("s3", "nope"),
        req("s4", "sentiment"),
    ];
    let mut stream = client
        .score_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    for id in ["s0", "s1", "s2"] {
        assert_eq!(stream.message().await.unwrap().unwrap().request_id, id);
    }
    assert_status(stream.message().await, Code::InvalidArgument, "nope");
    // The server goes on serving.
    assert_eq!(
        client
            .score(score_req(&["good"]))
            .await
            .unwrap()
            .into_inner()
            .results
            .len(),
        1
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_passages_point_into_the_text_and_the_summary_is_their_weighted_mean() {
    let server = start(|_, _| {}).await;
    let mut client = server.scorer().await;
    let text = "Senate passes budget bill\n\nThe senate voted on Tuesday. It was GOOD news for the team!! \
                Bad news followed.\r\n\r\n  Great results, said Mr. Smith. ";
    let title = "  SHOCKING news for the senate  ";
    let req = ArticleRequest {
        text: text.into(),
        title: title.into(),
        heads: vec![],
        explain: 2,
        request_id: "art-1".into(),
        ..Default::default()
    };
    let resp = client.score_article(req).await.unwrap().into_inner();
    assert_eq!(resp.request_id, "art-1");
    assert_eq!(resp.model_id, server.reload.model_id());
    let first = &resp.passages[0];
    assert!(first.in_title);
    assert_eq!(
        &title[first.start as usize..first.end as usize],
        "SHOCKING news for the senate"
    );
    let body: Vec<_> = resp.passages[1..]
        .iter()
        .map(|p| p.start as usize..p.end as usize)
        .collect();
    assert!(resp.passages[1..].iter().all(|p| !p.in_title));
    assert_eq!(body, split_article(text, 64 * 1024));
    assert!(body.len() >= 5);
    for p in &resp.passages {
        let source = if p.in_title { title } else { text };
        let passage = &source[p.start as usize..p.end as usize];
        let score = p.score.as_ref().unwrap();
        assert_eq!(score.heads.len(), 2);
        for h in &score.heads {
            probabilities_sum_to_one(h);
            for c in &h.contributions {
                for s in &c.spans {
                    assert!(
                        s.end as usize <= passage.len(),
                        "span {s:?} outside passage {passage:?}"
                    );
                }
            }
        }
    }
    // Summary: length-weighted means; argmax / threshold on them.
    assert_eq!(resp.summary.len(), 2);
    for (k, summary) in resp.summary.iter().enumerate() {
        assert!(summary.contributions.is_empty());
        let labels = summary.probabilities.len();
        let mut mean = vec![0.0; labels];
        let mut total = 0.0;
        for p in &resp.passages {
            let w = f64::from(p.end - p.start);
            total += w;
            for (j, lp) in p.score.as_ref().unwrap().heads[k]
                .probabilities
                .iter()
                .enumerate()
            {
                mean[j] += w * lp.probability;
            }
        }
        for (j, lp) in summary.probabilities.iter().enumerate() {
            assert!((lp.probability - mean[j] / total).abs() < 1e-9);
        }
        probabilities_sum_to_one(summary);
        let expected = if summary.head == "sensational" {
            if summary.probabilities[1].probability >= 0.4 {
                "sensational"
            } else {
                "not_sensational"
            }
        } else {
            let best = (0..labels)
                .max_by(|&a, &b| {
                    summary.probabilities[a]
                        .probability
                        .total_cmp(&summary.probabilities[b].probability)
                })
                .unwrap();
            summary.probabilities[best].label.as_str()
        };
        assert_eq!(summary.label, expected);
    }
    // Head selection applies to the summary too; no title, no title passage.
    let req = ArticleRequest {
        text: "Bad news. Good news.".into(),
        heads: vec!["sensational".into()],
        ..Default::default()
    };
    let resp = client.score_article(req).await.unwrap().into_inner();
    assert_eq!(resp.passages.len(), 2);
    assert!(resp.passages.iter().all(|p| !p.in_title));
    assert_eq!(resp.summary.len(), 1);
    assert_eq!(resp.summary[0].head, "sensational");
    server.stop().await;
}

/// A head whose scope is headlines reads an article's title only, and the
/// summary says what it rests on; without a title it says it read nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headline_head_reads_the_title_only_and_the_summary_says_so() {
    let mut model = model_a();
    model.heads[1].scope = Scope::Headline;
    let server = start_model(model, |_, _| {}).await;
    let mut client = server.scorer().await;
    let info = client
        .get_model_info(ModelInfoRequest::default())
        .await
        .unwrap()
        .into_inner();
    let scopes: Vec<(&str, &str)> = info
        .heads
        .iter()
        .map(|h| (h.name.as_str(), h.scope.as_str()))
        .collect();
    assert_eq!(
        scopes,
        [("sentiment", "passage"), ("sensational", "headline")]
    );

    let text = "SHOCKING news!! The senate voted. Bad news.";
    let resp = client
        .score_article(ArticleRequest {
            text: text.into(),
            title: "Good news for the team".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let heads = |p: &slant::proto::ScoredPassage| -> Vec<String> {
        let score = p.score.as_ref().unwrap();
        score.heads.iter().map(|h| h.head.clone()).collect()
    };
    assert!(resp.passages[0].in_title);
    assert_eq!(heads(&resp.passages[0]), ["sentiment", "sensational"]);
    // The body's passages, however sensational, leave the headline head out.
    assert_eq!(resp.passages.len(), 4);
    for p in &resp.passages[1..] {
        assert_eq!(heads(p), ["sentiment"], "{p:?}");
    }
    let basis: Vec<(&str, &str)> = resp
        .summary
        .iter()
        .map(|h| (h.head.as_str(), h.basis.as_str()))
        .collect();
    assert_eq!(basis, [("sentiment", "passages"), ("sensational", "title")]);
    // The headline head's summary is the title's score, not the body's.
    let title = &resp.passages[0].score.as_ref().unwrap().heads[1];
    assert_eq!(resp.summary[1].probabilities, title.probabilities);
    assert_eq!(resp.summary[1].label, "not_sensational");

    // No title: the headline head has nothing to read, and says so.
    let resp = client
        .score_article(ArticleRequest {
            text: text.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.passages.iter().all(|p| heads(p) == ["sentiment"]));
    let none = &resp.summary[1];
    assert_eq!(
        (none.head.as_str(), none.basis.as_str()),
        ("sensational", "none")
    );
    assert!(none.probabilities.is_empty() && none.label.is_empty());

    // Only the headline head asked for, with or without explanations: the
    // body's passages are scored by no head at all.
    for explain in [0, 3] {
        let resp = client
            .score_article(ArticleRequest {
                text: text.into(),
                title: "Good news for the team".into(),
                heads: vec!["sensational".into()],
                explain,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            heads(&resp.passages[0]),
            ["sensational"],
            "explain {explain}"
        );
        for p in &resp.passages[1..] {
            assert!(heads(p).is_empty(), "explain {explain}: {p:?}");
        }
    }

    // Score applies every head to every passage: scope is an article's.
    let resp = client
        .score(score_req(&["SHOCKING news!!"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.results[0].heads[1].label, "sensational");
    server.stop().await;
}

/// Explanations name the passage's words; the raw features (markers such
/// as <caps>) only when asked for, signed towards the decided label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explanations_are_words_and_raw_features_are_behind_a_flag() {
    let server = start(|_, _| {}).await;
    let mut client = server.scorer().await;
    let passage = "SHOCKING news!! and more SHOCKING news";
    let ask = |raw_features| ScoreRequest {
        explain: 8,
        raw_features,
        heads: vec!["sensational".into()],
        thresholds: [("sensational".to_string(), 0.99)].into(),
        ..score_req(&[passage])
    };
    let words = client.score(ask(false)).await.unwrap().into_inner();
    let h = &words.results[0].heads[0];
    // Decided not sensational (threshold 0.99), still explained towards
    // the positive label: what reads as sensational here.
    assert_eq!(h.label, "not_sensational");
    assert_eq!(h.explained_label, "sensational");
    assert!(!h.contributions.is_empty());
    for c in &h.contributions {
        for s in &c.spans {
            assert_eq!(&passage[s.start as usize..s.end as usize], c.feature);
        }
        assert!(!c.feature.starts_with('<'), "{c:?}");
    }
    // A word written twice is one contribution with both spans.
    let shocking = h
        .contributions
        .iter()
        .find(|c| c.feature == "SHOCKING")
        .unwrap();
    assert_eq!(shocking.spans.len(), 2);
    assert!(shocking.weight > 0.0);
    assert_eq!(h.contributions[0].feature, "SHOCKING");

    let raw = client.score(ask(true)).await.unwrap().into_inner();
    let h = &raw.results[0].heads[0];
    assert_eq!(h.explained_label, "not_sensational");
    let caps = h
        .contributions
        .iter()
        .find(|c| c.feature == "<caps>")
        .unwrap();
    // Towards "not sensational", the ALL-CAPS marker pushes against.
    assert!(caps.weight < 0.0);
    assert_eq!(caps.spans.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_info_describes_the_loaded_model() {
    let server = start(|_, _| {}).await;
    let info = server
        .scorer()
        .await
        .get_model_info(ModelInfoRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.model_id, server.reload.model_id());
    assert_eq!(info.model_id.len(), 16);
    assert_eq!(info.slant_version, "test-a");
    assert_eq!(info.path, server.model_path.display().to_string());
    let data = model_a();
    assert_eq!(info.num_features, data.vocabulary.terms.len() as u64);
    // RFC 3339 UTC, second precision.
    let t = info.loaded_at.as_bytes();
    assert_eq!(t.len(), 20, "{}", info.loaded_at);
    assert_eq!(
        (t[4], t[7], t[10], t[13], t[16], t[19]),
        (b'-', b'-', b'T', b':', b':', b'Z')
    );
    assert!(info.loaded_at.starts_with("20"));
    assert_eq!(info.heads.len(), 2);
    let (s, x) = (&info.heads[0], &info.heads[1]);
    assert_eq!(s.name, "sentiment");
    assert_eq!(s.labels, ["negative", "neutral", "positive"]);
    assert_eq!((s.positive_label.as_str(), s.threshold), ("", 0.0));
    assert_eq!(s.dev_metrics.get("dev.jsonl accuracy"), Some(&0.8));
    assert_eq!(x.name, "sensational");
    assert_eq!(x.labels, ["not_sensational", "sensational"]);
    assert_eq!(
        (x.positive_label.as_str(), x.threshold),
        ("sensational", 0.4)
    );
    assert_eq!(x.dev_metrics.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_documented_status_and_the_server_keeps_serving() {
    let server = start(|c, _| {
        c.limits = Limits {
            max_batch: 4,
            max_passage_bytes: 100,
            max_article_bytes: 1000,
            max_message_bytes: 64 * 1024,
            max_explain: 8,
            ..Limits::default()
        }
    })
    .await;
    let mut client = server.scorer().await;
    assert_status(
        client.score(ScoreRequest::default()).await,
        Code::InvalidArgument,
        "empty",
    );
    let req = ScoreRequest {
        heads: vec!["sentiment".into(), "nope".into()],
        ..score_req(&["x"])
    };
    assert_status(client.score(req).await, Code::InvalidArgument, "\"nope\"");
    let long = "a".repeat(101);
    assert_status(
        client.score(score_req(&["ok", &long])).await,
        Code::InvalidArgument,
        "max-passage-bytes",
    );
    assert_status(
        client.score(score_req(&["a"; 5])).await,
        Code::ResourceExhausted,
        "max-batch",
    );
    let req = ScoreRequest {
        explain: 9,
        ..score_req(&["x"])
    };
    assert_status(
        client.score(req).await,
        Code::InvalidArgument,
        "max-explain",
    );
    // Exactly at the limits is fine.
    let at = "a".repeat(100);
    client
        .score(score_req(&[&at, "b", "c", "d"]))
        .await
        .unwrap();

    let article = |text: String, title: &str| ArticleRequest {
        text,
        title: title.into(),
        ..Default::default()
    };
    assert_status(
        client
            .score_article(article("word ".repeat(200) + "x", ""))
            .await,
        Code::InvalidArgument,
        "max-article-bytes",
    );
    assert_status(
        client.score_article(article("Fine.".into(), &long)).await,
        Code::InvalidArgument,
        "max-passage-bytes",
    );
    assert_status(
        client.score_article(article(" \n\t ".into(), "  ")).await,
        Code::InvalidArgument,
        "empty",
    );
    let req = ArticleRequest {
        heads: vec!["nope".into()],
        ..article("Fine.".into(), "")
    };
    assert_status(
        client.score_article(req).await,
        Code::InvalidArgument,
        "nope",
    );
    // A long sentence in an article is split, not refused.
    let resp = client
        .score_article(article("word ".repeat(150), ""))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.passages.len() >= 8 && resp.passages.iter().all(|p| p.end - p.start <= 100));

    // Messages over --max-message-bytes, unary and streaming.
    let huge = "b".repeat(70 * 1024);
    assert_status(
        client.score(score_req(&[&huge])).await,
        Code::ResourceExhausted,
        "max-message-bytes",
    );
    assert_status(
        client.score_article(article(huge.clone(), "")).await,
        Code::ResourceExhausted,
        "max-message-bytes",
    );
    let reqs = vec![score_req(&["good"]), score_req(&[&huge])];
    let mut stream = client
        .score_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().results.len(), 1);
    assert_status(
        stream.message().await,
        Code::ResourceExhausted,
        "max-message-bytes",
    );

    // Still serving, on the same connection and a new one.
    client.score(score_req(&["good news"])).await.unwrap();
    server
        .scorer()
        .await
        .score(score_req(&["good news"]))
        .await
        .unwrap();
    let metrics = server.reload.metrics_text();
    for needle in [
        "method=\"Score\",code=\"INVALID_ARGUMENT\"} 4",
        "method=\"Score\",code=\"RESOURCE_EXHAUSTED\"} 2",
        "method=\"ScoreArticle\",code=\"RESOURCE_EXHAUSTED\"} 1",
        "method=\"ScoreStream\",code=\"RESOURCE_EXHAUSTED\"} 1",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_bytes_get_an_error_status_not_a_crash() {
    let server = start(|_, _| {}).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    let path = |p: &'static str| tonic::codegen::http::uri::PathAndQuery::from_static(p);
    // Field 1 (passages, a string) holding invalid UTF-8; then plain garbage.
    let bad_utf8 = Bytes::from_static(&[0x0a, 0x03, b'a', 0xff, 0xfe]);
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x12]);
    // (GetModelInfo's request has no fields: it skips field 1 and only
    // refuses the garbage.)
    let cases = [
        (
            bad_utf8,
            &["/slant.v1.Scorer/Score", "/slant.v1.Scorer/ScoreArticle"][..],
        ),
        (
            garbage,
            &[
                "/slant.v1.Scorer/Score",
                "/slant.v1.Scorer/ScoreArticle",
                "/slant.v1.Scorer/GetModelInfo",
            ][..],
        ),
    ];
    for (body, methods) in cases {
        for &method in methods {
            grpc.ready().await.unwrap();
            let result = grpc
                .unary(Request::new(body.clone()), path(method), RawCodec)
                .await;
            let status = result.expect_err(method);
            // The caller's fault, not the server's.
            assert_eq!(status.code(), Code::InvalidArgument, "{method}: {status:?}");
            assert!(
                status.message().contains("not a valid protobuf"),
                "{status:?}"
            );
        }
        grpc.ready().await.unwrap();
        let result = grpc
            .streaming(
                Request::new(tokio_stream::iter(vec![body.clone()])),
                path("/slant.v1.Scorer/ScoreStream"),
                RawCodec,
            )
            .await;
        let status = match result {
            Ok(response) => response.into_inner().message().await.unwrap_err(),
            Err(status) => status,
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    // An empty message is a valid, empty ScoreRequest.
    grpc.ready().await.unwrap();
    let result = grpc
        .unary(
            Request::new(Bytes::new()),
            path("/slant.v1.Scorer/Score"),
            RawCodec,
        )
        .await;
    assert_status(result, Code::InvalidArgument, "empty");
    server
        .scorer()
        .await
        .score(score_req(&["still here"]))
        .await
        .unwrap();
    // Counted as the callers' errors, not the server's.
    let metrics = server.reload.metrics_text();
    assert!(
        metrics.contains("method=\"Score\",code=\"INVALID_ARGUMENT\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("code=\"INTERNAL\""), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_and_cancellations_leave_the_server_serving() {
    let server = start(|_, _| {}).await;
    let mut client = server.scorer().await;
    let big: Vec<String> = (0..600)
        .map(|i| format!("passage {i} ") + &"good news and bad news ".repeat(150))
        .collect();
    let scored = |m: &str| -> u64 {
        let line = m
            .lines()
            .find(|l| l.starts_with("slant_passages_scored_total "))
            .unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // How long this batch takes here, then the same batch with a deadline
    // at a fifth of that: the call fails and the server stops scoring it
    // (had it gone on, it would have scored all 600 passages within the
    // time the whole batch took).
    let t = std::time::Instant::now();
    client
        .score(ScoreRequest {
            passages: big.clone(),
            explain: 8,
            ..Default::default()
        })
        .await
        .unwrap();
    let full = t.elapsed();
    let before = scored(&server.reload.metrics_text());
    let mut req = Request::new(ScoreRequest {
        passages: big.clone(),
        explain: 8,
        ..Default::default()
    });
    req.set_timeout(full / 5);
    let status = client
        .score(req)
        .await
        .expect_err("a fifth of the time is not enough");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    tokio::time::sleep(full).await;
    let after = scored(&server.reload.metrics_text());
    assert!(
        after - before < big.len() as u64,
        "the server went on scoring after the deadline: {}",
        after - before
    );

    // A caller that gives up mid-call.
    let mut other = server.scorer().await;
    let call = tokio::spawn(async move {
        other
            .score(ScoreRequest {
                passages: big,
                ..Default::default()
            })
            .await
    });
    // Give up once the server has the call.
    while !server
        .reload
        .metrics_text()
        .contains("slant_grpc_in_flight 1")
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    call.abort();
    let _ = call.await;

    client.score(score_req(&["good news"])).await.unwrap();
    // The server counted four calls: two answered, two that ended without
    // an answer (the deadline one as CANCELLED or DEADLINE_EXCEEDED; the
    // abandoned one depending on how far its request got).
    let count = |metrics: &str, code: Option<&str>| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(
                    "slant_grpc_requests_total{service=\"slant.v1.Scorer\",method=\"Score\"",
                )
            })
            .filter(|l| code.is_none_or(|c| l.contains(&format!("code=\"{c}\""))))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let metrics = poll(
        async || server.reload.metrics_text(),
        |m| count(m, None) >= 4,
    )
    .await;
    assert_eq!(count(&metrics, None), 4, "{metrics}");
    assert_eq!(count(&metrics, Some("OK")), 2, "{metrics}");
    assert!(
        count(&metrics, Some("CANCELLED")) + count(&metrics, Some("DEADLINE_EXCEEDED")) >= 1,
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_and_watch() {
    let server = start(|_, _| {}).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "slant.v1.Scorer"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }
    let err = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "slant.v1.Scorer".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    let mut unknown = health
        .watch(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unknown.message().await.unwrap().unwrap().status(),
        ServingStatus::ServiceUnknown
    );
    drop(unknown);
    drop(watch);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_describes_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let server = start(|_, _| {}).await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let reqs = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "slant.v1.Scorer".into(),
            )),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "grpc.health.v1.Health".into(),
            )),
        },
    ];
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in [
        "slant.v1.Scorer",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    for file in ["slant/v1/slant.proto", "health.proto"] {
        let Some(MessageResponse::FileDescriptorResponse(fd)) =
            stream.message().await.unwrap().unwrap().message_response
        else {
            panic!("expected a file descriptor")
        };
        let found = fd
            .file_descriptor_proto
            .iter()
            .any(|b| b.windows(file.len()).any(|w| w == file.as_bytes()));
        assert!(found, "{file} not described");
    }

    use tonic_reflection::pb::v1alpha as alpha;
    let mut client =
        alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let req = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    assert!(list.service.iter().any(|s| s.name == "slant.v1.Scorer"));
    server.stop().await;
}

/// Scores in a loop until told to stop; returns the model ids seen, in order.
fn spawn_caller(
    mut client: ScorerClient<Channel>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> JoinHandle<(Vec<String>, Vec<Status>)> {
    tokio::spawn(async move {
        let (mut ids, mut errors) = (Vec::new(), Vec::new());
        while !stop.load(Ordering::Relaxed) {
            match client
                .score(score_req(&["good news", "SHOCKING news!!"]))
                .await
            {
                Ok(r) => ids.push(r.into_inner().model_id),
                Err(e) => errors.push(e),
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
        (ids, errors)
    })
}

/// Waits until `done` has grown by at least `n`.
async fn progress(done: &AtomicU64, n: u64) {
    let start = done.load(Ordering::Relaxed);
    while done.load(Ordering::Relaxed) < start + n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_in_a_good_model_and_refuses_a_corrupt_one_while_requests_flow() {
    let server = start(|_, _| {}).await;
    let id_a = server.reload.model_id();
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut callers = Vec::new();
    for _ in 0..4 {
        callers.push(spawn_caller(
            server.scorer().await,
            stop.clone(),
            done.clone(),
        ));
    }
    progress(&done, 50).await;

    save_corrupt(&model_b(), &server.model_path);
    let err = server.reload.reload().await.unwrap_err();
    assert!(
        matches!(err, ServiceError::Model(ModelError::Checksum { .. })),
        "{err}"
    );
    assert_eq!(server.reload.model_id(), id_a);
    progress(&done, 50).await;

    std::fs::write(&server.model_path, b"SLANTMDL short").unwrap();
    assert!(server.reload.reload().await.is_err());
    assert_eq!(server.reload.model_id(), id_a);
    progress(&done, 50).await;

    model_b().save(&server.model_path).unwrap();
    let id_b = server.reload.reload().await.unwrap();
    assert_ne!(id_b, id_a);
    assert_eq!(server.reload.model_id(), id_b);
    progress(&done, 100).await;
    stop.store(true, Ordering::Relaxed);

    for caller in callers {
        let (ids, errors) = caller.await.unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(ids.iter().all(|id| *id == id_a || *id == id_b));
        // Once the new model answered, the old one never did again.
        let first_b = ids.iter().position(|id| *id == id_b).unwrap();
        assert!(ids[..first_b].iter().all(|id| *id == id_a));
        assert!(ids[first_b..].iter().all(|id| *id == id_b));
    }
    let info = server
        .scorer()
        .await
        .get_model_info(ModelInfoRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.model_id.as_str(), info.slant_version.as_str()),
        (id_b.as_str(), "test-b")
    );
    let metrics = server.reload.metrics_text();
    assert!(
        metrics.contains("slant_model_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("slant_model_reloads_total{result=\"failed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "slant_model_info{{name=\"default\",version=\"2\",model_id=\"{id_b}\""
        )),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_keeps_the_model_it_started_with() {
    let server = start(|_, _| {}).await;
    let id_a = server.reload.model_id();
    let mut client = server.scorer().await;
    let (tx, rx) = mpsc::channel(4);
    tx.send(score_req(&["good"])).await.unwrap();
    let mut stream = client
        .score_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().model_id, id_a);
    model_b().save(&server.model_path).unwrap();
    let id_b = server.reload.reload().await.unwrap();
    tx.send(score_req(&["good"])).await.unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap().model_id, id_a);
    drop(tx);
    assert!(stream.message().await.unwrap().is_none());
    // New calls get the new model.
    assert_eq!(
        client
            .score(score_req(&["good"]))
            .await
            .unwrap()
            .into_inner()
            .model_id,
        id_b
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reloads_when_the_file_changes() {
    let server = start(|c, _| c.watch = Some(Duration::from_millis(20))).await;
    let id_a = server.reload.model_id();
    let mut client = server.scorer().await;
    model_b().save(&server.model_path).unwrap();
    let seen = poll(
        async || {
            client
                .get_model_info(ModelInfoRequest::default())
                .await
                .unwrap()
                .into_inner()
                .model_id
        },
        |id| *id != id_a,
    )
    .await;
    assert_ne!(seen, id_a);
    let id_b = seen;
    save_corrupt(&model_a(), &server.model_path);
    let failed = "slant_model_reloads_total{result=\"failed\"} 1";
    let metrics = poll(
        async || server.reload.metrics_text(),
        |m| m.contains(failed),
    )
    .await;
    assert!(metrics.contains(failed), "{metrics}");
    assert_eq!(
        client
            .score(score_req(&["x"]))
            .await
            .unwrap()
            .into_inner()
            .model_id,
        id_b
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_new_calls_and_drains_calls_in_flight() {
    let mut server = start(|_, _| {}).await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    // A call in flight: a stream with one answer so far.
    let mut client = ScorerClient::new(channel);
    let (tx, rx) = mpsc::channel(4);
    tx.send(ScoreRequest {
        request_id: "1".into(),
        ..score_req(&["good"])
    })
    .await
    .unwrap();
    let mut stream = client
        .score_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().request_id, "1");

    server.trigger_shutdown();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::NotServing
    );
    // ...and then the watch ends, so it does not hold the drain up.
    assert!(watch.message().await.unwrap().is_none());
    // New calls are refused, on a new connection or the existing one.
    let refused = match Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(ch) => ScorerClient::new(ch)
            .score(score_req(&["x"]))
            .await
            .is_err(),
    };
    assert!(refused);
    assert!(client.score(score_req(&["x"])).await.is_err());
    // The call in flight goes on to its end.
    tx.send(ScoreRequest {
        request_id: "2".into(),
        ..score_req(&["bad"])
    })
    .await
    .unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap().request_id, "2");
    drop(tx);
    assert!(stream.message().await.unwrap().is_none());
    server.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_timeout_bounds_a_call_that_never_ends() {
    let mut server = start(|c, _| c.drain_timeout = Duration::from_millis(200)).await;
    let mut client = server.scorer().await;
    let (tx, rx) = mpsc::channel(4);
    tx.send(score_req(&["good"])).await.unwrap();
    let mut stream = client
        .score_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    server.trigger_shutdown();
    server.stopped().await;
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_text_format() {
    let server = start(|_, _| {}).await;
    let mut client = server.scorer().await;
    client
        .score(score_req(&["good news", "bad news"]))
        .await
        .unwrap();
    let _ = client.score(ScoreRequest::default()).await;
    HealthClient::new(server.channel().await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    let page = server.get("/metrics").await;
    let (head, body) = page.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let id = server.reload.model_id();
    for needle in [
        "slant_grpc_requests_total{service=\"slant.v1.Scorer\",method=\"Score\",code=\"OK\"} 1".to_string(),
        "slant_grpc_requests_total{service=\"slant.v1.Scorer\",method=\"Score\",code=\"INVALID_ARGUMENT\"} 1".into(),
        "slant_grpc_requests_total{service=\"grpc.health.v1.Health\",method=\"Check\",code=\"OK\"} 1".into(),
        "slant_grpc_request_duration_seconds_bucket{service=\"slant.v1.Scorer\",method=\"Score\",le=\"+Inf\"} 2".into(),
        "slant_grpc_request_duration_seconds_count{service=\"slant.v1.Scorer\",method=\"Score\"} 2".into(),
        "slant_passages_scored_total 2".into(),
        "slant_model_reloads_total{result=\"ok\"} 0".into(),
        format!("slant_model_info{{name=\"default\",version=\"1\",model_id=\"{id}\""),
        "# TYPE slant_grpc_request_duration_seconds histogram".into(),
    ] {
        assert!(body.contains(&needle), "{needle} not in\n{body}");
    }
    assert!(server.get("/nope").await.starts_with("HTTP/1.1 404"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_drives_score_and_health() {
    let server = start(|_, _| {}).await;
    let runs = [
        BenchProtocol::Grpc,
        BenchProtocol::Json,
        BenchProtocol::JsonH2,
    ]
    .into_iter()
    .flat_map(|p| [(BenchRpc::Score, 4, p), (BenchRpc::Health, 1, p)]);
    for (rpc, batch, protocol) in runs {
        let args = LoadSpec {
            addr: server.addr.to_string(),
            rpc,
            protocol,
            batch,
            concurrency: 4,
            duration: Duration::from_millis(200),
            warmup: Duration::ZERO,
            connections: 2,
            corpus: None,
            heads: vec![],
            explain: 0,
            api_key: None,
        };
        let report = bench_grpc(args).await.unwrap();
        assert_eq!(report.errors, 0, "{report}");
        assert!(report.requests > 0);
        assert!(report.p50_ms <= report.p90_ms && report.p90_ms <= report.p99_ms);
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "rps",
            "passages_per_s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "errors",
        ] {
            assert!(json.get(key).is_some(), "{key} missing");
        }
        assert!(report.to_string().contains("rps"));
    }
    server.stop().await;
}

#[test]
fn serve_flags_have_documented_defaults() {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let args = Cli::try_parse_from(["slant"]).unwrap().serve;
    let config = args.server_config();
    assert_eq!(
        config.models,
        ModelSource::File(PathBuf::from("models/default.slant"))
    );
    assert_eq!(config.keep_versions, 2);
    assert_eq!(args.addr, "127.0.0.1:50051");
    assert_eq!(args.metrics_addr, None);
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.limits.max_passage_bytes, 65536);
    assert_eq!(config.limits.max_article_bytes, 1 << 20);
    assert_eq!(config.limits.max_message_bytes, 4 << 20);
    assert_eq!(config.limits.max_batch, 1024);
    assert_eq!(config.drain_timeout, Duration::from_secs(10));
    assert_eq!(config.watch, None);
    let args = Cli::try_parse_from([
        "slant",
        "--max-passage-bytes",
        "1KiB",
        "--drain-timeout",
        "500ms",
        "--watch",
        "--log-format",
        "json",
    ])
    .unwrap()
    .serve;
    assert_eq!(args.max_passage_bytes, 1024);
    assert_eq!(args.server_config().watch, Some(Duration::from_secs(1)));
    assert_eq!(args.drain_timeout, Duration::from_millis(500));
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for flag in [
        "--model",
        "--addr",
        "--metrics-addr",
        "--max-batch",
        "--max-passage-bytes",
        "--max-article-bytes",
        "--max-message-bytes",
        "--max-explain",
        "--drain-timeout",
        "--watch",
        "--log-format",
        "SLANT_MODEL",
        "SLANT_METRICS_ADDR",
    ] {
        assert!(help.contains(flag), "{flag} not in help");
    }
}
