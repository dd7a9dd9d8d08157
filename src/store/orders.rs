//! Reading orders, their history, and changing their status.

use serde::Serialize;
use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;

use super::bulk::{self, insert_json_rows};
use super::dialect::{Bind, Dialect, PushBind, RowsAffected};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use super::feed::{self, NewEvent};
use super::order_rows::{READ_ATTEMPTS, line_from_row, order_from_row, parse_status, with_lines};
use super::sql::SqlStore;
use crate::domain::{Actor, ClientId, EventType, Order, OrderEvent, OrderStatus, ids};

/// Which order: by id or by order number, within one partner's orders or
/// (for the operator) among all.
#[derive(Debug, Clone, Copy)]
pub struct OrderRef<'a> {
    pub client_id: Option<&'a ClientId>,
    pub key: OrderKey<'a>,
}

#[derive(Debug, Clone, Copy)]
pub enum OrderKey<'a> {
    Id(&'a str),
    /// The sequence behind an order number (`SO-00000042` is 42).
    Number(i64),
}

impl<'a> OrderRef<'a> {
    /// A partner's own order, by id.
    pub fn partner(client_id: &'a ClientId, id: &'a str) -> Self {
        Self {
            client_id: Some(client_id),
            key: OrderKey::Id(id),
        }
    }

    /// Any order, by id or by order number, as an operator types it.
    pub fn operator(id_or_number: &'a str) -> Self {
        let key = match ids::parse_order_number(id_or_number) {
            Some(seq) => OrderKey::Number(seq),
            None => OrderKey::Id(id_or_number),
        };
        Self {
            client_id: None,
            key,
        }
    }

    /// A partner's order by its position (`None`: any partner's).
    pub fn seq(client_id: Option<&'a ClientId>, seq: i64) -> Self {
        Self {
            client_id,
            key: OrderKey::Number(seq),
        }
    }
}

/// A requested status change, and who asks for it.
#[derive(Debug, Clone, Copy)]
pub struct StatusChange<'a> {
    pub to: OrderStatus,
    pub reason: Option<&'a str>,
    pub actor: Actor,
    pub actor_name: &'a str,
    /// Only if the order is still at this version (`If-Match`).
    pub if_version: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum Transition {
    Changed(Box<Order>),
    NotFound,
    /// The order is no longer at the version the change was asked for.
    VersionMismatch {
        current: i64,
    },
    /// The state machine has no move from `current` to the requested status.
    Refused {
        current: OrderStatus,
    },
}

/// Which orders to read, one page at a time.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    /// One partner's orders; `None` only for the operator.
    pub client_id: Option<ClientId>,
    pub purchase_order_no: Option<String>,
    pub status: Option<OrderStatus>,
    /// Created at or after this instant.
    pub created_from: Option<OffsetDateTime>,
    /// Created before this instant.
    pub created_to: Option<OffsetDateTime>,
    /// Last changed at or after this instant.
    pub updated_from: Option<OffsetDateTime>,
    /// Last changed before this instant.
    pub updated_to: Option<OffsetDateTime>,
    /// Leave out sandbox partners' orders (the operator's views).
    pub live_only: bool,
    /// Oldest first (the export) instead of newest first (the API).
    pub oldest_first: bool,
    /// Continue after this position (from the previous page).
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// A page of orders, and where the next page starts if there is one.
pub struct OrderPage {
    pub orders: Vec<Order>,
    pub next_after_seq: Option<i64>,
}

impl<D: Dialect> SqlStore<D> {
    pub async fn order(&self, target: OrderRef<'_>) -> StoreResult<Option<Order>> {
        for _ in 0..READ_ATTEMPTS {
            let mut select = QueryBuilder::<D>::new("SELECT * FROM sales_orders WHERE ");
            push_target(&mut select, target);
            let Some(row) = select.build().fetch_optional(D::pool(&self.reader)).await? else {
                return Ok(None);
            };
            if let Some(mut orders) = self.with_lines(vec![row]).await? {
                return Ok(orders.pop());
            }
        }
        Err(StoreError::changing())
    }

    /// One page of orders, in `seq` order.
    pub async fn orders(&self, query: &OrderQuery) -> StoreResult<OrderPage> {
        for _ in 0..READ_ATTEMPTS {
            if let Some(page) = self.try_orders(query).await? {
                return Ok(page);
            }
        }
        Err(StoreError::changing())
    }

    /// [`Self::orders`], or `None` when an order changed while it was read
    /// ([`with_lines`]).
    async fn try_orders(&self, query: &OrderQuery) -> StoreResult<Option<OrderPage>> {
        let mut select = QueryBuilder::<D>::new("SELECT * FROM sales_orders WHERE 1 = 1");
        if let Some(client_id) = &query.client_id {
            select.push(" AND client_id = ").arg(client_id);
        }
        if let Some(po) = &query.purchase_order_no {
            select.push(" AND purchase_order_no = ").arg(po);
        }
        if query.live_only {
            select.push(" AND livemode = ").arg(true);
        }
        if let Some(status) = query.status {
            select.push(" AND status = ").arg(status.as_str());
        }
        if let Some(from) = query.created_from {
            select
                .push(" AND created_at >= ")
                .arg(Timestamp::at_or_after(from));
        }
        if let Some(to) = query.created_to {
            select
                .push(" AND created_at < ")
                .arg(Timestamp::at_or_after(to));
        }
        if let Some(from) = query.updated_from {
            select
                .push(" AND updated_at >= ")
                .arg(Timestamp::at_or_after(from));
        }
        if let Some(to) = query.updated_to {
            select
                .push(" AND updated_at < ")
                .arg(Timestamp::at_or_after(to));
        }
        let (after, order) = if query.oldest_first {
            (" AND seq > ", " ORDER BY seq ASC LIMIT ")
        } else {
            (" AND seq < ", " ORDER BY seq DESC LIMIT ")
        };
        if let Some(seq) = query.after_seq {
            select.push(after).arg(seq);
        }
        // One extra row tells whether another page exists.
        select.push(order).arg(i64::from(query.limit) + 1);
        let mut rows = select.build().fetch_all(D::pool(&self.reader)).await?;
        let next_after_seq = if rows.len() > query.limit as usize {
            rows.truncate(query.limit as usize);
            rows.last().map(|row| D::get(row, "seq")).transpose()?
        } else {
            None
        };
        Ok(self.with_lines(rows).await?.map(|orders| OrderPage {
            orders,
            next_after_seq,
        }))
    }

    /// Moves an order to another status if the state machine allows it from
    /// the status it has when the change is applied: of two racing changes,
    /// the second sees the first's result. Writes the change's event with it;
    /// the order answered is the one the event carries.
    pub async fn change_status(
        &self,
        target: OrderRef<'_>,
        change: StatusChange<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Transition> {
        let at = Timestamp::new(now);
        let mut tx = D::begin(&self.writer).await?;
        let Some((seq, mut order)) = lock_order(&mut tx, target).await? else {
            return Ok(Transition::NotFound);
        };
        let version = order.version;
        if change
            .if_version
            .is_some_and(|expected| expected != version)
        {
            return Ok(Transition::VersionMismatch { current: version });
        }
        let current = order.status;
        if !current.can_move_to(change.to) {
            return Ok(Transition::Refused { current });
        }
        feed::keep_creation(&mut tx, &order).await?;
        order.status = change.to;
        order.status_reason = change.reason.map(str::to_owned);
        order.updated_at = at.rfc3339();
        order.version += 1;
        sqlx::query::<D>(
            "UPDATE sales_orders SET status = $1, status_reason = $2, updated_at = $3, version = $4
             WHERE seq = $5",
        )
        .arg(change.to.as_str())
        .arg(change.reason)
        .arg(at)
        .arg(order.version)
        .arg(seq)
        .execute(D::on(&mut tx))
        .await?;
        let entry = NewHistory {
            seq,
            at,
            from: Some(current),
            change,
            version: order.version,
            changes: None,
        };
        insert_history(&mut tx, &[entry]).await?;
        let client_id = ClientId::parse(&order.client_id).map_err(StoreError::Corrupt)?;
        let event = NewEvent {
            client_id: &client_id,
            kind: EventType::entering(change.to),
            order: &order,
            at,
        };
        feed::append(&mut tx, &[event]).await?;
        D::commit(tx).await?;
        self.wakeups.wake(client_id.as_str());
        Ok(Transition::Changed(Box::new(order)))
    }

    /// The order's creation and status changes, oldest first.
    pub async fn history(&self, order_id: &str) -> StoreResult<Vec<OrderEvent>> {
        let rows = sqlx::query::<D>(
            "SELECT h.* FROM sales_order_history h JOIN sales_orders o ON o.seq = h.order_seq
             WHERE o.id = $1 ORDER BY h.id",
        )
        .arg(order_id)
        .fetch_all(D::pool(&self.reader))
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OrderEvent {
                    at: D::get::<Timestamp>(row, "at")?.rfc3339(),
                    actor: parse_actor(D::get(row, "actor")?)?,
                    actor_name: D::get(row, "actor_name")?,
                    from: D::get::<Option<&str>>(row, "from_status")?
                        .map(parse_status)
                        .transpose()?,
                    to: parse_status(D::get(row, "to_status")?)?,
                    reason: D::get(row, "reason")?,
                    version: D::get(row, "version")?,
                    changes: D::get::<Option<&str>>(row, "changes")?
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|error| StoreError::Corrupt(format!("bad amendment: {error}")))?,
                })
            })
            .collect()
    }

    /// Forgets Idempotency-Keys created before `before`.
    pub async fn purge_idempotency_keys(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let purged = sqlx::query::<D>("DELETE FROM idempotency_keys WHERE created_at < $1")
            .arg(Timestamp::new(before))
            .execute(D::pool(&self.writer))
            .await?
            .rows_affected();
        Ok(purged)
    }

    /// Turns order rows into orders, loading all their lines in one query;
    /// `None` when one changed meanwhile ([`with_lines`]).
    async fn with_lines(&self, rows: Vec<D::Row>) -> StoreResult<Option<Vec<Order>>> {
        let orders = with_lines(D::pool(&self.reader), rows).await?;
        Ok(orders.into_iter().collect())
    }
}

/// The order `target` with its position, locked in `tx` until it ends:
/// racing changes of one order (a partner's cancel or amendment and an
/// operator's accept, on any instances) take turns, on the row lock or
/// behind SQLite's one writer, and the second reads what the first wrote.
pub(super) async fn lock_order<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    target: OrderRef<'_>,
) -> StoreResult<Option<(i64, Order)>> {
    let mut select = QueryBuilder::<D>::new("SELECT * FROM sales_orders WHERE ");
    push_target(&mut select, target);
    select.push(D::lock(" FOR UPDATE"));
    let Some(row) = select.build().fetch_optional(D::on(tx)).await? else {
        return Ok(None);
    };
    let seq: i64 = D::get(&row, "seq")?;
    let lines =
        sqlx::query::<D>("SELECT * FROM sales_order_lines WHERE order_seq = $1 ORDER BY line_no")
            .arg(seq)
            .fetch_all(D::on(tx))
            .await?
            .iter()
            .map(line_from_row::<D>)
            .collect::<StoreResult<_>>()?;
    Ok(Some((seq, order_from_row::<D>(&row, seq, lines)?)))
}

/// `WHERE` conditions that pick `target`.
fn push_target<D: Dialect>(select: &mut QueryBuilder<D>, target: OrderRef<'_>) {
    match target.key {
        OrderKey::Id(id) => select.push("id = ").arg(id),
        OrderKey::Number(seq) => select.push("seq = ").arg(seq),
    };
    if let Some(client_id) = target.client_id {
        select.push(" AND client_id = ").arg(client_id);
    }
}

/// A history entry about to be written.
pub(super) struct NewHistory<'a> {
    pub seq: i64,
    pub at: Timestamp,
    /// `None` for the creation.
    pub from: Option<OrderStatus>,
    pub change: StatusChange<'a>,
    /// The version the change made.
    pub version: i64,
    /// An amendment's changes, as JSON.
    pub changes: Option<String>,
}

/// One history row per entry, in as few statements as [`bulk`] allows.
pub(super) async fn insert_history<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    entries: &[NewHistory<'_>],
) -> StoreResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let rows: Vec<HistoryRow> = entries
        .iter()
        .map(|entry| HistoryRow {
            order_seq: entry.seq,
            at: entry.at.rfc3339(),
            actor: entry.change.actor.as_str(),
            actor_name: entry.change.actor_name,
            from_status: entry.from.map(OrderStatus::as_str),
            to_status: entry.change.to.as_str(),
            reason: entry.change.reason,
            version: entry.version,
            changes: entry.changes.as_deref(),
        })
        .collect();
    let statement = insert_json_rows::<D>("sales_order_history", HISTORY_COLUMNS, "");
    bulk::insert(tx, &statement, &rows).await?;
    Ok(())
}

const HISTORY_COLUMNS: &[(&str, &str)] = &[
    ("order_seq", "bigint"),
    ("at", "timestamptz"),
    ("actor", "text"),
    ("actor_name", "text"),
    ("from_status", "text"),
    ("to_status", "text"),
    ("reason", "text"),
    ("version", "bigint"),
    ("changes", "text"),
];

#[derive(Serialize)]
struct HistoryRow<'a> {
    order_seq: i64,
    at: String,
    actor: &'static str,
    actor_name: &'a str,
    from_status: Option<&'static str>,
    to_status: &'static str,
    reason: Option<&'a str>,
    version: i64,
    changes: Option<&'a str>,
}

fn parse_actor(text: &str) -> StoreResult<Actor> {
    Actor::parse(text).ok_or_else(|| StoreError::Corrupt(format!("bad actor {text:?}")))
}
