//! Request and response examples for every operation of the OpenAPI
//! document, so `/docs` shows a partner what each call sends and gets back.
//!
//! They are made by the code that makes the real answers: orders by the
//! domain's parser and serialiser, errors by [`ApiError`]'s own code, message
//! and details. An example therefore cannot drift from what the server says.

use serde_json::{Value, json};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, OpenApi, RefOr};

use super::error::ApiError;
use super::error::FieldError;
use super::events;
use super::extract::JsonBody;
use super::order_body::{self, OrderBodyError};
use super::orders::parse_list_params;
use crate::auth::AuthError;
use crate::auth::diagnosis::{Diagnosis, KeyTried, Mistake};
use crate::domain::{Event, EventType, OrderStatus};

const CLIENT_ID: &str = "versuni-client-001";
const ORDER_ID: &str = "so_019ab5f3c2a47e0b6d4c1a8e5f7a9b0c";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjbGllbnRfaWQiOiJ2ZXJzdW5pLWNsaWVudC0wMDEifQ.c2lnbmF0dXJl";
const ENDPOINT_ID: &str = "we_8c1f0e2d9b7a4c3e5f6a7b8c9d0e1f2a";
const EVENT_ID: &str = "evt_4b1d7e0c9a2f4e8b6c3d5a7f9e1b2c3d";
const CREATED_AT: &str = "2026-11-24T08:27:49.024Z";

/// The create body every example uses.
fn order_request() -> Value {
    json!({
        "customer_code": "CUST-001",
        "site_code": "SITE-001",
        "sales_name": "John Doe",
        "address": "Jl. Sudirman No. 1, Jakarta",
        "purchase_order_no": "PO-2026-00042",
        "products": [
            {"product_code": "PRD-001", "quantity": 2, "uom": "PCS", "unit_price": "150000.50"},
            {"product_code": "PRD-002", "quantity": "1.5", "uom": "KG", "notes": "price on delivery"}
        ]
    })
}

/// The order as the server returns it, through the same parser and serialiser.
fn order(status: OrderStatus) -> Value {
    let parsed = order_body::parse(order_request().to_string().as_bytes(), &Default::default())
        .expect("the example order is valid");
    let mut order =
        serde_json::to_value(parsed.received(ORDER_ID.into(), 42, CLIENT_ID, CREATED_AT.into()))
            .expect("an order serialises");
    order["status"] = json!(status.as_str());
    order
}

/// Two entries of a partner's activity, as the route makes them.
fn activity() -> Value {
    use crate::domain::AuditKind;
    let entry = |at: &str, kind, code: Option<&str>, reason: Option<&str>, request_id: &str| {
        super::activity::ActivityEvent::from(crate::store::AuditEvent {
            at: time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .expect("an example time"),
            client_id: Some(CLIENT_ID.into()),
            kind,
            code: code.map(Into::into),
            reason: reason.map(Into::into),
            source: Some("203.0.113.7".into()),
            request_id: Some(request_id.into()),
            actor: "partner".into(),
        })
    };
    json!([
        entry(
            "2026-11-24T08:29:03.518Z",
            AuditKind::SignatureFailed,
            Some("SIGNATURE_INVALID"),
            Some("X-SIGNATURE does not verify against any active public key of this partner"),
            "0f9c2a4e-7b1d-4c3e-8a5f-6d2b9e1c7a40",
        ),
        entry(
            "2026-11-24T08:27:48.902Z",
            AuditKind::LoginSucceeded,
            None,
            None,
            "4c6f2a9e-1b7d-4e3a-9f0c-8d5b2e7a1c34",
        ),
    ])
}

/// An event as the server returns it: the example order, accepted.
fn event() -> Value {
    let order = order(OrderStatus::Accepted);
    let data =
        serde_json::value::to_raw_value(&json!({"order": order})).expect("an order serialises");
    serde_json::to_value(Event {
        id: EVENT_ID.into(),
        kind: EventType::OrderAccepted,
        sequence: 42,
        created_at: CREATED_AT.into(),
        livemode: true,
        data,
    })
    .expect("an event serialises")
}

/// A webhook endpoint as the server returns it; the secret only where shown.
fn endpoint(with_secret: bool) -> Value {
    let mut endpoint = json!({
        "id": ENDPOINT_ID,
        "url": "https://erp.example.com/hooks/sales-orders",
        "types": ["order.accepted", "order.rejected", "order.fulfilled"],
        "description": "ERP order status sync",
        "enabled": true,
        "disabled_reason": null,
        "created_at": CREATED_AT,
    });
    if with_secret {
        endpoint["secret"] = json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }
    endpoint
}

/// One sample of each error a partner can meet on `path`, with realistic
/// contents: bad bodies go through the parser that route uses.
fn errors(path: &str) -> Vec<ApiError> {
    let auth_route = path.starts_with("/api/v1/auth/");
    let refresh_route = path == "/api/v1/auth/refresh";
    let webhook_route = path.starts_with("/api/v1/webhook-endpoints");
    let batch_route = path == "/api/v1/sales-orders/batch";
    let invalid_body = |body: &str| {
        if webhook_route {
            return match serde_json::from_str::<Value>(body) {
                Err(error) => {
                    ApiError::InvalidJson(format!("request body is not valid JSON: {error}"))
                }
                Ok(_) => ApiError::Validation(vec![
                    FieldError::new(
                        "url",
                        "host hooks.internal resolves to 10.0.0.12, which is not a public address",
                    ),
                    FieldError::new(
                        "types[0]",
                        format!(
                            "must be one of {}",
                            EventType::ALL.map(EventType::as_str).join(", ")
                        ),
                    ),
                ]),
            };
        }
        if auth_route {
            let body = JsonBody(body.to_owned().into_bytes().into());
            let read = if refresh_route {
                super::auth::refresh_fields(&body).map(|_| ())
            } else {
                super::auth::login_fields(&body).map(|_| ())
            };
            return read.expect_err("the example body is invalid");
        }
        if batch_route {
            return super::order_batch::parse_batch(body.as_bytes())
                .map(|_| ())
                .expect_err("the example body is invalid");
        }
        match order_body::parse(body.as_bytes(), &Default::default()) {
            Err(OrderBodyError::Syntax(message)) => ApiError::InvalidJson(message),
            Err(OrderBodyError::Invalid(fields)) => ApiError::Validation(fields),
            Ok(_) => unreachable!("the example body is invalid"),
        }
    };
    let invalid_fields = if refresh_route {
        r#"{"refresh_token": "…"}"#
    } else if auth_route {
        r#"{"client_id": "versuni-client-001", "clientSecret": "…"}"#
    } else if batch_route {
        r#"{"orders": [], "atomic": "yes"}"#
    } else {
        r#"{"customer_code": " ", "site_code": "SITE-001", "sales_name": "John Doe",
            "address": "Jakarta", "purchase_order_number": "PO-1",
            "products": [{"product_code": "PRD-001", "quantity": 0}]}"#
    };
    let invalid_query = if path.starts_with("/api/v1/activity") {
        serde_json::from_value(json!({"since": "yesterday", "limit": "0"}))
            .map_err(|e| ApiError::InvalidQuery(vec![FieldError::new("query", e.to_string())]))
            .and_then(|params| super::activity::parse(&params).map(|_| ()))
            .expect_err("the example query is invalid")
    } else if path.starts_with("/api/v1/events") {
        serde_json::from_value(json!({"limit": "1000", "wait": "60"}))
            .map_err(|e| ApiError::InvalidQuery(vec![FieldError::new("query", e.to_string())]))
            .and_then(|params| events::parse(&params).map(|_| ()))
            .expect_err("the example query is invalid")
    } else {
        serde_json::from_value(json!({"limit": "500", "status": "shipped"}))
            .map_err(|e| ApiError::InvalidQuery(vec![FieldError::new("query", e.to_string())]))
            .and_then(parse_list_params)
            .map(|_| ())
            .expect_err("the example query is invalid")
    };
    let signature_invalid = AuthError::SignatureInvalid {
        reason: "X-SIGNATURE does not verify against any active public key of this partner",
        string_to_sign: format!("{CLIENT_ID}|1795507882"),
        diagnosis: Some(Box::new(Diagnosis {
            keys_tried: vec![KeyTried {
                key_id: "key_7f3a9c2e".into(),
                fingerprint:
                    "SHA256:49c261178e8b3745c9c02539aa0e3f16a531910f6549f67e55ad6cce7e73f46e".into(),
            }],
            mistake: Some(Mistake::other_timestamp("1795507881", "1795507882")),
        })),
    };
    let mut errors = vec![
        invalid_body(r#"{"customer_code": "CUST-001", "#),
        invalid_body(invalid_fields),
        invalid_query,
        ApiError::Auth(signature_invalid),
        ApiError::OrderNotFound(ORDER_ID.into()),
        ApiError::EventNotFound(EVENT_ID.into()),
        ApiError::WebhookEndpointNotFound(ENDPOINT_ID.into()),
        ApiError::Unavailable,
        ApiError::DuplicatePurchaseOrder {
            purchase_order_no: "PO-2026-00042".into(),
            existing_id: ORDER_ID.into(),
        },
        ApiError::InvalidIdempotencyKey,
        ApiError::IdempotencyKeyReused,
        ApiError::StatusConflict {
            current: OrderStatus::Accepted,
            requested: OrderStatus::Cancelled,
        },
        ApiError::StatusConflict {
            current: OrderStatus::Fulfilled,
            requested: OrderStatus::Rejected,
        },
        ApiError::SandboxOnly,
        ApiError::OrderNotAmendable {
            current: OrderStatus::Accepted,
        },
        ApiError::VersionMismatch { current: 3 },
        ApiError::InvalidIfMatch("W/\"3\"".into()),
        ApiError::BatchRejected(vec![json!({
            "index": 1,
            "status": 409,
            "error": {
                "code": "DUPLICATE_PURCHASE_ORDER",
                "message": "a sales order with purchase_order_no \"PO-2026-00042\" already exists",
                "details": ApiError::DuplicatePurchaseOrder {
                    purchase_order_no: "PO-2026-00042".into(),
                    existing_id: ORDER_ID.into(),
                }.details(),
            },
        })]),
        ApiError::LoginThrottled { retry_after: 42 },
        ApiError::RateLimited { retry_after: 1 },
        ApiError::UnsupportedMediaType,
        ApiError::PayloadTooLarge(1024 * 1024),
    ];
    errors.extend(
        [
            AuthError::MissingHeaders(vec!["X-TIMESTAMP", "X-SIGNATURE"]),
            AuthError::TokenInvalid(
                "the access token is malformed or was not issued by this service",
            ),
            AuthError::TokenExpired,
            AuthError::TokenRevoked(
                "the client secret was rotated after this token was issued; log in again",
            ),
            AuthError::TokenReused,
            AuthError::RefreshWindowClosed,
            AuthError::SessionExpired,
            AuthError::ClientIdMismatch,
            AuthError::TimestampInvalid(
                "X-TIMESTAMP must be unix seconds, unix milliseconds or RFC 3339 with an offset"
                    .into(),
            ),
            AuthError::TimestampOutOfWindow {
                skew_seconds: -412,
                tolerance_seconds: 300,
            },
            AuthError::SignatureV2Required,
            AuthError::SignatureVersionUnsupported,
            AuthError::InvalidCredentials,
            AuthError::PartnerDisabled,
        ]
        .map(ApiError::Auth),
    );
    errors
}

/// What the operation answers with `status`, by the codes its description
/// names (all samples of that status when it names none).
fn error_examples(errors: &[ApiError], status: u16, description: &str) -> Vec<(String, Value)> {
    let of_status: Vec<&ApiError> = errors
        .iter()
        .filter(|error| error.status().as_u16() == status)
        .collect();
    let named: Vec<&ApiError> = of_status
        .iter()
        .copied()
        .filter(|error| description.contains(&format!("`{}`", error.code())))
        .collect();
    let chosen = if named.is_empty() { of_status } else { named };
    chosen
        .into_iter()
        .map(|error| (error.code().to_owned(), error.envelope_example()))
        .collect()
}

/// Success answers and request bodies, by operation.
fn success_example(method: &str, path: &str) -> Option<(Value, Option<Value>)> {
    let token = json!({"token": TOKEN, "expired_at": 1795551082});
    let one = |message: &str, status| json!({"message": message, "data": order(status)});
    Some(match (method, path) {
        ("post", "/api/v1/auth/login") => (
            token,
            Some(
                json!({"client_id": CLIENT_ID, "client_secret": "sk_live_5f2b…(shown once at registration)"}),
            ),
        ),
        ("post", "/api/v1/auth/refresh") => (token, Some(json!({"token": TOKEN}))),
        ("post", "/api/v1/sandbox/sales-orders/{id}/status") => {
            let mut moved = order(OrderStatus::Accepted);
            moved["livemode"] = json!(false);
            moved["status_reason"] = json!("stock reserved");
            moved["version"] = json!(2);
            (
                json!({"message": "Sales order moved", "data": moved}),
                Some(json!({"status": "accepted", "reason": "stock reserved"})),
            )
        }
        ("post", "/api/v1/sales-orders") => (
            one("Sales order created successfully", OrderStatus::Received),
            Some(order_request()),
        ),
        ("get", "/api/v1/sales-orders") => (
            json!({
                "message": "Sales orders retrieved successfully",
                "data": [order(OrderStatus::Received)],
                "next_cursor": "bzE6NDI",
            }),
            None,
        ),
        ("get", "/api/v1/sales-orders/{id}") => (
            one("Sales order retrieved successfully", OrderStatus::Received),
            None,
        ),
        ("post", "/api/v1/sales-orders/{id}/cancel") => {
            let mut answer = one("Sales order cancelled", OrderStatus::Cancelled);
            answer["data"]["status_reason"] = json!("cancelled by the partner");
            answer["data"]["version"] = json!(2);
            answer["data"]["updated_at"] = json!("2026-11-24T09:02:11.530Z");
            (answer, None)
        }
        ("put", "/api/v1/sales-orders/{id}") => {
            let mut amended = order_request();
            amended["products"][0]["quantity"] = json!(3);
            let mut answer = one("Sales order amended", OrderStatus::Received);
            answer["data"]["products"][0]["quantity"] = json!(3);
            answer["data"]["products"][0]["line_amount"] = json!(450001.5);
            answer["data"]["version"] = json!(2);
            answer["data"]["updated_at"] = json!("2026-11-24T09:02:11.530Z");
            (answer, Some(amended))
        }
        ("post", "/api/v1/sales-orders/batch") => {
            let mut second = order_request();
            second["purchase_order_no"] = json!("PO-2026-00042");
            let mut first = order_request();
            first["purchase_order_no"] = json!("PO-2026-00042");
            let duplicate = ApiError::DuplicatePurchaseOrder {
                purchase_order_no: "PO-2026-00042".into(),
                existing_id: ORDER_ID.into(),
            };
            (
                json!({
                    "message": "Batch processed: 1 created, 1 refused",
                    "data": [
                        {"index": 0, "status": 201, "data": order(OrderStatus::Received)},
                        {"index": 1, "status": 409, "error": {
                            "code": duplicate.code(),
                            "message": duplicate.to_string(),
                            "details": duplicate.details(),
                        }},
                    ],
                }),
                Some(json!({"orders": [first, second], "atomic": false})),
            )
        }
        ("post", "/api/v1/webhook-endpoints") => (
            json!({"message": "Webhook endpoint created", "data": endpoint(true)}),
            Some(json!({
                "url": "https://erp.example.com/hooks/sales-orders",
                "types": ["order.accepted", "order.rejected", "order.fulfilled"],
                "description": "ERP order status sync",
            })),
        ),
        ("get", "/api/v1/webhook-endpoints") => (
            json!({"message": "Webhook endpoints retrieved successfully", "data": [endpoint(false)]}),
            None,
        ),
        ("get", "/api/v1/webhook-endpoints/{id}") => {
            let mut detail = endpoint(false);
            detail["attempts"] = json!([
                {"at": "2026-11-24T08:27:54.310Z", "event_id": EVENT_ID, "status": 200, "error": null, "duration_ms": 83},
                {"at": "2026-11-24T08:27:49.101Z", "event_id": EVENT_ID, "status": null,
                 "error": "no answer within 15 s", "duration_ms": 15000},
            ]);
            (
                json!({"message": "Webhook endpoint retrieved successfully", "data": detail}),
                None,
            )
        }
        ("delete", "/api/v1/webhook-endpoints/{id}") => (
            json!({"message": "Webhook endpoint deleted", "data": endpoint(false)}),
            None,
        ),
        ("post", "/api/v1/webhook-endpoints/{id}/rotate-secret") => (
            json!({"message": "Webhook secret rotated; the old one also signs for 24 hours", "data": endpoint(true)}),
            None,
        ),
        ("post", "/api/v1/webhook-endpoints/{id}/test") => (
            json!({"message": "Ping queued", "data": {"event_id": EVENT_ID}}),
            None,
        ),
        ("post", "/api/v1/webhook-endpoints/{id}/enable") => (
            json!({"message": "Webhook endpoint enabled", "data": endpoint(false)}),
            None,
        ),
        ("get", "/api/v1/events") => (
            json!({
                "message": "Events retrieved successfully",
                "data": [event()],
                "next_after": 42,
            }),
            None,
        ),
        ("get", "/api/v1/activity") => (
            json!({"message": "Activity retrieved successfully", "data": activity()}),
            None,
        ),
        ("get", "/api/v1/events/{id}") => (
            json!({"message": "Event retrieved successfully", "data": event()}),
            None,
        ),
        _ => return None,
    })
}

/// Fills in the examples; see the module documentation.
pub fn add(document: &mut OpenApi) {
    for (path, item) in document.paths.paths.iter_mut() {
        let errors = errors(path);
        let operations = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                add_to_operation(operation, method, path, &errors);
            }
        }
    }
}

fn add_to_operation(operation: &mut Operation, method: &str, path: &str, errors: &[ApiError]) {
    let success = success_example(method, path);
    if let (Some((_, Some(body))), Some(RefOr::T(request))) =
        (&success, operation.request_body.as_mut())
    {
        for content in request.content.values_mut() {
            if let RefOr::T(content) = content {
                content.example = Some(body.clone());
            }
        }
    }
    for (status, response) in operation.responses.responses.iter_mut() {
        let (RefOr::T(response), Ok(status)) = (response, status.parse::<u16>()) else {
            continue;
        };
        let examples = if status < 400 {
            success
                .iter()
                .map(|(answer, _)| ("success".to_owned(), answer.clone()))
                .collect()
        } else {
            error_examples(errors, status, &response.description)
        };
        for content in response.content.values_mut() {
            if let RefOr::T(content) = content {
                set_examples(content, &examples);
            }
        }
    }
}

fn set_examples(content: &mut Content, examples: &[(String, Value)]) {
    match examples {
        [(_, only)] => content.example = Some(only.clone()),
        many => {
            for (name, value) in many {
                content.examples.insert(
                    name.clone(),
                    RefOr::T(
                        ExampleBuilder::new()
                            .summary(name)
                            .value(Some(value.clone()))
                            .build(),
                    ),
                );
            }
        }
    }
}
