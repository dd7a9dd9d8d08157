//! The SQLite store: the embedded default.
//!
//! Writes go through a pool of exactly one connection and start with
//! `BEGIN IMMEDIATE`, so writers of this process queue in order instead of
//! failing with "database is locked"; other processes (the CLI) wait out the busy
//! timeout. Reads use their own pool and never block writers thanks to WAL.
//! Order inserts queue for the group-commit writer (`store::group_commit`). The
//! queries themselves are the shared ones ([`super::sql`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::error::StoreResult;
use super::group_commit::{GroupCommit, Writers};
use super::order_batch::{BatchOutcome, PendingBatch};
use super::order_insert::{InsertOrder, PendingOrder};
use super::sql::SqlStore;
use super::wakeups::Wakeups;

/// The write connection's `temp_store` (see `connect`).
const TEMP_IN_MEMORY: &str = "MEMORY";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) sql: SqlStore<Sqlite>,
    /// Order inserts, written in batches on the one write connection.
    orders: GroupCommit,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(sqlite)")
    }
}

/// The file behind a `sqlite://` URL, or `None` when there is none to
/// create (an in-memory database) or it is only read (`mode=ro`).
pub fn database_file(url: &str) -> Option<std::path::PathBuf> {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let in_memory = url.contains(":memory:")
        || query
            .split('&')
            .any(|pair| pair == "mode=memory" || pair == "mode=ro");
    if in_memory {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

/// The database holds the JWT signing key and every partner's secret hash:
/// a new file is created readable by its owner alone (SQLite gives its WAL
/// and SHM files the database file's mode). Existing files (the database,
/// its WAL or SHM) that others can read are left as they are, with a warning
/// naming the fix.
pub fn secure_file(path: &std::path::Path) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    let open: Vec<String> = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let mode = std::fs::metadata(&file).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0)
                .then(|| format!("{} (mode {mode:o})", std::path::Path::new(&file).display()))
        })
        .collect();
    Ok((!open.is_empty()).then(|| {
        format!(
            "{} readable by others and the database holds the token signing key and \
             secret hashes; restrict it: chmod 600 {path} {path}-wal {path}-shm",
            open.join(", "),
            path = path.display(),
        )
    }))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://` URL.
    pub async fn connect(url: &str, readers: u32) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we answer 201, even across power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(file) = database_file(url)
            && let Some(warning) = secure_file(&file)?
        {
            tracing::warn!("{warning}");
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(15))
            // No ping before a connection is handed out: a SQLite connection
            // has no server to lose (sqlx's ping only asks the connection's
            // thread whether it is alive), and each ping is a round trip to
            // that thread (37.5 µs under load, 56.7 µs idle: BENCHMARKS.md)
            // before every batch.
            // sqlx still pings each connection as it comes back to the pool,
            // after whatever it ran, so a dead thread is caught there.
            .test_before_acquire(false)
            // A multi-row insert in a transaction keeps a statement journal
            // (to undo itself if it fails halfway). In a temporary file,
            // that was two `pwrite`s for every page a group commit touched
            // (strace, BENCHMARKS.md); in memory it costs a copy. The
            // writer's statements touch a batch's pages and sort at most a
            // batch's rows, so this stays small; readers and migrations,
            // whose sorts can span whole tables, keep SQLite's temporary
            // files (`migrate`).
            .connect_with(options.clone().pragma("temp_store", TEMP_IN_MEMORY))
            .await?;
        // Opened lazily, so that no reader holds the schema from before
        // `migrate`: a statement prepared against it and re-prepared by
        // SQLite after the change could map `SELECT *` columns wrongly.
        let reader = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .acquire_timeout(Duration::from_secs(5))
            // No ping before every read either, for the writer's reason.
            .test_before_acquire(false)
            .connect_lazy_with(options.read_only(true));
        let wakeups = Arc::new(Wakeups::default());
        tokio::spawn(watch_feeds(reader.clone(), Arc::downgrade(&wakeups)));
        Ok(Self {
            orders: GroupCommit::start(writer.clone(), Writers::Shared, wakeups.clone()),
            sql: SqlStore::new(reader, writer, wakeups),
        })
    }

    /// For unit tests: a fresh database holding partner `p` with one key.
    #[cfg(test)]
    pub(crate) async fn with_partner_p() -> (tempfile::TempDir, Self) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Self::connect(&url, 1).await.unwrap();
        store.migrate().await.unwrap();
        let pem = include_bytes!("../../../tests/fixtures/keys/partner-b-public.pem");
        store
            .sql
            .insert_partner(&super::NewPartner {
                client_id: &crate::domain::ClientId::parse("p").unwrap(),
                name: "P",
                secret_hash: "-",
                key_id: "key_1",
                key: &crate::domain::PublicKey::from_pem(pem).unwrap(),
                sandbox: false,
                now: time::OffsetDateTime::UNIX_EPOCH,
            })
            .await
            .unwrap();
        (dir, store)
    }

    /// For unit tests: [`Self::with_partner_p`] and one order of `p`
    /// (purchase order `PO-1`), just created.
    #[cfg(test)]
    pub(crate) async fn with_an_order_of_p() -> (tempfile::TempDir, Self, crate::domain::Order) {
        let (dir, store) = Self::with_partner_p().await;
        let pending = PendingOrder::new(
            &crate::domain::ClientId::parse("p").unwrap(),
            crate::domain::NewOrder::example(Some("PO-1")),
            None,
            time::OffsetDateTime::now_utc(),
        );
        let Ok(InsertOrder::Created(created)) = store.insert_order(pending).await else {
            panic!("the order is created");
        };
        (dir, store, *created)
    }

    /// Caps how many inserts share one transaction; 1 commits each alone (the
    /// plain path, kept for comparison in benchmarks).
    pub fn set_max_batch(&self, max_batch: usize) {
        self.orders.set_max_batch(max_batch);
    }

    /// sqlx takes no lock for SQLite migrations: with several processes on one
    /// file, run `migrate` once before starting them.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let mut writer = self.sql.writer.acquire().await?;
        // Migrations build indexes and copy tables whole: their sorts go to
        // temporary files, as SQLite's default has them, not into memory.
        sqlx::query("PRAGMA temp_store = DEFAULT")
            .execute(&mut *writer)
            .await?;
        let migrated = MIGRATOR.run(&mut *writer).await;
        let restored = sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA temp_store = {TEMP_IN_MEMORY}"
        )))
        .execute(&mut *writer)
        .await;
        // A failed migration is the error to report, not what followed it.
        migrated?;
        restored?;
        Ok(())
    }

    /// The newest migration this release brings.
    pub fn latest_migration() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Queues the insert for the group-commit writer and waits until the batch
    /// holding it is committed.
    pub async fn insert_order(&self, pending: PendingOrder) -> StoreResult<InsertOrder> {
        self.orders.insert(&self.sql, pending).await
    }

    pub async fn insert_batch(&self, batch: PendingBatch) -> StoreResult<BatchOutcome> {
        self.orders.insert_batch(&self.sql, batch).await
    }
}

/// How often the SQLite store looks for events written by another process.
const WATCH_FEEDS_EVERY: Duration = Duration::from_millis(250);

/// Wakes feed readers for events that another process committed (the
/// operator's CLI, or another instance on the same file), which this
/// process's writers cannot know of: every [`WATCH_FEEDS_EVERY`] it reads
/// each partner's last event number (one row per partner) and wakes the
/// partners whose number moved. Reads nothing while no one waits, so no
/// reader connection opens before `migrate` (see `connect`); the numbers it
/// remembers may then grow stale, which costs a needless wake, never a
/// missed one. Ends with the store.
async fn watch_feeds(reader: sqlx::SqlitePool, wakeups: std::sync::Weak<Wakeups>) {
    let mut known: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut interval = tokio::time::interval(WATCH_FEEDS_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(wakeups) = wakeups.upgrade() else {
            return;
        };
        if wakeups.waiting() == 0 {
            continue;
        }
        let rows: Vec<(String, i64)> =
            match sqlx::query_as("SELECT client_id, last FROM event_sequences")
                .fetch_all(&reader)
                .await
            {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::debug!(%error, "cannot read the event sequences");
                    continue;
                }
            };
        for (client_id, last) in rows {
            if known.insert(client_id.clone(), last) != Some(last) {
                wakeups.wake(&client_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OrderRef, RefreshOutcome, TokenRow};

    /// A new database at `url` with the migrations numbered below `first_left_out`
    /// applied, as an earlier release left it; a pool on it (foreign keys on,
    /// as sqlx opens every SQLite connection).
    async fn migrated_below(url: &str, first_left_out: &str) -> sqlx::SqlitePool {
        let dir = tempfile::tempdir().unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for entry in std::fs::read_dir(source).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.as_str() < first_left_out {
                std::fs::copy(&path, dir.path().join(name)).unwrap();
            }
        }
        let pool = sqlx::SqlitePool::connect_with(
            SqliteConnectOptions::from_str(url)
                .unwrap()
                .create_if_missing(true),
        )
        .await
        .unwrap();
        sqlx::migrate::Migrator::new(dir.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        pool
    }

    /// A database as the previous release left it: its migrations (0001 to
    /// 0006) and rows written its way, times of the login tables in unix
    /// seconds.
    async fn previous_release_database(url: &str) {
        let pool = migrated_below(url, "0007").await;
        let pem = include_bytes!("../../../tests/fixtures/keys/partner-b-public.pem");
        let key = crate::domain::PublicKey::from_pem(pem).unwrap();
        for statement in [
            "INSERT INTO partners (client_id, name, secret_hash, created_at, updated_at) VALUES ('p', 'P', '-', 1764000000, 1764000100)",
            "INSERT INTO auth_sessions (id, client_id, authenticated_at) VALUES ('ses_1', 'p', 1764000200)",
            "INSERT INTO auth_tokens (jti, session_id, issued_at, expires_at) VALUES ('tok_1', 'ses_1', 1764000200, 1764043400)",
            "INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address, purchase_order_no, total_amount, created_at, updated_at)
             VALUES ('so_1', 'p', 'accepted', 'C', 'S', 'N', 'A', 'PO-1', '12.50', '2025-11-24T16:00:00.123Z', '2025-11-24T16:05:00.000Z')",
            "INSERT INTO sales_order_lines (order_seq, line_no, product_code, quantity, unit_price, line_amount) VALUES (1, 1, 'X', '2.5', '5', '12.50')",
            "INSERT INTO sales_order_history (order_seq, at, actor, actor_name, to_status) VALUES (1, '2025-11-24T16:00:00.123Z', 'partner', 'p', 'received')",
            "INSERT INTO sales_order_history (order_seq, at, actor, actor_name, from_status, to_status) VALUES (1, '2025-11-24T16:05:00.000Z', 'operator', 'ops', 'received', 'accepted')",
            "INSERT INTO idempotency_keys (client_id, key, request_hash, order_seq, created_at) VALUES ('p', 'k1', x'01', 1, 1764000300)",
            "INSERT INTO used_signatures (client_id, digest, expires_at) VALUES ('p', x'02', 1764000400)",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
        }
        sqlx::query(
            "INSERT INTO partner_keys (key_id, client_id, spki_der, fingerprint, bits, created_at, revoked_at)
             VALUES ('key_1', 'p', ?, ?, 2048, 1764000000, 1764000500)",
        )
        .bind(key.spki_der())
        .bind(key.fingerprint())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    fn at(unix: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    async fn temp_store(pool: &sqlx::SqlitePool) -> i64 {
        sqlx::query_scalar("PRAGMA temp_store")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_writer_keeps_statement_journals_in_memory_after_migrating_and_readers_in_files() {
        // `with_partner_p` migrates, which runs with temporary files.
        let (_dir, store) = SqliteStore::with_partner_p().await;

        assert_eq!(temp_store(&store.sql.writer).await, 2, "MEMORY");
        assert_eq!(temp_store(&store.sql.reader).await, 0, "DEFAULT: files");
    }

    #[tokio::test]
    async fn a_connection_given_back_mid_transaction_is_rolled_back_without_a_ping() {
        let (_dir, store) = SqliteStore::with_partner_p().await;
        assert!(!store.sql.writer.options().get_test_before_acquire());
        assert!(!store.sql.reader.options().get_test_before_acquire());
        let p = crate::domain::ClientId::parse("p").unwrap();

        // As a caller that goes away mid-transaction leaves it.
        use sqlx::Connection as _;
        let mut connection = store.sql.writer.acquire().await.unwrap();
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE partners SET name = 'changed' WHERE client_id = 'p'")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        drop(connection);

        let created = store
            .insert_order(PendingOrder::new(
                &p,
                crate::domain::NewOrder::example(Some("PO-9")),
                None,
                time::OffsetDateTime::now_utc(),
            ))
            .await
            .unwrap();
        assert!(matches!(created, InsertOrder::Created(_)), "{created:?}");
        let partner = store.sql.partner(&p).await.unwrap().unwrap();
        assert_ne!(partner.name, "changed");
    }

    #[tokio::test]
    async fn a_database_of_the_previous_release_keeps_every_row_with_its_times() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        previous_release_database(&url).await;

        let store = SqliteStore::connect(&url, 1).await.unwrap();
        store.migrate().await.unwrap();
        let sql = &store.sql;
        let p = crate::domain::ClientId::parse("p").unwrap();

        let partner = sql.partner(&p).await.unwrap().unwrap();
        assert_eq!(partner.created_at, at(1_764_000_000));
        let keys = sql.keys(&p).await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].created_at, at(1_764_000_000));
        assert_eq!(keys[0].revoked_at, Some(at(1_764_000_500)));
        let order = sql
            .order(OrderRef::operator("SO-00000001"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.created_at, "2025-11-24T16:00:00.123Z");
        assert_eq!(
            order.products[0].line_amount.as_ref().unwrap().to_string(),
            "12.5"
        );
        let history = sql.history("so_1").await.unwrap();
        assert_eq!(
            history
                .iter()
                .map(|event| event.at.as_str())
                .collect::<Vec<_>>(),
            ["2025-11-24T16:00:00.123Z", "2025-11-24T16:05:00.000Z"]
        );
        // The login made before the upgrade refreshes after it.
        let new = TokenRow {
            jti: "tok_2",
            session_id: "ses_1",
            issued_at: at(1_764_001_000),
            expires_at: at(1_764_044_200),
        };
        assert_eq!(
            sql.refresh("tok_1", 1, &new, time::Duration::ZERO)
                .await
                .unwrap(),
            RefreshOutcome::Refreshed
        );
        // Converted times still compare as times.
        assert_eq!(
            sql.purge_idempotency_keys(at(1_764_000_299)).await.unwrap(),
            0
        );
        assert_eq!(
            sql.purge_idempotency_keys(at(1_764_000_301)).await.unwrap(),
            1
        );
        assert!(
            !sql.remember_signature(&p, &[2], at(1_764_000_399), at(1_764_009_999))
                .await
                .unwrap()
        );
        assert_eq!(sql.purge_signatures(at(1_764_000_400)).await.unwrap(), 1);
        // New history rows follow the old ones.
        sql.change_status(
            OrderRef::operator("so_1"),
            crate::store::StatusChange {
                to: crate::domain::OrderStatus::Fulfilled,
                reason: None,
                actor: crate::domain::Actor::Operator,
                actor_name: "ops",
                if_version: None,
            },
            at(1_764_002_000),
        )
        .await
        .unwrap();
        let history = sql.history("so_1").await.unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[2].to, crate::domain::OrderStatus::Fulfilled);
    }

    #[test]
    fn only_a_sqlite_url_with_a_file_to_write_names_one() {
        assert_eq!(
            database_file("sqlite:///var/lib/orders.db"),
            Some("/var/lib/orders.db".into())
        );
        assert_eq!(
            database_file("sqlite://orders.db?mode=rwc"),
            Some("orders.db".into())
        );
        for none in [
            "sqlite::memory:",
            "sqlite://orders.db?mode=memory",
            "sqlite://orders.db?mode=ro",
        ] {
            assert_eq!(database_file(none), None, "{none}");
        }
    }

    /// A database as the release before order changes left it: migrations
    /// 0001 to 0009, a cancelled order holding PO-1, a received one PO-2,
    /// and the newest order deleted (so AUTOINCREMENT is past the last row).
    async fn database_before_order_changes(url: &str) {
        let pool = migrated_below(url, "0010").await;
        for statement in [
            "INSERT INTO partners (client_id, name, secret_hash, created_at, updated_at) VALUES ('p', 'P', '-', '2025-11-24T16:00:00.000Z', '2025-11-24T16:00:00.000Z')",
            "INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address, purchase_order_no, total_amount, created_at, updated_at)
             VALUES ('so_1', 'p', 'cancelled', 'C', 'S', 'N', 'A', 'PO-1', '12.50', '2025-11-24T16:00:00.123Z', '2025-11-24T16:05:00.000Z'),
                    ('so_2', 'p', 'received', 'C', 'S', 'N', 'A', 'PO-2', NULL, '2025-11-24T16:01:00.000Z', '2025-11-24T16:01:00.000Z'),
                    ('so_3', 'p', 'received', 'C', 'S', 'N', 'A', 'PO-3', NULL, '2025-11-24T16:02:00.000Z', '2025-11-24T16:02:00.000Z')",
            "INSERT INTO sales_order_lines (order_seq, line_no, product_code, quantity, unit_price, line_amount) VALUES (1, 1, 'X', '2.5', '5', '12.50'), (2, 1, 'Y', '1', NULL, NULL), (3, 1, 'Z', '1', NULL, NULL)",
            "INSERT INTO sales_order_history (order_seq, at, actor, actor_name, to_status) VALUES (1, '2025-11-24T16:00:00.123Z', 'partner', 'p', 'received'), (2, '2025-11-24T16:01:00.000Z', 'partner', 'p', 'received')",
            "INSERT INTO sales_order_history (order_seq, at, actor, actor_name, from_status, to_status, reason) VALUES (1, '2025-11-24T16:05:00.000Z', 'partner', 'p', 'received', 'cancelled', 'cancelled by the partner')",
            "INSERT INTO idempotency_keys (client_id, key, request_hash, order_seq, created_at) VALUES ('p', 'k1', x'01', 2, '2025-11-24T16:01:00.000Z')",
            "DELETE FROM sales_orders WHERE seq = 3",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }

    #[tokio::test]
    async fn a_database_from_before_order_changes_keeps_its_orders_and_frees_cancelled_numbers() {
        use crate::domain::NewOrder;
        use crate::store::{InsertOrder, PendingOrder};

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        database_before_order_changes(&url).await;
        let store = SqliteStore::connect(&url, 1).await.unwrap();
        store.migrate().await.unwrap();
        let sql = &store.sql;

        let cancelled = sql
            .order(OrderRef::operator("so_1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((cancelled.version, cancelled.currency.as_str()), (1, "IDR"));
        assert_eq!(
            cancelled.products[0]
                .line_amount
                .as_ref()
                .unwrap()
                .to_string(),
            "12.5"
        );
        assert_eq!(sql.history("so_1").await.unwrap().len(), 2);
        assert_eq!(sql.history("so_2").await.unwrap()[0].version, None);
        let orphans: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&sql.reader)
                .await
                .unwrap();
        assert!(orphans.is_empty(), "{orphans:?}");
        let keys: i64 =
            sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE order_seq = 2")
                .fetch_one(&sql.reader)
                .await
                .unwrap();
        assert_eq!(keys, 1);

        let order = |po: &str| NewOrder::example(Some(po));
        let p = crate::domain::ClientId::parse("p").unwrap();
        let now = time::OffsetDateTime::now_utc();
        let reused = store
            .insert_order(PendingOrder::new(&p, order("PO-1"), None, now))
            .await
            .unwrap();
        let InsertOrder::Created(reused) = reused else {
            panic!("the cancelled order's number is free: {reused:?}");
        };
        assert_eq!(
            reused.order_number, "SO-00000004",
            "numbers are never handed out twice"
        );
        let taken = store
            .insert_order(PendingOrder::new(&p, order("PO-2"), None, now))
            .await
            .unwrap();
        assert!(
            matches!(&taken, InsertOrder::DuplicatePurchaseOrder { existing_id } if existing_id == "so_2"),
            "{taken:?}"
        );
    }

    #[tokio::test]
    async fn events_written_with_their_snapshots_read_back_the_same_after_creations_stopped_storing_them()
     {
        use crate::domain::{ClientId, NewOrder};
        use crate::store::PendingOrder;

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let pool = migrated_below(&url, "0012").await;
        let data = r#"{"order":{"id":"so_1","status":"received"}}"#;
        for statement in [
            "INSERT INTO partners (client_id, name, secret_hash, created_at, updated_at) VALUES ('p', 'P', '-', '2025-11-24T16:00:00.000Z', '2025-11-24T16:00:00.000Z')",
            "INSERT INTO event_sequences (client_id, last) VALUES ('p', 1)",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query("INSERT INTO order_events (id, client_id, sequence, type, created_at, data) VALUES ('evt_1', 'p', 1, 'order.created', '2025-11-24T16:00:00.000Z', ?)")
            .bind(data)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let store = SqliteStore::connect(&url, 1).await.unwrap();
        store.migrate().await.unwrap();

        let p = ClientId::parse("p").unwrap();
        let pending = PendingOrder::new(
            &p,
            NewOrder::example(Some("PO-2")),
            None,
            time::OffsetDateTime::now_utc(),
        );
        store.insert_order(pending).await.unwrap();
        let events = store.sql.events_after(&p, 0, 10).await.unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].id.as_str(), events[0].data.get()),
            ("evt_1", data)
        );
        assert_eq!(events[1].sequence, 2);
        assert!(
            events[1]
                .data
                .get()
                .contains(r#""purchase_order_no":"PO-2""#)
        );
        let repeated = sqlx::query("INSERT INTO order_events (id, client_id, sequence, type, created_at) VALUES ('evt_x', 'p', 2, 'order.created', '2025-11-24T16:00:00.000Z')")
            .execute(&store.sql.writer)
            .await;
        assert!(repeated.is_err(), "a partner's numbers stay unique");
    }

    #[tokio::test]
    async fn order_numbers_go_on_after_the_migration_even_when_every_order_was_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let pool = migrated_below(&url, "0010").await;
        for statement in [
            "INSERT INTO partners (client_id, name, secret_hash, created_at, updated_at) VALUES ('p', 'P', '-', '2025-11-24T16:00:00.000Z', '2025-11-24T16:00:00.000Z')",
            "INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address, created_at, updated_at)
             VALUES ('so_1', 'p', 'received', 'C', 'S', 'N', 'A', '2025-11-24T16:00:00.000Z', '2025-11-24T16:00:00.000Z')",
            "DELETE FROM sales_orders",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = SqliteStore::connect(&url, 1).await.unwrap();
        store.migrate().await.unwrap();
        let next: i64 =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'sales_orders'")
                .fetch_one(&store.sql.reader)
                .await
                .unwrap();
        assert_eq!(next, 1, "order 1 was handed out before; the next is 2");
    }
}
