//! Health, readiness, metrics, OpenAPI and the docs page.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness_answer_ok() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_and_auth_failures_in_prometheus_text() {
    let app = TestApp::spawn().await;
    app.client
        .get(app.url("/api/v1/sales-orders"))
        .send()
        .await
        .unwrap();
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(
        text.contains("auth_failures_total{reason=\"MISSING_HEADER\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_names_the_seed_schemes_and_routes() {
    let app = TestApp::spawn().await;
    let document = openapi_document(&app).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    for name in ["JWT-auth", "X-CLIENT-ID", "X-TIMESTAMP", "X-SIGNATURE"] {
        assert!(schemes.contains_key(name), "{name}");
    }
    assert!(document["components"]["schemas"]["ProductDto"].is_object());
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/sales-orders",
        "/api/v1/sales-orders/{id}",
        "/api/v1/sales-orders/{id}/cancel",
    ] {
        assert!(document["paths"][path].is_object(), "{path}");
    }
    let create = &document["paths"]["/api/v1/sales-orders"]["post"];
    assert_eq!(
        create["security"][0].as_object().unwrap().len(),
        4,
        "all four schemes together"
    );
    let parameters = create["parameters"].as_array().unwrap();
    assert!(
        parameters
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "{parameters:?}"
    );
    assert!(create["responses"]["201"]["headers"]["Idempotent-Replayed"].is_object());
    let list = document["paths"]["/api/v1/sales-orders"]["get"]["parameters"]
        .as_array()
        .unwrap();
    for filter in [
        "status",
        "created_from",
        "created_to",
        "purchase_order_no",
        "cursor",
    ] {
        assert!(list.iter().any(|p| p["name"] == filter), "{filter}");
    }
    let description = document["info"]["description"].as_str().unwrap();
    assert!(description.contains("Getting started"));
    assert!(description.contains("ORDER_NOT_CANCELLABLE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_docs_page_loads_its_scripts_from_this_server_only() {
    let app = TestApp::spawn().await;
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external URLs: {html}"
    );
    let script = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().len() > 100_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_forbids_content_sniffing() {
    let app = TestApp::spawn().await;
    let responses = [
        app.client.get(app.url("/healthz")).send().await.unwrap(),
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
        app.client
            .get(app.url("/no-such-route"))
            .send()
            .await
            .unwrap(),
        app.login("nobody", "wrong").await,
    ];
    for response in responses {
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{}",
            response.url()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_states_the_rules_request_bodies_are_checked_against() {
    let app = TestApp::spawn().await;
    let document = openapi_document(&app).await;
    let schemas = &document["components"]["schemas"];
    let order = &schemas["CreateSalesOrderRequest"];
    let line = &schemas["ProductDto"];

    for body in [
        "CreateSalesOrderRequest",
        "ProductDto",
        "LoginRequest",
        "RefreshRequest",
    ] {
        assert_eq!(schemas[body]["additionalProperties"], false, "{body}");
    }
    assert_eq!(order["properties"]["products"]["minItems"], 1);
    assert_eq!(order["properties"]["products"]["maxItems"], 1000);
    assert_eq!(order["properties"]["customer_code"]["maxLength"], 64);
    assert_eq!(order["properties"]["customer_code"]["minLength"], 1);
    assert_eq!(order["properties"]["address"]["maxLength"], 1000);
    assert!(order["properties"]["purchase_order_no"]["minLength"].is_null());
    assert_eq!(line["properties"]["quantity"]["exclusiveMinimum"], 0);
    assert_eq!(line["properties"]["quantity"]["maximum"], 1_000_000_000);
    assert_eq!(line["properties"]["quantity"]["multipleOf"], 0.0001);
    assert_eq!(
        line["properties"]["unit_price"]["exclusiveMaximum"],
        1_000_000_000_000_000_i64
    );
    let limit = &document["paths"]["/api/v1/sales-orders"]["get"]["parameters"][0];
    assert_eq!(limit["name"], "limit");
    assert_eq!(limit["schema"]["maximum"], 200);
}

/// The served OpenAPI document.
async fn openapi_document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
