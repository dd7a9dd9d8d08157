//! Cross-cutting request handling: request ids, the error envelope, access logs
//! and request metrics.
//!
//! `envelope` is the outermost layer, so every response passes it: it renders
//! `ApiError`s with the request id and turns errors produced outside our handlers
//! (axum's 404/405, body limits, timeouts, panics) into the same envelope.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::audit_note::AuditNote;
use super::error::{ErrorBody, ErrorEnvelope};
use super::state::AppState;
use crate::auth::rate_limit::Budget;
use crate::domain::AuditKind;
use crate::store::AuditEvent;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_SIGNATURE: &str = "x-signature";

/// Per-request facts that inner layers learn and the access log reports.
#[derive(Debug, Default)]
pub struct RequestContext {
    pub request_id: String,
    /// The caller: the TCP peer, or behind a trusted proxy the address it
    /// forwarded (see [`client_address`]).
    pub client_address: Option<IpAddr>,
    pub client_id: OnceLock<String>,
    pub route: OnceLock<String>,
    /// The partner's rate budget, once its request was counted: told in
    /// the IETF rate-limit fields of the answer, a 429 too.
    pub rate: OnceLock<Budget>,
}

impl RequestContext {
    /// An audit event about this request and the partner it is tied to.
    pub fn audit_event(
        &self,
        at: time::OffsetDateTime,
        client_id: &str,
        kind: AuditKind,
        code: Option<&str>,
        reason: Option<String>,
    ) -> AuditEvent {
        AuditEvent {
            at,
            client_id: Some(client_id.to_owned()),
            kind,
            code: code.map(str::to_owned),
            reason,
            source: self.client_address.map(|address| address.to_string()),
            request_id: Some(self.request_id.clone()),
            actor: "partner".to_owned(),
        }
    }
}

/// Keeps a caller's request id when it is sane, else mints one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The caller's address. `X-Forwarded-For` is believed only when the TCP peer
/// is one of the configured proxies; then the rightmost address that is not a
/// trusted proxy is the client (entries further left are the client's to forge).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(address) if trusted.contains(&address) => continue,
            Ok(address) => return address,
            // Garbage where an address should be: stop trusting the chain here.
            Err(_) => break,
        }
    }
    peer
}

/// The method as a metric label and in logs and messages: the standard ones
/// by name, anything else as `other`. hyper accepts any token as a method, and
/// a label taken from the caller would let anyone add series without end.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Records `client_id` for the access log and the audit, once known.
pub fn note_client_id(extensions: &axum::http::Extensions, client_id: &str) {
    if let Some(context) = extensions.get::<Arc<RequestContext>>() {
        let _ = context.client_id.set(client_id.to_owned());
    }
}

/// The outermost layer, in the order a request meets it: the request's
/// context (id, caller's address), the handlers, then on the way out the
/// audit, the error envelope, the standard headers and the request's metrics
/// and access log.
pub async fn envelope(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let context = Arc::new(RequestContext::of(
        &request,
        &state.settings.trusted_proxies,
    ));
    request.extensions_mut().insert(context.clone());
    let method = method_label(request.method());
    let path = request.uri().path().to_owned();

    let mut response = next.run(request).await;

    let body = match response.extensions_mut().remove::<ErrorBody>() {
        Some(body) => Some(body),
        None if is_unrendered_error(&response) => Some(generic_error(&response, method, &path)),
        None => None,
    };
    if let Some(AuditNote(kind)) = response.extensions_mut().remove::<AuditNote>() {
        record_audit(&state, &context, kind, body.as_ref());
    }
    if let Some(body) = body {
        render_error(&mut response, body, &context.request_id);
    }
    standard_headers(
        &mut response,
        &context.request_id,
        state.settings.tls.is_some(),
    );
    if let Some(budget) = context.rate.get() {
        rate_limit_fields(response.headers_mut(), budget);
    }
    observe(
        &context,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers,
/// as SPEC words them): the quota per second, then what is left of it and
/// the seconds until the bucket is full again.
fn rate_limit_fields(headers: &mut HeaderMap, budget: &Budget) {
    let policy = format!("\"default\";q={};w=1", budget.limit);
    let state = format!("\"default\";r={};t={}", budget.remaining, budget.reset);
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

impl RequestContext {
    fn of(request: &Request, trusted_proxies: &[IpAddr]) -> Self {
        let client_address = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| client_address(info.0.ip(), request.headers(), trusted_proxies));
        Self {
            request_id: request_id(request),
            client_address,
            ..Default::default()
        }
    }
}

/// Records what the answer meant for the audit: against the partner when the
/// request is tied to one, else only counted (see `audit`).
fn record_audit(
    state: &AppState,
    context: &RequestContext,
    kind: AuditKind,
    body: Option<&ErrorBody>,
) {
    let Some(client_id) = context.client_id.get() else {
        let now_ms = state.clock.unix_now().saturating_mul(1000);
        state
            .audit
            .unattributed(kind, context.client_address, now_ms);
        return;
    };
    let event = context.audit_event(
        state.clock.now(),
        client_id,
        kind,
        body.map(|b| b.code),
        body.map(|b| b.message.clone()),
    );
    if kind.is_refusal() {
        state.audit.record_refusal(event);
    } else {
        state.audit.record(event);
    }
}

/// Replaces the body with the error envelope, which names the request id.
fn render_error(response: &mut Response, body: ErrorBody, request_id: &str) {
    let json = serde_json::to_string(&ErrorEnvelope {
        message: body.message.clone(),
        error: body,
        request_id: request_id.to_owned(),
    })
    .unwrap_or_default();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    *response.body_mut() = Body::from(json);
}

/// Headers every answer carries.
fn standard_headers(response: &mut Response, request_id: &str, tls: bool) {
    // Every 503 (the store's, or the request timeout's) says when to retry.
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from_static("1"));
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID.clone(), value);
    }
    // JSON is never to be sniffed into something a browser would run.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Served over our own TLS, clients should never fall back to plain HTTP.
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// The request's metrics and its access-log line.
fn observe(context: &RequestContext, method: &'static str, status: u16, latency: Duration) {
    let route = context.route.get().map_or("unmatched", String::as_str);
    // Every label comes from a closed set: the method's label, the matched
    // route template (or "unmatched") and the status code.
    metrics::counter!("http_requests_total", "method" => method, "route" => route.to_owned(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route.to_owned())
        .record(latency.as_secs_f64());
    tracing::info!(
        request_id = %context.request_id,
        client_id = context.client_id.get().map_or("-", String::as_str),
        method,
        route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}

/// Records the matched route template (e.g. `/api/v1/sales-orders/{id}`), which
/// is only known inside the router; raw paths would explode metric cardinality.
pub async fn record_route(request: Request, next: Next) -> Response {
    if let (Some(path), Some(context)) = (
        request.extensions().get::<MatchedPath>(),
        request.extensions().get::<Arc<RequestContext>>(),
    ) {
        let _ = context.route.set(path.as_str().to_owned());
    }
    next.run(request).await
}

fn is_unrendered_error(response: &Response) -> bool {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    (status.is_client_error() || status.is_server_error()) && !is_json
}

fn generic_error(response: &Response, method: &str, path: &str) -> ErrorBody {
    let shown_path: String = path.chars().take(200).collect();
    let method = if method == "other" {
        "this method"
    } else {
        method
    };
    let (code, message) = match response.status() {
        StatusCode::NOT_FOUND => ("NOT_FOUND", format!("no route for {method} {shown_path}")),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = response
                .headers()
                .get(header::ALLOW)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned();
            // axum adds `Allow` outside this layer, so it may not be here
            // yet; the client gets it all the same.
            let allowed = if allowed.is_empty() {
                "the methods the Allow header lists".to_owned()
            } else {
                allowed
            };
            (
                "METHOD_NOT_ALLOWED",
                format!("{method} is not allowed on {shown_path}; allowed: {allowed}"),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            "PAYLOAD_TOO_LARGE",
            "the request body is larger than the limit".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UNSUPPORTED_MEDIA_TYPE",
            "the request body must be sent as application/json".into(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "REQUEST_TIMEOUT",
            "the request did not arrive in time; send it whole, then wait for the answer".into(),
        ),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => (
            "SERVICE_UNAVAILABLE",
            "the request could not be completed in time; retry shortly".into(),
        ),
        status if status.is_server_error() => ("INTERNAL_ERROR", "internal error".into()),
        status => (
            "BAD_REQUEST",
            status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_owned(),
        ),
    };
    ErrorBody {
        code,
        details: Vec::new(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let headers = forwarded("198.51.100.9, 203.0.113.7");
        assert_eq!(client_address(proxy, &headers, &[]), proxy, "not trusted");
        assert_eq!(client_address(proxy, &headers, &[proxy]), client);
        let chained = forwarded("203.0.113.7, 10.0.0.2");
        let proxies = ["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert_eq!(client_address(proxy, &chained, &proxies), client);
        assert_eq!(
            client_address(proxy, &forwarded("not-an-ip"), &[proxy]),
            proxy
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
