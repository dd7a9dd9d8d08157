//! Orders as their rows hold them, read back into the API's `Order`: for
//! the order routes and for the event feed (a creation's snapshot is its
//! order's rows, see `feed`). A module of its own so that `orders`, which
//! writes events, and `feed`, which reads orders, do not import each other.

use std::collections::HashMap;

use sqlx::{Executor, QueryBuilder};

use super::dialect::{Dialect, PushBind};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use crate::domain::{Decimal, Order, OrderLine, OrderStatus, ids};

/// Reads of orders made again when an order changed between its row and
/// its lines ([`with_lines`]) before the read gives up.
pub(super) const READ_ATTEMPTS: usize = 3;

/// The orders with these ids that exist, in no particular order, read on
/// `connection`, less any that changed while they were read
/// ([`with_lines`]): the feed wants an order only as created, and the
/// change that moved it on stored that snapshot (`feed`).
pub(super) async fn orders_by_ids<D: Dialect>(
    connection: &mut D::Connection,
    ids: &[String],
) -> StoreResult<Vec<Order>> {
    let mut select = QueryBuilder::<D>::new("SELECT * FROM sales_orders WHERE id IN (");
    let mut separated = select.separated(", ");
    for id in ids {
        separated.arg(id.as_str());
    }
    select.push(")");
    let rows = select.build().fetch_all(D::on(connection)).await?;
    let orders = with_lines(D::on(connection), rows).await?;
    Ok(orders.into_iter().flatten().collect())
}

/// Turns order rows into orders, in their order, loading all their lines
/// in one query on `executor`; `None` for an order a change committed
/// between the rows' statement and the lines' (outside a transaction, each
/// statement reads what was committed when it began), which would pair its
/// row with the lines of another version of it: the caller reads it again
/// or leaves it out. The lines' statement reads each order's version with
/// them, and an order's lines change only with its version, in one
/// transaction, so a version that differs from the row's means the row is
/// stale. (A status change moves the version too, so such an order is read
/// again though its lines did not change.)
pub(super) async fn with_lines<'c, D: Dialect>(
    executor: impl Executor<'c, Database = D>,
    rows: Vec<D::Row>,
) -> StoreResult<Vec<Option<Order>>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = rows
        .iter()
        .map(|row| D::get(row, "seq"))
        .collect::<Result<_, _>>()?;
    let mut select = QueryBuilder::<D>::new(
        "SELECT l.*, o.version AS order_version FROM sales_order_lines l \
         JOIN sales_orders o ON o.seq = l.order_seq WHERE l.order_seq IN (",
    );
    let mut separated = select.separated(", ");
    for seq in &seqs {
        separated.arg(*seq);
    }
    select.push(") ORDER BY l.order_seq, l.line_no");
    let line_rows = select.build().fetch_all(executor).await?;
    // Each order's lines, with its version as the lines' statement read it.
    let mut lines: HashMap<i64, (i64, Vec<OrderLine>)> = HashMap::new();
    for row in &line_rows {
        // One statement: every line of an order comes with the same version.
        let version: i64 = D::get(row, "order_version")?;
        let (_, products) = lines
            .entry(D::get(row, "order_seq")?)
            .or_insert((version, Vec::new()));
        products.push(line_from_row::<D>(row)?);
    }
    let mut orders = Vec::with_capacity(rows.len());
    for (row, seq) in rows.iter().zip(seqs) {
        let (version, products) = lines.remove(&seq).unwrap_or_default();
        let order = order_from_row::<D>(row, seq, products)?;
        // Every order has lines, written with it: none means none to compare.
        let changed = !order.products.is_empty() && version != order.version;
        orders.push((!changed).then_some(order));
    }
    Ok(orders)
}

pub(super) fn line_from_row<D: Dialect>(row: &D::Row) -> StoreResult<OrderLine> {
    let line_no: i32 = D::get(row, "line_no")?;
    Ok(OrderLine {
        line_no: u32::try_from(line_no)
            .map_err(|_| StoreError::Corrupt(format!("bad line number {line_no}")))?,
        product_code: D::get(row, "product_code")?,
        quantity: D::get::<Decimal>(row, "quantity")?,
        uom: D::get(row, "uom")?,
        unit_price: D::get(row, "unit_price")?,
        line_amount: D::get(row, "line_amount")?,
        notes: D::get(row, "notes")?,
    })
}

pub(super) fn order_from_row<D: Dialect>(
    row: &D::Row,
    seq: i64,
    products: Vec<OrderLine>,
) -> StoreResult<Order> {
    Ok(Order {
        id: D::get(row, "id")?,
        order_number: ids::order_number(seq),
        client_id: D::get(row, "client_id")?,
        livemode: D::get(row, "livemode")?,
        status: parse_status(D::get(row, "status")?)?,
        status_reason: D::get(row, "status_reason")?,
        customer_code: D::get(row, "customer_code")?,
        site_code: D::get(row, "site_code")?,
        sales_name: D::get(row, "sales_name")?,
        address: D::get(row, "address")?,
        purchase_order_no: D::get(row, "purchase_order_no")?,
        currency: D::get(row, "currency")?,
        products,
        total_amount: D::get(row, "total_amount")?,
        version: D::get(row, "version")?,
        created_at: D::get::<Timestamp>(row, "created_at")?.rfc3339(),
        updated_at: D::get::<Timestamp>(row, "updated_at")?.rfc3339(),
    })
}

pub(super) fn parse_status(text: &str) -> StoreResult<OrderStatus> {
    OrderStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("bad status {text:?}")))
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{ClientId, NewOrder};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Amend, OrderRef};

    #[tokio::test]
    async fn an_order_row_read_before_an_amendment_is_not_paired_with_the_lines_written_by_it() {
        let (_dir, store, created) = SqliteStore::with_an_order_of_p().await;
        let p = ClientId::parse("p").unwrap();
        let read = || async {
            sqlx::query("SELECT * FROM sales_orders WHERE id = $1")
                .bind(&created.id)
                .fetch_all(&store.sql.reader)
                .await
                .unwrap()
        };
        let stale = read().await;

        let amended = store
            .sql
            .amend(
                &p,
                &created.id,
                &NewOrder::example(Some("PO-2")),
                None,
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert!(matches!(amended, Amend::Amended(_)), "{amended:?}");

        let torn = with_lines(&store.sql.reader, stale).await.unwrap();
        assert!(
            torn[0].is_none(),
            "a version 1 row with version 2 lines: {torn:?}"
        );
        let fresh = with_lines(&store.sql.reader, read().await).await.unwrap();
        let fresh = fresh[0].as_ref().unwrap();
        assert_eq!(fresh.version, 2);
        assert_eq!(fresh.products.len(), created.products.len());
        let order = store
            .sql
            .order(OrderRef::partner(&p, &created.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (order.version, order.purchase_order_no),
            (2, Some("PO-2".into()))
        );
    }
}
