//! What every signed request needs from the database, kept in memory briefly:
//! the login's state (revoked? partner enabled? secret rotated? settings) and
//! the partner's active keys, already parsed. Entries live 500 ms, so a change
//! made by the CLI or by another instance (disable, revoke a key, rotate a
//! secret, a refresh-token reuse revoking a login) is honoured everywhere
//! within half a second, inside the one second SPEC promises, while a busy
//! partner costs one database read per half second instead of two per request.
//! This instance's own revocations drop their entries at once.
//!
//! Each entry is read by one caller: the requests that find it missing or
//! expired at the same moment (every in-flight request of a busy partner,
//! twice a second) wait for that one read and share its outcome instead of
//! each making their own. A failure is shared too, then forgotten: with the
//! database down, every waiting request is answered after one read's
//! timeout, not after one timeout each in turn.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::ParsedPublicKey;
use moka::sync::Cache;
use tokio::sync::OnceCell;

use super::signature;
use crate::domain::ClientId;
use crate::store::{SessionState, Store, StoreError, StoreResult};

/// How long an entry may be served without asking the database again.
pub const FRESH_FOR: Duration = Duration::from_millis(500);
/// Entries kept at most; beyond this the least used go first.
const CAPACITY: u64 = 100_000;

/// An entry: the outcome of its one read, once that read is over.
type Slot<V, E> = Arc<OnceCell<Result<Arc<V>, E>>>;

#[derive(Clone)]
pub struct AuthCache {
    sessions: Cache<String, Slot<SessionState, Miss>>,
    keys: Cache<String, Slot<Vec<ParsedPublicKey>, Arc<StoreError>>>,
}

/// Why a login's state could not be read.
#[derive(Clone)]
enum Miss {
    /// No such login.
    Unknown,
    Store(Arc<StoreError>),
}

/// The entry under `key`, read by `load` if nobody has yet; callers that
/// arrive while it is being read wait for it and get its outcome. A failed
/// read is not kept: once its waiters have it, the next caller reads again.
async fn read_once<V, E>(
    cache: &Cache<String, Slot<V, E>>,
    key: &str,
    load: impl AsyncFnOnce() -> Result<V, E>,
) -> Result<Arc<V>, E>
where
    V: Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    let slot = cache.get_with_by_ref(key, Slot::default);
    let outcome = slot
        .get_or_init(async || load().await.map(Arc::new))
        .await
        .clone();
    if outcome.is_err() {
        cache.invalidate(key);
    }
    outcome
}

impl Default for AuthCache {
    fn default() -> Self {
        Self {
            sessions: fresh_for_a_moment(),
            keys: fresh_for_a_moment(),
        }
    }
}

fn fresh_for_a_moment<V: Clone + Send + Sync + 'static>() -> Cache<String, V> {
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(FRESH_FOR)
        .build()
}

impl AuthCache {
    /// The login's state; an unknown login is read again by the next caller.
    pub async fn session_state(
        &self,
        store: &Store,
        session_id: &str,
    ) -> StoreResult<Option<Arc<SessionState>>> {
        let read = read_once(&self.sessions, session_id, async || {
            match store.session_state(session_id).await {
                Ok(Some(state)) => Ok(state),
                Ok(None) => Err(Miss::Unknown),
                Err(error) => Err(Miss::Store(Arc::new(error))),
            }
        });
        match read.await {
            Ok(state) => Ok(Some(state)),
            Err(Miss::Unknown) => Ok(None),
            Err(Miss::Store(error)) => Err(error.same_kind("reading the login's state")),
        }
    }

    /// The partner's active public keys, parsed.
    pub async fn active_keys(
        &self,
        store: &Store,
        client_id: &ClientId,
    ) -> StoreResult<Arc<Vec<ParsedPublicKey>>> {
        read_once(&self.keys, client_id.as_str(), async || {
            let stored = store.active_keys(client_id).await.map_err(Arc::new)?;
            Ok(signature::parse_keys(stored.iter().map(Vec::as_slice)))
        })
        .await
        .map_err(|error| error.same_kind("reading the partner's keys"))
    }

    /// Forgets a login this instance has just revoked.
    pub fn forget_session(&self, session_id: &str) {
        self.sessions.invalidate(session_id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn callers_that_miss_at_once_wait_for_one_read() {
        let cache = fresh_for_a_moment::<Slot<usize, ()>>();
        let reads = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let (cache, reads) = (cache.clone(), reads.clone());
                tokio::spawn(async move {
                    read_once(&cache, "k", async || {
                        let read = reads.fetch_add(1, Ordering::SeqCst) + 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(read)
                    })
                    .await
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(*caller.await.unwrap().unwrap(), 1);
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_read_is_shared_by_its_waiters_and_then_forgotten() {
        let cache = fresh_for_a_moment::<Slot<&str, &str>>();
        let reads = Arc::new(AtomicUsize::new(0));
        let started = std::time::Instant::now();
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let (cache, reads) = (cache.clone(), reads.clone());
                tokio::spawn(async move {
                    read_once(&cache, "k", async || {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err("down")
                    })
                    .await
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap_err(), "down");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for all waiters");
        // One read's time, not one each in turn (64 × 50 ms).
        assert!(started.elapsed() < Duration::from_millis(1_500));

        let read = read_once(&cache, "k", async || Ok::<_, &str>("up")).await;
        assert_eq!(*read.unwrap(), "up", "the next caller reads again");
    }

    #[tokio::test]
    async fn keys_are_served_from_memory_until_they_are_half_a_second_old() {
        let (_dir, store) = crate::store::sqlite::SqliteStore::with_partner_p().await;
        let store = Store::from(store);
        let p = ClientId::parse("p").unwrap();
        let cache = AuthCache::default();
        let cached_at = std::time::Instant::now();
        assert_eq!(cache.active_keys(&store, &p).await.unwrap().len(), 1);

        assert!(
            store
                .revoke_key(&p, "key_1", time::OffsetDateTime::UNIX_EPOCH)
                .await
                .unwrap()
        );
        let served = cache.active_keys(&store, &p).await.unwrap().len();
        // A machine stalled for half a second would have let the entry expire.
        if cached_at.elapsed() < FRESH_FOR {
            assert_eq!(served, 1, "read from memory, not the database");
        }
        tokio::time::sleep(FRESH_FOR + Duration::from_millis(100)).await;
        let fresh = cache.active_keys(&store, &p).await.unwrap().len();

        assert_eq!(fresh, 0, "read again once stale");
    }
}
