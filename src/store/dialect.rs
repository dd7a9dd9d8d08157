//! Everything that differs between SQLite and PostgreSQL, in one place.
//!
//! The store's queries are written once, generic over [`Dialect`], with `$N`
//! placeholders (both drivers bind them by number). What is left is small and
//! listed here:
//! - **opening and committing a transaction**: SQLite writes through one
//!   connection with `BEGIN IMMEDIATE`, so this process's writers queue
//!   instead of failing "database is locked"; PostgreSQL runs `BEGIN` and
//!   `COMMIT` detached from the caller, because sqlx 0.9 cannot cancel them
//!   safely (launchbadge/sqlx#4393);
//! - **row locks** (`FOR UPDATE`, `FOR SHARE`): PostgreSQL needs them to make
//!   racing transactions on several instances take turns; SQLite has no such
//!   clause and needs none, its one writer already serialises every write;
//! - **the Idempotency-Key lock**: a transaction-scoped advisory lock on
//!   PostgreSQL, nothing on SQLite (the one writer again);
//! - **rows from one JSON parameter**, for inserts of many rows: SQLite's
//!   `jsonb_each`, PostgreSQL's `json_to_recordset`.
//!
//! Why a trait over [`sqlx::Database`] rather than `sqlx::Any` or a macro:
//! `Any` would bind times and decimals as text and convert every row, and a
//! macro hides the code from the compiler's and the reader's navigation.
//! Rust does not carry `where` clauses of a trait to its users, so the bounds
//! the shared code needs ("this type can be bound on this database") are
//! stated once, as [`Value`] and [`Column`] naming both databases, and the
//! few driver calls that need them go through this trait's methods.

use std::fmt::Display;

use sqlx::query::Query;
use sqlx::query_builder::Separated;
use sqlx::{
    Database, Decode, Encode, Executor, IntoArguments, Pool, Postgres, QueryBuilder, Row, Sqlite,
    Transaction, Type,
};

use super::error::{StoreError, StoreResult};
use crate::domain::ClientId;

/// A value the shared queries can bind on either database.
pub trait Value<'t>:
    Encode<'t, Sqlite> + Type<Sqlite> + Encode<'t, Postgres> + Type<Postgres>
{
}

impl<'t, T> Value<'t> for T where
    T: Encode<'t, Sqlite> + Type<Sqlite> + Encode<'t, Postgres> + Type<Postgres>
{
}

/// A column type the shared queries can read on either database.
pub trait Column<'r>:
    Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>
{
}

impl<'r, T> Column<'r> for T where
    T: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>
{
}

/// How many rows a statement changed, on either database.
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

/// One database's side of the store. Implemented for [`Sqlite`] and [`Postgres`].
pub trait Dialect:
    Database<Arguments: IntoArguments<Self> + Default, QueryResult: RowsAffected> + Sync
{
    /// `clause` (a row lock such as `FOR UPDATE`) where the database has row
    /// locks; nothing where one writer already serialises every write.
    fn lock(clause: &'static str) -> &'static str;

    /// The statement that opens a write transaction.
    const BEGIN: &'static str;

    /// Whether other instances share the database and must be told, once a
    /// transaction commits, that a partner's events grew (PostgreSQL's
    /// `NOTIFY`). SQLite is one process's file. Where true, events are
    /// written with PostgreSQL's SQL: an `INSERT` inside `WITH`, `pg_notify`.
    const ANNOUNCES: bool;

    /// Opens a write transaction on `pool`.
    fn begin(
        pool: &Pool<Self>,
    ) -> impl Future<Output = StoreResult<Transaction<'static, Self>>> + Send;

    fn commit(tx: Transaction<'static, Self>) -> impl Future<Output = StoreResult<()>> + Send;

    /// Makes transactions that use the same Idempotency-Key take turns until
    /// this one ends.
    fn lock_idempotency_key(
        tx: &mut Transaction<'_, Self>,
        client_id: &ClientId,
        key: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// A `FROM` item named `r` over the rows of a JSON array of objects
    /// bound as `$1`, with a column per `(name, type)` (PostgreSQL's type
    /// name; SQLite stores what the JSON holds). An insert of many rows
    /// written this way is the same statement for any number of rows, so it
    /// is prepared once, where a `VALUES` list is a new statement, parsed
    /// and planned again, for each count, and slower to plan the longer it is.
    fn json_rows(columns: &[(&str, &str)]) -> String;

    /// The most JSON one bulk statement binds ([`super::bulk`]).
    const MAX_BULK_JSON: usize;

    // The driver calls below are the identity on both databases; they exist
    // so generic code can name the bounds each database satisfies.

    fn on<'c>(connection: &'c mut Self::Connection) -> impl Executor<'c, Database = Self>;

    fn pool<'p>(pool: &'p Pool<Self>) -> impl Executor<'p, Database = Self>;

    fn bind<'q, 't, T: Value<'t>>(
        query: Query<'q, Self, Self::Arguments>,
        value: T,
    ) -> Query<'q, Self, Self::Arguments>;

    fn push_bind<'t, T: Value<'t>>(builder: &mut QueryBuilder<Self>, value: T);

    fn push_separated<'t, T: Value<'t>, S: Display>(values: &mut Separated<'_, Self, S>, value: T);

    fn get<'r, T: Column<'r>>(row: &'r Self::Row, column: &str) -> Result<T, sqlx::Error>;
}

/// The driver calls of [`Dialect`], the identity on both databases: each
/// impl names its own database, which is what lets generic code use them.
macro_rules! bridge {
    () => {
        fn on<'c>(connection: &'c mut Self::Connection) -> impl Executor<'c, Database = Self> {
            connection
        }

        fn pool<'p>(pool: &'p Pool<Self>) -> impl Executor<'p, Database = Self> {
            pool
        }

        fn bind<'q, 't, T: Value<'t>>(
            query: Query<'q, Self, Self::Arguments>,
            value: T,
        ) -> Query<'q, Self, Self::Arguments> {
            query.bind(value)
        }

        fn push_bind<'t, T: Value<'t>>(builder: &mut QueryBuilder<Self>, value: T) {
            builder.push_bind(value);
        }

        fn push_separated<'t, T: Value<'t>, S: Display>(
            values: &mut Separated<'_, Self, S>,
            value: T,
        ) {
            values.push_bind(value);
        }

        fn get<'r, T: Column<'r>>(row: &'r Self::Row, column: &str) -> Result<T, sqlx::Error> {
            row.try_get(column)
        }
    };
}

impl Dialect for Sqlite {
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const ANNOUNCES: bool = false;
    const MAX_BULK_JSON: usize = 1024 * 1024;

    fn lock(_clause: &'static str) -> &'static str {
        ""
    }

    async fn begin(pool: &Pool<Self>) -> StoreResult<Transaction<'static, Self>> {
        Ok(pool.begin_with(Self::BEGIN).await?)
    }

    async fn commit(tx: Transaction<'static, Self>) -> StoreResult<()> {
        Ok(tx.commit().await?)
    }

    async fn lock_idempotency_key(
        _tx: &mut Transaction<'_, Self>,
        _client_id: &ClientId,
        _key: &str,
    ) -> StoreResult<()> {
        Ok(())
    }

    fn json_rows(columns: &[(&str, &str)]) -> String {
        let fields: Vec<String> = columns
            .iter()
            .map(|(name, _)| format!("value ->> '{name}' AS {name}"))
            .collect();
        // jsonb_each: each row's object is handed on in SQLite's binary
        // form, which `->>` reads as it is; json_each hands on text, which
        // every `->>` would parse again.
        format!("(SELECT {} FROM jsonb_each($1)) AS r", fields.join(", "))
    }

    bridge!();
}

impl Dialect for Postgres {
    const BEGIN: &'static str = "BEGIN";
    const ANNOUNCES: bool = true;
    /// Under a TLS record (16 KiB) with room for the statement's text and
    /// the protocol's framing (see `bulk` for why).
    const MAX_BULK_JSON: usize = 12 * 1024;

    fn lock(clause: &'static str) -> &'static str {
        clause
    }

    /// Detached: a caller dropped between sending `BEGIN` and reading its
    /// answer (a client hanging up) would hand the connection back to the
    /// pool still inside a transaction, where the next borrower's statements
    /// would run. Detached, the `BEGIN` always finishes, and if nobody is
    /// left to take the transaction, dropping it rolls it back.
    async fn begin(pool: &Pool<Self>) -> StoreResult<Transaction<'static, Self>> {
        let pool = pool.clone();
        detached(async move { pool.begin().await }).await
    }

    /// Commits whether or not the caller is still waiting: a `COMMIT` cut off
    /// after it was sent would otherwise be followed by a stray `ROLLBACK`,
    /// and the caller could not know which one won.
    async fn commit(tx: Transaction<'static, Self>) -> StoreResult<()> {
        detached(tx.commit()).await
    }

    async fn lock_idempotency_key(
        tx: &mut Transaction<'_, Self>,
        client_id: &ClientId,
        key: &str,
    ) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 0))")
            .bind(client_id)
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    fn json_rows(columns: &[(&str, &str)]) -> String {
        let fields: Vec<String> = columns
            .iter()
            .map(|(name, kind)| format!("{name} {kind}"))
            .collect();
        format!(
            "json_to_recordset(CAST($1 AS json)) AS r({})",
            fields.join(", ")
        )
    }

    bridge!();
}

/// Runs `work` in a task of its own, so that it finishes even if the caller
/// is dropped.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> StoreResult<T> {
    match tokio::spawn(work).await {
        Ok(result) => Ok(result?),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Only when the runtime is shutting down.
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
    }
}

/// `.arg(value)` on a query of any dialect, as `.bind(value)` is on one.
pub trait Bind<'t> {
    fn arg<T: Value<'t>>(self, value: T) -> Self;
}

impl<'q, 't, D: Dialect> Bind<'t> for Query<'q, D, D::Arguments> {
    fn arg<T: Value<'t>>(self, value: T) -> Self {
        D::bind(self, value)
    }
}

/// `.arg(value)` on a query builder of any dialect.
pub trait PushBind<'t> {
    fn arg<T: Value<'t>>(&mut self, value: T) -> &mut Self;
}

impl<'t, D: Dialect> PushBind<'t> for QueryBuilder<D> {
    fn arg<T: Value<'t>>(&mut self, value: T) -> &mut Self {
        D::push_bind(self, value);
        self
    }
}

impl<'t, D: Dialect, S: Display> PushBind<'t> for Separated<'_, D, S> {
    fn arg<T: Value<'t>>(&mut self, value: T) -> &mut Self {
        D::push_separated(self, value);
        self
    }
}
