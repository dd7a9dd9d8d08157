//! Inserts of many rows in a statement or a few: the rows travel as one JSON
//! parameter, read back into rows by [`Dialect::json_rows`], so the
//! statement's text is the same for any number of rows and each database
//! prepares it once per connection.
//!
//! Table and column names are constants (`&'static str`), never input.
//!
//! On PostgreSQL the rows of one statement are kept under 12 KiB
//! ([`Dialect::MAX_BULK_JSON`]), a batch taking as many statements as
//! that needs. sqlx 0.9.0 does not set
//! `TCP_NODELAY` on its sockets (launchbadge/sqlx#4335, fixed upstream after
//! that release): a message it writes in more than one piece (over TLS, one
//! record per 16 KiB) waits for the server's delayed ACK of the first piece,
//! 40 ms on Linux. A 128-order batch paid that on each of its statements;
//! under the limit each statement goes out in one piece. SQLite has no
//! socket, and each statement costs a trip to its connection's thread, so
//! its limit is large.

use serde::Serialize;
use sqlx::{AssertSqlSafe, Transaction};

use super::dialect::{Bind, Dialect};
use super::error::{StoreError, StoreResult};

/// `INSERT INTO table (columns) SELECT columns FROM` the rows of the JSON
/// array bound as `$1` ([`Dialect::json_rows`]), then `tail`. A column
/// named `i` is read but not inserted: the row's place, for `ORDER BY i`.
pub fn insert_json_rows<D: Dialect>(
    table: &'static str,
    columns: &'static [(&'static str, &'static str)],
    tail: &'static str,
) -> String {
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

/// Runs `statement` (an [`insert_json_rows`] insert) for `rows`, in as many
/// statements as [`MAX_JSON`] needs, in order; the rows each returned.
pub async fn insert<D: Dialect, T: Serialize>(
    tx: &mut Transaction<'_, D>,
    statement: &str,
    rows: &[T],
) -> StoreResult<Vec<D::Row>> {
    let mut returned = Vec::new();
    for chunk in json_chunks(rows, D::MAX_BULK_JSON)? {
        let rows = sqlx::query::<D>(AssertSqlSafe(statement.to_owned()))
            .arg(chunk)
            .fetch_all(D::on(tx))
            .await?;
        returned.extend(rows);
    }
    Ok(returned)
}

/// `rows` as JSON arrays in order, each at most `max` bytes unless it
/// holds a single row that is larger.
pub(super) fn json_chunks<T: Serialize>(rows: &[T], max: usize) -> StoreResult<Vec<String>> {
    let mut chunks = Vec::new();
    let mut chunk = String::from("[");
    for row in rows {
        let row =
            serde_json::to_string(row).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        if chunk.len() > 1 && chunk.len() + row.len() + 2 > max {
            chunk.push(']');
            chunks.push(std::mem::replace(&mut chunk, String::from("[")));
        }
        if chunk.len() > 1 {
            chunk.push(',');
        }
        chunk.push_str(&row);
    }
    if chunk.len() > 1 {
        chunk.push(']');
        chunks.push(chunk);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_JSON: usize = <sqlx::Postgres as Dialect>::MAX_BULK_JSON;

    #[test]
    fn rows_are_split_in_order_into_arrays_under_the_limit() {
        let rows: Vec<String> = (0..1000).map(|i| format!("{i:0>40}")).collect();

        let chunks = json_chunks(&rows, MAX_JSON).unwrap();

        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|chunk| chunk.len() <= MAX_JSON));
        let back: Vec<String> = chunks
            .iter()
            .flat_map(|chunk| serde_json::from_str::<Vec<String>>(chunk).unwrap())
            .collect();
        assert_eq!(back, rows);
    }

    #[test]
    fn a_row_larger_than_the_limit_goes_alone_and_no_rows_make_no_statement() {
        let rows = ["a".repeat(MAX_JSON), "b".into(), "c".repeat(MAX_JSON)];

        let chunks = json_chunks(&rows, MAX_JSON).unwrap();

        assert_eq!(chunks.len(), 3);
        assert!(json_chunks::<String>(&[], MAX_JSON).unwrap().is_empty());
    }
}
