//! Webhook endpoints and their deliveries, as the Standard Webhooks
//! specification (standardwebhooks.com) defines them: secrets, the
//! signature, and when a failed delivery is tried again.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use utoipa::ToSchema;

use super::event::EventType;
use super::ids::random_bytes;

/// Endpoints one partner may have.
pub const MAX_ENDPOINTS: usize = 10;
/// A delivery succeeds with a 2xx answered within this time.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// After a rotation, deliveries are signed with the old secret too for this long.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// An endpoint whose deliveries all failed for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
/// Waits before each retry of a failed delivery; after the last, it is given up.
pub const RETRY_AFTER: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
const SECRET_PREFIX: &str = "whsec_";

/// When to try a delivery again after `attempts` failed ones: the schedule's
/// wait, moved by `jitter` (-1.0 to 1.0) times 10 %, so endpoints that failed
/// together are not retried together. `None`: give up.
pub fn retry_after(attempts: u32, jitter: f64) -> Option<Duration> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    let wait = RETRY_AFTER.get(index)?;
    Some(wait.mul_f64(1.0 + 0.1 * jitter.clamp(-1.0, 1.0)))
}

/// An endpoint's signing secret: `whsec_` + base64 of 32 random bytes, the
/// form the Standard Webhooks libraries take as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn generate() -> Self {
        Self(format!(
            "{SECRET_PREFIX}{}",
            STANDARD.encode(random_bytes::<32>())
        ))
    }

    /// A secret as stored; `None` if it is not one this server issued.
    pub fn parse(text: &str) -> Option<Self> {
        let secret = Self(text.to_owned());
        secret.key().map(|_| secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the bytes the base64 after `whsec_` encodes.
    pub fn key(&self) -> Option<Vec<u8>> {
        let encoded = self.0.strip_prefix(SECRET_PREFIX)?;
        STANDARD.decode(encoded).ok().filter(|key| !key.is_empty())
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// A webhook endpoint as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Endpoint {
    #[schema(example = "we_8c1f0e2d9b7a4c3e5f6a7b8c9d0e1f2a")]
    pub id: String,
    #[schema(example = "https://erp.example.com/hooks/sales-orders")]
    pub url: String,
    /// The event types delivered to it.
    pub types: Vec<EventType>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `whsec_…`: shown only when the endpoint is created or its secret rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One attempt to deliver an event to an endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    /// RFC 3339, UTC.
    pub at: String,
    pub event_id: String,
    /// The HTTP status answered; null when there was no answer.
    pub status: Option<u16>,
    /// Why there was no 2xx answer (a timeout, a refused connection, an address not allowed).
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_within_ten_percent_then_stop() {
        assert_eq!(retry_after(0, 0.0), None);
        assert_eq!(retry_after(1, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(1, 1.0), Some(Duration::from_millis(5500)));
        assert_eq!(retry_after(1, -1.0), Some(Duration::from_millis(4500)));
        assert_eq!(retry_after(7, 0.0), Some(Duration::from_secs(36_000)));
        assert_eq!(retry_after(8, 0.0), None, "given up after seven retries");
        let total: Duration = RETRY_AFTER.iter().sum();
        assert!(total > Duration::from_secs(27 * 3600), "{total:?}");
    }

    #[test]
    fn a_generated_secret_is_32_bytes_behind_whsec_and_never_printed() {
        let secret = WebhookSecret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.key().unwrap().len(), 32);
        assert_ne!(secret, WebhookSecret::generate());
        assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
        assert!(WebhookSecret::parse("whsec_").is_none());
        assert!(WebhookSecret::parse("sk_live_abc").is_none());
    }
}
