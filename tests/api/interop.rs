//! Signatures made elsewhere: the published known-answer vectors, the openssl
//! CLI, and Java's SHA256withRSA.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

fn vectors() -> Vec<Value> {
    let file: Value =
        serde_json::from_str(include_str!("../fixtures/vectors/vectors.json")).unwrap();
    file["vectors"].as_array().unwrap().clone()
}

#[test]
fn the_published_vectors_verify_and_any_one_byte_change_fails() {
    let key = sales_order_api::domain::PublicKey::from_pem(VECTOR_PUBLIC.as_bytes()).unwrap();
    let keys = &sales_order_api::auth::signature::parse_keys([key.spki_der()]);
    for vector in vectors() {
        let message = vector["string_to_sign"].as_str().unwrap();
        let signature = vector["signature_base64"].as_str().unwrap();
        assert_eq!(
            sales_order_api::auth::signature::string_to_sign(
                vector["client_id"].as_str().unwrap(),
                vector["timestamp"].as_str().unwrap()
            ),
            message
        );
        assert!(
            sales_order_api::auth::signature::verify(keys, message, signature).is_ok(),
            "{message}"
        );
        let altered_message = message.replacen('|', "!", 1);
        assert!(
            sales_order_api::auth::signature::verify(keys, &altered_message, signature).is_err()
        );
        let mut raw = sales_order_api::auth::signature::decode(signature).unwrap();
        raw[10] ^= 1;
        let altered_signature =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw);
        assert!(
            sales_order_api::auth::signature::verify(keys, message, &altered_signature).is_err()
        );
    }
}

#[test]
fn our_signer_reproduces_the_published_signatures() {
    let key = TestKey::vectors();
    for vector in vectors() {
        assert_eq!(
            key.sign(vector["string_to_sign"].as_str().unwrap()),
            vector["signature_base64"]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_published_partner_vector_is_accepted_end_to_end() {
    // The vector's timestamp is 2024-01-01; widen the window so it is current enough.
    let app =
        TestApp::spawn_with(|s| s.timestamp_tolerance = Duration::from_secs(20 * 365 * 24 * 3600))
            .await;
    let partner = app.register("partner-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let vector = vectors()
        .into_iter()
        .find(|v| v["client_id"] == "partner-client-001")
        .unwrap();
    let response = app
        .with_headers(
            &session,
            reqwest::Method::GET,
            "/api/v1/sales-orders",
            "partner-client-001",
            vector["timestamp"].as_str().unwrap(),
            Some(vector["signature_base64"].as_str().unwrap().to_owned()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Signs `versuni-client-001|<now>` with an outside tool (`sign` gets the string
/// to sign and returns base64) and checks the server accepts the order. Skips,
/// saying so, when `tool` is not installed.
async fn assert_external_signature_is_accepted(
    test: &str,
    tool: &str,
    sign: impl FnOnce(&str) -> String,
) {
    let probe = if tool == "java" {
        "-version"
    } else {
        "version"
    };
    if Command::new(tool).arg(probe).output().is_err() {
        eprintln!("SKIPPED {test}: {tool} is not installed");
        return;
    }
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let timestamp = app.now().to_string();
    // The tool may take a few seconds to start (Java does); the timestamp window covers it.
    let signature = sign(&format!("versuni-client-001|{timestamp}"));
    let response = app
        .with_headers(
            &session,
            reqwest::Method::POST,
            "/api/v1/sales-orders",
            "versuni-client-001",
            &timestamp,
            Some(signature),
        )
        .json(&order_body("PO-EXT"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "signed by {tool}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_signed_with_the_openssl_cli_is_created() {
    assert_external_signature_is_accepted(
        "an_order_signed_with_the_openssl_cli_is_created",
        "openssl",
        |message| {
            let dir = tempfile::tempdir().unwrap();
            let message_file = dir.path().join("message");
            std::fs::write(&message_file, message).unwrap();
            let signed = Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(fixture("vectors/published-sample-private-key.pem"))
                .arg(&message_file)
                .output()
                .unwrap();
            assert!(signed.status.success());
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, signed.stdout)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_signed_with_java_sha256withrsa_is_created() {
    assert_external_signature_is_accepted(
        "an_order_signed_with_java_sha256withrsa_is_created",
        "java",
        |message| {
            let output = Command::new("java")
                .arg(fixture("java/Sign.java"))
                .arg(fixture("vectors/published-sample-private-key.pem"))
                .arg(message)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        },
    )
    .await;
}

/// v2 computed entirely outside Rust: Python's hashlib digests the body and
/// `cryptography` signs the string, as a partner's Python client would.
#[tokio::test(flavor = "multi_thread")]
async fn an_order_signed_v2_by_python_cryptography_is_created() {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    if !probe.is_ok_and(|output| output.status.success()) {
        eprintln!(
            "SKIPPED an_order_signed_v2_by_python_cryptography_is_created: no python3 with cryptography"
        );
        return;
    }
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let timestamp = app.now().to_string();
    let body = serde_json::to_vec(&order_body("PO-PY")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.json"), &body).unwrap();
    let script = r#"
import base64, hashlib, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
key_file, body_file, client_id, timestamp, method, path = sys.argv[1:]
body = open(body_file, "rb").read()
message = "|".join([client_id, timestamp, method, path, hashlib.sha256(body).hexdigest()])
key = serialization.load_pem_private_key(open(key_file, "rb").read(), password=None)
signature = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
print(base64.b64encode(signature).decode())
"#;
    let signed = Command::new("python3")
        .args(["-c", script])
        .arg(fixture("vectors/published-sample-private-key.pem"))
        .arg(dir.path().join("body.json"))
        .args([
            "versuni-client-001",
            &timestamp,
            "POST",
            "/api/v1/sales-orders",
        ])
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let signature = String::from_utf8(signed.stdout).unwrap().trim().to_owned();
    let response = app
        .with_headers(
            &session,
            reqwest::Method::POST,
            "/api/v1/sales-orders",
            "versuni-client-001",
            &timestamp,
            Some(signature),
        )
        .header("X-SIGNATURE-VERSION", "2")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "signed v2 by Python");
}
