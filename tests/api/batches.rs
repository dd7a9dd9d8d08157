//! Batch submission: many orders in one signed call, one transaction.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const BATCH: &str = "/api/v1/sales-orders/batch";

async fn submit(
    app: &TestApp,
    session: &Session<'_>,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app.signed(session, Method::POST, BATCH).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

fn invalid_order() -> Value {
    let mut body = order_body("PO-BAD");
    body["products"][0]["quantity"] = json!(0);
    body
}

async fn items(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_stores_the_good_orders_and_answers_each_as_a_single_create_would() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let holder = app.create_order(&session, &order_body("PO-HELD")).await;
    let holder: Value = holder.json().await.unwrap();

    let body = json!({"orders": [
        order_body("PO-1"),
        invalid_order(),
        order_body("PO-1"),
        order_body("PO-HELD"),
        order_body("PO-2"),
    ]});
    let answered = items(submit(&app, &session, &body, None).await).await;
    let statuses: Vec<u64> = answered
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 409, 409, 201]);
    let indexes: Vec<u64> = answered
        .iter()
        .map(|i| i["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    // The same error a single create gets.
    let single = expect_error(
        app.create_order(&session, &invalid_order()).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(answered[1]["error"]["code"], "VALIDATION_FAILED");
    assert_eq!(answered[1]["error"]["details"], single["error"]["details"]);
    assert_eq!(answered[2]["error"]["code"], "DUPLICATE_PURCHASE_ORDER");
    assert_eq!(
        answered[2]["error"]["details"][0]["existing_id"], answered[0]["data"]["id"],
        "the second of a repeated number names the first"
    );
    assert_eq!(
        answered[3]["error"]["details"][0]["existing_id"],
        holder["data"]["id"]
    );

    // Stored as a single create stores: readable, numbered, with events.
    let id = answered[4]["data"]["id"].as_str().unwrap();
    let fetched: Value = app
        .get(&session, &format!("/api/v1/sales-orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["data"], answered[4]["data"]);
    assert_eq!(app.rows("sales_orders").await, 3);
    let feed: Value = app
        .get(&session, "/api/v1/events")
        .await
        .json()
        .await
        .unwrap();
    let created: Vec<&Value> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["data"]["order"]["id"])
        .collect();
    assert_eq!(
        created,
        [
            &holder["data"]["id"],
            &answered[0]["data"]["id"],
            &answered[4]["data"]["id"]
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_atomic_batch_stores_every_order_or_none() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;

    let with_duplicate = json!({"atomic": true, "orders": [order_body("PO-1"), order_body("PO-2"), order_body("PO-1")]});
    let refused = expect_error(
        submit(&app, &session, &with_duplicate, None).await,
        409,
        "BATCH_REJECTED",
    )
    .await;
    let details = refused["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0]["index"], 2);
    assert_eq!(details[0]["status"], 409);
    assert_eq!(details[0]["error"]["code"], "DUPLICATE_PURCHASE_ORDER");
    // The earlier order was rolled back with the rest: named by its place.
    assert_eq!(details[0]["error"]["details"][0]["repeats_index"], 0);
    assert!(
        details[0]["error"]["details"][0]
            .get("existing_id")
            .is_none()
    );

    // Every failing order at once, the invalid one and the one that repeats
    // a number, so one fix is enough.
    let with_invalid = json!({"atomic": true, "orders": [order_body("PO-1"), invalid_order(), order_body("PO-1")]});
    let refused = expect_error(
        submit(&app, &session, &with_invalid, None).await,
        409,
        "BATCH_REJECTED",
    )
    .await;
    let details = refused["error"]["details"].as_array().unwrap();
    let failing: Vec<(&Value, &Value)> = details
        .iter()
        .map(|d| (&d["index"], &d["error"]["code"]))
        .collect();
    assert_eq!(
        failing,
        [
            (&json!(1), &json!("VALIDATION_FAILED")),
            (&json!(2), &json!("DUPLICATE_PURCHASE_ORDER"))
        ]
    );
    assert_eq!(app.rows("sales_orders").await, 0);
    assert_eq!(app.rows("order_events").await, 0);

    let good = json!({"atomic": true, "orders": [order_body("PO-1"), order_body("PO-2")]});
    let answered = items(submit(&app, &session, &good, None).await).await;
    assert!(answered.iter().all(|item| item["status"] == 201));
    assert_eq!(app.rows("sales_orders").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_batch_itself_is_checked_and_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let hundred_and_one: Vec<Value> = (0..101).map(|i| order_body(&format!("PO-{i}"))).collect();
    for (body, field) in [
        (json!({}), "orders"),
        (json!({"orders": []}), "orders"),
        (json!({"orders": {}}), "orders"),
        (json!({"orders": hundred_and_one}), "orders"),
        (
            json!({"orders": [order_body("PO-1")], "atomic": "yes"}),
            "atomic",
        ),
        (
            json!({"orders": [order_body("PO-1")], "atomically": true}),
            "atomically",
        ),
        (json!([order_body("PO-1")]), ""),
    ] {
        let refused = expect_error(
            submit(&app, &session, &body, None).await,
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(refused["error"]["details"][0]["field"], field, "{refused}");
    }
    let broken = app
        .signed(&session, Method::POST, BATCH)
        .header("Content-Type", "application/json")
        .body("{\"orders\": [")
        .send()
        .await
        .unwrap();
    expect_error(broken, 400, "INVALID_JSON").await;
    // An order that is not an object is that order's refusal, by its place.
    let answered = items(
        submit(
            &app,
            &session,
            &json!({"orders": ["PO-1", order_body("PO-2")]}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(answered[0]["status"], 400);
    assert_eq!(answered[0]["error"]["details"][0]["field"], "orders[0]");
    assert_eq!(answered[1]["status"], 201);
    // A batch sent to the single create is told where it goes.
    let misrouted = expect_error(
        app.create_order(&session, &json!({"orders": [order_body("PO-3")]}))
            .await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    let details = misrouted["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{misrouted}");
    assert!(
        details[0]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/sales-orders/batch")
    );
    assert_eq!(app.rows("sales_orders").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_idempotency_key_covers_the_whole_batch() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    app.create_order(&session, &order_body("PO-HELD")).await;
    let body = json!({"orders": [order_body("PO-1"), order_body("PO-HELD"), invalid_order()]});
    let first = items(submit(&app, &session, &body, Some("batch-1")).await).await;

    let again = submit(&app, &session, &body, Some("batch-1")).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(items(again).await, first);
    assert_eq!(app.rows("sales_orders").await, 2);

    let other = json!({"orders": [order_body("PO-2")]});
    expect_error(
        submit(&app, &session, &other, Some("batch-1")).await,
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    let single = app
        .signed(&session, Method::POST, "/api/v1/sales-orders")
        .header("Idempotency-Key", "batch-1")
        .json(&order_body("PO-3"))
        .send()
        .await
        .unwrap();
    expect_error(single, 409, "IDEMPOTENCY_KEY_REUSED").await;
    assert_eq!(app.rows("sales_orders").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_signature_covers_the_whole_batch_body() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let body =
        serde_json::to_vec(&json!({"orders": [order_body("PO-1"), order_body("PO-2")]})).unwrap();
    let tampered =
        serde_json::to_vec(&json!({"orders": [order_body("PO-1"), order_body("PO-9")]})).unwrap();
    let refused = app
        .signed_v2(&session, Method::POST, BATCH, &body, tampered)
        .send()
        .await
        .unwrap();
    expect_error(refused, 401, "SIGNATURE_INVALID").await;
    let accepted = app
        .signed_v2(&session, Method::POST, BATCH, &body, body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(items(accepted).await.len(), 2);
}

/// A batch of `orders` orders of `lines` lines each.
fn large_batch(orders: usize, lines: usize) -> Value {
    let products: Vec<Value> = (0..lines)
        .map(|i| {
            json!({"product_code": format!("PRD-{i:05}"), "quantity": "12.5", "uom": "PCS",
                        "unit_price": "150000.25", "notes": "deliver to the back door"})
        })
        .collect();
    let orders: Vec<Value> = (0..orders)
        .map(|i| {
            let mut order = order_body(&format!("PO-{i}"));
            order["products"] = json!(products);
            order
        })
        .collect();
    json!({"orders": orders})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_may_be_larger_than_a_single_create_up_to_its_own_limit() {
    let app = TestApp::spawn_with(|settings| settings.batch_body_limit = 4 * 1024 * 1024).await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    // About 3 MiB: three times a single create's limit.
    let body = large_batch(100, 300);
    assert!(serde_json::to_vec(&body).unwrap().len() > 3 * 1024 * 1024);
    let answered = items(submit(&app, &session, &body, None).await).await;
    assert!(answered.iter().all(|item| item["status"] == 201));
    assert_eq!(app.rows("sales_order_lines").await, 100 * 300);

    let over = large_batch(100, 400);
    assert!(serde_json::to_vec(&over).unwrap().len() > 4 * 1024 * 1024);
    let refused = expect_error(
        submit(&app, &session, &over, None).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert!(
        refused["message"].as_str().unwrap().contains("4194304"),
        "{refused}"
    );
    // A single create keeps its own limit.
    let mut single = order_body("PO-big");
    single["products"] = large_batch(1, 1000)["orders"][0]["products"].clone();
    single["address"] = json!("x".repeat(900));
    let single = serde_json::to_vec(&single).unwrap();
    let padded = [single.as_slice(), &vec![b' '; 1024 * 1024]].concat();
    let response = app
        .signed(&session, Method::POST, "/api/v1/sales-orders")
        .header("Content-Type", "application/json")
        .body(padded)
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_body_is_read_only_for_a_caller_with_a_valid_token() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    // A batch-sized body announced, a little of it sent, the rest never: an
    // answer that comes at once was given without waiting for the body.
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST {BATCH} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer not-a-token\r\n\
         X-CLIENT-ID: {}\r\nX-TIMESTAMP: {}\r\nX-SIGNATURE: c2ln\r\n\
         Content-Type: application/json\r\nContent-Length: 8000000\r\n\r\n{{\"orders\": [",
        partner.client_id,
        app.now()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("TOKEN_INVALID"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_batchs_events_follow_the_partners_numbering_in_the_batchs_order() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    // One event first, so the batch's numbers are shifted from where the
    // numbering stood; a hundred events are several statements on PostgreSQL.
    let first = app.create_order(&session, &order_body("PO-FIRST")).await;
    assert_eq!(first.status(), 201);
    let orders: Vec<Value> = (0..100).map(|i| order_body(&format!("PO-{i}"))).collect();
    let answered = items(submit(&app, &session, &json!({ "orders": orders }), None).await).await;
    assert!(answered.iter().all(|item| item["status"] == 201));
    let last = app.create_order(&session, &order_body("PO-LAST")).await;
    assert_eq!(last.status(), 201);

    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = app
            .get(&session, &format!("/api/v1/events?after={after}&limit=100"))
            .await
            .json()
            .await
            .unwrap();
        let page = page["data"].as_array().unwrap().clone();
        let Some(end) = page.last() else { break };
        after = end["sequence"].as_i64().unwrap();
        seen.extend(page);
    }
    let sequences: Vec<i64> = seen
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=102).collect::<Vec<_>>());
    let ids: Vec<&Value> = seen.iter().map(|e| &e["data"]["order"]["id"]).collect();
    let batch_ids: Vec<&Value> = answered.iter().map(|item| &item["data"]["id"]).collect();
    assert_eq!(ids[1..101], batch_ids[..]);
    assert_eq!(seen[101]["data"]["order"]["purchase_order_no"], "PO-LAST");
}
