//! The one seam between the service and its database.
//!
//! Handlers and the CLI speak to `Store` in domain terms; SQL lives behind it.
//! SQLite is the embedded default, PostgreSQL the production store; both
//! implement the same methods with the same guarantees, and the scheme of the
//! database URL picks one.

pub mod postgres;
pub mod sqlite;

use time::OffsetDateTime;

use crate::config::DatabaseUrl;
use crate::domain::{
    Actor, ClientId, Decimal, NewOrder, Order, OrderEvent, OrderStatus, PublicKey,
};

/// Storage failures, split by what the caller should tell its client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is not answering in time (503).
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug or a corrupted row (500, logged, never shown).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let unavailable = match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => true,
            // PostgreSQL going away mid-session: connection exceptions (08),
            // insufficient resources (53), administrator shutdown (57P01-03).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
            }),
            _ => false,
        };
        if unavailable {
            Self::Unavailable(error)
        } else {
            Self::Database(error)
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct PartnerRecord {
    pub client_id: String,
    pub name: String,
    pub secret_hash: String,
    pub secret_version: i64,
    pub enabled: bool,
    /// Only v2 signatures (covering the body) are accepted.
    pub require_body_signature: bool,
    /// Requests per second on the sales-order routes: `None` the default, 0 off.
    pub rate_limit: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: String,
    pub client_id: String,
    pub spki_der: Vec<u8>,
    pub fingerprint: String,
    pub bits: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Partner settings an operator changes with `partner set`; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct PartnerSettings {
    pub require_body_signature: Option<bool>,
    /// Requests per second: `Some(None)` the default, `Some(Some(0))` off.
    pub rate_limit: Option<Option<i64>>,
}

/// A new partner with its first key.
pub struct NewPartner<'a> {
    pub client_id: &'a ClientId,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub key_id: &'a str,
    pub key: &'a PublicKey,
    pub now: i64,
}

/// What an API call needs to know about the token's login, read in one query.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub client_id: String,
    pub partner_enabled: bool,
    pub secret_version: i64,
    pub revoked: bool,
    pub require_body_signature: bool,
    pub rate_limit: Option<i64>,
}

/// A token being issued, by login or refresh.
#[derive(Debug, Clone)]
pub struct TokenRow<'a> {
    pub jti: &'a str,
    pub session_id: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    Refreshed,
    /// The presented token had already been refreshed: its session is now revoked.
    Reused,
    UnknownToken,
    SessionRevoked,
    PartnerDisabled,
    SecretRotated,
}

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

/// Which order: by id or by order number, within one partner's orders or
/// (for the operator) among all.
#[derive(Debug, Clone, Copy)]
pub struct OrderRef<'a> {
    pub client_id: Option<&'a str>,
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
    pub fn partner(client_id: &'a str, id: &'a str) -> Self {
        Self {
            client_id: Some(client_id),
            key: OrderKey::Id(id),
        }
    }

    /// Any order, by id or by order number, as an operator types it.
    pub fn operator(id_or_number: &'a str) -> Self {
        let key = match crate::domain::ids::parse_order_number(id_or_number) {
            Some(seq) => OrderKey::Number(seq),
            None => OrderKey::Id(id_or_number),
        };
        Self {
            client_id: None,
            key,
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
}

#[derive(Debug, Clone)]
pub enum Transition {
    Changed(Box<Order>),
    NotFound,
    /// The state machine has no move from `current` to the requested status.
    Refused {
        current: OrderStatus,
    },
}

/// Which orders to read, one page at a time.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    /// One partner's orders; `None` only for the operator.
    pub client_id: Option<String>,
    pub purchase_order_no: Option<String>,
    pub status: Option<OrderStatus>,
    /// Created at or after this instant.
    pub created_from: Option<OffsetDateTime>,
    /// Created before this instant.
    pub created_to: Option<OffsetDateTime>,
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

/// One security-relevant event, as recorded and as `partner activity` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    /// RFC 3339, UTC.
    pub at: String,
    pub client_id: Option<String>,
    pub kind: crate::domain::AuditKind,
    /// The error code answered, when there was one.
    pub code: Option<String>,
    pub reason: Option<String>,
    /// The caller's address.
    pub source: Option<String>,
    pub request_id: Option<String>,
    /// `partner` (an API call) or `operator:NAME` (a CLI change).
    pub actor: String,
}

/// Outcome of registering an additional key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddKey {
    Added,
    NoSuchPartner,
    Duplicate { key_id: String },
}

/// The database behind the service, chosen by the URL's scheme.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Forwards each listed method to the backend in use.
macro_rules! delegate {
    ($($(#[$doc:meta])* pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(
            $(#[$doc])*
            pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                match self {
                    Self::Sqlite(store) => store.$name($($arg),*).await,
                    Self::Postgres(store) => store.$name($($arg),*).await,
                }
            }
        )*
    };
}

impl Store {
    /// Opens the database at a `sqlite://PATH` or `postgres://…` URL with at
    /// most `max_connections` connections (SQLite: readers; it has one writer).
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Self> {
        let scheme = url.expose().split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite(
                sqlite::SqliteStore::connect(url.expose(), max_connections).await?,
            )),
            "postgres" | "postgresql" => Ok(Self::Postgres(
                postgres::PgStore::connect(url.expose(), max_connections).await?,
            )),
            _ => anyhow::bail!(
                "unsupported database URL {url} (expected sqlite://PATH or postgres://USER@HOST/DB)"
            ),
        }
    }

    /// SQLite: caps how many concurrent order inserts share one commit (1
    /// commits each alone). PostgreSQL groups commits itself.
    pub fn set_sqlite_max_batch(&self, max_batch: usize) {
        if let Self::Sqlite(store) = self {
            store.set_max_batch(max_batch);
        }
    }

    delegate! {
        /// Applies the embedded migrations. On PostgreSQL an advisory lock makes
        /// this safe when several instances start at once.
        pub async fn migrate(&self) -> anyhow::Result<()>;
        pub async fn ping(&self) -> StoreResult<()>;
        /// The HS256 signing key: the stored one, or `candidate` if none is stored
        /// yet. Racing first starts agree on whichever key was written first.
        pub async fn jwt_key(&self, candidate: &[u8]) -> StoreResult<Vec<u8>>;
        /// Registers a partner and its first key; `false` when the client id is taken.
        pub async fn insert_partner(&self, partner: &NewPartner<'_>) -> StoreResult<bool>;
        pub async fn partner(&self, client_id: &str) -> StoreResult<Option<PartnerRecord>>;
        pub async fn partners(&self) -> StoreResult<Vec<PartnerRecord>>;
        /// `false` when there is no such partner.
        pub async fn set_partner_enabled(&self, client_id: &str, enabled: bool, now: i64) -> StoreResult<bool>;
        /// Ends every login of the partner (disable does too).
        pub async fn revoke_sessions(&self, client_id: &str, reason: &str, now: i64) -> StoreResult<u64>;
        /// Records a v2 signature's digest until `expires_at`; `false` for a replay.
        pub async fn remember_signature(&self, client_id: &str, digest: &[u8], now: i64, expires_at: i64) -> StoreResult<bool>;
        /// Forgets signature digests whose window has passed.
        pub async fn purge_signatures(&self, now: i64) -> StoreResult<u64>;
        /// Changes the given settings of a partner in one statement. `false`
        /// when there is no such partner.
        pub async fn update_partner(&self, client_id: &str, settings: &PartnerSettings, now: i64) -> StoreResult<bool>;
        /// Replaces the secret hash and bumps its version, which invalidates every
        /// token issued under the old secret. `false` when there is no such partner.
        pub async fn rotate_secret(&self, client_id: &str, secret_hash: &str, now: i64) -> StoreResult<bool>;
        pub async fn add_key(&self, client_id: &str, key_id: &str, key: &PublicKey, now: i64) -> StoreResult<AddKey>;
        /// `false` when the partner has no such active key.
        pub async fn revoke_key(&self, client_id: &str, key_id: &str, now: i64) -> StoreResult<bool>;
        pub async fn keys(&self, client_id: &str) -> StoreResult<Vec<KeyRecord>>;
        /// SPKI DER of each active key, for signature checks.
        pub async fn active_keys(&self, client_id: &str) -> StoreResult<Vec<Vec<u8>>>;
        /// `false` when the partner is disabled by now.
        pub async fn start_session(&self, client_id: &str, token: &TokenRow<'_>) -> StoreResult<bool>;
        pub async fn session_state(&self, session_id: &str) -> StoreResult<Option<SessionState>>;
        /// Exchanges token `old_jti` for `new`, at most once, whichever instance
        /// asks. A second attempt on the same token is reuse: the whole session is
        /// revoked (RFC 9700 §4.14.2).
        pub async fn refresh(&self, old_jti: &str, secret_version: i64, new: &TokenRow<'_>) -> StoreResult<RefreshOutcome>;
        /// Stores an order, its lines, its first history entry and its
        /// Idempotency-Key in one transaction; returns once committed. Requests
        /// with the same key are served one at a time, across instances.
        pub async fn insert_order(&self, client_id: &str, order: NewOrder, idempotency: Option<Idempotency<'_>>, now: OffsetDateTime) -> StoreResult<InsertOrder>;
        pub async fn order(&self, target: OrderRef<'_>) -> StoreResult<Option<Order>>;
        /// One page of orders, in `seq` order.
        pub async fn orders(&self, query: &OrderQuery) -> StoreResult<OrderPage>;
        /// Moves an order to another status if the state machine allows it from
        /// the status it has when the change is applied: of two racing changes,
        /// the second sees the first's result.
        pub async fn change_status(&self, target: OrderRef<'_>, change: StatusChange<'_>, now: OffsetDateTime) -> StoreResult<Transition>;
        /// The order's creation and status changes, oldest first.
        pub async fn history(&self, order_id: &str) -> StoreResult<Vec<OrderEvent>>;
        /// Stores a batch of events in one transaction.
        pub async fn record_events(&self, events: &[AuditEvent]) -> StoreResult<()>;
        /// A partner's events, newest first, at or after `since` (RFC 3339).
        pub async fn events(&self, client_id: &str, since: Option<OffsetDateTime>, limit: u32) -> StoreResult<Vec<AuditEvent>>;
        /// Forgets events older than `before`.
        pub async fn purge_events(&self, before: OffsetDateTime) -> StoreResult<u64>;
        /// Forgets Idempotency-Keys created before `before` (unix seconds).
        pub async fn purge_idempotency_keys(&self, before: i64) -> StoreResult<u64>;
    }
}

/// Order times are kept to the millisecond, the precision the API shows, so
/// the 201 body and every later read agree on both stores.
fn to_millis(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(u32::from(at.millisecond()) * 1_000_000)
        .unwrap_or(at)
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T08:27:49.024Z`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

fn parse_decimal(text: &str) -> StoreResult<Decimal> {
    Decimal::parse_stored(text).ok_or_else(|| StoreError::Corrupt(format!("bad decimal {text:?}")))
}

fn parse_actor(text: &str) -> StoreResult<Actor> {
    Actor::parse(text).ok_or_else(|| StoreError::Corrupt(format!("bad actor {text:?}")))
}

fn parse_audit_kind(text: &str) -> StoreResult<crate::domain::AuditKind> {
    crate::domain::AuditKind::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("bad audit event kind {text:?}")))
}

fn parse_status(text: &str) -> StoreResult<OrderStatus> {
    OrderStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("bad status {text:?}")))
}
