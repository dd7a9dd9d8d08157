//! The one error type of the HTTP API and its JSON envelope.
//!
//! Handlers and extractors return `ApiError`; it becomes a response carrying an
//! [`ErrorBody`] extension, and the envelope middleware renders that with the
//! request id. 5xx answers are opaque: the cause is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::store::StoreError;

/// One offending field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `products[0].quantity`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON.
    #[error("{0}")]
    InvalidJson(String),
    /// 400: JSON, but fields break the rules.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// 400: bad query parameters.
    #[error("the query has invalid parameters")]
    InvalidQuery(Vec<FieldError>),
    /// 401, with a code naming the check that failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 403: a sandbox route called by a live partner.
    #[error(
        "this route is for sandbox (test-mode) clients only; a live client's orders are moved by the integration team"
    )]
    SandboxOnly,
    /// 404: no such order for this partner (also another partner's order).
    #[error("no sales order with id {0:?} exists for this client")]
    OrderNotFound(String),
    /// 404: no such event for this partner (also another partner's, or one past its retention).
    #[error("no event with id {0:?} exists for this client")]
    EventNotFound(String),
    /// 404: no such webhook endpoint for this partner.
    #[error("no webhook endpoint with id {0:?} exists for this client")]
    WebhookEndpointNotFound(String),
    /// 409: the partner already sent an order with this purchase order number.
    #[error("a sales order with purchase_order_no {purchase_order_no:?} already exists")]
    DuplicatePurchaseOrder {
        purchase_order_no: String,
        existing_id: String,
    },
    /// 400: the `Idempotency-Key` header is not a usable key.
    #[error("the Idempotency-Key header must be 1 to 255 visible ASCII characters")]
    InvalidIdempotencyKey,
    /// 409: the `Idempotency-Key` came before with a different request body.
    #[error(
        "this Idempotency-Key was already used for a request with different content (compared by meaning: member order and spacing do not count); a retry must send the same content, and only a different order takes a new key"
    )]
    IdempotencyKeyReused,
    /// 409: the order's status does not allow the requested change.
    #[error("the sales order is {current}, so it cannot become {requested}")]
    StatusConflict {
        current: crate::domain::OrderStatus,
        requested: crate::domain::OrderStatus,
    },
    /// 409: the order is past `received`, so its content is final.
    #[error("the sales order is {current}; only a received order can be amended")]
    OrderNotAmendable { current: crate::domain::OrderStatus },
    /// 412: `If-Match` named a version the order is no longer at.
    #[error(
        "the sales order is at version {current}, not the one If-Match names; read it again and decide"
    )]
    VersionMismatch { current: i64 },
    /// 400: the `If-Match` header is not one strong entity tag (as sent, cut short).
    #[error(
        "the If-Match header must be the order's ETag as it was sent, such as \"3\": one strong tag (not a list, not a weak W/ tag)"
    )]
    InvalidIfMatch(String),
    /// 409: an atomic batch had failing orders, so none was stored.
    #[error("the batch is atomic and some of its orders failed, so none was stored")]
    BatchRejected(Vec<Value>),
    /// 429: too many failed logins for this client id or from this address.
    #[error("too many failed logins; retry after {retry_after} seconds")]
    LoginThrottled { retry_after: u64 },
    /// 429: this partner is over its request rate.
    #[error("too many requests for this client; retry after {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    /// 415
    #[error("the request body must be JSON, sent with 'Content-Type: application/json'")]
    UnsupportedMediaType,
    /// 413
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 408: the request body did not arrive in time.
    #[error(
        "the request body did not arrive within {0} seconds; send it whole, then wait for the answer"
    )]
    RequestTimeout(u64),
    /// 503: the database is unreachable.
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable,
    /// 500: a bug. Logged with its cause, answered opaquely.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The error part of the envelope, kept on the response until the request id is known.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `SIGNATURE_INVALID`.
    pub code: &'static str,
    /// Offending fields or other specifics, e.g. `{"field": "products[0].quantity", "message": "..."}`.
    pub details: Vec<Value>,
    #[serde(skip)]
    pub message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidJson(_)
            | Self::Validation(_)
            | Self::InvalidQuery(_)
            | Self::InvalidIdempotencyKey
            | Self::InvalidIfMatch(_) => StatusCode::BAD_REQUEST,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::OrderNotFound(_) | Self::EventNotFound(_) | Self::WebhookEndpointNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Self::DuplicatePurchaseOrder { .. }
            | Self::IdempotencyKeyReused
            | Self::StatusConflict { .. }
            | Self::OrderNotAmendable { .. }
            | Self::BatchRejected(_) => StatusCode::CONFLICT,
            Self::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            Self::LoginThrottled { .. } | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::SandboxOnly => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "INVALID_JSON",
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::InvalidQuery(_) => "INVALID_QUERY",
            Self::Auth(auth) => auth.code(),
            Self::OrderNotFound(_) => "ORDER_NOT_FOUND",
            Self::EventNotFound(_) => "EVENT_NOT_FOUND",
            Self::WebhookEndpointNotFound(_) => "WEBHOOK_ENDPOINT_NOT_FOUND",
            Self::DuplicatePurchaseOrder { .. } => "DUPLICATE_PURCHASE_ORDER",
            Self::InvalidIdempotencyKey => "INVALID_IDEMPOTENCY_KEY",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::StatusConflict { requested, .. } => match requested {
                crate::domain::OrderStatus::Cancelled => "ORDER_NOT_CANCELLABLE",
                _ => "ILLEGAL_STATUS_CHANGE",
            },
            Self::OrderNotAmendable { .. } => "ORDER_NOT_AMENDABLE",
            Self::VersionMismatch { .. } => "VERSION_MISMATCH",
            Self::InvalidIfMatch(_) => "INVALID_IF_MATCH",
            Self::BatchRejected(_) => "BATCH_REJECTED",
            Self::LoginThrottled { .. } => "LOGIN_THROTTLED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout(_) => "REQUEST_TIMEOUT",
            Self::Unavailable => "SERVICE_UNAVAILABLE",
            Self::SandboxOnly => "SANDBOX_ONLY",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The envelope this error is answered with, for the API documentation
    /// (the request id is made up; a real one echoes `X-Request-Id`).
    pub fn envelope_example(&self) -> Value {
        serde_json::json!({
            "message": self.to_string(),
            "error": {"code": self.code(), "details": self.details()},
            "request_id": "4c6f2a9e-1b7d-4e3a-9f0c-8d5b2e7a1c34",
        })
    }

    /// Offending fields or other specifics, as the envelope's `details`.
    pub fn details(&self) -> Vec<Value> {
        let fields = |errors: &[FieldError]| errors.iter().map(|e| serde_json::json!(e)).collect();
        match self {
            Self::Validation(errors) | Self::InvalidQuery(errors) => fields(errors),
            Self::DuplicatePurchaseOrder {
                purchase_order_no,
                existing_id,
            } => vec![serde_json::json!({
                "field": "purchase_order_no",
                "message": format!("already used by sales order {existing_id}"),
                "existing_id": existing_id,
                "purchase_order_no": purchase_order_no,
            })],
            Self::StatusConflict { current, requested } => vec![serde_json::json!({
                "field": "status",
                "status": current,
                "requested": requested,
                "message": format!("no move from {current} to {requested}"),
            })],
            Self::OrderNotAmendable { current } => {
                use crate::domain::OrderStatus;
                let advice = match current {
                    OrderStatus::Cancelled | OrderStatus::Rejected => {
                        "send the corrected order as a new one: its purchase_order_no is free again"
                    }
                    _ => "the integration team has acted on it; ask them to change it",
                };
                vec![serde_json::json!({
                    "field": "status",
                    "status": current,
                    "message": format!("the order is {current}; {advice}"),
                })]
            }
            Self::InvalidIfMatch(sent) => vec![serde_json::json!({
                "header": "If-Match",
                "received": sent,
                "message": "send the ETag of the order as you read it, e.g. \"3\"",
            })],
            Self::VersionMismatch { current } => vec![serde_json::json!({
                "header": "If-Match",
                "current_version": current,
                "message": format!("the order is at version {current}"),
            })],
            Self::BatchRejected(items) => items.clone(),
            Self::Auth(AuthError::MissingHeaders(headers)) => headers
                .iter()
                .map(|h| serde_json::json!({"header": h, "message": "is required"}))
                .collect(),
            // Not secret, and the fastest way for a partner to find a signing bug.
            Self::Auth(AuthError::SignatureInvalid {
                string_to_sign,
                diagnosis,
                ..
            }) => {
                let mut detail = serde_json::json!({"string_to_sign": string_to_sign});
                if let Some(diagnosis) = diagnosis {
                    detail["keys_tried"] = serde_json::json!(diagnosis.keys_tried);
                    if let Some(mistake) = &diagnosis.mistake {
                        detail["mistake"] = serde_json::json!(mistake);
                    }
                }
                vec![detail]
            }
            _ => Vec::new(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::Unavailable
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = ?cause, "request failed");
        }
        let body = ErrorBody {
            code: self.code(),
            details: self.details(),
            message: self.to_string(),
        };
        let mut response = status.into_response();
        if let Self::Auth(error) = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(error.bearer_challenge()),
            );
        }
        if let Self::RequestTimeout(_) = &self {
            // The rest of the body may still be on its way: not worth waiting for.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Self::VersionMismatch { current } = &self {
            // The version the order is at, as a single-order answer carries it.
            response.headers_mut().insert(header::ETAG, etag(*current));
        }
        if let Self::LoginThrottled { retry_after } | Self::RateLimited { retry_after } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            metrics::counter!("throttled_total", "code" => self.code()).increment(1);
        }
        if let Self::Unavailable = &self {
            // Outages here are a restart or a failover: worth a retry soon.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        }
        if let Self::Auth(auth) = &self {
            metrics::counter!("auth_failures_total", "reason" => auth.code()).increment(1);
        }
        response.extensions_mut().insert(body);
        response
    }
}

/// An order version as an entity tag: `"3"`.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::try_from(format!("\"{version}\""))
        .expect("digits in quotes are a valid header value")
}

/// The envelope every error is sent in (documentation of the wire shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// A sentence for humans.
    pub message: String,
    pub error: ErrorBody,
    /// Echo of `X-Request-Id`; quote it when reporting a problem.
    pub request_id: String,
}
