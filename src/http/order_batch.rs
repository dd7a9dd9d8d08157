//! `POST /api/v1/sales-orders/batch`: up to 100 orders in one signed
//! request, one transaction, each answered as a single create would be.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::authenticate::AuthenticatedPartner;
use super::error::{ApiError, ErrorEnvelope, FieldError};
use super::extract::JsonBody;
use super::fingerprint;
use super::json_fields::Fields;
use super::openapi::SIGNED_ROUTE_401;
use super::orders::{CreateSalesOrderRequest, IDEMPOTENT_REPLAYED, idempotency_key, parse_order};
use super::state::AppState;
use crate::domain::Order;
use crate::store::{BatchOutcome, InsertOrder, PendingBatch};

/// Orders one batch holds at most.
pub const MAX_BATCH_ORDERS: usize = 100;

/// Up to 100 orders in one request.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchRequest {
    /// 1–100 orders, each a create body.
    #[schema(min_items = 1, max_items = 100)]
    orders: Vec<CreateSalesOrderRequest>,
    /// `true`: store all the orders or none (409 `BATCH_REJECTED` listing the
    /// failing ones). `false` (the default): store the good ones.
    #[schema(default = false)]
    atomic: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    #[schema(example = "Batch processed: 2 created, 1 refused")]
    pub message: String,
    /// One item per order, in request order.
    pub data: Vec<BatchItem>,
}

/// One order's answer: `status` 201 with `data`, or 400/409 with `error`,
/// the status and error a single create would get.
#[derive(Serialize, ToSchema)]
pub struct BatchItem {
    /// The order's position in `orders`, from 0.
    pub index: usize,
    #[schema(example = 201)]
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Order>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// Submit up to 100 sales orders in one call
///
/// Each order is validated with the same rules as a single create and
/// answered with the status and error a single create would get, in request
/// order; the good ones are committed together, in one transaction, before
/// the answer. A purchase order number repeated within the batch: the second
/// is 409 naming the first.
///
/// With `"atomic": true` every order is stored or none: any failing order
/// makes the answer 409 `BATCH_REJECTED`, its `details` listing each failing
/// `index` with its error (a number repeated within the batch names the
/// earlier order by `repeats_index`, since nothing was stored).
///
/// One `Idempotency-Key` covers the whole batch: the same key with the same
/// body answers as the first time did (created orders as they are now), with
/// `Idempotent-Replayed: true`. A v2 signature covers the whole body. The
/// body may be up to 16 MiB.
#[utoipa::path(
    post,
    path = "/api/v1/sales-orders/batch",
    tag = "Sales Orders",
    request_body = BatchRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes retries of the whole batch safe: 1–255 visible ASCII characters"),
    ),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "Each order's answer, in request order", body = BatchResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when the answer repeats an earlier request's"))),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` (the batch itself: `orders`, `atomic`), or `INVALID_IDEMPOTENCY_KEY`", body = ErrorEnvelope),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 409, description = "`BATCH_REJECTED` (atomic, with the failing orders in `details`) or `IDEMPOTENCY_KEY_REUSED`", body = ErrorEnvelope),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: the batch body is over 16 MiB; split it", body = ErrorEnvelope),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json`", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
    )
)]
pub async fn submit_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    partner: AuthenticatedPartner,
) -> Result<Response, ApiError> {
    let body = JsonBody::signed(&headers, partner.body)?;
    let key = idempotency_key(&headers)?;
    let (items, atomic) = parse_batch(&body.0)?;
    let mut answers: Vec<Option<BatchItem>> = items.iter().map(|_| None).collect();
    let mut orders = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        if !item.get().starts_with('{') {
            let error = ApiError::Validation(vec![FieldError::new(
                format!("orders[{index}]"),
                "must be a JSON object: a create body",
            )]);
            answers[index] = Some(refused(index, &error));
            continue;
        }
        match parse_order(&state, item.get().as_bytes()) {
            Ok(mut order) => {
                order.livemode = !partner.sandbox;
                orders.push((index, order));
            }
            Err(error) => answers[index] = Some(refused(index, &error)),
        }
    }
    let refused_already = answers.iter().any(Option::is_some);
    if orders.is_empty() {
        if atomic {
            return Err(ApiError::BatchRejected(failures(
                answers.iter().flatten().collect(),
            )));
        }
        // Nothing reaches the store, so an Idempotency-Key stays free, as
        // for a single create refused for its input.
        return Ok(answer(answers, false));
    }
    // By meaning (`fingerprint`); the body parsed above, so it is JSON.
    let request_hash = key.map(|_| fingerprint::of_json(&body.0));
    // Each order's purchase order number by its place, for a duplicate's answer.
    let mut purchase_order_nos = vec![String::new(); answers.len()];
    for (index, order) in &orders {
        if let Some(po) = &order.purchase_order_no {
            purchase_order_nos[*index] = po.to_string();
        }
    }
    let now = state.clock.now();
    let batch = PendingBatch {
        orders: PendingBatch::orders(&partner.client_id, orders, now),
        client_id: partner.client_id,
        atomic,
        // The valid orders are still checked against the store (a number
        // already taken), so the refusal lists every failing order at once.
        check_only: atomic && refused_already,
        idempotency: key
            .zip(request_hash)
            .map(|(key, hash)| (key.to_owned(), hash.as_ref().to_vec())),
        now,
    };
    let started = std::time::Instant::now();
    let outcome = state.store.insert_batch(batch).await?;
    metrics::histogram!("order_batch_insert_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    let (stored, replayed) = match outcome {
        BatchOutcome::Written(stored) => (stored, false),
        BatchOutcome::Replayed(stored) => (stored, true),
        BatchOutcome::IdempotencyConflict => return Err(ApiError::IdempotencyKeyReused),
        BatchOutcome::Rejected(rejected) => {
            let items: Vec<BatchItem> = answers
                .into_iter()
                .flatten()
                .chain(
                    rejected
                        .into_iter()
                        .map(|rejection| match rejection.repeats {
                            Some(earlier) => {
                                repeated(rejection.index, earlier, &purchase_order_nos)
                            }
                            None => item(
                                rejection.index,
                                rejection.outcome,
                                &purchase_order_nos[rejection.index],
                            ),
                        }),
                )
                .collect();
            return Err(ApiError::BatchRejected(failures(items.iter().collect())));
        }
    };
    let created = stored
        .iter()
        .filter(|(_, outcome)| matches!(outcome, InsertOrder::Created(_)))
        .count();
    let counter = if replayed {
        "orders_replayed_total"
    } else {
        "orders_created_total"
    };
    metrics::counter!(counter).increment(created as u64);
    for (index, outcome) in stored {
        answers[index] = Some(item(index, outcome, &purchase_order_nos[index]));
    }
    Ok(answer(answers, replayed))
}

/// The batch body: its orders as raw JSON, and whether it is atomic.
pub(super) fn parse_batch(body: &[u8]) -> Result<(Vec<&RawValue>, bool), ApiError> {
    let raw: &RawValue = serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidJson(format!("request body is not valid JSON: {e}")))?;
    let mut errors = Vec::new();
    let Some(object) = Fields::read(raw, "", &mut errors) else {
        return Err(ApiError::Validation(errors));
    };
    object.refuse_others(&["orders", "atomic"], &[], &mut errors);
    let atomic = match object.get("atomic").map(|raw| raw.get()) {
        None | Some("null") | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push(FieldError::new("atomic", "must be true or false"));
            false
        }
    };
    let orders = match object.get("orders") {
        None => {
            errors.push(FieldError::new("orders", "is required"));
            Vec::new()
        }
        Some(raw) => match serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
            Ok(orders) if orders.is_empty() => {
                errors.push(FieldError::new("orders", "must contain at least 1 order"));
                orders
            }
            Ok(orders) if orders.len() > MAX_BATCH_ORDERS => {
                errors.push(FieldError::new(
                    "orders",
                    format!(
                        "must contain at most {MAX_BATCH_ORDERS} orders, got {}; split the batch",
                        orders.len()
                    ),
                ));
                orders
            }
            Ok(orders) => orders,
            Err(_) => {
                errors.push(FieldError::new("orders", "must be an array of orders"));
                Vec::new()
            }
        },
    };
    if errors.is_empty() {
        Ok((orders, atomic))
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// An order refused before it reached the store, with a single create's error.
fn refused(index: usize, error: &ApiError) -> BatchItem {
    BatchItem {
        index,
        status: error.status().as_u16(),
        data: None,
        error: Some(error_of(error)),
    }
}

/// An order's answer from the store.
fn item(index: usize, outcome: InsertOrder, purchase_order_no: &str) -> BatchItem {
    match outcome {
        InsertOrder::Created(order) | InsertOrder::Replayed(order) => BatchItem {
            index,
            status: StatusCode::CREATED.as_u16(),
            data: Some(*order),
            error: None,
        },
        InsertOrder::DuplicatePurchaseOrder { existing_id } => refused(
            index,
            &ApiError::DuplicatePurchaseOrder {
                purchase_order_no: purchase_order_no.to_owned(),
                existing_id,
            },
        ),
        // Orders of a batch carry no key of their own.
        InsertOrder::IdempotencyConflict => refused(index, &ApiError::IdempotencyKeyReused),
    }
}

/// An order of an atomic batch refused for a purchase order number an
/// earlier order of the same batch took: named by its place, since the
/// whole batch was rolled back and that order has no id.
fn repeated(index: usize, earlier: usize, purchase_order_nos: &[String]) -> BatchItem {
    let po = &purchase_order_nos[index];
    let message = format!("purchase_order_no {po:?} repeats orders[{earlier}] of this batch");
    BatchItem {
        index,
        status: StatusCode::CONFLICT.as_u16(),
        data: None,
        error: Some(serde_json::json!({
            "code": "DUPLICATE_PURCHASE_ORDER",
            "message": message,
            "details": [{
                "field": "purchase_order_no",
                "message": message,
                "purchase_order_no": po,
                "repeats_index": earlier,
            }],
        })),
    }
}

/// `{"code", "message", "details"}`, as the envelope's `error` would hold it.
fn error_of(error: &ApiError) -> Value {
    serde_json::json!({
        "code": error.code(),
        "message": error.to_string(),
        "details": error.details(),
    })
}

/// `BATCH_REJECTED`'s details: each failing order with its status and error.
fn failures(items: Vec<&BatchItem>) -> Vec<Value> {
    let mut items = items;
    items.sort_by_key(|item| item.index);
    items
        .into_iter()
        .map(|item| {
            serde_json::json!({
                "index": item.index,
                "status": item.status,
                "error": item.error,
            })
        })
        .collect()
}

fn answer(answers: Vec<Option<BatchItem>>, replayed: bool) -> Response {
    let data: Vec<BatchItem> = answers.into_iter().flatten().collect();
    let created = data.iter().filter(|item| item.status == 201).count();
    let body = Json(BatchResponse {
        message: format!(
            "Batch processed: {created} created, {} refused",
            data.len() - created
        ),
        data,
    });
    if replayed {
        (
            [(HeaderName::from_static(IDEMPOTENT_REPLAYED), "true")],
            body,
        )
            .into_response()
    } else {
        body.into_response()
    }
}
