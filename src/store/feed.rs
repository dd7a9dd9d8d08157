//! Order events: written with the change that makes them ([`append`], in the
//! caller's transaction), and read back as each partner's feed.
//!
//! Numbering: a partner's events take the next numbers from its row in
//! `event_sequences`, by an upsert that holds the row until the transaction
//! ends. The next transaction for that partner (on any instance) waits for
//! this one, so numbers are handed out in commit order, and a rollback hands
//! them on unused: 1, 2, 3, … without a gap. The row is taken last, just
//! before COMMIT, so it is held as briefly as possible; partners never wait
//! for each other. On SQLite the one writer gives the same order.
//!
//! Snapshots: an event carries its order as it was right after the change.
//! An `order.created` event is written without it, because the order's own
//! rows hold it until the order first changes (version 1): its id is the
//! order's (`evt_` in place of `so_`), readers load the order, and the first
//! change of an order stores the creation snapshot in its transaction
//! ([`keep_creation`]) before moving the version on. Order intake is the hot
//! path: the snapshot roughly doubled what a create writes (BENCHMARKS.md).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::{AssertSqlSafe, QueryBuilder, Transaction};
use time::OffsetDateTime;

use super::bulk;
use super::dialect::{Bind, Dialect, PushBind};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use super::order_rows::orders_by_ids;
use super::sql::SqlStore;
use crate::domain::event::EventData;
use crate::domain::{ClientId, Event, EventType, Order, ids};

/// The `NOTIFY` channel that tells every instance a partner's events committed.
pub const CHANNEL: &str = "order_events";

/// An event about to be written, for `order` as it is after the change.
pub struct NewEvent<'a> {
    pub client_id: &'a ClientId,
    pub kind: EventType,
    pub order: &'a Order,
    pub at: Timestamp,
}

/// Takes partner `$1`'s next `$2` event numbers, answering the last of them,
/// and holds its row until the transaction ends.
const TAKE: &str = "INSERT INTO event_sequences (client_id, last) VALUES ($1, $2)
     ON CONFLICT (client_id) DO UPDATE SET last = event_sequences.last + excluded.last
     RETURNING last";

/// Writes `events` in `tx`, numbered per partner in the order given. Call it
/// last before COMMIT (see the module doc), and once committed wake the
/// partners' readers ([`super::wakeups`]).
///
/// A partner's rows travel numbered 1, 2, 3, … and are stored shifted by
/// where its numbering stood. On SQLite that is a statement to take the
/// numbers and one to insert the rows (one more per MiB of rows). On
/// PostgreSQL, where every statement inside the group commit is a round
/// trip, the first chunk of rows (12 KiB) goes in the statement that takes
/// the numbers and sends the `NOTIFY`, the rest in inserts of their own.
pub async fn append<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    events: &[NewEvent<'_>],
) -> StoreResult<()> {
    // Partners in one order, so two transactions that both write for two
    // partners take their rows in the same order and cannot deadlock.
    let mut by_partner: BTreeMap<&str, Vec<&NewEvent>> = BTreeMap::new();
    for event in events {
        by_partner
            .entry(event.client_id.as_str())
            .or_default()
            .push(event);
    }
    for (client_id, events) in by_partner {
        let rows = events
            .iter()
            .zip(1..)
            .map(|(event, sequence)| EventRow::new(event, sequence))
            .collect::<StoreResult<Vec<_>>>()?;
        let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let mut chunks = bulk::json_chunks(&rows, D::MAX_BULK_JSON)?.into_iter();
        let base = if D::ANNOUNCES {
            let first = chunks
                .next()
                .ok_or_else(|| StoreError::Corrupt("events without rows".into()))?;
            let numbered = sqlx::query::<D>(AssertSqlSafe(take_insert_and_announce::<D>()))
                .arg(first)
                .arg(client_id)
                .arg(count)
                .fetch_all(D::on(tx))
                .await?;
            // The first chunk holds row 1, so the lowest number stored is base + 1.
            let mut lowest = None;
            for row in &numbered {
                let sequence = D::get::<i64>(row, "sequence")?;
                lowest = Some(lowest.map_or(sequence, |low: i64| low.min(sequence)));
            }
            lowest.ok_or_else(|| StoreError::Corrupt("events numbered but none stored".into()))? - 1
        } else {
            let row = sqlx::query::<D>(TAKE)
                .arg(client_id)
                .arg(count)
                .fetch_one(D::on(tx))
                .await?;
            D::get::<i64>(&row, "last")? - count
        };
        for chunk in chunks {
            sqlx::query::<D>(AssertSqlSafe(insert_shifted::<D>()))
                .arg(chunk)
                .arg(base)
                .execute(D::on(tx))
                .await?;
        }
    }
    Ok(())
}

const EVENT_COLUMNS: &[(&str, &str)] = &[
    ("id", "text"),
    ("client_id", "text"),
    ("sequence", "bigint"),
    ("type", "text"),
    ("created_at", "timestamptz"),
    ("data", "text"),
];

/// The rows of the JSON array `$1`, each stored under its number + `$2`.
fn insert_shifted<D: Dialect>() -> String {
    format!(
        "INSERT INTO order_events (id, client_id, sequence, type, created_at, data)
         SELECT id, client_id, sequence + $2, type, created_at, data FROM {}",
        D::json_rows(EVENT_COLUMNS)
    )
}

/// PostgreSQL's one round trip: takes partner `$2`'s next `$3` numbers,
/// stores the rows of `$1` (numbered from 1) under them, and sends a
/// `NOTIFY` on [`CHANNEL`] with the client id, delivered at COMMIT and not
/// at all on rollback; answers the numbers stored.
fn take_insert_and_announce<D: Dialect>() -> String {
    format!(
        "WITH taken AS (
             INSERT INTO event_sequences (client_id, last) VALUES ($2, $3)
             ON CONFLICT (client_id) DO UPDATE SET last = event_sequences.last + excluded.last
             RETURNING last)
         INSERT INTO order_events (id, client_id, sequence, type, created_at, data)
         SELECT r.id, r.client_id, r.sequence + taken.last - $3, r.type, r.created_at, r.data
         FROM taken, pg_notify('{CHANNEL}', $2), {}
         RETURNING sequence",
        D::json_rows(EVENT_COLUMNS)
    )
}

#[derive(Serialize)]
struct EventRow<'a> {
    id: String,
    client_id: &'a str,
    sequence: i64,
    r#type: &'static str,
    created_at: String,
    /// `None` (SQL `NULL`) for an `order.created` event: see the module doc.
    data: Option<Box<RawValue>>,
}

impl<'a> EventRow<'a> {
    fn new(event: &NewEvent<'a>, sequence: i64) -> StoreResult<Self> {
        let (id, data) = if event.kind == EventType::OrderCreated {
            (ids::created_event_id(&event.order.id), None)
        } else {
            // Nested in the rows' JSON as it is, not as a string: no
            // escaping, and the databases read it back as the same
            // (minified) text.
            (ids::new_event_id(), Some(snapshot(event.order)?))
        };
        Ok(Self {
            id,
            client_id: event.client_id.as_str(),
            sequence,
            r#type: event.kind.as_str(),
            created_at: event.at.rfc3339(),
            data,
        })
    }
}

/// An event's `data`: `{"order": …}`.
fn snapshot(order: &Order) -> StoreResult<Box<RawValue>> {
    serde_json::value::to_raw_value(&EventData { order })
        .map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// Stores the `order.created` snapshot of `order`, read in `tx` before its
/// first change (version 1), in the transaction that makes that change: from
/// then on the order's rows no longer hold it. Later changes, and orders
/// whose creation event was purged or written with its snapshot, change
/// nothing.
pub async fn keep_creation<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    order: &Order,
) -> StoreResult<()> {
    if order.version != 1 {
        return Ok(());
    }
    sqlx::query::<D>("UPDATE order_events SET data = $1 WHERE id = $2 AND data IS NULL")
        .arg(snapshot(order)?.get())
        .arg(ids::created_event_id(&order.id))
        .execute(D::on(tx))
        .await?;
    Ok(())
}

impl<D: Dialect> SqlStore<D> {
    /// The partner's events numbered above `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        client_id: &ClientId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let mut reader = self.reader.acquire().await?;
        events_after::<D>(&mut reader, client_id, after, limit).await
    }

    /// One of the partner's events, by id.
    pub async fn event(&self, client_id: &ClientId, id: &str) -> StoreResult<Option<Event>> {
        let mut reader = self.reader.acquire().await?;
        let row = sqlx::query::<D>(
            "SELECT e.id, e.sequence, e.type, e.created_at, e.data, p.sandbox
             FROM order_events e JOIN partners p ON p.client_id = e.client_id
             WHERE e.client_id = $1 AND e.id = $2",
        )
        .arg(client_id)
        .arg(id)
        .fetch_optional(D::on(&mut reader))
        .await?;
        let stored = row.as_ref().map(stored_from_row::<D>).transpose()?;
        let mut events = with_snapshots::<D>(&mut reader, stored.into_iter().collect()).await?;
        Ok(events.pop())
    }

    /// Forgets events made before `before`. Numbering goes on where it was.
    /// Event ids begin with their time ([`ids::new_event_id`]), so the
    /// primary key finds them; no index on `created_at` is written per event.
    pub async fn purge_order_events(&self, before: OffsetDateTime) -> StoreResult<u64> {
        use super::dialect::RowsAffected;
        let purged = sqlx::query::<D>("DELETE FROM order_events WHERE id < $1")
            .arg(ids::event_id_bound(before))
            .execute(D::pool(&self.writer))
            .await?
            .rows_affected();
        Ok(purged)
    }
}

/// The partner's events numbered above `after`, oldest first, at most
/// `limit`, read on `connection`: a reader's, or (for the webhook
/// dispatcher) the transaction that moves a cursor over them.
pub(super) async fn events_after<D: Dialect>(
    connection: &mut D::Connection,
    client_id: &ClientId,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<Event>> {
    let rows = sqlx::query::<D>(
        "SELECT e.id, e.sequence, e.type, e.created_at, e.data, p.sandbox
         FROM order_events e JOIN partners p ON p.client_id = e.client_id
         WHERE e.client_id = $1 AND e.sequence > $2 ORDER BY e.sequence LIMIT $3",
    )
    .arg(client_id)
    .arg(after)
    .arg(i64::from(limit))
    .fetch_all(D::on(connection))
    .await?;
    let stored = rows
        .iter()
        .map(stored_from_row::<D>)
        .collect::<StoreResult<_>>()?;
    with_snapshots::<D>(connection, stored).await
}

/// An event as its row holds it: `data` is `None` for an `order.created`
/// event whose order has not changed yet.
struct StoredEvent {
    event: Event,
    data: Option<String>,
}

fn stored_from_row<D: Dialect>(row: &D::Row) -> StoreResult<StoredEvent> {
    let kind: &str = D::get(row, "type")?;
    Ok(StoredEvent {
        event: Event {
            id: D::get(row, "id")?,
            kind: EventType::parse(kind)
                .ok_or_else(|| StoreError::Corrupt(format!("bad event type {kind:?}")))?,
            sequence: D::get(row, "sequence")?,
            created_at: D::get::<Timestamp>(row, "created_at")?.rfc3339(),
            // The partner's mode: a partner is created live or sandbox, never moved.
            livemode: !D::get::<bool>(row, "sandbox")?,
            data: Box::default(),
        },
        data: D::get(row, "data")?,
    })
}

/// Completes `stored` with their snapshots, loading in one go the orders
/// whose creation snapshot their rows still hold (see the module doc).
async fn with_snapshots<D: Dialect>(
    connection: &mut D::Connection,
    stored: Vec<StoredEvent>,
) -> StoreResult<Vec<Event>> {
    let unchanged: Vec<String> = stored
        .iter()
        .filter(|stored| stored.data.is_none())
        .map(|stored| order_id(&stored.event.id))
        .collect::<StoreResult<_>>()?;
    let orders: HashMap<String, Order> = if unchanged.is_empty() {
        HashMap::new()
    } else {
        orders_by_ids::<D>(connection, &unchanged)
            .await?
            .into_iter()
            .map(|order| (order.id.clone(), order))
            .collect()
    };
    complete::<D>(connection, stored, orders).await
}

/// [`with_snapshots`] once the orders are read. Each order is used only if
/// it is still at version 1 after it was read: its row and its lines came
/// from two statements, and an amendment committed between them would have
/// given the created order the amended lines (`orders_by_ids` leaves out
/// the orders it catches so; this check stands for any order handed in).
/// The version moves in the transaction that changes the lines and stores
/// the snapshot, so an order still at version 1 now was read as created.
async fn complete<D: Dialect>(
    connection: &mut D::Connection,
    stored: Vec<StoredEvent>,
    mut orders: HashMap<String, Order>,
) -> StoreResult<Vec<Event>> {
    orders.retain(|_, order| order.version == 1);
    if !orders.is_empty() {
        let mut select =
            QueryBuilder::<D>::new("SELECT id FROM sales_orders WHERE version = 1 AND id IN (");
        let mut separated = select.separated(", ");
        for id in orders.keys() {
            separated.arg(id.as_str());
        }
        select.push(")");
        let still: HashSet<String> = select
            .build()
            .fetch_all(D::on(connection))
            .await?
            .iter()
            .map(|row| D::get::<String>(row, "id"))
            .collect::<Result<_, _>>()?;
        orders.retain(|id, _| still.contains(id));
    }
    let mut events = Vec::with_capacity(stored.len());
    for StoredEvent { mut event, data } in stored {
        event.data = match data {
            Some(data) => RawValue::from_string(data)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?,
            None => match orders.remove(&order_id(&event.id)?) {
                Some(order) => snapshot(&order)?,
                // Changed since the event was read: the change stored the
                // snapshot in the transaction that moved the version on.
                None => match stored_snapshot::<D>(connection, &event.id).await? {
                    Some(data) => data,
                    // Purged meanwhile, or (against the upgrade notes) an
                    // earlier release changed the order and stored nothing:
                    // leaving the event out keeps the feed and every other
                    // partner's webhooks going.
                    None => {
                        tracing::warn!(event = %event.id, "an order.created event left out: its snapshot is gone");
                        continue;
                    }
                },
            },
        };
        events.push(event);
    }
    Ok(events)
}

/// The snapshot stored in event `id`'s row, if the row is there and holds one.
async fn stored_snapshot<D: Dialect>(
    connection: &mut D::Connection,
    id: &str,
) -> StoreResult<Option<Box<RawValue>>> {
    let data: Option<String> = sqlx::query::<D>("SELECT data FROM order_events WHERE id = $1")
        .arg(id)
        .fetch_optional(D::on(connection))
        .await?
        .map(|row| D::get::<Option<String>>(&row, "data"))
        .transpose()?
        .flatten();
    data.map(|data| {
        RawValue::from_string(data).map_err(|error| StoreError::Corrupt(error.to_string()))
    })
    .transpose()
}

/// The order an `order.created` event stored without its snapshot is about.
fn order_id(event_id: &str) -> StoreResult<String> {
    ids::created_order_id(event_id)
        .ok_or_else(|| StoreError::Corrupt(format!("bad creation event id {event_id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, OrderStatus};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{OrderRef, StatusChange, Transition};

    /// Every event row as a reader takes it, before completing it.
    async fn stored_events(reader: &mut sqlx::SqliteConnection) -> Vec<StoredEvent> {
        sqlx::query::<sqlx::Sqlite>(
            "SELECT e.id, e.sequence, e.type, e.created_at, e.data, p.sandbox
             FROM order_events e JOIN partners p ON p.client_id = e.client_id",
        )
        .fetch_all(reader)
        .await
        .unwrap()
        .iter()
        .map(stored_from_row::<sqlx::Sqlite>)
        .collect::<StoreResult<_>>()
        .unwrap()
    }

    async fn accept(store: &SqliteStore, order: &Order) {
        let change = StatusChange {
            to: OrderStatus::Accepted,
            reason: None,
            actor: Actor::Operator,
            actor_name: "ops",
            if_version: None,
        };
        let moved = store
            .sql
            .change_status(
                OrderRef::operator(&order.id),
                change,
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert!(matches!(moved, Transition::Changed(_)));
    }

    #[tokio::test]
    async fn a_creation_read_before_the_orders_first_change_and_completed_after_it_shows_the_order_as_created()
     {
        let (_dir, store, created) = SqliteStore::with_an_order_of_p().await;
        let mut reader = store.sql.reader.acquire().await.unwrap();
        let stale = stored_events(&mut reader).await;
        assert!(stale[0].data.is_none(), "a creation stores no snapshot");

        accept(&store, &created).await;

        // The order is at version 2 now: its creation comes from the row the change wrote.
        let events = with_snapshots::<sqlx::Sqlite>(&mut reader, stale)
            .await
            .unwrap();
        assert_eq!(events[0].data.get(), snapshot(&created).unwrap().get());
        assert_eq!(events[0].id, ids::created_event_id(&created.id));
    }

    #[tokio::test]
    async fn an_order_read_at_version_one_but_changed_before_its_lines_were_read_is_not_taken_for_the_creation()
     {
        let (_dir, store, created) = SqliteStore::with_an_order_of_p().await;
        let mut reader = store.sql.reader.acquire().await.unwrap();
        let stale = stored_events(&mut reader).await;
        // Its row read at version 1, its lines after an amendment committed.
        let mut torn = created.clone();
        torn.products[0].product_code = "AMENDED".into();
        accept(&store, &created).await;

        let orders = HashMap::from([(torn.id.clone(), torn)]);
        let events = complete::<sqlx::Sqlite>(&mut reader, stale, orders)
            .await
            .unwrap();
        assert_eq!(events[0].data.get(), snapshot(&created).unwrap().get());
    }

    #[tokio::test]
    async fn a_creation_purged_while_it_was_read_is_left_out_rather_than_failing_the_read() {
        let (_dir, store, created) = SqliteStore::with_an_order_of_p().await;
        let mut reader = store.sql.reader.acquire().await.unwrap();
        let stale = stored_events(&mut reader).await;
        accept(&store, &created).await;
        sqlx::query("DELETE FROM order_events WHERE type = 'order.created'")
            .execute(&store.sql.writer)
            .await
            .unwrap();

        let events = with_snapshots::<sqlx::Sqlite>(&mut reader, stale)
            .await
            .unwrap();
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn postgres_numbers_events_and_announces_them_on_the_channel_the_instances_listen_to() {
        let statement = take_insert_and_announce::<sqlx::Postgres>();
        assert!(statement.contains(&format!("pg_notify('{CHANNEL}', $2)")));
        // The same upsert as SQLite's, with the client id and count moved on by one.
        let take = TAKE.replace("$2", "$3").replace("$1", "$2");
        let squeeze = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(squeeze(&statement).contains(&squeeze(&take)));
    }
}
