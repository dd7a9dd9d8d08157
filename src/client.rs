//! The partner's side of the wire contract: an RSA key pair, the request
//! signature, and a client that logs in, refreshes, signs and sends. Used by
//! the `keygen`, `sign` and `send` commands and by the load generator, so
//! the partner tooling signs exactly as the server verifies
//! ([`crate::auth::signature`] builds both strings).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::auth::signature::{body_digest, string_to_sign, string_to_sign_v2};
use crate::domain::partner::PublicKey;

/// The partner's RSA private key.
pub struct PrivateKey(KeyPair);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(RSA-{})", self.0.public_modulus_len() * 8)
    }
}

impl PrivateKey {
    /// A new key of 2048, 3072 or 4096 bits.
    pub fn generate(bits: u32) -> anyhow::Result<Self> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => bail!("RSA keys are 2048, 3072 or 4096 bits"),
        };
        Ok(Self(KeyPair::generate(size).map_err(|_| {
            anyhow::anyhow!("the RSA key could not be generated")
        })?))
    }

    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(text: &[u8]) -> anyhow::Result<Self> {
        let block = pem::parse(text).context("the private key file is not PEM")?;
        match block.tag() {
            "PRIVATE KEY" | "RSA PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => bail!(
                "the private key is encrypted; decrypt it first (`openssl pkey -in key.pem -out private.pem`)"
            ),
            tag if tag.contains("PUBLIC KEY") => bail!(
                "this is a public key; signing needs the private key (the file `keygen` wrote as private.pem)"
            ),
            tag => bail!("expected 'BEGIN PRIVATE KEY' or 'BEGIN RSA PRIVATE KEY', found '{tag}'"),
        }
        KeyPair::from_pkcs8(block.contents())
            .or_else(|_| KeyPair::from_der(block.contents()))
            .map(Self)
            .map_err(|_| anyhow::anyhow!("not an RSA private key of 2048 bits or more"))
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read the private key {}", path.display()))?;
        Self::from_pem(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn bits(&self) -> usize {
        self.0.public_modulus_len() * 8
    }

    /// PKCS#8 PEM.
    pub fn to_pem(&self) -> anyhow::Result<String> {
        let der = self
            .0
            .as_der()
            .map_err(|_| anyhow::anyhow!("the private key could not be encoded"))?;
        Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref())))
    }

    /// The public half, as the server registers it (SPKI).
    pub fn public_key(&self) -> anyhow::Result<PublicKey> {
        let der = self
            .0
            .public_key()
            .as_der()
            .map_err(|_| anyhow::anyhow!("the public key could not be encoded"))?;
        PublicKey::from_der(der.as_ref()).map_err(anyhow::Error::msg)
    }

    /// Base64 SHA256withRSA (RSASSA-PKCS1-v1_5, SHA-256) of `message`.
    pub fn sign(&self, message: &str) -> String {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .expect("signing with a valid RSA key into a buffer of its size cannot fail");
        STANDARD.encode(signature)
    }
}

/// SPKI PEM of a public key: the file a partner sends to the operator.
pub fn public_key_pem(key: &PublicKey) -> String {
    pem::encode(&pem::Pem::new("PUBLIC KEY", key.spki_der()))
}

/// What v2 signs besides the client id and timestamp.
pub struct SignedPart<'b> {
    pub method: &'b str,
    /// Path and query exactly as sent, e.g. `/api/v1/sales-orders?limit=10`.
    pub path_and_query: &'b str,
    pub body: &'b [u8],
}

/// The signature headers of one request.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureHeaders {
    pub client_id: String,
    pub timestamp: String,
    pub signature: String,
    pub version: u8,
    pub string_to_sign: String,
}

impl SignatureHeaders {
    /// v1 over `client_id|timestamp`, or v2 when `part` is given.
    pub fn new(
        key: &PrivateKey,
        client_id: &str,
        timestamp: &str,
        part: Option<&SignedPart<'_>>,
    ) -> Self {
        let (string_to_sign, version) = match part {
            None => (string_to_sign(client_id, timestamp), 1),
            Some(part) => (
                string_to_sign_v2(
                    client_id,
                    timestamp,
                    part.method,
                    part.path_and_query,
                    &body_digest(part.body),
                ),
                2,
            ),
        };
        Self {
            client_id: client_id.to_owned(),
            timestamp: timestamp.to_owned(),
            signature: key.sign(&string_to_sign),
            version,
            string_to_sign,
        }
    }

    /// `(name, value)` of each header, in the order the seeds list them.
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            ("X-CLIENT-ID", self.client_id.clone()),
            ("X-TIMESTAMP", self.timestamp.clone()),
            ("X-SIGNATURE", self.signature.clone()),
            ("X-SIGNATURE-VERSION", self.version.to_string()),
        ]
    }
}

/// Unix seconds now: the canonical `X-TIMESTAMP`.
pub fn timestamp_now() -> String {
    time::OffsetDateTime::now_utc().unix_timestamp().to_string()
}

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

/// Writes `contents` to `path`, readable by its owner only (mode 0600 on
/// Unix), creating the parent directory; see [`replace_file`].
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    replace_file(path, contents, 0o600)
}

/// Writes a file anyone may read (mode 0644 less the umask), e.g. a public key.
pub fn write_public(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    replace_file(path, contents, 0o644)
}

/// Refuses a `path` that is a symbolic link. Whoever planted one where a key
/// or token goes wants the write to land elsewhere (or the secret to leak
/// through it), so the user is told rather than the link quietly replaced.
pub fn refuse_symbolic_link(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => bail!(
            "{} is a symbolic link; refusing to write through it (remove the link or choose another path)",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Writes `contents` into a new file beside `path`, created with `mode` and
/// `O_EXCL` (so it can be neither an existing file nor a link planted in its
/// place, and a secret is never readable by others, not even for a moment),
/// makes it durable, then renames it over `path`: a reader sees the old file
/// or the new one, never half of one, and rename replaces a link at `path`
/// instead of following it, should one appear after the check.
fn replace_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    refuse_symbolic_link(path)?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_the_server_verifies() {
        let key = PrivateKey::generate(2048).unwrap();
        let public = key.public_key().unwrap();
        let headers = SignatureHeaders::new(&key, "acme", "1764000000", None);
        let keys = crate::auth::signature::parse_keys([public.spki_der()]);
        assert_eq!(
            crate::auth::signature::verify(&keys, "acme|1764000000", &headers.signature),
            Ok(0)
        );
        let reread = PrivateKey::from_pem(key.to_pem().unwrap().as_bytes()).unwrap();
        assert_eq!(reread.public_key().unwrap(), public);
    }

    #[test]
    fn v2_signs_method_path_and_body_digest() {
        let key = PrivateKey::generate(2048).unwrap();
        let part = SignedPart {
            method: "POST",
            path_and_query: "/api/v1/sales-orders",
            body: b"{}",
        };
        let headers = SignatureHeaders::new(&key, "acme", "1764000000", Some(&part));
        assert_eq!(headers.version, 2);
        assert_eq!(
            headers.string_to_sign,
            format!(
                "acme|1764000000|POST|/api/v1/sales-orders|{}",
                "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
            )
        );
    }

    #[test]
    fn a_public_key_is_refused_as_a_signing_key_with_a_reason() {
        let key = PrivateKey::generate(2048).unwrap();
        let public = public_key_pem(&key.public_key().unwrap());
        let error = PrivateKey::from_pem(public.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("this is a public key"));
    }
}
