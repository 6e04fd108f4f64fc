//! An Ollama behind TLS with its own CA (generated here): trusted through `extra_ca`
//! (`OLLAMA_CERT_PATH`), refused without it, accepted with verification off
//! (`OLLAMA_VERIFY_SSL=false`).

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use waddlebot::{AiError, AiProvider};
use waddlebot_ai::{HttpSettings, Ollama, OllamaConfig};

/// A CA (PEM) and an HTTPS server for `localhost` signed by it, answering `/api/tags`.
async fn https_ollama() -> (String, String) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "WaddleBot test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("key");
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("certificate");

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = r#"{"models":[{"name":"llama3.2:latest"}]}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (format!("https://localhost:{port}"), ca_cert.pem())
}

fn client(base_url: &str, http: HttpSettings) -> Ollama {
    Ollama::new(OllamaConfig {
        base_url: base_url.to_owned(),
        http,
        ..OllamaConfig::default()
    })
    .expect("client")
}

#[tokio::test]
async fn a_private_ca_is_trusted_when_given_and_only_then() {
    let (url, ca_pem) = https_ollama().await;
    let ca_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(ca_file.path(), ca_pem).expect("written");
    let timeout = Duration::from_secs(5);

    let trusted = client(
        &url,
        HttpSettings {
            timeout,
            extra_ca: Some(ca_file.path().to_owned()),
            verify_tls: true,
        },
    );
    let models = trusted.models().await.expect("the CA is trusted");
    assert_eq!(models[0].id, "llama3.2:latest");

    let strict = client(
        &url,
        HttpSettings {
            timeout,
            ..HttpSettings::default()
        },
    );
    assert!(
        matches!(strict.models().await, Err(AiError::Unavailable(_))),
        "an unknown CA is refused"
    );

    let lax = client(
        &url,
        HttpSettings {
            timeout,
            extra_ca: None,
            verify_tls: false,
        },
    );
    assert!(lax.models().await.is_ok(), "verification off accepts it");

    let not_pem = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(not_pem.path(), "not a certificate").expect("written");
    let refused = Ollama::new(OllamaConfig {
        http: HttpSettings {
            extra_ca: Some(not_pem.path().to_owned()),
            ..HttpSettings::default()
        },
        ..OllamaConfig::default()
    });
    assert!(matches!(refused, Err(AiError::NotConfigured(_))));
}
