//! A batch of orders from one request: written in one transaction of its
//! own through the group-commit writer, each order answered as a single
//! create would be, or, when atomic and any order fails, none stored. One
//! Idempotency-Key stands for the whole batch.

use serde::{Deserialize, Serialize};
use sqlx::{Connection, Transaction};
use time::OffsetDateTime;

use super::dialect::{Bind, Dialect};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use super::order_insert::{
    InsertOrder, PendingOrder, Written, append_created, insert_all, lock_idempotency_keys,
};
use super::orders::OrderRef;
use super::sql::SqlStore;
use crate::domain::{ClientId, Code, NewOrder, Order};

/// A batch on its way into the database: its valid orders, each with its
/// place in the request.
pub struct PendingBatch {
    pub client_id: ClientId,
    /// Each order with its place in the request, ready for the insert
    /// ([`PendingBatch::orders`] makes them).
    pub orders: Vec<(usize, PendingOrder)>,
    /// All stored or none.
    pub atomic: bool,
    /// Atomic, and orders of the request were already refused (invalid
    /// input): these are only checked, for the answer to list every failing
    /// order at once, and nothing is stored.
    pub check_only: bool,
    /// Idempotency-Key and the hash of the whole request.
    pub idempotency: Option<(String, Vec<u8>)>,
    pub now: OffsetDateTime,
}

impl PendingBatch {
    /// The orders of `client_id`'s batch made at `now`, each with its place
    /// in the request, as the insert takes them.
    pub fn orders(
        client_id: &ClientId,
        orders: Vec<(usize, NewOrder)>,
        now: OffsetDateTime,
    ) -> Vec<(usize, PendingOrder)> {
        orders
            .into_iter()
            .map(|(index, order)| (index, PendingOrder::new(client_id, order, None, now)))
            .collect()
    }
}

/// What a batch came to: each order's answer with its place in the request.
#[derive(Debug)]
pub enum BatchOutcome {
    /// Committed: created orders and refused ones.
    Written(Vec<(usize, InsertOrder)>),
    /// Atomic, and these orders failed (or, with `check_only`, would have):
    /// nothing was stored.
    Rejected(Vec<Rejection>),
    /// The Idempotency-Key was used before with this request: its answers,
    /// created orders as they are now.
    Replayed(Vec<(usize, InsertOrder)>),
    /// The Idempotency-Key was used before with another request.
    IdempotencyConflict,
}

/// An order that made an atomic batch fail.
#[derive(Debug)]
pub struct Rejection {
    /// Its place in the request.
    pub index: usize,
    pub outcome: InsertOrder,
    /// For a purchase order number an earlier order of the same batch took:
    /// that order's place in the request.
    pub repeats: Option<usize>,
}

/// What a batch's Idempotency-Key keeps of its answer: where each stored
/// order went. Refusals for invalid input are not kept: the same request
/// is refused the same way again.
#[derive(Serialize, Deserialize)]
pub struct KeptItem {
    index: usize,
    /// The id of the order created.
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
    /// The live order holding the purchase order number.
    #[serde(skip_serializing_if = "Option::is_none")]
    existing_id: Option<String>,
}

/// What writing a batch came to, inside its transaction.
pub enum BatchWritten {
    Done(BatchOutcome),
    /// Read the kept answer's orders once the transaction is over.
    Replay(Vec<KeptItem>),
}

/// Writes `batch` on `connection` in one transaction of its own: its kept
/// answer if its key was used before, else its orders, all of them undone
/// if it is atomic and any failed.
pub(super) async fn write_batch<D: Dialect>(
    connection: &mut D::Connection,
    batch: &PendingBatch,
) -> StoreResult<BatchWritten> {
    let mut tx = connection.begin_with(D::BEGIN).await?;
    if let Some((key, request_hash)) = &batch.idempotency {
        lock_idempotency_keys(&mut tx, std::iter::once((&batch.client_id, key.as_str()))).await?;
        if let Some(kept) = kept_answer(&mut tx, &batch.client_id, key, request_hash).await? {
            tx.rollback().await?;
            return Ok(kept);
        }
    }
    let pending = &batch.orders;
    // Sorted by purchase order number, as the group commit sorts: two
    // transactions that want the same numbers take them in the same order.
    // Stable, so of two orders of the batch with one number the earlier wins.
    let mut positions: Vec<usize> = (0..pending.len()).collect();
    positions.sort_by_key(|&i| {
        pending[i]
            .1
            .order
            .purchase_order_no
            .as_ref()
            .map(Code::as_str)
    });
    let sorted: Vec<&PendingOrder> = positions.iter().map(|&i| &pending[i].1).collect();
    let inserted = insert_all(&mut tx, &sorted).await?;
    let mut answers: Vec<Option<(usize, InsertOrder)>> = pending.iter().map(|_| None).collect();
    for (position, written) in positions.into_iter().zip(inserted) {
        let Written::Done(outcome) = written else {
            return Err(StoreError::Corrupt(
                "a batch order without a key was a replay".into(),
            ));
        };
        answers[position] = Some((pending[position].0, outcome));
    }
    let answers: Vec<(usize, InsertOrder)> = answers.into_iter().flatten().collect();
    if batch.check_only || (batch.atomic && answers.iter().any(|(_, outcome)| failed(outcome))) {
        tx.rollback().await?;
        return Ok(BatchWritten::Done(BatchOutcome::Rejected(rejections(
            answers,
        ))));
    }
    if let Some((key, request_hash)) = &batch.idempotency {
        keep_answer(&mut tx, batch, key, request_hash, &answers).await?;
    }
    let created: Vec<(&PendingOrder, &Order)> = answers
        .iter()
        .zip(pending)
        .filter_map(|((_, outcome), (_, pending))| match outcome {
            InsertOrder::Created(order) => Some((pending, &**order)),
            _ => None,
        })
        .collect();
    append_created(&mut tx, &created).await?;
    tx.commit().await?;
    Ok(BatchWritten::Done(BatchOutcome::Written(answers)))
}

fn failed(outcome: &InsertOrder) -> bool {
    !matches!(outcome, InsertOrder::Created(_))
}

/// An atomic batch's failing orders. An order refused for a number an
/// earlier order of the batch took names that order's place in the request,
/// not its id: rolled back with the rest, it was never stored.
fn rejections(answers: Vec<(usize, InsertOrder)>) -> Vec<Rejection> {
    let created: Vec<(usize, String)> = answers
        .iter()
        .filter_map(|(index, outcome)| match outcome {
            InsertOrder::Created(order) => Some((*index, order.id.clone())),
            _ => None,
        })
        .collect();
    answers
        .into_iter()
        .filter(|(_, outcome)| failed(outcome))
        .map(|(index, outcome)| {
            let repeats = match &outcome {
                InsertOrder::DuplicatePurchaseOrder { existing_id } => created
                    .iter()
                    .find(|(_, id)| id == existing_id)
                    .map(|(earlier, _)| *earlier),
                _ => None,
            };
            Rejection {
                index,
                outcome,
                repeats,
            }
        })
        .collect()
}

/// The answer kept under the key, if it was used before: a replay for the
/// same request, a conflict for another.
async fn kept_answer<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    client_id: &ClientId,
    key: &str,
    request_hash: &[u8],
) -> StoreResult<Option<BatchWritten>> {
    let Some(row) = sqlx::query::<D>(
        "SELECT request_hash, outcome FROM idempotency_keys WHERE client_id = $1 AND key = $2",
    )
    .arg(client_id)
    .arg(key)
    .fetch_optional(D::on(tx))
    .await?
    else {
        return Ok(None);
    };
    let hash: Vec<u8> = D::get(&row, "request_hash")?;
    // A key first used for a single create has no batch answer.
    let outcome: Option<String> = D::get(&row, "outcome")?;
    match outcome {
        Some(outcome) if hash == request_hash => {
            let items: Vec<KeptItem> = serde_json::from_str(&outcome)
                .map_err(|error| StoreError::Corrupt(format!("bad kept batch answer: {error}")))?;
            Ok(Some(BatchWritten::Replay(items)))
        }
        _ => Ok(Some(BatchWritten::Done(BatchOutcome::IdempotencyConflict))),
    }
}

async fn keep_answer<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    batch: &PendingBatch,
    key: &str,
    request_hash: &[u8],
    answers: &[(usize, InsertOrder)],
) -> StoreResult<()> {
    let mut items = Vec::with_capacity(answers.len());
    for (index, outcome) in answers {
        let (order_id, existing_id) = match outcome {
            InsertOrder::Created(order) => (Some(order.id.clone()), None),
            InsertOrder::DuplicatePurchaseOrder { existing_id } => {
                (None, Some(existing_id.clone()))
            }
            InsertOrder::Replayed(_) | InsertOrder::IdempotencyConflict => continue,
        };
        items.push(KeptItem {
            index: *index,
            order_id,
            existing_id,
        });
    }
    let outcome =
        serde_json::to_string(&items).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    sqlx::query::<D>(
        "INSERT INTO idempotency_keys (client_id, key, request_hash, outcome, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .arg(&batch.client_id)
    .arg(key)
    .arg(request_hash)
    .arg(outcome.as_str())
    .arg(Timestamp::new(batch.now))
    .execute(D::on(tx))
    .await?;
    Ok(())
}

impl<D: Dialect> SqlStore<D> {
    /// The caller's answer, once the transaction that wrote it is over.
    pub(super) async fn batch_answer(
        &self,
        client_id: &ClientId,
        written: BatchWritten,
    ) -> StoreResult<BatchOutcome> {
        let kept = match written {
            BatchWritten::Done(outcome) => return Ok(outcome),
            BatchWritten::Replay(kept) => kept,
        };
        let mut answers = Vec::with_capacity(kept.len());
        for item in kept {
            let outcome = match (item.order_id, item.existing_id) {
                (Some(id), _) => InsertOrder::Replayed(Box::new(
                    self.order(OrderRef::partner(client_id, &id))
                        .await?
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "a kept batch answer names missing order {id}"
                            ))
                        })?,
                )),
                (None, Some(existing_id)) => InsertOrder::DuplicatePurchaseOrder { existing_id },
                (None, None) => {
                    return Err(StoreError::Corrupt("an empty kept batch answer".into()));
                }
            };
            answers.push((item.index, outcome));
        }
        Ok(BatchOutcome::Replayed(answers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn batch(pos: &[&str], atomic: bool, key: Option<&str>) -> PendingBatch {
        PendingBatch {
            client_id: ClientId::parse("p").unwrap(),
            orders: PendingBatch::orders(
                &ClientId::parse("p").unwrap(),
                pos.iter()
                    .enumerate()
                    .map(|(i, po)| (i, NewOrder::example(Some(po))))
                    .collect(),
                OffsetDateTime::now_utc(),
            ),
            atomic,
            check_only: false,
            idempotency: key.map(|key| (key.to_owned(), b"hash".to_vec())),
            now: OffsetDateTime::now_utc(),
        }
    }

    fn statuses(written: &StoreResult<BatchWritten>) -> (&'static str, Vec<bool>) {
        match written {
            Ok(BatchWritten::Done(BatchOutcome::Written(answers))) => (
                "written",
                answers
                    .iter()
                    .map(|(_, outcome)| matches!(outcome, InsertOrder::Created(_)))
                    .collect(),
            ),
            Ok(BatchWritten::Done(BatchOutcome::Rejected(rejected))) => {
                ("rejected", rejected.iter().map(|_| false).collect())
            }
            Ok(BatchWritten::Replay(_)) => ("replay", Vec::new()),
            Ok(BatchWritten::Done(other)) => panic!("{other:?}"),
            Err(error) => panic!("{error}"),
        }
    }

    #[tokio::test]
    async fn each_batch_is_answered_as_its_orders_alone_would_be_and_an_atomic_one_all_or_nothing()
    {
        let (_dir, store) = SqliteStore::with_partner_p().await;
        let batches = [
            batch(&["PO-1", "PO-2"], false, Some("k")),
            // Atomic, and PO-1 is taken by the batch before it: nothing stored.
            batch(&["PO-3", "PO-1"], true, None),
            // The same key again: the first's answer.
            batch(&["PO-1", "PO-2"], false, Some("k")),
            batch(&["PO-3", "PO-2", "PO-4"], false, None),
        ];
        let mut written = Vec::new();
        for batch in &batches {
            let mut connection = store.sql.writer.acquire().await.unwrap();
            written.push(write_batch::<sqlx::Sqlite>(&mut connection, batch).await);
        }
        assert_eq!(statuses(&written[0]), ("written", vec![true, true]));
        assert_eq!(statuses(&written[1]), ("rejected", vec![false]));
        assert_eq!(statuses(&written[2]).0, "replay");
        assert_eq!(statuses(&written[3]), ("written", vec![true, false, true]));
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT purchase_order_no FROM sales_orders ORDER BY seq")
                .fetch_all(&store.sql.reader)
                .await
                .unwrap();
        assert_eq!(stored, ["PO-1", "PO-2", "PO-3", "PO-4"]);
        let events: Vec<i64> =
            sqlx::query_scalar("SELECT sequence FROM order_events ORDER BY sequence")
                .fetch_all(&store.sql.reader)
                .await
                .unwrap();
        assert_eq!(events, [1, 2, 3, 4], "one event per stored order, no gap");
    }

    #[tokio::test]
    async fn an_atomic_batch_refused_for_a_repeated_number_names_the_earlier_order_by_place() {
        let (_dir, store) = SqliteStore::with_partner_p().await;
        let mut connection = store.sql.writer.acquire().await.unwrap();
        let written = write_batch::<sqlx::Sqlite>(
            &mut connection,
            &batch(&["PO-1", "PO-2", "PO-1"], true, None),
        )
        .await
        .unwrap();
        let BatchWritten::Done(BatchOutcome::Rejected(rejected)) = written else {
            panic!("an atomic batch with a repeated number is rejected");
        };
        assert_eq!(rejected.len(), 1);
        assert_eq!((rejected[0].index, rejected[0].repeats), (2, Some(0)));
    }
}
