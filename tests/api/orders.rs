//! Creating and reading orders.

use serde_json::{Value, json};

use crate::helpers::*;

const ORDERS: &str = "/api/v1/sales-orders";

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_order_is_created_with_exact_amounts_and_read_back() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let mut body = order_body("PO-2025-00001");
    body["products"][1] = json!({"product_code": "PRD-002", "quantity": 3, "unit_price": "0.1"});
    let response = app.create_order(&session, &body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["message"], "Sales order created successfully");
    let order = &created["data"];
    assert!(order["id"].as_str().unwrap().starts_with("so_"));
    assert_eq!(order["order_number"], "SO-00000001");
    assert_eq!(order["status"], "received");
    assert_eq!(order["client_id"], "versuni-client-001");
    assert_eq!(order["products"][0]["line_no"], 1);
    // 2 × 150000.5 and 3 × 0.1, compared as JSON text: no binary floating point.
    let text = serde_json::to_string(order).unwrap();
    assert!(text.contains(r#""line_amount":300001"#), "{text}");
    assert!(text.contains(r#""line_amount":0.3"#), "{text}");
    assert!(text.contains(r#""total_amount":300001.3"#), "{text}");

    let fetched: Value = app
        .get(
            &session,
            &format!("{ORDERS}/{}", order["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&fetched["data"], order);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_without_prices_has_no_total() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let mut body = order_body("PO-1");
    body["products"] = json!([{"product_code": "P", "quantity": 1}]);
    let created: Value = app
        .create_order(&session, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["data"]["total_amount"], Value::Null);
    assert_eq!(created["data"]["products"][0]["line_amount"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_offending_field_is_listed_in_one_answer() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let body = json!({
        "customer_code": "  ", "site_code": "S", "address": "A", "sales_name": "N",
        "purchase_order_number": "typo", "status": "accepted",
        "products": [{"product_code": "P", "quantity": 0}, {"product_code": "Q", "quantity": 1, "unit_price": 1.00001}]
    });
    let error = expect_error(
        app.create_order(&session, &body).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    let fields: Vec<&str> = error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "purchase_order_number",
            "status",
            "customer_code",
            "products[0].quantity",
            "products[1].unit_price"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_purchase_order_number_is_refused_naming_the_existing_order() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let first: Value = app
        .create_order(&session, &order_body("PO-7"))
        .await
        .json()
        .await
        .unwrap();
    let error = expect_error(
        app.create_order(&session, &order_body("PO-7")).await,
        409,
        "DUPLICATE_PURCHASE_ORDER",
    )
    .await;
    assert_eq!(
        error["error"]["details"][0]["existing_id"],
        first["data"]["id"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_partners_may_use_the_same_purchase_order_number() {
    let app = TestApp::spawn().await;
    let a = app.register("partner-a", TestKey::vectors()).await;
    let b = app.register("partner-b", TestKey::partner_b()).await;
    assert_eq!(
        app.create_order(&app.session(&a).await, &order_body("PO-1"))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.create_order(&app.session(&b).await, &order_body("PO-1"))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_two_racing_creates_with_one_purchase_order_number_create_exactly_one_order() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let body = order_body("PO-RACE");
    let responses =
        futures::future::join_all((0..32).map(|_| app.create_order(&session, &body))).await;
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            201 => created.push(response.json::<Value>().await.unwrap()["data"]["id"].clone()),
            409 => existing.push(
                response.json::<Value>().await.unwrap()["error"]["details"][0]["existing_id"]
                    .clone(),
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created.len(), 1);
    assert_eq!(existing.len(), 31);
    assert!(existing.iter().all(|id| *id == created[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_two_concurrent_writers_all_commit_without_lock_errors() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let bodies: Vec<Value> = (0..32).map(|i| order_body(&format!("PO-{i}"))).collect();
    let responses =
        futures::future::join_all(bodies.iter().map(|body| app.create_order(&session, body))).await;
    assert!(responses.iter().all(|r| r.status() == 201));
    // Committed: a separate connection to the same database sees all 32.
    let store = sales_order_api::store::Store::connect(
        &sales_order_api::config::DatabaseUrl::new(&app.database_url),
        1,
    )
    .await
    .unwrap();
    let page = store
        .orders(&sales_order_api::store::OrderQuery {
            client_id: Some(client("versuni-client-001")),
            limit: 200,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.orders.len(), 32);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_partners_order_is_not_found() {
    let app = TestApp::spawn().await;
    let a = app.register("partner-a", TestKey::vectors()).await;
    let b = app.register("partner-b", TestKey::partner_b()).await;
    let created: Value = app
        .create_order(&app.session(&a).await, &order_body("PO-1"))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("{ORDERS}/{}", created["data"]["id"].as_str().unwrap());
    expect_error(
        app.get(&app.session(&b).await, &path).await,
        404,
        "ORDER_NOT_FOUND",
    )
    .await;
    expect_error(
        app.get(&app.session(&a).await, &format!("{ORDERS}/so_nope"))
            .await,
        404,
        "ORDER_NOT_FOUND",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_pages_newest_first_through_the_cursor_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    for i in 0..5 {
        assert_eq!(
            app.create_order(&session, &order_body(&format!("PO-{i}")))
                .await
                .status(),
            201
        );
    }
    let mut seen = Vec::new();
    let mut path = format!("{ORDERS}?limit=2");
    loop {
        let page: Value = app.get(&session, &path).await.json().await.unwrap();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["purchase_order_no"].as_str().unwrap().to_owned()),
        );
        if seen.len() == 2 {
            // An order arriving mid-listing must not shift the later pages.
            app.create_order(&session, &order_body("PO-late")).await;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{ORDERS}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["PO-4", "PO-3", "PO-2", "PO-1", "PO-0"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_filters_by_purchase_order_number() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    for po in ["PO-A", "PO-B"] {
        app.create_order(&session, &order_body(po)).await;
    }
    let page: Value = app
        .get(&session, &format!("{ORDERS}?purchase_order_no=PO-B"))
        .await
        .json()
        .await
        .unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["purchase_order_no"], "PO-B");
    assert_eq!(page["next_cursor"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_list_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    for query in [
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=bogus",
        "colour=red",
    ] {
        expect_error(
            app.get(&session, &format!("{ORDERS}?{query}")).await,
            400,
            "INVALID_QUERY",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_or_repeated_query_parameter_is_named_in_the_envelopes_words() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;

    let body = expect_error(
        app.get(&session, &format!("{ORDERS}?colour=red&limit=5&limit=6"))
            .await,
        400,
        "INVALID_QUERY",
    )
    .await;

    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{body}");
    assert_eq!(details[0]["field"], "colour");
    let message = details[0]["message"].as_str().unwrap();
    assert!(
        message.contains("not a parameter") && message.contains("purchase_order_no"),
        "{message}"
    );
    assert_eq!(details[1]["field"], "limit");
    assert!(details[1]["message"].as_str().unwrap().contains("twice"));
    // No framework wording leaks through.
    assert!(!body.to_string().contains("deserialize"), "{body}");
    let body = expect_error(
        app.get(&session, "/api/v1/events?since=1").await,
        400,
        "INVALID_QUERY",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "since");
    assert!(
        body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("after, limit, wait")
    );
}
