//! Malformed requests: each gets the envelope and a precise 4xx.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_is_a_400_with_the_parser_message() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let response = app
        .signed(&session, reqwest::Method::POST, "/api/v1/sales-orders")
        .header("content-type", "application/json")
        .body("{\"customer_code\": ")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "INVALID_JSON").await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("nope")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "INVALID_JSON").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_is_not_json_is_a_415() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let response = app
        .signed(&session, reqwest::Method::POST, "/api/v1/sales-orders")
        .body("a=b")
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_one_mebibyte_is_a_413() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let big = format!("{{\"address\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    let response = app
        .signed(&session, reqwest::Method::POST, "/api/v1/sales-orders")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_route_is_a_404_and_a_wrong_method_a_405_with_allow() {
    let app = TestApp::spawn().await;
    expect_error(
        app.client
            .get(app.url("/api/v1/nothing"))
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    let response = app
        .client
        .delete(app.url("/api/v1/sales-orders"))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let refused = expect_error(response, 405, "METHOD_NOT_ALLOWED").await;
    let message = refused["message"].as_str().unwrap();
    assert!(
        !message.ends_with("allowed: "),
        "names what is allowed: {message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incoming_request_id_is_kept_and_a_missing_one_is_minted() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"].len(), 36);
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "bad id with spaces");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_object_and_wrongly_typed_bodies_are_validation_errors() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    for body in [
        serde_json::json!([1, 2]),
        serde_json::json!("text"),
        serde_json::json!({"products": "many"}),
    ] {
        expect_error(
            app.create_order(&session, &body).await,
            400,
            "VALIDATION_FAILED",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deeply_nested_body_is_refused_not_recursed_into() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let depth = 100_000;
    let body = format!(
        "{{\"products\": {}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let response = app
        .signed(&session, reqwest::Method::POST, "/api/v1/sales-orders")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    // Skipped over as raw JSON, never recursed into: a plain validation error.
    let body = expect_error(response, 400, "VALIDATION_FAILED").await;
    assert_eq!(body["error"]["details"][4]["field"], "products[0]");
    assert_eq!(
        app.get(&session, "/api/v1/sales-orders").await.status(),
        200,
        "still serving"
    );
}

#[tokio::test]
async fn a_malformed_order_path_without_credentials_is_refused_for_its_credentials_first() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/sales-orders/%C0"),
        (reqwest::Method::POST, "/api/v1/sales-orders/%C0/cancel"),
    ] {
        let response = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        expect_error(response, 401, "MISSING_HEADER").await;
    }
}
