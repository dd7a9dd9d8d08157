//! The signed sales-order routes. Every handler takes `AuthenticatedPartner`,
//! so none can run before the four-header check has passed.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorEnvelope};
use super::extract::JsonBody;
use crate::app::AppState;
use crate::auth::AuthenticatedPartner;
use crate::domain::order::OrderBodyError;
use crate::domain::{Decimal, FieldError, NewOrder, Order};
use crate::store::{InsertOrder, OrderQuery};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// Body of `POST /api/v1/sales-orders`. Documents the wire shape; the body is
/// validated by `NewOrder::parse`, and a unit test keeps the two in step.
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
    /// Purchase order number from the external partner system; unique per partner.
    #[schema(example = "PO-2025-00001")]
    purchase_order_no: Option<String>,
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
    limit: Option<String>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
    /// Only the order with this purchase order number.
    purchase_order_no: Option<String>,
}

/// Create a new sales order
///
/// Validates the whole body and lists every offending field at once. The order
/// is acknowledged only after it is committed. A `purchase_order_no` already used
/// by this partner is refused with 409, naming the existing order.
#[utoipa::path(
    post,
    path = "/api/v1/sales-orders",
    tag = "Sales Orders",
    request_body = CreateSalesOrderRequest,
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 201, description = "Sales order created successfully", body = OrderResponse),
        (status = 400, description = "`INVALID_JSON` or `VALIDATION_FAILED`, with every offending field", body = ErrorEnvelope),
        (status = 401, description = "An authentication check failed; the code says which", body = ErrorEnvelope),
        (status = 409, description = "`DUPLICATE_PURCHASE_ORDER`", body = ErrorEnvelope),
        (status = 413, description = "Body over 1 MiB", body = ErrorEnvelope),
        (status = 415, description = "Body not `application/json`", body = ErrorEnvelope),
    )
)]
pub async fn create_order(
    State(state): State<AppState>,
    partner: AuthenticatedPartner,
    body: JsonBody,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    let order = NewOrder::parse(&body.0).map_err(|error| match error {
        OrderBodyError::Syntax(message) => ApiError::InvalidJson(message),
        OrderBodyError::Invalid(fields) => ApiError::Validation(fields),
    })?;
    let started = std::time::Instant::now();
    let outcome = state
        .store
        .insert_order(&partner.client_id, &order, state.clock.now())
        .await?;
    metrics::histogram!("order_insert_duration_seconds").record(started.elapsed().as_secs_f64());
    match outcome {
        InsertOrder::Created(order) => {
            metrics::counter!("orders_created_total").increment(1);
            Ok((
                StatusCode::CREATED,
                Json(OrderResponse {
                    message: "Sales order created successfully",
                    data: *order,
                }),
            ))
        }
        InsertOrder::DuplicatePurchaseOrder { existing_id } => {
            Err(ApiError::DuplicatePurchaseOrder {
                purchase_order_no: order.purchase_order_no.unwrap_or_default(),
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
        (status = 401, description = "An authentication check failed; the code says which", body = ErrorEnvelope),
    )
)]
pub async fn list_orders(
    State(state): State<AppState>,
    partner: AuthenticatedPartner,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<OrderListResponse>, ApiError> {
    let Query(params) = params.map_err(|rejection| {
        ApiError::InvalidQuery(vec![FieldError::new("query", rejection.body_text())])
    })?;
    let query = parse_list_params(params)?;
    let page = state.store.orders(&partner.client_id, &query).await?;
    Ok(Json(OrderListResponse {
        message: "Sales orders retrieved successfully",
        data: page.orders,
        next_cursor: page.next_before_seq.map(encode_cursor),
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
        (status = 200, description = "The order", body = OrderResponse),
        (status = 401, description = "An authentication check failed; the code says which", body = ErrorEnvelope),
        (status = 404, description = "`ORDER_NOT_FOUND` (also for another partner's order)", body = ErrorEnvelope),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    partner: AuthenticatedPartner,
    Path(id): Path<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    let order = state
        .store
        .order(&partner.client_id, &id)
        .await?
        .ok_or(ApiError::OrderNotFound(id))?;
    Ok(Json(OrderResponse {
        message: "Sales order retrieved successfully",
        data: order,
    }))
}

fn parse_list_params(params: ListParams) -> Result<OrderQuery, ApiError> {
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
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    Ok(OrderQuery {
        purchase_order_no: params.purchase_order_no,
        before_seq,
        limit,
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
    use crate::domain::order::{ORDER_FIELDS, PRODUCT_FIELDS};
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
