//! Text that looks the same must be the same: order text is stored in NFC,
//! and codes refuse the invisible formatting characters (Unicode category Cf)
//! that make two codes look alike yet differ.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_purchase_order_number_and_its_decomposed_twin_are_one_purchase_order() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    // "PO-Å1": Å as one code point (NFC) and as A + combining ring (NFD).
    let (composed, decomposed) = ("PO-\u{c5}1", "PO-A\u{30a}1");
    let first = app.create_order(&session, &order_body(composed)).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let error = expect_error(
        app.create_order(&session, &order_body(decomposed)).await,
        409,
        "DUPLICATE_PURCHASE_ORDER",
    )
    .await;
    assert_eq!(
        error["error"]["details"][0]["existing_id"],
        first["data"]["id"]
    );
    // Looking it up by the decomposed form finds it too.
    let page: Value = app
        .get(
            &session,
            "/api/v1/sales-orders?purchase_order_no=PO-A%CC%8A1",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["id"], first["data"]["id"]);

    // The other way round: the decomposed form is stored composed.
    let (composed, decomposed) = ("PO-\u{c5}2", "PO-A\u{30a}2");
    let second = app.create_order(&session, &order_body(decomposed)).await;
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["data"]["purchase_order_no"], composed);
    expect_error(
        app.create_order(&session, &order_body(composed)).await,
        409,
        "DUPLICATE_PURCHASE_ORDER",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invisible_formatting_characters_in_codes_are_refused_naming_the_character() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    assert_eq!(
        app.create_order(&session, &order_body("PO-1"))
            .await
            .status(),
        201
    );
    // Zero-width space, right-to-left override, left-to-right isolate, byte
    // order mark, soft hyphen and an invisible tag letter (outside the BMP).
    let mut body = order_body("PO-1\u{200b}");
    body["customer_code"] = json!("CUST\u{202e}-001");
    body["site_code"] = json!("\u{2066}SITE-001");
    body["products"][0]["product_code"] = json!("PRD\u{feff}-001");
    body["products"][0]["uom"] = json!("PC\u{ad}S");
    body["products"][1]["product_code"] = json!("PRD-002\u{e0041}");
    let error = expect_error(
        app.create_order(&session, &body).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    let details: Vec<(String, String)> = error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().to_owned(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("customer_code", "U+202E"),
        ("site_code", "U+2066"),
        ("purchase_order_no", "U+200B"),
        ("products[0].product_code", "U+FEFF"),
        ("products[0].uom", "U+00AD"),
        ("products[1].product_code", "U+E0041"),
    ];
    assert_eq!(details.len(), expected.len(), "{details:?}");
    for ((field, message), (expected_field, character)) in details.iter().zip(expected) {
        assert_eq!(field, expected_field);
        assert_eq!(
            message,
            &format!("must not contain invisible formatting characters ({character})")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn free_text_is_stored_in_nfc_and_keeps_the_joiners_its_scripts_need() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let mut body = order_body("PO-1");
    // Persian needs the zero-width non-joiner (a Cf character) to be spelled right.
    body["sales_name"] = json!("\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}");
    body["address"] = json!("Cafe\u{301} de Flore\nParis");
    body["products"][0]["notes"] = json!("cre\u{300}me bru\u{302}le\u{301}e");
    let response = app.create_order(&session, &body).await;
    assert_eq!(response.status(), 201);
    let order = &response.json::<Value>().await.unwrap()["data"];
    assert_eq!(order["sales_name"], body["sales_name"]);
    assert_eq!(order["address"], "Caf\u{e9} de Flore\nParis");
    assert_eq!(order["products"][0]["notes"], "cr\u{e8}me br\u{fb}l\u{e9}e");
}
