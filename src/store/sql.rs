//! The store's queries, written once for both databases (see [`super::dialect`]).
//!
//! One `impl` block per area, each in the file named for what it stores:
//! [`super::partners`] (partners, keys, settings), [`super::sessions`] (logins,
//! tokens, used signatures), [`super::orders`] (reading and changing orders),
//! [`super::order_insert`] (writing new ones), [`super::audit`].

use std::sync::Arc;

use sqlx::Pool;

use super::dialect::{Bind, Dialect};
use super::error::StoreResult;
use super::wakeups::{AnyEvent, Subscription, Wakeups};
use crate::domain::ClientId;

pub struct SqlStore<D: Dialect> {
    /// Reads. On SQLite a read-only pool beside the one writer, so reads
    /// never wait for it (WAL); on PostgreSQL the same pool as `writer`.
    pub(super) reader: Pool<D>,
    /// Writes: on SQLite exactly one connection.
    pub(super) writer: Pool<D>,
    /// This instance's waiting readers of event feeds.
    pub(super) wakeups: Arc<Wakeups>,
}

impl<D: Dialect> std::fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", <D as sqlx::Database>::NAME)
    }
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            reader: self.reader.clone(),
            writer: self.writer.clone(),
            wakeups: self.wakeups.clone(),
        }
    }
}

impl<D: Dialect> SqlStore<D> {
    pub(super) fn new(reader: Pool<D>, writer: Pool<D>, wakeups: Arc<Wakeups>) -> Self {
        Self {
            reader,
            writer,
            wakeups,
        }
    }

    /// Moves when an endpoint is registered or enabled through this
    /// instance (see [`Wakeups::endpoints_changed`]).
    pub fn endpoints_generation(&self) -> u64 {
        self.wakeups.endpoints_generation()
    }

    /// Starts watching every partner's events (see [`Wakeups`]).
    pub fn any_event(&self) -> AnyEvent {
        self.wakeups.any_event()
    }

    /// Starts watching `client_id`'s event feed (see [`Wakeups`]).
    pub fn subscribe(&self, client_id: &ClientId) -> Subscription {
        self.wakeups.subscribe(client_id)
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query::<D>("SELECT 1")
            .execute(D::pool(&self.reader))
            .await?;
        Ok(())
    }

    /// The newest migration applied to the database, `None` for a database
    /// that has none yet (or no migration table to read).
    pub async fn schema_version(&self) -> Option<i64> {
        sqlx::query::<D>("SELECT max(version) AS version FROM _sqlx_migrations WHERE success")
            .fetch_one(D::pool(&self.writer))
            .await
            .ok()
            .and_then(|row| D::get::<Option<i64>>(&row, "version").ok().flatten())
    }

    /// The HS256 signing key: the stored one, or `candidate` if none is stored
    /// yet. Racing first starts agree on whichever key was written first.
    pub async fn jwt_key(&self, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query::<D>(
            "INSERT INTO settings (name, value) VALUES ('jwt_signing_key', $1) ON CONFLICT (name) DO NOTHING",
        )
        .arg(candidate)
        .execute(D::pool(&self.writer))
        .await?;
        let row = sqlx::query::<D>("SELECT value FROM settings WHERE name = 'jwt_signing_key'")
            .fetch_one(D::pool(&self.writer))
            .await?;
        Ok(D::get(&row, "value")?)
    }
}
