//! `GET /api/v1/activity`: the partner's own activity audit (what the
//! operator's `partner activity` shows), so a partner can watch its own
//! logins, refusals and throttling, and find what happened to one request.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::authenticate::AuthenticatedPartner;
use super::error::{ApiError, ErrorEnvelope, FieldError};
use super::extract::{KnownParams, Params};
use super::openapi::SIGNED_ROUTE_401;
use super::orders::instant_param;
use super::state::AppState;
use crate::domain::AuditKind;
use crate::store::{AuditEvent, AuditQuery};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;
/// Request ids are ours (UUIDs) or the caller's `X-Request-Id`, kept only
/// when at most this long.
const MAX_REQUEST_ID: usize = 200;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Only events at or after this time (RFC 3339, e.g. `2026-11-24T00:00:00Z`).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// At most this many events, 1–500 (default 100), newest first.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Only the events of the request with this `X-Request-Id` (as every
    /// answer carries it).
    #[param(value_type = Option<String>, min_length = 1, max_length = 200)]
    request_id: Option<String>,
}

impl KnownParams for ActivityParams {
    const NAMES: &'static [&'static str] = &["since", "limit", "request_id"];
}

/// One thing that happened to your access.
#[derive(Serialize, ToSchema)]
pub struct ActivityEvent {
    /// RFC 3339, UTC, to the millisecond.
    #[schema(example = "2026-11-30T09:15:02.114Z")]
    pub at: String,
    pub kind: AuditKind,
    /// The error code answered, when there was one.
    #[schema(example = "SIGNATURE_INVALID")]
    pub code: Option<String>,
    /// Why, in words.
    pub reason: Option<String>,
    /// The address the request came from.
    #[schema(example = "203.0.113.7")]
    pub source: Option<String>,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
    /// `partner` (your client, through the API), `operator` (the
    /// integration team, e.g. a key added or a rate changed) or `server`
    /// (e.g. a webhook endpoint disabled after days of failures).
    #[schema(example = "partner")]
    pub actor: &'static str,
}

impl From<AuditEvent> for ActivityEvent {
    fn from(event: AuditEvent) -> Self {
        Self {
            at: crate::store::rfc3339(event.at),
            kind: event.kind,
            code: event.code,
            reason: event.reason,
            source: event.source,
            request_id: event.request_id,
            // Which operator is the integration team's business.
            actor: match event.actor.as_str() {
                "partner" => "partner",
                actor if actor.starts_with("operator") => "operator",
                _ => "server",
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ActivityResponse {
    #[schema(example = "Activity retrieved successfully")]
    pub message: &'static str,
    /// Newest first.
    pub data: Vec<ActivityEvent>,
}

/// List your activity
///
/// What happened to your access, newest first: logins (and failed ones),
/// token refreshes, refused requests with the code answered (a signature
/// that did not verify, a stale timestamp, ...), the start of rate limiting,
/// and the integration team's changes to your client (keys, secret, rate,
/// webhook endpoints). Look up one request by the `X-Request-Id` its answer
/// carried. Kept for 90 days. Successful API calls are not listed: your
/// orders and events record those.
#[utoipa::path(
    get,
    path = "/api/v1/activity",
    tag = "Activity",
    params(ActivityParams),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "Your activity, newest first", body = ActivityResponse),
        (status = 400, description = "`INVALID_QUERY`, naming each bad parameter", body = ErrorEnvelope),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
    )
)]
pub async fn list_activity(
    State(state): State<AppState>,
    params: Result<Params<ActivityParams>, ApiError>,
    partner: AuthenticatedPartner,
) -> Result<Json<ActivityResponse>, ApiError> {
    let Params(params) = params?;
    let (since, limit) = parse(&params)?;
    let events = state
        .store
        .audit_events(
            &partner.client_id,
            &AuditQuery {
                since,
                request_id: params.request_id.as_deref(),
                limit,
            },
        )
        .await?;
    Ok(Json(ActivityResponse {
        message: "Activity retrieved successfully",
        data: events.into_iter().map(ActivityEvent::from).collect(),
    }))
}

pub(super) fn parse(params: &ActivityParams) -> Result<(Option<OffsetDateTime>, u32), ApiError> {
    let mut errors = Vec::new();
    let since = instant_param("since", params.since.as_deref(), &mut errors);
    let limit = match params.limit.as_deref().map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}"),
            ));
            DEFAULT_LIMIT
        }
    };
    if params
        .request_id
        .as_deref()
        .is_some_and(|id| id.is_empty() || id.len() > MAX_REQUEST_ID)
    {
        errors.push(FieldError::new(
            "request_id",
            format!("must be 1 to {MAX_REQUEST_ID} characters: an X-Request-Id an answer carried"),
        ));
    }
    if errors.is_empty() {
        Ok((since, limit))
    } else {
        Err(ApiError::InvalidQuery(errors))
    }
}
