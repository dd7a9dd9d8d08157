//! Group commit: a writer task writes every order insert, taking all the
//! inserts that queued up during the previous commit into one transaction
//! (at most `max_batch`), so one commit makes a whole batch durable. The
//! batch is written set-based when it can be ([`write_all`]: no savepoints,
//! a statement or a few per table), else, or when that fails, in a new
//! transaction one order at a time in savepoints ([`write_each`]). Callers
//! are answered only after the batch's COMMIT returned, so a 201 still means
//! the order is on disk. No batch waits on a timer: a lone insert is written
//! at once, and batches grow while the writers are busy and during the few
//! yields before the next one starts.
//!
//! The same writer serves both databases. SQLite has one write connection,
//! so one batch is written at a time. PostgreSQL takes several writers, each
//! on a connection of its own: while one batch waits for its COMMIT to
//! reach the disk, the next is already being written, and the database
//! flushes their commits together. Batches that run at once (of this
//! instance or another) first take the advisory lock of each
//! Idempotency-Key they hold (in one order, so two batches cannot wait on
//! each other), and insert their orders sorted by partner and purchase order
//! number, so two batches that want the same numbers take them in the same
//! order instead of deadlocking.
//!
//! A batch request (`POST /api/v1/sales-orders/batch`) goes through the same
//! queue and writers, in a transaction of its own ([`write_batch`]).
//!
//! A caller that goes away (a client hanging up) cannot cut a batch short:
//! the task owns the transaction, and the order is committed or not as a whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Pool};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::dialect::Dialect;
use super::error::{StoreError, StoreResult};
use super::order_batch::{BatchOutcome, BatchWritten, PendingBatch, write_batch};
use super::order_insert::{
    InsertOrder, PendingOrder, Written, lock_idempotency_keys, set_based, write_all, write_each,
};
use super::sql::SqlStore;
use super::wakeups::Wakeups;
use crate::domain::Code;

/// Inserts that may wait for the writer; senders beyond this wait their turn.
pub const QUEUE: usize = 4096;
/// Inserts in one transaction at most.
pub const MAX_BATCH: usize = 256;
/// Times the writer lets other tasks run before starting a batch.
const YIELDS: usize = 4;

pub struct Job {
    pub pending: PendingOrder,
    pub reply: oneshot::Sender<StoreResult<Written>>,
}

/// A batch of orders from one request, written in a transaction of its own.
pub struct BatchJob {
    pub batch: PendingBatch,
    pub reply: oneshot::Sender<StoreResult<BatchWritten>>,
}

/// What the writers take from their queue.
enum Work {
    Order(Job),
    Batch(BatchJob),
}

/// Who else uses the writers' pool.
#[derive(Debug, Clone, Copy)]
pub enum Writers {
    /// One writer, on a pool other writes use too (SQLite's one write
    /// connection): it gives the connection back after each batch.
    Shared,
    /// This many writers, on a pool of their own with a connection for
    /// each: each keeps its connection between batches.
    Dedicated(usize),
}

/// A connection idle this long is checked before it is used: by a writer,
/// the connection it kept; by the PostgreSQL pools (`store::postgres`),
/// the one they hand out. sqlx already checks every connection when it
/// comes back to a pool, so a busy connection is known to be alive; only
/// one that sat idle may have lost its server since (a restart, an
/// idle-session timeout). Checking on every use cost a round trip a query.
pub(super) const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// One writer's connection. Kept between batches where the pool is the
/// writers' own: sqlx pings every connection that comes back to a pool, a
/// round trip per batch that a busy writer need not pay.
struct Writer<D: Dialect> {
    pool: Pool<D>,
    keep: bool,
    held: Option<(PoolConnection<D>, Instant)>,
}

impl<D: Dialect> Writer<D> {
    /// A connection for the next batch: the kept one if it is fresh or
    /// still answers, else one from the pool.
    async fn connection(&mut self) -> StoreResult<PoolConnection<D>> {
        if let Some((mut connection, last_used)) = self.held.take() {
            if last_used.elapsed() < CHECK_IDLE_AFTER || connection.ping().await.is_ok() {
                return Ok(connection);
            }
            connection.close_on_drop();
        }
        Ok(self.pool.acquire().await?)
    }

    /// Takes the connection back after a batch: kept if this writer keeps
    /// its connection and the batch went through, else returned (or, after
    /// a failure, closed, since it may be broken).
    fn done(&mut self, mut connection: PoolConnection<D>, ok: bool) {
        if !ok {
            connection.close_on_drop();
        } else if self.keep {
            self.held = Some((connection, Instant::now()));
        }
    }
}

/// The handle of a store's group-commit writer.
#[derive(Clone)]
pub struct GroupCommit {
    inserts: mpsc::Sender<Work>,
    max_batch: Arc<AtomicUsize>,
}

impl GroupCommit {
    /// Starts the writers on `pool`, the pool they take their connections
    /// from. On PostgreSQL that pool is the writers' own, so a batch never
    /// waits behind other queries; SQLite's is its one write connection,
    /// which every write shares.
    /// Callers' partners' feed readers are woken through `wakeups` after
    /// each commit.
    pub fn start<D: Dialect>(pool: Pool<D>, writers: Writers, wakeups: Arc<Wakeups>) -> Self {
        let (inserts, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let max_batch = Arc::new(AtomicUsize::new(MAX_BATCH));
        let (count, keep) = match writers {
            Writers::Shared => (1, false),
            Writers::Dedicated(count) => (count.max(1), true),
        };
        for _ in 0..count {
            let writer = Writer {
                pool: pool.clone(),
                keep,
                held: None,
            };
            tokio::spawn(run(
                writer,
                queue.clone(),
                max_batch.clone(),
                wakeups.clone(),
            ));
        }
        Self { inserts, max_batch }
    }

    /// Caps how many inserts share one transaction; 1 commits each alone (the
    /// plain path, kept for comparison in benchmarks).
    pub fn set_max_batch(&self, max_batch: usize) {
        self.max_batch.store(max_batch.max(1), Ordering::Relaxed);
    }

    /// Queues the insert and waits until the batch holding it is committed.
    pub async fn insert<D: Dialect>(
        &self,
        store: &SqlStore<D>,
        pending: PendingOrder,
    ) -> StoreResult<InsertOrder> {
        let client_id = pending.client_id.clone();
        let (reply, answer) = oneshot::channel();
        self.inserts
            .send(Work::Order(Job { pending, reply }))
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        let written = answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))??;
        // A replay's first order is committed now, so any pool sees it.
        store.answer(&client_id, written).await
    }

    /// Queues a batch and waits until it is committed (or rolled back, when
    /// atomic and refused).
    pub async fn insert_batch<D: Dialect>(
        &self,
        store: &SqlStore<D>,
        batch: PendingBatch,
    ) -> StoreResult<BatchOutcome> {
        let client_id = batch.client_id.clone();
        let (reply, answer) = oneshot::channel();
        self.inserts
            .send(Work::Batch(BatchJob { batch, reply }))
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        let written = answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))??;
        store.batch_answer(&client_id, written).await
    }
}

/// One writer: takes the next batch from the queue (the writers take turns,
/// so each batch holds what arrived while the one before it was taken), and
/// writes it.
async fn run<D: Dialect>(
    mut writer: Writer<D>,
    queue: Arc<Mutex<mpsc::Receiver<Work>>>,
    max_batch: Arc<AtomicUsize>,
    wakeups: Arc<Wakeups>,
) {
    let mut work = Vec::new();
    let mut batch = Vec::new();
    loop {
        let max_batch = max_batch.load(Ordering::Relaxed);
        if next_batch(&mut *queue.lock().await, &mut work, max_batch).await == 0 {
            return;
        }
        let mut requests = Vec::new();
        for item in work.drain(..) {
            match item {
                Work::Order(job) => batch.push(job),
                Work::Batch(job) => requests.push(job),
            }
        }
        // Each batch request in a transaction of its own: written together,
        // their purchase order numbers would no longer be taken in one order
        // (a deadlock on PostgreSQL), and measured, it gained nothing.
        for job in requests {
            write_request(&mut writer, job, &wakeups).await;
        }
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!("order_commit_batch_size").record(batch.len() as f64);
        let written = match writer.connection().await {
            Ok(mut connection) => {
                let written = write::<D>(&mut connection, &batch).await;
                writer.done(connection, written.is_ok());
                written
            }
            Err(error) => Err(error),
        };
        let results = match written {
            Ok(results) => results,
            Err(error) => {
                tracing::warn!(%error, inserts = batch.len(), "a group commit failed");
                batch
                    .iter()
                    .map(|_| Err(error.same_kind("the batch holding this insert")))
                    .collect()
            }
        };
        // Here, not in the callers: a caller that went away still wakes
        // the readers of the event its order made.
        let mut last_woken = None;
        for (job, result) in batch.iter().zip(&results) {
            let client_id = job.pending.client_id.as_str();
            if matches!(result, Ok(Written::Done(InsertOrder::Created(_))))
                && last_woken != Some(client_id)
            {
                wakeups.wake(client_id);
                last_woken = Some(client_id);
            }
        }
        for (job, result) in batch.drain(..).zip(results) {
            // A caller that went away no longer needs its answer.
            let _ = job.reply.send(result);
        }
    }
}

/// A batch request, in its own transaction; its partner's feed readers
/// woken if it stored anything.
async fn write_request<D: Dialect>(writer: &mut Writer<D>, job: BatchJob, wakeups: &Wakeups) {
    let written = match writer.connection().await {
        Ok(mut connection) => {
            let written = write_batch::<D>(&mut connection, &job.batch).await;
            writer.done(connection, written.is_ok());
            written
        }
        Err(error) => Err(error),
    };
    match &written {
        Err(error) => tracing::warn!(%error, orders = job.batch.orders.len(), "a batch failed"),
        Ok(BatchWritten::Done(BatchOutcome::Written(answers)))
            if answers
                .iter()
                .any(|(_, outcome)| matches!(outcome, InsertOrder::Created(_))) =>
        {
            wakeups.wake(job.batch.client_id.as_str());
        }
        Ok(_) => {}
    }
    // A caller that went away no longer needs its answer.
    let _ = job.reply.send(written);
}

/// Waits for the first insert, then takes what else is queued, up to
/// `max_batch`; 0 when the queue is closed.
async fn next_batch(
    queue: &mut mpsc::Receiver<Work>,
    batch: &mut Vec<Work>,
    max_batch: usize,
) -> usize {
    if queue.recv_many(batch, max_batch).await == 0 {
        return 0;
    }
    // Requests answered together by the last commit come back together:
    // let the ones already being handled reach the queue before this
    // batch starts. Yielding costs no timer and no latency when idle.
    for _ in 0..YIELDS {
        if batch.len() >= max_batch {
            break;
        }
        tokio::task::yield_now().await;
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    }
    batch.len()
}

/// The whole batch in one transaction on `connection` (two if the
/// set-based insert fails and it is written again one by one); each job's
/// own result, in the batch's order, valid once this returns `Ok` (the
/// COMMIT succeeded). The writer task is never cancelled, so its BEGIN and
/// COMMIT need not be detached from it as other PostgreSQL writes are
/// (sqlx#4393).
async fn write<D: Dialect>(
    connection: &mut D::Connection,
    batch: &[Job],
) -> StoreResult<Vec<StoreResult<Written>>> {
    // Stable, so of two orders with one number the earlier still wins.
    let mut positions: Vec<usize> = (0..batch.len()).collect();
    positions.sort_by_key(|&i| {
        let pending = &batch[i].pending;
        let po = pending.order.purchase_order_no.as_ref().map(Code::as_str);
        (pending.client_id.as_str(), po)
    });
    let sorted: Vec<&PendingOrder> = positions.iter().map(|&i| &batch[i].pending).collect();
    let written = match write_sorted::<D>(connection, &sorted).await? {
        Some(written) => written.into_iter().map(Ok).collect(),
        None => write_sorted_each::<D>(connection, &sorted).await?,
    };
    debug_assert_eq!(written.len(), batch.len(), "one result per order");
    let mut results: Vec<Option<StoreResult<Written>>> = batch.iter().map(|_| None).collect();
    for (position, result) in positions.into_iter().zip(written) {
        results[position] = Some(result);
    }
    Ok(results.into_iter().flatten().collect())
}

/// The batch in one transaction, set-based, committed;
/// `None` when it cannot be written that way (keys, or an order that fails
/// on its own), after rolling back. Without savepoints, the common case
/// costs two round trips fewer.
async fn write_sorted<D: Dialect>(
    connection: &mut D::Connection,
    sorted: &[&PendingOrder],
) -> StoreResult<Option<Vec<Written>>> {
    if !set_based(sorted) {
        return Ok(None);
    }
    let mut tx = connection.begin_with(D::BEGIN).await?;
    match write_all(&mut tx, sorted).await {
        Ok(written) => {
            tx.commit().await?;
            Ok(Some(written))
        }
        Err(error) => {
            // An order that fails on its own (its partner just deleted, say):
            // rare, and it costs the batch a second transaction.
            tracing::warn!(%error, "bulk insert failed; inserting one by one");
            tx.rollback().await?;
            Ok(None)
        }
    }
}

/// The batch in one transaction, one order at a time, committed.
async fn write_sorted_each<D: Dialect>(
    connection: &mut D::Connection,
    sorted: &[&PendingOrder],
) -> StoreResult<Vec<StoreResult<Written>>> {
    let mut tx = connection.begin_with(D::BEGIN).await?;
    let keys = sorted.iter().filter_map(|pending| {
        let (key, _) = pending.idempotency.as_ref()?;
        Some((&pending.client_id, key.as_str()))
    });
    lock_idempotency_keys(&mut tx, keys).await?;
    let written = write_each(&mut tx, sorted).await?;
    tx.commit().await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{ClientId, NewOrder, ids};
    use crate::store::InsertOrder;
    use crate::store::sqlite::SqliteStore;

    /// A valid text value.
    fn job(
        client_id: &str,
        po: &str,
        key: Option<(&str, &[u8])>,
    ) -> (Job, oneshot::Receiver<StoreResult<Written>>) {
        let order = NewOrder::example(Some(po));
        let (reply, answer) = oneshot::channel();
        let job = Job {
            pending: PendingOrder {
                client_id: ClientId::parse(client_id).unwrap(),
                order,
                idempotency: key.map(|(key, hash)| (key.to_owned(), hash.to_vec())),
                now: OffsetDateTime::now_utc(),
            },
            reply,
        };
        (job, answer)
    }

    /// The batch written in one go on the store's write connection.
    async fn write_on(store: &SqliteStore, batch: &[Job]) -> Vec<StoreResult<Written>> {
        let mut connection = store.sql.writer.acquire().await.unwrap();
        write::<sqlx::Sqlite>(&mut connection, batch).await.unwrap()
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        SqliteStore::with_partner_p().await
    }

    #[tokio::test]
    async fn one_batch_gives_each_insert_the_answer_it_would_get_alone() {
        let (_dir, store) = store().await;
        let jobs = [
            job("p", "PO-1", None),
            job("p", "PO-1", None),
            job("p", "PO-2", Some(("k", b"h1"))),
            job("p", "PO-3", Some(("k", b"h1"))),
            job("p", "PO-4", Some(("k", b"h2"))),
            // Fails on its own (no such partner) and is rolled back alone.
            job("nobody", "PO-5", None),
            job("p", "PO-6", None),
        ];
        let batch: Vec<Job> = jobs.into_iter().map(|(job, _)| job).collect();

        let results = write_on(&store, &batch).await;

        let first_id = match &results[0] {
            Ok(Written::Done(InsertOrder::Created(order))) => order.id.clone(),
            _ => panic!("the first insert creates its order"),
        };
        assert!(matches!(
            &results[1],
            Ok(Written::Done(InsertOrder::DuplicatePurchaseOrder { existing_id })) if *existing_id == first_id
        ));
        let keyed = match &results[2] {
            Ok(Written::Done(InsertOrder::Created(order))) => order.order_number.clone(),
            _ => panic!("the first use of a key creates its order"),
        };
        assert!(matches!(results[3], Ok(Written::Replay(seq)) if ids::order_number(seq) == keyed));
        assert!(matches!(
            results[4],
            Ok(Written::Done(InsertOrder::IdempotencyConflict))
        ));
        assert!(results[5].is_err());
        assert!(matches!(
            results[6],
            Ok(Written::Done(InsertOrder::Created(_)))
        ));
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT purchase_order_no FROM sales_orders ORDER BY seq")
                .fetch_all(&store.sql.reader)
                .await
                .unwrap();
        assert_eq!(stored, ["PO-1", "PO-2", "PO-6"]);
    }

    fn created_id(result: &StoreResult<Written>) -> String {
        match result {
            Ok(Written::Done(InsertOrder::Created(order))) => order.id.clone(),
            _ => panic!("expected a created order"),
        }
    }

    async fn count(store: &SqliteStore, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&store.sql.reader)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_batch_without_keys_is_written_in_bulk_with_the_answers_one_by_one_would_give() {
        let (_dir, store) = store().await;
        let (earlier, _) = job("p", "PO-0", None);
        let earlier_id = created_id(&write_on(&store, &[earlier]).await[0]);
        let batch: Vec<Job> = [
            job("p", "PO-1", None),
            job("p", "PO-1", None),
            job("p", "PO-0", None),
            job("p", "PO-2", None),
        ]
        .into_iter()
        .map(|(job, _)| job)
        .collect();

        let results = write_on(&store, &batch).await;

        let first = created_id(&results[0]);
        assert!(matches!(&results[1],
            Ok(Written::Done(InsertOrder::DuplicatePurchaseOrder { existing_id })) if *existing_id == first));
        assert!(matches!(&results[2],
            Ok(Written::Done(InsertOrder::DuplicatePurchaseOrder { existing_id })) if *existing_id == earlier_id));
        created_id(&results[3]);
        assert_eq!(count(&store, "sales_orders").await, 3);
        assert_eq!(count(&store, "sales_order_lines").await, 3);
        assert_eq!(count(&store, "sales_order_history").await, 3);
    }

    #[tokio::test]
    async fn a_batch_larger_than_one_statement_holds_is_written_whole_and_in_order() {
        // Order rows are over 200 bytes of JSON each: more than one statement's worth.
        const ORDERS: usize = 6000;
        let (_dir, store) = store().await;
        let mut batch: Vec<Job> = (0..ORDERS)
            .map(|i| job("p", &format!("PO-{i}"), None).0)
            .collect();
        // The same number again: after sorting it sits beside the first.
        batch.push(job("p", "PO-3", None).0);

        let results = write_on(&store, &batch).await;

        const {
            assert!(
                <sqlx::Sqlite as Dialect>::MAX_BULK_JSON < ORDERS * 200,
                "the batch spans statements"
            )
        };
        let first = created_id(&results[3]);
        assert!(matches!(&results[ORDERS],
            Ok(Written::Done(InsertOrder::DuplicatePurchaseOrder { existing_id })) if *existing_id == first));
        assert_eq!(count(&store, "sales_orders").await, ORDERS as i64);
        assert_eq!(count(&store, "sales_order_lines").await, ORDERS as i64);
        assert_eq!(count(&store, "sales_order_history").await, ORDERS as i64);
        let order: Vec<String> =
            sqlx::query_scalar("SELECT purchase_order_no FROM sales_orders ORDER BY seq")
                .fetch_all(&store.sql.reader)
                .await
                .unwrap();
        let mut sorted: Vec<String> = (0..ORDERS).map(|i| format!("PO-{i}")).collect();
        sorted.sort();
        assert_eq!(
            order, sorted,
            "numbers are taken in the batch's sorted order"
        );
    }

    #[tokio::test]
    async fn when_the_bulk_insert_fails_the_batch_is_written_one_by_one() {
        let (_dir, store) = store().await;
        let batch: Vec<Job> = [
            job("p", "PO-A", None),
            job("nobody", "PO-B", None),
            job("p", "PO-C", None),
        ]
        .into_iter()
        .map(|(job, _)| job)
        .collect();

        let results = write_on(&store, &batch).await;

        created_id(&results[0]);
        assert!(results[1].is_err());
        created_id(&results[2]);
        assert_eq!(count(&store, "sales_orders").await, 2);
        assert_eq!(count(&store, "sales_order_lines").await, 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_inserts_are_each_answered_with_their_own_committed_order() {
        let (_dir, store) = store().await;
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                let order = NewOrder::example(Some(&format!("PO-{i}")));
                tokio::spawn(async move {
                    store
                        .insert_order(PendingOrder::new(
                            &ClientId::parse("p").unwrap(),
                            order,
                            None,
                            OffsetDateTime::now_utc(),
                        ))
                        .await
                })
            })
            .collect();
        let mut answered = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(InsertOrder::Created(order)) => {
                    answered.push((order.purchase_order_no.unwrap(), order.order_number))
                }
                _ => panic!("every insert is created"),
            }
        }

        let stored: Vec<(String, i64)> = sqlx::query_as(
            "SELECT purchase_order_no, seq FROM sales_orders ORDER BY purchase_order_no",
        )
        .fetch_all(&store.sql.reader)
        .await
        .unwrap();
        let mut stored: Vec<(String, String)> = stored
            .into_iter()
            .map(|(po, seq)| (po, ids::order_number(seq)))
            .collect();
        answered.sort();
        stored.sort();
        assert_eq!(answered, stored);
    }
}
