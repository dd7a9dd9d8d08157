//! The signed webhook-endpoint routes: a partner registers where its events
//! are POSTed, sees each endpoint's recent attempts, rotates its secret,
//! sends it a ping, and deletes it.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::authenticate::AuthenticatedPartner;
use super::error::{ApiError, ErrorEnvelope, FieldError};
use super::extract::JsonBody;
use super::openapi::SIGNED_ROUTE_401;
use super::state::AppState;
use crate::domain::webhook::{
    DeliveryAttempt, Endpoint, MAX_ENDPOINTS, ROTATION_OVERLAP, WebhookSecret,
};
use crate::domain::{AuditKind, EventType, ids};
use crate::store::{AuditEvent, EndpointRecord, NewEndpoint};
use crate::webhook::address;

const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 200;
/// Attempts shown with one endpoint.
const RECENT_ATTEMPTS: u32 = 50;
const FIELDS: [&str; 3] = ["url", "types", "description"];

/// Body of `POST /api/v1/webhook-endpoints`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateEndpointRequest {
    /// Where events are POSTed: `https://`, reaching a public address; at most 2048 characters.
    #[schema(example = "https://erp.example.com/hooks/sales-orders")]
    url: String,
    /// The event types to deliver (default: all, including types added later).
    types: Option<Vec<EventType>>,
    /// A note for yourself, at most 200 characters.
    #[schema(example = "ERP order status sync")]
    description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointResponse {
    #[schema(example = "Webhook endpoint created")]
    pub message: &'static str,
    pub data: Endpoint,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointListResponse {
    #[schema(example = "Webhook endpoints retrieved successfully")]
    pub message: &'static str,
    pub data: Vec<Endpoint>,
}

/// An endpoint with its latest delivery attempts, newest first.
#[derive(Serialize, ToSchema)]
pub struct EndpointDetail {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// Up to the 50 latest attempts, newest first.
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointDetailResponse {
    #[schema(example = "Webhook endpoint retrieved successfully")]
    pub message: &'static str,
    pub data: EndpointDetail,
}

#[derive(Serialize, ToSchema)]
pub struct PingQueued {
    /// The `webhook-id` the ping is delivered with.
    #[schema(example = "evt_0a1b2c3d4e5f60718293a4b5c6d7e8f9")]
    pub event_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct PingResponse {
    #[schema(example = "Ping queued")]
    pub message: &'static str,
    pub data: PingQueued,
}

/// Register a webhook endpoint
///
/// Each of your events (of the `types` chosen) is POSTed to `url` as the
/// Standard Webhooks specification describes, so its libraries verify it:
/// headers `webhook-id` (the event id, the same on every retry),
/// `webhook-timestamp` and `webhook-signature` (`v1,` + base64 HMAC-SHA256
/// with the key in `secret`). The `secret` is shown only in this answer and
/// after a rotation. Events made from now on are delivered; a 2xx within 15 s
/// is success, anything else is retried after about 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h and 10 h. An endpoint whose deliveries all fail for 5 days is
/// disabled. At most 10 endpoints.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints",
    tag = "Webhooks",
    request_body = CreateEndpointRequest,
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 201, description = "Created; `data.secret` is shown only now", body = EndpointResponse),
        (status = 400, description = "`INVALID_JSON`, or `VALIDATION_FAILED` naming each bad field (a URL that is not https:// or reaches a private address, an unknown event type, an eleventh endpoint)", body = ErrorEnvelope),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json`", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    partner: AuthenticatedPartner,
) -> Result<Response, ApiError> {
    let body = JsonBody::signed(&headers, partner.body)?;
    let request = parse(&body.0, state.settings.webhooks.allow_insecure).await?;
    let id = ids::new_endpoint_id();
    let secret = WebhookSecret::generate();
    let new = NewEndpoint {
        id: &id,
        client_id: &partner.client_id,
        url: request.url.as_str(),
        types: request.types.as_deref(),
        description: request.description.as_deref(),
        secret: &secret,
        now: state.clock.now(),
    };
    let created = state
        .store
        .insert_endpoint(&new, MAX_ENDPOINTS)
        .await?
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "url",
                format!(
                    "this client already has {MAX_ENDPOINTS} webhook endpoints, the most allowed; delete one first"
                ),
            )])
        })?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointResponse {
            message: "Webhook endpoint created",
            data: created.to_endpoint(true),
        }),
    )
        .into_response())
}

/// List your webhook endpoints
#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints",
    tag = "Webhooks",
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "Your endpoints, oldest first (without secrets)", body = EndpointListResponse),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    partner: AuthenticatedPartner,
) -> Result<Json<EndpointListResponse>, ApiError> {
    let endpoints = state.store.endpoints(&partner.client_id).await?;
    Ok(Json(EndpointListResponse {
        message: "Webhook endpoints retrieved successfully",
        data: endpoints.iter().map(|e| e.to_endpoint(false)).collect(),
    }))
}

/// Get one of your webhook endpoints, with its latest delivery attempts
#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The endpoint's `id` (`we_…`)")),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "The endpoint and its latest attempts: time, event id, HTTP status or error, duration", body = EndpointDetailResponse),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 404, description = "`WEBHOOK_ENDPOINT_NOT_FOUND` (also for another partner's endpoint)", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn get_endpoint(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    let id = match path {
        Ok(Path(id)) => id,
        // Taken as a `Result` so that the signature is checked first.
        Err(rejection) => return rejection.into_response(),
    };
    let result = async {
        let endpoint = own(&state, &partner, &id).await?;
        let attempts = state.store.attempts(&endpoint.id, RECENT_ATTEMPTS).await?;
        Ok::<_, ApiError>(Json(EndpointDetailResponse {
            message: "Webhook endpoint retrieved successfully",
            data: EndpointDetail {
                endpoint: endpoint.to_endpoint(false),
                attempts,
            },
        }))
    };
    result.await.into_response()
}

/// Delete one of your webhook endpoints
///
/// Deliveries to it stop at once, including retries still pending.
#[utoipa::path(
    delete,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The endpoint's `id` (`we_…`)")),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "Deleted; the endpoint as it was", body = EndpointResponse),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 404, description = "`WEBHOOK_ENDPOINT_NOT_FOUND` (also for another partner's endpoint)", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    let id = match path {
        Ok(Path(id)) => id,
        // Taken as a `Result` so that the signature is checked first.
        Err(rejection) => return rejection.into_response(),
    };
    let result = async {
        let endpoint = own(&state, &partner, &id).await?;
        if !state.store.delete_endpoint(&partner.client_id, &id).await? {
            return Err(ApiError::WebhookEndpointNotFound(id.clone()));
        }
        Ok(Json(EndpointResponse {
            message: "Webhook endpoint deleted",
            data: endpoint.to_endpoint(false),
        }))
    };
    result.await.into_response()
}

/// Rotate an endpoint's signing secret
///
/// Answers with the new secret (shown only now). For 24 hours deliveries
/// carry two signatures, by the new secret and by the old one, so you can
/// switch your receiver over without missing a delivery.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints/{id}/rotate-secret",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The endpoint's `id` (`we_…`)")),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "The endpoint with its new `secret`", body = EndpointResponse),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 404, description = "`WEBHOOK_ENDPOINT_NOT_FOUND` (also for another partner's endpoint)", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    let id = match path {
        Ok(Path(id)) => id,
        // Taken as a `Result` so that the signature is checked first.
        Err(rejection) => return rejection.into_response(),
    };
    let result = async {
        let secret = WebhookSecret::generate();
        let old_until = state.clock.now() + ROTATION_OVERLAP;
        let endpoint = state
            .store
            .rotate_endpoint_secret(&partner.client_id, &id, &secret, old_until)
            .await?
            .ok_or_else(|| ApiError::WebhookEndpointNotFound(id.clone()))?;
        Ok::<_, ApiError>(Json(EndpointResponse {
            message: "Webhook secret rotated; the old one also signs for 24 hours",
            data: endpoint.to_endpoint(true),
        }))
    };
    result.await.into_response()
}

/// Send a test event to an endpoint
///
/// Queues a `ping` event to this endpoint only (not to your feed), delivered,
/// signed and retried like any other.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints/{id}/test",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The endpoint's `id` (`we_…`)")),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 202, description = "The ping is queued", body = PingResponse),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 404, description = "`WEBHOOK_ENDPOINT_NOT_FOUND` (also for another partner's endpoint)", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn test_endpoint(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    let id = match path {
        Ok(Path(id)) => id,
        // Taken as a `Result` so that the signature is checked first.
        Err(rejection) => return rejection.into_response(),
    };
    let result = async {
        let endpoint = own(&state, &partner, &id).await?;
        let event_id = ids::new_event_id();
        let now = state.clock.now();
        let payload = json!({
            "id": event_id,
            "type": "ping",
            "created_at": crate::store::rfc3339(now),
            "livemode": !partner.sandbox,
            "data": {"endpoint_id": endpoint.id},
        });
        state
            .store
            .enqueue_delivery(&endpoint.id, &event_id, &payload.to_string(), now)
            .await?;
        Ok::<_, ApiError>((
            StatusCode::ACCEPTED,
            Json(PingResponse {
                message: "Ping queued",
                data: PingQueued { event_id },
            }),
        ))
    };
    result.await.into_response()
}

/// Enable an endpoint again
///
/// After the server disabled it (its deliveries failed for 5 days), once
/// it is fixed. Deliveries still pending resume, and events made while it
/// was disabled are delivered too.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints/{id}/enable",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The endpoint's `id` (`we_…`)")),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "The endpoint, enabled", body = EndpointResponse),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 404, description = "`WEBHOOK_ENDPOINT_NOT_FOUND` (also for another partner's endpoint)", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn enable_endpoint(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    let id = match path {
        Ok(Path(id)) => id,
        // Taken as a `Result` so that the signature is checked first.
        Err(rejection) => return rejection.into_response(),
    };
    let result = async {
        let client_id = &partner.client_id;
        if !state
            .store
            .set_endpoint_enabled(Some(client_id), &id, true, None)
            .await?
        {
            return Err(ApiError::WebhookEndpointNotFound(id.clone()));
        }
        state.audit.record(AuditEvent {
            at: state.clock.now(),
            client_id: Some(client_id.to_string()),
            kind: AuditKind::WebhookEndpointEnabled,
            code: None,
            reason: Some(format!("endpoint {id} enabled")),
            source: None,
            request_id: None,
            actor: "partner".into(),
        });
        let endpoint = own(&state, &partner, &id).await?;
        Ok(Json(EndpointResponse {
            message: "Webhook endpoint enabled",
            data: endpoint.to_endpoint(false),
        }))
    };
    result.await.into_response()
}

/// The partner's own endpoint `id`, or 404.
async fn own(
    state: &AppState,
    partner: &AuthenticatedPartner,
    id: &str,
) -> Result<EndpointRecord, ApiError> {
    state
        .store
        .endpoint(Some(&partner.client_id), id)
        .await?
        .ok_or_else(|| ApiError::WebhookEndpointNotFound(id.to_owned()))
}

/// A create body, checked.
struct EndpointRequest {
    url: Url,
    types: Option<Vec<EventType>>,
    description: Option<String>,
}

/// Reads a create body, listing every problem at once.
async fn parse(body: &[u8], allow_insecure: bool) -> Result<EndpointRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidJson(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "",
            "request body must be a JSON object",
        )]));
    };
    let mut errors = Vec::new();
    for unknown in object.keys().filter(|key| !FIELDS.contains(&key.as_str())) {
        errors.push(FieldError::new(
            unknown.as_str(),
            format!(
                "is not a known field; expected one of: {}",
                FIELDS.join(", ")
            ),
        ));
    }
    let url = match object.get("url") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("url", "is required"));
            None
        }
        Some(Value::String(text)) if text.len() > MAX_URL => {
            errors.push(FieldError::new(
                "url",
                format!("must be at most {MAX_URL} characters"),
            ));
            None
        }
        Some(Value::String(text)) => match Url::parse(text) {
            Err(error) => {
                errors.push(FieldError::new("url", format!("is not a URL: {error}")));
                None
            }
            Ok(url) => match address::check_url(&url, allow_insecure) {
                Err(problem) => {
                    errors.push(FieldError::new("url", problem));
                    None
                }
                Ok(()) => Some(url),
            },
        },
        Some(_) => {
            errors.push(FieldError::new("url", "must be a string"));
            None
        }
    };
    let types = match object.get("types") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.is_empty() => {
            errors.push(FieldError::new(
                "types",
                "must name at least one event type (leave it out for all)",
            ));
            None
        }
        Some(Value::Array(items)) => {
            let mut types = Vec::new();
            for (index, item) in items.iter().enumerate() {
                match item.as_str().and_then(EventType::parse) {
                    Some(kind) if !types.contains(&kind) => types.push(kind),
                    Some(_) => {}
                    None => errors.push(FieldError::new(
                        format!("types[{index}]"),
                        format!(
                            "must be one of {}",
                            EventType::ALL.map(EventType::as_str).join(", ")
                        ),
                    )),
                }
            }
            Some(types)
        }
        Some(_) => {
            errors.push(FieldError::new("types", "must be an array of event types"));
            None
        }
    };
    let description = match object.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() > MAX_DESCRIPTION => {
            errors.push(FieldError::new(
                "description",
                format!("must be at most {MAX_DESCRIPTION} characters"),
            ));
            None
        }
        Some(Value::String(text)) if text.chars().any(char::is_control) => {
            errors.push(FieldError::new(
                "description",
                "must not contain control characters (newlines, tabs, NUL)",
            ));
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(FieldError::new("description", "must be a string"));
            None
        }
    };
    // Resolved only once the rest is sound: a lookup is the slow part.
    if let (Some(url), true) = (&url, errors.is_empty())
        && let Err(problem) = address::check_resolves(url, allow_insecure).await
    {
        errors.push(FieldError::new("url", problem));
    }
    match url {
        Some(url) if errors.is_empty() => Ok(EndpointRequest {
            url,
            types,
            description,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}
