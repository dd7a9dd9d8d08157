//! The signed sales-order routes. Every handler takes `AuthenticatedPartner`,
//! so none can run before the four-header check has passed.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::authenticate::AuthenticatedPartner;
use super::error::FieldError;
use super::error::{ApiError, ErrorEnvelope, etag};
use super::extract::{JsonBody, KnownParams, Params};
use super::fingerprint;
use super::openapi::SIGNED_ROUTE_401;
use super::order_body::{self, OrderBodyError};
use super::state::AppState;
use crate::domain::order::nfc;
use crate::domain::{Actor, Decimal, NewOrder, Order, OrderStatus};
use crate::store::{
    Amend, Idempotency, InsertOrder, OrderQuery, OrderRef, StatusChange, Transition,
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// A new sales order (also an amendment's whole content, and each order of a batch).
// Documents the wire shape; the body is read by `order_body::parse`, and a
// unit test keeps the two in step.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateSalesOrderRequest {
    /// Customer code (1–64 characters)
    #[schema(example = "CUST-001")]
    customer_code: String,
    /// Site code (1–64 characters)
    #[schema(example = "SITE-001")]
    site_code: String,
    /// Sales person name (1–200 characters)
    #[schema(example = "John Doe")]
    sales_name: String,
    /// Delivery address (1–1000 characters, newlines allowed)
    #[schema(example = "Jl. Sudirman No. 1, Jakarta")]
    address: String,
    /// Purchase order number from the external partner system (1–64 characters);
    /// unique among the partner's live orders: cancelling or rejecting an order frees it.
    #[schema(example = "PO-2025-00001")]
    purchase_order_no: Option<String>,
    /// ISO 4217 currency of the prices, three capital letters; the server's
    /// default (IDR unless configured otherwise) when absent.
    #[schema(example = "IDR")]
    currency: Option<String>,
    /// List of products (1–1000 lines)
    products: Vec<ProductDto>,
}

/// One product line of a new order.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProductDto {
    /// Product code (1–64 characters)
    #[schema(example = "PRD-001")]
    product_code: String,
    /// Quantity: greater than 0, at most 1000000000, at most 4 fraction digits.
    quantity: Decimal,
    /// Unit of measure (at most 16 characters)
    #[schema(example = "PCS")]
    uom: Option<String>,
    /// Unit price: at least 0, less than 10^15, at most 4 fraction digits.
    unit_price: Option<Decimal>,
    /// Free-text notes (at most 500 characters)
    notes: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderResponse {
    #[schema(example = "Sales order created successfully")]
    pub message: &'static str,
    pub data: Order,
}

#[derive(Serialize, ToSchema)]
pub struct OrderListResponse {
    #[schema(example = "Sales orders retrieved successfully")]
    pub message: &'static str,
    pub data: Vec<Order>,
    /// Pass as `cursor` to get the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `next_cursor` from the previous page. Send the same filters with it.
    cursor: Option<String>,
    /// Only the order with this purchase order number.
    purchase_order_no: Option<String>,
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Only orders created at or after this instant (RFC 3339, e.g. `2026-11-24T00:00:00Z`).
    #[param(format = DateTime)]
    created_from: Option<String>,
    /// Only orders created before this instant (RFC 3339).
    #[param(format = DateTime)]
    created_to: Option<String>,
    /// Only orders last changed at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    updated_from: Option<String>,
    /// Only orders last changed before this instant (RFC 3339).
    #[param(format = DateTime)]
    updated_to: Option<String>,
}

impl KnownParams for ListParams {
    const NAMES: &'static [&'static str] = &[
        "limit",
        "cursor",
        "purchase_order_no",
        "status",
        "created_from",
        "created_to",
        "updated_from",
        "updated_to",
    ];
}

/// The header that makes a create safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a create answered from an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Create a new sales order
///
/// Validates the whole body and lists every offending field at once. The order
/// is acknowledged only after it is committed. A `purchase_order_no` held by
/// another of this partner's live orders is refused with 409, naming that
/// order; a cancelled or rejected order no longer holds its number. The
/// answer's `ETag` is the order's version.
///
/// Send an `Idempotency-Key` (a unique string of 1–255 visible ASCII
/// characters, e.g. a UUID) to make retries safe: the same key with the same
/// body, byte for byte, answers with the order the first request created (as
/// it is now) and the header `Idempotent-Replayed: true`;
/// the same key with a different body is refused with 409
/// `IDEMPOTENCY_KEY_REUSED`. Keys are per partner and kept for at least 24 hours.
/// A request refused for invalid input stores nothing, so its key stays free.
#[utoipa::path(
    post,
    path = "/api/v1/sales-orders",
    tag = "Sales Orders",
    request_body = CreateSalesOrderRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes retries safe: 1–255 visible ASCII characters, unique per order"),
    ),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 201, description = "Sales order created successfully (or, with `Idempotent-Replayed: true`, created by an earlier request with the same Idempotency-Key)", body = OrderResponse,
            headers(
                ("Idempotent-Replayed" = String, description = "`true` when the answer repeats an earlier request's"),
                ("ETag" = String, description = "The order's version, e.g. `\"1\"`"),
            )),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` with every offending field, or `INVALID_IDEMPOTENCY_KEY`", body = ErrorEnvelope),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 409, description = "`DUPLICATE_PURCHASE_ORDER` or `IDEMPOTENCY_KEY_REUSED`", body = ErrorEnvelope),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: the body is over 1 MiB", body = ErrorEnvelope),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json`", body = ErrorEnvelope),
    )
)]
pub async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    partner: AuthenticatedPartner,
) -> Result<Response, ApiError> {
    let body = JsonBody::signed(&headers, partner.body)?;
    let key = idempotency_key(&headers)?;
    let mut order = parse_order(&state, &body.0)?;
    order.livemode = !partner.sandbox;
    // By meaning (`fingerprint`), and only when a key asks for it; the
    // body parsed above, so it is JSON.
    let request_hash = key.map(|_| fingerprint::of_json(&body.0));
    let idempotency = key
        .zip(request_hash.as_ref())
        .map(|(key, hash)| Idempotency {
            key,
            request_hash: hash.as_ref(),
        });
    // Kept for a duplicate's answer; the order itself moves to the store.
    let purchase_order_no = order.purchase_order_no.clone();
    let started = std::time::Instant::now();
    let outcome = state
        .store
        .insert_order(&partner.client_id, order, idempotency, state.clock.now())
        .await?;
    metrics::histogram!("order_insert_duration_seconds").record(started.elapsed().as_secs_f64());
    let created = |order: Box<Order>| {
        single(
            StatusCode::CREATED,
            "Sales order created successfully",
            *order,
        )
    };
    match outcome {
        InsertOrder::Created(order) => {
            metrics::counter!("orders_created_total").increment(1);
            Ok(created(order).into_response())
        }
        InsertOrder::Replayed(order) => {
            metrics::counter!("orders_replayed_total").increment(1);
            Ok((
                [(HeaderName::from_static(IDEMPOTENT_REPLAYED), "true")],
                created(order),
            )
                .into_response())
        }
        InsertOrder::IdempotencyConflict => Err(ApiError::IdempotencyKeyReused),
        InsertOrder::DuplicatePurchaseOrder { existing_id } => {
            Err(ApiError::DuplicatePurchaseOrder {
                purchase_order_no: purchase_order_no
                    .map(|po| po.to_string())
                    .unwrap_or_default(),
                existing_id,
            })
        }
    }
}

/// List your sales orders
///
/// Newest first, one page at a time: follow `next_cursor` until it is null.
#[utoipa::path(
    get,
    path = "/api/v1/sales-orders",
    tag = "Sales Orders",
    params(ListParams),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "A page of orders", body = OrderListResponse),
        (status = 400, description = "`INVALID_QUERY`", body = ErrorEnvelope),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
    )
)]
pub async fn list_orders(
    State(state): State<AppState>,
    params: Result<Params<ListParams>, ApiError>,
    partner: AuthenticatedPartner,
) -> Result<Json<OrderListResponse>, ApiError> {
    let Params(params) = params?;
    let mut query = parse_list_params(params)?;
    query.client_id = Some(partner.client_id);
    let page = state.store.orders(&query).await?;
    Ok(Json(OrderListResponse {
        message: "Sales orders retrieved successfully",
        data: page.orders,
        next_cursor: page.next_after_seq.map(encode_cursor),
    }))
}

/// Get one of your sales orders
#[utoipa::path(
    get,
    path = "/api/v1/sales-orders/{id}",
    tag = "Sales Orders",
    params(("id" = String, Path, description = "The order's `id`")),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "The order", body = OrderResponse,
            headers(("ETag" = String, description = "The order's version, e.g. `\"1\"`: send it as `If-Match` to amend or cancel only this version"))),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 404, description = "`ORDER_NOT_FOUND` (also for another partner's order)", body = ErrorEnvelope),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    match path {
        Ok(Path(id)) => find(&state, &partner, id).await.into_response(),
        // Taken as a `Result` so that the signature is checked first: a
        // malformed path is answered, as axum answers it, to a partner only.
        Err(rejection) => rejection.into_response(),
    }
}

async fn find(
    state: &AppState,
    partner: &AuthenticatedPartner,
    id: String,
) -> Result<Response, ApiError> {
    let order = state
        .store
        .order(OrderRef::partner(&partner.client_id, &id))
        .await?
        .ok_or(ApiError::OrderNotFound(id))?;
    Ok(single(
        StatusCode::OK,
        "Sales order retrieved successfully",
        order,
    ))
}

/// A single-order answer, with the order's version as its `ETag`.
fn single(status: StatusCode, message: &'static str, order: Order) -> Response {
    let etag = etag(order.version);
    (
        status,
        [(header::ETAG, etag)],
        Json(OrderResponse {
            message,
            data: order,
        }),
    )
        .into_response()
}

/// The create body (also an amendment's, and each order of a batch) read
/// into an order, in the server's default currency unless it names one.
pub(super) fn parse_order(state: &AppState, body: &[u8]) -> Result<NewOrder, ApiError> {
    order_body::parse(body, &state.settings.default_currency).map_err(|error| match error {
        OrderBodyError::Syntax(message) => ApiError::InvalidJson(message),
        OrderBodyError::Invalid(fields) => ApiError::Validation(fields),
    })
}

/// Amend one of your sales orders
///
/// Replaces the order's content with the body (a full create body, as for
/// `POST /api/v1/sales-orders`; a `currency` left out is the server's
/// default, not the order's current one) while the order is `received`: the order
/// keeps its id, number and creation time, its `version` goes up by one, an
/// `order.amended` event is written, and its history records what changed.
/// A body that reads exactly as the order does changes nothing (same
/// version, no event), so a retried amendment is harmless.
///
/// Send `If-Match` with the `ETag` of the order as you last read it: if the
/// order changed since (an amendment, or the operator accepting it) the
/// answer is 412 `VERSION_MISMATCH` and nothing changes.
///
/// Once the order is accepted, rejected, fulfilled or cancelled the answer is
/// 409 `ORDER_NOT_AMENDABLE`. A new `purchase_order_no` held by another live
/// order is 409 `DUPLICATE_PURCHASE_ORDER`.
#[utoipa::path(
    put,
    path = "/api/v1/sales-orders/{id}",
    tag = "Sales Orders",
    request_body = CreateSalesOrderRequest,
    params(
        ("id" = String, Path, description = "The order's `id`"),
        ("If-Match" = Option<String>, Header, pattern = r#"^(\*|"[0-9]{1,18}"|[0-9]{1,18})$"#, description = "The order's `ETag` as you last read it, e.g. `\"3\"` (the bare number and `*`, any version, are taken too; a weak tag `W/\"3\"` is refused): the amendment is made only if the order is still at that version"),
    ),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "The amended order (or, if the body changed nothing, the order as it is)", body = OrderResponse,
            headers(("ETag" = String, description = "The order's version, e.g. `\"2\"`"))),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` with every offending field, or `INVALID_IF_MATCH`", body = ErrorEnvelope),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 404, description = "`ORDER_NOT_FOUND` (also for another partner's order)", body = ErrorEnvelope),
        (status = 409, description = "`ORDER_NOT_AMENDABLE` (the order is no longer `received`) or `DUPLICATE_PURCHASE_ORDER`", body = ErrorEnvelope),
        (status = 412, description = "`VERSION_MISMATCH`: the order is no longer at the `If-Match` version; its `ETag` and `details` give the current one", body = ErrorEnvelope),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: the body is over 1 MiB", body = ErrorEnvelope),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json`", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
    )
)]
pub async fn amend_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    match path {
        Ok(Path(id)) => amend(&state, &headers, &partner, id).await.into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

async fn amend(
    state: &AppState,
    headers: &HeaderMap,
    partner: &AuthenticatedPartner,
    id: String,
) -> Result<Response, ApiError> {
    let body = JsonBody::signed(headers, partner.body.clone())?;
    let if_version = if_match(headers)?;
    let order = parse_order(state, &body.0)?;
    let outcome = state
        .store
        .amend(
            &partner.client_id,
            &id,
            &order,
            if_version,
            state.clock.now(),
        )
        .await?;
    match outcome {
        Amend::Amended(order) => {
            metrics::counter!("orders_amended_total").increment(1);
            Ok(single(StatusCode::OK, "Sales order amended", *order))
        }
        Amend::Unchanged(order) => Ok(single(
            StatusCode::OK,
            "Sales order unchanged: it already reads so",
            *order,
        )),
        Amend::NotFound => Err(ApiError::OrderNotFound(id)),
        Amend::VersionMismatch { current } => Err(ApiError::VersionMismatch { current }),
        Amend::NotAmendable { current } => Err(ApiError::OrderNotAmendable { current }),
        Amend::DuplicatePurchaseOrder { existing_id } => Err(ApiError::DuplicatePurchaseOrder {
            purchase_order_no: order
                .purchase_order_no
                .map(|po| po.to_string())
                .unwrap_or_default(),
            existing_id,
        }),
    }
}

/// `If-Match`: the version the change is for, `None` when absent or `*`
/// (any version). One strong entity tag, `"3"`, as the `ETag` gave it; the
/// bare number is taken too. A weak tag never matches (RFC 9110 compares
/// strongly here), so it is refused rather than always failing.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let mut values = headers.get_all(header::IF_MATCH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = || {
        // Shown back (not secret), cut short: the partner sees what arrived.
        let sent = String::from_utf8_lossy(value.as_bytes());
        ApiError::InvalidIfMatch(sent.chars().take(64).collect())
    };
    if values.next().is_some() {
        return Err(invalid());
    }
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let digits = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    digits.parse().map(Some).map_err(|_| invalid())
}

/// Cancel one of your sales orders
///
/// Allowed while the order is `received`. Once the operator has accepted,
/// rejected or fulfilled it (or it was cancelled already) the answer is 409
/// `ORDER_NOT_CANCELLABLE`, with the order's current status in `details`.
/// Cancelling frees the order's `purchase_order_no` for a corrected order.
/// With `If-Match`, the order is cancelled only if it is still at that version.
#[utoipa::path(
    post,
    path = "/api/v1/sales-orders/{id}/cancel",
    tag = "Sales Orders",
    params(
        ("id" = String, Path, description = "The order's `id`"),
        ("If-Match" = Option<String>, Header, pattern = r#"^(\*|"[0-9]{1,18}"|[0-9]{1,18})$"#, description = "The order's `ETag` as you last read it, e.g. `\"3\"` (the bare number and `*`, any version, are taken too; a weak tag `W/\"3\"` is refused): cancel only if the order is still at that version"),
    ),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "The cancelled order", body = OrderResponse,
            headers(("ETag" = String, description = "The order's version, e.g. `\"2\"`"))),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 404, description = "`ORDER_NOT_FOUND` (also for another partner's order)", body = ErrorEnvelope),
        (status = 409, description = "`ORDER_NOT_CANCELLABLE`: the order is no longer `received`", body = ErrorEnvelope),
        (status = 412, description = "`VERSION_MISMATCH`: the order is no longer at the `If-Match` version", body = ErrorEnvelope),
        (status = 400, description = "`INVALID_IF_MATCH`", body = ErrorEnvelope),
    )
)]
pub async fn cancel_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    match path {
        Ok(Path(id)) => cancel(&state, &headers, &partner, id).await.into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

async fn cancel(
    state: &AppState,
    headers: &HeaderMap,
    partner: &AuthenticatedPartner,
    id: String,
) -> Result<Response, ApiError> {
    let change = StatusChange {
        to: OrderStatus::Cancelled,
        reason: Some("cancelled by the partner"),
        actor: Actor::Partner,
        actor_name: partner.client_id.as_str(),
        if_version: if_match(headers)?,
    };
    let outcome = state
        .store
        .change_status(
            OrderRef::partner(&partner.client_id, &id),
            change,
            state.clock.now(),
        )
        .await?;
    moved(outcome, id, OrderStatus::Cancelled, "Sales order cancelled")
}

/// The answer to a status move of order `id` to `requested`: the partner's
/// cancel, or a sandbox partner's move of its own order.
pub(super) fn moved(
    outcome: Transition,
    id: String,
    requested: OrderStatus,
    message: &'static str,
) -> Result<Response, ApiError> {
    match outcome {
        Transition::Changed(order) => Ok(single(StatusCode::OK, message, *order)),
        Transition::NotFound => Err(ApiError::OrderNotFound(id)),
        Transition::VersionMismatch { current } => Err(ApiError::VersionMismatch { current }),
        Transition::Refused { current } => Err(ApiError::StatusConflict { current, requested }),
    }
}

/// An RFC 3339 query parameter `name`, if given; a bad one is added to `errors`.
pub(super) fn instant_param(
    name: &str,
    text: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<OffsetDateTime> {
    let parsed = OffsetDateTime::parse(text?, &Rfc3339).ok();
    if parsed.is_none() {
        errors.push(FieldError::new(
            name,
            "must be an RFC 3339 date-time, e.g. 2026-11-24T00:00:00Z",
        ));
    }
    parsed
}

/// The `Idempotency-Key` header, if sent: Stripe's limit of 255 characters,
/// visible ASCII so it logs and compares without surprises.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()))
        .filter(|key| key.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(ApiError::InvalidIdempotencyKey)?;
    Ok(Some(key))
}

pub(super) fn parse_list_params(params: ListParams) -> Result<OrderQuery, ApiError> {
    let mut errors = Vec::new();
    let limit = match params.limit.as_deref().map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}"),
            ));
            DEFAULT_LIMIT
        }
    };
    let before_seq = match params.cursor.as_deref().map(decode_cursor) {
        None => None,
        Some(Some(seq)) => Some(seq),
        Some(None) => {
            errors.push(FieldError::new(
                "cursor",
                "is not a cursor returned by this API",
            ));
            None
        }
    };
    let status = params.status.as_deref().and_then(|text| {
        let status = OrderStatus::parse(text);
        if status.is_none() {
            errors.push(FieldError::new(
                "status",
                "must be one of received, accepted, fulfilled, rejected, cancelled",
            ));
        }
        status
    });
    let mut instant = |name: &str, text: Option<&str>| instant_param(name, text, &mut errors);
    let created_from = instant("created_from", params.created_from.as_deref());
    let created_to = instant("created_to", params.created_to.as_deref());
    let updated_from = instant("updated_from", params.updated_from.as_deref());
    let updated_to = instant("updated_to", params.updated_to.as_deref());
    for (from, to, from_name, to_name) in [
        (created_from, created_to, "created_from", "created_to"),
        (updated_from, updated_to, "updated_from", "updated_to"),
    ] {
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            errors.push(FieldError::new(
                to_name,
                format!("must be after {from_name}"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    Ok(OrderQuery {
        // As stored, so a purchase order number typed decomposed still matches.
        purchase_order_no: params.purchase_order_no.map(|po| nfc(&po).into_owned()),
        status,
        created_from,
        created_to,
        updated_from,
        updated_to,
        after_seq: before_seq,
        limit,
        ..OrderQuery::default()
    })
}

const CURSOR_PREFIX: &str = "o1:";

fn encode_cursor(before_seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{before_seq}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.strip_prefix(CURSOR_PREFIX)?
        .parse()
        .ok()
        .filter(|seq: &i64| *seq > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::order_body::{ORDER_FIELDS, PRODUCT_FIELDS};
    use utoipa::PartialSchema;

    fn property_names<T: PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn sorted(fields: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn documented_request_fields_match_the_validator() {
        assert_eq!(
            property_names::<CreateSalesOrderRequest>(),
            sorted(&ORDER_FIELDS)
        );
        assert_eq!(property_names::<ProductDto>(), sorted(&PRODUCT_FIELDS));
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("junk"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("o1:-5")), None);
    }
}
