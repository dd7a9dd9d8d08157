//! Webhook endpoints, the outbox of deliveries, and the attempts made.
//!
//! The outbox is filled from the events table, not by the writes that make
//! events: [`SqlStore::dispatch`] moves each enabled endpoint's cursor
//! (`last_sequence`) over its partner's new events, inserting a delivery per
//! matching event in the same transaction. Order intake pays nothing for
//! webhooks, and nothing is lost between an event's commit and its
//! delivery: a crash before dispatch leaves the cursor where it was.
//!
//! Deliveries are claimed with a lease ([`SqlStore::claim_deliveries`]):
//! the claim moves `next_attempt_at` past the attempt's timeout, so one
//! instance makes each attempt, and an instance that dies mid-attempt only
//! delays it until the lease ends. On PostgreSQL the claim and the dispatch
//! skip rows another instance holds (`SKIP LOCKED`).

use std::collections::HashMap;

use serde::Serialize;
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

use super::bulk::{self, insert_json_rows};
use super::dialect::{Bind, Dialect, PushBind, RowsAffected};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use super::feed::events_after;
use super::sql::SqlStore;
use crate::domain::webhook::{DeliveryAttempt, Endpoint, WebhookSecret};
use crate::domain::{ClientId, Event, EventType};

/// Deliveries that are neither delivered nor given up.
const PENDING: &str = "pending";
const DELIVERED: &str = "delivered";
const FAILED: &str = "failed";

/// An endpoint as stored, with its secrets.
#[derive(Debug, Clone)]
pub struct EndpointRecord {
    pub id: String,
    pub client_id: String,
    pub url: String,
    /// `None`: every type.
    pub types: Option<Vec<EventType>>,
    pub description: Option<String>,
    pub secret: WebhookSecret,
    pub previous_secret: Option<(WebhookSecret, OffsetDateTime)>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: OffsetDateTime,
}

impl EndpointRecord {
    /// As the API shows it; the secret only when `with_secret`.
    pub fn to_endpoint(&self, with_secret: bool) -> Endpoint {
        Endpoint {
            id: self.id.clone(),
            url: self.url.clone(),
            types: self
                .types
                .clone()
                .unwrap_or_else(|| EventType::ALL.to_vec()),
            description: self.description.clone(),
            enabled: self.enabled,
            disabled_reason: self.disabled_reason.clone(),
            created_at: super::encoding::rfc3339(self.created_at),
            secret: with_secret.then(|| self.secret.expose().to_owned()),
        }
    }
}

/// A new endpoint, checked.
pub struct NewEndpoint<'a> {
    pub id: &'a str,
    pub client_id: &'a ClientId,
    pub url: &'a str,
    pub types: Option<&'a [EventType]>,
    pub description: Option<&'a str>,
    pub secret: &'a WebhookSecret,
    pub now: OffsetDateTime,
}

/// A delivery claimed for one attempt, with what making it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub endpoint_id: String,
    pub client_id: String,
    pub event_id: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The lease this claim holds: its outcome is recorded only while the
    /// delivery still carries it (not claimed again, not redelivered).
    pub lease_until: OffsetDateTime,
    pub url: String,
    /// The secrets to sign with, the current one first.
    pub secrets: Vec<WebhookSecret>,
}

/// How an attempt ended, to record.
pub struct Attempted<'a> {
    pub claimed: &'a Claimed,
    pub at: OffsetDateTime,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: u64,
    /// When to try again; `None` after a success, or to give up.
    pub retry_at: Option<OffsetDateTime>,
    /// Disable the endpoint if every delivery failed since this instant.
    pub disable_if_failing_since: OffsetDateTime,
}

/// What recording an attempt did to its endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    Recorded,
    /// The endpoint had failed for too long and is now disabled.
    Disabled,
}

impl<D: Dialect> SqlStore<D> {
    /// Stores a new endpoint unless the partner has `max` already (`None`).
    /// Its cursor starts at the partner's latest event: it receives the
    /// events made from now on.
    pub async fn insert_endpoint(
        &self,
        endpoint: &NewEndpoint<'_>,
        max: usize,
    ) -> StoreResult<Option<EndpointRecord>> {
        let mut tx = D::begin(&self.writer).await?;
        // Racing registrations of one partner (on any instance) take turns
        // on its row, so the count below stays true until COMMIT.
        sqlx::query::<D>(AssertSqlSafe(format!(
            "SELECT client_id FROM partners WHERE client_id = $1{}",
            // Not FOR UPDATE: that would also block the foreign-key checks
            // of the partner's order inserts.
            D::lock(" FOR NO KEY UPDATE")
        )))
        .arg(endpoint.client_id)
        .fetch_optional(D::on(&mut tx))
        .await?;
        let row =
            sqlx::query::<D>("SELECT count(*) AS n FROM webhook_endpoints WHERE client_id = $1")
                .arg(endpoint.client_id)
                .fetch_one(D::on(&mut tx))
                .await?;
        if usize::try_from(D::get::<i64>(&row, "n")?).unwrap_or(usize::MAX) >= max {
            return Ok(None);
        }
        let types = endpoint.types.map(types_text);
        sqlx::query::<D>(
            "INSERT INTO webhook_endpoints
             (id, client_id, url, types, description, secret, enabled, last_sequence, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, true,
                     COALESCE((SELECT last FROM event_sequences WHERE client_id = $2), 0), $7)",
        )
        .arg(endpoint.id)
        .arg(endpoint.client_id)
        .arg(endpoint.url)
        .arg(types)
        .arg(endpoint.description)
        .arg(endpoint.secret.expose())
        .arg(Timestamp::new(endpoint.now))
        .execute(D::on(&mut tx))
        .await?;
        D::commit(tx).await?;
        self.wakeups.endpoints_changed();
        self.endpoint(Some(endpoint.client_id), endpoint.id).await
    }

    /// A partner's endpoints, oldest first.
    pub async fn endpoints(&self, client_id: &ClientId) -> StoreResult<Vec<EndpointRecord>> {
        let rows = sqlx::query::<D>(
            "SELECT * FROM webhook_endpoints WHERE client_id = $1 ORDER BY created_at, id",
        )
        .arg(client_id)
        .fetch_all(D::pool(&self.reader))
        .await?;
        rows.iter().map(endpoint_from_row::<D>).collect()
    }

    /// One endpoint: the partner's own, or (with `None`) any, for the operator.
    pub async fn endpoint(
        &self,
        client_id: Option<&ClientId>,
        id: &str,
    ) -> StoreResult<Option<EndpointRecord>> {
        let mut select =
            sqlx::QueryBuilder::<D>::new("SELECT * FROM webhook_endpoints WHERE id = ");
        select.arg(id);
        if let Some(client_id) = client_id {
            select.push(" AND client_id = ").arg(client_id);
        }
        // The writer: read right after a change, it must see the change.
        let row = select.build().fetch_optional(D::pool(&self.writer)).await?;
        row.as_ref().map(endpoint_from_row::<D>).transpose()
    }

    /// Removes the partner's endpoint with its outbox and attempts.
    pub async fn delete_endpoint(&self, client_id: &ClientId, id: &str) -> StoreResult<bool> {
        let deleted =
            sqlx::query::<D>("DELETE FROM webhook_endpoints WHERE id = $1 AND client_id = $2")
                .arg(id)
                .arg(client_id)
                .execute(D::pool(&self.writer))
                .await?
                .rows_affected();
        Ok(deleted > 0)
    }

    /// Gives the endpoint `secret`; the old one keeps signing until `old_until`.
    pub async fn rotate_endpoint_secret(
        &self,
        client_id: &ClientId,
        id: &str,
        secret: &WebhookSecret,
        old_until: OffsetDateTime,
    ) -> StoreResult<Option<EndpointRecord>> {
        let changed = sqlx::query::<D>(
            "UPDATE webhook_endpoints
             SET previous_secret = secret, previous_secret_until = $1, secret = $2
             WHERE id = $3 AND client_id = $4",
        )
        .arg(Timestamp::new(old_until))
        .arg(secret.expose())
        .arg(id)
        .arg(client_id)
        .execute(D::pool(&self.writer))
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        self.endpoint(Some(client_id), id).await
    }

    /// Enables (clearing the reason and the failure run) or disables an
    /// endpoint. `client_id` `None`: the operator, any partner's.
    pub async fn set_endpoint_enabled(
        &self,
        client_id: Option<&ClientId>,
        id: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> StoreResult<bool> {
        let mut update = sqlx::QueryBuilder::<D>::new("UPDATE webhook_endpoints SET enabled = ");
        update.arg(enabled);
        update.push(", disabled_reason = ").arg(reason);
        if enabled {
            update.push(", failing_since = NULL");
        }
        update.push(" WHERE id = ").arg(id);
        if let Some(client_id) = client_id {
            update.push(" AND client_id = ").arg(client_id);
        }
        let changed = update
            .build()
            .execute(D::pool(&self.writer))
            .await?
            .rows_affected();
        if enabled && changed > 0 {
            self.wakeups.endpoints_changed();
        }
        Ok(changed > 0)
    }

    /// Whether any endpoint, of any partner, is enabled: with none, there is
    /// nothing to dispatch or deliver.
    pub async fn any_enabled_endpoint(&self) -> StoreResult<bool> {
        let row =
            sqlx::query::<D>("SELECT 1 AS enabled FROM webhook_endpoints WHERE enabled LIMIT 1")
                .fetch_optional(D::pool(&self.reader))
                .await?;
        Ok(row.is_some())
    }

    /// Queues `payload` as event `event_id` for one endpoint, due now.
    pub async fn enqueue_delivery(
        &self,
        endpoint_id: &str,
        event_id: &str,
        payload: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query::<D>(
            "INSERT INTO webhook_deliveries
             (endpoint_id, event_id, payload, attempts, next_attempt_at, outcome, created_at)
             VALUES ($1, $2, $3, 0, $4, $5, $4)",
        )
        .arg(endpoint_id)
        .arg(event_id)
        .arg(payload)
        .arg(Timestamp::new(now))
        .arg(PENDING)
        .execute(D::pool(&self.writer))
        .await?;
        Ok(())
    }

    /// Sends an event again to every endpoint that has it in its outbox,
    /// due now, as a fresh run of attempts. Returns how many.
    pub async fn redeliver(&self, event_id: &str, now: OffsetDateTime) -> StoreResult<u64> {
        let changed = sqlx::query::<D>(
            "UPDATE webhook_deliveries SET attempts = 0, next_attempt_at = $1, outcome = $2
             WHERE event_id = $3",
        )
        .arg(Timestamp::new(now))
        .arg(PENDING)
        .arg(event_id)
        .execute(D::pool(&self.writer))
        .await?
        .rows_affected();
        Ok(changed)
    }

    /// Moves up to `endpoints` enabled endpoints' cursors over their
    /// partners' new events (up to `per_endpoint` each), queueing a delivery
    /// for each event of a type they take, due at `now`. Returns the
    /// deliveries queued.
    pub async fn dispatch(
        &self,
        now: OffsetDateTime,
        endpoints: u32,
        per_endpoint: u32,
    ) -> StoreResult<usize> {
        // Looked for first on a reader: most calls find nothing to do, and
        // on SQLite a write transaction would hold the one writer.
        let any_behind = sqlx::query::<D>(
            "SELECT 1 AS behind FROM webhook_endpoints e
             JOIN event_sequences s ON s.client_id = e.client_id
             WHERE e.enabled AND s.last > e.last_sequence LIMIT 1",
        )
        .fetch_optional(D::pool(&self.reader))
        .await?;
        if any_behind.is_none() {
            return Ok(0);
        }
        let mut tx = D::begin(&self.writer).await?;
        let behind = sqlx::query::<D>(AssertSqlSafe(format!(
            "SELECT e.id, e.client_id, e.types, e.last_sequence, s.last FROM webhook_endpoints e
             JOIN event_sequences s ON s.client_id = e.client_id
             WHERE e.enabled AND s.last > e.last_sequence
             ORDER BY e.id LIMIT $1{}",
            D::lock(" FOR UPDATE OF e SKIP LOCKED")
        )))
        .arg(i64::from(endpoints))
        .fetch_all(D::on(&mut tx))
        .await?;
        let mut queued = 0;
        // A partner's endpoints usually stand at the same place in its feed:
        // its events are read once for all of them, which matters because
        // on SQLite this transaction holds the one writer, and reading a
        // creation loads its order (see `feed`). A page is kept only until
        // the last endpoint that wants it has had it.
        let mut wanted: HashMap<(String, i64), usize> = HashMap::new();
        for row in &behind {
            let place = (D::get(row, "client_id")?, D::get(row, "last_sequence")?);
            *wanted.entry(place).or_default() += 1;
        }
        let mut read: HashMap<(String, i64), Vec<Event>> = HashMap::new();
        for row in &behind {
            let endpoint_id: String = D::get(row, "id")?;
            let client_id: String = D::get(row, "client_id")?;
            let types = parse_types(D::get(row, "types")?)?;
            let after: i64 = D::get(row, "last_sequence")?;
            let place = (client_id, after);
            let events = match read.remove(&place) {
                Some(events) => events,
                None => {
                    let client_id = ClientId::parse(&place.0).map_err(StoreError::Corrupt)?;
                    events_after::<D>(&mut tx, &client_id, after, per_endpoint).await?
                }
            };
            // None left (purged while the endpoint was disabled): the cursor
            // moves to the partner's latest, or this endpoint would look
            // behind for ever.
            let last = match events.last() {
                Some(event) => event.sequence,
                None => D::get(row, "last")?,
            };
            let rows: Vec<DeliveryRow> = events
                .iter()
                .filter(|event| {
                    types
                        .as_ref()
                        .is_none_or(|types| types.contains(&event.kind))
                })
                .map(|event| {
                    Ok(DeliveryRow {
                        endpoint_id: &endpoint_id,
                        event_id: event.id.clone(),
                        payload: serde_json::to_string(event)
                            .map_err(|error| StoreError::Corrupt(error.to_string()))?,
                        attempts: 0,
                        next_attempt_at: Timestamp::new(now).rfc3339(),
                        outcome: PENDING,
                        created_at: Timestamp::new(now).rfc3339(),
                    })
                })
                .collect::<StoreResult<_>>()?;
            let statement = insert_json_rows::<D>(
                "webhook_deliveries",
                DELIVERY_COLUMNS,
                "ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            );
            bulk::insert(&mut tx, &statement, &rows).await?;
            queued += rows.len();
            sqlx::query::<D>("UPDATE webhook_endpoints SET last_sequence = $1 WHERE id = $2")
                .arg(last)
                .arg(&endpoint_id)
                .execute(D::on(&mut tx))
                .await?;
            if let Some(left) = wanted.get_mut(&place) {
                *left -= 1;
                if *left > 0 {
                    read.insert(place, events);
                }
            }
        }
        D::commit(tx).await?;
        Ok(queued)
    }

    /// Claims up to `limit` deliveries due at `now` of enabled endpoints not
    /// in `busy_endpoints` nor of partners in `busy_partners`, leasing each
    /// until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        busy_endpoints: &[String],
        busy_partners: &[String],
    ) -> StoreResult<Vec<Claimed>> {
        let now = Timestamp::new(now);
        // As in `dispatch`: a reader first, the writer only when there is work.
        let any_due = sqlx::query::<D>(
            "SELECT 1 AS due FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
             WHERE d.next_attempt_at <= $1 AND e.enabled LIMIT 1",
        )
        .arg(now)
        .fetch_optional(D::pool(&self.reader))
        .await?;
        if any_due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = D::begin(&self.writer).await?;
        let mut select = sqlx::QueryBuilder::<D>::new(
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
             WHERE d.next_attempt_at <= ",
        );
        select.arg(now).push(" AND e.enabled");
        for (column, busy) in [
            (" AND d.endpoint_id NOT IN (", busy_endpoints),
            (" AND e.client_id NOT IN (", busy_partners),
        ] {
            if busy.is_empty() {
                continue;
            }
            select.push(column);
            let mut separated = select.separated(", ");
            for id in busy {
                separated.arg(id.as_str());
            }
            select.push(")");
        }
        select.push(" ORDER BY d.next_attempt_at, d.id LIMIT ");
        select.arg(i64::from(limit));
        select.push(D::lock(" FOR UPDATE OF d SKIP LOCKED"));
        let ids: Vec<i64> = select
            .build()
            .fetch_all(D::on(&mut tx))
            .await?
            .iter()
            .map(|row| D::get(row, "id"))
            .collect::<Result<_, _>>()?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query::<D>(
                "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2
                 RETURNING endpoint_id, event_id, payload, attempts",
            )
            .arg(Timestamp::new(lease_until))
            .arg(id)
            .fetch_one(D::on(&mut tx))
            .await?;
            let endpoint_id: String = D::get(&row, "endpoint_id")?;
            let event_id: String = D::get(&row, "event_id")?;
            let payload: String = D::get(&row, "payload")?;
            let attempts: i32 = D::get(&row, "attempts")?;
            let endpoint = sqlx::query::<D>(
                "SELECT client_id, url, secret, previous_secret, previous_secret_until
                 FROM webhook_endpoints WHERE id = $1",
            )
            .arg(&endpoint_id)
            .fetch_one(D::on(&mut tx))
            .await?;
            let mut secrets = vec![secret_from(D::get(&endpoint, "secret")?)?];
            let previous: Option<&str> = D::get(&endpoint, "previous_secret")?;
            let until: Option<Timestamp> = D::get(&endpoint, "previous_secret_until")?;
            if let (Some(previous), Some(until)) = (previous, until)
                && until.get() > now.get()
            {
                secrets.push(secret_from(previous)?);
            }
            claimed.push(Claimed {
                delivery_id: id,
                endpoint_id,
                client_id: D::get(&endpoint, "client_id")?,
                event_id,
                payload,
                attempts: u32::try_from(attempts).unwrap_or_default(),
                lease_until,
                url: D::get(&endpoint, "url")?,
                secrets,
            });
        }
        D::commit(tx).await?;
        Ok(claimed)
    }

    /// Hands a claimed delivery back unattempted, due at `at`.
    pub async fn release_delivery(&self, delivery_id: i64, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query::<D>("UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2")
            .arg(Timestamp::new(at))
            .arg(delivery_id)
            .execute(D::pool(&self.writer))
            .await?;
        Ok(())
    }

    /// Records attempts, in one transaction (one commit for many attempts:
    /// the worker hands them over in batches), and what follows from each:
    /// the delivery done, retried or given up; its endpoint's failure run
    /// reset or extended, and the endpoint disabled when that run is too
    /// long. One result per attempt, in order.
    pub async fn record_attempts(
        &self,
        attempts: &[Attempted<'_>],
    ) -> StoreResult<Vec<AfterAttempt>> {
        // By endpoint: two instances recording for the same endpoints lock
        // their rows in one order, so they cannot deadlock.
        let mut order: Vec<usize> = (0..attempts.len()).collect();
        order.sort_by_key(|&i| {
            (
                &attempts[i].claimed.endpoint_id,
                attempts[i].claimed.delivery_id,
            )
        });
        let mut results: Vec<AfterAttempt> =
            attempts.iter().map(|_| AfterAttempt::Recorded).collect();
        let mut tx = D::begin(&self.writer).await?;
        for i in order {
            results[i] = record_attempt(&mut tx, &attempts[i]).await?;
        }
        D::commit(tx).await?;
        Ok(results)
    }

    /// An endpoint's latest attempts, newest first.
    pub async fn attempts(
        &self,
        endpoint_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryAttempt>> {
        let rows = sqlx::query::<D>(
            "SELECT * FROM webhook_attempts WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .arg(endpoint_id)
        .arg(i64::from(limit))
        .fetch_all(D::pool(&self.reader))
        .await?;
        rows.iter()
            .map(|row| {
                let status: Option<i32> = D::get(row, "status")?;
                let duration: i32 = D::get(row, "duration_ms")?;
                Ok(DeliveryAttempt {
                    at: D::get::<Timestamp>(row, "at")?.rfc3339(),
                    event_id: D::get(row, "event_id")?,
                    status: status.and_then(|status| u16::try_from(status).ok()),
                    error: D::get(row, "error")?,
                    duration_ms: u64::try_from(duration).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Forgets attempts made before `before`, and finished deliveries
    /// (delivered or given up) queued before it.
    pub async fn purge_attempts(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let attempts = sqlx::query::<D>("DELETE FROM webhook_attempts WHERE at < $1")
            .arg(Timestamp::new(before))
            .execute(D::pool(&self.writer))
            .await?
            .rows_affected();
        let deliveries = sqlx::query::<D>(
            "DELETE FROM webhook_deliveries WHERE next_attempt_at IS NULL AND created_at < $1",
        )
        .arg(Timestamp::new(before))
        .execute(D::pool(&self.writer))
        .await?
        .rows_affected();
        Ok(attempts + deliveries)
    }
}

/// One attempt, in `tx` (see [`SqlStore::record_attempts`]).
async fn record_attempt<D: Dialect>(
    tx: &mut sqlx::Transaction<'_, D>,
    attempt: &Attempted<'_>,
) -> StoreResult<AfterAttempt> {
    let at = Timestamp::new(attempt.at);
    let claimed = attempt.claimed;
    let succeeded = attempt
        .status
        .is_some_and(|status| (200..300).contains(&status));
    // The endpoint may have been deleted meanwhile: then there is nothing
    // to record, and the batch's other attempts must not fail with it.
    sqlx::query::<D>(
        "INSERT INTO webhook_attempts (endpoint_id, event_id, at, status, error, duration_ms)
         SELECT $1, $2, $3, $4, $5, $6
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)",
    )
    .arg(&claimed.endpoint_id)
    .arg(&claimed.event_id)
    .arg(at)
    .arg(attempt.status.map(i32::from))
    .arg(attempt.error)
    .arg(i32::try_from(attempt.duration_ms).unwrap_or(i32::MAX))
    .execute(D::on(tx))
    .await?;
    let (next, outcome) = match (succeeded, attempt.retry_at) {
        (true, _) => (None, DELIVERED),
        (false, Some(retry_at)) => (Some(Timestamp::new(retry_at)), PENDING),
        (false, None) => (None, FAILED),
    };
    // Only while the delivery still carries this claim's lease: one claimed
    // again after the lease ran out, or redelivered by the operator, is
    // another attempt's to record.
    sqlx::query::<D>(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1, outcome = $2
         WHERE id = $3 AND next_attempt_at = $4",
    )
    .arg(next)
    .arg(outcome)
    .arg(claimed.delivery_id)
    .arg(Timestamp::new(claimed.lease_until))
    .execute(D::on(tx))
    .await?;
    if succeeded {
        sqlx::query::<D>(
            "UPDATE webhook_endpoints SET failing_since = NULL
             WHERE id = $1 AND failing_since IS NOT NULL",
        )
        .arg(&claimed.endpoint_id)
        .execute(D::on(tx))
        .await?;
        return Ok(AfterAttempt::Recorded);
    }
    sqlx::query::<D>(
        "UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL",
    )
    .arg(at)
    .arg(&claimed.endpoint_id)
    .execute(D::on(tx))
    .await?;
    let disabled = sqlx::query::<D>(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $1
         WHERE id = $2 AND enabled AND failing_since <= $3",
    )
    .arg(DISABLED_FOR_FAILING)
    .arg(&claimed.endpoint_id)
    .arg(Timestamp::new(attempt.disable_if_failing_since))
    .execute(D::on(tx))
    .await?
    .rows_affected();
    Ok(if disabled > 0 {
        AfterAttempt::Disabled
    } else {
        AfterAttempt::Recorded
    })
}

/// The reason an endpoint disabled by the server gives.
pub const DISABLED_FOR_FAILING: &str =
    "every delivery failed for 5 days; fix the endpoint, then enable it again";

const DELIVERY_COLUMNS: &[(&str, &str)] = &[
    ("endpoint_id", "text"),
    ("event_id", "text"),
    ("payload", "text"),
    ("attempts", "integer"),
    ("next_attempt_at", "timestamptz"),
    ("outcome", "text"),
    ("created_at", "timestamptz"),
];

#[derive(Serialize)]
struct DeliveryRow<'a> {
    endpoint_id: &'a str,
    event_id: String,
    payload: String,
    attempts: i32,
    next_attempt_at: String,
    outcome: &'static str,
    created_at: String,
}

fn types_text(types: &[EventType]) -> String {
    types
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_types(text: Option<&str>) -> StoreResult<Option<Vec<EventType>>> {
    text.map(|text| {
        text.split(' ')
            .map(|name| {
                EventType::parse(name)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad event type {name:?}")))
            })
            .collect()
    })
    .transpose()
}

fn secret_from(text: &str) -> StoreResult<WebhookSecret> {
    WebhookSecret::parse(text)
        .ok_or_else(|| StoreError::Corrupt("a malformed webhook secret".into()))
}

fn endpoint_from_row<D: Dialect>(row: &D::Row) -> StoreResult<EndpointRecord> {
    let previous: Option<&str> = D::get(row, "previous_secret")?;
    let until: Option<Timestamp> = D::get(row, "previous_secret_until")?;
    let previous_secret = match (previous, until) {
        (Some(previous), Some(until)) => Some((secret_from(previous)?, until.get())),
        _ => None,
    };
    Ok(EndpointRecord {
        id: D::get(row, "id")?,
        client_id: D::get(row, "client_id")?,
        url: D::get(row, "url")?,
        types: parse_types(D::get(row, "types")?)?,
        description: D::get(row, "description")?,
        secret: secret_from(D::get(row, "secret")?)?,
        previous_secret,
        enabled: D::get(row, "enabled")?,
        disabled_reason: D::get(row, "disabled_reason")?,
        created_at: D::get::<Timestamp>(row, "created_at")?.get(),
    })
}
