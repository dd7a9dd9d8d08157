//! `AuthenticatedPartner`: the four-header check as an extractor, the HTTP
//! adapter of `auth::request`.
//!
//! A handler that takes this type cannot run unless every check passed, in this
//! order: headers present, JWT valid and unexpired, `X-CLIENT-ID` equal to the
//! token's client, `X-TIMESTAMP` inside the window, the partner enabled, the
//! login not revoked, the secret not rotated since the login, and
//! `X-SIGNATURE` valid for one of the partner's active keys: over v1's
//! `client_id|timestamp`, or with `X-SIGNATURE-VERSION: 2` over v2's string,
//! which adds the method, path, query and body digest (required for partners
//! so configured), then the rate limit; a v2 signature on a create or change
//! only once. The checks themselves are pure (`auth::request`); this file
//! reads the headers and fetches the login, the keys and the rate limits they
//! need. The body the signature covers is read here, within the body limit
//! and deadline, and handed on with the partner.
//!
//! A refusal carries its audit kind: a signature that did not verify, or
//! another authentication failure.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::audit_note::Audited;
use super::error::ApiError;
use super::middleware::{RequestContext, X_SIGNATURE, note_client_id};
use super::state::AppState;
use crate::auth::rate_limit::RateLimit;
use crate::auth::request::SignedRequest;
use crate::auth::{AuthError, diagnosis};
use crate::domain::{AuditKind, ClientId};

/// A partner whose request passed every authentication check, and the body
/// its signature covers. Takes the request's body, so it is a handler's last
/// argument.
#[derive(Debug, Clone)]
pub struct AuthenticatedPartner {
    pub client_id: ClientId,
    /// A sandbox (test-mode) partner: its orders say `livemode: false`.
    pub sandbox: bool,
    pub body: Bytes,
}

const AUTHORIZATION: &str = "authorization";
const X_CLIENT_ID: &str = "x-client-id";
const X_TIMESTAMP: &str = "x-timestamp";
pub const X_SIGNATURE_VERSION: &str = "x-signature-version";

impl FromRequest<AppState> for AuthenticatedPartner {
    type Rejection = Audited<ApiError>;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        // Only a request that claims a signature is worth reading: one
        // without is refused for its headers alone.
        let audited = |error: ApiError| {
            let kind = match &error {
                ApiError::Auth(AuthError::SignatureInvalid { .. }) => {
                    Some(AuditKind::SignatureFailed)
                }
                ApiError::Auth(_) => Some(AuditKind::RequestRefused),
                // Throttling is recorded where it starts, not per request.
                _ => None,
            };
            Audited(kind, error)
        };
        let body = if parts.headers.contains_key(X_SIGNATURE) {
            let settings = &state.settings;
            let limit = if parts
                .extensions
                .get::<super::extract::BatchBody>()
                .is_some()
            {
                // A batch body may be 16 times larger: only a caller with a
                // valid token gets to send one, so a stranger cannot make us
                // hold 16 MiB per connection.
                check_token_first(&parts, state).map_err(audited)?;
                settings.batch_body_limit
            } else {
                settings.body_limit
            };
            super::extract::read_body(body, limit, settings.body_read_timeout)
                .await
                .map_err(|error| Audited(None, error))?
        } else {
            Bytes::new()
        };
        let (client_id, sandbox) = authenticate(&parts, &body, state).await.map_err(audited)?;
        Ok(Self {
            client_id,
            sandbox,
            body,
        })
    }
}

/// The checks that need no body (headers present, token ours and current,
/// client id and timestamp), made again by [`authenticate`] with the body.
fn check_token_first(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    let (request, token) = read_headers(parts, &[])?;
    let claims = state.tokens.decode(token)?;
    request.check_token(
        &claims,
        state.clock.now(),
        state.settings.timestamp_tolerance,
    )?;
    Ok(())
}

/// The partner's client id and whether it is a sandbox partner, once every
/// check passed.
async fn authenticate(
    parts: &Parts,
    body: &[u8],
    state: &AppState,
) -> Result<(ClientId, bool), ApiError> {
    let (request, token) = read_headers(parts, body)?;
    let now = state.clock.now();
    let claims = state.tokens.decode(token)?;
    // Our own token, so a well-formed id; checked all the same, as every
    // client id is before it reaches the store.
    let client = ClientId::parse(&claims.client_id)
        .map_err(|_| AuthError::TokenInvalid("this token names no valid client id"))?;
    // From here on, failures are about this partner: the token is ours, so
    // the audit can name whose request was refused. An expired one too, as
    // long as it could still be refreshed; older ones are only counted.
    let refresh_window = i64::try_from(state.settings.refresh_window.as_secs()).unwrap_or(i64::MAX);
    if !claims.is_expired_at(now.unix_timestamp().saturating_sub(refresh_window)) {
        note_client_id(&parts.extensions, &claims.client_id);
    }
    request.check_token(&claims, now, state.settings.timestamp_tolerance)?;
    let login = state
        .auth_cache
        .session_state(&state.store, &claims.sid)
        .await?;
    let login = request.check_login(&claims, login.as_deref())?;
    let sandbox = login.sandbox;

    let keys = state.auth_cache.active_keys(&state.store, &client).await?;
    let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let message = match request.verify(&keys) {
        Ok(message) => message,
        Err(mut error) => {
            explain(state, &request, &mut error, now_ms).await;
            return Err(error.into());
        }
    };
    // Counted only for authenticated requests, so nobody else can spend a
    // partner's budget.
    take_rate(
        state,
        parts,
        &client,
        RateLimit::from_column(login.rate_limit),
        now,
    )?;
    // After the rate limit: a refused request neither burns its signature
    // nor costs a write. Reads are left out: a replayed GET changes nothing,
    // and a partner may read the same page twice within a second.
    if request.v2 && !parts.method.is_safe() {
        remember_signature(state, &client, &message, now).await?;
    }
    Ok((client, sandbox))
}

/// The signed request the headers describe, and the bearer token.
fn read_headers<'a>(
    parts: &'a Parts,
    body: &'a [u8],
) -> Result<(SignedRequest<'a>, &'a str), AuthError> {
    let headers = &parts.headers;
    let v2 = match headers
        .get(X_SIGNATURE_VERSION)
        .map(|v| v.to_str().map(str::trim))
    {
        None | Some(Ok("1")) => false,
        Some(Ok("2")) => true,
        Some(_) => return Err(AuthError::SignatureVersionUnsupported),
    };
    let [authorization, client_id, timestamp, signature] = required_headers(
        headers,
        [AUTHORIZATION, X_CLIENT_ID, X_TIMESTAMP, X_SIGNATURE],
    )?;
    let token = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or(AuthError::TokenInvalid(
            "Authorization must be 'Bearer <token>'",
        ))?;
    let request = SignedRequest {
        client_id,
        timestamp,
        v2,
        method: parts.method.as_str(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |pq| pq.as_str()),
        body,
        signature,
    };
    Ok((request, token))
}

/// Takes one request from the partner's rate budget; the first refusal of a
/// run is audited, the rest only answered.
fn take_rate(
    state: &AppState,
    parts: &Parts,
    client: &ClientId,
    limit: RateLimit,
    now: time::OffsetDateTime,
) -> Result<(), ApiError> {
    let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let context = parts.extensions.get::<std::sync::Arc<RequestContext>>();
    let refused = match state.rate_limiter.take(client.as_str(), limit, now_ms) {
        Ok(budget) => {
            if let (Some(budget), Some(context)) = (budget, context) {
                let _ = context.rate.set(budget);
            }
            return Ok(());
        }
        Err(refused) => refused,
    };
    // The envelope always sets the context; without it there is only no audit.
    if let Some(context) = context {
        let _ = context.rate.set(refused.budget);
    }
    if refused.starts
        && let Some(context) = context
    {
        state.audit.record(context.audit_event(
            now,
            client.as_str(),
            AuditKind::RateLimited,
            None,
            Some(format!(
                "over the rate limit ({limit}); refusing until the bucket refills"
            )),
        ));
    }
    Err(ApiError::RateLimited {
        retry_after: refused.retry_after,
    })
}

/// Fills in why a signature did not verify, for at most
/// [`diagnosis::PER_SECOND`] failures a second per client. Without the keys
/// the answer is still a precise 401, only unexplained.
async fn explain(
    state: &AppState,
    request: &SignedRequest<'_>,
    error: &mut AuthError,
    now_ms: i64,
) {
    let AuthError::SignatureInvalid {
        diagnosis,
        string_to_sign,
        ..
    } = error
    else {
        return;
    };
    let limit = RateLimit::PerSecond(diagnosis::PER_SECOND);
    if state
        .diagnoses
        .take(request.client_id, limit, now_ms)
        .is_err()
    {
        return;
    }
    if let Ok(client) = ClientId::parse(request.client_id)
        && let Ok(keys) = state.store.keys(&client).await
    {
        *diagnosis = Some(Box::new(diagnosis::diagnose(
            request,
            string_to_sign,
            &keys,
        )));
    }
}

/// How far apart the clocks of two instances may be.
const INSTANCE_CLOCK_SKEW: time::Duration = time::Duration::minutes(1);

/// A v2 signature is single-use: its signed string is remembered (as a
/// digest, in the database, so every instance sees it) for as long as its
/// timestamp could be inside the window, and a second use is refused. v1
/// signatures cover no body and are reused by design (SPEC), so they are not.
async fn remember_signature(
    state: &AppState,
    client_id: &ClientId,
    message: &str,
    now: time::OffsetDateTime,
) -> Result<(), ApiError> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message.as_bytes());
    // A timestamp accepted now is inside the window until at most now + 2 ×
    // the tolerance (it may lie up to one tolerance ahead of server time);
    // another instance's clock may be up to a minute behind this one's, and
    // it must still find the signature until then.
    let tolerance =
        time::Duration::try_from(state.settings.timestamp_tolerance).unwrap_or(time::Duration::MAX);
    let expires_at = now
        .saturating_add(tolerance.saturating_mul(2))
        .saturating_add(INSTANCE_CLOCK_SKEW);
    let fresh = state
        .store
        .remember_signature(client_id, digest.as_ref(), now, expires_at)
        .await?;
    if fresh {
        Ok(())
    } else {
        Err(AuthError::SignatureReplayed.into())
    }
}

/// The named headers as text, or one error naming every missing one.
fn required_headers<'h, const N: usize>(
    headers: &'h HeaderMap,
    names: [&'static str; N],
) -> Result<[&'h str; N], AuthError> {
    // A value that is not visible ASCII is present but wrong: it fails the check it
    // belongs to (token, client id, timestamp, signature) instead of reading as missing.
    let values = names.map(|name| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap_or("(not visible ASCII)").trim())
    });
    let missing: Vec<&'static str> = names
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none_or(str::is_empty))
        .map(|(name, _)| canonical(name))
        .collect();
    if !missing.is_empty() {
        return Err(AuthError::MissingHeaders(missing));
    }
    Ok(values.map(Option::unwrap_or_default))
}

fn canonical(name: &str) -> &'static str {
    match name {
        AUTHORIZATION => "Authorization",
        X_CLIENT_ID => "X-CLIENT-ID",
        X_TIMESTAMP => "X-TIMESTAMP",
        _ => "X-SIGNATURE",
    }
}
