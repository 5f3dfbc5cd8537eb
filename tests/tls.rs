//! TLS end to end: a real server on 127.0.0.1:0 with the test certificates
//! in tests/fixtures/tls, a tonic client over rustls; plaintext clients and
//! (with --tls-client-ca) clients without a certificate are refused.

#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::path::{Path, PathBuf};

use common_service::{model_a, start, TestServer};
use slant::proto::scorer_client::ScorerClient;
use slant::proto::ScoreRequest;
use slant::service::{Server, ServerConfig, TlsFiles};
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A TLS server with the test certificates; with `client_ca`, clients
/// must show a certificate signed by the test CA.
async fn start_tls(client_ca: bool) -> TestServer {
    start(|config, _| {
        config.tls = Some(TlsFiles {
            cert: fixture("server.pem"),
            key: fixture("server.key"),
            client_ca: client_ca.then(|| fixture("ca.pem")),
        });
    })
    .await
}

fn request() -> ScoreRequest {
    ScoreRequest {
        passages: vec!["You will not believe this".into()],
        ..Default::default()
    }
}

async fn tls_channel(
    port: u16,
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let ca = Certificate::from_pem(std::fs::read(fixture("ca.pem")).unwrap());
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Endpoint::from_shared(format!("https://localhost:{port}"))?
        .tls_config(tls)?
        .connect()
        .await
}

/// One Score call that must succeed with one result.
async fn scored(channel: Channel) -> slant::proto::ScoreResponse {
    let response = ScorerClient::new(channel)
        .score(request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.results.len(), 1);
    response
}

#[tokio::test]
async fn tls_serves_encrypted_and_refuses_plaintext() {
    let server = start_tls(false).await;
    let port = server.addr.port();
    let channel = tls_channel(port, None).await.unwrap();
    let response = scored(channel).await;
    assert!(!response.model_id.is_empty());

    // A plaintext client cannot talk to the TLS port.
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(channel) => ScorerClient::new(channel).score(request()).await.is_err(),
    };
    assert!(refused, "a plaintext call to the TLS port succeeded");

    server.stop().await;
}

#[tokio::test]
async fn client_ca_requires_a_client_certificate() {
    let server = start_tls(true).await;
    let port = server.addr.port();
    // Without a client certificate the handshake or the call fails.
    let anonymous = match tls_channel(port, None).await {
        Err(_) => true,
        Ok(channel) => ScorerClient::new(channel).score(request()).await.is_err(),
    };
    assert!(anonymous, "a client without a certificate was served");
    // With one signed by the CA it is served.
    let id = Identity::from_pem(
        std::fs::read(fixture("client.pem")).unwrap(),
        std::fs::read(fixture("client.key")).unwrap(),
    );
    let channel = tls_channel(port, Some(id)).await.unwrap();
    scored(channel).await;
    server.stop().await;
}

#[tokio::test]
async fn a_missing_tls_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.slant");
    model_a().save(&model).unwrap();
    let mut config = ServerConfig::new(&model);
    config.tls = Some(TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: fixture("server.key"),
        client_ca: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(config).await.unwrap();
    let err = server
        .run(listener, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.pem"), "{err}");
}
