//! The PostgreSQL store: the production backend, shared by any number of
//! stateless instances.
//!
//! Every guarantee the SQLite store gets from its single writer comes here
//! from the database itself, so it holds across instances: uniqueness
//! constraints (`ON CONFLICT`) for client ids, keys and purchase-order
//! numbers, row locks for at-most-once token refresh and status changes, an
//! advisory lock per Idempotency-Key, an identity sequence for order numbers,
//! and an advisory lock around migrations. The queries themselves are the
//! shared ones ([`super::sql`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres};

use super::error::StoreResult;
use super::feed;
use super::group_commit::{CHECK_IDLE_AFTER, GroupCommit, Writers};
use super::order_batch::{BatchOutcome, PendingBatch};
use super::order_insert::{InsertOrder, PendingOrder};
use super::sql::SqlStore;
use super::wakeups::Wakeups;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a pooled connection before answering 503;
/// well inside the request timeout, so an outage is reported, not waited out.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Group-commit writers at most: while one batch waits for its commit to
/// reach the disk the next one is written; more add connections, not speed.
const MAX_WRITERS: u32 = 2;

#[derive(Clone)]
pub struct PgStore {
    pub(crate) sql: SqlStore<Postgres>,
    /// Order inserts, written in batches by this instance's writer.
    orders: GroupCommit,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(postgres)")
    }
}

impl PgStore {
    /// Queues the insert for this instance's group-commit writer and waits
    /// until the batch holding it is committed.
    pub async fn insert_order(&self, pending: PendingOrder) -> StoreResult<InsertOrder> {
        self.orders.insert(&self.sql, pending).await
    }

    pub async fn insert_batch(&self, batch: PendingBatch) -> StoreResult<BatchOutcome> {
        self.orders.insert_batch(&self.sql, batch).await
    }
}

/// Connects with at most `max_connections`: the group-commit writers get
/// connections of their own (a quarter, at least one and at most
/// [`MAX_WRITERS`]), so a
/// batch never queues behind the requests whose orders it holds; everything
/// else shares the rest. With a single connection, everything shares it.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgStore> {
    let options = PgConnectOptions::from_str(url)?.application_name("sales-order-api");
    let writers = (max_connections / 4).clamp(1, MAX_WRITERS);
    let wakeups = Arc::new(Wakeups::default());
    let (pool, orders) = if max_connections >= 2 {
        let pool = pool_options(max_connections - writers)
            .connect_with(options.clone())
            .await?;
        let writer = pool_options(writers).connect_lazy_with(options.clone());
        let writers = Writers::Dedicated(writers as usize);
        (pool, GroupCommit::start(writer, writers, wakeups.clone()))
    } else {
        let pool = pool_options(1).connect_with(options.clone()).await?;
        let orders = GroupCommit::start(pool.clone(), Writers::Shared, wakeups.clone());
        (pool, orders)
    };
    tokio::spawn(listen(options, Arc::downgrade(&wakeups)));
    Ok(PgStore {
        orders,
        sql: SqlStore::new(pool.clone(), pool, wakeups),
    })
}

/// Wakes this instance's feed readers when any instance commits events for
/// their partner (`pg_notify` in the writing transaction, [`feed::append`]).
/// On its own connection, outside the pools. Each time it starts listening
/// (again), notifications may have been missed: every reader is woken to
/// look again. It reconnects a second apart while the server is away.
/// Ends with the store.
async fn listen(options: PgConnectOptions, wakeups: std::sync::Weak<Wakeups>) {
    // A pool of one: how sqlx's listener reconnects.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options);
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(feed::CHANNEL).await {
                Ok(()) => {
                    // Listening (again): whatever committed while this
                    // instance was not may have been missed, so every reader
                    // looks once more. From here on, only what is announced.
                    if let Some(wakeups) = wakeups.upgrade() {
                        wakeups.wake_all();
                    }
                    loop {
                        let received = listener.try_recv().await;
                        let Some(wakeups) = wakeups.upgrade() else {
                            return;
                        };
                        match received {
                            Ok(Some(notification)) => wakeups.wake(notification.payload()),
                            // Reconnected and listening again (sqlx's eager
                            // reconnect): notifications may be lost.
                            Ok(None) => wakeups.wake_all(),
                            Err(error) => {
                                tracing::warn!(%error, "the event listener lost its connection");
                                break;
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "the event listener cannot LISTEN"),
            },
            Err(error) => tracing::debug!(%error, "the event listener cannot connect"),
        }
        if wakeups.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // How the pool heals on its own: a connection that died with the
        // server while idle is found and replaced before a request gets it.
        // One that dies while busy fails that request (503) and is closed
        // when it comes back, by sqlx's own check.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_IDLE_AFTER {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}

/// The newest migration this release brings.
pub fn latest_migration() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Runs on a connection of its own, closed afterwards: sqlx holds a
/// session-level advisory lock while migrating, and a failed run must not
/// leave that lock on a pooled connection.
pub async fn migrate(store: &PgStore) -> anyhow::Result<()> {
    let mut connection = PgConnection::connect_with(&store.sql.writer.connect_options()).await?;
    MIGRATOR.run(&mut connection).await?;
    connection.close().await?;
    Ok(())
}
