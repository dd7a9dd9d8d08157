//! What every signed request needs from the database, kept in memory briefly:
//! the login's state (revoked? partner enabled? secret rotated? settings) and
//! the partner's active keys, already parsed. Entries live 500 ms, so a change
//! made by the CLI or by another instance (disable, revoke a key, rotate a
//! secret, a refresh-token reuse revoking a login) is honoured everywhere
//! within half a second, inside the one second SPEC promises, while a busy
//! partner costs one database read per half second instead of two per request.
//! This instance's own revocations drop their entries at once.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::ParsedPublicKey;
use moka::sync::Cache;

use super::signature;
use crate::domain::ClientId;
use crate::store::{SessionState, Store, StoreResult};

/// How long an entry may be served without asking the database again.
pub const FRESH_FOR: Duration = Duration::from_millis(500);
/// Entries kept at most; beyond this the least used go first.
const CAPACITY: u64 = 100_000;

#[derive(Clone)]
pub struct AuthCache {
    sessions: Cache<String, Arc<SessionState>>,
    keys: Cache<String, Arc<Vec<ParsedPublicKey>>>,
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
    /// The login's state; unknown logins are not cached.
    pub async fn session_state(
        &self,
        store: &Store,
        session_id: &str,
    ) -> StoreResult<Option<Arc<SessionState>>> {
        if let Some(state) = self.sessions.get(session_id) {
            return Ok(Some(state));
        }
        let state = store.session_state(session_id).await?.map(Arc::new);
        if let Some(state) = &state {
            self.sessions.insert(session_id.to_owned(), state.clone());
        }
        Ok(state)
    }

    /// The partner's active public keys, parsed.
    pub async fn active_keys(
        &self,
        store: &Store,
        client_id: &ClientId,
    ) -> StoreResult<Arc<Vec<ParsedPublicKey>>> {
        if let Some(keys) = self.keys.get(client_id.as_str()) {
            return Ok(keys);
        }
        let stored = store.active_keys(client_id).await?;
        let keys = Arc::new(signature::parse_keys(stored.iter().map(Vec::as_slice)));
        self.keys
            .insert(client_id.as_str().to_owned(), keys.clone());
        Ok(keys)
    }

    /// Forgets a login this instance has just revoked.
    pub fn forget_session(&self, session_id: &str) {
        self.sessions.invalidate(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
