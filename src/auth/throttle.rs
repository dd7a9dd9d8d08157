//! Login throttling: failed logins are counted per client id and per source
//! address in fixed one-minute windows. Past a limit, logins from that client
//! id (or address) are refused with 429 until the window ends, before any
//! argon2 work is spent. The real partner is never locked out for longer than
//! the rest of the window, and a partner sharing an address with an attacker
//! is only refused once the address as a whole passes its (higher) limit.
//!
//! Counters live in this instance's memory: behind a load balancer with N
//! instances an attacker gets at most N times the limit, which still bounds
//! guessing to a few hundred tries a minute against 256-bit secrets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Defaults from the hardening issue: more than 10 failures for one client id,
/// or more than 100 from one address, within a minute.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
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

impl Default for Limits {
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

/// Entries kept before stale ones are swept; bounds memory under a flood of
/// made-up client ids.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct LoginThrottle {
    limits: Limits,
    clients: Mutex<HashMap<String, Window>>,
    addresses: Mutex<HashMap<IpAddr, Window>>,
    held_refusals: tokio::sync::Semaphore,
}

/// Which limits a failure has just pushed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossed {
    pub client: bool,
    pub address: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started_ms: i64,
    failures: u32,
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            clients: Mutex::default(),
            addresses: Mutex::default(),
            held_refusals: tokio::sync::Semaphore::new(limits.max_held_refusals),
        }
    }

    /// Waits out the refusal delay before a 429 is sent, unless too many
    /// refusals are already waiting.
    pub async fn hold_refusal(&self) {
        if let Ok(_permit) = self.held_refusals.try_acquire() {
            tokio::time::sleep(self.limits.refusal_delay).await;
        }
    }

    /// `Some(seconds to wait)` when logins for this client id or from this
    /// address are refused right now.
    pub fn check(&self, client_id: &str, address: IpAddr, now_ms: i64) -> Option<u64> {
        let client = self.retry_after(&self.clients, client_id, self.limits.per_client, now_ms);
        let address = self.retry_after(&self.addresses, &address, self.limits.per_address, now_ms);
        client.max(address)
    }

    /// Counts a failed login; says which limits this failure pushed over, so
    /// the start of throttling can be audited once rather than per request.
    pub fn record_failure(&self, client_id: &str, address: IpAddr, now_ms: i64) -> Crossed {
        Crossed {
            client: self.count(&self.clients, client_id.to_owned(), now_ms)
                == self.limits.per_client + 1,
            address: self.count(&self.addresses, address, now_ms) == self.limits.per_address + 1,
        }
    }

    /// A correct secret clears the client id's failures (not the address's).
    pub fn record_success(&self, client_id: &str) {
        lock(&self.clients).remove(client_id);
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.limits.window.as_millis()).unwrap_or(i64::MAX)
    }

    fn retry_after<K, Q>(
        &self,
        map: &Mutex<HashMap<K, Window>>,
        key: &Q,
        limit: u32,
        now_ms: i64,
    ) -> Option<u64>
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let window = *lock(map).get(key)?;
        let ends_ms = window.started_ms.saturating_add(self.window_ms());
        (window.failures > limit && now_ms < ends_ms).then(|| {
            u64::try_from((ends_ms - now_ms + 999) / 1000)
                .unwrap_or(1)
                .max(1)
        })
    }

    /// Adds a failure; returns the window's count.
    fn count<K: std::hash::Hash + Eq>(
        &self,
        map: &Mutex<HashMap<K, Window>>,
        key: K,
        now_ms: i64,
    ) -> u32 {
        let window_ms = self.window_ms();
        let mut map = lock(map);
        if map.len() >= SWEEP_AT {
            map.retain(|_, window| now_ms - window.started_ms < window_ms);
        }
        let window = map.entry(key).or_insert(Window {
            started_ms: now_ms,
            failures: 0,
        });
        if now_ms - window.started_ms >= window_ms {
            *window = Window {
                started_ms: now_ms,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        window.failures
    }
}

/// The counters stay usable even if a thread panicked while holding the lock.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[tokio::test]
    async fn refusals_past_the_cap_are_answered_without_waiting() {
        let throttle = Arc::new(LoginThrottle::new(Limits {
            refusal_delay: Duration::from_secs(3600),
            max_held_refusals: 2,
            ..Limits::default()
        }));
        let held: Vec<_> = (0..2)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move { throttle.hold_refusal().await })
            })
            .collect();
        while throttle.held_refusals.available_permits() > 0 {
            tokio::task::yield_now().await;
        }

        let third = tokio::time::timeout(Duration::from_secs(10), throttle.hold_refusal()).await;

        assert!(third.is_ok(), "the third refusal must not wait an hour");
        assert!(held.iter().all(|task| !task.is_finished()));
    }

    #[test]
    fn the_eleventh_failure_in_a_minute_throttles_the_client_until_the_window_ends() {
        let throttle = LoginThrottle::new(Limits::default());
        for _ in 0..10 {
            throttle.record_failure("a", HOME, 1_000);
        }
        assert_eq!(throttle.check("a", HOME, 1_000), None, "ten are allowed");
        let crossed = throttle.record_failure("a", HOME, 1_500);
        assert_eq!(
            crossed,
            Crossed {
                client: true,
                address: false
            }
        );
        assert!(
            !throttle.record_failure("a", HOME, 1_600).client,
            "only once"
        );
        assert_eq!(throttle.check("a", HOME, 2_000), Some(59));
        assert_eq!(throttle.check("a", OTHER, 2_000), Some(59), "any address");
        assert_eq!(
            throttle.check("b", HOME, 2_000),
            None,
            "other clients are not"
        );
        assert_eq!(throttle.check("a", HOME, 61_000), None, "the window ends");
    }

    #[test]
    fn an_address_is_throttled_past_its_own_higher_limit() {
        let throttle = LoginThrottle::new(Limits::default());
        for i in 0..101 {
            throttle.record_failure(&format!("guess-{i}"), OTHER, 0);
        }
        assert_eq!(throttle.check("real-partner", OTHER, 0), Some(60));
        assert_eq!(throttle.check("real-partner", HOME, 0), None);
    }

    #[test]
    fn a_success_clears_the_clients_failures() {
        let throttle = LoginThrottle::new(Limits::default());
        for _ in 0..9 {
            throttle.record_failure("a", HOME, 0);
        }
        throttle.record_success("a");
        for _ in 0..9 {
            throttle.record_failure("a", HOME, 0);
        }
        assert_eq!(throttle.check("a", HOME, 0), None);
    }
}
