//! `serve --tls-cert/--tls-key`: HTTPS served by the binary itself.

use std::time::Duration;

use sales_order_api::Application;
use sales_order_api::config::{DatabaseUrl, Settings, TlsFiles};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_logs_in_and_submits_an_order_over_https() {
    let certificate = TestCertificate::localhost();
    let app = TestApp::spawn_tls(&certificate).await;
    let partner = app.register("VERSUNI", TestKey::vectors()).await;
    let session = app.session(&partner).await;

    let response = app.create_order(&session, &order_body("PO-TLS-1")).await;

    assert_eq!(response.url().scheme(), "https");
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_the_https_port_gets_no_answer() {
    let certificate = TestCertificate::localhost();
    let app = TestApp::spawn_tls(&certificate).await;
    let plain = reqwest::Client::new();

    let result = plain
        .get(format!("http://{}/healthz", app.address))
        .timeout(Duration::from_secs(10))
        .send()
        .await;

    assert!(result.is_err(), "{result:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let certificate = TestCertificate::localhost();
    let app = TestApp::spawn_tls(&certificate).await;
    let other = TestCertificate::localhost();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(other.cert_pem.as_bytes()).unwrap()])
        .resolve("localhost", app.address)
        .build()
        .unwrap();

    let result = client.get(app.url("/healthz")).send().await;

    let error = result.expect_err("an untrusted certificate must fail the handshake");
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_carries_no_strict_transport_security() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(!response.headers().contains_key("strict-transport-security"));
}

async fn start_with(tls: TlsFiles) -> anyhow::Error {
    let (_database, url) = TestDatabase::create().await;
    let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), DatabaseUrl::new(url));
    settings.tls = Some(tls);
    match Application::build(settings).await {
        Ok(_) => panic!("the service must not start"),
        Err(error) => error,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_file_stops_the_start_and_names_the_file() {
    let certificate = TestCertificate::localhost();
    let mut files = certificate.files();
    files.key = files.key.with_file_name("absent.pem");

    let error = format!("{:#}", start_with(files).await);

    assert!(error.contains("absent.pem"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_does_not_match_the_certificate_stops_the_start() {
    let certificate = TestCertificate::localhost();
    let other = TestCertificate::localhost();
    let files = TlsFiles {
        cert: certificate.files().cert,
        key: other.files().key,
    };
    let key_pem = std::fs::read_to_string(&files.key).unwrap();

    let error = format!("{:#}", start_with(files).await);

    assert!(error.contains("cert.pem"), "{error}");
    let key_body = key_pem.lines().nth(1).unwrap();
    assert!(!error.contains(key_body), "the error must not echo the key");
}
