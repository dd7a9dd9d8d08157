//! Test mode: sandbox partners, their orders and events marked
//! `livemode: false`, the sandbox status route, short sandbox tokens, and
//! the walls between sandbox and live, tested both ways.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{cli, json_of};
use crate::helpers::*;

const ORDERS: &str = "/api/v1/sales-orders";

fn status_route(id: &str) -> String {
    format!("/api/v1/sandbox/sales-orders/{id}/status")
}

async fn move_order(
    app: &TestApp,
    session: &Session<'_>,
    id: &str,
    body: &Value,
) -> reqwest::Response {
    app.signed(session, Method::POST, &status_route(id))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn create(app: &TestApp, session: &Session<'_>, po: &str) -> Value {
    let response = app.create_order(session, &order_body(po)).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["data"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_partner_gets_a_test_secret_and_its_orders_and_events_say_livemode_false() {
    let app = TestApp::spawn().await;
    let live = app.register("versuni-client-001", TestKey::vectors()).await;
    let test = app
        .register_sandbox("versuni-sandbox", TestKey::partner_b())
        .await;
    assert!(live.secret.starts_with("sk_live_"), "{}", live.secret);
    assert!(test.secret.starts_with("sk_test_"), "{}", test.secret);
    let live_session = app.session(&live).await;
    let test_session = app.session(&test).await;

    let live_order = create(&app, &live_session, "PO-LIVE").await;
    let test_order = create(&app, &test_session, "PO-TEST").await;
    assert_eq!(live_order["livemode"], true);
    assert_eq!(test_order["livemode"], false);
    let read: Value = app
        .get(
            &test_session,
            &format!("{ORDERS}/{}", test_order["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["data"]["livemode"], false);

    let events: Value = app
        .get(&test_session, "/api/v1/events")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["data"][0]["livemode"], false);
    assert_eq!(events["data"][0]["data"]["order"]["livemode"], false);
    let events: Value = app
        .get(&live_session, "/api/v1/events")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["data"][0]["livemode"], true);

    // The operator's views leave the sandbox out unless asked, or named.
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["order", "list", "--json"];
        all.extend_from_slice(args);
        json_of(&cli(&app.database_url, &all))
            .as_array()
            .unwrap()
            .iter()
            .map(|order| order["purchase_order_no"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&[]), ["PO-LIVE"]);
    assert_eq!(listed(&["--include-sandbox"]), ["PO-TEST", "PO-LIVE"]);
    assert_eq!(listed(&["--partner", "versuni-sandbox"]), ["PO-TEST"]);
    let export = |args: &[&str]| -> Vec<(String, String)> {
        let mut all = vec!["order", "export", "--format", "csv"];
        all.extend_from_slice(args);
        let output = cli(&app.database_url, &all).stdout;
        let mut reader = csv::Reader::from_reader(output.as_slice());
        let header = reader.headers().unwrap().clone();
        let column = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (po, livemode) = (column("purchase_order_no"), column("livemode"));
        let mut orders: Vec<(String, String)> = reader
            .records()
            .map(|row| {
                let row = row.unwrap();
                (row[po].to_owned(), row[livemode].to_owned())
            })
            .collect();
        orders.dedup(); // a row per order line
        orders
    };
    let row = |po: &str, livemode: &str| (po.to_owned(), livemode.to_owned());
    assert_eq!(export(&[]), [row("PO-LIVE", "true")]);
    assert_eq!(
        export(&["--include-sandbox"]),
        [row("PO-LIVE", "true"), row("PO-TEST", "false")]
    );
    assert_eq!(
        export(&["--partner", "versuni-sandbox"]),
        [row("PO-TEST", "false")]
    );

    // A batch from the sandbox is test data too.
    let batch = app
        .signed(&test_session, Method::POST, &format!("{ORDERS}/batch"))
        .json(&json!({"orders": [order_body("PO-TEST-B1"), order_body("PO-TEST-B2")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 200);
    let batch: Value = batch.json().await.unwrap();
    assert_eq!(batch["data"].as_array().unwrap().len(), 2, "{batch}");
    for item in batch["data"].as_array().unwrap() {
        assert_eq!(item["data"]["livemode"], false, "{item}");
    }
    assert_eq!(listed(&[]), ["PO-LIVE"]);
    let shown = json_of(&cli(
        &app.database_url,
        &["partner", "show", "versuni-sandbox", "--json"],
    ));
    assert_eq!(shown["sandbox"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_partner_moves_its_order_by_the_operators_rules_with_its_events() {
    let app = TestApp::spawn().await;
    let test = app
        .register_sandbox("versuni-sandbox", TestKey::partner_b())
        .await;
    let session = app.session(&test).await;
    let order = create(&app, &session, "PO-1").await;
    let id = order["id"].as_str().unwrap();

    let accepted = move_order(&app, &session, id, &json!({"status": "accepted"})).await;
    assert_eq!(accepted.status(), 200);
    assert_eq!(accepted.headers()["etag"], "\"2\"");
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(accepted["data"]["status"], "accepted");
    let fulfilled: Value = move_order(
        &app,
        &session,
        id,
        &json!({"status": "fulfilled", "reason": "delivered"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(fulfilled["data"]["status"], "fulfilled");
    assert_eq!(fulfilled["data"]["status_reason"], "delivered");
    // The operator's rules: nothing after fulfilled.
    let body = expect_error(
        move_order(
            &app,
            &session,
            id,
            &json!({"status": "rejected", "reason": "x"}),
        )
        .await,
        409,
        "ILLEGAL_STATUS_CHANGE",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("fulfilled"));

    let events: Value = app
        .get(&session, "/api/v1/events")
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["order.created", "order.accepted", "order.fulfilled"]
    );
    assert_eq!(events["data"][2]["data"]["order"]["status"], "fulfilled");

    // Bad moves name the field.
    let other = create(&app, &session, "PO-2").await;
    let other = other["id"].as_str().unwrap();
    for (body, field) in [
        (json!({"status": "rejected"}), "reason"),
        (json!({"status": "cancelled"}), "status"),
        (json!({"status": "shipped"}), "status"),
        (
            json!({"status": "accepted", "reason": "r".repeat(501)}),
            "reason",
        ),
    ] {
        let error = expect_error(
            move_order(&app, &session, other, &body).await,
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }
    expect_error(
        move_order(
            &app,
            &session,
            other,
            &json!({"status": "accepted", "color": 1}),
        )
        .await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    expect_error(
        move_order(&app, &session, "so_nothing", &json!({"status": "accepted"})).await,
        404,
        "ORDER_NOT_FOUND",
    )
    .await;

    // A rejection, with its reason, event and history.
    let rejected = move_order(
        &app,
        &session,
        other,
        &json!({"status": "rejected", "reason": "unknown site"}),
    )
    .await;
    assert_eq!(rejected.status(), 200);
    let rejected: Value = rejected.json().await.unwrap();
    assert_eq!(rejected["data"]["status"], "rejected");
    assert_eq!(rejected["data"]["status_reason"], "unknown site");
    let events: Value = app
        .get(&session, "/api/v1/events?after=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["data"][1]["type"], "order.rejected", "{events}");
    assert_eq!(events["data"][1]["data"]["order"]["id"], other);

    // The moves are in the order's history, as the sandbox's.
    let history = |id: &str| -> Vec<(Value, Value, Value, Value)> {
        let shown = json_of(&cli(&app.database_url, &["order", "show", id, "--json"]));
        shown["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| {
                let field = |name: &str| event[name].clone();
                (
                    field("actor_name"),
                    field("from"),
                    field("to"),
                    field("reason"),
                )
            })
            .collect()
    };
    assert_eq!(
        history(id),
        [
            (
                json!("versuni-sandbox"),
                Value::Null,
                json!("received"),
                Value::Null
            ),
            (
                json!("sandbox"),
                json!("received"),
                json!("accepted"),
                Value::Null
            ),
            (
                json!("sandbox"),
                json!("accepted"),
                json!("fulfilled"),
                json!("delivered")
            ),
        ]
    );
    assert_eq!(
        history(other)[1],
        (
            json!("sandbox"),
            json!("received"),
            json!("rejected"),
            json!("unknown site")
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_and_live_never_reach_each_other() {
    let app = TestApp::spawn().await;
    let live = app.register("versuni-client-001", TestKey::vectors()).await;
    let test = app
        .register_sandbox("versuni-sandbox", TestKey::partner_b())
        .await;
    let live_session = app.session(&live).await;
    let test_session = app.session(&test).await;
    let live_order = create(&app, &live_session, "PO-1").await;
    let live_id = live_order["id"].as_str().unwrap();

    // A live partner cannot use the sandbox route, even on its own order.
    let body = expect_error(
        move_order(&app, &live_session, live_id, &json!({"status": "accepted"})).await,
        403,
        "SANDBOX_ONLY",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("sandbox"));
    let read: Value = app
        .get(&live_session, &format!("{ORDERS}/{live_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["data"]["status"], "received", "nothing moved");

    // A sandbox partner cannot see or move a live order.
    expect_error(
        move_order(&app, &test_session, live_id, &json!({"status": "accepted"})).await,
        404,
        "ORDER_NOT_FOUND",
    )
    .await;
    expect_error(
        app.get(&test_session, &format!("{ORDERS}/{live_id}")).await,
        404,
        "ORDER_NOT_FOUND",
    )
    .await;
    let listed: Value = app.get(&test_session, ORDERS).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_login_may_ask_for_a_short_token_and_a_live_one_may_not() {
    let app = TestApp::spawn().await;
    let live = app.register("versuni-client-001", TestKey::vectors()).await;
    let test = app
        .register_sandbox("versuni-sandbox", TestKey::partner_b())
        .await;
    let login = async |client_id: &str, secret: &str, ttl: Value| {
        let body = json!({"client_id": client_id, "client_secret": secret, "ttl_seconds": ttl});
        app.post_json("/api/v1/auth/login", &body).await
    };

    // The clock is real time plus what the test advanced, so a second may
    // tick between the login and reading it: bound the expiry from both sides.
    let before = app.now();
    let short: Value = login(&test.client_id, &test.secret, json!(10))
        .await
        .json()
        .await
        .unwrap();
    let after = app.now();
    let expires = short["expired_at"].as_i64().unwrap();
    assert!(
        (before + 10..=after + 10).contains(&expires),
        "expired_at {expires}, logged in between {before} and {after}"
    );
    let session = Session {
        partner: &test,
        token: short["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(app.get(&session, ORDERS).await.status(), 200);
    app.advance_clock(Duration::from_secs(11));
    expect_error(app.get(&session, ORDERS).await, 401, "TOKEN_EXPIRED").await;
    let refreshed: Value = app.refresh(&session.token).await.json().await.unwrap();
    let session = Session {
        partner: &test,
        token: refreshed["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(app.get(&session, ORDERS).await.status(), 200);

    for ttl in [
        json!(9),
        json!(43_201),
        json!("60"),
        json!(1.5),
        Value::Null,
    ] {
        let body = expect_error(
            login(&test.client_id, &test.secret, ttl.clone()).await,
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(body["error"]["details"][0]["field"], "ttl_seconds", "{ttl}");
    }
    let body = expect_error(
        login(&live.client_id, &live.secret, json!(60)).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(
        body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sandbox")
    );
    // A wrong secret hears only that, whatever it asks for.
    expect_error(
        login(&live.client_id, "sk_live_wrong", json!(60)).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}
