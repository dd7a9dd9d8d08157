//! PostgreSQL implementation of the store: the production backend, shared by
//! any number of stateless instances.
//!
//! Every guarantee the SQLite store gets from its single writer comes here from
//! the database itself, so it holds across instances: uniqueness constraints
//! (`ON CONFLICT`) for client ids, keys and purchase-order numbers, row locks
//! (`FOR UPDATE`) for at-most-once token refresh, an identity sequence for order
//! numbers, and an advisory lock around migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, QueryBuilder, Row, Transaction};

use super::*;
use crate::domain::{OrderLine, ids};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a pooled connection before answering 503;
/// well inside the request timeout, so an outage is reported, not waited out.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(postgres)")
    }
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("sales-order-api");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection that died with the server is found and replaced
            // before a request gets it, which is how the pool heals on its own.
            .test_before_acquire(true)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Runs on a connection of its own, closed afterwards: sqlx holds a
    /// session-level advisory lock while migrating, and a failed run must not
    /// leave that lock on a pooled connection.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let mut connection = PgConnection::connect_with(&self.pool.connect_options()).await?;
        MIGRATOR.run(&mut connection).await?;
        connection.close().await?;
        Ok(())
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Opens a transaction. sqlx 0.9.0 cannot cancel a PostgreSQL `BEGIN`
    /// safely (launchbadge/sqlx#4393): a caller dropped between sending `BEGIN`
    /// and reading its answer (a client hanging up) hands the connection back
    /// to the pool still inside a transaction, where the next borrower's
    /// statements would run. Detached, the `BEGIN` always finishes, and if
    /// nobody is left to take the transaction, dropping it rolls it back.
    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        let pool = self.pool.clone();
        detached(async move { pool.begin().await }).await
    }

    pub async fn jwt_key(&self, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ('jwt_signing_key', $1) ON CONFLICT (name) DO NOTHING")
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT value FROM settings WHERE name = 'jwt_signing_key'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    // ----- partners and keys -----

    pub async fn insert_partner(&self, partner: &NewPartner<'_>) -> StoreResult<bool> {
        let now = at(partner.now)?;
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO partners (client_id, name, secret_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(partner.client_id.as_str())
        .bind(partner.name)
        .bind(partner.secret_hash)
        .bind(now)
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
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(true)
    }

    pub async fn partner(&self, client_id: &str) -> StoreResult<Option<PartnerRecord>> {
        let row = sqlx::query("SELECT * FROM partners WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| partner_from_row(&row)).transpose()
    }

    pub async fn partners(&self) -> StoreResult<Vec<PartnerRecord>> {
        let rows = sqlx::query("SELECT * FROM partners ORDER BY client_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(partner_from_row).collect()
    }

    /// Disabling also ends every login of the partner: tokens issued before
    /// stay dead when it is enabled again.
    pub async fn set_partner_enabled(
        &self,
        client_id: &str,
        enabled: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let affected =
            sqlx::query("UPDATE partners SET enabled = $1, updated_at = $2 WHERE client_id = $3")
                .bind(enabled)
                .bind(at(now)?)
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
        let mut tx = self.begin().await?;
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
            "INSERT INTO used_signatures (client_id, digest, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, digest) DO UPDATE SET expires_at = excluded.expires_at
             WHERE used_signatures.expires_at <= $4",
        )
        .bind(client_id)
        .bind(digest)
        .bind(at(expires_at)?)
        .bind(at(now)?)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(fresh == 1)
    }

    pub async fn purge_signatures(&self, now: i64) -> StoreResult<u64> {
        let purged = sqlx::query("DELETE FROM used_signatures WHERE expires_at <= $1")
            .bind(at(now)?)
            .execute(&self.pool)
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
        let mut update = QueryBuilder::<Postgres>::new("UPDATE partners SET updated_at = ");
        update.push_bind(at(now)?);
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
        let affected = update.build().execute(&self.pool).await?.rows_affected();
        Ok(affected == 1)
    }

    pub async fn rotate_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let affected = sqlx::query(
            "UPDATE partners SET secret_hash = $1, secret_version = secret_version + 1, updated_at = $2
             WHERE client_id = $3",
        )
        .bind(secret_hash)
        .bind(at(now)?)
        .bind(client_id)
        .execute(&self.pool)
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
        let mut tx = self.begin().await?;
        // Locking the partner row makes concurrent `add-key` calls for one
        // partner take turns, so the duplicate check below cannot race.
        let exists = sqlx::query("SELECT 1 FROM partners WHERE client_id = $1 FOR UPDATE")
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(AddKey::NoSuchPartner);
        }
        let duplicate = sqlx::query(
            "SELECT key_id FROM partner_keys WHERE client_id = $1 AND fingerprint = $2",
        )
        .bind(client_id)
        .bind(key.fingerprint())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = duplicate {
            return Ok(AddKey::Duplicate {
                key_id: row.try_get("key_id")?,
            });
        }
        insert_key(&mut tx, client_id, key_id, key, at(now)?).await?;
        commit(tx).await?;
        Ok(AddKey::Added)
    }

    pub async fn revoke_key(&self, client_id: &str, key_id: &str, now: i64) -> StoreResult<bool> {
        let affected = sqlx::query(
            "UPDATE partner_keys SET revoked_at = $1 WHERE client_id = $2 AND key_id = $3 AND revoked_at IS NULL",
        )
        .bind(at(now)?)
        .bind(client_id)
        .bind(key_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(affected == 1)
    }

    pub async fn keys(&self, client_id: &str) -> StoreResult<Vec<KeyRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM partner_keys WHERE client_id = $1 ORDER BY created_at, key_id",
        )
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    pub async fn active_keys(&self, client_id: &str) -> StoreResult<Vec<Vec<u8>>> {
        let rows = sqlx::query(
            "SELECT spki_der FROM partner_keys WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get("spki_der")?))
            .collect()
    }

    // ----- logins and token lineage -----

    /// `false` when the partner is disabled (or gone) by now: a login that
    /// raced a disable must not leave a live session behind it. The partner
    /// row is share-locked, so a disable waits for this insert and then
    /// revokes it, or came first and is seen.
    pub async fn start_session(&self, client_id: &str, token: &TokenRow<'_>) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let enabled: Option<bool> =
            sqlx::query_scalar("SELECT enabled FROM partners WHERE client_id = $1 FOR SHARE")
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await?;
        if enabled != Some(true) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO auth_sessions (id, client_id, authenticated_at) VALUES ($1, $2, $3)",
        )
        .bind(token.session_id)
        .bind(client_id)
        .bind(at(token.issued_at)?)
        .execute(&mut *tx)
        .await?;
        insert_token(&mut tx, token).await?;
        commit(tx).await?;
        Ok(true)
    }

    pub async fn session_state(&self, session_id: &str) -> StoreResult<Option<SessionState>> {
        let row = sqlx::query(
            "SELECT s.client_id, s.revoked_at IS NOT NULL AS revoked, p.enabled, p.secret_version,
                    p.require_body_signature, p.rate_limit
             FROM auth_sessions s JOIN partners p ON p.client_id = s.client_id WHERE s.id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
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

    pub async fn refresh(
        &self,
        old_jti: &str,
        secret_version: i64,
        new: &TokenRow<'_>,
    ) -> StoreResult<RefreshOutcome> {
        let issued_at = at(new.issued_at)?;
        let mut tx = self.begin().await?;
        // The row locks make racing refreshes of one token (from any instance)
        // queue here; each later one reads the committed `refreshed_at` of the
        // first and is treated as reuse.
        let row = sqlx::query(
            "SELECT t.refreshed_at IS NOT NULL AS refreshed, s.revoked_at IS NOT NULL AS revoked,
                    p.enabled, p.secret_version
             FROM auth_tokens t
             JOIN auth_sessions s ON s.id = t.session_id
             JOIN partners p ON p.client_id = s.client_id
             WHERE t.jti = $1 AND t.session_id = $2
             FOR UPDATE OF t, s",
        )
        .bind(old_jti)
        .bind(new.session_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::UnknownToken);
        };
        // A disabled partner hears that first: disabling also revoked its logins.
        let outcome = if !row.try_get::<bool, _>("enabled")? {
            RefreshOutcome::PartnerDisabled
        } else if row.try_get::<bool, _>("revoked")? {
            RefreshOutcome::SessionRevoked
        } else if row.try_get::<bool, _>("refreshed")? {
            sqlx::query("UPDATE auth_sessions SET revoked_at = $1, revoked_reason = 'refresh token reuse' WHERE id = $2")
                .bind(issued_at)
                .bind(new.session_id)
                .execute(&mut *tx)
                .await?;
            RefreshOutcome::Reused
        } else if row.try_get::<i64, _>("secret_version")? != secret_version {
            RefreshOutcome::SecretRotated
        } else {
            let claimed = sqlx::query(
                "UPDATE auth_tokens SET refreshed_at = $1, replaced_by = $2 WHERE jti = $3 AND refreshed_at IS NULL",
            )
            .bind(issued_at)
            .bind(new.jti)
            .bind(old_jti)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                return Err(StoreError::Corrupt(
                    "token refreshed twice while its row was locked".into(),
                ));
            }
            insert_token(&mut tx, new).await?;
            RefreshOutcome::Refreshed
        };
        commit(tx).await?;
        Ok(outcome)
    }

    // ----- orders -----

    pub async fn insert_order(
        &self,
        client_id: &str,
        order: NewOrder,
        idempotency: Option<Idempotency<'_>>,
        now: OffsetDateTime,
    ) -> StoreResult<InsertOrder> {
        let order = &order;
        let id = ids::new_order_id();
        let created_at = to_millis(now);
        let mut tx = self.begin().await?;
        if let Some(idempotency) = idempotency {
            // Requests with one key, on any instance, take turns from here to
            // commit; each later one finds the key the first one stored.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 0))")
                .bind(client_id)
                .bind(idempotency.key)
                .execute(&mut *tx)
                .await?;
            let used = sqlx::query(
                "SELECT request_hash, order_seq FROM idempotency_keys WHERE client_id = $1 AND key = $2",
            )
            .bind(client_id)
            .bind(idempotency.key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(used) = used {
                drop(tx);
                let hash: Vec<u8> = used.try_get("request_hash")?;
                if hash != idempotency.request_hash {
                    return Ok(InsertOrder::IdempotencyConflict);
                }
                let seq: i64 = used.try_get("order_seq")?;
                let first = self
                    .order(OrderRef {
                        client_id: Some(client_id),
                        key: OrderKey::Number(seq),
                    })
                    .await?;
                return first
                    .map(|order| InsertOrder::Replayed(Box::new(order)))
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("idempotency key names missing order {seq}"))
                    });
            }
        }
        // A racing insert of the same purchase-order number (on any instance)
        // makes this one wait for it; if it commits, this one does nothing.
        let inserted = sqlx::query(
            "INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address,
                                       purchase_order_no, total_amount, created_at, updated_at)
             VALUES ($1, $2, 'received', $3, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (client_id, purchase_order_no) DO NOTHING
             RETURNING seq",
        )
        .bind(&id)
        .bind(client_id)
        .bind(&order.customer_code)
        .bind(&order.site_code)
        .bind(&order.sales_name)
        .bind(&order.address)
        .bind(&order.purchase_order_no)
        .bind(order.total_amount().as_ref().map(Decimal::as_bigdecimal))
        .bind(created_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            let existing = sqlx::query(
                "SELECT id FROM sales_orders WHERE client_id = $1 AND purchase_order_no = $2",
            )
            .bind(client_id)
            .bind(&order.purchase_order_no)
            .fetch_one(&mut *tx)
            .await?;
            return Ok(InsertOrder::DuplicatePurchaseOrder {
                existing_id: existing.try_get("id")?,
            });
        };
        let seq: i64 = row.try_get("seq")?;
        let created = order.received(id, seq, client_id, rfc3339(created_at));
        // 8 parameters a line stays far below PostgreSQL's 65535 for the
        // largest order the parser accepts (1000 lines).
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO sales_order_lines (order_seq, line_no, product_code, quantity, uom, unit_price, line_amount, notes) ",
        );
        insert.push_values(&created.products, |mut values, line| {
            values
                .push_bind(seq)
                .push_bind(i32::try_from(line.line_no).unwrap_or(i32::MAX))
                .push_bind(&line.product_code)
                .push_bind(line.quantity.as_bigdecimal())
                .push_bind(&line.uom)
                .push_bind(line.unit_price.as_ref().map(Decimal::as_bigdecimal))
                .push_bind(line.line_amount.as_ref().map(Decimal::as_bigdecimal))
                .push_bind(&line.notes);
        });
        insert.build().execute(&mut *tx).await?;
        insert_history(
            &mut tx,
            seq,
            created_at,
            None,
            StatusChange {
                to: OrderStatus::Received,
                reason: None,
                actor: Actor::Partner,
                actor_name: client_id,
            },
        )
        .await?;
        if let Some(idempotency) = idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (client_id, key, request_hash, order_seq, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(client_id)
            .bind(idempotency.key)
            .bind(idempotency.request_hash)
            .bind(seq)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        commit(tx).await?;
        Ok(InsertOrder::Created(Box::new(created)))
    }

    pub async fn order(&self, target: OrderRef<'_>) -> StoreResult<Option<Order>> {
        let mut select = QueryBuilder::<Postgres>::new("SELECT * FROM sales_orders WHERE ");
        push_target(&mut select, target);
        let row = select.build().fetch_optional(&self.pool).await?;
        match row {
            Some(row) => Ok(self.with_lines(vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    pub async fn orders(&self, query: &OrderQuery) -> StoreResult<OrderPage> {
        let mut select = QueryBuilder::<Postgres>::new("SELECT * FROM sales_orders WHERE true");
        if let Some(client_id) = &query.client_id {
            select.push(" AND client_id = ").push_bind(client_id);
        }
        if let Some(po) = &query.purchase_order_no {
            select.push(" AND purchase_order_no = ").push_bind(po);
        }
        if let Some(status) = query.status {
            select.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(from) = query.created_from {
            select.push(" AND created_at >= ").push_bind(from);
        }
        if let Some(to) = query.created_to {
            select.push(" AND created_at < ").push_bind(to);
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
        let mut rows = select.build().fetch_all(&self.pool).await?;
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
        let at = to_millis(now);
        let mut tx = self.begin().await?;
        // The row lock makes racing changes of one order (a partner's cancel
        // and an operator's accept, on any instances) take turns; the second
        // reads the first one's status and is judged against it.
        let mut select =
            QueryBuilder::<Postgres>::new("SELECT seq, status FROM sales_orders WHERE ");
        push_target(&mut select, target);
        select.push(" FOR UPDATE");
        let Some(row) = select.build().fetch_optional(&mut *tx).await? else {
            return Ok(Transition::NotFound);
        };
        let seq: i64 = row.try_get("seq")?;
        let current = parse_status(row.try_get("status")?)?;
        if !current.can_move_to(change.to) {
            return Ok(Transition::Refused { current });
        }
        sqlx::query("UPDATE sales_orders SET status = $1, status_reason = $2, updated_at = $3 WHERE seq = $4")
            .bind(change.to.as_str())
            .bind(change.reason)
            .bind(at)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        insert_history(&mut tx, seq, at, Some(current), change).await?;
        commit(tx).await?;
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
             WHERE o.id = $1 ORDER BY h.id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OrderEvent {
                    at: rfc3339(row.try_get("at")?),
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
        let purged = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(at(before)?)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(purged)
    }

    // ----- audit -----

    /// Stores a batch of events in one transaction, one reused statement each.
    pub async fn record_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for event in events {
            sqlx::query(
                "INSERT INTO audit_events (at, client_id, kind, code, reason, source, request_id, actor)
                 VALUES ($1::timestamptz, $2, $3, $4, $5, $6, $7, $8)",
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
        commit(tx).await?;
        Ok(())
    }

    pub async fn events(
        &self,
        client_id: &str,
        since: Option<OffsetDateTime>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE client_id = $1 AND ($2::timestamptz IS NULL OR at >= $2)
             ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(client_id)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEvent {
                    at: rfc3339(row.try_get("at")?),
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
        let purged = sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(purged)
    }

    /// Turns order rows into orders, loading all their lines in one query.
    async fn with_lines(&self, rows: Vec<PgRow>) -> StoreResult<Vec<Order>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<i64> = rows
            .iter()
            .map(|row| row.try_get("seq"))
            .collect::<Result<_, _>>()?;
        let line_rows = sqlx::query(
            "SELECT * FROM sales_order_lines WHERE order_seq = ANY($1) ORDER BY order_seq, line_no",
        )
        .bind(&seqs)
        .fetch_all(&self.pool)
        .await?;
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
fn push_target(select: &mut QueryBuilder<Postgres>, target: OrderRef<'_>) {
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
    tx: &mut Transaction<'static, Postgres>,
    seq: i64,
    at: OffsetDateTime,
    from: Option<OrderStatus>,
    change: StatusChange<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sales_order_history (order_seq, at, actor, actor_name, from_status, to_status, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
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

/// Commits whether or not the caller is still waiting: a `COMMIT` cut off
/// after it was sent would otherwise be followed by a stray `ROLLBACK`, and
/// the caller could not know which one won.
async fn commit(tx: Transaction<'static, Postgres>) -> StoreResult<()> {
    detached(tx.commit()).await
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

/// Revokes every live login of the partner, inside `tx`.
async fn revoke_sessions(
    tx: &mut Transaction<'static, Postgres>,
    client_id: &str,
    reason: &str,
    now: i64,
) -> StoreResult<u64> {
    Ok(sqlx::query(
        "UPDATE auth_sessions SET revoked_at = $1, revoked_reason = $2 WHERE client_id = $3 AND revoked_at IS NULL",
    )
    .bind(at(now)?)
    .bind(reason)
    .bind(client_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// A unix time from the service as a `timestamptz` value.
fn at(unix: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|_| StoreError::Corrupt(format!("unix time {unix} out of range")))
}

async fn insert_key(
    tx: &mut Transaction<'static, Postgres>,
    client_id: &str,
    key_id: &str,
    key: &PublicKey,
    now: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO partner_keys (key_id, client_id, spki_der, fingerprint, bits, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key_id)
    .bind(client_id)
    .bind(key.spki_der())
    .bind(key.fingerprint())
    .bind(i64::from(key.bits()))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_token(
    tx: &mut Transaction<'static, Postgres>,
    token: &TokenRow<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO auth_tokens (jti, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token.jti)
    .bind(token.session_id)
    .bind(at(token.issued_at)?)
    .bind(at(token.expires_at)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn unix(row: &PgRow, column: &str) -> StoreResult<i64> {
    Ok(row.try_get::<OffsetDateTime, _>(column)?.unix_timestamp())
}

fn partner_from_row(row: &PgRow) -> StoreResult<PartnerRecord> {
    Ok(PartnerRecord {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        secret_version: row.try_get("secret_version")?,
        enabled: row.try_get("enabled")?,
        require_body_signature: row.try_get("require_body_signature")?,
        rate_limit: row.try_get("rate_limit")?,
        created_at: unix(row, "created_at")?,
    })
}

fn key_from_row(row: &PgRow) -> StoreResult<KeyRecord> {
    Ok(KeyRecord {
        key_id: row.try_get("key_id")?,
        client_id: row.try_get("client_id")?,
        spki_der: row.try_get("spki_der")?,
        fingerprint: row.try_get("fingerprint")?,
        bits: row.try_get("bits")?,
        created_at: unix(row, "created_at")?,
        revoked_at: row
            .try_get::<Option<OffsetDateTime>, _>("revoked_at")?
            .map(OffsetDateTime::unix_timestamp),
    })
}

fn decimal(row: &PgRow, column: &str) -> StoreResult<Option<Decimal>> {
    Ok(row
        .try_get::<Option<bigdecimal::BigDecimal>, _>(column)?
        .map(Decimal::from_bigdecimal))
}

fn line_from_row(row: &PgRow) -> StoreResult<OrderLine> {
    let line_no: i32 = row.try_get("line_no")?;
    Ok(OrderLine {
        line_no: u32::try_from(line_no)
            .map_err(|_| StoreError::Corrupt(format!("bad line number {line_no}")))?,
        product_code: row.try_get("product_code")?,
        quantity: decimal(row, "quantity")?
            .ok_or_else(|| StoreError::Corrupt("missing quantity".into()))?,
        uom: row.try_get("uom")?,
        unit_price: decimal(row, "unit_price")?,
        line_amount: decimal(row, "line_amount")?,
        notes: row.try_get("notes")?,
    })
}

fn order_from_row(row: &PgRow, seq: i64, products: Vec<OrderLine>) -> StoreResult<Order> {
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
        total_amount: decimal(row, "total_amount")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    })
}
