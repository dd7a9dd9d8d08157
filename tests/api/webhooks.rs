//! Webhooks: endpoints, and deliveries over real HTTP to a receiver on
//! loopback, signed as Standard Webhooks specifies, retried, redelivered
//! after a restart, and refused where SSRF rules forbid.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use sales_order_api::domain::webhook::WebhookSecret;
use sales_order_api::store::NewEndpoint;
use serde_json::{Value, json};

use crate::cli::{cli, json_of};
use crate::helpers::*;

const ENDPOINTS: &str = "/api/v1/webhook-endpoints";

/// What the receiver answers a delivery with.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    /// No answer for this long, then 200.
    Stall(Duration),
}

/// A delivery as it arrived.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    user_agent: String,
    body: String,
}

/// A webhook receiver on loopback: answers from a script (then 200), and
/// keeps every request it got.
#[derive(Clone)]
struct Receiver {
    address: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: &[Reply]) -> Self {
        let receiver = Self {
            address: "127.0.0.1:0".parse().unwrap(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            received: Arc::default(),
        };
        let handler = {
            let receiver = receiver.clone();
            move |headers: HeaderMap, body: Bytes| {
                let receiver = receiver.clone();
                async move { receiver.handle(headers, body).await }
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            address,
            ..receiver
        }
    }

    async fn handle(&self, headers: HeaderMap, body: Bytes) -> StatusCode {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        self.received.lock().unwrap().push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            user_agent: header("user-agent"),
            body: String::from_utf8(body.to_vec()).unwrap(),
        });
        let reply = self.script.lock().unwrap().pop_front();
        match reply {
            Some(Reply::Status(status)) => StatusCode::from_u16(status).unwrap(),
            Some(Reply::Stall(time)) => {
                tokio::time::sleep(time).await;
                StatusCode::OK
            }
            None => StatusCode::OK,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to `within`) until `count` deliveries arrived.
    async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{count} deliveries expected within {within:?}, got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Checks a delivery's signatures as a receiver would, with `secret`: true
/// when one of them is by it.
fn signed_by(received: &Received, secret: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let message = format!("{}.{}.{}", received.id, received.timestamp, received.body);
    received.signature.split(' ').any(|signature| {
        let encoded = signature.strip_prefix("v1,").unwrap();
        hmac::verify(&key, message.as_bytes(), &STANDARD.decode(encoded).unwrap()).is_ok()
    })
}

async fn insecure_app() -> TestApp {
    TestApp::spawn_with(|settings| settings.webhooks.allow_insecure = true).await
}

async fn create_endpoint(app: &TestApp, session: &Session<'_>, body: &Value) -> reqwest::Response {
    app.signed(session, Method::POST, ENDPOINTS)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn endpoint(app: &TestApp, session: &Session<'_>, url: &str) -> Value {
    let response = create_endpoint(app, session, &json!({"url": url})).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["data"].clone()
}

async fn detail(app: &TestApp, session: &Session<'_>, id: &str) -> Value {
    let response = app.get(session, &format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["data"].clone()
}

async fn order(app: &TestApp, session: &Session<'_>, po: &str) -> Value {
    let response = app.create_order(session, &order_body(po)).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["data"].clone()
}

/// Waits until the endpoint shows `count` attempts.
async fn attempts(app: &TestApp, session: &Session<'_>, id: &str, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let attempts = detail(app, session, id).await["attempts"]
            .as_array()
            .unwrap()
            .clone();
        if attempts.len() >= count {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{count} attempts expected");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_is_delivered_signed_with_the_endpoints_secret_as_standard_webhooks_says() {
    let app = insecure_app().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let receiver = Receiver::start(&[]).await;
    let generation = app.state.store.endpoints_generation();
    let created = endpoint(&app, &session, &receiver.url()).await;
    // The worker, idle while no endpoint was enabled, is told to look again.
    assert_eq!(app.state.store.endpoints_generation(), generation + 1);
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["types"].as_array().unwrap().len(),
        6,
        "all types by default"
    );

    let order = order(&app, &session, "PO-1").await;

    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    let delivery = &received[0];
    let event: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["data"]["order"], order);
    assert_eq!(
        delivery.id,
        event["id"].as_str().unwrap(),
        "webhook-id is the event id"
    );
    let now = app.now();
    let timestamp: i64 = delivery.timestamp.parse().unwrap();
    assert!((now - timestamp).abs() <= 5, "webhook-timestamp is now");
    assert!(delivery.signature.starts_with("v1,"));
    assert!(signed_by(delivery, secret));
    assert!(!signed_by(delivery, WebhookSecret::generate().expose()));
    assert!(delivery.user_agent.starts_with("sales-order-api/"));
    // The body delivered is the event the feed serves.
    let feed: Value = app
        .get(&session, "/api/v1/events")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed["data"][0], event);

    let attempts = attempts(&app, &session, created["id"].as_str().unwrap(), 1).await;
    assert_eq!(attempts[0]["status"], 200);
    assert_eq!(attempts[0]["event_id"], event["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_is_retried_with_the_same_webhook_id_after_a_500_and_after_a_timeout() {
    let app = TestApp::spawn_with(|settings| {
        settings.webhooks.allow_insecure = true;
        settings.webhooks.timeout = Duration::from_millis(500);
    })
    .await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let receiver =
        Receiver::start(&[Reply::Status(500), Reply::Stall(Duration::from_secs(2))]).await;
    let created = endpoint(&app, &session, &receiver.url()).await;
    let id = created["id"].as_str().unwrap();
    order(&app, &session, "PO-1").await;

    let first = attempts(&app, &session, id, 1).await;
    assert_eq!(first[0]["status"], 500);
    // Not before its retry time (about 5 s; the clock is moved, not waited).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1);
    app.advance_clock(Duration::from_secs(6));
    let second = attempts(&app, &session, id, 2).await;
    assert_eq!(second[0]["status"], Value::Null);
    assert_eq!(second[0]["error"], "no answer within 500ms");
    app.advance_clock(Duration::from_secs(6 * 60));
    let third = attempts(&app, &session, id, 3).await;
    assert_eq!(third[0]["status"], 200);

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "one webhook-id"
    );
    assert!(
        received.iter().all(|r| r.body == received[0].body),
        "one body"
    );
    // Delivered: no further attempt however long.
    app.advance_clock(Duration::from_secs(24 * 3600));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_waiting_for_its_retry_is_made_by_the_next_instance_after_a_restart() {
    let mut one = insecure_app().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;
    let receiver = Receiver::start(&[Reply::Status(503)]).await;
    let created = endpoint(&one, &session, &receiver.url()).await;
    order(&one, &session, "PO-1").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    attempts(&one, &session, created["id"].as_str().unwrap(), 1).await;

    one.stop();
    let two = TestApp::start_on(&one, |settings| settings.webhooks.allow_insecure = true).await;
    two.advance_clock(Duration::from_secs(6));

    let received = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(received[0].id, received[1].id);
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_failing_for_five_days_is_disabled_and_can_be_enabled_again() {
    let app = insecure_app().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let receiver = Receiver::start(&[Reply::Status(500); 8]).await;
    let created = endpoint(&app, &session, &receiver.url()).await;
    let id = created["id"].as_str().unwrap();
    order(&app, &session, "PO-1").await;
    attempts(&app, &session, id, 1).await;

    // Four days on, still failing: still enabled. (Tokens last 12 h: each
    // jump of the clock needs a new login.)
    app.advance_clock(Duration::from_secs(4 * 24 * 3600));
    let session = app.session(&partner).await;
    attempts(&app, &session, id, 2).await;
    assert_eq!(detail(&app, &session, id).await["enabled"], true);
    // Past five days of failures: disabled, with the reason and an audit event.
    app.advance_clock(Duration::from_secs(24 * 3600 + 60));
    let session = app.session(&partner).await;
    attempts(&app, &session, id, 3).await;
    let disabled = detail(&app, &session, id).await;
    assert_eq!(disabled["enabled"], false);
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("5 days"),
        "{disabled}"
    );
    within_a_second("the audit event", || async {
        let events = app
            .state
            .store
            .audit_events(
                &partner.id(),
                &sales_order_api::store::AuditQuery::latest(100),
            )
            .await
            .unwrap();
        events
            .iter()
            .any(|e| e.kind.as_str() == "webhook_endpoint_disabled")
    })
    .await;
    // Disabled: nothing more is sent.
    app.advance_clock(Duration::from_secs(24 * 3600));
    let session = app.session(&partner).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 3);

    let response = app
        .signed(&session, Method::POST, &format!("{ENDPOINTS}/{id}/enable"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(detail(&app, &session, id).await["enabled"], true);
    receiver.wait_for(4, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn during_a_rotation_deliveries_carry_signatures_by_the_new_and_the_old_secret() {
    let app = insecure_app().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let receiver = Receiver::start(&[]).await;
    let created = endpoint(&app, &session, &receiver.url()).await;
    let id = created["id"].as_str().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();

    let response = app
        .signed(
            &session,
            Method::POST,
            &format!("{ENDPOINTS}/{id}/rotate-secret"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["data"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    order(&app, &session, "PO-1").await;

    let delivery = receiver.wait_for(1, Duration::from_secs(5)).await[0].clone();
    assert_eq!(delivery.signature.split(' ').count(), 2);
    assert!(signed_by(&delivery, &new) && signed_by(&delivery, &old));
    let (first, _) = delivery.signature.split_once(' ').unwrap();
    let only_first = Received {
        signature: first.to_owned(),
        ..delivery.clone()
    };
    assert!(signed_by(&only_first, &new), "the new secret signs first");

    // A day later the old secret no longer signs.
    app.advance_clock(Duration::from_secs(24 * 3600 + 60));
    let session = app.session(&partner).await;
    order(&app, &session, "PO-2").await;
    let later = receiver.wait_for(2, Duration::from_secs(5)).await[1].clone();
    assert_eq!(later.signature.split(' ').count(), 1);
    assert!(signed_by(&later, &new) && !signed_by(&later, &old));
    // The secret is never shown again.
    let listed: Value = app.get(&session, ENDPOINTS).await.json().await.unwrap();
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
    assert!(
        !detail(&app, &session, id)
            .await
            .to_string()
            .contains("whsec_")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_listed_pinged_filtered_by_type_and_deleted_and_stay_their_partners() {
    let app = insecure_app().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let other = app.register("other-client", TestKey::partner_b()).await;
    let session = app.session(&partner).await;
    let other_session = app.session(&other).await;
    let all = Receiver::start(&[]).await;
    let cancels = Receiver::start(&[]).await;
    let everything = endpoint(&app, &session, &all.url()).await;
    let response = create_endpoint(
        &app,
        &session,
        &json!({"url": cancels.url(), "types": ["order.cancelled"], "description": "cancels"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let only_cancels = response.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(only_cancels["types"], json!(["order.cancelled"]));
    assert_eq!(only_cancels["description"], "cancels");

    let created = order(&app, &session, "PO-1").await;
    let path = format!(
        "/api/v1/sales-orders/{}/cancel",
        created["id"].as_str().unwrap()
    );
    let response = app
        .signed(&session, Method::POST, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    all.wait_for(2, Duration::from_secs(5)).await;
    let got = cancels.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cancels.received().len(), 1);
    assert!(got[0].body.contains("order.cancelled"));

    let id = everything["id"].as_str().unwrap();
    let response = app
        .signed(&session, Method::POST, &format!("{ENDPOINTS}/{id}/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let ping_id = response.json::<Value>().await.unwrap()["data"]["event_id"].clone();
    let received = all.wait_for(3, Duration::from_secs(5)).await;
    let ping: Value = serde_json::from_str(&received[2].body).unwrap();
    assert_eq!(
        (ping["type"].clone(), ping["id"].clone()),
        (json!("ping"), ping_id)
    );
    assert_eq!(
        cancels.received().len(),
        1,
        "a ping goes to its endpoint only"
    );

    let listed: Value = app.get(&session, ENDPOINTS).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let theirs: Value = app
        .get(&other_session, ENDPOINTS)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["data"], json!([]));
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::POST, "/test"),
        (Method::POST, "/rotate-secret"),
        (Method::POST, "/enable"),
    ] {
        let path = format!("{ENDPOINTS}/{id}{suffix}");
        let response = app
            .signed(&other_session, method, &path)
            .send()
            .await
            .unwrap();
        expect_error(response, 404, "WEBHOOK_ENDPOINT_NOT_FOUND").await;
    }

    let response = app
        .signed(&session, Method::DELETE, &format!("{ENDPOINTS}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    expect_error(
        app.get(&session, &format!("{ENDPOINTS}/{id}")).await,
        404,
        "WEBHOOK_ENDPOINT_NOT_FOUND",
    )
    .await;
    order(&app, &session, "PO-2").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(all.received().len(), 3, "nothing after the delete");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_endpoints_get_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let field_of = |body: &Value| {
        body["error"]["details"][0]["field"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    for (body, field, words) in [
        (
            json!({"url": "http://erp.example.com/hook"}),
            "url",
            "https://",
        ),
        (
            json!({"url": "https://localhost/hook"}),
            "url",
            "not a public address",
        ),
        (
            json!({"url": "https://10.0.0.5/hook"}),
            "url",
            "not a public address",
        ),
        (
            json!({"url": "https://169.254.169.254/latest"}),
            "url",
            "not a public address",
        ),
        (
            json!({"url": "https://[::1]/hook"}),
            "url",
            "not a public address",
        ),
        (json!({"url": "not a url"}), "url", "not a URL"),
        (json!({"url": 42}), "url", "string"),
        (json!({}), "url", "required"),
        (
            json!({"url": "https://93.184.216.34/", "types": ["order.deleted"]}),
            "types[0]",
            "order.created",
        ),
        (
            json!({"url": "https://93.184.216.34/", "types": []}),
            "types",
            "at least one",
        ),
        (
            json!({"url": "https://93.184.216.34/", "description": "x".repeat(201)}),
            "description",
            "200",
        ),
        (
            json!({"url": "https://93.184.216.34/", "secret": "mine"}),
            "secret",
            "not a known field",
        ),
        (
            json!({"url": "https://93.184.216.34/", "description": "a\u{0}b"}),
            "description",
            "control characters",
        ),
    ] {
        let body = expect_error(
            create_endpoint(&app, &session, &body).await,
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(field_of(&body), field, "{body}");
        assert!(body.to_string().contains(words), "{words}: {body}");
    }
    let response = app
        .signed(&session, Method::POST, ENDPOINTS)
        .header("Content-Type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "INVALID_JSON").await;

    for n in 0..10 {
        let url = format!("https://93.184.216.34/hook/{n}");
        assert_eq!(
            create_endpoint(&app, &session, &json!({"url": url}))
                .await
                .status(),
            201
        );
    }
    let body = expect_error(
        create_endpoint(&app, &session, &json!({"url": "https://93.184.216.34/11"})).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(body.to_string().contains("10 webhook endpoints"), "{body}");
}

/// An endpoint that got past registration (stored before the rules, or a
/// name that resolved elsewhere then) is still refused at the connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_to_a_private_address_is_refused_when_connecting_and_recorded() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let receiver = Receiver::start(&[]).await;
    let port = receiver.address.port();
    let secret = WebhookSecret::generate();
    let urls = [
        ("we_literal", format!("https://127.0.0.1:{port}/hook")),
        ("we_name", format!("https://localhost:{port}/hook")),
    ];
    for (id, url) in &urls {
        let endpoint = NewEndpoint {
            id,
            client_id: &partner.id(),
            url,
            types: None,
            description: None,
            secret: &secret,
            now: app.state.clock.now(),
        };
        app.state
            .store
            .insert_endpoint(&endpoint, 10)
            .await
            .unwrap()
            .unwrap();
    }
    order(&app, &session, "PO-1").await;

    for (id, _) in &urls {
        let attempts = attempts(&app, &session, id, 1).await;
        assert_eq!(attempts[0]["status"], Value::Null);
        let error = attempts[0]["error"].as_str().unwrap();
        assert!(
            error.contains("not a public address") || error.contains("may not reach"),
            "{id}: {error}"
        );
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the address"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_endpoint_does_not_delay_another_endpoints_deliveries() {
    let app = TestApp::spawn_with(|settings| {
        settings.webhooks.allow_insecure = true;
        settings.webhooks.timeout = Duration::from_secs(10);
    })
    .await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let stalled = Receiver::start(&[Reply::Stall(Duration::from_secs(8)); 20]).await;
    let healthy = Receiver::start(&[]).await;
    endpoint(&app, &session, &stalled.url()).await;
    endpoint(&app, &session, &healthy.url()).await;

    let started = std::time::Instant::now();
    for n in 0..20 {
        order(&app, &session, &format!("PO-{n}")).await;
    }
    healthy.wait_for(20, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        stalled.received().len() <= 4,
        "at most four attempts in flight to one endpoint: {}",
        stalled.received().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_two_instances_each_event_is_delivered_once() {
    let one = insecure_app().await;
    let two = TestApp::start_on(&one, |settings| settings.webhooks.allow_insecure = true).await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;
    let receiver = Receiver::start(&[]).await;
    endpoint(&one, &session, &receiver.url()).await;

    let creates = (0..40).map(|n| {
        let app = if n % 2 == 0 { &one } else { &two };
        let session = &session;
        async move { order(app, session, &format!("PO-{n}")).await }
    });
    futures::future::join_all(creates).await;

    receiver.wait_for(40, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = receiver.received();
    let ids: std::collections::BTreeSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!((received.len(), ids.len()), (40, 40), "each once");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_lists_disables_enables_and_redelivers() {
    let app = insecure_app().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let receiver = Receiver::start(&[]).await;
    let created = endpoint(&app, &session, &receiver.url()).await;
    let id = created["id"].as_str().unwrap();
    order(&app, &session, "PO-1").await;
    let first = receiver.wait_for(1, Duration::from_secs(5)).await[0].clone();
    attempts(&app, &session, id, 1).await;
    let url = app.database_url.clone();

    let listed = json_of(&cli(
        &url,
        &["partner", "webhooks", "versuni-client-001", "--json"],
    ));
    assert_eq!(listed[0]["endpoint"]["id"], id);
    assert_eq!(listed[0]["last_attempt"]["status"], 200);
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
    let text = cli(&url, &["partner", "webhooks", "versuni-client-001"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("HTTP 200"));

    let args = [
        "partner",
        "webhook-disable",
        "versuni-client-001",
        id,
        "--reason",
        "ERP upgrade",
    ];
    json_of(&cli(&url, &[&args[..], &["--json"]].concat()));
    let shown = detail(&app, &session, id).await;
    assert_eq!(
        (shown["enabled"].clone(), shown["disabled_reason"].clone()),
        (json!(false), json!("ERP upgrade"))
    );
    order(&app, &session, "PO-2").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1, "nothing while disabled");
    json_of(&cli(
        &url,
        &[
            "partner",
            "webhook-enable",
            "versuni-client-001",
            id,
            "--json",
        ],
    ));
    receiver.wait_for(2, Duration::from_secs(5)).await;

    let redelivered = json_of(&cli(&url, &["event", "redeliver", &first.id, "--json"]));
    assert_eq!(redelivered["deliveries"], 1);
    let received = receiver.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(received[2].id, first.id);
    assert_eq!(received[2].body, first.body);

    let unknown = cli(&url, &["event", "redeliver", "evt_nope"]);
    assert!(!unknown.status.success());
    let wrong = cli(
        &url,
        &["partner", "webhook-enable", "versuni-client-001", "we_nope"],
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no webhook endpoint"));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_partners_stalled_endpoints_take_only_its_share_of_the_delivery_slots() {
    let app = TestApp::spawn_with(|settings| {
        settings.webhooks.allow_insecure = true;
        settings.webhooks.timeout = Duration::from_secs(10);
        settings.webhooks.concurrency = 8;
        settings.webhooks.per_endpoint = 4;
        settings.webhooks.per_partner = 4;
    })
    .await;
    let slow = app.register("slow-partner", TestKey::vectors()).await;
    let quick = app.register("quick-partner", TestKey::partner_b()).await;
    let slow_session = app.session(&slow).await;
    let quick_session = app.session(&quick).await;
    let script = [Reply::Stall(Duration::from_secs(8)); 20];
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(Receiver::start(&script).await);
    }
    for receiver in &stalled {
        endpoint(&app, &slow_session, &receiver.url()).await;
    }
    let healthy = Receiver::start(&[]).await;
    endpoint(&app, &quick_session, &healthy.url()).await;

    // Without a share per partner, three stalled endpoints at four each
    // would hold all eight slots.
    for n in 0..5 {
        order(&app, &slow_session, &format!("PO-{n}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    for n in 0..5 {
        order(&app, &quick_session, &format!("PO-{n}")).await;
    }
    healthy.wait_for(5, Duration::from_secs(4)).await;
    assert!(started.elapsed() < Duration::from_secs(4));
    let in_flight: usize = stalled.iter().map(|r| r.received().len()).sum();
    assert!(in_flight <= 4, "the slow partner's share is 4: {in_flight}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_partners_own_moves_are_delivered_as_webhooks_marked_test_mode() {
    let app = insecure_app().await;
    let partner = app
        .register_sandbox("versuni-sandbox", TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    let receiver = Receiver::start(&[]).await;
    let created = endpoint(&app, &session, &receiver.url()).await;
    let secret = created["secret"].as_str().unwrap();
    let order = order(&app, &session, "PO-1").await;
    let id = order["id"].as_str().unwrap();
    for status in ["accepted", "fulfilled"] {
        let moved = app
            .signed(
                &session,
                Method::POST,
                &format!("/api/v1/sandbox/sales-orders/{id}/status"),
            )
            .json(&json!({"status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(moved.status(), 200);
    }

    let received = receiver.wait_for(3, Duration::from_secs(5)).await;
    let events: Vec<Value> = received
        .iter()
        .map(|delivery| serde_json::from_str(&delivery.body).unwrap())
        .collect();
    let mut types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        ["order.accepted", "order.created", "order.fulfilled"]
    );
    for (delivery, event) in received.iter().zip(&events) {
        assert!(signed_by(delivery, secret));
        assert_eq!(event["livemode"], false);
        assert_eq!(event["data"]["order"]["livemode"], false);
    }
}
