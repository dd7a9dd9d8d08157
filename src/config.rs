//! Runtime settings of the HTTP server, with the defaults SPEC promises.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::domain::Currency;

/// A batch's body limit: 100 orders of 1 000 lines whose every field holds a
/// typical value (a line of about 150 bytes) is about 15 MB. A batch over
/// it is refused with 413 naming the limit; split it.
pub const BATCH_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Everything `serve` needs. Built from CLI flags and environment by `cli::serve`,
/// and directly by the test suite.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// How far `X-TIMESTAMP` may be from server time, either way.
    pub timestamp_tolerance: Duration,
    /// How long after expiry a token can still be refreshed.
    pub refresh_window: Duration,
    /// How long after the original login a token lineage can be refreshed at all.
    pub absolute_lifetime: Duration,
    /// HS256 key for access tokens; generated and kept in the database when absent.
    pub jwt_secret: Option<Secret>,
    pub body_limit: usize,
    /// The body limit of a batch of orders (`POST /api/v1/sales-orders/batch`).
    pub batch_body_limit: usize,
    /// The currency of orders that do not name one.
    pub default_currency: Currency,
    /// The whole request, handler included; past it the answer is 503.
    pub request_timeout: Duration,
    /// Time for a request body to arrive whole; past it the answer is 408
    /// (the client's slowness, not ours). Shorter than `request_timeout`.
    pub body_read_timeout: Duration,
    /// Time for a TLS handshake and a request's header block, and the longest
    /// wait for the next request on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; `None` sizes it from the fd limit.
    pub max_connections: Option<usize>,
    /// Where `/metrics` is served (never on the API's port); `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Concurrent argon2 verifications allowed; the rest wait their turn.
    pub max_concurrent_hashes: usize,
    /// Database connections this instance may hold (SQLite: readers). With
    /// PostgreSQL, instances × this must stay below the server's `max_connections`.
    pub database_connections: u32,
    /// How long an Idempotency-Key is remembered (SPEC: at least 24 h).
    pub idempotency_retention: Duration,
    /// When failed logins are answered 429 instead of being checked.
    pub login_limits: LoginLimits,
    /// How long activity-audit events are kept.
    pub audit_retention: Duration,
    /// How long order events are kept (SPEC: at least 30 days).
    pub event_retention: Duration,
    /// How webhooks are delivered.
    pub webhooks: WebhookSettings,
    /// Reverse proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve HTTPS with this certificate chain and key instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// SQLite: order inserts committed together at most (1: each alone).
    pub sqlite_max_batch: usize,
    /// How long after a refresh the same old token gets the same new token
    /// again (a retry after a lost answer) instead of being treated as reuse.
    pub refresh_grace: Duration,
    /// Where partners reach this server (`/openapi.json`'s `servers`);
    /// `None`: the address it listens on ([`Settings::public_url`]).
    pub public_url: Option<String>,
}

/// PEM files for serving HTTPS directly.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

impl Settings {
    pub fn new(listen: SocketAddr, database_url: DatabaseUrl) -> Self {
        Self {
            listen,
            database_url,
            token_ttl: Duration::from_secs(12 * 3600),
            timestamp_tolerance: Duration::from_secs(5 * 60),
            refresh_window: Duration::from_secs(7 * 24 * 3600),
            absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
            jwt_secret: None,
            body_limit: 1024 * 1024,
            batch_body_limit: BATCH_BODY_LIMIT,
            default_currency: Currency::default(),
            // Above the 30 s an event long poll may hold (`http::events`).
            request_timeout: Duration::from_secs(35),
            body_read_timeout: Duration::from_secs(20),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_connections: None,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            max_concurrent_hashes: std::thread::available_parallelism().map_or(2, |n| n.get()),
            database_connections: 16,
            idempotency_retention: Duration::from_secs(24 * 3600),
            login_limits: LoginLimits::default(),
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            // A day over SPEC's 30, so the hourly purge never cuts it short.
            event_retention: Duration::from_secs(31 * 24 * 3600),
            webhooks: WebhookSettings::default(),
            trusted_proxies: Vec::new(),
            tls: None,
            sqlite_max_batch: 256,
            public_url: None,
            refresh_grace: Duration::from_secs(30),
        }
    }

    /// The URL partners use: `--public-url`, or else the listening address
    /// (`localhost` for one that listens on every address).
    pub fn public_url(&self) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let port = self.listen.port();
        match self.listen.ip() {
            ip if ip.is_unspecified() => format!("{scheme}://localhost:{port}"),
            std::net::IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{port}"),
            ip => format!("{scheme}://{ip}:{port}"),
        }
    }
}

/// `--public-url`: an absolute http(s) URL with no query or fragment, kept
/// without a trailing slash (paths are appended to it).
pub fn parse_public_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|error| format!("not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must have no query, fragment or credentials".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// When failed logins are refused (see `auth::throttle`). Defaults from the
/// hardening issue: more than 10 failures for one client id, or more than 100
/// from one address, within a minute.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_client: u32,
    pub per_address: u32,
    pub window: Duration,
    /// How long a refused login waits before its 429 is sent. A flood sends
    /// its next request only once answered, so this caps each of its
    /// connections at one refusal per delay instead of as many as our CPU can
    /// answer; a client that honours `Retry-After` (at least a second) loses
    /// nothing.
    pub refusal_delay: Duration,
    /// Refusals held back at once. Past this, refusals are answered at once,
    /// so holding them can never itself tie up memory or connections.
    pub max_held_refusals: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_client: 10,
            per_address: 100,
            window: Duration::from_secs(60),
            refusal_delay: Duration::from_secs(1),
            max_held_refusals: 1024,
        }
    }
}

/// A database URL that never prints its password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // scheme://user:password@host → scheme://user:***@host
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let credentials = &self.0[scheme_end + 3..at];
                match credentials.find(':') {
                    Some(colon) => write!(
                        f,
                        "{}{}:***{}",
                        &self.0[..scheme_end + 3],
                        &credentials[..colon],
                        &self.0[at..]
                    ),
                    None => f.write_str(&self.0),
                }
            }
            _ => f.write_str(&self.0),
        }
    }
}

/// A secret string (client secret, signing key) that redacts itself in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_hides_its_password() {
        let url = DatabaseUrl::new("postgres://app:hunter2@db:5432/orders");
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/orders");
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("s3cr3t")), "Secret(***)");
    }
}

/// How webhooks are delivered (`webhook::delivery`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `--allow-insecure-webhooks`: http:// and private addresses allowed.
    pub allow_insecure: bool,
    /// An attempt without a 2xx answer by then has failed.
    pub timeout: Duration,
    /// Attempts in flight at once, in all.
    pub concurrency: usize,
    /// Attempts in flight at once to one endpoint.
    pub per_endpoint: usize,
    /// Attempts in flight at once to one partner's endpoints, so one
    /// partner's slow endpoints cannot take every slot.
    pub per_partner: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_insecure: false,
            timeout: crate::domain::webhook::DELIVERY_TIMEOUT,
            concurrency: 32,
            per_endpoint: 4,
            per_partner: 8,
        }
    }
}
