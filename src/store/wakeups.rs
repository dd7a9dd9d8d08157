//! Wakes the long polls of a partner's event feed when its events commit.
//!
//! A waiting reader holds a [`Subscription`]: a `watch` receiver, no thread
//! and no timer of its own but the one its request sets, so thousands of
//! waiting partners cost memory only. Taken before the reader looks for new
//! events, it also catches events that commit while it looks.
//!
//! Keys are client ids of authenticated partners that are waiting, so the
//! map is bounded by the partners registered, and an entry goes when its
//! last waiter does. The store wakes this instance's waiters after each
//! commit that wrote events; on PostgreSQL other instances learn of it by
//! `NOTIFY` ([`super::postgres`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::domain::ClientId;

#[derive(Debug)]
pub struct Wakeups {
    waiting: Mutex<HashMap<ClientId, watch::Sender<()>>>,
    /// Any partner's events: what the webhook dispatcher waits for.
    any: watch::Sender<()>,
    /// Endpoints registered or enabled through this instance, counted: the
    /// dispatcher, which stops looking while no endpoint is enabled, looks
    /// again when this moves.
    endpoints: AtomicU64,
}

impl Default for Wakeups {
    fn default() -> Self {
        Self {
            waiting: Mutex::default(),
            any: watch::channel(()).0,
            endpoints: AtomicU64::new(0),
        }
    }
}

impl Wakeups {
    /// Starts watching `client_id`'s feed.
    pub fn subscribe(self: &Arc<Self>, client_id: &ClientId) -> Subscription {
        let receiver = self
            .lock()
            .entry(client_id.clone())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        Subscription {
            wakeups: self.clone(),
            client_id: client_id.clone(),
            receiver,
        }
    }

    /// Wakes whoever waits for `client_id`'s events.
    pub fn wake(&self, client_id: &str) {
        self.any.send_replace(());
        if let Some(sender) = self.lock().get(client_id) {
            sender.send_replace(());
        }
    }

    /// An endpoint was registered or enabled: wakes the dispatcher to look.
    pub fn endpoints_changed(&self) {
        self.endpoints.fetch_add(1, Ordering::Release);
        self.any.send_replace(());
    }

    /// How many times [`Self::endpoints_changed`] was called.
    pub fn endpoints_generation(&self) -> u64 {
        self.endpoints.load(Ordering::Acquire)
    }

    /// Watches every partner's events at once.
    pub fn any_event(&self) -> AnyEvent {
        AnyEvent(self.any.subscribe())
    }

    /// Wakes every waiter: notifications may have been lost (the PostgreSQL
    /// listener reconnected), so each looks again.
    pub fn wake_all(&self) {
        self.any.send_replace(());
        for sender in self.lock().values() {
            sender.send_replace(());
        }
    }

    /// Partners with a waiter now.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClientId, watch::Sender<()>>> {
        // Nothing panics while holding it; a poisoned map is still whole.
        self.waiting
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Interest in every partner's events (the webhook dispatcher's).
pub struct AnyEvent(watch::Receiver<()>);

impl AnyEvent {
    /// Returns once any event committed since the last call returned.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One waiter's interest in a partner's feed; gone when dropped.
pub struct Subscription {
    wakeups: Arc<Wakeups>,
    client_id: ClientId,
    receiver: watch::Receiver<()>,
}

impl Subscription {
    /// Returns once an event for this partner committed since the
    /// subscription was taken or since the last call returned.
    pub async fn changed(&mut self) {
        // The sender lives while this receiver is in the map.
        if self.receiver.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut waiting = self.wakeups.lock();
        // This receiver still counts until it is dropped, after this runs.
        if waiting
            .get(&self.client_id)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            waiting.remove(&self.client_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn client(id: &str) -> ClientId {
        ClientId::parse(id).unwrap()
    }

    #[tokio::test]
    async fn a_wake_reaches_the_partners_waiters_and_no_one_else() {
        let wakeups = Arc::new(Wakeups::default());
        let mut a = wakeups.subscribe(&client("a"));
        let mut b = wakeups.subscribe(&client("b"));

        wakeups.wake("a");

        tokio::time::timeout(Duration::from_secs(1), a.changed())
            .await
            .expect("a's waiter is woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.changed())
                .await
                .is_err(),
            "b's waiter sleeps on"
        );
    }

    #[tokio::test]
    async fn a_wake_between_subscribing_and_waiting_is_not_lost() {
        let wakeups = Arc::new(Wakeups::default());
        let mut waiter = wakeups.subscribe(&client("a"));

        wakeups.wake("a");

        tokio::time::timeout(Duration::from_secs(1), waiter.changed())
            .await
            .expect("the earlier wake counts");
    }

    #[tokio::test]
    async fn the_map_forgets_a_partner_when_its_last_waiter_leaves() {
        let wakeups = Arc::new(Wakeups::default());
        let first = wakeups.subscribe(&client("a"));
        let second = wakeups.subscribe(&client("a"));
        assert_eq!(wakeups.waiting(), 1);

        drop(first);
        assert_eq!(wakeups.waiting(), 1);
        drop(second);
        assert_eq!(wakeups.waiting(), 0);
        wakeups.wake("a");
        wakeups.wake_all();
        assert_eq!(wakeups.waiting(), 0);
    }
}
