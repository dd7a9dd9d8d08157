//! The partner's side of the wire contract: an RSA key pair, the request
//! signature, and a client that logs in, refreshes, signs and sends. Used by
//! the `keygen`, `sign` and `send` commands and by the load generator, so
//! the partner tooling signs exactly as the server verifies
//! ([`crate::auth::signature`] builds both strings).

mod files;
mod key;

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::auth::signature::body_digest;

pub use files::{refuse_symbolic_link, write_private, write_public};
pub use key::{PrivateKey, SignatureHeaders, SignedPart, public_key_pem, timestamp_now};

/// A token and when it expires, as login and refresh return them.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Token {
    token: String,
    expired_at: i64,
}

/// Refresh this long before expiry, so a request never races the deadline.
const REFRESH_MARGIN_SECONDS: i64 = 60;

/// A partner's client: keeps its access token in a file (mode 0600) between
/// runs, refreshes it when it is about to expire, and logs in again when a
/// refresh is refused.
pub struct Client {
    http: reqwest::Client,
    base_url: reqwest::Url,
    client_id: String,
    client_secret: String,
    key: PrivateKey,
    token_file: Option<PathBuf>,
    /// Where `--verbose` output goes; `None` for quiet.
    trace: Option<Trace>,
}

/// Receives each `--verbose` line.
type Trace = Box<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The server's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub body: serde_json::Value,
}

impl Client {
    pub fn new(
        base_url: &str,
        client_id: &str,
        client_secret: String,
        key: PrivateKey,
    ) -> anyhow::Result<Self> {
        let mut base_url = reqwest::Url::parse(base_url)
            .with_context(|| format!("--base-url {base_url} is not a URL"))?;
        if !matches!(base_url.scheme(), "http" | "https") {
            bail!("--base-url must be http:// or https://");
        }
        // So that joining "api/v1/..." keeps any path prefix.
        if !base_url.path().ends_with('/') {
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            base_url,
            client_id: client_id.to_owned(),
            client_secret,
            key,
            token_file: None,
            trace: None,
        })
    }

    /// Keep the token in `file` between runs.
    pub fn with_token_file(mut self, file: PathBuf) -> Self {
        self.token_file = Some(file);
        self
    }

    /// Report each step (never the secret, the token or the whole signature).
    pub fn with_trace(mut self, trace: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.trace = Some(Box::new(trace));
        self
    }

    fn trace(&self, line: &str) {
        if let Some(trace) = &self.trace {
            trace(line);
        }
    }

    /// The default token file: one per base URL and client, in the user's cache.
    pub fn default_token_file(base_url: &str, client_id: &str) -> Option<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        let place = &body_digest(format!("{base_url}|{client_id}").as_bytes())[..16];
        Some(
            cache
                .join("sales-order-api")
                .join(format!("token-{client_id}-{place}.json")),
        )
    }

    /// Posts a new order (the exact bytes of `body`), signed with v1, or v2
    /// when `v2`; logs in or refreshes first as needed, and once more if the
    /// server says the token is no longer good.
    pub async fn create_order(
        &self,
        body: &[u8],
        v2: bool,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let post = |token: String| async move {
            self.signed_post("api/v1/sales-orders", body, v2, idempotency_key, &token)
                .await
        };
        let answer = post(self.token().await?.token).await?;
        let code = answer.body["error"]["code"].as_str().unwrap_or_default();
        if answer.status == reqwest::StatusCode::UNAUTHORIZED
            && matches!(code, "TOKEN_EXPIRED" | "TOKEN_REVOKED" | "TOKEN_INVALID")
        {
            self.trace(&format!(
                "the server refused the token ({code}); logging in again"
            ));
            return post(self.login().await?.token).await;
        }
        Ok(answer)
    }

    async fn signed_post(
        &self,
        path: &str,
        body: &[u8],
        v2: bool,
        idempotency_key: Option<&str>,
        token: &str,
    ) -> anyhow::Result<Answer> {
        let url = self.base_url.join(path)?;
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let part = SignedPart {
            method: "POST",
            path_and_query: &path_and_query,
            body,
        };
        let headers = SignatureHeaders::new(
            &self.key,
            &self.client_id,
            &timestamp_now(),
            v2.then_some(&part),
        );
        self.trace(&format!("POST {url}"));
        self.trace(&format!("string to sign: {}", headers.string_to_sign));
        self.trace("Authorization: Bearer <token, not shown>");
        let mut request = self
            .http
            .post(url)
            .bearer_auth(token)
            .header("Content-Type", "application/json");
        for (name, value) in headers.pairs() {
            let shown = if name == "X-SIGNATURE" {
                format!("{}… ({} characters)", &value[..12], value.len())
            } else {
                value.clone()
            };
            self.trace(&format!("{name}: {shown}"));
            request = request.header(name, value);
        }
        if let Some(key) = idempotency_key {
            self.trace(&format!("Idempotency-Key: {key}"));
            request = request.header("Idempotency-Key", key);
        }
        let answer = self.answer(request.body(body.to_vec())).await?;
        self.trace(&format!("answer: {}", answer.status));
        Ok(answer)
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let response = request
            .send()
            .await
            .context("the server could not be reached")?;
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok(Answer { status, body })
    }

    /// A token good for at least another minute: the cached one, a
    /// refreshed one, or a new login.
    async fn token(&self) -> anyhow::Result<Token> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(cached) = self.cached_token() {
            if cached.expired_at > now + REFRESH_MARGIN_SECONDS {
                self.trace("using the cached access token");
                return Ok(cached);
            }
            self.trace("the cached access token is about to expire; refreshing it");
            let answer = self
                .answer(
                    self.http
                        .post(self.base_url.join("api/v1/auth/refresh")?)
                        .json(&serde_json::json!({"token": cached.token})),
                )
                .await?;
            if answer.status.is_success() {
                return self.keep(answer);
            }
            self.trace(&format!(
                "refresh refused ({}); logging in again",
                answer.body["error"]["code"].as_str().unwrap_or("no code")
            ));
        }
        self.login().await
    }

    async fn login(&self) -> anyhow::Result<Token> {
        self.trace(&format!(
            "POST {} as {}",
            self.base_url.join("api/v1/auth/login")?,
            self.client_id
        ));
        let answer = self
            .answer(
                self.http
                    .post(self.base_url.join("api/v1/auth/login")?)
                    .json(&serde_json::json!({
                        "client_id": self.client_id,
                        "client_secret": self.client_secret,
                    })),
            )
            .await?;
        if !answer.status.is_success() {
            bail!(
                "login refused ({}): {}",
                answer.status,
                answer.body["message"].as_str().unwrap_or("no message")
            );
        }
        self.keep(answer)
    }

    /// Reads a token answer and writes it to the token file.
    fn keep(&self, answer: Answer) -> anyhow::Result<Token> {
        let token: Token = serde_json::from_value(answer.body)
            .context("the token answer is not {\"token\", \"expired_at\"}")?;
        if let Some(file) = &self.token_file {
            write_private(file, serde_json::to_string(&token)?.as_bytes())
                .with_context(|| format!("cannot keep the token in {}", file.display()))?;
        }
        Ok(token)
    }

    fn cached_token(&self) -> Option<Token> {
        let text = std::fs::read(self.token_file.as_ref()?).ok()?;
        serde_json::from_slice(&text).ok()
    }
}
