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
use super::order_insert::{InsertOrder, PendingOrder, Written, write_all};
use super::orders::OrderRef;
use super::sql::SqlStore;
use crate::domain::{ClientId, Code, NewOrder};

/// A batch on its way into the database: its valid orders, each with its
/// place in the request.
pub struct PendingBatch {
    pub client_id: ClientId,
    pub orders: Vec<(usize, NewOrder)>,
    /// All stored or none.
    pub atomic: bool,
    /// Idempotency-Key and the hash of the whole request.
    pub idempotency: Option<(String, Vec<u8>)>,
    pub now: OffsetDateTime,
}

/// What a batch came to: each order's answer with its place in the request.
#[derive(Debug)]
pub enum BatchOutcome {
    /// Committed: created orders and refused ones.
    Written(Vec<(usize, InsertOrder)>),
    /// Atomic, and these orders failed: nothing was stored.
    Rejected(Vec<(usize, InsertOrder)>),
    /// The Idempotency-Key was used before with this request: its answers,
    /// created orders as they are now.
    Replayed(Vec<(usize, InsertOrder)>),
    /// The Idempotency-Key was used before with another request.
    IdempotencyConflict,
}

/// What a batch's Idempotency-Key keeps of its answer: where each stored
/// order went. Refusals for invalid input are not kept: the same request
/// is refused the same way again.
#[derive(Serialize, Deserialize)]
struct KeptItem {
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
    Replay(Vec<KeptItemRef>),
}

/// A kept answer, to be read back.
pub struct KeptItemRef(KeptItem);

/// Writes `batch` on `connection` in one transaction of its own.
pub(super) async fn write_batch<D: Dialect>(
    connection: &mut D::Connection,
    batch: &PendingBatch,
) -> StoreResult<BatchWritten> {
    let mut tx = connection.begin_with(D::BEGIN).await?;
    if let Some((key, request_hash)) = &batch.idempotency {
        D::lock_idempotency_key(&mut tx, &batch.client_id, key).await?;
        if let Some(kept) = kept_answer(&mut tx, &batch.client_id, key, request_hash).await? {
            tx.rollback().await?;
            return Ok(kept);
        }
    }
    // Sorted by purchase order number, as the group commit sorts: two
    // transactions that want the same numbers take them in the same order.
    // Stable, so of two orders of the batch with one number the earlier wins.
    let pending: Vec<PendingOrder> = batch
        .orders
        .iter()
        .map(|(_, order)| PendingOrder::new(&batch.client_id, order.clone(), None, batch.now))
        .collect();
    let mut positions: Vec<usize> = (0..pending.len()).collect();
    positions.sort_by_key(|&i| {
        pending[i]
            .order
            .purchase_order_no
            .as_ref()
            .map(Code::as_str)
    });
    let sorted: Vec<&PendingOrder> = positions.iter().map(|&i| &pending[i]).collect();
    let written = write_all(&mut tx, &sorted).await?;
    let mut answers: Vec<Option<(usize, InsertOrder)>> = pending.iter().map(|_| None).collect();
    for (position, written) in positions.into_iter().zip(written) {
        let Written::Done(outcome) = written else {
            return Err(StoreError::Corrupt(
                "a batch order without a key was a replay".into(),
            ));
        };
        answers[position] = Some((batch.orders[position].0, outcome));
    }
    let answers: Vec<(usize, InsertOrder)> = answers.into_iter().flatten().collect();
    let failed = answers
        .iter()
        .any(|(_, outcome)| !matches!(outcome, InsertOrder::Created(_)));
    if batch.atomic && failed {
        tx.rollback().await?;
        let failures = answers
            .into_iter()
            .filter(|(_, outcome)| !matches!(outcome, InsertOrder::Created(_)))
            .collect();
        return Ok(BatchWritten::Done(BatchOutcome::Rejected(failures)));
    }
    if let Some((key, request_hash)) = &batch.idempotency {
        keep_answer(&mut tx, batch, key, request_hash, &answers).await?;
    }
    tx.commit().await?;
    Ok(BatchWritten::Done(BatchOutcome::Written(answers)))
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
            Ok(Some(BatchWritten::Replay(
                items.into_iter().map(KeptItemRef).collect(),
            )))
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
        for KeptItemRef(item) in kept {
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
