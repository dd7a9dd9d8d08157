//! The four-header check, including the hostile cases.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const ORDERS: &str = "/api/v1/sales-orders";

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_the_headers_names_every_missing_one() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url(ORDERS)).send().await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"sales-order-api\""
    );
    let body = expect_error(response, 401, "MISSING_HEADER").await;
    let headers: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["header"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        ["Authorization", "X-CLIENT-ID", "X-TIMESTAMP", "X-SIGNATURE"]
    );
}

/// `GET /api/v1/sales-orders` with chosen header values.
async fn list_with(
    app: &TestApp,
    session: &Session<'_>,
    client_id: &str,
    timestamp: &str,
    signature: Option<String>,
) -> reqwest::Response {
    app.with_headers(
        session,
        Method::GET,
        ORDERS,
        client_id,
        timestamp,
        signature,
    )
    .send()
    .await
    .unwrap()
}

/// A list request signed over the right string by a key the partner never
/// registered; returns the string signed.
async fn list_signed_by_a_stranger(
    app: &TestApp,
    session: &Session<'_>,
) -> (String, reqwest::Response) {
    let timestamp = app.now().to_string();
    let message = format!("versuni-client-001|{timestamp}");
    let foreign = TestKey::partner_b().sign(&message);
    let response = list_with(
        app,
        session,
        "versuni-client-001",
        &timestamp,
        Some(foreign),
    )
    .await;
    (message, response)
}

fn forge(header: &str, claims: &Value, key: Option<&[u8]>) -> String {
    let encode = |value: &[u8]| URL_SAFE_NO_PAD.encode(value);
    let signing_input = format!(
        "{}.{}",
        encode(header.as_bytes()),
        encode(claims.to_string().as_bytes())
    );
    let signature = match key {
        Some(key) => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
            encode(aws_lc_rs::hmac::sign(&key, signing_input.as_bytes()).as_ref())
        }
        None => String::new(),
    };
    format!("{signing_input}.{signature}")
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_tokens_are_refused_as_invalid() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let payload = session.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();

    let alg_none = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims, None);
    let guessed_key = forge(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, Some(b"secret"));
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 365 * 24 * 3600);
    let parts: Vec<&str> = session.token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(longer.to_string()),
        parts[2]
    );
    let rs256 = forge(r#"{"alg":"RS256","typ":"JWT"}"#, &claims, Some(b"x"));

    for token in [alg_none, guessed_key, tampered, rs256, "garbage".to_owned()] {
        let hostile = Session {
            partner: &partner,
            token,
        };
        expect_error(app.get(&hostile, ORDERS).await, 401, "TOKEN_INVALID").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_of_one_partner_with_the_headers_of_another_is_refused() {
    let app = TestApp::spawn().await;
    let a = app.register("partner-a", TestKey::vectors()).await;
    let b = app.register("partner-b", TestKey::partner_b()).await;
    let a_session = app.session(&a).await;
    let b_signature = b.key.sign(&format!("partner-b|{}", app.now()));
    let response = app
        .with_headers(
            &a_session,
            Method::GET,
            ORDERS,
            "partner-b",
            &app.now().to_string(),
            Some(b_signature),
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "CLIENT_ID_MISMATCH").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_by_another_key_is_refused_and_the_string_to_sign_echoed() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let (message, response) = list_signed_by_a_stranger(&app, &session).await;
    let body = expect_error(response, 401, "SIGNATURE_INVALID").await;
    let detail = &body["error"]["details"][0];
    assert_eq!(detail["string_to_sign"], message);
    // The partner's one key was tried, and the answer says it did not sign.
    let keys = app
        .state
        .store
        .keys(&client("versuni-client-001"))
        .await
        .unwrap();
    assert_eq!(
        detail["keys_tried"],
        json!([{"key_id": keys[0].key_id, "fingerprint": keys[0].fingerprint}])
    );
    assert_eq!(detail["mistake"]["code"], "UNKNOWN_KEY");
    assert_eq!(body["message"], detail["mistake"]["hint"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn milliseconds_signed_but_seconds_sent_is_named_over_http() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let seconds = app.now();
    let signed = format!("versuni-client-001|{}", seconds * 1000 + 517);
    let response = app
        .with_headers(
            &session,
            Method::GET,
            "/api/v1/sales-orders",
            "versuni-client-001",
            &seconds.to_string(),
            Some(partner.key.sign(&signed)),
        )
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 401, "SIGNATURE_INVALID").await;
    let mistake = &body["error"]["details"][0]["mistake"];
    assert_eq!(mistake["code"], "SIGNED_TIMESTAMP_IN_OTHER_UNIT", "{body}");
    assert!(mistake["hint"].as_str().unwrap().contains("milliseconds"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_over_a_different_timestamp_is_refused() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let now = app.now();
    let signature = partner.key.sign(&format!("versuni-client-001|{}", now - 1));
    let response = list_with(
        &app,
        &session,
        "versuni-client-001",
        &now.to_string(),
        Some(signature),
    )
    .await;
    let body = expect_error(response, 401, "SIGNATURE_INVALID").await;
    let mistake = &body["error"]["details"][0]["mistake"];
    assert_eq!(mistake["code"], "SIGNED_OTHER_TIMESTAMP");
    assert_eq!(body["message"], mistake["hint"]);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("timestamp {}", now - 1))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_over_the_json_body_is_named_as_that_mistake() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let body = order_body("PO-BODY-SIGNED").to_string();
    let response = app
        .with_headers(
            &session,
            Method::POST,
            ORDERS,
            "versuni-client-001",
            &app.now().to_string(),
            Some(partner.key.sign(&body)),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 401, "SIGNATURE_INVALID").await;
    assert_eq!(
        error["error"]["details"][0]["mistake"]["code"],
        "SIGNED_BODY"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_by_a_revoked_key_names_that_key() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let old = app
        .state
        .store
        .keys(&client("versuni-client-001"))
        .await
        .unwrap()[0]
        .clone();
    let replacement = sales_order_api::domain::partner::PublicKey::from_pem(
        TestKey::partner_b().public_pem.as_bytes(),
    )
    .unwrap();
    app.state
        .store
        .add_key(
            &client("versuni-client-001"),
            "key_new",
            &replacement,
            app.time(),
        )
        .await
        .unwrap();
    app.state
        .store
        .revoke_key(&client("versuni-client-001"), &old.key_id, app.time())
        .await
        .unwrap();
    within_a_second("the revoked key to be refused and named", || async {
        let response = list_with(
            &app,
            &session,
            "versuni-client-001",
            &app.now().to_string(),
            None,
        )
        .await;
        if response.status() != 401 {
            return false;
        }
        let error: Value = response.json().await.unwrap();
        let detail = &error["error"]["details"][0];
        detail["mistake"]["code"] == "REVOKED_KEY"
            && error["message"].as_str().unwrap().contains(&old.key_id)
            && detail["keys_tried"][0]["key_id"] == "key_new"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_future_and_garbage_timestamps_are_refused() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let now = app.now();
    for (timestamp, code) in [
        ((now - 301).to_string(), "TIMESTAMP_OUT_OF_WINDOW"),
        ((now + 301).to_string(), "TIMESTAMP_OUT_OF_WINDOW"),
        ("yesterday".to_owned(), "TIMESTAMP_INVALID"),
        ("2024-03-01T08:27:49".to_owned(), "TIMESTAMP_INVALID"),
    ] {
        let response = list_with(&app, &session, "versuni-client-001", &timestamp, None).await;
        expect_error(response, 401, code).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unix_milliseconds_and_rfc3339_timestamps_are_accepted() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let now = time::OffsetDateTime::from_unix_timestamp(app.now()).unwrap();
    let jakarta = now.to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap());
    let rfc3339 = jakarta
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for timestamp in [format!("{}123", app.now()), rfc3339] {
        let response = list_with(&app, &session, "versuni-client-001", &timestamp, None).await;
        assert_eq!(response.status(), 200, "{timestamp}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn url_safe_and_unpadded_base64_signatures_are_accepted() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let timestamp = app.now().to_string();
    let raw = STANDARD
        .decode(partner.key.sign(&format!("versuni-client-001|{timestamp}")))
        .unwrap();
    for signature in [
        URL_SAFE_NO_PAD.encode(&raw),
        base64::engine::general_purpose::URL_SAFE.encode(&raw),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw),
    ] {
        let response = list_with(
            &app,
            &session,
            "versuni-client-001",
            &timestamp,
            Some(signature),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_signature_is_not_a_replay() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let timestamp = app.now().to_string();
    let signature = partner.key.sign(&format!("versuni-client-001|{timestamp}"));
    for po in ["PO-1", "PO-2"] {
        let response = app
            .with_headers(
                &session,
                Method::POST,
                ORDERS,
                "versuni-client-001",
                &timestamp,
                Some(signature.clone()),
            )
            .json(&order_body(po))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_active_key_verifies_and_a_revoked_key_stops_within_a_second() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let rotated = TestKey::new(ROTATED_PRIVATE, ROTATED_PUBLIC_PKCS1);
    let key =
        sales_order_api::domain::PublicKey::from_pem(ROTATED_PUBLIC_PKCS1.as_bytes()).unwrap();
    app.state
        .store
        .add_key(
            &client("versuni-client-001"),
            "key_rotated",
            &key,
            app.time(),
        )
        .await
        .unwrap();
    let timestamp = app.now().to_string();
    let message = format!("versuni-client-001|{timestamp}");
    for signature in [partner.key.sign(&message), rotated.sign(&message)] {
        let response = list_with(
            &app,
            &session,
            "versuni-client-001",
            &timestamp,
            Some(signature),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    assert!(
        app.state
            .store
            .revoke_key(&client("versuni-client-001"), "key_rotated", app.time())
            .await
            .unwrap()
    );
    within_a_second("the revoked key is refused", || async {
        let response = list_with(
            &app,
            &session,
            "versuni-client-001",
            &timestamp,
            Some(rotated.sign(&message)),
        )
        .await;
        status_and_code(response).await == (401, "SIGNATURE_INVALID".into())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_partner_refuses_its_requests_within_a_second() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    assert_eq!(app.get(&session, ORDERS).await.status(), 200);
    app.state
        .store
        .set_partner_enabled(&client("versuni-client-001"), false, app.time())
        .await
        .unwrap();
    within_a_second("the disabled partner is refused", || async {
        status_and_code(app.get(&session, ORDERS).await).await == (401, "PARTNER_DISABLED".into())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_ascii_timestamp_is_invalid_not_missing() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let mut request = app.signed(&session, Method::GET, ORDERS).build().unwrap();
    let latin1 = reqwest::header::HeaderValue::from_bytes(b"17\xe90").unwrap();
    request.headers_mut().insert("X-TIMESTAMP", latin1);
    let response = app.client.execute(request).await.unwrap();
    expect_error(response, 401, "TIMESTAMP_INVALID").await;
}

fn bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_signature_over_method_path_query_and_body_is_accepted() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let body = bytes(&order_body("PO-1"));
    let response = app
        .signed_v2(&session, Method::POST, ORDERS, &body, body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let path = format!("{ORDERS}?status=received&limit=5");
    let response = app
        .signed_v2(&session, Method::GET, &path, b"", Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_or_query_changed_after_v2_signing_is_refused_showing_what_was_verified() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let signed = bytes(&order_body("PO-1"));
    let sent = bytes(&order_body("PO-2"));
    let response = app
        .signed_v2(&session, Method::POST, ORDERS, &signed, sent.clone())
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 401, "SIGNATURE_INVALID").await;
    let verified = error["error"]["details"][0]["string_to_sign"]
        .as_str()
        .unwrap();
    let digest = sales_order_api::auth::signature::body_digest(&sent);
    assert!(
        verified.ends_with(&format!("|POST|{ORDERS}|{digest}")),
        "{verified}"
    );

    // Signed for one query, sent with another.
    let request = app.signed_v2(
        &session,
        Method::GET,
        &format!("{ORDERS}?status=received"),
        b"",
        Vec::new(),
    );
    let mut request = request.build().unwrap();
    request.url_mut().set_query(Some("status=cancelled"));
    let response = app.client.execute(request).await.unwrap();
    let error = expect_error(response, 401, "SIGNATURE_INVALID").await;
    // A real change is no slip of the partner's: told as another string.
    assert_eq!(
        error["error"]["details"][0]["mistake"]["code"], "SIGNED_OTHER_STRING",
        "{error}"
    );
    let listed: Value = app.get(&session, ORDERS).await.json().await.unwrap();
    assert_eq!(listed["data"], json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_signature_without_the_query_or_over_another_body_digest_is_named_over_http() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let now = app.now().to_string();
    let v2 = |method: &str, path: &str, digest: &str| {
        partner
            .key
            .sign(&sales_order_api::auth::signature::string_to_sign_v2(
                "versuni-client-001",
                &now,
                method,
                path,
                digest,
            ))
    };
    let send = |method: Method, path: &str, signature: String, body: Vec<u8>| {
        app.with_headers(
            &session,
            method,
            path,
            "versuni-client-001",
            &now,
            Some(signature),
        )
        .header("X-SIGNATURE-VERSION", "2")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
    };
    let mistake = |error: Value| error["error"]["details"][0]["mistake"].clone();

    let empty = sales_order_api::auth::signature::body_digest(b"");
    let query = format!("{ORDERS}?status=received");
    let response = send(Method::GET, &query, v2("GET", ORDERS, &empty), Vec::new());
    let error = expect_error(response.await.unwrap(), 401, "SIGNATURE_INVALID").await;
    assert_eq!(
        mistake(error.clone())["code"],
        "SIGNED_WITHOUT_QUERY",
        "{error}"
    );

    let body = bytes(&order_body("PO-1"));
    let digest = sales_order_api::auth::signature::body_digest(&body);
    let upper = v2("POST", ORDERS, &digest.to_uppercase());
    let response = send(Method::POST, ORDERS, upper, body);
    let error = expect_error(response.await.unwrap(), 401, "SIGNATURE_INVALID").await;
    let mistake = mistake(error.clone());
    assert_eq!(mistake["code"], "SIGNED_OTHER_BODY_DIGEST", "{error}");
    assert!(
        mistake["hint"].as_str().unwrap().contains("upper-case hex"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_required_to_sign_v2_is_told_so_when_it_signs_v1() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let set = |required: &str| {
        let output = crate::cli::cli(
            &app.database_url,
            &[
                "partner",
                "set",
                "versuni-client-001",
                "--require-body-signature",
                required,
            ],
        );
        assert!(output.status.success());
    };
    set("true");
    expect_error(
        app.create_order(&session, &order_body("PO-1")).await,
        401,
        "SIGNATURE_V2_REQUIRED",
    )
    .await;
    let body = bytes(&order_body("PO-1"));
    let response = app
        .signed_v2(&session, Method::POST, ORDERS, &body, body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    set("false");
    within_a_second("v1 is accepted again", || async {
        app.get(&session, ORDERS).await.status() == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_signature_version_is_refused() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let response = app
        .signed(&session, Method::GET, ORDERS)
        .header("X-SIGNATURE-VERSION", "3")
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "SIGNATURE_VERSION_UNSUPPORTED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_body_over_the_limit_is_refused_as_too_large() {
    let app = TestApp::spawn_with(|settings| settings.body_limit = 1024).await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let big = vec![b' '; 4096];
    let response = app
        .signed_v2(&session, Method::POST, ORDERS, &big, big.clone())
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_over_its_rate_limit_waits_and_others_are_not_affected() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let other = app.register("partner-b", TestKey::partner_b()).await;
    let session = app.session(&partner).await;
    let other_session = app.session(&other).await;
    let output = crate::cli::cli(
        &app.database_url,
        &["partner", "set", "versuni-client-001", "--rate-limit", "1"],
    );
    assert!(output.status.success());

    // 1 request a second with bursts of ten seconds' worth.
    for _ in 0..10 {
        assert_eq!(app.get(&session, ORDERS).await.status(), 200);
    }
    let response = app.get(&session, ORDERS).await;
    assert_eq!(response.headers()["retry-after"], "1");
    expect_error(response, 429, "RATE_LIMITED").await;
    assert_eq!(app.get(&other_session, ORDERS).await.status(), 200);

    app.advance_clock(std::time::Duration::from_secs(1));
    assert_eq!(app.get(&session, ORDERS).await.status(), 200);
    let output = crate::cli::cli(
        &app.database_url,
        &[
            "partner",
            "set",
            "versuni-client-001",
            "--rate-limit",
            "off",
        ],
    );
    assert!(output.status.success());
    within_a_second("the limit is lifted", || async {
        app.get(&session, ORDERS).await.status() == 200
    })
    .await;
    for _ in 0..20 {
        assert_eq!(app.get(&session, ORDERS).await.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_signatures_are_explained_only_up_to_a_bounded_rate_per_client() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    // A stopped clock: the bucket cannot refill however slow this machine is.
    app.state.clock.freeze();
    let burst = 10 * sales_order_api::auth::diagnosis::PER_SECOND as usize;
    let mut explained = Vec::new();
    for _ in 0..burst + 20 {
        let (_, response) = list_signed_by_a_stranger(&app, &session).await;
        let body = expect_error(response, 401, "SIGNATURE_INVALID").await;
        let detail = &body["error"]["details"][0];
        assert!(detail["string_to_sign"].is_string());
        explained.push(detail.get("keys_tried").is_some());
    }
    assert!(explained[0], "the first failure is explained");
    assert!(
        !explained.last().unwrap(),
        "after a burst of {burst}, failures are no longer explained"
    );
    assert_eq!(explained.iter().filter(|e| **e).count(), burst);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signed_answer_tells_the_rate_budget_in_the_ietf_fields_a_429_too() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let output = crate::cli::cli(
        &app.database_url,
        &["partner", "set", "versuni-client-001", "--rate-limit", "2"],
    );
    assert!(output.status.success());

    let fields = |response: &reqwest::Response| {
        (
            response.headers()["ratelimit-policy"]
                .to_str()
                .unwrap()
                .to_owned(),
            response.headers()["ratelimit"].to_str().unwrap().to_owned(),
        )
    };
    // A burst of ten seconds' worth: 20, then one a half second.
    let first = app.get(&session, ORDERS).await;
    assert_eq!(
        fields(&first),
        (
            "\"default\";q=2;w=1".to_owned(),
            "\"default\";r=19;t=1".to_owned()
        )
    );
    let missing = app.get(&session, "/api/v1/sales-orders/so_missing").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(fields(&missing).1, "\"default\";r=18;t=1");
    for _ in 0..18 {
        app.get(&session, ORDERS).await;
    }
    let refused = app.get(&session, ORDERS).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        fields(&refused),
        (
            "\"default\";q=2;w=1".to_owned(),
            "\"default\";r=0;t=10".to_owned()
        )
    );
    assert_eq!(refused.headers()["retry-after"], "1");

    // Not on the login, nor on a request refused before it was counted.
    let login = app.login(&partner.client_id, &partner.secret).await;
    assert!(login.headers().get("ratelimit").is_none());
    let unsigned = app
        .client
        .get(format!("{}{ORDERS}", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert!(unsigned.headers().get("ratelimit").is_none());
}
