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

/// A partner's budget after a request, as the IETF rate-limit fields tell
/// it (draft-ietf-httpapi-ratelimit-headers): `limit` requests a second,
/// `remaining` of them to spend now (the bucket's burst may hold more than
/// one second's), and `reset` seconds until the bucket is full again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub remaining: u64,
    pub reset: u64,
}

/// A refused request: how long to wait, whether it begins an episode of
/// refusals (worth one audit event) or continues one, and the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: u64,
    pub starts: bool,
    pub budget: Budget,
}

impl RateLimiter {
    /// Takes one request from the partner's bucket: `Ok` to go ahead (with
    /// the budget left, or `None` for a partner without a limit), or `Err`
    /// with how long to wait before the next request fits.
    pub fn take(
        &self,
        client_id: &str,
        limit: RateLimit,
        now_ms: i64,
    ) -> Result<Option<Budget>, Refused> {
        let Some(per_second) = limit.per_second().filter(|rate| *rate > 0) else {
            return Ok(None);
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
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        // Both are small and non-negative: the casts are exact.
        let budget = Budget {
            limit: per_second,
            remaining: bucket.tokens.floor() as u64,
            reset: ((capacity - bucket.tokens) / rate).ceil() as u64,
        };
        if allowed {
            bucket.limited = false;
            Ok(Some(budget))
        } else {
            let starts = !bucket.limited;
            bucket.limited = true;
            Err(Refused {
                retry_after: ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64,
                starts,
                budget,
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
                budget: Budget {
                    limit: 100,
                    remaining: 0,
                    reset: 10,
                },
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
    fn the_budget_counts_down_and_says_when_the_bucket_is_full_again() {
        let limiter = RateLimiter::default();
        let first = limiter.take("a", RateLimit::PerSecond(10), 0).unwrap();
        assert_eq!(
            first,
            Some(Budget {
                limit: 10,
                remaining: 99,
                reset: 1,
            })
        );
        for _ in 0..49 {
            limiter.take("a", RateLimit::PerSecond(10), 0).unwrap();
        }
        let half = limiter
            .take("a", RateLimit::PerSecond(10), 0)
            .unwrap()
            .unwrap();
        assert_eq!((half.remaining, half.reset), (49, 6));
        assert_eq!(limiter.take("a", RateLimit::Off, 0), Ok(None));
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
