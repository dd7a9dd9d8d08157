//! Per-partner request rate limit on the sales-order routes: a token bucket per
//! client id, refilled at the partner's rate, holding ten seconds' worth of
//! requests (1000 at the default rate) so a partner can push a burst of
//! queued orders.
//!
//! Buckets live in this instance's memory. Behind a load balancer with N
//! instances a partner can reach N times its rate; sharing buckets would put a
//! database write on every request, and the limit exists to protect each
//! instance, which it does.

use std::collections::HashMap;
use std::sync::Mutex;

/// The default for partners without a limit of their own: no lower than what
/// any legitimate integration needs.
pub const DEFAULT_PER_SECOND: u32 = 100;
/// A bucket holds this many seconds of requests.
const BURST_SECONDS: u32 = 10;

/// A partner's configured limit, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    Default,
    Off,
    PerSecond(u32),
}

impl RateLimit {
    /// The stored column: NULL is the default, 0 is off.
    pub fn from_column(value: Option<i64>) -> Self {
        match value {
            None => Self::Default,
            Some(0) => Self::Off,
            Some(rate) => Self::PerSecond(u32::try_from(rate).unwrap_or(u32::MAX)),
        }
    }

    pub fn to_column(self) -> Option<i64> {
        match self {
            Self::Default => None,
            Self::Off => Some(0),
            Self::PerSecond(rate) => Some(i64::from(rate)),
        }
    }

    fn per_second(self) -> Option<u32> {
        match self {
            Self::Default => Some(DEFAULT_PER_SECOND),
            Self::Off => None,
            Self::PerSecond(rate) => Some(rate),
        }
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => write!(f, "default ({DEFAULT_PER_SECOND}/s)"),
            Self::Off => f.write_str("off"),
            Self::PerSecond(rate) => write!(f, "{rate}/s"),
        }
    }
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated_ms: i64,
    /// The last request was refused: further refusals continue one episode.
    limited: bool,
}

/// A refused request: how long to wait, and whether it begins an episode of
/// refusals (worth one audit event) or continues one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: u64,
    pub starts: bool,
}

impl RateLimiter {
    /// Takes one request from the partner's bucket: `Ok` to go ahead, or
    /// `Err(seconds)` to wait before the next request fits.
    pub fn take(&self, client_id: &str, limit: RateLimit, now_ms: i64) -> Result<(), Refused> {
        let Some(per_second) = limit.per_second().filter(|rate| *rate > 0) else {
            return Ok(());
        };
        let rate = f64::from(per_second);
        let capacity = f64::from(per_second.saturating_mul(BURST_SECONDS));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(client_id.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated_ms: now_ms,
            limited: false,
        });
        // Millisecond gaps are far below 2^52, so the conversion is exact.
        let elapsed = (now_ms - bucket.updated_ms).max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.limited = false;
            Ok(())
        } else {
            let starts = !bucket.limited;
            bucket.limited = true;
            Err(Refused {
                retry_after: ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64,
                starts,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allows_a_burst_of_1000_then_100_a_second() {
        let limiter = RateLimiter::default();
        for _ in 0..1000 {
            assert!(limiter.take("a", RateLimit::Default, 0).is_ok());
        }
        let refused = |starts| {
            Err(Refused {
                retry_after: 1,
                starts,
            })
        };
        assert_eq!(limiter.take("a", RateLimit::Default, 0), refused(true));
        assert_eq!(limiter.take("a", RateLimit::Default, 0), refused(false));
        assert!(
            limiter.take("b", RateLimit::Default, 0).is_ok(),
            "per partner"
        );
        // One second refills 100.
        for _ in 0..100 {
            assert!(limiter.take("a", RateLimit::Default, 1000).is_ok());
        }
        assert!(limiter.take("a", RateLimit::Default, 1000).is_err());
    }

    #[test]
    fn off_never_limits_and_a_custom_rate_sets_rate_and_burst() {
        let limiter = RateLimiter::default();
        for _ in 0..5000 {
            assert!(limiter.take("a", RateLimit::Off, 0).is_ok());
        }
        for _ in 0..5000 {
            assert!(limiter.take("c", RateLimit::PerSecond(500), 0).is_ok());
        }
        assert!(limiter.take("c", RateLimit::PerSecond(500), 0).is_err());
    }
}
