//! Amending an order: its content replaced while it is `received`, with a
//! history entry saying what changed and its `order.amended` event, in one
//! transaction.

use time::OffsetDateTime;

use super::dialect::{Bind, Dialect};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use super::feed::{self, NewEvent};
use super::order_insert::{insert_lines, live_holder};
use super::orders::{NewHistory, OrderRef, StatusChange, insert_history, lock_order};
use super::sql::SqlStore;
use crate::domain::{Actor, Amendment, ClientId, EventType, NewOrder, Order, OrderStatus};

#[derive(Debug, Clone)]
pub enum Amend {
    Amended(Box<Order>),
    /// The new content reads exactly as the order does: nothing changed, no
    /// version, no event (so a retried amendment changes nothing twice).
    Unchanged(Box<Order>),
    NotFound,
    /// The order is no longer at the version the amendment was made for.
    VersionMismatch {
        current: i64,
    },
    /// Only a `received` order can be amended.
    NotAmendable {
        current: OrderStatus,
    },
    /// The new purchase order number is held by another live order.
    DuplicatePurchaseOrder {
        existing_id: String,
    },
}

impl<D: Dialect> SqlStore<D> {
    /// Replaces the content of the partner's order `id` with `order`, if it
    /// is `received` (and, with `if_version`, still at that version).
    pub async fn amend(
        &self,
        client_id: &ClientId,
        id: &str,
        order: &NewOrder,
        if_version: Option<i64>,
        now: OffsetDateTime,
    ) -> StoreResult<Amend> {
        // A new purchase order number that another transaction takes while
        // this one looks is caught by the unique index; the next round then
        // finds its holder. Each round ends in an answer unless the number
        // is taken and freed again meanwhile, which a few rounds outlast.
        for _ in 0..3 {
            match self.try_amend(client_id, id, order, if_version, now).await {
                Err(StoreError::Database(error))
                    if error
                        .as_database_error()
                        .is_some_and(|error| error.is_unique_violation()) => {}
                outcome => return outcome,
            }
        }
        Err(StoreError::contended())
    }

    async fn try_amend(
        &self,
        client_id: &ClientId,
        id: &str,
        new: &NewOrder,
        if_version: Option<i64>,
        now: OffsetDateTime,
    ) -> StoreResult<Amend> {
        let at = Timestamp::new(now);
        let mut tx = D::begin(&self.writer).await?;
        let Some((seq, current)) = lock_order(&mut tx, OrderRef::partner(client_id, id)).await?
        else {
            return Ok(Amend::NotFound);
        };
        // The precondition first, as HTTP evaluates it before the method.
        if if_version.is_some_and(|expected| expected != current.version) {
            return Ok(Amend::VersionMismatch {
                current: current.version,
            });
        }
        if current.status != OrderStatus::Received {
            return Ok(Amend::NotAmendable {
                current: current.status,
            });
        }
        let amended = new.replacing(&current, at.rfc3339());
        let changes = Amendment::between(&current, &amended);
        if changes.is_empty() {
            return Ok(Amend::Unchanged(Box::new(current)));
        }
        if amended.purchase_order_no != current.purchase_order_no
            && let Some(existing_id) =
                live_holder(&mut tx, client_id, amended.purchase_order_no.as_deref()).await?
        {
            return Ok(Amend::DuplicatePurchaseOrder { existing_id });
        }
        feed::keep_creation(&mut tx, &current).await?;
        sqlx::query::<D>(
            "UPDATE sales_orders SET customer_code = $1, site_code = $2, sales_name = $3,
                 address = $4, purchase_order_no = $5, currency = $6, total_amount = $7,
                 version = $8, updated_at = $9
             WHERE seq = $10",
        )
        .arg(amended.customer_code.as_str())
        .arg(amended.site_code.as_str())
        .arg(amended.sales_name.as_str())
        .arg(amended.address.as_str())
        .arg(amended.purchase_order_no.as_deref())
        .arg(amended.currency.as_str())
        .arg(amended.total_amount.as_ref())
        .arg(amended.version)
        .arg(at)
        .arg(seq)
        .execute(D::on(&mut tx))
        .await?;
        sqlx::query::<D>("DELETE FROM sales_order_lines WHERE order_seq = $1")
            .arg(seq)
            .execute(D::on(&mut tx))
            .await?;
        let lines: Vec<_> = amended.products.iter().map(|line| (seq, line)).collect();
        insert_lines(&mut tx, &lines).await?;
        let entry = NewHistory {
            seq,
            at,
            from: Some(OrderStatus::Received),
            change: StatusChange {
                to: OrderStatus::Received,
                reason: None,
                actor: Actor::Partner,
                actor_name: client_id.as_str(),
                if_version,
            },
            version: amended.version,
            changes: Some(
                serde_json::to_string(&changes)
                    .map_err(|error| StoreError::Corrupt(error.to_string()))?,
            ),
        };
        insert_history(&mut tx, &[entry]).await?;
        let event = NewEvent {
            client_id,
            kind: EventType::OrderAmended,
            order: &amended,
            at,
        };
        feed::append(&mut tx, &[event]).await?;
        D::commit(tx).await?;
        self.wakeups.wake(client_id.as_str());
        Ok(Amend::Amended(Box::new(amended)))
    }
}
