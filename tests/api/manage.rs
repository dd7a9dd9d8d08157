//! Managing orders: the partner's cancel, the operator's status moves with
//! reasons and history, list filters, and idempotent retries.

use std::time::Duration;

use reqwest::Method;
use sales_order_api::domain::{Actor, OrderStatus};
use sales_order_api::store::{OrderRef, StatusChange, Transition};
use serde_json::{Value, json};

use crate::cli::{cli, json_of};
use crate::helpers::*;

const ORDERS: &str = "/api/v1/sales-orders";

async fn created(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["data"].clone()
}

async fn cancel(app: &TestApp, session: &Session<'_>, id: &str) -> reqwest::Response {
    app.signed(session, Method::POST, &format!("{ORDERS}/{id}/cancel"))
        .send()
        .await
        .unwrap()
}

/// `order set-status` on the real binary; its stderr when it fails.
fn set_status(
    app: &TestApp,
    order: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<(), String> {
    let mut args = vec!["order", "set-status", order, status];
    if let Some(reason) = reason {
        args.extend(["--reason", reason]);
    }
    let output = cli(&app.database_url, &args);
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_received_order_is_cancelled_once_and_then_refused_with_its_status() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let order = created(app.create_order(&session, &order_body("PO-1")).await).await;
    let id = order["id"].as_str().unwrap();
    app.advance_clock(Duration::from_secs(5));

    let response = cancel(&app, &session, id).await;
    assert_eq!(response.status(), 200);
    let cancelled = response.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["status_reason"], "cancelled by the partner");
    assert_eq!(cancelled["created_at"], order["created_at"]);
    assert!(cancelled["updated_at"].as_str() > order["updated_at"].as_str());

    let refused = expect_error(
        cancel(&app, &session, id).await,
        409,
        "ORDER_NOT_CANCELLABLE",
    )
    .await;
    assert_eq!(refused["error"]["details"][0]["status"], "cancelled");
    let read: Value = app
        .get(&session, &format!("{ORDERS}/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["data"], cancelled);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_partners_order_or_an_unknown_id_cannot_be_cancelled() {
    let app = TestApp::spawn().await;
    let a = app.register("partner-a", TestKey::vectors()).await;
    let b = app.register("partner-b", TestKey::partner_b()).await;
    let session_a = app.session(&a).await;
    let session_b = app.session(&b).await;
    let order = created(app.create_order(&session_a, &order_body("PO-1")).await).await;
    let id = order["id"].as_str().unwrap();

    expect_error(cancel(&app, &session_b, id).await, 404, "ORDER_NOT_FOUND").await;
    expect_error(
        cancel(&app, &session_a, "so_unknown").await,
        404,
        "ORDER_NOT_FOUND",
    )
    .await;
    let read: Value = app
        .get(&session_a, &format!("{ORDERS}/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["data"]["status"], "received", "untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_moves_orders_only_as_the_state_machine_allows_and_history_records_each_move()
{
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let order = created(app.create_order(&session, &order_body("PO-1")).await).await;
    let number = order["order_number"].as_str().unwrap();
    let id = order["id"].as_str().unwrap();

    let error = set_status(&app, number, "fulfilled", None).unwrap_err();
    assert!(
        error.contains("is received; it cannot become fulfilled"),
        "{error}"
    );
    let error = set_status(&app, id, "rejected", None).unwrap_err();
    assert!(error.contains("needs --reason"), "{error}");
    set_status(&app, number, "accepted", None).unwrap();
    expect_error(
        cancel(&app, &session, id).await,
        409,
        "ORDER_NOT_CANCELLABLE",
    )
    .await;
    let error = set_status(&app, id, "rejected", Some("too late")).unwrap_err();
    assert!(
        error.contains("is accepted; it cannot become rejected"),
        "{error}"
    );
    set_status(&app, id, "fulfilled", Some("shipped with DHL 123")).unwrap();
    let error = set_status(&app, id, "accepted", None).unwrap_err();
    assert!(error.contains("is fulfilled"), "{error}");
    let error = set_status(&app, "SO-99999999", "accepted", None).unwrap_err();
    assert!(error.contains("no order SO-99999999"), "{error}");

    let shown = json_of(&cli(
        &app.database_url,
        &["order", "show", number, "--json"],
    ));
    assert_eq!(shown["order"]["status"], "fulfilled");
    assert_eq!(shown["order"]["status_reason"], "shipped with DHL 123");
    let moves: Vec<(Value, Value, Value)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["actor"].clone(),
                event["from"].clone(),
                event["to"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (json!("partner"), Value::Null, json!("received")),
            (json!("operator"), json!("received"), json!("accepted")),
            (json!("operator"), json!("accepted"), json!("fulfilled")),
        ]
    );
    assert_eq!(shown["history"][0]["actor_name"], "versuni-client-001");
    assert_eq!(shown["history"][2]["reason"], "shipped with DHL 123");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_partner_sees_the_operators_reason_for_a_rejection() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let order = created(app.create_order(&session, &order_body("PO-1")).await).await;
    let id = order["id"].as_str().unwrap();
    set_status(
        &app,
        id,
        "rejected",
        Some("  customer CUST-001 is on credit hold "),
    )
    .unwrap();

    let read: Value = app
        .get(&session, &format!("{ORDERS}/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["data"]["status"], "rejected");
    assert_eq!(
        read["data"]["status_reason"],
        "customer CUST-001 is on credit hold"
    );
    let refused = expect_error(
        cancel(&app, &session, id).await,
        409,
        "ORDER_NOT_CANCELLABLE",
    )
    .await;
    assert_eq!(refused["error"]["details"][0]["status"], "rejected");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_cancel_racing_an_operator_accept_leaves_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    for round in 0..10 {
        let order = created(
            app.create_order(&session, &order_body(&format!("PO-{round}")))
                .await,
        )
        .await;
        let id = order["id"].as_str().unwrap();
        let accept = app.state.store.change_status(
            OrderRef::operator(id),
            StatusChange {
                to: OrderStatus::Accepted,
                reason: None,
                actor: Actor::Operator,
                actor_name: "ops",
                if_version: None,
            },
            app.state.clock.now(),
        );
        let (cancelled, accepted) = tokio::join!(cancel(&app, &session, id), accept);
        let cancel_won = cancelled.status() == 200;
        let accept_won = matches!(accepted.unwrap(), Transition::Changed(_));
        assert!(cancel_won != accept_won, "round {round}: exactly one wins");
        if !cancel_won {
            expect_error(cancelled, 409, "ORDER_NOT_CANCELLABLE").await;
        }
        let history = app.state.store.history(id).await.unwrap();
        assert_eq!(history.len(), 2, "creation and the one winning move");
        let expected = if cancel_won {
            OrderStatus::Cancelled
        } else {
            OrderStatus::Accepted
        };
        assert_eq!(history[1].to, expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_are_filtered_by_status_and_creation_time() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let first = created(app.create_order(&session, &order_body("PO-1")).await).await;
    app.advance_clock(Duration::from_secs(3600));
    let second = created(app.create_order(&session, &order_body("PO-2")).await).await;
    app.advance_clock(Duration::from_secs(3600));
    let third = created(app.create_order(&session, &order_body("PO-3")).await).await;
    let session = app.session(&partner).await;
    let id = |order: &Value| order["id"].as_str().unwrap().to_owned();
    assert_eq!(cancel(&app, &session, &id(&second)).await.status(), 200);

    let ids = async |path: String| {
        let body: Value = app.get(&session, &path).await.json().await.unwrap();
        body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|order| order["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(format!("{ORDERS}?status=received")).await,
        [id(&third), id(&first)]
    );
    assert_eq!(
        ids(format!("{ORDERS}?status=cancelled")).await,
        [id(&second)]
    );
    let from = second["created_at"].as_str().unwrap();
    let to = third["created_at"].as_str().unwrap();
    assert_eq!(
        ids(format!("{ORDERS}?created_from={from}&created_to={to}")).await,
        [id(&second)],
        "from is inclusive, to exclusive"
    );
    assert_eq!(
        ids(format!("{ORDERS}?created_from={from}&status=received")).await,
        [id(&third)]
    );

    for bad in [
        "status=shipped",
        "created_from=yesterday",
        "created_to=2026-13-01T00:00:00Z",
        "created_from=2026-11-24T10:00:00Z&created_to=2026-11-24T09:00:00Z",
    ] {
        expect_error(
            app.get(&session, &format!("{ORDERS}?{bad}")).await,
            400,
            "INVALID_QUERY",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_with_the_cursor_sees_each_order_once_while_new_orders_arrive() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let mut before = Vec::new();
    for i in 0..5 {
        before.push(
            created(
                app.create_order(&session, &order_body(&format!("PO-{i}")))
                    .await,
            )
            .await["id"]
                .clone(),
        );
    }
    before.reverse();

    let mut seen = Vec::new();
    let mut path = format!("{ORDERS}?limit=2");
    let mut arriving = 0;
    loop {
        let page: Value = app.get(&session, &path).await.json().await.unwrap();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].clone()),
        );
        // New orders keep arriving between pages.
        arriving += 1;
        created(
            app.create_order(&session, &order_body(&format!("PO-NEW-{arriving}")))
                .await,
        )
        .await;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{ORDERS}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen, before,
        "no duplicates, no gaps, none of the newcomers"
    );
}

fn with_key<'a>(
    app: &TestApp,
    session: &Session<'a>,
    key: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    app.signed(session, Method::POST, ORDERS)
        .header("Idempotency-Key", key)
        .json(body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_with_the_same_idempotency_key_and_body_replays_the_first_result() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let body = order_body("PO-1");

    let first = with_key(&app, &session, "key-1", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let again = with_key(&app, &session, "key-1", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["data"], first["data"]);

    let other = order_body("PO-2");
    let conflict = with_key(&app, &session, "key-1", &other)
        .send()
        .await
        .unwrap();
    expect_error(conflict, 409, "IDEMPOTENCY_KEY_REUSED").await;

    let listed: Value = app.get(&session, ORDERS).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_are_per_partner_and_a_refused_request_stores_nothing() {
    let app = TestApp::spawn().await;
    let a = app.register("partner-a", TestKey::vectors()).await;
    let b = app.register("partner-b", TestKey::partner_b()).await;
    let session_a = app.session(&a).await;
    let session_b = app.session(&b).await;

    let mut invalid = order_body("PO-1");
    invalid["products"][0]["quantity"] = json!(0);
    let refused = with_key(&app, &session_a, "shared-key", &invalid)
        .send()
        .await
        .unwrap();
    expect_error(refused, 400, "VALIDATION_FAILED").await;
    let response = with_key(&app, &session_a, "shared-key", &order_body("PO-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        response.headers().get("idempotent-replayed").is_none(),
        "the key was still free"
    );

    let response = with_key(&app, &session_b, "shared-key", &order_body("PO-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        response.headers().get("idempotent-replayed").is_none(),
        "b's own order"
    );

    for bad in ["".to_owned(), "x".repeat(256), "has space".to_owned()] {
        let response = with_key(&app, &session_a, &bad, &order_body("PO-9"))
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "INVALID_IDEMPOTENCY_KEY").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twelve_racing_requests_with_one_idempotency_key_create_one_order() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    // No purchase_order_no: only the key can stop the duplicates.
    let mut body = order_body("unused");
    body["purchase_order_no"] = Value::Null;
    let attempts = (0..12).map(|_| with_key(&app, &session, "retry-storm", &body).send());
    let mut ids = Vec::new();
    let mut fresh = 0;
    for response in futures::future::join_all(attempts).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 201);
        if response.headers().get("idempotent-replayed").is_none() {
            fresh += 1;
        }
        ids.push(response.json::<Value>().await.unwrap()["data"]["id"].clone());
    }
    assert_eq!(fresh, 1);
    assert!(ids.iter().all(|id| *id == ids[0]));
    let listed: Value = app.get(&session, ORDERS).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_are_kept_for_24_hours_then_purged() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let response = with_key(&app, &session, "key-1", &order_body("PO-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    app.advance_clock(Duration::from_secs(23 * 3600));
    assert_eq!(app.state.purge_idempotency_keys().await.unwrap(), 0);
    let session = app.session(&partner).await;
    let response = with_key(&app, &session, "key-1", &order_body("PO-2"))
        .send()
        .await
        .unwrap();
    expect_error(response, 409, "IDEMPOTENCY_KEY_REUSED").await;

    app.advance_clock(Duration::from_secs(2 * 3600));
    assert_eq!(app.state.purge_idempotency_keys().await.unwrap(), 1);
    let response = with_key(&app, &session, "key-1", &order_body("PO-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "a purged key is free again");
    assert!(response.headers().get("idempotent-replayed").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_whose_json_differs_only_in_spacing_and_member_order_is_the_same_request() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let body = order_body("PO-1");
    let first = with_key(&app, &session, "key-1", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);

    // The same members, reversed and pretty-printed, a number written
    // another way (if the example has one) and a string escaped.
    let mut members: Vec<(String, Value)> = body.as_object().unwrap().clone().into_iter().collect();
    members.reverse();
    let mut text = String::from("{\n");
    for (i, (name, value)) in members.iter().enumerate() {
        let value = serde_json::to_string_pretty(value).unwrap();
        let separator = if i + 1 < members.len() { "," } else { "" };
        text.push_str(&format!("  {name:?} :  {value}{separator}\n"));
    }
    text.push('}');
    let text = text.replace("\"PO-1\"", "\"\\u0050O-1\"");
    assert_ne!(text, body.to_string());
    let again = app
        .signed(&session, Method::POST, ORDERS)
        .header("Idempotency-Key", "key-1")
        .header("Content-Type", "application/json")
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201, "{}", again.text().await.unwrap());
    assert_eq!(again.headers()["idempotent-replayed"], "true");

    // A value that differs is another request.
    let changed = text.replace("\\u0050O-1", "PO-9");
    let conflict = app
        .signed(&session, Method::POST, ORDERS)
        .header("Idempotency-Key", "key-1")
        .header("Content-Type", "application/json")
        .body(changed)
        .send()
        .await
        .unwrap();
    expect_error(conflict, 409, "IDEMPOTENCY_KEY_REUSED").await;
    let listed: Value = app.get(&session, ORDERS).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}
