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

/// The orders with these ids that exist, in no particular order, read on
/// `connection`. The rows and their lines are two statements: outside a
/// transaction a change can commit between them (`feed` checks the version
/// afterwards for that reason).
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
    with_lines(D::on(connection), rows).await
}

/// Turns order rows into orders, loading all their lines in one query on
/// `executor`.
pub(super) async fn with_lines<'c, D: Dialect>(
    executor: impl Executor<'c, Database = D>,
    rows: Vec<D::Row>,
) -> StoreResult<Vec<Order>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = rows
        .iter()
        .map(|row| D::get(row, "seq"))
        .collect::<Result<_, _>>()?;
    let mut select = QueryBuilder::<D>::new("SELECT * FROM sales_order_lines WHERE order_seq IN (");
    let mut separated = select.separated(", ");
    for seq in &seqs {
        separated.arg(*seq);
    }
    select.push(") ORDER BY order_seq, line_no");
    let line_rows = select.build().fetch_all(executor).await?;
    let mut lines: HashMap<i64, Vec<OrderLine>> = HashMap::new();
    for row in &line_rows {
        lines
            .entry(D::get(row, "order_seq")?)
            .or_default()
            .push(line_from_row::<D>(row)?);
    }
    rows.iter()
        .zip(seqs)
        .map(|(row, seq)| order_from_row::<D>(row, seq, lines.remove(&seq).unwrap_or_default()))
        .collect()
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
