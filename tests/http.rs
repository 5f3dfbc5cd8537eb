//! The HTTP side of the API port, end to end over real sockets: the JSON
//! API and the other routes in HTTP/1.1 and HTTP/2, every refusal's HTTP
//! status, gRPC and gRPC-Web beside them on the same port, TLS (with
//! client certificates) under every protocol, CORS, and the OpenAPI
//! document against the routes the server answers.

#[allow(dead_code)] // shared with tests/browser.rs
mod common_http;
#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common_http::{grpc_web_frame, grpc_web_parse, Client, Version, VERSIONS};
use common_service::start;
use http::Method;
use prost::Message as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use slant::proto::{ArticleRequest, ScoreRequest, ScoreResponse};
use slant::service::{Limits, ModelSource, ServerConfig, TlsFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn sha(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_in_http1_and_http2() {
    let server = start(|_, _| {}).await;
    let mut grpc = server.scorer().await;
    let grpc_score = grpc
        .score(ScoreRequest {
            passages: vec!["Good news, SHOCKING news!!".into(), "bad news".into()],
            explain: 2,
            request_id: "r1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let grpc_article = grpc
        .score_article(ArticleRequest {
            text: "Good news.  SHOCKING news!!\n\nThe senate voted.".into(),
            title: "bad news".into(),
            explain: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for version in VERSIONS {
        let mut c = Client::connect(server.addr, version).await;
        // The JSON answers are the gRPC answers in the proto3 JSON mapping.
        let score = c
            .post_json(
                "/v1/score",
                &json!({"passages": ["Good news, SHOCKING news!!", "bad news"], "explain": 2, "requestId": "r1"}),
            )
            .await;
        assert_eq!(score.status, 200, "{version:?}: {}", score.text());
        assert_eq!(score.header("content-type"), "application/json");
        assert_eq!(score.json(), serde_json::to_value(&grpc_score).unwrap());
        let article = c
            .post_json(
                "/v1/score-article",
                &json!({"text": "Good news.  SHOCKING news!!\n\nThe senate voted.", "title": "bad news", "explain": 3}),
            )
            .await;
        assert_eq!(article.status, 200, "{}", article.text());
        assert_eq!(article.json(), serde_json::to_value(&grpc_article).unwrap());
        // Field names in either spelling of the mapping.
        let snake = c
            .post_json(
                "/v1/score",
                &json!({"passages": ["x"], "request_id": "snake", "model_version": "1"}),
            )
            .await;
        assert_eq!(snake.json()["requestId"], "snake");

        let model = c.get("/v1/model").await;
        assert_eq!(model.status, 200);
        assert_eq!(model.json()["modelId"], server.reload.model_id());
        assert_eq!(model.json()["heads"][1]["name"], "sensational");
        let pinned = c.get("/v1/model?model=default&model_version=1").await;
        assert_eq!(pinned.json()["version"], "1");
        let models = c.get("/v1/models").await;
        assert_eq!(models.json()["models"][0]["name"], "default");

        let health = c.get("/healthz").await;
        assert_eq!(
            (health.status.as_u16(), health.json()),
            (200, json!({"status": "SERVING"}))
        );
        let head = c.send(Method::HEAD, "/healthz", &[], Bytes::new()).await;
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());

        let openapi = c.get("/openapi.json").await;
        assert_eq!(openapi.json()["openapi"], "3.0.3");
        let page = c.get("/").await;
        assert_eq!(page.status, 200);
        assert!(page.header("content-type").starts_with("text/html"));
        assert!(page
            .header("content-security-policy")
            .contains("default-src 'none'"));
        let html = page.text();
        for hook in [
            "id=\"article\"",
            "id=\"title\"",
            "id=\"score\"",
            "id=\"summary\"",
            "/v1/score-article",
        ] {
            assert!(html.contains(hook), "the page lacks {hook}");
        }
        // Self-contained: nothing loaded from elsewhere.
        for outside in ["http://", "https://", "src=", "@import", "url("] {
            assert!(!html.contains(outside), "the page mentions {outside}");
        }

        let metrics = c.get("/metrics").await;
        assert!(metrics.header("content-type").starts_with("text/plain"));
        // JSON calls are counted as the calls they make.
        assert!(
            metrics.text().contains(
                "slant_grpc_requests_total{service=\"slant.v1.Scorer\",method=\"ScoreArticle\",code=\"OK\"}"
            ),
            "{}",
            metrics.text()
        );
    }
    server.stop().await;
}

/// A request that a route answers with 200.
fn sample(path: &str) -> Value {
    match path {
        "/v1/score" => json!({"passages": ["good news"]}),
        "/v1/score-article" => json!({"text": "Good news. Bad news."}),
        _ => Value::Null,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_what_the_server_answers() {
    let server = start(|_, _| {}).await;
    for version in VERSIONS {
        let mut c = Client::connect(server.addr, version).await;
        let doc = c.get("/openapi.json").await.json();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 8);
        for (path, ops) in paths {
            for (method, op) in ops.as_object().unwrap() {
                let documented: Vec<&String> =
                    op["responses"].as_object().unwrap().keys().collect();
                let answer = if method == "post" {
                    c.post_json(path, &sample(path)).await
                } else {
                    c.get(path).await
                };
                assert_eq!(answer.status, 200, "{method} {path}: {}", answer.text());
                // Every 200 answer with a schema fits it at the top level.
                if let Some(schema) =
                    op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].as_str()
                {
                    let name = schema.rsplit('/').next().unwrap();
                    let props = doc["components"]["schemas"][name]["properties"]
                        .as_object()
                        .unwrap();
                    for key in answer.json().as_object().unwrap().keys() {
                        assert!(props.contains_key(key), "{path}: {key} is not in {name}");
                    }
                }
                // The other method is 405, as documented.
                let other = if method == "post" {
                    Method::GET
                } else {
                    Method::POST
                };
                let refused = c
                    .send(other, path, &[("content-type", "application/json")], "{}")
                    .await;
                assert_eq!(refused.refusal(), (405, "UNIMPLEMENTED".into()), "{path}");
                assert!(documented.iter().any(|s| *s == "405"), "{path}");
                assert!(!refused.header("allow").is_empty());
            }
        }
        // What is not documented is not served.
        for path in ["/v1", "/v1/score/x", "/index.html", "/v2/score"] {
            assert_eq!(
                c.get(path).await.refusal(),
                (404, "NOT_FOUND".into()),
                "{path}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_http_status_in_both_versions() {
    let server = start(|c, _| {
        c.limits = Limits {
            max_batch: 4,
            max_passage_bytes: 200,
            max_explain: 8,
            max_contributions: 16,
            max_message_bytes: 4096,
            ..Limits::default()
        };
    })
    .await;
    let long = "word ".repeat(60);
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "/v1/score",
            json!({"passages": []}),
            400,
            "INVALID_ARGUMENT",
            "empty request",
        ),
        (
            "/v1/score",
            json!({"passages": ["x"], "heads": ["nope"]}),
            400,
            "INVALID_ARGUMENT",
            "unknown head",
        ),
        (
            "/v1/score",
            json!({"passages": ["x"], "bogus": 1}),
            400,
            "INVALID_ARGUMENT",
            "unknown field",
        ),
        (
            "/v1/score",
            json!({"passages": "x"}),
            400,
            "INVALID_ARGUMENT",
            "ScoreRequest",
        ),
        (
            "/v1/score",
            json!({"passages": [long]}),
            400,
            "INVALID_ARGUMENT",
            "max-passage-bytes",
        ),
        (
            "/v1/score",
            json!({"passages": ["x"], "explain": 9}),
            400,
            "INVALID_ARGUMENT",
            "max-explain",
        ),
        (
            "/v1/score-article",
            json!({"text": long.repeat(20)}),
            400,
            "INVALID_ARGUMENT",
            "max-message-bytes",
        ),
        (
            "/v1/score",
            json!({"passages": ["x"], "model": "other"}),
            404,
            "NOT_FOUND",
            "no model named",
        ),
        (
            "/v1/score",
            json!({"passages": ["x"], "modelVersion": "7"}),
            404,
            "NOT_FOUND",
            "no version",
        ),
        (
            "/v1/score",
            json!({"passages": ["a", "b", "c", "d", "e"]}),
            413,
            "RESOURCE_EXHAUSTED",
            "max-batch",
        ),
        (
            "/v1/score",
            json!({"passages": ["a", "b", "c"], "explain": 3}),
            413,
            "RESOURCE_EXHAUSTED",
            "max-contributions",
        ),
        (
            "/v1/score-article",
            json!({"text": format!("{}. {}. {}.", long.trim(), long.trim(), long.trim()), "explain": 8}),
            413,
            "RESOURCE_EXHAUSTED",
            "max-contributions",
        ),
        (
            "/v1/score",
            json!({"passages": [long.repeat(20)]}),
            413,
            "RESOURCE_EXHAUSTED",
            "max-message-bytes",
        ),
    ];
    for version in VERSIONS {
        let mut c = Client::connect(server.addr, version).await;
        for (path, body, status, code, needle) in &cases {
            // A body refused unread closes an HTTP/1.1 connection: one
            // connection per case.
            let mut c = Client::connect(server.addr, version).await;
            let answer = c.post_json(path, body).await;
            let (got, got_code) = answer.refusal();
            // The article of 6 KB is over max-message-bytes before its
            // article limit: 413 too.
            let (status, code) = if *needle == "max-message-bytes" {
                (413, "RESOURCE_EXHAUSTED")
            } else {
                (*status, *code)
            };
            assert_eq!(
                (got, got_code.as_str()),
                (status, code),
                "{version:?} {path} {body}: {}",
                answer.text()
            );
            assert!(answer.text().contains(needle), "{body}: {}", answer.text());
        }
        // The limit that refused is named in a header too.
        let batch = c
            .post_json("/v1/score", &json!({"passages": ["a", "b", "c", "d", "e"]}))
            .await;
        assert_eq!(batch.header("slant-limit"), "max-batch");
        // A body over the limit is refused from its declared length, unread.
        let big = c
            .send(
                Method::POST,
                "/v1/score",
                &[("content-type", "application/json")],
                vec![b' '; 100_000],
            )
            .await;
        assert_eq!(big.refusal(), (413, "RESOURCE_EXHAUSTED".into()));
        let mut c = Client::connect(server.addr, version).await;
        // Bad JSON, a wrong or missing content type.
        let bad = c
            .send(
                Method::POST,
                "/v1/score",
                &[("content-type", "application/json")],
                "{\"passages\": [",
            )
            .await;
        assert_eq!(bad.refusal(), (400, "INVALID_ARGUMENT".into()));
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let headers: Vec<(&str, &str)> = ct.map(|v| ("content-type", v)).into_iter().collect();
            let answer = c
                .send(
                    Method::POST,
                    "/v1/score",
                    &headers,
                    "{\"passages\": [\"x\"]}",
                )
                .await;
            assert_eq!(answer.refusal(), (415, "INVALID_ARGUMENT".into()), "{ct:?}");
        }
        // Queries.
        for q in [
            "/v1/model?x=1",
            "/v1/model?model=a&model=b",
            "/v1/model?model=%ff",
        ] {
            assert_eq!(
                c.get(q).await.refusal(),
                (400, "INVALID_ARGUMENT".into()),
                "{q}"
            );
        }
        assert_eq!(
            c.get("/v1/model?model=nope").await.refusal(),
            (404, "NOT_FOUND".into())
        );
        // Routes and methods.
        assert_eq!(c.get("/nope").await.refusal(), (404, "NOT_FOUND".into()));
        let wrong = c.get("/v1/score").await;
        assert_eq!(wrong.refusal(), (405, "UNIMPLEMENTED".into()));
        assert_eq!(wrong.header("allow"), "POST");
        let wrong = c.send(Method::DELETE, "/healthz", &[], Bytes::new()).await;
        assert_eq!(wrong.refusal(), (405, "UNIMPLEMENTED".into()));
        assert_eq!(wrong.header("allow"), "GET, HEAD");
        // The server keeps serving.
        assert_eq!(
            c.post_json("/v1/score", &json!({"passages": ["ok"]}))
                .await
                .status,
            200
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_too_big_and_load_shed_and_deadlines() {
    // max-response-bytes: the request is fine, its answer too big.
    let small = start(|c, _| c.limits.max_response_bytes = 100).await;
    // max-concurrent-requests of 0 slots: every Scorer call is shed.
    let busy = start(|c, _| c.callers.max_concurrent_requests = Some(0)).await;
    let plain = start(|c, _| c.limits.max_message_bytes = 64 << 20).await;
    // A big request: chunked scoring with the slowest explanations (raw
    // features with their spans), about a second (its 18 MB arrive in
    // some tens of milliseconds, well before its deadline).
    let passage = "Officials warned of SHOCKING losses as markets fell sharply! ".repeat(300);
    let many = json!({"passages": vec![passage; 1000], "explain": 4, "rawFeatures": true});
    for version in VERSIONS {
        let mut c = Client::connect(small.addr, version).await;
        let answer = c
            .post_json(
                "/v1/score",
                &json!({"passages": ["good news"], "explain": 3}),
            )
            .await;
        assert_eq!(
            answer.refusal(),
            (413, "RESOURCE_EXHAUSTED".into()),
            "{}",
            answer.text()
        );
        assert!(answer.text().contains("max-response-bytes"));

        let mut c = Client::connect(busy.addr, version).await;
        let answer = c.post_json("/v1/score", &json!({"passages": ["x"]})).await;
        assert_eq!(answer.refusal(), (429, "RESOURCE_EXHAUSTED".into()));
        assert!(answer.text().contains("max-concurrent-requests"));
        assert_eq!(answer.header("retry-after"), "1");
        assert_eq!(answer.header("slant-limit"), "max-concurrent-requests");
        // Health is not a Scorer call: not shed.
        assert_eq!(c.get("/healthz").await.status, 200);

        let mut c = Client::connect(plain.addr, version).await;
        let late = c
            .send(
                Method::POST,
                "/v1/score",
                &[
                    ("content-type", "application/json"),
                    ("grpc-timeout", "100m"),
                ],
                many.to_string(),
            )
            .await;
        assert_eq!(
            late.refusal(),
            (504, "DEADLINE_EXCEEDED".into()),
            "{}",
            late.text()
        );
        // A deadline that is not reached changes nothing. On a new
        // connection: on a slow machine the deadline can pass while the
        // big body is still arriving, and an HTTP/1.1 server that answers
        // before reading a body to its end has to close the connection.
        let mut c = Client::connect(plain.addr, version).await;
        let fine = c
            .send(
                Method::POST,
                "/v1/score",
                &[
                    ("content-type", "application/json"),
                    ("grpc-timeout", "10S"),
                ],
                "{\"passages\": [\"good\"]}",
            )
            .await;
        assert_eq!(fine.status, 200);
    }
    for s in [small, busy, plain] {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stops_arriving_is_408() {
    let server = start(|c, _| c.connections.receive_timeout = Duration::from_millis(300)).await;
    // HTTP/1.1: 100 bytes declared, 10 sent.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"passages",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("\"code\":\"CANCELLED\"") && text.contains("receive-timeout"),
        "{text}"
    );

    // HTTP/2: a stream whose DATA stops.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut h2 = h2.ready().await.unwrap();
    let req = http::Request::post(format!("http://{}/v1/score", server.addr))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut body) = h2.send_request(req, false).unwrap();
    body.send_data(Bytes::from_static(b"{\"passages\""), false)
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 408);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_apply_to_json_and_the_page_stays_open() {
    let keyed = |protect_all: bool| {
        move |c: &mut ServerConfig, dir: &Path| {
            let keys = dir.join("keys.txt");
            std::fs::write(&keys, format!("newsroom:{}\n", sha("k-news"))).unwrap();
            c.callers.api_keys = Some(keys);
            c.callers.protect_all = protect_all;
        }
    };
    let server = start(keyed(false)).await;
    let strict = start(keyed(true)).await;
    for version in VERSIONS {
        let mut c = Client::connect(server.addr, version).await;
        for key in [None, Some("Bearer wrong")] {
            let headers: Vec<(&str, &str)> = [("content-type", "application/json")]
                .into_iter()
                .chain(key.map(|k| ("authorization", k)))
                .collect();
            let answer = c
                .send(
                    Method::POST,
                    "/v1/score",
                    &headers,
                    "{\"passages\": [\"x\"]}",
                )
                .await;
            assert_eq!(answer.refusal(), (401, "UNAUTHENTICATED".into()), "{key:?}");
            assert_eq!(answer.header("www-authenticate"), "Bearer");
        }
        assert_eq!(c.get("/v1/models").await.status, 401);
        let ok = c
            .send(
                Method::POST,
                "/v1/score",
                &[
                    ("content-type", "application/json"),
                    ("authorization", "Bearer k-news"),
                ],
                "{\"passages\": [\"x\"]}",
            )
            .await;
        assert_eq!(ok.status, 200);
        for open in ["/healthz", "/", "/openapi.json", "/metrics"] {
            assert_eq!(c.get(open).await.status, 200, "{open}");
        }
        // --protect-all: health and metrics need a key; the page and the
        // document never do.
        let mut c = Client::connect(strict.addr, version).await;
        for closed in ["/healthz", "/metrics"] {
            assert_eq!(
                c.get(closed).await.refusal(),
                (401, "UNAUTHENTICATED".into()),
                "{closed}"
            );
        }
        for open in ["/", "/openapi.json"] {
            assert_eq!(c.get(open).await.status, 200, "{open}");
        }
    }
    server.stop().await;
    strict.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_with_no_model_loaded() {
    let server = start(|c, dir| {
        let models = dir.join("models");
        std::fs::create_dir(&models).unwrap();
        c.models = ModelSource::Dir(models);
    })
    .await;
    for version in VERSIONS {
        let mut c = Client::connect(server.addr, version).await;
        let health = c.get("/healthz").await;
        assert_eq!(
            (health.status.as_u16(), health.json()),
            (503, json!({"status": "NOT_SERVING"}))
        );
        let score = c.post_json("/v1/score", &json!({"passages": ["x"]})).await;
        assert_eq!(score.refusal(), (404, "NOT_FOUND".into()));
        assert!(score.text().contains("no model is loaded"));
    }
    server.stop().await;
}

/// A Score call over gRPC-Web: (HTTP status, content type, messages,
/// grpc-status from the trailers or the headers).
async fn grpc_web_score(
    c: &mut Client,
    request: &ScoreRequest,
    text: bool,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<Vec<u8>>, String) {
    let frame = grpc_web_frame(&request.encode_to_vec());
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (ct, body) = if text {
        ("application/grpc-web-text", Bytes::from(b64.encode(&frame)))
    } else {
        ("application/grpc-web+proto", Bytes::from(frame))
    };
    let mut all = vec![("content-type", ct), ("x-grpc-web", "1")];
    if text {
        all.push(("accept", "application/grpc-web-text"));
    }
    all.extend_from_slice(headers);
    let answer = c
        .send(Method::POST, "/slant.v1.Scorer/Score", &all, body)
        .await;
    let raw = if text {
        // Each frame is encoded (and padded) on its own.
        answer
            .body
            .chunks(4)
            .flat_map(|group| b64.decode(group).unwrap())
            .collect()
    } else {
        answer.body.to_vec()
    };
    let (messages, trailers) = grpc_web_parse(&raw);
    let status = trailers
        .get("grpc-status")
        .or(answer.headers.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        answer.status.as_u16(),
        answer.header("content-type").to_string(),
        messages,
        status,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_grpc_web_and_json_share_the_port() {
    let server = start(|_, _| {}).await;
    let request = ScoreRequest {
        passages: vec!["SHOCKING news!!".into()],
        explain: 2,
        ..Default::default()
    };
    let expected = server
        .scorer()
        .await
        .score(request.clone())
        .await
        .unwrap()
        .into_inner();
    for version in VERSIONS {
        let mut c = Client::connect(server.addr, version).await;
        for text in [false, true] {
            let (status, ct, messages, grpc_status) =
                grpc_web_score(&mut c, &request, text, &[]).await;
            assert_eq!(status, 200);
            let want = if text {
                "application/grpc-web-text+proto"
            } else {
                "application/grpc-web+proto"
            };
            assert_eq!(ct, want);
            assert_eq!(grpc_status, "0", "{version:?} text={text}");
            assert_eq!(messages.len(), 1);
            assert_eq!(
                ScoreResponse::decode(messages[0].as_slice()).unwrap(),
                expected
            );
            // A bad request: its status, in gRPC-Web.
            let bad = ScoreRequest {
                heads: vec!["nope".into()],
                ..request.clone()
            };
            let (_, _, messages, grpc_status) = grpc_web_score(&mut c, &bad, text, &[]).await;
            assert!(messages.is_empty());
            assert_eq!(grpc_status, "3");
        }
        // JSON on the same connection.
        let json = c
            .post_json(
                "/v1/score",
                &json!({"passages": ["SHOCKING news!!"], "explain": 2}),
            )
            .await;
        assert_eq!(json.json(), serde_json::to_value(&expected).unwrap());
    }
    // gRPC still answers, and an unknown gRPC method is UNIMPLEMENTED in gRPC.
    let mut grpc = server.scorer().await;
    assert_eq!(
        grpc.score(request.clone()).await.unwrap().into_inner(),
        expected
    );
    let mut c = Client::connect(server.addr, Version::H2).await;
    let unknown = c
        .send(
            Method::POST,
            "/slant.v1.Scorer/Nope",
            &[("content-type", "application/grpc"), ("te", "trailers")],
            grpc_web_frame(&[]),
        )
        .await;
    assert_eq!(unknown.header("grpc-status"), "12");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_grpc_web_in_grpc_web() {
    let server = start(|c, dir| {
        let keys = dir.join("keys.txt");
        std::fs::write(&keys, format!("newsroom:{}\n", sha("k-news"))).unwrap();
        c.callers.api_keys = Some(keys);
    })
    .await;
    let request = ScoreRequest {
        passages: vec!["x".into()],
        ..Default::default()
    };
    for version in VERSIONS {
        let mut c = Client::connect(server.addr, version).await;
        let (status, ct, _, grpc_status) = grpc_web_score(&mut c, &request, false, &[]).await;
        assert_eq!(
            (status, ct.as_str(), grpc_status.as_str()),
            (200, "application/grpc-web+proto", "16")
        );
        let (_, _, messages, grpc_status) = grpc_web_score(
            &mut c,
            &request,
            true,
            &[("authorization", "Bearer k-news")],
        )
        .await;
        assert_eq!((messages.len(), grpc_status.as_str()), (1, "0"));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_client_certificates_cover_every_protocol() {
    let server = start(|c, _| {
        c.tls = Some(TlsFiles {
            cert: common_http::fixture("server.pem"),
            key: common_http::fixture("server.key"),
            client_ca: Some(common_http::fixture("ca.pem")),
        });
    })
    .await;
    let port = server.addr.port();
    let request = ScoreRequest {
        passages: vec!["good news".into()],
        ..Default::default()
    };
    for version in VERSIONS {
        let mut c = Client::connect_tls(port, version, true).await.unwrap();
        let score = c
            .post_json("/v1/score", &json!({"passages": ["good news"]}))
            .await;
        assert_eq!(score.status, 200, "{version:?}");
        assert_eq!(c.get("/").await.status, 200);
        assert_eq!(c.get("/healthz").await.status, 200);
        let (status, _, messages, grpc_status) = grpc_web_score(&mut c, &request, false, &[]).await;
        assert_eq!(
            (status, messages.len(), grpc_status.as_str()),
            (200, 1, "0")
        );
        // Without a client certificate: no answer.
        let refused = match Client::connect_tls(port, version, false).await {
            Err(_) => true,
            Ok(mut c) => c
                .try_send(Method::GET, "/healthz", &[], Bytes::new())
                .await
                .is_err(),
        };
        assert!(
            refused,
            "{version:?}: a client without a certificate was answered"
        );
    }
    // Plaintext HTTP on the TLS port: no answer.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(!String::from_utf8_lossy(&out).contains("SERVING"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_unless_an_origin_is_given() {
    let off = start(|_, _| {}).await;
    let on = start(|c, _| c.cors_origins = vec!["https://news.example".into()]).await;
    let preflight = [
        ("origin", "https://news.example"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type,authorization",
        ),
    ];
    for version in VERSIONS {
        let mut c = Client::connect(off.addr, version).await;
        let answer = c
            .send(Method::OPTIONS, "/v1/score", &preflight, Bytes::new())
            .await;
        assert_eq!(answer.header("access-control-allow-origin"), "");
        assert_eq!(answer.status, 405);

        let mut c = Client::connect(on.addr, version).await;
        let answer = c
            .send(Method::OPTIONS, "/v1/score", &preflight, Bytes::new())
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("access-control-allow-origin"),
            "https://news.example"
        );
        assert!(answer
            .header("access-control-allow-methods")
            .contains("POST"));
        let call = c
            .send(
                Method::POST,
                "/v1/score",
                &[
                    ("content-type", "application/json"),
                    ("origin", "https://news.example"),
                ],
                "{\"passages\": [\"x\"]}",
            )
            .await;
        assert_eq!(call.status, 200);
        assert_eq!(
            call.header("access-control-allow-origin"),
            "https://news.example"
        );
        let other = c
            .send(
                Method::POST,
                "/v1/score",
                &[
                    ("content-type", "application/json"),
                    ("origin", "https://evil.example"),
                ],
                "{\"passages\": [\"x\"]}",
            )
            .await;
        assert_eq!(other.header("access-control-allow-origin"), "");
    }
    off.stop().await;
    on.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_grpc_web_calls_are_logged_and_counted_as_their_calls() {
    let server = start(|c, dir| {
        c.access_log = slant::service::AccessLog::File(dir.join("access.jsonl"));
    })
    .await;
    let mut c = Client::connect(server.addr, Version::H1).await;
    let ok = c
        .post_json(
            "/v1/score",
            &json!({"passages": ["SECRET-TEXT a", "SECRET-TEXT b"]}),
        )
        .await;
    assert_eq!(ok.status, 200);
    let refused = c.post_json("/v1/score", &json!({"passages": []})).await;
    assert_eq!(refused.status, 400);
    let request = ScoreRequest {
        passages: vec!["SECRET-TEXT c".into()],
        ..Default::default()
    };
    let (_, _, messages, _) = grpc_web_score(&mut c, &request, false, &[]).await;
    assert_eq!(messages.len(), 1);
    let path = server.dir().join("access.jsonl");
    let mut lines = Vec::new();
    for _ in 0..200 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        lines = text.lines().map(str::to_string).collect::<Vec<_>>();
        if lines.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("SECRET-TEXT")));
    let v: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // HTTP calls log their HTTP status; gRPC-Web its gRPC code.
    assert_eq!(
        (
            &v[0]["method"],
            &v[0]["protocol"],
            &v[0]["status"],
            &v[0]["passages"]
        ),
        (&json!("Score"), &json!("http"), &json!("200"), &json!(2))
    );
    assert_eq!(
        (&v[1]["protocol"], &v[1]["status"]),
        (&json!("http"), &json!("400"))
    );
    assert_eq!(
        (&v[2]["method"], &v[2]["protocol"], &v[2]["status"]),
        (&json!("Score"), &json!("grpc-web"), &json!("OK"))
    );
    let metrics = c.get("/metrics").await.text();
    for needle in [
        "slant_grpc_requests_total{service=\"slant.v1.Scorer\",method=\"Score\",code=\"OK\"} 2",
        "slant_grpc_requests_total{service=\"slant.v1.Scorer\",method=\"Score\",code=\"INVALID_ARGUMENT\"} 1",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    server.stop().await;
}
