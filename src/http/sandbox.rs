//! The sandbox routes: a sandbox (test-mode) partner moves its own orders
//! through the operator's state machine, to test what it does when an order
//! is accepted, rejected or fulfilled. The move is the operator's, with the
//! same rules, history, events and webhooks; a live partner is refused.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::authenticate::AuthenticatedPartner;
use super::error::{ApiError, ErrorEnvelope, FieldError};
use super::extract::JsonBody;
use super::openapi::SIGNED_ROUTE_401;
use super::orders::{OrderResponse, moved};
use super::state::AppState;
use crate::domain::{Actor, OrderStatus};
use crate::store::{OrderRef, StatusChange};

/// Reasons are shown to the partner; as long as the operator's.
const MAX_REASON: usize = 500;

/// A status the operator could set.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxStatusRequest {
    /// `accepted`, `rejected` or `fulfilled`, by the operator's rules:
    /// received → accepted → fulfilled, or received → rejected.
    #[schema(example = "accepted")]
    pub status: String,
    /// Why, shown as the order's `status_reason`; required to reject.
    #[schema(example = "stock reserved")]
    pub reason: Option<String>,
}

/// Move one of your sandbox orders (sandbox only)
///
/// Does to one of your sandbox orders what the integration team does to live
/// ones: `accepted`, then `fulfilled`, or `rejected` (with a `reason`). The
/// order's history, its `order.accepted` / `order.rejected` /
/// `order.fulfilled` event and your webhooks follow exactly as they will in
/// production. For a live client the answer is 403 `SANDBOX_ONLY`.
#[utoipa::path(
    post,
    path = "/api/v1/sandbox/sales-orders/{id}/status",
    tag = "Sandbox",
    params(("id" = String, Path, description = "The order's `id`")),
    request_body = SandboxStatusRequest,
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "The order, moved", body = OrderResponse,
            headers(("ETag" = String, description = "The order's version, e.g. `\"2\"`"))),
        (status = 400, description = "`INVALID_JSON`, or `VALIDATION_FAILED` naming `status` or `reason`", body = ErrorEnvelope),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 403, description = "`SANDBOX_ONLY`: this client is live", body = ErrorEnvelope),
        (status = 404, description = "`ORDER_NOT_FOUND` (also another client's order)", body = ErrorEnvelope),
        (status = 409, description = "`ILLEGAL_STATUS_CHANGE`: the operator's rules do not allow this move from the order's status", body = ErrorEnvelope),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json`", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
    )
)]
pub async fn set_status(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    match path {
        Ok(Path(id)) => move_order(&state, &headers, partner, id)
            .await
            .into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

async fn move_order(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    partner: AuthenticatedPartner,
    id: String,
) -> Result<Response, ApiError> {
    if !partner.sandbox {
        return Err(ApiError::SandboxOnly);
    }
    let body = JsonBody::signed(headers, partner.body)?;
    let request: SandboxStatusRequest = serde_json::from_slice(&body.0).map_err(|error| {
        if error.is_data() {
            ApiError::Validation(vec![FieldError::new("", error.to_string())])
        } else {
            ApiError::InvalidJson(format!("request body is not valid JSON: {error}"))
        }
    })?;
    let mut errors = Vec::new();
    let to = match OrderStatus::parse(request.status.trim()) {
        Some(to @ (OrderStatus::Accepted | OrderStatus::Rejected | OrderStatus::Fulfilled)) => {
            Some(to)
        }
        _ => {
            errors.push(FieldError::new(
                "status",
                "must be accepted, rejected or fulfilled (cancel with the cancel route)",
            ));
            None
        }
    };
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|reason| !reason.is_empty());
    if reason.is_some_and(|reason| reason.chars().count() > MAX_REASON) {
        errors.push(FieldError::new(
            "reason",
            format!("must be at most {MAX_REASON} characters"),
        ));
    }
    if to == Some(OrderStatus::Rejected) && reason.is_none() {
        errors.push(FieldError::new(
            "reason",
            "is required to reject: the partner sees it",
        ));
    }
    let Some(to) = to.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let change = StatusChange {
        to,
        reason,
        actor: Actor::Operator,
        actor_name: "sandbox",
        if_version: None,
    };
    let outcome = state
        .store
        .change_status(
            OrderRef::partner(&partner.client_id, &id),
            change,
            state.clock.now(),
        )
        .await?;
    moved(outcome, id, to, "Sales order moved")
}
