//! The signed event routes: the partner's feed of order changes, read with
//! `after` and, to learn of changes within a second without polling, `wait`.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use super::authenticate::AuthenticatedPartner;
use super::error::{ApiError, ErrorEnvelope, FieldError};
use super::extract::{KnownParams, Params};
use super::openapi::SIGNED_ROUTE_401;
use super::state::AppState;
use crate::domain::Event;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;
/// The longest a call may hold for new events, in seconds.
pub const MAX_WAIT: u64 = 30;

#[derive(Serialize, ToSchema)]
pub struct EventListResponse {
    #[schema(example = "Events retrieved successfully")]
    pub message: &'static str,
    /// Oldest first.
    pub data: Vec<Event>,
    /// The last `sequence` returned, or `after` when none was: the next call's `after`.
    #[schema(example = 42)]
    pub next_after: i64,
}

#[derive(Serialize, ToSchema)]
pub struct EventResponse {
    #[schema(example = "Event retrieved successfully")]
    pub message: &'static str,
    pub data: Event,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only events with a larger `sequence` (default 0: from the first kept).
    #[param(value_type = Option<i64>, minimum = 0)]
    after: Option<String>,
    /// At most this many events, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Seconds to hold the call, 0–30, when no event is newer than `after`:
    /// it answers as soon as one commits, or with none when the time is up.
    #[param(value_type = Option<u32>, minimum = 0, maximum = 30)]
    wait: Option<String>,
}

impl KnownParams for EventParams {
    const NAMES: &'static [&'static str] = &["after", "limit", "wait"];
}

/// What an events query asks for, checked.
#[derive(Debug)]
pub(super) struct FeedQuery {
    after: i64,
    limit: u32,
    wait: Duration,
}

/// List your order events
///
/// Every change to one of your orders (`order.created`, `order.accepted`,
/// `order.rejected`, `order.fulfilled`, `order.cancelled`, and later
/// `order.amended`) is an event, written in the same transaction as the
/// change. Your events are numbered by `sequence` 1, 2, 3, … with no gaps,
/// in the order they were committed: remember the `next_after` of each
/// answer and pass it as the next `after`, and you see every event once, in
/// order. With `wait`, a call that finds nothing new holds until an event
/// commits (answering within a second of it) or `wait` seconds pass.
/// Events are kept for at least 30 days.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "Events",
    params(EventParams),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "Your events after `after`, oldest first", body = EventListResponse),
        (status = 400, description = "`INVALID_QUERY`, naming each bad parameter", body = ErrorEnvelope),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable; retry with the same `after`", body = ErrorEnvelope),
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    params: Result<Params<EventParams>, ApiError>,
    partner: AuthenticatedPartner,
) -> Result<Json<EventListResponse>, ApiError> {
    let Params(params) = params?;
    let query = parse(&params)?;
    let client_id = &partner.client_id;
    // Taken before the first look, so an event committed during it still
    // ends the wait.
    let mut subscription = (!query.wait.is_zero()).then(|| state.store.subscribe(client_id));
    let deadline = Instant::now() + query.wait;
    let events = loop {
        let events = state
            .store
            .events_after(client_id, query.after, query.limit)
            .await?;
        let Some(subscription) = subscription.as_mut() else {
            break events;
        };
        if !events.is_empty()
            || tokio::time::timeout_at(deadline, subscription.changed())
                .await
                .is_err()
        {
            break events;
        }
    };
    Ok(Json(EventListResponse {
        message: "Events retrieved successfully",
        next_after: events.last().map_or(query.after, |event| event.sequence),
        data: events,
    }))
}

/// Get one of your events
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "Events",
    params(("id" = String, Path, description = "The event's `id` (`evt_…`, also the `webhook-id` of its deliveries)")),
    security(("JWT-auth" = [], "X-CLIENT-ID" = [], "X-TIMESTAMP" = [], "X-SIGNATURE" = [])),
    responses(
        (status = 200, description = "The event", body = EventResponse),
        (status = 401, description = SIGNED_ROUTE_401, body = ErrorEnvelope),
        (status = 404, description = "`EVENT_NOT_FOUND` (also for another partner's event, or one past its 30 days)", body = ErrorEnvelope),
        (status = 429, description = "`RATE_LIMITED`: over this client's request rate; wait `Retry-After` seconds", body = ErrorEnvelope),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database is unreachable", body = ErrorEnvelope),
    )
)]
pub async fn get_event(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    partner: AuthenticatedPartner,
) -> Response {
    match path {
        Ok(Path(id)) => find(&state, &partner, id).await.into_response(),
        // Taken as a `Result` so that the signature is checked first.
        Err(rejection) => rejection.into_response(),
    }
}

async fn find(
    state: &AppState,
    partner: &AuthenticatedPartner,
    id: String,
) -> Result<Json<EventResponse>, ApiError> {
    let event = state
        .store
        .event(&partner.client_id, &id)
        .await?
        .ok_or(ApiError::EventNotFound(id))?;
    Ok(Json(EventResponse {
        message: "Event retrieved successfully",
        data: event,
    }))
}

pub(super) fn parse(params: &EventParams) -> Result<FeedQuery, ApiError> {
    let mut errors = Vec::new();
    let mut number = |name: &str, text: Option<&str>, range: (u64, u64), default: u64| {
        let Some(text) = text else {
            return default;
        };
        match text.parse::<u64>() {
            Ok(value) if (range.0..=range.1).contains(&value) => value,
            _ => {
                let (low, high) = range;
                let rule = if high == i64::MAX as u64 {
                    format!("must be a whole number, {low} or more")
                } else {
                    format!("must be a whole number from {low} to {high}")
                };
                errors.push(FieldError::new(name, rule));
                default
            }
        }
    };
    let after = number("after", params.after.as_deref(), (0, i64::MAX as u64), 0);
    let limit = number(
        "limit",
        params.limit.as_deref(),
        (1, MAX_LIMIT.into()),
        DEFAULT_LIMIT.into(),
    );
    let wait = number("wait", params.wait.as_deref(), (0, MAX_WAIT), 0);
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    Ok(FeedQuery {
        after: i64::try_from(after).unwrap_or(i64::MAX),
        limit: u32::try_from(limit).unwrap_or(MAX_LIMIT),
        wait: Duration::from_secs(wait),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(after: Option<&str>, limit: Option<&str>, wait: Option<&str>) -> EventParams {
        EventParams {
            after: after.map(str::to_owned),
            limit: limit.map(str::to_owned),
            wait: wait.map(str::to_owned),
        }
    }

    fn fields(error: ApiError) -> Vec<String> {
        match error {
            ApiError::InvalidQuery(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected INVALID_QUERY, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_from_the_start_a_hundred_at_a_time_without_waiting() {
        let query = parse(&params(None, None, None)).unwrap();
        assert_eq!(
            (query.after, query.limit, query.wait),
            (0, 100, Duration::ZERO)
        );
    }

    #[test]
    fn every_bad_parameter_is_named_at_once() {
        let error = parse(&params(Some("-1"), Some("501"), Some("31"))).unwrap_err();
        assert_eq!(fields(error), ["after", "limit", "wait"]);
        let error = parse(&params(Some("x"), Some("0"), Some("1.5"))).unwrap_err();
        assert_eq!(fields(error), ["after", "limit", "wait"]);
    }

    #[test]
    fn the_bounds_themselves_are_accepted() {
        let query = parse(&params(
            Some("9223372036854775807"),
            Some("500"),
            Some("30"),
        ))
        .unwrap();
        assert_eq!(query.after, i64::MAX);
        assert_eq!(query.limit, 500);
        assert_eq!(query.wait, Duration::from_secs(30));
        assert!(parse(&params(Some("9223372036854775808"), None, None)).is_err());
    }
}
