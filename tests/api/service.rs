//! Health, readiness, metrics, OpenAPI and the docs page.

use serde_json::{Value, json};

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
    let text = app.metrics().await;
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
    assert!(description.contains("Quick start: your first order in five minutes"));
    assert!(description.contains("When a signature is refused"));
    assert!(description.contains("ORDER_NOT_CANCELLABLE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_docs_pages_load_their_scripts_from_this_server_only() {
    let app = TestApp::spawn().await;
    for (page, script) in [
        ("/docs", "/docs/redoc.standalone.js"),
        ("/docs/try/", "/docs/try/swagger-ui-bundle.js"),
    ] {
        let response = app.client.get(app.url(page)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{page}");
        // The browser holds the page to this server: no CDN, no badge, no logo.
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.starts_with("default-src 'self'; script-src 'self';"),
            "{policy}"
        );
        assert!(
            !policy.contains("http") && !policy.contains('*'),
            "{policy}"
        );
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external URLs: {html}"
        );
        assert!(html.contains(script.rsplit('/').next().unwrap()), "{page}");
        let script = app.client.get(app.url(script)).send().await.unwrap();
        assert_eq!(script.status(), 200);
        let script = script.text().await.unwrap();
        assert!(script.len() > 100_000);
        assert!(!script.contains("cdn.redoc.ly"), "{page}");
    }
    let initializer = app
        .client
        .get(app.url("/docs/try/swagger-initializer.js"))
        .send()
        .await;
    let initializer = initializer.unwrap().text().await.unwrap();
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
    let guide = app.client.get(app.url("/docs/guide")).send().await.unwrap();
    assert_eq!(guide.status(), 200);
    let policy = &guide.headers()["content-security-policy"];
    assert!(policy.to_str().unwrap().starts_with("default-src 'self';"));
    let guide = guide.text().await.unwrap();
    assert!(guide.contains("Quick start") && !guide.contains("<script"));
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
    // A number, or the same exact decimal as a string.
    let quantity = &line["properties"]["quantity"]["oneOf"][0];
    assert_eq!(quantity["exclusiveMinimum"], 0);
    assert_eq!(quantity["maximum"], 1_000_000_000);
    assert_eq!(quantity["multipleOf"], 0.0001);
    assert_eq!(
        line["properties"]["unit_price"]["oneOf"][0]["exclusiveMaximum"],
        1_000_000_000_000_000_i64
    );
    assert!(line["properties"]["unit_price"]["oneOf"][1]["pattern"].is_string());
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

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_documents_an_example_request_and_an_example_of_every_answer() {
    let app = TestApp::spawn().await;
    let document = openapi_document(&app).await;
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let where_ = format!("{method} {path}");
            if let Some(body) = operation.get("requestBody") {
                let content = &body["content"]["application/json"];
                assert!(
                    content["example"].is_object(),
                    "{where_}: no request example"
                );
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                let content = &response["content"]["application/json"];
                let examples: Vec<&Value> = match content["examples"].as_object() {
                    Some(many) => many.values().map(|example| &example["value"]).collect(),
                    None => vec![&content["example"]],
                };
                assert!(
                    examples.iter().all(|example| example.is_object()),
                    "{where_} {status}: missing example"
                );
                let status: u16 = status.parse().unwrap();
                for example in examples.iter().filter(|_| status >= 400) {
                    let code = example["error"]["code"].as_str().unwrap();
                    let described = response["description"].as_str().unwrap();
                    assert!(
                        described.contains(&format!("`{code}`")),
                        "{where_} {status}: example {code} is not among the codes described"
                    );
                }
            }
        }
    }
    assert_eq!(operations, 19);
    let signature = &document["paths"]["/api/v1/sales-orders"]["post"]["responses"]["401"]["content"]
        ["application/json"]["examples"]["SIGNATURE_INVALID"]["value"];
    assert_eq!(
        signature["error"]["details"][0]["mistake"]["code"],
        "SIGNED_OTHER_TIMESTAMP"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_refused_login_and_refresh_name_the_fields_those_routes_take() {
    let app = TestApp::spawn().await;
    let document = openapi_document(&app).await;
    for (path, body) in [
        (
            "/api/v1/auth/login",
            json!({"client_id": "versuni-client-001", "clientSecret": "…"}),
        ),
        ("/api/v1/auth/refresh", json!({"refresh_token": "…"})),
    ] {
        let documented = &document["paths"][path]["post"]["responses"]["400"]["content"]["application/json"]
            ["examples"]["VALIDATION_FAILED"]["value"];
        let response = app
            .client
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let answered = expect_error(response, 400, "VALIDATION_FAILED").await;
        assert_eq!(
            answered["error"]["details"], documented["error"]["details"],
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_create_example_is_accepted_and_answered_in_the_documented_shape() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let document = openapi_document(&app).await;
    let create = &document["paths"]["/api/v1/sales-orders"]["post"];
    let request = &create["requestBody"]["content"]["application/json"]["example"];
    let documented = &create["responses"]["201"]["content"]["application/json"]["example"];

    let response = app.create_order(&session, request).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&answer), keys(documented));
    assert_eq!(keys(&answer["data"]), keys(&documented["data"]));
    assert_eq!(
        keys(&answer["data"]["products"][0]),
        keys(&documented["data"]["products"][0])
    );
    assert_eq!(answer["data"]["products"], documented["data"]["products"]);
    assert_eq!(
        answer["data"]["total_amount"],
        documented["data"]["total_amount"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_clients_the_guide_links_to_are_served_as_they_are_in_examples() {
    let app = TestApp::spawn().await;
    let guide = openapi_document(&app).await["info"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    for (file, source) in [
        ("client.sh", "examples/bash/client.sh"),
        ("client.py", "examples/python/client.py"),
        ("requirements.txt", "examples/python/requirements.txt"),
        ("Client.java", "examples/java/Client.java"),
        ("client.mjs", "examples/node/client.mjs"),
        ("webhook_receiver.py", "examples/python/webhook_receiver.py"),
        ("webhook-receiver.mjs", "examples/node/webhook-receiver.mjs"),
        ("package.json", "examples/node/package.json"),
        ("package-lock.json", "examples/node/package-lock.json"),
    ] {
        assert!(
            guide.contains(&format!("(/examples/{file})")),
            "the guide links {file}"
        );
        let response = app
            .client
            .get(app.url(&format!("/examples/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{file}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .ends_with("charset=utf-8")
        );
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
        assert_eq!(
            response.text().await.unwrap(),
            std::fs::read_to_string(path).unwrap()
        );
    }
    let missing = app
        .client
        .get(app.url("/examples/private.pem"))
        .send()
        .await
        .unwrap();
    expect_error(missing, 404, "NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_names_the_server_and_every_header_read_or_sent() {
    let app = TestApp::spawn_with(|settings| {
        settings.public_url = Some("https://orders.example.com".to_owned());
    })
    .await;
    let document = openapi_document(&app).await;
    assert_eq!(
        document["servers"],
        serde_json::json!([{"url": "https://orders.example.com"}])
    );
    let mut signed = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let where_ = format!("{method} {path}");
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("503"), "{where_} declares its 503");
            for status in ["429", "503"] {
                if let Some(response) = responses.get(status) {
                    assert!(
                        response["headers"]["Retry-After"].is_object(),
                        "{where_} {status} declares Retry-After"
                    );
                }
            }
            if operation["security"].as_array().is_none_or(Vec::is_empty) {
                continue;
            }
            signed += 1;
            let parameters: Vec<&str> = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert!(parameters.contains(&"X-SIGNATURE-VERSION"), "{where_}");
            let ok = responses
                .iter()
                .find(|(status, _)| status.starts_with('2'))
                .unwrap()
                .1;
            for name in ["RateLimit-Policy", "RateLimit"] {
                assert!(ok["headers"][name].is_object(), "{where_} declares {name}");
            }
        }
    }
    assert!(signed >= 15, "{signed} signed operations");
    let line_no = &document["components"]["schemas"]["OrderLine"]["properties"]["line_no"];
    assert_eq!(line_no["minimum"], 1);
    let quantity = &document["components"]["schemas"]["ProductDto"]["properties"]["quantity"];
    let kinds: Vec<&str> = quantity["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|schema| schema["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["number", "string"]);
    let text = document.to_string();
    for internal in ["NewOrder", "::parse", "sqlx", "PendingOrder"] {
        assert!(!text.contains(internal), "{internal} named in the document");
    }
}
