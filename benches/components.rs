//! Criterion benchmarks of each part of a signed create, for the CPU floor in
//! BENCHMARKS.md: JWT verify, RSA-2048 and RSA-4096 signature verify, body
//! parse and validation (1 and 50 lines), and the store's insert: SQLite's,
//! PostgreSQL's (with `BENCH_PG_SERVER`), and SQLite's without each
//! secondary index; a statement's round trip to SQLite's connection
//! thread; and SQLite's own work for an order's rows, without the store.
//!
//!     cargo bench --bench components

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sales_order_api::auth::jwt::{Claims, TokenKeys};
use sales_order_api::auth::signature;
use sales_order_api::config::DatabaseUrl;
use sales_order_api::domain::{ClientId, Code, NewOrder, PublicKey, TextField};
use sales_order_api::store::{NewPartner, Store};
use sqlx::Connection;

/// The server's allocator (`src/main.rs`), so each part costs here what it
/// costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn jwt_verify(c: &mut Criterion) {
    let keys = TokenKeys::new(&[7u8; 32], std::time::Duration::from_secs(12 * 3600));
    let claims = Claims {
        sub: "versuni-client-001".into(),
        client_id: "versuni-client-001".into(),
        iat: 1_800_000_000,
        exp: 1_800_043_200,
        jti: "tok_0123456789abcdef".into(),
        sid: "ses_0123456789abcdef".into(),
        auth_time: 1_800_000_000,
        secret_version: 1,
    };
    let token = keys.issue(&claims).unwrap();
    c.bench_function("jwt_verify_hs256", |b| {
        b.iter(|| {
            let claims = keys.decode(black_box(&token)).unwrap();
            assert!(!claims.is_expired_at(1_800_000_001));
            claims
        })
    });
}

/// A key pair of `bits`, its public key as stored, and a v1 signature.
fn signed(bits: KeySize) -> (Vec<u8>, String, String) {
    let pair = KeyPair::generate(bits).unwrap();
    let public = PublicKey::from_der(pair.public_key().as_ref()).unwrap();
    let message = signature::string_to_sign("versuni-client-001", "1800000000");
    let mut raw = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        message.as_bytes(),
        &mut raw,
    )
    .unwrap();
    (public.spki_der().to_vec(), message, STANDARD.encode(raw))
}

fn rsa_verify(c: &mut Criterion) {
    for (name, bits) in [
        ("rsa2048_verify", KeySize::Rsa2048),
        ("rsa4096_verify", KeySize::Rsa4096),
    ] {
        let (key, message, sig) = signed(bits);
        let keys = signature::parse_keys([key.as_slice()]);
        c.bench_function(name, |b| {
            b.iter(|| signature::verify(&keys, black_box(&message), black_box(&sig)).unwrap())
        });
    }
}

fn order_body(lines: usize) -> Vec<u8> {
    let products: Vec<_> = (0..lines)
        .map(|i| {
            serde_json::json!({
                "product_code": format!("PRD-{i:04}"),
                "quantity": 2,
                "uom": "PCS",
                "unit_price": "150000.5",
                "notes": "deliver before noon",
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "customer_code": "CUST-001",
        "site_code": "SITE-001",
        "sales_name": "John Doe",
        "address": "Jl. Sudirman No. 1, Jakarta",
        "purchase_order_no": "PO-2026-00001",
        "products": products,
    }))
    .unwrap()
}

fn parse_and_validate(c: &mut Criterion) {
    for lines in [1, 50] {
        let body = order_body(lines);
        c.bench_function(&format!("order_parse_validate_{lines}_lines"), |b| {
            b.iter(|| {
                sales_order_api::http::order_body::parse(black_box(&body), &Default::default())
                    .unwrap()
            })
        });
    }
}

/// The bench partner's client id.
const BENCH_CLIENT: &str = "bench-client";

/// The store at `url`, migrated, holding the bench partner.
fn store_at(runtime: &tokio::runtime::Runtime, url: &str) -> Store {
    runtime.block_on(async {
        let store = Store::connect(&DatabaseUrl::new(url.to_owned()), 4)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let pem = std::fs::read("tests/fixtures/keys/partner-b-public.pem").unwrap();
        let key = PublicKey::from_pem(&pem).unwrap();
        let client_id = ClientId::parse(BENCH_CLIENT).unwrap();
        store
            .insert_partner(&NewPartner {
                client_id: &client_id,
                name: "Bench",
                secret_hash: "unused",
                key_id: "key_bench",
                key: &key,
                sandbox: false,
                now: time::OffsetDateTime::UNIX_EPOCH,
            })
            .await
            .unwrap();
        store
    })
}

/// A fresh SQLite store (see [`store_at`]), after `alter`: SQL run on the
/// migrated database, to measure what a part of the schema costs.
fn sqlite_store(runtime: &tokio::runtime::Runtime, alter: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = store_at(runtime, &url);
    if !alter.is_empty() {
        runtime.block_on(async {
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(alter.to_owned()))
                .execute(&mut connection)
                .await
                .unwrap();
        });
    }
    (dir, store)
}

/// `count` one-line orders with purchase order numbers not used before.
fn orders(template: &NewOrder, next: &mut u64, count: usize) -> Vec<NewOrder> {
    (0..count)
        .map(|_| {
            *next += 1;
            let mut order = template.clone();
            order.purchase_order_no = Code::parse(&format!("PO-{next}")).unwrap();
            order
        })
        .collect()
}

/// Inserts `orders` at once, each in a task of its own, as concurrent
/// requests do, and waits for all of them.
async fn insert_concurrently(store: &Store, orders: Vec<NewOrder>) {
    let inserts = orders.into_iter().map(|order| {
        let store = store.clone();
        tokio::spawn(async move { insert(&store, order).await })
    });
    for insert in inserts.collect::<Vec<_>>() {
        insert.await.unwrap();
    }
}

/// 256 inserts at once, as under load: group commit writes them in a few
/// transactions with a commit each. Time per iteration / 256 = cost per order.
fn insert_256_concurrent(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    store: &Store,
) {
    let template =
        sales_order_api::http::order_body::parse(&order_body(1), &Default::default()).unwrap();
    let mut next = 0u64;
    c.bench_function(name, |b| {
        b.to_async(runtime).iter_batched(
            || orders(&template, &mut next, 256),
            |orders| {
                let store = store.clone();
                async move { insert_concurrently(&store, orders).await }
            },
            BatchSize::SmallInput,
        )
    });
}

fn store_insert(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_dir, store) = sqlite_store(&runtime, "");
    let template =
        sales_order_api::http::order_body::parse(&order_body(1), &Default::default()).unwrap();
    let mut next = 0u64;
    // One durable insert, alone: the per-order cost without group commit.
    c.bench_function("sqlite_insert_order_1_line", |b| {
        b.to_async(&runtime).iter_batched(
            || orders(&template, &mut next, 1).remove(0),
            |order| {
                let store = store.clone();
                async move { insert(&store, order).await }
            },
            BatchSize::SmallInput,
        )
    });
    insert_256_concurrent(c, &runtime, "sqlite_insert_256_concurrent_orders", &store);
}

/// A statement that does no work, on a connection of its own to the store's
/// database file: at most what each statement of a group commit pays to
/// reach SQLite's connection thread (sqlx runs each connection on a thread
/// of its own) and come back, before any work. Both threads sleep between
/// trips here, so each trip wakes two; a busy writer's may cost less.
fn sqlite_round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dir, _store) = sqlite_store(&runtime, "");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut connection = runtime
        .block_on(sqlx::SqliteConnection::connect(&url))
        .unwrap();
    c.bench_function("sqlite_statement_round_trip", |b| {
        b.iter(|| {
            runtime.block_on(async {
                sqlx::query("SELECT 1")
                    .execute(&mut connection)
                    .await
                    .unwrap()
            })
        })
    });
}

/// The four tables a creation inserts into, children first.
const CREATION_TABLES: [&str; 4] = [
    "sales_order_lines",
    "sales_order_history",
    "order_events",
    "sales_orders",
];

/// Orders an iteration of [`sqlite_engine`] inserts.
const ENGINE_ORDERS: i64 = 256;

/// SQLite's own work for the rows of 256 one-line orders, without the
/// store: the rows the store wrote (order, line, history entry, event) and
/// the partner's event number, in the same schema, committed with the
/// store's durability, as one query of seven statements sent in one trip.
/// Rows are copied from in-memory copies of the store's first 256, with new
/// numbers, ids and purchase order numbers (counted on, as [`orders`]
/// counts them), and ids and times that keep growing as real ones do. What
/// this costs is what SQLite charges for the schema at 256 orders a commit;
/// what `sqlite_insert_256_concurrent_orders` costs beyond it is the
/// store's (the rows' JSON, the writer, the callers, the trips). Variants:
/// the rows sent as the store sends them; without the indexes that only
/// serve reads (each serves a list filter or the history); and bare tables
/// (`CREATE TABLE … AS SELECT`: no key, index, foreign key, `NOT NULL`,
/// `CHECK` or `AUTOINCREMENT`).
fn sqlite_engine(c: &mut Criterion) {
    let secondary = [
        "sales_orders_client_po",
        "sales_orders_client_seq",
        "sales_orders_client_status_seq",
        "sales_orders_client_created",
        "sales_orders_client_updated",
        "sales_order_history_order",
    ]
    .map(|index| format!("DROP INDEX {index};"))
    .join(" ");
    // Foreign keys off: other tables' keys name these tables' columns,
    // which bare tables no longer hold unique.
    let bare = std::iter::once("PRAGMA foreign_keys = OFF;".to_owned())
        .chain(CREATION_TABLES.map(|table| {
            format!(
                "CREATE TABLE bare AS SELECT * FROM {table}; DROP TABLE {table}; \
                 ALTER TABLE bare RENAME TO {table};"
            )
        }))
        .collect::<Vec<_>>()
        .join(" ");
    for (name, alter, source) in [
        ("", String::new(), Source::Copied),
        ("_rows_as_json", String::new(), Source::Json),
        ("_rows_as_json_arrays", String::new(), Source::JsonArrays),
        ("_without_secondary_indexes", secondary, Source::Copied),
        ("_bare_rows", bare, Source::Copied),
    ] {
        sqlite_engine_on(
            c,
            &format!("sqlite_engine_256_orders{name}"),
            &alter,
            source,
        );
    }
}

/// Where [`sqlite_engine`]'s statements read the rows they insert.
enum Source {
    /// In-memory tables, copied from the store's first rows.
    Copied,
    /// A JSON array per table bound to the statement and read back with
    /// `jsonb_each` and `->>`, as the store sends rows (`store::dialect`).
    Json,
    /// The same with each row an array, read by position (`value ->> 3`)
    /// instead of by name.
    JsonArrays,
}

/// [`sqlite_engine`] on a database altered by `alter` after the store wrote
/// its first 256 orders, reading its rows from `source`.
fn sqlite_engine_on(c: &mut Criterion, name: &str, alter: &str, source: Source) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dir, store) = sqlite_store(&runtime, "");
    let template =
        sales_order_api::http::order_body::parse(&order_body(1), &Default::default()).unwrap();
    let mut next = 0u64;
    let first = orders(&template, &mut next, ENGINE_ORDERS as usize);
    runtime.block_on(insert_concurrently(&store, first));
    drop(store);
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("bench.db"))
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
        .foreign_keys(true)
        .pragma("temp_store", "2");
    let mut connection = runtime
        .block_on(sqlx::SqliteConnection::connect_with(&options))
        .unwrap();
    // The new numbers below are the first ones shifted by a round's orders:
    // they must be 1 to 256 for no round to meet another's.
    let numbered: (i64, i64, i64, i64) = runtime
        .block_on(
            sqlx::query_as(
                "SELECT (SELECT min(seq) FROM sales_orders), (SELECT max(seq) FROM sales_orders), \
                        (SELECT min(sequence) FROM order_events), \
                        (SELECT max(sequence) FROM order_events)",
            )
            .fetch_one(&mut connection),
        )
        .unwrap();
    assert_eq!(numbered, (1, ENGINE_ORDERS, 1, ENGINE_ORDERS));
    let mut run = |statement: String| {
        runtime
            .block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut connection))
            .unwrap();
    };
    if !alter.is_empty() {
        run(alter.to_owned());
    }
    for table in CREATION_TABLES {
        run(format!(
            "CREATE TEMP TABLE template_{table} AS SELECT * FROM main.{table}"
        ));
    }
    // $1: what each number grows by; $2: 12 hex digits of milliseconds
    // above every id so far; $3: the rows' time; from $4, with
    // `Source::Json` or `Source::JsonArrays`, each table's rows.
    let fresh = |table: &str, column: &str| -> String {
        match (table, column) {
            ("sales_orders", "seq")
            | ("sales_order_lines" | "sales_order_history", "order_seq")
            | ("order_events", "sequence") => format!("{column} + $1"),
            ("sales_order_history", "id") => "NULL".into(),
            ("sales_orders", "id") => "'so_' || $2 || substr(id, 16)".into(),
            ("order_events", "id") => "'evt_' || $2 || substr(id, 17)".into(),
            ("sales_orders", "purchase_order_no") => "'PO-' || (seq + $1)".into(),
            ("sales_orders" | "order_events", "created_at" | "updated_at")
            | ("sales_order_history", "at") => "$3".into(),
            _ => column.into(),
        }
    };
    let mut statement = String::from("BEGIN IMMEDIATE;\n");
    let mut rows_json = Vec::new();
    // Per table, the columns copied as they are: every row inserted must
    // match a row of the first 256 in them (checked after the bench).
    let mut copied = Vec::new();
    for table in CREATION_TABLES.iter().rev() {
        let columns: Vec<String> = runtime
            .block_on(
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
                )))
                .fetch_all(&mut connection),
            )
            .unwrap();
        let values: Vec<String> = columns.iter().map(|column| fresh(table, column)).collect();
        let kept: Vec<&str> = columns
            .iter()
            .map(String::as_str)
            .filter(|column| fresh(table, column) == *column)
            .collect();
        copied.push((*table, kept.join(", ")));
        let rows_from = match source {
            Source::Copied => format!("template_{table}"),
            Source::Json | Source::JsonArrays => {
                let by_name = matches!(source, Source::Json);
                // Per column: what the row's JSON holds, and how it is read back.
                let (written, read): (Vec<String>, Vec<String>) = columns
                    .iter()
                    .enumerate()
                    .map(|(position, column)| {
                        if by_name {
                            (
                                format!("'{column}', {column}"),
                                format!("value ->> '{column}' AS {column}"),
                            )
                        } else {
                            (column.clone(), format!("value ->> {position} AS {column}"))
                        }
                    })
                    .unzip();
                let row = if by_name { "json_object" } else { "json_array" };
                rows_json.push(
                    runtime
                        .block_on(
                            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
                                "SELECT json_group_array({row}({})) FROM template_{table}",
                                written.join(", ")
                            )))
                            .fetch_one(&mut connection),
                        )
                        .unwrap(),
                );
                format!(
                    "(SELECT {} FROM jsonb_each(${})) AS r",
                    read.join(", "),
                    3 + rows_json.len()
                )
            }
        };
        statement.push_str(&format!(
            "INSERT INTO main.{table} ({}) SELECT {} FROM {rows_from};\n",
            columns.join(", "),
            values.join(", ")
        ));
    }
    statement.push_str(&format!(
        "UPDATE event_sequences SET last = last + {ENGINE_ORDERS} WHERE client_id = '{BENCH_CLIENT}';\n\
         COMMIT;"
    ));
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let mut round = 0i64;
    c.bench_function(name, |b| {
        b.iter(|| {
            round += 1;
            let millis = millis + 1_000 + i128::from(round);
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).unwrap();
            let mut query = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .bind(round * ENGINE_ORDERS)
                .bind(format!("{millis:012x}"))
                .bind(sales_order_api::store::rfc3339(at));
            for rows in &rows_json {
                query = query.bind(rows.clone());
            }
            runtime.block_on(async { query.execute(&mut connection).await.unwrap() });
        })
    });
    // Each column landed where it belongs (a row read by the wrong name or
    // position would not match, whatever SQLite's typing let through).
    for (table, columns) in copied {
        let strays: i64 = runtime
            .block_on(
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM (SELECT {columns} FROM main.{table} \
                     EXCEPT SELECT {columns} FROM template_{table})"
                )))
                .fetch_one(&mut connection),
            )
            .unwrap();
        assert_eq!(strays, 0, "{name}: rows of {table} unlike the first 256");
    }
}

/// The same on PostgreSQL, in a database of its own on the server
/// `BENCH_PG_SERVER` names (e.g. `postgres://postgres@127.0.0.1:5432`),
/// dropped afterwards; skipped when it is unset. Its time includes
/// PostgreSQL's own work and the round trips to it.
fn postgres_insert(c: &mut Criterion) {
    let Ok(server) = std::env::var("BENCH_PG_SERVER") else {
        eprintln!("postgres_insert_256_concurrent_orders skipped: BENCH_PG_SERVER is not set");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = format!("soa_components_{}", std::process::id());
    let admin = format!("{server}/postgres");
    let run = |statement: String| {
        runtime.block_on(async {
            let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut connection)
                .await
                .unwrap();
        })
    };
    run(format!("CREATE DATABASE {database}"));
    let store = store_at(&runtime, &format!("{server}/{database}"));
    insert_256_concurrent(c, &runtime, "postgres_insert_256_concurrent_orders", &store);
    drop(store);
    run(format!("DROP DATABASE {database} WITH (FORCE)"));
}

/// What each secondary index costs an insert: the same 256 concurrent
/// inserts on a database without it (BENCHMARKS.md, "What an order insert
/// costs"). Compare each with `sqlite_insert_256_concurrent_orders`.
fn insert_anatomy(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for index in [
        "sales_orders_client_seq",
        "sales_orders_client_status_seq",
        "sales_orders_client_created",
        "sales_order_history_order",
    ] {
        let (_dir, store) = sqlite_store(&runtime, &format!("DROP INDEX {index}"));
        insert_256_concurrent(
            c,
            &runtime,
            &format!("sqlite_insert_256_without_{index}"),
            &store,
        );
    }
}

/// What an order's `order.created` event costs the same 256 concurrent
/// inserts, part by part: each variant replaces `order_events` (the event
/// statement is unchanged) so the difference to the one before it is what
/// that part costs. Compare with `sqlite_insert_256_concurrent_orders`.
fn event_anatomy(c: &mut Criterion) {
    // `data` is NULL for a creation (migration 0012).
    const COLUMNS: &str = "id TEXT NOT NULL, client_id TEXT NOT NULL, sequence INTEGER NOT NULL, \
                           type TEXT NOT NULL, created_at TEXT NOT NULL, data TEXT";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (name, table) in [
        (
            "rows_ignored",
            format!(
                "CREATE TABLE order_events ({COLUMNS}); \
                 CREATE TRIGGER no_events BEFORE INSERT ON order_events BEGIN SELECT RAISE(IGNORE); END"
            ),
        ),
        (
            "rows_without_index",
            format!("CREATE TABLE order_events ({COLUMNS})"),
        ),
        (
            "rows_with_sequence_index",
            format!("CREATE TABLE order_events ({COLUMNS}, UNIQUE (client_id, sequence))"),
        ),
        (
            "rows_with_sequence_and_id_index",
            format!(
                "CREATE TABLE order_events ({COLUMNS}, UNIQUE (client_id, sequence), UNIQUE (id))"
            ),
        ),
        (
            "rows_keyed_by_sequence_without_rowid",
            format!(
                "CREATE TABLE order_events ({COLUMNS}, PRIMARY KEY (client_id, sequence)) WITHOUT ROWID"
            ),
        ),
    ] {
        let (_dir, store) = sqlite_store(&runtime, &format!("DROP TABLE order_events; {table}"));
        insert_256_concurrent(
            c,
            &runtime,
            &format!("sqlite_insert_256_events_{name}"),
            &store,
        );
    }
}

/// One durable insert by the bench partner, as the create handler makes it.
async fn insert(store: &Store, order: NewOrder) {
    let client = ClientId::parse(BENCH_CLIENT).unwrap();
    store
        .insert_order(&client, order, None, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
}

criterion_group!(
    components,
    jwt_verify,
    rsa_verify,
    parse_and_validate,
    store_insert,
    sqlite_round_trip,
    sqlite_engine,
    postgres_insert,
    insert_anatomy,
    event_anatomy
);
criterion_main!(components);
