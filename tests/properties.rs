//! Property tests: the parsers that read untrusted input (order bodies,
//! timestamps, signatures, public keys) return an answer for any input and
//! never panic. Run in `cargo test`; bounded, deterministic per seed.

use proptest::prelude::*;
use sales_order_api::auth::{signature, timestamp};
use sales_order_api::domain::PublicKey;
use serde_json::{Value, json};

fn valid_order() -> Value {
    json!({
        "customer_code": "CUST-001",
        "site_code": "SITE-001",
        "sales_name": "John Doe",
        "address": "Jl. Sudirman No. 1, Jakarta",
        "purchase_order_no": "PO-1",
        "products": [
            {"product_code": "PRD-001", "quantity": 2, "uom": "PCS", "unit_price": 150000.5},
            {"product_code": "PRD-002", "quantity": "0.5", "unit_price": "10"}
        ]
    })
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,20}".prop_map(Value::from),
        "-?[0-9]{1,30}(\\.[0-9]{0,30})?(e-?[0-9]{1,4})?".prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::hash_map("[a-z_]{1,12}", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A valid order with one field (top level or in a line) replaced by anything.
fn mutated_order() -> impl Strategy<Value = Value> {
    let fields = [
        "customer_code",
        "site_code",
        "sales_name",
        "address",
        "purchase_order_no",
        "products",
        "product_code",
        "quantity",
        "uom",
        "unit_price",
        "notes",
        "id",
    ];
    (
        prop::sample::select(fields.to_vec()),
        any_json(),
        any::<bool>(),
    )
        .prop_map(|(field, value, in_line)| {
            let mut order = valid_order();
            if in_line {
                order["products"][0][field] = value;
            } else {
                order[field] = value;
            }
            order
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_as_an_order_body_get_an_answer(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = sales_order_api::http::order_body::parse(&bytes, &Default::default());
    }

    #[test]
    fn any_json_as_an_order_body_gets_an_answer(value in any_json()) {
        let _ = sales_order_api::http::order_body::parse(value.to_string().as_bytes(), &Default::default());
    }

    #[test]
    fn a_mutated_order_is_either_valid_with_exact_amounts_or_names_its_fields(order in mutated_order()) {
        match sales_order_api::http::order_body::parse(order.to_string().as_bytes(), &Default::default()) {
            Ok(parsed) => {
                for line in &parsed.products {
                    if let (Some(amount), Some(price)) = (line.line_amount(), &line.unit_price) {
                        prop_assert_eq!(amount, line.quantity.get().times(price.get()));
                    }
                }
            }
            Err(sales_order_api::http::order_body::OrderBodyError::Invalid(fields)) => {
                prop_assert!(!fields.is_empty());
            }
            Err(sales_order_api::http::order_body::OrderBodyError::Syntax(message)) => {
                prop_assert!(!message.is_empty());
            }
        }
    }

    #[test]
    fn any_timestamp_header_gets_an_answer(text in prop_oneof![".{0,40}", "[0-9]{0,25}", "-?[0-9]{1,6}-[0-9]{2}-[0-9]{2}T[0-9:.]{0,20}([+-][0-9:]{0,6}|Z)?"]) {
        let _ = timestamp::parse(&text);
        let _ = timestamp::check_window(&text, time::OffsetDateTime::now_utc(), std::time::Duration::from_secs(300));
    }

    #[test]
    fn any_signature_header_gets_an_answer(text in prop_oneof![".{0,400}", "[A-Za-z0-9+/=_-]{0,400}"]) {
        let _ = signature::decode(&text);
        let key = PublicKey::from_pem(include_bytes!("fixtures/vectors/published-sample-public-key.pem")).unwrap();
        prop_assert!(signature::verify(&signature::parse_keys([key.spki_der()]), "client|1", &text).is_err());
    }

    #[test]
    fn any_public_key_file_gets_an_answer(bytes in prop::collection::vec(any::<u8>(), 0..600), body in "[A-Za-z0-9+/=\n]{0,600}") {
        let _ = PublicKey::from_pem(&bytes);
        let _ = PublicKey::from_der(&bytes);
        for tag in ["PUBLIC KEY", "RSA PUBLIC KEY", "PRIVATE KEY", "CERTIFICATE"] {
            let pem = format!("-----BEGIN {tag}-----\n{body}\n-----END {tag}-----\n");
            prop_assert!(PublicKey::from_pem(pem.as_bytes()).is_err() || tag.contains("PUBLIC"));
        }
    }
}
