//! Inserts of many rows in one statement: the rows travel as one JSON
//! parameter, read back into rows by [`Dialect::json_rows`], so the
//! statement's text is the same for any number of rows and each database
//! prepares it once per connection.

use serde::Serialize;

use super::dialect::Dialect;
use super::error::{StoreError, StoreResult};

/// `INSERT INTO table (columns) SELECT columns FROM` the rows of the JSON
/// array bound as `$1` ([`Dialect::json_rows`]), then `tail`. A column
/// named `i` is read but not inserted: the row's place, for `ORDER BY i`.
pub fn insert_json_rows<D: Dialect>(table: &str, columns: &[(&str, &str)], tail: &str) -> String {
    let names: Vec<&str> = columns
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| *name != "i")
        .collect();
    let names = names.join(", ");
    // `WHERE true`: SQLite reads `ON CONFLICT` after a bare `FROM` item as
    // the start of a join.
    format!(
        "INSERT INTO {table} ({names}) SELECT {names} FROM {} WHERE true {tail}",
        D::json_rows(columns)
    )
}

/// The rows, as the JSON array a `json_rows` insert binds.
pub fn json<T: Serialize>(rows: &[T]) -> StoreResult<String> {
    serde_json::to_string(rows).map_err(|error| StoreError::Corrupt(error.to_string()))
}
