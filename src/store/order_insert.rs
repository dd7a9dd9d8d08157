//! Writing new orders: an order, its lines, its first history entry, its
//! Idempotency-Key and its `order.created` event, in the caller's transaction.
//!
//! There is one insert, set-based ([`write_all`]): a batch of orders in a
//! statement or a few per table. A single create is a batch of one. The policy around
//! it (an Idempotency-Key already used, a purchase order number already
//! taken) is decided here once, for both databases and for the SQLite
//! group-commit writer, which only decides which orders share a transaction.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;

use super::bulk::{self, insert_json_rows};
use super::dialect::{Bind, Dialect, PushBind};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use super::feed::{self, NewEvent};
use super::orders::{NewHistory, OrderRef, StatusChange, insert_history};
use super::sql::SqlStore;
use crate::domain::{
    Actor, ClientId, Code, EventType, NewOrder, Order, OrderLine, OrderStatus, ids,
};

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

/// Takes the advisory lock of each Idempotency-Key in `keys`, in one order,
/// so two transactions that hold some of the same keys cannot wait on each
/// other.
pub(super) async fn lock_idempotency_keys<'k, D: Dialect>(
    tx: &mut Transaction<'_, D>,
    keys: impl Iterator<Item = (&'k ClientId, &'k str)>,
) -> StoreResult<()> {
    let mut keys: Vec<(&ClientId, &str)> = keys.collect();
    keys.sort_unstable_by(|(a, x), (b, y)| (a.as_str(), x).cmp(&(b.as_str(), y)));
    keys.dedup();
    for (client_id, key) in keys {
        D::lock_idempotency_key(tx, client_id, key).await?;
    }
    Ok(())
}

/// Whether [`write_all`] can write the batch: no order carries an
/// Idempotency-Key, whose lock and lookup go order by order.
pub fn set_based(batch: &[&PendingOrder]) -> bool {
    batch.iter().all(|pending| pending.idempotency.is_none())
}

/// Writes a batch in `tx` one order at a time, each in a savepoint of its
/// own, so a failing one is rolled back alone. An `Err` means the
/// transaction itself failed.
pub async fn write_each<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    batch: &[&PendingOrder],
) -> StoreResult<Vec<StoreResult<Written>>> {
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
    // The events last, after every savepoint: the partner's numbering row
    // is then held only until COMMIT (see `feed`), not while later orders'
    // inserts wait on other transactions, which could wait on it.
    let created: Vec<(&PendingOrder, &Order)> = batch
        .iter()
        .zip(&results)
        .filter_map(|(pending, result)| match result {
            Ok(Written::Done(InsertOrder::Created(order))) => Some((*pending, &**order)),
            _ => None,
        })
        .collect();
    append_created(tx, &created).await?;
    Ok(results)
}

/// The `order.created` event of each order just inserted.
pub(super) async fn append_created<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    created: &[(&PendingOrder, &Order)],
) -> StoreResult<()> {
    let events: Vec<NewEvent> = created
        .iter()
        .map(|(pending, order)| NewEvent {
            client_id: &pending.client_id,
            kind: EventType::OrderCreated,
            order,
            at: Timestamp::new(pending.now),
        })
        .collect();
    feed::append(tx, &events).await
}

async fn savepoint<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    statement: &'static str,
) -> StoreResult<()> {
    sqlx::query::<D>(statement).execute(D::on(tx)).await?;
    Ok(())
}

/// One order: its Idempotency-Key checked, then inserted. The caller makes
/// sure no other transaction uses the key meanwhile.
async fn write_one<D: Dialect>(
    tx: &mut Transaction<'_, D>,
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
            // A key first used for a batch stands for no one order.
            return Ok(match D::get::<Option<i64>>(&used, "order_seq")? {
                Some(seq) => Written::Replay(seq),
                None => Written::Done(InsertOrder::IdempotencyConflict),
            });
        }
    }
    let mut written = insert_all(tx, &[pending]).await?;
    written
        .pop()
        .ok_or_else(|| StoreError::Corrupt("an insert of one order answered nothing".into()))
}

/// Writes a [`set_based`] batch in `tx`, a statement or a few per table
/// ([`bulk`]), each order with the answer it would get alone: of two orders
/// with one purchase order number the earlier wins, and an order whose
/// number is already taken is answered with the order holding it. All or
/// nothing: on `Err` the caller rolls the transaction back and can write
/// the batch with [`write_each`] instead (an order failing on its own fails
/// the statement).
pub async fn write_all<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    batch: &[&PendingOrder],
) -> StoreResult<Vec<Written>> {
    let written = insert_all(tx, batch).await?;
    let created: Vec<(&PendingOrder, &Order)> = batch
        .iter()
        .zip(&written)
        .filter_map(|(pending, written)| match written {
            Written::Done(InsertOrder::Created(order)) => Some((*pending, &**order)),
            _ => None,
        })
        .collect();
    append_created(tx, &created).await?;
    Ok(written)
}

/// [`write_all`] without the events.
pub(super) async fn insert_all<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    batch: &[&PendingOrder],
) -> StoreResult<Vec<Written>> {
    let prepared: Vec<(String, Timestamp)> = batch
        .iter()
        .map(|pending| (ids::new_order_id(), Timestamp::new(pending.now)))
        .collect();
    let rows: Vec<OrderRow> = batch
        .iter()
        .zip(&prepared)
        .enumerate()
        .map(|(i, (pending, (id, at)))| OrderRow::new(i, id, pending, *at))
        .collect();
    // A racing insert of the same number (on any instance) makes this one
    // wait for it; if it commits, this row is not inserted. Rows go in
    // batch order, so of two orders with one number the earlier wins.
    let mut inserted = insert_orders(tx, &rows).await?;
    let mut written = Vec::with_capacity(batch.len());
    let mut created: Vec<(i64, &PendingOrder, Timestamp)> = Vec::new();
    for ((pending, (id, at)), row) in batch.iter().zip(&prepared).zip(&rows) {
        let seq = match inserted.remove(id) {
            Some(seq) => seq,
            None => match live_holder_or_insert(tx, pending, row).await? {
                Ok(seq) => seq,
                Err(existing_id) => {
                    written.push(Written::Done(InsertOrder::DuplicatePurchaseOrder {
                        existing_id,
                    }));
                    continue;
                }
            },
        };
        let order =
            pending
                .order
                .received(id.clone(), seq, pending.client_id.as_str(), at.rfc3339());
        created.push((seq, pending, *at));
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
                if_version: None,
            };
            NewHistory {
                seq: *seq,
                at: *at,
                from: None,
                change,
                version: 1,
                changes: None,
            }
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

/// Inserts order rows; `id → seq` of those inserted. A row whose purchase
/// order number a live order holds is left out. A racing insert of the same
/// number (on any instance) makes this one wait for it; if it commits, this
/// row is not inserted. Rows go in batch order, so of two orders with one
/// number the earlier wins.
async fn insert_orders<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    rows: &[OrderRow<'_>],
) -> StoreResult<HashMap<String, i64>> {
    let statement = insert_json_rows::<D>(
        "sales_orders",
        ORDER_COLUMNS,
        concat!(
            "ORDER BY i ON CONFLICT (client_id, purchase_order_no) WHERE ",
            live_po!(),
            " DO NOTHING RETURNING id, seq"
        ),
    );
    bulk::insert(tx, &statement, rows)
        .await?
        .iter()
        .map(|row| Ok((D::get(row, "id")?, D::get(row, "seq")?)))
        .collect()
}

/// For an order left out for its purchase order number: `Err` with the id
/// of the live order holding the number, or, when that order has been
/// cancelled or rejected since (on PostgreSQL, by a transaction that
/// committed after the insert looked), `Ok` with the order inserted after all.
async fn live_holder_or_insert<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    pending: &PendingOrder,
    row: &OrderRow<'_>,
) -> StoreResult<Result<i64, String>> {
    // Each round either finds a holder or inserts, unless the number is
    // taken and freed again in between; a few rounds settle any real race.
    for _ in 0..3 {
        if let Some(existing_id) =
            live_holder(tx, &pending.client_id, row.purchase_order_no).await?
        {
            return Ok(Err(existing_id));
        }
        if let Some(seq) = insert_orders(tx, std::slice::from_ref(row))
            .await?
            .remove(row.id)
        {
            return Ok(Ok(seq));
        }
    }
    Err(StoreError::contended())
}

/// The live order of the partner's that holds `purchase_order_no`.
pub(super) async fn live_holder<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    client_id: &ClientId,
    purchase_order_no: Option<&str>,
) -> StoreResult<Option<String>> {
    let Some(purchase_order_no) = purchase_order_no else {
        return Ok(None);
    };
    let row = sqlx::query::<D>(concat!(
        "SELECT id FROM sales_orders WHERE client_id = $1 AND purchase_order_no = $2 AND ",
        live_po!()
    ))
    .arg(client_id)
    .arg(purchase_order_no)
    .fetch_optional(D::on(tx))
    .await?;
    Ok(row.map(|row| D::get(&row, "id")).transpose()?)
}

/// Inserts `(order seq, line)` rows, as few statements as [`bulk`] allows.
pub(super) async fn insert_lines<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    lines: &[(i64, &OrderLine)],
) -> StoreResult<()> {
    let rows: Vec<LineRow> = lines
        .iter()
        .map(|(seq, line)| LineRow::new(*seq, line))
        .collect();
    let statement = insert_json_rows::<D>("sales_order_lines", LINE_COLUMNS, "");
    bulk::insert(tx, &statement, &rows).await?;
    Ok(())
}

/// The columns of an order row, with their PostgreSQL types; `i` is the
/// row's place in the batch.
const ORDER_COLUMNS: &[(&str, &str)] = &[
    ("i", "integer"),
    ("id", "text"),
    ("client_id", "text"),
    ("status", "text"),
    ("customer_code", "text"),
    ("site_code", "text"),
    ("sales_name", "text"),
    ("address", "text"),
    ("purchase_order_no", "text"),
    ("currency", "text"),
    ("livemode", "boolean"),
    ("total_amount", "numeric"),
    ("version", "bigint"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
];

/// A new order's row. Decimals and times travel as text, in the form the
/// SQLite store keeps (a JSON number would reach SQLite as a float).
#[derive(Serialize)]
struct OrderRow<'a> {
    i: usize,
    id: &'a str,
    client_id: &'a str,
    status: &'static str,
    customer_code: &'a str,
    site_code: &'a str,
    sales_name: &'a str,
    address: &'a str,
    purchase_order_no: Option<&'a str>,
    currency: &'static str,
    livemode: bool,
    total_amount: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
}

impl<'a> OrderRow<'a> {
    fn new(i: usize, id: &'a str, pending: &'a PendingOrder, at: Timestamp) -> Self {
        let order = &pending.order;
        Self {
            i,
            id,
            client_id: pending.client_id.as_str(),
            status: OrderStatus::Received.as_str(),
            customer_code: order.customer_code.as_str(),
            site_code: order.site_code.as_str(),
            sales_name: order.sales_name.as_str(),
            address: order.address.as_str(),
            purchase_order_no: order.purchase_order_no.as_ref().map(Code::as_str),
            currency: order.currency.as_str(),
            livemode: order.livemode,
            total_amount: order.total_amount().map(|amount| amount.to_string()),
            version: 1,
            created_at: at.rfc3339(),
            updated_at: at.rfc3339(),
        }
    }
}

const LINE_COLUMNS: &[(&str, &str)] = &[
    ("order_seq", "bigint"),
    ("line_no", "integer"),
    ("product_code", "text"),
    ("quantity", "numeric"),
    ("uom", "text"),
    ("unit_price", "numeric"),
    ("line_amount", "numeric"),
    ("notes", "text"),
];

#[derive(Serialize)]
struct LineRow<'a> {
    order_seq: i64,
    line_no: u32,
    product_code: &'a str,
    quantity: String,
    uom: Option<&'a str>,
    unit_price: Option<String>,
    line_amount: Option<String>,
    notes: Option<&'a str>,
}

impl<'a> LineRow<'a> {
    fn new(order_seq: i64, line: &'a OrderLine) -> Self {
        Self {
            order_seq,
            line_no: line.line_no,
            product_code: &line.product_code,
            quantity: line.quantity.to_string(),
            uom: line.uom.as_deref(),
            unit_price: line.unit_price.as_ref().map(ToString::to_string),
            line_amount: line.line_amount.as_ref().map(ToString::to_string),
            notes: line.notes.as_deref(),
        }
    }
}
