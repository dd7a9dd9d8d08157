//! The activity audit: what happened to a partner's access, when, from where,
//! under which request id, and why; never a secret.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::cli::{cli, create_partner, json_of};
use crate::helpers::*;

/// `partner activity ID --json`, polled until it holds `count` events (they
/// are written in the background, a moment after the response).
async fn activity(app: &TestApp, client_id: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = json_of(&cli(
            &app.database_url,
            &["partner", "activity", client_id, "--json"],
        ));
        let events = events.as_array().unwrap().clone();
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_refreshes_refusals_and_operator_changes_are_recorded_without_secrets() {
    // No grace for a lost refresh answer: the second refresh is reuse at once.
    let app = TestApp::spawn_with(|settings| settings.refresh_grace = Duration::ZERO).await;
    let created = create_partner(
        &app.database_url,
        "versuni-client-001",
        "vectors/published-sample-public-key.pem",
    );
    let partner = Partner {
        client_id: "versuni-client-001".into(),
        secret: created["client_secret"].as_str().unwrap().to_owned(),
        key: TestKey::vectors(),
    };
    expect_error(
        app.login(&partner.client_id, "guess").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let session = app.session(&partner).await;
    let refreshed = app.refresh(&session.token).await;
    assert_eq!(refreshed.status(), 200);
    let new_token = refreshed.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_error(app.refresh(&session.token).await, 401, "TOKEN_REUSED").await;
    let forged = "AAAA".repeat(86);
    let response = app
        .with_headers(
            &Session {
                partner: &partner,
                token: app.session(&partner).await.token,
            },
            Method::GET,
            "/api/v1/sales-orders",
            "versuni-client-001",
            &app.now().to_string(),
            Some(forged.clone()),
        )
        .send()
        .await
        .unwrap();
    let refused_request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    expect_error(response, 401, "SIGNATURE_INVALID").await;
    assert!(
        cli(
            &app.database_url,
            &["partner", "disable", "versuni-client-001"]
        )
        .status
        .success()
    );

    let events = activity(&app, "versuni-client-001", 8).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "partner_disabled",
            "signature_failed",
            "login_succeeded",
            "token_reuse_detected",
            "token_refreshed",
            "login_succeeded",
            "login_failed",
            "partner_created",
        ],
        "newest first"
    );
    let failed_signature = &events[1];
    assert_eq!(failed_signature["code"], "SIGNATURE_INVALID");
    assert_eq!(failed_signature["request_id"], refused_request_id);
    assert_eq!(failed_signature["source"], "127.0.0.1");
    assert!(
        failed_signature["reason"]
            .as_str()
            .unwrap()
            .contains("X-SIGNATURE decodes to 258 bytes"),
        "the mistake recognised: {failed_signature}"
    );
    assert!(
        events[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("operator:")
    );
    assert_eq!(events[6]["code"], "INVALID_CREDENTIALS");

    let text = serde_json::to_string(&events).unwrap();
    for secret in [&partner.secret, &session.token, &new_token, &forged] {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked into the audit"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_events_are_purged_after_their_retention() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    app.session(&partner).await;
    assert_eq!(activity(&app, "versuni-client-001", 1).await.len(), 1);
    app.advance_clock(Duration::from_secs(89 * 24 * 3600));
    assert_eq!(app.state.purge_audit_events().await.unwrap(), 0);
    app.advance_clock(Duration::from_secs(2 * 24 * 3600));
    assert_eq!(app.state.purge_audit_events().await.unwrap(), 1);
    assert!(activity(&app, "versuni-client-001", 0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_recorded_once_when_it_starts_not_per_refused_request() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    for _ in 0..15 {
        app.login(&partner.client_id, "guess").await;
    }
    let events = activity(&app, "versuni-client-001", 12).await;
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("login_failed"), 11);
    assert_eq!(count("login_throttled"), 1);
    assert_eq!(
        events.len(),
        12,
        "the four 429s are counted in metrics, not stored"
    );
    let throttled = events
        .iter()
        .find(|e| e["kind"] == "login_throttled")
        .unwrap();
    assert_eq!(throttled["source"], "127.0.0.1");
    assert!(throttled["request_id"].is_string());
}

/// `GET /api/v1/activity` as the partner reads it, polled until it holds
/// `count` events (written a moment after the answers they record).
async fn own_activity(
    app: &TestApp,
    session: &Session<'_>,
    query: &str,
    count: usize,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = app.get(session, &format!("/api/v1/activity{query}")).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let events = body["data"].as_array().unwrap().clone();
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_reads_its_own_activity_finds_one_request_by_its_id_and_never_anothers() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let other = app.register("partner-b", TestKey::partner_b()).await;
    let session = app.session(&partner).await;
    let other_session = app.session(&other).await;
    // A refused request, with the id its answer carries.
    let refused = app
        .with_headers(
            &session,
            Method::GET,
            "/api/v1/sales-orders",
            &partner.client_id,
            &app.now().to_string(),
            Some("AAAA".to_owned()),
        )
        .header("X-Request-Id", "my-request-42")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-request-id"], "my-request-42");
    let output = cli(
        &app.database_url,
        &["partner", "set", "versuni-client-001", "--rate-limit", "50"],
    );
    assert!(output.status.success());

    // Login, the refused signature and the operator's change, newest first.
    let events = own_activity(&app, &session, "", 3).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["settings_changed", "signature_failed", "login_succeeded"],
        "{events:?}"
    );
    assert_eq!(events[0]["actor"], "operator", "no operator's name");
    assert_eq!(events[1]["code"], "SIGNATURE_INVALID");
    assert_eq!(events[1]["request_id"], "my-request-42");
    assert_eq!(events[2]["actor"], "partner");
    assert!(events[0].get("client_id").is_none());

    let one = own_activity(&app, &session, "?request_id=my-request-42", 1).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["kind"], "signature_failed");
    let operator_view = json_of(&cli(
        &app.database_url,
        &[
            "partner",
            "activity",
            "versuni-client-001",
            "--request-id",
            "my-request-42",
            "--json",
        ],
    ));
    assert_eq!(operator_view.as_array().unwrap().len(), 1);
    let since = events[1]["at"].as_str().unwrap();
    let newer = own_activity(&app, &session, &format!("?since={since}&limit=5"), 2).await;
    assert_eq!(newer.len(), 2);
    assert_eq!(own_activity(&app, &session, "?limit=1", 1).await.len(), 1);

    // The other partner sees its login only.
    let theirs = own_activity(&app, &other_session, "", 1).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["kind"], "login_succeeded");

    for (query, field) in [
        ("?since=yesterday", "since"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?request_id=", "request_id"),
        ("?client_id=partner-b", "client_id"),
    ] {
        let body = expect_error(
            app.get(&session, &format!("/api/v1/activity{query}")).await,
            400,
            "INVALID_QUERY",
        )
        .await;
        assert_eq!(body["error"]["details"][0]["field"], field, "{query}");
    }
}
