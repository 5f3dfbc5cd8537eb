//! Serving several models and versions: a model directory, versions side
//! by side across a rollout (pinned callers keep their answers), a bad new
//! version refused while the others serve, NOT_FOUND naming what exists,
//! ListModels, decision thresholds per request, and a directory that
//! starts empty.

#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::path::Path;
use std::time::Duration;

use common_service::{model_a, model_b, save_corrupt, serve};
use slant::proto::scorer_client::ScorerClient;
use slant::proto::{ArticleRequest, ListModelsRequest, ModelInfoRequest, ScoreRequest};
use slant::service::{ModelSource, ServerConfig};
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn dir_config(dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::new(dir);
    config.models = ModelSource::Dir(dir.to_path_buf());
    config
}

fn score(model: &str, version: &str) -> ScoreRequest {
    ScoreRequest {
        passages: vec!["good news".into()],
        model: model.into(),
        model_version: version.into(),
        ..Default::default()
    }
}

/// (model_id, model, model_version) of a Score answer.
async fn who_answers(
    client: &mut ScorerClient<Channel>,
    model: &str,
    version: &str,
) -> Result<(String, String, String), tonic::Status> {
    let r = client.score(score(model, version)).await?.into_inner();
    Ok((r.model_id, r.model, r.model_version))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_serve_side_by_side_across_a_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (model_a(), model_b());
    std::fs::create_dir(dir.path().join("default")).unwrap();
    std::fs::create_dir(dir.path().join("tweets")).unwrap();
    a.save(&dir.path().join("default/1.slant")).unwrap();
    b.save(&dir.path().join("tweets/7.slant")).unwrap();
    let server = serve(dir_config(dir.path())).await;
    let mut client = server.scorer().await;
    let id_a = who_answers(&mut client, "", "").await.unwrap().0;
    let id_b = who_answers(&mut client, "tweets", "").await.unwrap().0;
    assert_ne!(id_a, id_b);
    assert_eq!(
        who_answers(&mut client, "", "").await.unwrap(),
        (id_a.clone(), "default".into(), "1".into())
    );
    assert_eq!(
        who_answers(&mut client, "tweets", "7").await.unwrap(),
        (id_b.clone(), "tweets".into(), "7".into())
    );

    // Version 2 of "default" rolls out: the latest moves, a caller pinned to
    // version 1 (by number or by id) keeps its answers.
    b.save(&dir.path().join("default/2.slant")).unwrap();
    server.reload.reload().await.unwrap();
    assert_eq!(who_answers(&mut client, "", "").await.unwrap().0, id_b);
    assert_eq!(
        who_answers(&mut client, "default", "1").await.unwrap(),
        (id_a.clone(), "default".into(), "1".into())
    );
    assert_eq!(
        who_answers(&mut client, "default", &id_a).await.unwrap().2,
        "1"
    );

    // A bad version 3 is refused; 2 and 1 keep serving.
    save_corrupt(&a, &dir.path().join("default/3.slant"));
    let err = server.reload.reload().await.unwrap_err();
    assert!(err.to_string().contains("3.slant"), "{err}");
    assert_eq!(who_answers(&mut client, "", "").await.unwrap().2, "2");
    assert_eq!(who_answers(&mut client, "", "1").await.unwrap().2, "1");

    // Version 4 loads; with two versions kept (4 and 2), 1 is unloaded and
    // asking for it names what exists.
    a.save(&dir.path().join("default/4.slant")).unwrap();
    // The bad 3 is not tried (nor reported) again until it changes.
    server.reload.reload().await.unwrap();
    assert_eq!(who_answers(&mut client, "", "").await.unwrap().2, "4");
    let gone = who_answers(&mut client, "", "1").await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert!(
        gone.message().contains("4 (id") && gone.message().contains("2 (id"),
        "{gone:?}"
    );
    let unknown = who_answers(&mut client, "nope", "").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("default, tweets"), "{unknown:?}");
    // ScoreArticle and GetModelInfo resolve the same way.
    let article = client
        .score_article(ArticleRequest {
            text: "Good news.".into(),
            model: "tweets".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (article.model_id, article.model_version),
        (id_b.clone(), "7".into())
    );
    let info = client
        .get_model_info(ModelInfoRequest {
            model: "default".into(),
            model_version: "2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("default", "2")
    );
    assert!(info.path.ends_with("2.slant"), "{}", info.path);

    let list = client
        .list_models(ListModelsRequest {})
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<(String, Vec<String>)> = list
        .models
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.versions.iter().map(|v| v.version.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "default".to_string(),
                vec!["4".to_string(), "2".to_string()]
            ),
            ("tweets".to_string(), vec!["7".to_string()]),
        ]
    );
    let metrics = server.reload.metrics_text();
    assert!(
        metrics.contains("slant_model_info{name=\"tweets\",version=\"7\""),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_file_keeps_its_previous_version_across_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.slant");
    model_a().save(&path).unwrap();
    let server = serve(ServerConfig::new(&path)).await;
    let mut client = server.scorer().await;
    let (id_a, name, version) = who_answers(&mut client, "", "").await.unwrap();
    assert_eq!((name.as_str(), version.as_str()), ("default", "1"));
    // The same file again: nothing changes.
    assert_eq!(server.reload.reload().await.unwrap(), id_a);
    assert_eq!(who_answers(&mut client, "", "").await.unwrap().2, "1");
    // New content: version 2, and version 1 still answers when pinned.
    model_b().save(&path).unwrap();
    let id_b = server.reload.reload().await.unwrap();
    assert_eq!(
        who_answers(&mut client, "", "").await.unwrap(),
        (id_b, "default".into(), "2".into())
    );
    assert_eq!(
        who_answers(&mut client, "default", "1").await.unwrap().0,
        id_a
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_per_request_decide_two_class_heads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.slant");
    model_a().save(&path).unwrap();
    let server = serve(ServerConfig::new(&path)).await;
    let mut client = server.scorer().await;
    let ask = |thresholds: &[(&str, f64)], explain| ScoreRequest {
        passages: vec!["SHOCKING news!!".into()],
        heads: vec!["sensational".into()],
        thresholds: thresholds
            .iter()
            .map(|(h, t)| (h.to_string(), *t))
            .collect(),
        explain,
        ..Default::default()
    };
    let head = |r: slant::proto::ScoreResponse| r.results[0].heads[0].clone();
    // The model's own threshold (0.4) decides unless the request sets one.
    let own = head(client.score(ask(&[], 0)).await.unwrap().into_inner());
    let p = own.probabilities[1].probability;
    assert_eq!(own.threshold, 0.4);
    assert!(p > 0.01 && p < 0.99, "{p}");
    for (t, expected) in [(0.99, "not_sensational"), (0.01, "sensational")] {
        for explain in [0, 3] {
            let h = head(
                client
                    .score(ask(&[("sensational", t)], explain))
                    .await
                    .unwrap()
                    .into_inner(),
            );
            assert_eq!(
                (h.label.as_str(), h.threshold),
                (expected, t),
                "explain {explain}"
            );
            assert_eq!(
                h.probabilities[1].probability, p,
                "probabilities do not move"
            );
            if explain > 0 {
                // Word contributions of a two-class head push towards its
                // positive label, whatever the threshold decided.
                let top = &h.contributions[0];
                assert_eq!(top.feature, "SHOCKING");
                assert!(top.weight > 0.0, "{h:?}");
            }
        }
    }
    // Summaries of articles follow the request's threshold too.
    let article = client
        .score_article(ArticleRequest {
            text: "SHOCKING news!! SHOCKING news!!".into(),
            heads: vec!["sensational".into()],
            thresholds: [("sensational".to_string(), 0.99)].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            article.summary[0].label.as_str(),
            article.summary[0].threshold
        ),
        ("not_sensational", 0.99)
    );
    for bad in [
        &[("sentiment", 0.5)][..],
        &[("nope", 0.5)][..],
        &[("sensational", 1.0)][..],
        &[("sensational", 0.0)][..],
    ] {
        let status = client.score(ask(bad, 0)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
        assert!(status.message().contains("thresholds"), "{status:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_directory_may_start_empty_and_health_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = dir_config(dir.path());
    config.watch = Some(Duration::from_millis(100));
    let server = serve(config).await;
    let mut health = HealthClient::new(server.channel().await);
    let status = |r: tonic::Response<tonic_health::pb::HealthCheckResponse>| r.into_inner().status;
    assert_eq!(
        status(health.check(HealthCheckRequest::default()).await.unwrap()),
        ServingStatus::NotServing as i32
    );
    let mut client = server.scorer().await;
    let none = who_answers(&mut client, "", "").await.unwrap_err();
    assert_eq!(none.code(), Code::NotFound);
    assert!(none.message().contains("no model is loaded"), "{none:?}");
    // A model arrives; --watch picks it up.
    std::fs::create_dir(dir.path().join("default")).unwrap();
    model_a().save(&dir.path().join("default/1.slant")).unwrap();
    let mut serving = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let s = status(health.check(HealthCheckRequest::default()).await.unwrap());
        if s == ServingStatus::Serving as i32 {
            serving = true;
            break;
        }
    }
    assert!(serving, "health did not turn SERVING once a model loaded");
    assert_eq!(who_answers(&mut client, "", "").await.unwrap().2, "1");
    server.stop().await;
}
