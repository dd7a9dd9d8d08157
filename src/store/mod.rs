//! The one seam between the service and its database.
//!
//! Handlers and the CLI speak to `Store` in domain terms; SQL lives behind it.
//! SQLite is the embedded default; PostgreSQL is to slot in behind the same
//! methods, so handlers never change with the backend.

pub mod sqlite;

pub use sqlite::{AddKey, Store};

use crate::domain::ClientId;

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
        match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Self::Unavailable(error),
            _ => Self::Database(error),
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

/// A new partner with its first key.
pub struct NewPartner<'a> {
    pub client_id: &'a ClientId,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub key_id: &'a str,
    pub key: &'a crate::domain::PublicKey,
    pub now: i64,
}

/// What an API call needs to know about the token's login, read in one query.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub client_id: String,
    pub partner_enabled: bool,
    pub secret_version: i64,
    pub revoked: bool,
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
    Created(Box<crate::domain::Order>),
    DuplicatePurchaseOrder { existing_id: String },
}

/// Which page of a partner's orders to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    pub purchase_order_no: Option<String>,
    /// Only orders older than this position (from the previous page's cursor).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// A page of orders, each with its position for the next cursor.
pub struct OrderPage {
    pub orders: Vec<crate::domain::Order>,
    pub next_before_seq: Option<i64>,
}
