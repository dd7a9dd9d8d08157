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
//! twice a second) wait for that one read instead of each making their own,
//! which on PostgreSQL queued a hundred reads behind each other.

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

/// An entry: empty until its one reader has filled it. A failed read
/// leaves it empty, so the next caller reads again.
type Slot<V> = Arc<OnceCell<Arc<V>>>;

#[derive(Clone)]
pub struct AuthCache {
    sessions: Cache<String, Slot<SessionState>>,
    keys: Cache<String, Slot<Vec<ParsedPublicKey>>>,
}

/// Why an entry could not be filled.
enum Miss {
    /// No such login: nothing to keep.
    Unknown,
    Store(StoreError),
}

impl From<StoreError> for Miss {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// The entry under `key`, read by `load` if nobody has yet.
async fn read_once<V, E>(
    cache: &Cache<String, Slot<V>>,
    key: &str,
    load: impl AsyncFnOnce() -> Result<V, E>,
) -> Result<Arc<V>, E>
where
    V: Send + Sync + 'static,
{
    let slot = cache.get_with_by_ref(key, Slot::default);
    slot.get_or_try_init(async || load().await.map(Arc::new))
        .await
        .cloned()
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
            store.session_state(session_id).await?.ok_or(Miss::Unknown)
        });
        match read.await {
            Ok(state) => Ok(Some(state)),
            Err(Miss::Unknown) => Ok(None),
            Err(Miss::Store(error)) => Err(error),
        }
    }

    /// The partner's active public keys, parsed.
    pub async fn active_keys(
        &self,
        store: &Store,
        client_id: &ClientId,
    ) -> StoreResult<Arc<Vec<ParsedPublicKey>>> {
        read_once(&self.keys, client_id.as_str(), async || {
            let stored = store.active_keys(client_id).await?;
            Ok(signature::parse_keys(stored.iter().map(Vec::as_slice)))
        })
        .await
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
        let cache = fresh_for_a_moment::<Slot<usize>>();
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

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let cache = fresh_for_a_moment::<Slot<&str>>();
        let failed = read_once(&cache, "k", async || Err::<&str, _>("down")).await;
        assert_eq!(failed.unwrap_err(), "down");
        let read = read_once(&cache, "k", async || Ok::<_, &str>("up")).await;
        assert_eq!(*read.unwrap(), "up");
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
