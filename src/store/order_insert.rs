//! Writing new orders: an order, its lines, its first history entry and its
//! Idempotency-Key, in the caller's transaction.
//!
//! There is one insert, set-based ([`insert_set`]): a batch of orders in one
//! statement per table. A single create is a batch of one. The policy around
//! it (an Idempotency-Key already used, a purchase order number already
//! taken) is decided here once, for both databases and for the SQLite
//! group-commit writer, which only decides which orders share a transaction.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;

use super::dialect::{Bind, Dialect, PushBind};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use super::orders::{OrderRef, StatusChange, insert_history};
use super::sql::SqlStore;
use crate::domain::{Actor, ClientId, Code, NewOrder, Order, OrderLine, OrderStatus, ids};

#[derive(Debug, Clone)]
pub enum InsertOrder {
    Created(Box<Order>),
    /// The Idempotency-Key was used before with the same request: its order.
    Replayed(Box<Order>),
    /// The Idempotency-Key was used before with a different request.
    IdempotencyConflict,
    DuplicatePurchaseOrder {
        existing_id: String,
    },
}

/// An `Idempotency-Key` and the hash of the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_hash: &'a [u8],
}

/// An order on its way into the database.
pub struct PendingOrder {
    pub client_id: ClientId,
    pub order: NewOrder,
    /// Idempotency-Key and request hash.
    pub idempotency: Option<(String, Vec<u8>)>,
    pub now: OffsetDateTime,
}

impl PendingOrder {
    pub fn new(
        client_id: &ClientId,
        order: NewOrder,
        idempotency: Option<Idempotency<'_>>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            client_id: client_id.to_owned(),
            order,
            idempotency: idempotency.map(|i| (i.key.to_owned(), i.request_hash.to_vec())),
            now,
        }
    }
}

/// What writing one pending order came to, inside its transaction.
pub enum Written {
    Done(InsertOrder),
    /// The key was used before with this request: answer with order `seq`,
    /// read once the transaction is committed.
    Replay(i64),
}

impl<D: Dialect> SqlStore<D> {
    /// The caller's answer, once the transaction that wrote it is over.
    pub(super) async fn answer(
        &self,
        client_id: &ClientId,
        written: Written,
    ) -> StoreResult<InsertOrder> {
        match written {
            Written::Done(outcome) => Ok(outcome),
            Written::Replay(seq) => self
                .order(OrderRef::seq(Some(client_id), seq))
                .await?
                .map(|order| InsertOrder::Replayed(Box::new(order)))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("idempotency key names missing order {seq}"))
                }),
        }
    }
}

/// Writes a batch in `tx`, each order with the answer it would get alone.
/// Without Idempotency-Keys the batch is written set-based; when that fails,
/// or with keys, each order runs in a savepoint of its own, so a failing one
/// is rolled back alone. An `Err` means the transaction itself failed.
pub async fn write_batch<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    batch: &[&PendingOrder],
) -> StoreResult<Vec<StoreResult<Written>>> {
    if batch.len() > 1 && batch.iter().all(|pending| pending.idempotency.is_none()) {
        savepoint(tx, "SAVEPOINT bulk").await?;
        match insert_set(tx, batch).await {
            Ok(written) => {
                savepoint(tx, "RELEASE SAVEPOINT bulk").await?;
                return Ok(written.into_iter().map(Ok).collect());
            }
            Err(error) => {
                tracing::debug!(%error, "bulk insert failed; inserting one by one");
                savepoint(tx, "ROLLBACK TO SAVEPOINT bulk").await?;
                savepoint(tx, "RELEASE SAVEPOINT bulk").await?;
            }
        }
    }
    let mut results = Vec::with_capacity(batch.len());
    for pending in batch {
        savepoint(tx, "SAVEPOINT job").await?;
        let result = write_one(tx, pending).await;
        if result.is_err() {
            savepoint(tx, "ROLLBACK TO SAVEPOINT job").await?;
        }
        savepoint(tx, "RELEASE SAVEPOINT job").await?;
        results.push(result);
    }
    Ok(results)
}

async fn savepoint<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    statement: &'static str,
) -> StoreResult<()> {
    sqlx::query::<D>(statement).execute(D::on(tx)).await?;
    Ok(())
}

/// One order: its Idempotency-Key checked, then inserted. The caller makes
/// sure no other transaction uses the key meanwhile.
async fn write_one<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    pending: &PendingOrder,
) -> StoreResult<Written> {
    if let Some((key, request_hash)) = &pending.idempotency {
        let used = sqlx::query::<D>(
            "SELECT request_hash, order_seq FROM idempotency_keys WHERE client_id = $1 AND key = $2",
        )
        .arg(&pending.client_id)
        .arg(key)
        .fetch_optional(D::on(tx))
        .await?;
        if let Some(used) = used {
            let hash: Vec<u8> = D::get(&used, "request_hash")?;
            if &hash != request_hash {
                return Ok(Written::Done(InsertOrder::IdempotencyConflict));
            }
            return Ok(Written::Replay(D::get(&used, "order_seq")?));
        }
    }
    let mut written = insert_set(tx, &[pending]).await?;
    written
        .pop()
        .ok_or_else(|| StoreError::Corrupt("an insert of one order answered nothing".into()))
}

/// Inserts the batch with one statement per table. Of two orders with one
/// purchase order number the earlier wins, as it would one at a time; an
/// order whose number is already taken is answered with the order holding it.
async fn insert_set<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    batch: &[&PendingOrder],
) -> StoreResult<Vec<Written>> {
    let prepared: Vec<(String, Timestamp)> = batch
        .iter()
        .map(|pending| (ids::new_order_id(), Timestamp::new(pending.now)))
        .collect();
    let mut orders = QueryBuilder::<D>::new(
        "INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address,
                                   purchase_order_no, total_amount, created_at, updated_at) ",
    );
    orders.push_values(
        batch.iter().zip(&prepared),
        |mut row, (pending, (id, at))| {
            let order = &pending.order;
            row.arg(id)
                .arg(&pending.client_id)
                .arg(OrderStatus::Received.as_str())
                .arg(order.customer_code.as_str())
                .arg(order.site_code.as_str())
                .arg(order.sales_name.as_str())
                .arg(order.address.as_str())
                .arg(order.purchase_order_no.as_ref().map(Code::as_str))
                .arg(order.total_amount())
                .arg(*at)
                .arg(*at);
        },
    );
    // A racing insert of the same number (on any instance) makes this one
    // wait for it; if it commits, this row is not inserted.
    orders.push(" ON CONFLICT (client_id, purchase_order_no) DO NOTHING RETURNING id, seq");
    let inserted: HashMap<String, i64> = orders
        .build()
        .fetch_all(D::on(tx))
        .await?
        .iter()
        .map(|row| Ok((D::get(row, "id")?, D::get(row, "seq")?)))
        .collect::<StoreResult<_>>()?;

    let mut written = Vec::with_capacity(batch.len());
    let mut created: Vec<(i64, &PendingOrder, Timestamp)> = Vec::new();
    for (pending, (id, at)) in batch.iter().zip(prepared) {
        let Some(&seq) = inserted.get(&id) else {
            let existing = sqlx::query::<D>(
                "SELECT id FROM sales_orders WHERE client_id = $1 AND purchase_order_no = $2",
            )
            .arg(&pending.client_id)
            .arg(pending.order.purchase_order_no.as_ref().map(Code::as_str))
            .fetch_one(D::on(tx))
            .await?;
            written.push(Written::Done(InsertOrder::DuplicatePurchaseOrder {
                existing_id: D::get(&existing, "id")?,
            }));
            continue;
        };
        let order = pending
            .order
            .received(id, seq, pending.client_id.as_str(), at.rfc3339());
        created.push((seq, pending, at));
        written.push(Written::Done(InsertOrder::Created(Box::new(order))));
    }
    if created.is_empty() {
        return Ok(written);
    }

    let lines: Vec<(i64, &OrderLine)> = written
        .iter()
        .filter_map(|written| match written {
            Written::Done(InsertOrder::Created(order)) => Some(order),
            _ => None,
        })
        .zip(&created)
        .flat_map(|(order, (seq, _, _))| order.products.iter().map(move |line| (*seq, line)))
        .collect();
    insert_lines(tx, &lines).await?;
    let history: Vec<_> = created
        .iter()
        .map(|(seq, pending, at)| {
            let change = StatusChange {
                to: OrderStatus::Received,
                reason: None,
                actor: Actor::Partner,
                actor_name: pending.client_id.as_str(),
            };
            (*seq, *at, None, change)
        })
        .collect();
    insert_history(tx, &history).await?;
    let keys: Vec<_> = created
        .iter()
        .filter_map(|(seq, pending, at)| {
            let (key, hash) = pending.idempotency.as_ref()?;
            Some((*seq, &pending.client_id, key, hash, *at))
        })
        .collect();
    if !keys.is_empty() {
        let mut insert = QueryBuilder::<D>::new(
            "INSERT INTO idempotency_keys (client_id, key, request_hash, order_seq, created_at) ",
        );
        insert.push_values(&keys, |mut values, (seq, client_id, key, hash, at)| {
            values
                .arg(*client_id)
                .arg(*key)
                .arg(*hash)
                .arg(*seq)
                .arg(*at);
        });
        insert.build().execute(D::on(tx)).await?;
    }
    Ok(written)
}

/// Inserts `(order seq, line)` rows in as few statements as the databases
/// allow: 8 binds a line, under SQLite's 32766 (and PostgreSQL's 65535)
/// bind parameters a statement.
async fn insert_lines<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    lines: &[(i64, &OrderLine)],
) -> StoreResult<()> {
    for chunk in lines.chunks(4000) {
        let mut insert = QueryBuilder::<D>::new(
            "INSERT INTO sales_order_lines (order_seq, line_no, product_code, quantity, uom, unit_price, line_amount, notes) ",
        );
        insert.push_values(chunk, |mut values, (seq, line)| {
            values
                .arg(*seq)
                .arg(i32::try_from(line.line_no).unwrap_or(i32::MAX))
                .arg(&line.product_code)
                .arg(&line.quantity)
                .arg(&line.uom)
                .arg(&line.unit_price)
                .arg(&line.line_amount)
                .arg(&line.notes);
        });
        insert.build().execute(D::on(tx)).await?;
    }
    Ok(())
}
