//! The one seam between the service and its database.
//!
//! Handlers and the CLI speak to [`Store`] in domain terms; SQL lives behind
//! it. SQLite is the embedded default, PostgreSQL the production store; the
//! scheme of the database URL picks one. Every query is written once
//! ([`sql::SqlStore`], one file per area) for both; what differs between the
//! databases is in [`dialect`], how values are stored in [`encoding`].

/// The predicate of the unique index on live orders' purchase order numbers
/// (`sales_orders_live_po`, in the migrations): an `ON CONFLICT` must name
/// it to use the index, and a lookup of the order holding a number too.
macro_rules! live_po {
    () => {
        "purchase_order_no IS NOT NULL AND status NOT IN ('cancelled', 'rejected')"
    };
}

mod audit;
mod bulk;
pub mod dialect;
pub mod encoding;
mod error;
mod feed;
mod group_commit;
mod order_amend;
mod order_batch;
mod order_insert;
mod order_rows;
mod orders;
mod partners;
pub mod postgres;
mod sessions;
pub mod sql;
pub mod sqlite;
mod wakeups;
mod webhooks;

use time::OffsetDateTime;

pub use audit::{AuditEvent, AuditQuery};
pub use encoding::rfc3339;
pub use error::{StoreError, StoreResult};
pub use order_amend::Amend;
pub use order_batch::{BatchOutcome, PendingBatch};
pub use order_insert::{Idempotency, InsertOrder, PendingOrder};
pub use orders::{OrderKey, OrderPage, OrderQuery, OrderRef, StatusChange, Transition};
pub use partners::{AddKey, KeyRecord, NewPartner, PartnerRecord, PartnerSettings};
pub use sessions::{IssuedToken, RefreshOutcome, SessionState, TokenRow};
pub use wakeups::{AnyEvent, Subscription};
pub use webhooks::{AfterAttempt, Attempted, Claimed, EndpointRecord, NewEndpoint};

use crate::config::DatabaseUrl;
use crate::domain::webhook::{DeliveryAttempt, WebhookSecret};
use crate::domain::{ClientId, Event, NewOrder, Order, OrderEvent, PublicKey};

/// The database behind the service, chosen by the URL's scheme.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    /// The shared queries, with order inserts through the group-commit writer.
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

#[cfg(test)]
impl From<sqlite::SqliteStore> for Store {
    fn from(store: sqlite::SqliteStore) -> Self {
        Self {
            backend: Backend::Sqlite(store),
        }
    }
}

/// Runs `$call` on the shared store of whichever database is in use.
macro_rules! shared {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite(sqlite) => {
                let $store = &sqlite.sql;
                $call
            }
            Backend::Postgres(postgres) => {
                let $store = &postgres.sql;
                $call
            }
        }
    };
}

/// Each method is documented where it is written: the `SqlStore` method of
/// the same name in the file of its area.
impl Store {
    /// Opens the database at a `sqlite://PATH` or `postgres://…` URL with at
    /// most `max_connections` connections (SQLite: readers; it has one writer).
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Self> {
        let scheme = url.expose().split(':').next().unwrap_or_default();
        let backend = match scheme {
            "sqlite" => {
                Backend::Sqlite(sqlite::SqliteStore::connect(url.expose(), max_connections).await?)
            }
            "postgres" | "postgresql" => {
                Backend::Postgres(postgres::connect(url.expose(), max_connections).await?)
            }
            _ => anyhow::bail!(
                "unsupported database URL {url} (expected sqlite://PATH or postgres://USER@HOST/DB)"
            ),
        };
        Ok(Self { backend })
    }

    /// SQLite: caps how many concurrent order inserts share one commit (1
    /// commits each alone). PostgreSQL batches keep the default.
    pub fn set_sqlite_max_batch(&self, max_batch: usize) {
        if let Backend::Sqlite(store) = &self.backend {
            store.set_max_batch(max_batch);
        }
    }

    /// Applies the embedded migrations. On PostgreSQL an advisory lock makes
    /// this safe when several instances start at once.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Sqlite(store) => store.migrate().await,
            Backend::Postgres(store) => postgres::migrate(store).await,
        }
    }

    /// `(applied, latest)` when the database was made by an earlier release
    /// and this one would migrate it; `None` when it is new or up to date.
    pub async fn upgrade_pending(&self) -> Option<(i64, i64)> {
        let (applied, latest) = match &self.backend {
            Backend::Sqlite(store) => (
                store.sql.schema_version().await,
                sqlite::SqliteStore::latest_migration(),
            ),
            Backend::Postgres(store) => (
                store.sql.schema_version().await,
                postgres::latest_migration(),
            ),
        };
        applied
            .filter(|applied| *applied < latest)
            .map(|applied| (applied, latest))
    }

    /// Stores an order, its lines, its first history entry and its
    /// Idempotency-Key in one transaction; returns once committed. Requests
    /// with the same key are served one at a time, across instances.
    pub async fn insert_order(
        &self,
        client_id: &ClientId,
        order: NewOrder,
        idempotency: Option<Idempotency<'_>>,
        now: OffsetDateTime,
    ) -> StoreResult<InsertOrder> {
        let pending = PendingOrder::new(client_id, order, idempotency, now);
        match &self.backend {
            Backend::Sqlite(store) => store.insert_order(pending).await,
            Backend::Postgres(store) => store.insert_order(pending).await,
        }
    }

    /// Stores a batch of orders in one transaction of its own, through the
    /// same writer as single creates; returns once committed.
    pub async fn insert_batch(&self, batch: PendingBatch) -> StoreResult<BatchOutcome> {
        match &self.backend {
            Backend::Sqlite(store) => store.insert_batch(batch).await,
            Backend::Postgres(store) => store.insert_batch(batch).await,
        }
    }

    pub async fn ping(&self) -> StoreResult<()> {
        shared!(self, store => store.ping().await)
    }

    pub async fn jwt_key(&self, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        shared!(self, store => store.jwt_key(candidate).await)
    }

    pub async fn insert_partner(&self, partner: &NewPartner<'_>) -> StoreResult<bool> {
        shared!(self, store => store.insert_partner(partner).await)
    }

    pub async fn partner(&self, client_id: &ClientId) -> StoreResult<Option<PartnerRecord>> {
        shared!(self, store => store.partner(client_id).await)
    }

    pub async fn partners(&self) -> StoreResult<Vec<PartnerRecord>> {
        shared!(self, store => store.partners().await)
    }

    pub async fn set_partner_enabled(
        &self,
        client_id: &ClientId,
        enabled: bool,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        shared!(self, store => store.set_partner_enabled(client_id, enabled, now).await)
    }

    pub async fn revoke_sessions(
        &self,
        client_id: &ClientId,
        reason: &str,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        shared!(self, store => store.revoke_sessions(client_id, reason, now).await)
    }

    pub async fn remember_signature(
        &self,
        client_id: &ClientId,
        digest: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        shared!(self, store => store.remember_signature(client_id, digest, now, expires_at).await)
    }

    pub async fn purge_signatures(&self, now: OffsetDateTime) -> StoreResult<u64> {
        shared!(self, store => store.purge_signatures(now).await)
    }

    pub async fn update_partner(
        &self,
        client_id: &ClientId,
        settings: &PartnerSettings,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        shared!(self, store => store.update_partner(client_id, settings, now).await)
    }

    pub async fn rotate_secret(
        &self,
        client_id: &ClientId,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        shared!(self, store => store.rotate_secret(client_id, secret_hash, now).await)
    }

    pub async fn add_key(
        &self,
        client_id: &ClientId,
        key_id: &str,
        key: &PublicKey,
        now: OffsetDateTime,
    ) -> StoreResult<AddKey> {
        shared!(self, store => store.add_key(client_id, key_id, key, now).await)
    }

    pub async fn revoke_key(
        &self,
        client_id: &ClientId,
        key_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        shared!(self, store => store.revoke_key(client_id, key_id, now).await)
    }

    pub async fn keys(&self, client_id: &ClientId) -> StoreResult<Vec<KeyRecord>> {
        shared!(self, store => store.keys(client_id).await)
    }

    pub async fn active_keys(&self, client_id: &ClientId) -> StoreResult<Vec<Vec<u8>>> {
        shared!(self, store => store.active_keys(client_id).await)
    }

    pub async fn start_session(
        &self,
        client_id: &ClientId,
        token: &TokenRow<'_>,
    ) -> StoreResult<bool> {
        shared!(self, store => store.start_session(client_id, token).await)
    }

    pub async fn session_state(&self, session_id: &str) -> StoreResult<Option<SessionState>> {
        shared!(self, store => store.session_state(session_id).await)
    }

    pub async fn refresh(
        &self,
        old_jti: &str,
        secret_version: i64,
        new: &TokenRow<'_>,
        grace: time::Duration,
    ) -> StoreResult<RefreshOutcome> {
        shared!(self, store => store.refresh(old_jti, secret_version, new, grace).await)
    }

    pub async fn order(&self, target: OrderRef<'_>) -> StoreResult<Option<Order>> {
        shared!(self, store => store.order(target).await)
    }

    pub async fn orders(&self, query: &OrderQuery) -> StoreResult<OrderPage> {
        shared!(self, store => store.orders(query).await)
    }

    pub async fn change_status(
        &self,
        target: OrderRef<'_>,
        change: StatusChange<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Transition> {
        shared!(self, store => store.change_status(target, change, now).await)
    }

    pub async fn amend(
        &self,
        client_id: &ClientId,
        id: &str,
        order: &NewOrder,
        if_version: Option<i64>,
        now: OffsetDateTime,
    ) -> StoreResult<Amend> {
        shared!(self, store => store.amend(client_id, id, order, if_version, now).await)
    }

    pub async fn history(&self, order_id: &str) -> StoreResult<Vec<OrderEvent>> {
        shared!(self, store => store.history(order_id).await)
    }

    pub async fn purge_idempotency_keys(&self, before: OffsetDateTime) -> StoreResult<u64> {
        shared!(self, store => store.purge_idempotency_keys(before).await)
    }

    pub async fn record_audit(&self, events: &[AuditEvent]) -> StoreResult<()> {
        shared!(self, store => store.record_audit(events).await)
    }

    pub async fn audit_events(
        &self,
        client_id: &ClientId,
        query: &AuditQuery<'_>,
    ) -> StoreResult<Vec<AuditEvent>> {
        shared!(self, store => store.audit_events(client_id, query).await)
    }

    pub async fn purge_audit(&self, before: OffsetDateTime) -> StoreResult<u64> {
        shared!(self, store => store.purge_audit(before).await)
    }

    pub fn subscribe(&self, client_id: &ClientId) -> Subscription {
        shared!(self, store => store.subscribe(client_id))
    }

    pub async fn events_after(
        &self,
        client_id: &ClientId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        shared!(self, store => store.events_after(client_id, after, limit).await)
    }

    pub async fn event(&self, client_id: &ClientId, id: &str) -> StoreResult<Option<Event>> {
        shared!(self, store => store.event(client_id, id).await)
    }

    pub async fn purge_order_events(&self, before: OffsetDateTime) -> StoreResult<u64> {
        shared!(self, store => store.purge_order_events(before).await)
    }

    pub async fn insert_endpoint(
        &self,
        endpoint: &NewEndpoint<'_>,
        max: usize,
    ) -> StoreResult<Option<EndpointRecord>> {
        shared!(self, store => store.insert_endpoint(endpoint, max).await)
    }

    pub async fn endpoints(&self, client_id: &ClientId) -> StoreResult<Vec<EndpointRecord>> {
        shared!(self, store => store.endpoints(client_id).await)
    }

    pub async fn endpoint(
        &self,
        client_id: Option<&ClientId>,
        id: &str,
    ) -> StoreResult<Option<EndpointRecord>> {
        shared!(self, store => store.endpoint(client_id, id).await)
    }

    pub async fn delete_endpoint(&self, client_id: &ClientId, id: &str) -> StoreResult<bool> {
        shared!(self, store => store.delete_endpoint(client_id, id).await)
    }

    pub async fn rotate_endpoint_secret(
        &self,
        client_id: &ClientId,
        id: &str,
        secret: &WebhookSecret,
        old_until: OffsetDateTime,
    ) -> StoreResult<Option<EndpointRecord>> {
        shared!(self, store => store.rotate_endpoint_secret(client_id, id, secret, old_until).await)
    }

    pub async fn set_endpoint_enabled(
        &self,
        client_id: Option<&ClientId>,
        id: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> StoreResult<bool> {
        shared!(self, store => store.set_endpoint_enabled(client_id, id, enabled, reason).await)
    }

    pub async fn enqueue_delivery(
        &self,
        endpoint_id: &str,
        event_id: &str,
        payload: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        shared!(self, store => store.enqueue_delivery(endpoint_id, event_id, payload, now).await)
    }

    pub async fn redeliver(&self, event_id: &str, now: OffsetDateTime) -> StoreResult<u64> {
        shared!(self, store => store.redeliver(event_id, now).await)
    }

    pub async fn dispatch(
        &self,
        now: OffsetDateTime,
        endpoints: u32,
        per_endpoint: u32,
    ) -> StoreResult<usize> {
        shared!(self, store => store.dispatch(now, endpoints, per_endpoint).await)
    }

    pub async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        busy_endpoints: &[String],
        busy_partners: &[String],
    ) -> StoreResult<Vec<Claimed>> {
        shared!(self, store => store.claim_deliveries(now, lease_until, limit, busy_endpoints, busy_partners).await)
    }

    pub async fn release_delivery(&self, delivery_id: i64, at: OffsetDateTime) -> StoreResult<()> {
        shared!(self, store => store.release_delivery(delivery_id, at).await)
    }

    pub async fn record_attempts(
        &self,
        attempts: &[Attempted<'_>],
    ) -> StoreResult<Vec<AfterAttempt>> {
        shared!(self, store => store.record_attempts(attempts).await)
    }

    pub async fn attempts(
        &self,
        endpoint_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryAttempt>> {
        shared!(self, store => store.attempts(endpoint_id, limit).await)
    }

    pub async fn purge_attempts(&self, before: OffsetDateTime) -> StoreResult<u64> {
        shared!(self, store => store.purge_attempts(before).await)
    }

    pub fn endpoints_generation(&self) -> u64 {
        shared!(self, store => store.endpoints_generation())
    }

    pub async fn any_enabled_endpoint(&self) -> Result<bool, StoreError> {
        shared!(self, store => store.any_enabled_endpoint().await)
    }

    /// Whether any event committed since the last call returned (see [`Wakeups::changed`]).
    pub fn any_event(&self) -> AnyEvent {
        shared!(self, store => store.any_event())
    }
}
