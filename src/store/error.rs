//! What can go wrong below the store, sorted by what the caller should answer.

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
            // insufficient resources (53), administrator shutdown (57P01-03);
            // and a transaction chosen to end a deadlock or a serialization
            // conflict (40P01, 40001), which the same request sent again gets past.
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "40P01"
                    || code == "40001"
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

impl StoreError {
    /// A purchase order number taken and freed again by other transactions
    /// while this one looked, several times over: transient, so 503.
    pub fn contended() -> Self {
        Self::Unavailable(sqlx::Error::Protocol(
            "a purchase order number kept changing hands; retry".into(),
        ))
    }

    /// An order changed between every read of its row and of its lines.
    pub fn changing() -> Self {
        Self::Unavailable(sqlx::Error::Protocol(
            "an order kept changing while it was read; retry".into(),
        ))
    }

    /// The same kind of failure, for another caller that waited on the work
    /// that failed (sqlx's errors cannot be cloned); `what` names that work.
    pub fn same_kind(&self, what: &str) -> Self {
        let message = format!("{what} failed: {self}");
        match self {
            Self::Unavailable(_) => {
                Self::Unavailable(sqlx::Error::Io(std::io::Error::other(message)))
            }
            Self::Database(_) => Self::Database(sqlx::Error::Protocol(message)),
            Self::Corrupt(_) => Self::Corrupt(message),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
