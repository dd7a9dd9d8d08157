//! Group commit: one task writes every order insert, taking all the inserts
//! that queued up during the previous commit into one transaction (at most
//! `max_batch`), so one fsync makes a whole batch durable. A batch is written
//! with one statement per table when it can be ([`bulk`]); otherwise, or when
//! that fails, each insert runs in a savepoint of its own, so a failing one is
//! rolled back alone ([`one_by_one`]). Callers are
//! answered only after the batch's COMMIT returned, so a 201 still means the
//! order is on disk. No batch waits on a timer: a lone insert is written at
//! once, and batches grow while a commit is in progress and during the few
//! yields before the next one starts.
//!
//! A caller that goes away (a client hanging up) cannot cut a batch short:
//! the task owns the transaction, and the order is committed or not as a whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::insert_history;
use crate::domain::{Actor, Decimal, NewOrder, OrderLine, OrderStatus, ids};
use crate::store::{InsertOrder, StatusChange, StoreError, StoreResult, rfc3339, to_millis};

/// Inserts that may wait for the writer; senders beyond this wait their turn.
pub const QUEUE: usize = 4096;
/// Inserts in one transaction at most.
pub const MAX_BATCH: usize = 256;
/// Times the writer lets other tasks run before starting a batch.
const YIELDS: usize = 4;

pub struct Job {
    pub client_id: String,
    pub order: NewOrder,
    /// Idempotency-Key and request hash.
    pub idempotency: Option<(String, Vec<u8>)>,
    pub now: OffsetDateTime,
    pub reply: oneshot::Sender<StoreResult<Outcome>>,
}

pub enum Outcome {
    Done(InsertOrder),
    /// The key was used before with this request: answer with order `seq`,
    /// read once the batch is committed.
    Replay(i64),
}

pub async fn run(writer: SqlitePool, mut queue: mpsc::Receiver<Job>, max_batch: Arc<AtomicUsize>) {
    let mut batch = Vec::new();
    loop {
        let max_batch = max_batch.load(Ordering::Relaxed);
        if queue.recv_many(&mut batch, max_batch).await == 0 {
            return;
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
        metrics::histogram!("sqlite_commit_batch_size").record(batch.len() as f64);
        let results = match write(&writer, &batch).await {
            Ok(results) => results,
            Err(error) => {
                tracing::warn!(%error, inserts = batch.len(), "a group commit failed");
                batch.iter().map(|_| Err(same_kind(&error))).collect()
            }
        };
        for (job, result) in batch.drain(..).zip(results) {
            // A caller that went away no longer needs its answer.
            let _ = job.reply.send(result);
        }
    }
}

/// One transaction for the whole batch; each job's own result, valid once
/// this returns `Ok` (the COMMIT succeeded).
async fn write(writer: &SqlitePool, batch: &[Job]) -> StoreResult<Vec<StoreResult<Outcome>>> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let results = match bulk(&mut tx, batch).await {
        Some(results) => results,
        None => one_by_one(&mut tx, batch).await?,
    };
    tx.commit().await?;
    Ok(results)
}

/// Each job in a savepoint of its own, so a failing one is rolled back alone.
async fn one_by_one(
    tx: &mut Transaction<'static, Sqlite>,
    batch: &[Job],
) -> StoreResult<Vec<StoreResult<Outcome>>> {
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        sqlx::query("SAVEPOINT job").execute(&mut **tx).await?;
        let result = insert(tx, job).await;
        if result.is_err() {
            sqlx::query("ROLLBACK TO SAVEPOINT job")
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("RELEASE SAVEPOINT job")
            .execute(&mut **tx)
            .await?;
        results.push(result);
    }
    Ok(results)
}

/// The whole batch in three statements (orders, lines, history) instead of
/// several per order: every statement is a round trip to SQLite's worker
/// thread, and those hand-offs, not SQLite, were most of the CPU. Only for
/// batches without Idempotency-Keys; `None` (with nothing written) when the
/// batch has keys or any statement fails, so [`one_by_one`] can isolate the
/// failing insert.
async fn bulk(
    tx: &mut Transaction<'static, Sqlite>,
    batch: &[Job],
) -> Option<Vec<StoreResult<Outcome>>> {
    if batch.len() < 2 || batch.iter().any(|job| job.idempotency.is_some()) {
        return None;
    }
    sqlx::query("SAVEPOINT bulk")
        .execute(&mut **tx)
        .await
        .ok()?;
    match bulk_statements(tx, batch).await {
        Ok(results) => {
            sqlx::query("RELEASE SAVEPOINT bulk")
                .execute(&mut **tx)
                .await
                .ok()?;
            Some(results)
        }
        Err(error) => {
            tracing::debug!(%error, "bulk insert failed; inserting one by one");
            sqlx::query("ROLLBACK TO SAVEPOINT bulk")
                .execute(&mut **tx)
                .await
                .ok()?;
            sqlx::query("RELEASE SAVEPOINT bulk")
                .execute(&mut **tx)
                .await
                .ok()?;
            None
        }
    }
}

async fn bulk_statements(
    tx: &mut Transaction<'static, Sqlite>,
    batch: &[Job],
) -> StoreResult<Vec<StoreResult<Outcome>>> {
    let prepared: Vec<(String, String)> = batch
        .iter()
        .map(|job| (ids::new_order_id(), rfc3339(to_millis(job.now))))
        .collect();
    // Rows are inserted in batch order, so of two jobs with one purchase
    // order the earlier one wins, as it would one by one.
    let mut orders = QueryBuilder::<Sqlite>::new(
        "INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address,
                                   purchase_order_no, total_amount, created_at, updated_at) ",
    );
    orders.push_values(batch.iter().zip(&prepared), |mut row, (job, (id, at))| {
        row.push_bind(id)
            .push_bind(&job.client_id)
            .push_bind("received")
            .push_bind(&job.order.customer_code)
            .push_bind(&job.order.site_code)
            .push_bind(&job.order.sales_name)
            .push_bind(&job.order.address)
            .push_bind(&job.order.purchase_order_no)
            .push_bind(job.order.total_amount().map(|total| total.to_string()))
            .push_bind(at)
            .push_bind(at);
    });
    orders.push(" ON CONFLICT (client_id, purchase_order_no) DO NOTHING RETURNING id, seq");
    let inserted: std::collections::HashMap<String, i64> = orders
        .build()
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("seq")?)))
        .collect::<StoreResult<_>>()?;

    // `None` stands for the next created order, filled in at the end.
    let mut results: Vec<Option<StoreResult<Outcome>>> = Vec::with_capacity(batch.len());
    let mut created = Vec::new();
    for (job, (id, at)) in batch.iter().zip(prepared) {
        match inserted.get(&id) {
            Some(&seq) => {
                let order = job.order.received(id, seq, &job.client_id, at);
                created.push((seq, &job.client_id, order));
                results.push(None);
            }
            None => {
                let existing = sqlx::query(
                    "SELECT id FROM sales_orders WHERE client_id = ? AND purchase_order_no = ?",
                )
                .bind(&job.client_id)
                .bind(&job.order.purchase_order_no)
                .fetch_one(&mut **tx)
                .await?;
                results.push(Some(Ok(Outcome::Done(
                    InsertOrder::DuplicatePurchaseOrder {
                        existing_id: existing.try_get("id")?,
                    },
                ))));
            }
        }
    }

    let lines: Vec<_> = created
        .iter()
        .flat_map(|(seq, _, order)| order.products.iter().map(move |line| (*seq, line)))
        .collect();
    insert_lines(tx, &lines).await?;
    if !created.is_empty() {
        let mut history = QueryBuilder::<Sqlite>::new(
            "INSERT INTO sales_order_history (order_seq, at, actor, actor_name, from_status, to_status, reason) ",
        );
        history.push_values(&created, |mut values, (seq, client_id, order)| {
            values
                .push_bind(*seq)
                .push_bind(&order.created_at)
                .push_bind(Actor::Partner.as_str())
                .push_bind(client_id.as_str())
                .push_bind(None::<&str>)
                .push_bind(OrderStatus::Received.as_str())
                .push_bind(None::<&str>);
        });
        history.build().execute(&mut **tx).await?;
    }

    let mut created = created.into_iter().map(|(_, _, order)| order);
    Ok(results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                let order = created.next().expect("one created order per placeholder");
                Ok(Outcome::Done(InsertOrder::Created(Box::new(order))))
            })
        })
        .collect())
}

/// Inserts `(order seq, line)` rows in as few statements as SQLite allows:
/// 8 binds a line, under its 32766 bind parameters a statement.
async fn insert_lines(
    tx: &mut Transaction<'static, Sqlite>,
    lines: &[(i64, &OrderLine)],
) -> StoreResult<()> {
    for chunk in lines.chunks(4000) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO sales_order_lines (order_seq, line_no, product_code, quantity, uom, unit_price, line_amount, notes) ",
        );
        insert.push_values(chunk, |mut values, (seq, line)| {
            values
                .push_bind(*seq)
                .push_bind(line.line_no)
                .push_bind(&line.product_code)
                .push_bind(line.quantity.to_string())
                .push_bind(&line.uom)
                .push_bind(line.unit_price.as_ref().map(Decimal::to_string))
                .push_bind(line.line_amount.as_ref().map(Decimal::to_string))
                .push_bind(&line.notes);
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The failed batch's error, for each of its callers.
fn same_kind(error: &StoreError) -> StoreError {
    let message = format!("the batch holding this insert failed: {error}");
    match error {
        StoreError::Unavailable(_) => {
            StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(message)))
        }
        StoreError::Database(_) => StoreError::Database(sqlx::Error::Protocol(message)),
        StoreError::Corrupt(_) => StoreError::Corrupt(message),
    }
}

async fn insert(tx: &mut Transaction<'static, Sqlite>, job: &Job) -> StoreResult<Outcome> {
    let Job {
        client_id,
        order,
        idempotency,
        now,
        ..
    } = job;
    // The one writer serialises every write, so a key looked up here cannot
    // be taken by another request before this transaction ends.
    if let Some((key, request_hash)) = idempotency {
        let used = sqlx::query(
            "SELECT request_hash, order_seq FROM idempotency_keys WHERE client_id = ? AND key = ?",
        )
        .bind(client_id)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(used) = used {
            let hash: Vec<u8> = used.try_get("request_hash")?;
            if &hash != request_hash {
                return Ok(Outcome::Done(InsertOrder::IdempotencyConflict));
            }
            return Ok(Outcome::Replay(used.try_get("order_seq")?));
        }
    }
    let id = ids::new_order_id();
    let created_at = rfc3339(to_millis(*now));
    let inserted = sqlx::query(
        "INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address,
                                   purchase_order_no, total_amount, created_at, updated_at)
         VALUES (?, ?, 'received', ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (client_id, purchase_order_no) DO NOTHING
         RETURNING seq",
    )
    .bind(&id)
    .bind(client_id)
    .bind(&order.customer_code)
    .bind(&order.site_code)
    .bind(&order.sales_name)
    .bind(&order.address)
    .bind(&order.purchase_order_no)
    .bind(order.total_amount().map(|total| total.to_string()))
    .bind(&created_at)
    .bind(&created_at)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = inserted else {
        let existing = sqlx::query(
            "SELECT id FROM sales_orders WHERE client_id = ? AND purchase_order_no = ?",
        )
        .bind(client_id)
        .bind(&order.purchase_order_no)
        .fetch_one(&mut **tx)
        .await?;
        return Ok(Outcome::Done(InsertOrder::DuplicatePurchaseOrder {
            existing_id: existing.try_get("id")?,
        }));
    };
    let seq: i64 = row.try_get("seq")?;
    let created = order.received(id, seq, client_id, created_at);
    let lines: Vec<_> = created.products.iter().map(|line| (seq, line)).collect();
    insert_lines(tx, &lines).await?;
    insert_history(
        tx,
        seq,
        &created.created_at,
        None,
        StatusChange {
            to: OrderStatus::Received,
            reason: None,
            actor: Actor::Partner,
            actor_name: client_id,
        },
    )
    .await?;
    if let Some((key, request_hash)) = idempotency {
        sqlx::query(
            "INSERT INTO idempotency_keys (client_id, key, request_hash, order_seq, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(client_id)
        .bind(key)
        .bind(request_hash)
        .bind(seq)
        .bind(now.unix_timestamp())
        .execute(&mut **tx)
        .await?;
    }
    Ok(Outcome::Done(InsertOrder::Created(Box::new(created))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// A one-line order, as the create-body parser would give it.
    fn new_order() -> NewOrder {
        NewOrder {
            customer_code: "C".into(),
            site_code: "S".into(),
            sales_name: "N".into(),
            address: "A".into(),
            purchase_order_no: None,
            products: vec![crate::domain::NewOrderLine {
                product_code: "P".into(),
                quantity: Decimal::from_integer(1),
                uom: None,
                unit_price: None,
                notes: None,
            }],
        }
    }

    fn job(
        client_id: &str,
        po: &str,
        key: Option<(&str, &[u8])>,
    ) -> (Job, oneshot::Receiver<StoreResult<Outcome>>) {
        let mut order = new_order();
        order.purchase_order_no = Some(po.to_owned());
        let (reply, answer) = oneshot::channel();
        let job = Job {
            client_id: client_id.to_owned(),
            order,
            idempotency: key.map(|(key, hash)| (key.to_owned(), hash.to_vec())),
            now: OffsetDateTime::now_utc(),
            reply,
        };
        (job, answer)
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

        let results = write(&store.writer, &batch).await.unwrap();

        let first_id = match &results[0] {
            Ok(Outcome::Done(InsertOrder::Created(order))) => order.id.clone(),
            _ => panic!("the first insert creates its order"),
        };
        assert!(matches!(
            &results[1],
            Ok(Outcome::Done(InsertOrder::DuplicatePurchaseOrder { existing_id })) if *existing_id == first_id
        ));
        let keyed = match &results[2] {
            Ok(Outcome::Done(InsertOrder::Created(order))) => order.order_number.clone(),
            _ => panic!("the first use of a key creates its order"),
        };
        assert!(matches!(results[3], Ok(Outcome::Replay(seq)) if ids::order_number(seq) == keyed));
        assert!(matches!(
            results[4],
            Ok(Outcome::Done(InsertOrder::IdempotencyConflict))
        ));
        assert!(results[5].is_err());
        assert!(matches!(
            results[6],
            Ok(Outcome::Done(InsertOrder::Created(_)))
        ));
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT purchase_order_no FROM sales_orders ORDER BY seq")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        assert_eq!(stored, ["PO-1", "PO-2", "PO-6"]);
    }

    fn created_id(result: &StoreResult<Outcome>) -> String {
        match result {
            Ok(Outcome::Done(InsertOrder::Created(order))) => order.id.clone(),
            _ => panic!("expected a created order"),
        }
    }

    async fn count(store: &SqliteStore, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&store.reader)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_batch_without_keys_is_written_in_bulk_with_the_answers_one_by_one_would_give() {
        let (_dir, store) = store().await;
        let (earlier, _) = job("p", "PO-0", None);
        let earlier_id = created_id(&write(&store.writer, &[earlier]).await.unwrap()[0]);
        let batch: Vec<Job> = [
            job("p", "PO-1", None),
            job("p", "PO-1", None),
            job("p", "PO-0", None),
            job("p", "PO-2", None),
        ]
        .into_iter()
        .map(|(job, _)| job)
        .collect();

        let results = write(&store.writer, &batch).await.unwrap();

        let first = created_id(&results[0]);
        assert!(matches!(&results[1],
            Ok(Outcome::Done(InsertOrder::DuplicatePurchaseOrder { existing_id })) if *existing_id == first));
        assert!(matches!(&results[2],
            Ok(Outcome::Done(InsertOrder::DuplicatePurchaseOrder { existing_id })) if *existing_id == earlier_id));
        created_id(&results[3]);
        assert_eq!(count(&store, "sales_orders").await, 3);
        assert_eq!(count(&store, "sales_order_lines").await, 3);
        assert_eq!(count(&store, "sales_order_history").await, 3);
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

        let results = write(&store.writer, &batch).await.unwrap();

        created_id(&results[0]);
        assert!(results[1].is_err());
        created_id(&results[2]);
        assert_eq!(count(&store, "sales_orders").await, 2);
        assert_eq!(count(&store, "sales_order_lines").await, 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_inserts_are_each_answered_with_their_own_committed_order() {
        let (_dir, store) = store().await;
        let order = new_order();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                let mut order = order.clone();
                order.purchase_order_no = Some(format!("PO-{i}"));
                tokio::spawn(async move {
                    store
                        .insert_order("p", order, None, OffsetDateTime::now_utc())
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
        .fetch_all(&store.reader)
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
