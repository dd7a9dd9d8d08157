//! SQLite implementation of the store.
//!
//! Writes go through a pool of exactly one connection and start with
//! `BEGIN IMMEDIATE`, so writers of this process queue in order instead of
//! failing with "database is locked"; other processes (the CLI) wait out the busy
//! timeout. Reads use their own pool and never block writers thanks to WAL.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;

use super::*;
use crate::domain::{Decimal, OrderLine, ids};

mod group_commit;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Order inserts, written in batches by [`group_commit::run`].
    inserts: tokio::sync::mpsc::Sender<group_commit::Job>,
    max_batch: Arc<AtomicUsize>,
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
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.read_only(true))
            .await?;
        let (inserts, queue) = tokio::sync::mpsc::channel(group_commit::QUEUE);
        let max_batch = Arc::new(AtomicUsize::new(group_commit::MAX_BATCH));
        tokio::spawn(group_commit::run(writer.clone(), queue, max_batch.clone()));
        Ok(Self {
            writer,
            reader,
            inserts,
            max_batch,
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
            .insert_partner(&NewPartner {
                client_id: &crate::domain::ClientId::parse("p").unwrap(),
                name: "P",
                secret_hash: "-",
                key_id: "key_1",
                key: &crate::domain::PublicKey::from_pem(pem).unwrap(),
                now: 0,
            })
            .await
            .unwrap();
        (dir, store)
    }

    /// Caps how many inserts share one transaction; 1 commits each alone (the
    /// plain path, kept for comparison in benchmarks).
    pub fn set_max_batch(&self, max_batch: usize) {
        self.max_batch.store(max_batch.max(1), Ordering::Relaxed);
    }

    /// sqlx takes no lock for SQLite migrations: with several processes on one
    /// file, run `migrate` once before starting them.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The HS256 signing key: the stored one, or `candidate` if none is stored
    /// yet. Racing first starts agree on whichever key was written first.
    pub async fn jwt_key(&self, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ('jwt_signing_key', ?) ON CONFLICT (name) DO NOTHING")
            .bind(candidate)
            .execute(&self.writer)
            .await?;
        let row = sqlx::query("SELECT value FROM settings WHERE name = 'jwt_signing_key'")
            .fetch_one(&self.writer)
            .await?;
        Ok(row.try_get("value")?)
    }

    // ----- partners and keys -----

    /// Registers a partner and its first key; `false` when the client id is taken.
    pub async fn insert_partner(&self, partner: &NewPartner<'_>) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO partners (client_id, name, secret_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(partner.client_id.as_str())
        .bind(partner.name)
        .bind(partner.secret_hash)
        .bind(partner.now)
        .bind(partner.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        insert_key(
            &mut tx,
            partner.client_id.as_str(),
            partner.key_id,
            partner.key,
            partner.now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn partner(&self, client_id: &str) -> StoreResult<Option<PartnerRecord>> {
        let row = sqlx::query("SELECT * FROM partners WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| partner_from_row(&row)).transpose()
    }

    pub async fn partners(&self) -> StoreResult<Vec<PartnerRecord>> {
        let rows = sqlx::query("SELECT * FROM partners ORDER BY client_id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(partner_from_row).collect()
    }

    /// `false` when there is no such partner.
    /// Disabling also ends every login of the partner: tokens issued before
    /// stay dead when it is enabled again.
    pub async fn set_partner_enabled(
        &self,
        client_id: &str,
        enabled: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let affected =
            sqlx::query("UPDATE partners SET enabled = ?, updated_at = ? WHERE client_id = ?")
                .bind(enabled)
                .bind(now)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if !enabled {
            revoke_sessions(&mut tx, client_id, "partner disabled", now).await?;
        }
        tx.commit().await?;
        Ok(affected == 1)
    }

    /// Ends every login of the partner; returns how many were live.
    pub async fn revoke_sessions(
        &self,
        client_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let revoked = revoke_sessions(&mut tx, client_id, reason, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Records a v2 signature's digest until `expires_at`; `false` when it
    /// was recorded before and has not expired (a replay).
    pub async fn remember_signature(
        &self,
        client_id: &str,
        digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> StoreResult<bool> {
        let fresh = sqlx::query(
            "INSERT INTO used_signatures (client_id, digest, expires_at) VALUES (?, ?, ?)
             ON CONFLICT (client_id, digest) DO UPDATE SET expires_at = excluded.expires_at
             WHERE used_signatures.expires_at <= ?",
        )
        .bind(client_id)
        .bind(digest)
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(fresh == 1)
    }

    pub async fn purge_signatures(&self, now: i64) -> StoreResult<u64> {
        let purged = sqlx::query("DELETE FROM used_signatures WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(purged)
    }

    pub async fn update_partner(
        &self,
        client_id: &str,
        settings: &PartnerSettings,
        now: i64,
    ) -> StoreResult<bool> {
        let mut update = QueryBuilder::<Sqlite>::new("UPDATE partners SET updated_at = ");
        update.push_bind(now);
        if let Some(required) = settings.require_body_signature {
            update
                .push(", require_body_signature = ")
                .push_bind(required);
        }
        if let Some(rate_limit) = settings.rate_limit {
            update.push(", rate_limit = ").push_bind(rate_limit);
        }
        update
            .push(" WHERE client_id = ")
            .push_bind(client_id.to_owned());
        let affected = update.build().execute(&self.writer).await?.rows_affected();
        Ok(affected == 1)
    }

    /// Replaces the secret hash and bumps its version, which invalidates every
    /// token issued under the old secret. `false` when there is no such partner.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let affected = sqlx::query(
            "UPDATE partners SET secret_hash = ?, secret_version = secret_version + 1, updated_at = ?
             WHERE client_id = ?",
        )
        .bind(secret_hash)
        .bind(now)
        .bind(client_id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(affected == 1)
    }

    pub async fn add_key(
        &self,
        client_id: &str,
        key_id: &str,
        key: &PublicKey,
        now: i64,
    ) -> StoreResult<AddKey> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM partners WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(AddKey::NoSuchPartner);
        }
        let duplicate =
            sqlx::query("SELECT key_id FROM partner_keys WHERE client_id = ? AND fingerprint = ?")
                .bind(client_id)
                .bind(key.fingerprint())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = duplicate {
            return Ok(AddKey::Duplicate {
                key_id: row.try_get("key_id")?,
            });
        }
        insert_key(&mut tx, client_id, key_id, key, now).await?;
        tx.commit().await?;
        Ok(AddKey::Added)
    }

    /// `false` when the partner has no such active key.
    pub async fn revoke_key(&self, client_id: &str, key_id: &str, now: i64) -> StoreResult<bool> {
        let affected = sqlx::query(
            "UPDATE partner_keys SET revoked_at = ? WHERE client_id = ? AND key_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(client_id)
        .bind(key_id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(affected == 1)
    }

    pub async fn keys(&self, client_id: &str) -> StoreResult<Vec<KeyRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM partner_keys WHERE client_id = ? ORDER BY created_at, key_id",
        )
        .bind(client_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// SPKI DER of each active key, for signature checks.
    pub async fn active_keys(&self, client_id: &str) -> StoreResult<Vec<Vec<u8>>> {
        let rows = sqlx::query(
            "SELECT spki_der FROM partner_keys WHERE client_id = ? AND revoked_at IS NULL",
        )
        .bind(client_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get("spki_der")?))
            .collect()
    }

    // ----- logins and token lineage -----

    /// `false` when the partner is disabled (or gone) by now: a login that
    /// raced a disable must not leave a live session behind it.
    pub async fn start_session(&self, client_id: &str, token: &TokenRow<'_>) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO auth_sessions (id, client_id, authenticated_at)
             SELECT ?, client_id, ? FROM partners WHERE client_id = ? AND enabled",
        )
        .bind(token.session_id)
        .bind(token.issued_at)
        .bind(client_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        insert_token(&mut tx, token).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn session_state(&self, session_id: &str) -> StoreResult<Option<SessionState>> {
        let row = sqlx::query(
            "SELECT s.client_id, s.revoked_at IS NOT NULL AS revoked, p.enabled, p.secret_version,
                    p.require_body_signature, p.rate_limit
             FROM auth_sessions s JOIN partners p ON p.client_id = s.client_id WHERE s.id = ?",
        )
        .bind(session_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            Ok(SessionState {
                client_id: row.try_get("client_id")?,
                partner_enabled: row.try_get("enabled")?,
                secret_version: row.try_get("secret_version")?,
                revoked: row.try_get("revoked")?,
                require_body_signature: row.try_get("require_body_signature")?,
                rate_limit: row.try_get("rate_limit")?,
            })
        })
        .transpose()
    }

    /// Exchanges token `old_jti` for `new`, at most once. A second attempt on the
    /// same token is reuse: the whole session is revoked (RFC 9700 §4.14.2).
    pub async fn refresh(
        &self,
        old_jti: &str,
        secret_version: i64,
        new: &TokenRow<'_>,
    ) -> StoreResult<RefreshOutcome> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT t.refreshed_at IS NOT NULL AS refreshed, s.revoked_at IS NOT NULL AS revoked,
                    p.enabled, p.secret_version
             FROM auth_tokens t
             JOIN auth_sessions s ON s.id = t.session_id
             JOIN partners p ON p.client_id = s.client_id
             WHERE t.jti = ? AND t.session_id = ?",
        )
        .bind(old_jti)
        .bind(new.session_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::UnknownToken);
        };
        let refreshed: bool = row.try_get("refreshed")?;
        // A disabled partner hears that first: disabling also revoked its logins.
        let outcome = if !row.try_get::<bool, _>("enabled")? {
            RefreshOutcome::PartnerDisabled
        } else if row.try_get::<bool, _>("revoked")? {
            RefreshOutcome::SessionRevoked
        } else if refreshed {
            sqlx::query("UPDATE auth_sessions SET revoked_at = ?, revoked_reason = 'refresh token reuse' WHERE id = ?")
                .bind(new.issued_at)
                .bind(new.session_id)
                .execute(&mut *tx)
                .await?;
            RefreshOutcome::Reused
        } else if row.try_get::<i64, _>("secret_version")? != secret_version {
            RefreshOutcome::SecretRotated
        } else {
            let claimed = sqlx::query(
                "UPDATE auth_tokens SET refreshed_at = ?, replaced_by = ? WHERE jti = ? AND refreshed_at IS NULL",
            )
            .bind(new.issued_at)
            .bind(new.jti)
            .bind(old_jti)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                return Err(StoreError::Corrupt(
                    "token refreshed twice inside one write transaction".into(),
                ));
            }
            insert_token(&mut tx, new).await?;
            RefreshOutcome::Refreshed
        };
        tx.commit().await?;
        Ok(outcome)
    }

    // ----- orders -----

    /// Queues the insert for the group-commit writer and waits until the batch
    /// holding it is committed (see [`group_commit`]).
    pub async fn insert_order(
        &self,
        client_id: &str,
        order: NewOrder,
        idempotency: Option<Idempotency<'_>>,
        now: OffsetDateTime,
    ) -> StoreResult<InsertOrder> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = group_commit::Job {
            client_id: client_id.to_owned(),
            order,
            idempotency: idempotency.map(|i| (i.key.to_owned(), i.request_hash.to_vec())),
            now,
            reply,
        };
        self.inserts
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        let outcome = answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))??;
        match outcome {
            group_commit::Outcome::Done(outcome) => Ok(outcome),
            // The first order is committed now, so the read pool sees it.
            group_commit::Outcome::Replay(seq) => self
                .order(OrderRef {
                    client_id: Some(client_id),
                    key: OrderKey::Number(seq),
                })
                .await?
                .map(|order| InsertOrder::Replayed(Box::new(order)))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("idempotency key names missing order {seq}"))
                }),
        }
    }

    pub async fn order(&self, target: OrderRef<'_>) -> StoreResult<Option<Order>> {
        let mut select = QueryBuilder::<Sqlite>::new("SELECT * FROM sales_orders WHERE ");
        push_target(&mut select, target);
        let row = select.build().fetch_optional(&self.reader).await?;
        match row {
            Some(row) => Ok(self.with_lines(vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    pub async fn orders(&self, query: &OrderQuery) -> StoreResult<OrderPage> {
        let mut select = QueryBuilder::<Sqlite>::new("SELECT * FROM sales_orders WHERE 1 = 1");
        if let Some(client_id) = &query.client_id {
            select.push(" AND client_id = ").push_bind(client_id);
        }
        if let Some(po) = &query.purchase_order_no {
            select.push(" AND purchase_order_no = ").push_bind(po);
        }
        if let Some(status) = query.status {
            select.push(" AND status = ").push_bind(status.as_str());
        }
        // Stored as fixed-width RFC 3339 UTC text, so text order is time order.
        if let Some(from) = query.created_from {
            select.push(" AND created_at >= ").push_bind(rfc3339(from));
        }
        if let Some(to) = query.created_to {
            select.push(" AND created_at < ").push_bind(rfc3339(to));
        }
        let (after, order) = if query.oldest_first {
            (" AND seq > ", " ORDER BY seq ASC LIMIT ")
        } else {
            (" AND seq < ", " ORDER BY seq DESC LIMIT ")
        };
        if let Some(seq) = query.after_seq {
            select.push(after).push_bind(seq);
        }
        // One extra row tells whether another page exists.
        select.push(order).push_bind(i64::from(query.limit) + 1);
        let mut rows = select.build().fetch_all(&self.reader).await?;
        let next_after_seq = if rows.len() > query.limit as usize {
            rows.truncate(query.limit as usize);
            rows.last().map(|row| row.try_get("seq")).transpose()?
        } else {
            None
        };
        Ok(OrderPage {
            orders: self.with_lines(rows).await?,
            next_after_seq,
        })
    }

    pub async fn change_status(
        &self,
        target: OrderRef<'_>,
        change: StatusChange<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Transition> {
        let at = rfc3339(to_millis(now));
        let mut tx = self.begin_write().await?;
        let mut select = QueryBuilder::<Sqlite>::new("SELECT seq, status FROM sales_orders WHERE ");
        push_target(&mut select, target);
        let Some(row) = select.build().fetch_optional(&mut *tx).await? else {
            return Ok(Transition::NotFound);
        };
        let seq: i64 = row.try_get("seq")?;
        let current = parse_status(row.try_get("status")?)?;
        if !current.can_move_to(change.to) {
            return Ok(Transition::Refused { current });
        }
        sqlx::query(
            "UPDATE sales_orders SET status = ?, status_reason = ?, updated_at = ? WHERE seq = ?",
        )
        .bind(change.to.as_str())
        .bind(change.reason)
        .bind(&at)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        insert_history(&mut tx, seq, &at, Some(current), change).await?;
        tx.commit().await?;
        let changed = self
            .order(OrderRef {
                client_id: None,
                key: OrderKey::Number(seq),
            })
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("order {seq} vanished")))?;
        Ok(Transition::Changed(Box::new(changed)))
    }

    pub async fn history(&self, order_id: &str) -> StoreResult<Vec<OrderEvent>> {
        let rows = sqlx::query(
            "SELECT h.* FROM sales_order_history h JOIN sales_orders o ON o.seq = h.order_seq
             WHERE o.id = ? ORDER BY h.rowid",
        )
        .bind(order_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OrderEvent {
                    at: row.try_get("at")?,
                    actor: parse_actor(row.try_get("actor")?)?,
                    actor_name: row.try_get("actor_name")?,
                    from: row
                        .try_get::<Option<&str>, _>("from_status")?
                        .map(parse_status)
                        .transpose()?,
                    to: parse_status(row.try_get("to_status")?)?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }

    pub async fn purge_idempotency_keys(&self, before: i64) -> StoreResult<u64> {
        let purged = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(before)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(purged)
    }

    // ----- audit -----

    /// Stores a batch of events in one transaction, one reused statement each.
    pub async fn record_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for event in events {
            sqlx::query(
                "INSERT INTO audit_events (at, client_id, kind, code, reason, source, request_id, actor)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&event.at)
            .bind(&event.client_id)
            .bind(event.kind.as_str())
            .bind(&event.code)
            .bind(&event.reason)
            .bind(&event.source)
            .bind(&event.request_id)
            .bind(&event.actor)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn events(
        &self,
        client_id: &str,
        since: Option<OffsetDateTime>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE client_id = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(client_id)
        .bind(since.map_or_else(String::new, rfc3339))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEvent {
                    at: row.try_get("at")?,
                    client_id: row.try_get("client_id")?,
                    kind: parse_audit_kind(&row.try_get::<String, _>("kind")?)?,
                    code: row.try_get("code")?,
                    reason: row.try_get("reason")?,
                    source: row.try_get("source")?,
                    request_id: row.try_get("request_id")?,
                    actor: row.try_get("actor")?,
                })
            })
            .collect()
    }

    pub async fn purge_events(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let purged = sqlx::query("DELETE FROM audit_events WHERE at < ?")
            .bind(rfc3339(before))
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(purged)
    }

    /// Turns order rows into orders, loading all their lines in one query.
    async fn with_lines(&self, rows: Vec<SqliteRow>) -> StoreResult<Vec<Order>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<i64> = rows
            .iter()
            .map(|row| row.try_get("seq"))
            .collect::<Result<_, _>>()?;
        let mut select =
            QueryBuilder::<Sqlite>::new("SELECT * FROM sales_order_lines WHERE order_seq IN (");
        let mut separated = select.separated(", ");
        for seq in &seqs {
            separated.push_bind(*seq);
        }
        select.push(") ORDER BY order_seq, line_no");
        let line_rows = select.build().fetch_all(&self.reader).await?;
        let mut lines: std::collections::HashMap<i64, Vec<OrderLine>> =
            std::collections::HashMap::new();
        for row in &line_rows {
            lines
                .entry(row.try_get("order_seq")?)
                .or_default()
                .push(line_from_row(row)?);
        }
        rows.iter()
            .zip(seqs)
            .map(|(row, seq)| order_from_row(row, seq, lines.remove(&seq).unwrap_or_default()))
            .collect()
    }
}

/// `WHERE` conditions that pick `target`.
fn push_target(select: &mut QueryBuilder<Sqlite>, target: OrderRef<'_>) {
    match target.key {
        OrderKey::Id(id) => select.push("id = ").push_bind(id.to_owned()),
        OrderKey::Number(seq) => select.push("seq = ").push_bind(seq),
    };
    if let Some(client_id) = target.client_id {
        select
            .push(" AND client_id = ")
            .push_bind(client_id.to_owned());
    }
}

async fn insert_history(
    tx: &mut Transaction<'static, Sqlite>,
    seq: i64,
    at: &str,
    from: Option<OrderStatus>,
    change: StatusChange<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sales_order_history (order_seq, at, actor, actor_name, from_status, to_status, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(seq)
    .bind(at)
    .bind(change.actor.as_str())
    .bind(change.actor_name)
    .bind(from.map(OrderStatus::as_str))
    .bind(change.to.as_str())
    .bind(change.reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_key(
    tx: &mut Transaction<'static, Sqlite>,
    client_id: &str,
    key_id: &str,
    key: &PublicKey,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO partner_keys (key_id, client_id, spki_der, fingerprint, bits, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(key_id)
    .bind(client_id)
    .bind(key.spki_der())
    .bind(key.fingerprint())
    .bind(key.bits())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_token(
    tx: &mut Transaction<'static, Sqlite>,
    token: &TokenRow<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO auth_tokens (jti, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(token.jti)
    .bind(token.session_id)
    .bind(token.issued_at)
    .bind(token.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn partner_from_row(row: &SqliteRow) -> StoreResult<PartnerRecord> {
    Ok(PartnerRecord {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        secret_version: row.try_get("secret_version")?,
        enabled: row.try_get("enabled")?,
        require_body_signature: row.try_get("require_body_signature")?,
        rate_limit: row.try_get("rate_limit")?,
        created_at: row.try_get("created_at")?,
    })
}

fn key_from_row(row: &SqliteRow) -> StoreResult<KeyRecord> {
    Ok(KeyRecord {
        key_id: row.try_get("key_id")?,
        client_id: row.try_get("client_id")?,
        spki_der: row.try_get("spki_der")?,
        fingerprint: row.try_get("fingerprint")?,
        bits: row.try_get("bits")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn decimal(text: Option<String>) -> StoreResult<Option<Decimal>> {
    text.as_deref().map(parse_decimal).transpose()
}

fn line_from_row(row: &SqliteRow) -> StoreResult<OrderLine> {
    Ok(OrderLine {
        line_no: row.try_get("line_no")?,
        product_code: row.try_get("product_code")?,
        quantity: parse_decimal(row.try_get("quantity")?)?,
        uom: row.try_get("uom")?,
        unit_price: decimal(row.try_get("unit_price")?)?,
        line_amount: decimal(row.try_get("line_amount")?)?,
        notes: row.try_get("notes")?,
    })
}

fn order_from_row(row: &SqliteRow, seq: i64, products: Vec<OrderLine>) -> StoreResult<Order> {
    Ok(Order {
        id: row.try_get("id")?,
        order_number: ids::order_number(seq),
        client_id: row.try_get("client_id")?,
        status: parse_status(row.try_get("status")?)?,
        status_reason: row.try_get("status_reason")?,
        customer_code: row.try_get("customer_code")?,
        site_code: row.try_get("site_code")?,
        sales_name: row.try_get("sales_name")?,
        address: row.try_get("address")?,
        purchase_order_no: row.try_get("purchase_order_no")?,
        products,
        total_amount: decimal(row.try_get("total_amount")?)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Revokes every live login of the partner, inside `tx`.
async fn revoke_sessions(
    tx: &mut Transaction<'static, Sqlite>,
    client_id: &str,
    reason: &str,
    now: i64,
) -> StoreResult<u64> {
    Ok(sqlx::query(
        "UPDATE auth_sessions SET revoked_at = ?, revoked_reason = ? WHERE client_id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(client_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
