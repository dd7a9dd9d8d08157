//! Login throttling: failed logins are counted per client id and per source
//! address in fixed one-minute windows. Past a limit, logins from that client
//! id (or address) are refused with 429 until the window ends, before any
//! argon2 work is spent. An attempt is counted when it starts, before its
//! secret is checked, and given back if the secret was right: forty
//! concurrent guesses cannot all pass the check while none has failed yet. The real partner is never locked out for longer than
//! the rest of the window, and a partner sharing an address with an attacker
//! is only refused once the address as a whole passes its (higher) limit.
//!
//! Counters live in this instance's memory: behind a load balancer with N
//! instances an attacker gets at most N times the limit, which still bounds
//! guessing to a few hundred tries a minute against 256-bit secrets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::config::LoginLimits;
use crate::sync::lock;

/// Counters kept at most per map. Only admitted attempts (each an argon2
/// check, a hundred or so a second) make new entries, so a minute's worth
/// stays far below this; refusals never insert.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct LoginThrottle {
    limits: LoginLimits,
    clients: Mutex<Windows<String>>,
    addresses: Mutex<Windows<IpAddr>>,
    held_refusals: tokio::sync::Semaphore,
}

/// A login refused before its secret is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Seconds until logins are checked again.
    pub retry_after: u64,
    /// Which limits this is the first refusal of, in the window: throttling
    /// is recorded once, when it starts.
    pub starts: Crossed,
}

/// Which limits (client id, address) a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Crossed {
    pub client: bool,
    pub address: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started_ms: i64,
    /// Attempts started in this window whose secret was not right (or is
    /// being checked).
    attempts: u32,
    /// Whether a refusal was answered in this window already.
    refused: bool,
}

impl Window {
    fn new(now_ms: i64) -> Self {
        Self {
            started_ms: now_ms,
            attempts: 0,
            refused: false,
        }
    }
}

impl LoginThrottle {
    pub fn new(limits: LoginLimits) -> Self {
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

    /// Starts a login attempt: counts it against the client id and the address,
    /// or refuses it when either has had more than its limit of failures in
    /// the window. Counting and checking happen under the same locks, so
    /// concurrent attempts cannot slip past the limit together.
    pub fn begin(&self, client_id: &str, address: IpAddr, now_ms: i64) -> Result<(), Refused> {
        let window_ms = self.window_ms();
        let mut clients = lock(&self.clients);
        let mut addresses = lock(&self.addresses);
        let client_over = clients
            .live(client_id, now_ms, window_ms)
            .is_some_and(|window| window.attempts > self.limits.per_client);
        let address_over = addresses
            .live(&address, now_ms, window_ms)
            .is_some_and(|window| window.attempts > self.limits.per_address);
        if client_over || address_over {
            let retry_after = |window: &Window| {
                let ends_ms = window.started_ms.saturating_add(window_ms);
                u64::try_from((ends_ms - now_ms + 999) / 1000)
                    .unwrap_or(1)
                    .max(1)
            };
            let mut refused = Refused {
                retry_after: 0,
                starts: Crossed::default(),
            };
            if client_over && let Some(client) = clients.live(client_id, now_ms, window_ms) {
                refused.retry_after = retry_after(client);
                refused.starts.client = !std::mem::replace(&mut client.refused, true);
            }
            if address_over && let Some(from) = addresses.live(&address, now_ms, window_ms) {
                refused.retry_after = refused.retry_after.max(retry_after(from));
                refused.starts.address = !std::mem::replace(&mut from.refused, true);
            }
            return Err(refused);
        }
        clients.count(client_id, now_ms, window_ms);
        addresses.count(&address, now_ms, window_ms);
        Ok(())
    }

    /// The attempt's secret was right: the client id's failures are cleared
    /// and the address gets its attempt back (only failures count there).
    pub fn succeeded(&self, client_id: &str, address: IpAddr) {
        lock(&self.clients).map.remove(client_id);
        self.give_back_address(address);
    }

    /// The attempt could not be checked (the database was away): it counts
    /// against neither the client id nor the address.
    pub fn not_checked(&self, client_id: &str, address: IpAddr) {
        if let Some(window) = lock(&self.clients).map.get_mut(client_id) {
            window.attempts = window.attempts.saturating_sub(1);
        }
        self.give_back_address(address);
    }

    fn give_back_address(&self, address: IpAddr) {
        if let Some(window) = lock(&self.addresses).map.get_mut(&address) {
            window.attempts = window.attempts.saturating_sub(1);
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.limits.window.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Fixed windows by key, in a map of bounded size.
#[derive(Debug)]
struct Windows<K> {
    map: HashMap<K, Window>,
    swept_ms: i64,
}

impl<K> Default for Windows<K> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            swept_ms: i64::MIN,
        }
    }
}

impl<K: std::hash::Hash + Eq> Windows<K> {
    /// The key's window, if it has one that has not ended at `now_ms`.
    fn live<Q>(&mut self, key: &Q, now_ms: i64, window_ms: i64) -> Option<&mut Window>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map
            .get_mut(key)
            .filter(|window| now_ms - window.started_ms < window_ms)
    }

    /// Counts an attempt for the key, in a new window when the last ended.
    /// A full map is swept of ended windows at most once a window; when it
    /// is still full, the attempt is not counted for this key (the address
    /// limit still applies), which bounds memory without refusing anyone.
    fn count<Q>(&mut self, key: &Q, now_ms: i64, window_ms: i64)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if !self.map.contains_key(key) && self.map.len() >= MAX_ENTRIES {
            if now_ms.saturating_sub(self.swept_ms) < window_ms {
                return;
            }
            self.swept_ms = now_ms;
            self.map
                .retain(|_, window| now_ms - window.started_ms < window_ms);
            if self.map.len() >= MAX_ENTRIES {
                return;
            }
        }
        let window = self
            .map
            .entry(key.to_owned())
            .or_insert_with(|| Window::new(now_ms));
        if now_ms - window.started_ms >= window_ms {
            *window = Window::new(now_ms);
        }
        window.attempts = window.attempts.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[tokio::test]
    async fn refusals_past_the_cap_are_answered_without_waiting() {
        let throttle = Arc::new(LoginThrottle::new(LoginLimits {
            refusal_delay: Duration::from_secs(3600),
            max_held_refusals: 2,
            ..LoginLimits::default()
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

    /// `attempts` failed logins for `client` from `address` at `now_ms`.
    fn fail(throttle: &LoginThrottle, client: &str, address: IpAddr, now_ms: i64, attempts: u32) {
        for _ in 0..attempts {
            throttle.begin(client, address, now_ms).unwrap();
        }
    }

    #[test]
    fn after_eleven_failures_in_a_minute_the_client_is_refused_until_the_window_ends() {
        let throttle = LoginThrottle::new(LoginLimits::default());
        fail(&throttle, "a", HOME, 1_000, 11);

        let refused = throttle.begin("a", HOME, 2_000).unwrap_err();

        assert_eq!(refused.retry_after, 59);
        assert_eq!(
            refused.starts,
            Crossed {
                client: true,
                address: false
            }
        );
        let again = throttle.begin("a", OTHER, 2_000).unwrap_err();
        assert!(!again.starts.client, "throttling starts once");
        assert!(
            throttle.begin("b", HOME, 2_000).is_ok(),
            "other clients are not"
        );
        assert!(throttle.begin("a", HOME, 61_000).is_ok(), "the window ends");
    }

    #[test]
    fn concurrent_attempts_are_counted_before_their_secret_is_checked() {
        let throttle = Arc::new(LoginThrottle::new(LoginLimits::default()));
        let admitted: usize = (0..40)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || throttle.begin("a", HOME, 0).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| usize::from(thread.join().unwrap()))
            .sum();

        assert_eq!(admitted, 11, "none of them has failed yet, all but 11 wait");
    }

    #[test]
    fn an_address_is_throttled_past_its_own_higher_limit() {
        let throttle = LoginThrottle::new(LoginLimits::default());
        for i in 0..101 {
            fail(&throttle, &format!("guess-{i}"), OTHER, 0, 1);
        }
        let refused = throttle.begin("real-partner", OTHER, 0).unwrap_err();
        assert_eq!(refused.retry_after, 60);
        assert!(refused.starts.address);
        assert!(throttle.begin("real-partner", HOME, 0).is_ok());
    }

    #[test]
    fn a_success_clears_the_clients_failures_and_does_not_count_against_the_address() {
        let throttle = LoginThrottle::new(LoginLimits {
            per_address: 3,
            ..LoginLimits::default()
        });
        fail(&throttle, "a", HOME, 0, 3);
        for _ in 0..5 {
            throttle.begin("a", HOME, 0).unwrap();
            throttle.succeeded("a", HOME);
        }
        assert!(throttle.begin("b", HOME, 0).is_ok(), "the fourth failure");
        assert!(throttle.begin("b", HOME, 0).is_err(), "more than three");
        assert!(!lock(&throttle.clients).map.contains_key("a"), "cleared");
    }

    #[test]
    fn refused_attempts_add_no_entries_and_a_full_map_stops_growing() {
        let throttle = LoginThrottle::new(LoginLimits {
            per_address: 1,
            ..LoginLimits::default()
        });
        fail(&throttle, "a", OTHER, 0, 2);
        for i in 0..1000 {
            assert!(throttle.begin(&format!("made-up-{i}"), OTHER, 0).is_err());
        }
        assert_eq!(
            lock(&throttle.clients).map.len(),
            1,
            "refusals insert nothing"
        );

        let throttle = LoginThrottle::new(LoginLimits::default());
        for i in 0..MAX_ENTRIES + 50 {
            let address = IpAddr::from([10, 1, (i / 256) as u8, (i % 256) as u8]);
            throttle.begin(&format!("id-{i}"), address, 0).unwrap();
        }
        assert_eq!(lock(&throttle.clients).map.len(), MAX_ENTRIES);
        assert_eq!(lock(&throttle.addresses).map.len(), MAX_ENTRIES);
    }

    #[test]
    fn an_attempt_that_could_not_be_checked_is_given_back() {
        let throttle = LoginThrottle::new(LoginLimits::default());
        for _ in 0..30 {
            throttle.begin("a", HOME, 0).unwrap();
            throttle.not_checked("a", HOME);
        }
        assert!(throttle.begin("a", HOME, 0).is_ok());
    }
}
