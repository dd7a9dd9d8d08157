//! Login and refresh: every rule of SPEC's auth section.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::*;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_returns_an_hs256_token_valid_for_twelve_hours_and_uncacheable() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let response = app.login(&partner.client_id, &partner.secret).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
    let claims = claims_of(token);
    assert_eq!(claims["client_id"], "versuni-client-001");
    assert_eq!(claims["sub"], "versuni-client-001");
    assert!(claims["jti"].is_string());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 12 * 3600);
    assert_eq!(body["expired_at"], claims["exp"]);
    assert!((iat - app.now()).abs() <= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_client_and_wrong_secret_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let wrong_secret = expect_error(
        app.login(&partner.client_id, "not-the-secret").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let unknown = expect_error(
        app.login("nobody", &partner.secret).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(wrong_secret["message"], unknown["message"]);
    assert_eq!(wrong_secret["error"], unknown["error"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_with_missing_fields_lists_each_of_them() {
    let app = TestApp::spawn().await;
    let body = expect_error(
        app.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({"client_idd": "x"}),
        )
        .await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["client_id", "client_secret", "client_idd"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_partner_cannot_log_in() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    app.state
        .store
        .set_partner_enabled(&partner.id(), false, app.time())
        .await
        .unwrap();
    expect_error(
        app.login(&partner.client_id, &partner.secret).await,
        401,
        "PARTNER_DISABLED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refused_on_api_calls_the_second_exp_is_reached() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let exp = claims_of(&session.token)["exp"].as_i64().unwrap();
    app.advance_clock(Duration::from_secs(
        u64::try_from(exp - app.now() - 2).unwrap(),
    ));
    assert_eq!(
        app.get(&session, "/api/v1/sales-orders").await.status(),
        200
    );
    app.advance_clock(Duration::from_secs(2));
    expect_error(
        app.get(&session, "/api/v1/sales-orders").await,
        401,
        "TOKEN_EXPIRED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_says_invalid_token_in_its_bearer_challenge_as_rfc_6750_asks() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    app.advance_clock(13 * HOUR);
    let expired = app.get(&session, "/api/v1/sales-orders").await;
    assert_eq!(
        expired.headers()["www-authenticate"],
        "Bearer realm=\"sales-order-api\", error=\"invalid_token\", \
         error_description=\"the access token expired\""
    );
    expect_error(expired, 401, "TOKEN_EXPIRED").await;

    let forged = Session {
        token: format!("{}x", session.token),
        ..session
    };
    let invalid = app.get(&forged, "/api/v1/sales-orders").await;
    assert_eq!(
        invalid.headers()["www-authenticate"],
        "Bearer realm=\"sales-order-api\", error=\"invalid_token\""
    );
    expect_error(invalid, 401, "TOKEN_INVALID").await;

    // Not the token's fault: the bare challenge, no error code.
    let wrong_secret = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"client_id": "versuni-client-001", "client_secret": "sk_live_wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong_secret.headers()["www-authenticate"],
        "Bearer realm=\"sales-order-api\""
    );
    expect_error(wrong_secret, 401, "INVALID_CREDENTIALS").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_refreshes_within_the_window_and_the_new_one_works() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    app.advance_clock(13 * HOUR);
    let response = app.refresh(&session.token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let fresh = Session {
        partner: &partner,
        token: body["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        claims_of(&fresh.token)["sid"],
        claims_of(&session.token)["sid"],
        "same lineage"
    );
    assert_eq!(app.get(&fresh, "/api/v1/sales-orders").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_expired_longer_than_the_refresh_window_is_refused() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    app.advance_clock(12 * HOUR + 7 * DAY + Duration::from_secs(1));
    expect_error(
        app.refresh(&session.token).await,
        401,
        "REFRESH_WINDOW_EXPIRED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_is_refused_for_a_disabled_partner() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    app.state
        .store
        .set_partner_enabled(&partner.id(), false, app.time())
        .await
        .unwrap();
    expect_error(app.refresh(&session.token).await, 401, "PARTNER_DISABLED").await;
}

/// Gives `partner` a new client secret, as `partner rotate-secret` does.
async fn rotate_secret(app: &TestApp, partner: &Partner) {
    let new_hash =
        sales_order_api::auth::secret::hash(&sales_order_api::config::Secret::new("new")).unwrap();
    app.state
        .store
        .rotate_secret(&partner.id(), &new_hash, app.time())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_and_api_calls_are_refused_after_the_secret_was_rotated() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    rotate_secret(&app, &partner).await;
    expect_error(
        app.get(&session, "/api/v1/sales-orders").await,
        401,
        "TOKEN_REVOKED",
    )
    .await;
    expect_error(app.refresh(&session.token).await, 401, "TOKEN_REVOKED").await;
    expect_error(
        app.login(&partner.client_id, &partner.secret).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_stops_at_the_absolute_lifetime_of_the_login() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let mut token = app.session(&partner).await.token;
    // Refresh every six days: each refresh is inside its window, but the login ages.
    for _ in 0..4 {
        app.advance_clock(6 * DAY);
        let response = app.refresh(&token).await;
        assert_eq!(response.status(), 200);
        token = response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    app.advance_clock(6 * DAY); // 30 days after login
    expect_error(app.refresh(&token).await, 401, "SESSION_EXPIRED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_of_an_already_refreshed_token_revokes_its_whole_lineage() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let first = app.session(&partner).await;
    let response = app.refresh(&first.token).await;
    assert_eq!(response.status(), 200);
    let second = Session {
        partner: &partner,
        token: response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    assert_eq!(app.get(&second, "/api/v1/sales-orders").await.status(), 200);

    // Past the grace window for a lost answer (30 s), a second refresh of
    // the same token is reuse.
    app.advance_clock(Duration::from_secs(31));
    expect_error(app.refresh(&first.token).await, 401, "TOKEN_REUSED").await;

    expect_error(
        app.get(&second, "/api/v1/sales-orders").await,
        401,
        "TOKEN_REVOKED",
    )
    .await;
    expect_error(app.refresh(&second.token).await, 401, "TOKEN_REVOKED").await;
    // A fresh login is unaffected.
    let third = app.session(&partner).await;
    assert_eq!(app.get(&third, "/api/v1/sales-orders").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_racing_refreshes_of_one_token_make_one_new_token() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let attempts = (0..8).map(|_| app.refresh(&session.token));
    let mut tokens = Vec::new();
    for response in futures::future::join_all(attempts).await {
        assert_eq!(response.status(), 200);
        tokens.push(response.json::<Value>().await.unwrap()["token"].clone());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one token, answered eight times");

    // Without a grace window, exactly one succeeds and the rest are reuse.
    let strict = TestApp::spawn_with(|settings| settings.refresh_grace = Duration::ZERO).await;
    let partner = strict
        .register("versuni-client-001", TestKey::vectors())
        .await;
    let session = strict.session(&partner).await;
    strict.advance_clock(Duration::from_secs(1));
    let attempts = (0..8).map(|_| strict.refresh(&session.token));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_whose_answer_was_lost_is_answered_again_with_the_same_token_within_30_seconds() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    // 29 s after the refresh on the server's clock, however slow this run.
    app.state.clock.freeze();
    let first = app.session(&partner).await;
    app.advance_clock(Duration::from_secs(60));
    let lost: Value = app.refresh(&first.token).await.json().await.unwrap();
    // Refreshing does not end the old token: requests in flight still pass.
    assert_eq!(app.get(&first, "/api/v1/sales-orders").await.status(), 200);
    app.advance_clock(Duration::from_secs(29));

    let again = app.refresh(&first.token).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, lost, "the same token and expiry");
    let second = Session {
        partner: &partner,
        token: again["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(app.get(&second, "/api/v1/sales-orders").await.status(), 200);

    // Once the new token was refreshed in turn, the old one is reuse even
    // within the window, and the whole login ends.
    let third: Value = app.refresh(&second.token).await.json().await.unwrap();
    expect_error(app.refresh(&first.token).await, 401, "TOKEN_REUSED").await;
    let third = Session {
        partner: &partner,
        token: third["token"].as_str().unwrap().to_owned(),
    };
    expect_error(
        app.get(&third, "/api/v1/sales-orders").await,
        401,
        "TOKEN_REVOKED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_refresh_repeated_after_the_secret_was_rotated_is_refused_not_answered_with_a_dead_token()
 {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    app.state.clock.freeze(); // within the refresh grace, however slow this run
    let first = app.session(&partner).await;
    assert_eq!(app.refresh(&first.token).await.status(), 200);
    rotate_secret(&app, &partner).await;
    app.advance_clock(Duration::from_secs(5));
    expect_error(app.refresh(&first.token).await, 401, "TOKEN_REVOKED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_with_a_forged_signature_is_refused() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let mut forged = session.token.clone();
    forged.pop();
    forged.push(if session.token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    expect_error(app.refresh(&forged).await, 401, "TOKEN_INVALID").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_ten_failed_logins_in_a_minute_the_client_id_waits_out_the_minute() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let other = app.register("partner-b", TestKey::partner_b()).await;
    for _ in 0..11 {
        expect_error(
            app.login(&partner.client_id, "guess").await,
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    // Throttled: even the right secret is not checked until the window ends.
    let response = app.login(&partner.client_id, &partner.secret).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    expect_error(response, 429, "LOGIN_THROTTLED").await;
    // Another partner behind the same address is not affected.
    assert_eq!(
        app.login(&other.client_id, &other.secret).await.status(),
        200
    );

    app.advance_clock(Duration::from_secs(retry_after));
    assert_eq!(
        app.login(&partner.client_id, &partner.secret)
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_login_is_answered_only_after_the_refusal_delay_so_a_flood_slows_itself() {
    let delay = Duration::from_millis(400);
    let app = TestApp::spawn_with(|settings| {
        settings.login_limits.per_client = 1;
        settings.login_limits.refusal_delay = delay;
    })
    .await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    for _ in 0..2 {
        let response = app.login(&partner.client_id, "guess").await;
        expect_error(response, 401, "INVALID_CREDENTIALS").await;
    }

    let started = std::time::Instant::now();
    let refused = app.login(&partner.client_id, "guess").await;

    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    expect_error(refused, 429, "LOGIN_THROTTLED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_logins_are_throttled_per_forwarded_address() {
    let app = TestApp::spawn_with(|settings| {
        settings.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        settings.login_limits.per_address = 5;
    })
    .await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let login_from = |address: &'static str, client_id: String, secret: String| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("X-Forwarded-For", format!("198.51.100.200, {address}"))
            .json(&serde_json::json!({"client_id": client_id, "client_secret": secret}))
            .send()
    };
    for i in 0..6 {
        let response = login_from("203.0.113.7", format!("guess-{i}"), "x".into())
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let throttled = login_from(
        "203.0.113.7",
        partner.client_id.clone(),
        partner.secret.clone(),
    )
    .await
    .unwrap();
    expect_error(throttled, 429, "LOGIN_THROTTLED").await;
    let elsewhere = login_from(
        "198.51.100.1",
        partner.client_id.clone(),
        partner.secret.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        elsewhere.status(),
        200,
        "another address behind the same proxy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_with_whitespace_is_a_400_that_suggests_the_trailing_newline() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    for secret in [
        format!("{}\n", partner.secret),
        format!(" {}", partner.secret),
        format!("{}\r\n", partner.secret),
    ] {
        let body = expect_error(
            app.login(&partner.client_id, &secret).await,
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(body["error"]["details"][0]["field"], "client_secret");
        let message = body["error"]["details"][0]["message"].as_str().unwrap();
        assert!(message.contains("trailing newline"), "{message}");
        assert!(!body.to_string().contains(&partner.secret), "never echoed");
    }
    // Not counted as failed guesses: eleven in a row leave the login open.
    for _ in 0..11 {
        let whitespace = format!("{}\n", partner.secret);
        assert_eq!(
            app.login(&partner.client_id, &whitespace).await.status(),
            400
        );
    }
    assert_eq!(
        app.login(&partner.client_id, &partner.secret)
            .await
            .status(),
        200
    );
}
