//! What the service tests share: small hand-made models (two heads,
//! 3-class "sentiment" and 2-class "sensational" with a threshold, over a
//! TF-IDF vocabulary fitted on a few sentences) and a server on
//! 127.0.0.1:0 to call them on ([`TestServer`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use linfa::ParamGuard;
use slant::features::{FeatureParams, FeatureSettings, Featurizer};
use slant::model::{HeadData, ModelData};
use slant::proto::scorer_client::ScorerClient;
use slant::service::{ReloadHandle, Server, ServerConfig, ServiceError};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

const CORPUS: [&str; 5] = [
    "good news",
    "bad news",
    "SHOCKING news!!",
    "the senate voted on the budget",
    "great results for the team",
];

fn build(version: &str, sentiment_bias: [f32; 3], caps_weight: f32) -> ModelData {
    let settings = FeatureParams(FeatureSettings::default()).check().unwrap();
    let f = Featurizer::fit(&settings, CORPUS, || {}).unwrap();
    let n = f.len();
    let index = |t: &str| f.vocabulary().terms.iter().position(|x| x == t).unwrap();
    let mut sent = vec![0f32; n * 3];
    sent[index("good") * 3 + 2] = 2.0;
    sent[index("great") * 3 + 2] = 1.5;
    sent[index("bad") * 3] = 2.0;
    let mut sens = vec![0f32; n];
    sens[index("<caps>")] = caps_weight;
    sens[index("!!")] = 1.0;
    let metrics = |v: f64| {
        BTreeMap::from([
            ("dev.jsonl accuracy".to_string(), v),
            ("dev.jsonl macro_f1".to_string(), v - 0.1),
        ])
    };
    ModelData {
        slant_version: version.into(),
        config_sha256: "0".repeat(64),
        vocabulary: f.vocabulary().clone(),
        heads: vec![
            HeadData {
                name: "sentiment".into(),
                scope: slant::model::Scope::Passage,
                labels: vec!["negative".into(), "neutral".into(), "positive".into()],
                threshold: None,
                weights: sent,
                intercept: sentiment_bias.to_vec(),
                hyperparameters: BTreeMap::new(),
                dev_metrics: metrics(0.8),
                data: vec![],
                mixture: None,
            },
            HeadData {
                name: "sensational".into(),
                scope: slant::model::Scope::Passage,
                labels: vec!["not_sensational".into(), "sensational".into()],
                threshold: Some(0.4),
                weights: sens,
                intercept: vec![-1.0],
                hyperparameters: BTreeMap::new(),
                dev_metrics: metrics(0.9),
                data: vec![],
                mixture: None,
            },
        ],
    }
}

/// The model a test server starts with.
pub fn model_a() -> ModelData {
    build("test-a", [0.0, 0.5, 0.0], 3.0)
}

/// A different model (another id) for reloads.
pub fn model_b() -> ModelData {
    build("test-b", [0.1, 0.3, 0.2], 2.5)
}

/// Writes `data`'s file bytes with one payload byte flipped (a checksum
/// mismatch), atomically as `ModelData::save` does.
pub fn save_corrupt(data: &ModelData, path: &Path) {
    let mut bytes = data.to_bytes().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let tmp = path.with_extension("corrupt.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A server on 127.0.0.1:0 inside the test process, with real sockets:
/// gRPC (and HTTP) on `addr`, Prometheus metrics on `metrics_addr`.
pub struct TestServer {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub reload: ReloadHandle,
    /// The model file [`start`] served (none for [`serve`]).
    pub model_path: PathBuf,
    dir: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServiceError>>,
}

/// Serves `config` until [`TestServer::stop`].
pub async fn serve(config: ServerConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let server = Server::new(config)
        .await
        .unwrap()
        .with_metrics_listener(metrics);
    let reload = server.reload_handle();
    let (shutdown, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        metrics_addr,
        reload,
        model_path: PathBuf::new(),
        dir: None,
        shutdown: Some(shutdown),
        task,
    }
}

/// Serves model A, saved as `model.slant` in a new folder, with the
/// config `configure` makes (given the folder, for the files it names).
pub async fn start(configure: impl FnOnce(&mut ServerConfig, &Path)) -> TestServer {
    start_model(model_a(), configure).await
}

/// [`start`] with another model.
pub async fn start_model(
    model: ModelData,
    configure: impl FnOnce(&mut ServerConfig, &Path),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.slant");
    model.save(&model_path).unwrap();
    let mut config = ServerConfig::new(&model_path);
    configure(&mut config, dir.path());
    TestServer {
        model_path,
        dir: Some(dir),
        ..serve(config).await
    }
}

impl TestServer {
    /// The folder [`start`] made (the model, and the files a test adds).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map(TempDir::path).unwrap()
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn scorer(&self) -> ScorerClient<Channel> {
        ScorerClient::new(self.channel().await)
    }

    /// `GET path` from the metrics listener: the whole HTTP/1.1 response.
    pub async fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(self.metrics_addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// Asks the server to shut down (once); [`TestServer::stopped`] waits.
    pub fn trigger_shutdown(&mut self) {
        let _ = self.shutdown.take().map(|s| s.send(()));
    }

    /// Waits for the server asked to shut down: it must stop cleanly
    /// within 10 seconds.
    pub async fn stopped(self) {
        let stopped = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "the server did not stop cleanly: {stopped:?}"
        );
    }

    /// Shuts the server down; it must stop cleanly within 10 seconds.
    pub async fn stop(mut self) {
        self.trigger_shutdown();
        self.stopped().await;
    }
}
