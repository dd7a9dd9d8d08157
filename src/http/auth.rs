//! `POST /api/v1/auth/login` and `POST /api/v1/auth/refresh`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorEnvelope, FieldError};
use super::extract::JsonBody;
use super::state::AppState;
use crate::auth::AuthError;
use crate::auth::jwt::Claims;
use crate::config::Secret;
use crate::domain::{AuditKind, ClientId, ids};
use crate::http::audit_note::Audited;
use crate::http::middleware::{RequestContext, note_client_id};
use crate::store::{RefreshOutcome, TokenRow};

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Client ID
    #[schema(example = "partner-client-001")]
    pub client_id: String,
    /// Client Secret
    #[schema(example = "secret-key-123")]
    pub client_secret: String,
    /// Sandbox clients only: this token's lifetime in seconds, 10–43200
    /// (to test expiry and refresh without waiting 12 hours). A live client
    /// sending it gets 400.
    #[schema(minimum = 10, maximum = 43200, nullable = false)]
    pub ttl_seconds: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// JWT Token
    #[schema(example = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...")]
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    #[schema(example = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...")]
    pub token: String,
    /// When the token expires, in unix seconds.
    #[schema(example = 1704067200)]
    pub expired_at: i64,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        // A token must not be kept by any cache between us and the partner.
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// Generate JWT token with client credentials
///
/// Exchanges the partner's `client_id` and `client_secret` for an access token
/// valid for 12 hours (by default). Unknown client ids and wrong secrets get the
/// same answer.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "Authentication",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A new access token", body = TokenResponse),
        (status = 400, description = "`INVALID_JSON`, or `VALIDATION_FAILED` naming every missing, blank or unknown field, or a `client_secret` holding whitespace (secrets never do: a trailing newline copied from a file?)", body = ErrorEnvelope),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json`", body = ErrorEnvelope),
        (status = 401, description = "`INVALID_CREDENTIALS` or `PARTNER_DISABLED`", body = ErrorEnvelope),
        (status = 429, description = "`LOGIN_THROTTLED`: more than 10 failed logins for this client id (or 100 from this address) within a minute; wait `Retry-After` seconds", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds until logins are checked again"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    body: JsonBody,
) -> Audited<Result<TokenResponse, ApiError>> {
    let result = log_in(&state, &extensions, body).await;
    let kind = match &result {
        Ok(_) => Some(AuditKind::LoginSucceeded),
        // Refused for its credentials (or a disabled partner); a throttled,
        // malformed or unanswerable login is not a failed one.
        Err(ApiError::Auth(_)) => Some(AuditKind::LoginFailed),
        Err(_) => None,
    };
    Audited(kind, result)
}

/// The login body's members, read as the login reads them (the OpenAPI
/// example of a refused login is made by this too).
pub(super) fn login_fields(body: &JsonBody) -> Result<([String; 2], Option<Value>), ApiError> {
    body.string_fields_and(["client_id", "client_secret"], Some("ttl_seconds"))
}

/// The refresh body's one member, read as the refresh reads it.
pub(super) fn refresh_fields(body: &JsonBody) -> Result<[String; 1], ApiError> {
    body.string_fields(["token"])
}

async fn log_in(
    state: &AppState,
    extensions: &axum::http::Extensions,
    body: JsonBody,
) -> Result<TokenResponse, ApiError> {
    let ([client_id, client_secret], ttl_seconds) = login_fields(&body)?;
    let ttl_seconds = ttl_seconds.map(parse_ttl).transpose()?;
    // No secret we issue holds whitespace: this is a copying mistake, told
    // as one (and refused before the throttle and argon2, for any client).
    if client_secret.chars().any(char::is_whitespace) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "client_secret",
            "secrets never contain whitespace: a trailing newline from a file? Send the secret exactly as issued",
        )]));
    }
    // Only a well-formed client id is worth a throttle counter of its own:
    // malformed ones (which no partner has) share one, so made-up ids of any
    // length cannot fill memory.
    let client = ClientId::parse(&client_id).ok();
    let throttle_key = client
        .as_ref()
        .map_or("(malformed client id)", ClientId::as_str);
    let now_ms = state.clock.unix_now().saturating_mul(1000);
    // Always set by the envelope; "unspecified" would only pool unknown callers.
    let address = extensions
        .get::<Arc<RequestContext>>()
        .and_then(|context| context.client_address)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    // Counted before any argon2 work, and refused before it past the limit,
    // so a guessing flood (even a concurrent one) costs us nothing.
    if let Err(refused) = state.login_throttle.begin(throttle_key, address, now_ms) {
        if refused.starts.client || refused.starts.address {
            record_throttling(state, extensions, throttle_key, refused.starts).await;
        }
        state.login_throttle.hold_refusal().await;
        return Err(ApiError::LoginThrottled {
            retry_after: refused.retry_after,
        });
    }
    // The database or the hashing threads failing is not the caller's
    // failure: the attempt is given back.
    let not_checked = |error: ApiError| {
        state.login_throttle.not_checked(throttle_key, address);
        error
    };
    let partner = match &client {
        Some(client) => state
            .store
            .partner(client)
            .await
            .map_err(|error| not_checked(error.into()))?,
        None => None,
    };
    if partner.is_some() {
        // A known partner: the audit records the attempt against it. Attempts
        // on ids nobody has are only counted, so they cannot fill the disk.
        note_client_id(extensions, &client_id);
    }
    let matched = state
        .secrets
        .verify(
            Secret::new(client_secret),
            partner.as_ref().map(|p| p.secret_hash.clone()),
        )
        .await
        .map_err(|error| not_checked(ApiError::Internal(error)))?;
    let partner = match partner {
        Some(partner) if matched => partner,
        _ => return Err(AuthError::InvalidCredentials.into()),
    };
    state
        .login_throttle
        .succeeded(partner.client_id.as_str(), address);
    if !partner.enabled {
        return Err(AuthError::PartnerDisabled.into());
    }
    // Checked once the secret matched: a stranger learns nothing of the mode.
    if ttl_seconds.is_some() && !partner.sandbox {
        return Err(ApiError::Validation(vec![FieldError::new(
            "ttl_seconds",
            "is for sandbox clients only (to test expiry and refresh); a live client's tokens last the standard time",
        )]));
    }
    let now = state.clock.unix_now();
    let mut claims = state.new_claims(
        partner.client_id.as_str(),
        ids::new_session_id(),
        now,
        partner.secret_version,
        now,
    );
    if let Some(ttl) = ttl_seconds {
        // This token only: a refresh of it gets the standard lifetime, which
        // is also the longest a token may live.
        claims.exp = now.saturating_add(ttl.min(seconds(state.settings.token_ttl)));
    }
    // Disabled while the secret was being checked: no session survives it.
    if !state
        .store
        .start_session(&partner.client_id, &token_row(&claims)?)
        .await?
    {
        return Err(AuthError::PartnerDisabled.into());
    }
    issue(state, &claims)
}

/// Refresh JWT token
///
/// Exchanges a token, expired or not, for a new one. Each token is refreshed
/// into exactly one new token; the old one keeps working until it expires. The
/// same refresh sent again within the refresh grace, 30 seconds by default
/// (its answer was lost), gets the same new token; later, or once the new
/// token was refreshed in turn, it is `TOKEN_REUSED` and every token of the
/// login ends. Refused when the token expired longer ago than the refresh
/// window (7 days by default), the login is older than the absolute lifetime
/// (30 days by default), the secret was rotated, or the partner is disabled.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "Authentication",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token", body = TokenResponse),
        (status = 400, description = "`INVALID_JSON`, or `VALIDATION_FAILED` naming every missing, blank or unknown field", body = ErrorEnvelope),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json`", body = ErrorEnvelope),
        (status = 401, description = "`TOKEN_INVALID`, `TOKEN_REUSED`, `TOKEN_REVOKED`, `REFRESH_WINDOW_EXPIRED`, `SESSION_EXPIRED` or `PARTNER_DISABLED`", body = ErrorEnvelope),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    body: JsonBody,
) -> Audited<Result<TokenResponse, ApiError>> {
    let result = exchange(&state, &extensions, body).await;
    let kind = match &result {
        Ok(_) => Some(AuditKind::TokenRefreshed),
        Err(ApiError::Auth(AuthError::TokenReused)) => Some(AuditKind::TokenReuseDetected),
        Err(ApiError::Auth(_)) => Some(AuditKind::RefreshRefused),
        Err(_) => None,
    };
    Audited(kind, result)
}

async fn exchange(
    state: &AppState,
    extensions: &axum::http::Extensions,
    body: JsonBody,
) -> Result<TokenResponse, ApiError> {
    let [token] = refresh_fields(&body)?;
    let old = state.tokens.decode(token.trim())?;
    let now = state.clock.unix_now();
    if old.is_issued_after(now) {
        return Err(
            AuthError::TokenInvalid("this token was issued in the future; log in again").into(),
        );
    }
    // Past its refresh window a token is nobody's any more: the refusal is
    // counted, not stored against the partner.
    if now
        > old
            .exp
            .saturating_add(seconds(state.settings.refresh_window))
    {
        return Err(AuthError::RefreshWindowClosed.into());
    }
    note_client_id(extensions, &old.client_id);
    if now
        >= old
            .auth_time
            .saturating_add(seconds(state.settings.absolute_lifetime))
    {
        return Err(AuthError::SessionExpired.into());
    }
    let claims = state.new_claims(
        &old.client_id,
        old.sid.clone(),
        old.auth_time,
        old.secret_version,
        now,
    );
    let grace =
        time::Duration::try_from(state.settings.refresh_grace).unwrap_or(time::Duration::ZERO);
    let outcome = state
        .store
        .refresh(&old.jti, old.secret_version, &token_row(&claims)?, grace)
        .await?;
    match outcome {
        RefreshOutcome::Refreshed => issue(state, &claims),
        // The same claims, so the same token (HS256 is deterministic).
        RefreshOutcome::Repeated(issued) => issue(
            state,
            &Claims {
                iat: issued.issued_at.unix_timestamp(),
                exp: issued.expires_at.unix_timestamp(),
                jti: issued.jti,
                ..claims
            },
        ),
        RefreshOutcome::Reused => {
            state.auth_cache.forget_session(&old.sid);
            tracing::warn!(client_id = %old.client_id, session = %old.sid, "refresh token reuse: session revoked");
            Err(AuthError::TokenReused.into())
        }
        RefreshOutcome::UnknownToken => {
            Err(AuthError::TokenInvalid("this token was not issued by this service").into())
        }
        RefreshOutcome::SessionRevoked => {
            Err(AuthError::TokenRevoked("this token's login was revoked; log in again").into())
        }
        RefreshOutcome::PartnerDisabled => Err(AuthError::PartnerDisabled.into()),
        RefreshOutcome::SecretRotated => Err(AuthError::TokenRevoked(
            "the client secret was rotated after this token was issued; log in again",
        )
        .into()),
    }
}

/// Records, once per window, that logins for a known partner (or from an
/// address, named with the partner tried) started being refused.
async fn record_throttling(
    state: &AppState,
    extensions: &axum::http::Extensions,
    client_id: &str,
    starts: crate::auth::throttle::Crossed,
) {
    // Once a window per client id or address, so the lookup costs nothing.
    let known = match ClientId::parse(client_id) {
        Ok(client) => matches!(state.store.partner(&client).await, Ok(Some(_))),
        Err(_) => false,
    };
    if !known {
        metrics::counter!("audit_unattributed_total", "kind" => AuditKind::LoginThrottled.as_str())
            .increment(1);
        return;
    }
    let reason = if starts.client {
        "too many failed logins for this client id; logins refused for a minute"
    } else {
        "too many failed logins from this address; logins refused for a minute"
    };
    if let Some(context) = extensions.get::<Arc<RequestContext>>() {
        state.audit.record(context.audit_event(
            state.clock.now(),
            client_id,
            AuditKind::LoginThrottled,
            None,
            Some(reason.to_owned()),
        ));
    }
}

/// A sandbox login's token lifetime: whole seconds, 10 s to 12 h.
fn parse_ttl(value: serde_json::Value) -> Result<i64, ApiError> {
    value
        .as_i64()
        .filter(|ttl| (MIN_TTL..=MAX_TTL).contains(ttl))
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "ttl_seconds",
                format!("must be a whole number of seconds from {MIN_TTL} to {MAX_TTL}"),
            )])
        })
}

/// `ttl_seconds` bounds (SPEC): long enough to make a call, at most 12 h.
const MIN_TTL: i64 = 10;
const MAX_TTL: i64 = 43_200;

fn seconds(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn token_row(claims: &Claims) -> Result<TokenRow<'_>, ApiError> {
    let time = |unix: i64| {
        time::OffsetDateTime::from_unix_timestamp(unix)
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("token time {unix}: {error}")))
    };
    Ok(TokenRow {
        jti: &claims.jti,
        session_id: &claims.sid,
        issued_at: time(claims.iat)?,
        expires_at: time(claims.exp)?,
    })
}

fn issue(state: &AppState, claims: &Claims) -> Result<TokenResponse, ApiError> {
    let token = state.tokens.issue(claims).map_err(ApiError::Internal)?;
    Ok(TokenResponse {
        token,
        expired_at: claims.exp,
    })
}

impl AppState {
    fn new_claims(
        &self,
        client_id: &str,
        sid: String,
        auth_time: i64,
        secret_version: i64,
        now: i64,
    ) -> Claims {
        Claims {
            sub: client_id.to_owned(),
            client_id: client_id.to_owned(),
            iat: now,
            exp: now.saturating_add(seconds(self.settings.token_ttl)),
            jti: ids::new_token_id(),
            sid,
            auth_time,
            secret_version,
        }
    }
}
