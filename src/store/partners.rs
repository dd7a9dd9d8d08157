//! Partners, their signing keys and their settings.

use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;

use super::dialect::{Bind, Dialect, PushBind, RowsAffected};
use super::encoding::Timestamp;
use super::error::StoreResult;
use super::sql::SqlStore;
use crate::domain::{ClientId, PublicKey};

#[derive(Debug, Clone)]
pub struct PartnerRecord {
    pub client_id: ClientId,
    pub name: String,
    pub secret_hash: String,
    pub secret_version: i64,
    pub enabled: bool,
    /// Only v2 signatures (covering the body) are accepted.
    pub require_body_signature: bool,
    /// Requests per second on the sales-order routes: `None` the default, 0 off.
    pub rate_limit: Option<i64>,
    /// A test-mode partner: its orders and events say `livemode: false`.
    pub sandbox: bool,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: String,
    pub client_id: ClientId,
    pub spki_der: Vec<u8>,
    pub fingerprint: String,
    pub bits: i64,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
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
    pub sandbox: bool,
    pub now: OffsetDateTime,
}

/// Outcome of registering an additional key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddKey {
    Added,
    NoSuchPartner,
    Duplicate { key_id: String },
}

impl<D: Dialect> SqlStore<D> {
    /// Registers a partner and its first key; `false` when the client id is taken.
    pub async fn insert_partner(&self, partner: &NewPartner<'_>) -> StoreResult<bool> {
        let now = Timestamp::new(partner.now);
        let mut tx = D::begin(&self.writer).await?;
        let inserted = sqlx::query::<D>(
            "INSERT INTO partners (client_id, name, secret_hash, sandbox, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (client_id) DO NOTHING",
        )
        .arg(partner.client_id.as_str())
        .arg(partner.name)
        .arg(partner.secret_hash)
        .arg(partner.sandbox)
        .arg(now)
        .execute(D::on(&mut tx))
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        insert_key(&mut tx, partner.client_id, partner.key_id, partner.key, now).await?;
        D::commit(tx).await?;
        Ok(true)
    }

    pub async fn partner(&self, client_id: &ClientId) -> StoreResult<Option<PartnerRecord>> {
        let row = sqlx::query::<D>("SELECT * FROM partners WHERE client_id = $1")
            .arg(client_id)
            .fetch_optional(D::pool(&self.reader))
            .await?;
        row.map(|row| partner_from_row::<D>(&row)).transpose()
    }

    pub async fn partners(&self) -> StoreResult<Vec<PartnerRecord>> {
        let rows = sqlx::query::<D>("SELECT * FROM partners ORDER BY client_id")
            .fetch_all(D::pool(&self.reader))
            .await?;
        rows.iter().map(partner_from_row::<D>).collect()
    }

    /// `false` when there is no such partner. Disabling also ends every login
    /// of the partner: tokens issued before stay dead when it is enabled again.
    pub async fn set_partner_enabled(
        &self,
        client_id: &ClientId,
        enabled: bool,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut tx = D::begin(&self.writer).await?;
        let affected = sqlx::query::<D>(
            "UPDATE partners SET enabled = $1, updated_at = $2 WHERE client_id = $3",
        )
        .arg(enabled)
        .arg(Timestamp::new(now))
        .arg(client_id)
        .execute(D::on(&mut tx))
        .await?
        .rows_affected();
        if !enabled {
            super::sessions::revoke_all(&mut tx, client_id, "partner disabled", now).await?;
        }
        D::commit(tx).await?;
        Ok(affected == 1)
    }

    /// Changes the given settings of a partner in one statement. `false`
    /// when there is no such partner.
    pub async fn update_partner(
        &self,
        client_id: &ClientId,
        settings: &PartnerSettings,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut update = QueryBuilder::<D>::new("UPDATE partners SET updated_at = ");
        update.arg(Timestamp::new(now));
        if let Some(required) = settings.require_body_signature {
            update.push(", require_body_signature = ").arg(required);
        }
        if let Some(rate_limit) = settings.rate_limit {
            update.push(", rate_limit = ").arg(rate_limit);
        }
        update.push(" WHERE client_id = ").arg(client_id);
        let affected = update
            .build()
            .execute(D::pool(&self.writer))
            .await?
            .rows_affected();
        Ok(affected == 1)
    }

    /// Replaces the secret hash and bumps its version, which invalidates every
    /// token issued under the old secret. `false` when there is no such partner.
    pub async fn rotate_secret(
        &self,
        client_id: &ClientId,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let affected = sqlx::query::<D>(
            "UPDATE partners SET secret_hash = $1, secret_version = secret_version + 1, updated_at = $2
             WHERE client_id = $3",
        )
        .arg(secret_hash)
        .arg(Timestamp::new(now))
        .arg(client_id)
        .execute(D::pool(&self.writer))
        .await?
        .rows_affected();
        Ok(affected == 1)
    }

    pub async fn add_key(
        &self,
        client_id: &ClientId,
        key_id: &str,
        key: &PublicKey,
        now: OffsetDateTime,
    ) -> StoreResult<AddKey> {
        let mut tx = D::begin(&self.writer).await?;
        // Locking the partner row makes concurrent `add-key` calls for one
        // partner take turns, so the duplicate check below cannot race.
        let mut select = QueryBuilder::<D>::new("SELECT 1 FROM partners WHERE client_id = ");
        select.arg(client_id).push(D::lock(" FOR UPDATE"));
        let exists = select
            .build()
            .fetch_optional(D::on(&mut tx))
            .await?
            .is_some();
        if !exists {
            return Ok(AddKey::NoSuchPartner);
        }
        let duplicate = sqlx::query::<D>(
            "SELECT key_id FROM partner_keys WHERE client_id = $1 AND fingerprint = $2",
        )
        .arg(client_id)
        .arg(key.fingerprint())
        .fetch_optional(D::on(&mut tx))
        .await?;
        if let Some(row) = duplicate {
            return Ok(AddKey::Duplicate {
                key_id: D::get(&row, "key_id")?,
            });
        }
        insert_key(&mut tx, client_id, key_id, key, Timestamp::new(now)).await?;
        D::commit(tx).await?;
        Ok(AddKey::Added)
    }

    /// `false` when the partner has no such active key.
    pub async fn revoke_key(
        &self,
        client_id: &ClientId,
        key_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let affected = sqlx::query::<D>(
            "UPDATE partner_keys SET revoked_at = $1 WHERE client_id = $2 AND key_id = $3 AND revoked_at IS NULL",
        )
        .arg(Timestamp::new(now))
        .arg(client_id)
        .arg(key_id)
        .execute(D::pool(&self.writer))
        .await?
        .rows_affected();
        Ok(affected == 1)
    }

    pub async fn keys(&self, client_id: &ClientId) -> StoreResult<Vec<KeyRecord>> {
        let rows = sqlx::query::<D>(
            "SELECT * FROM partner_keys WHERE client_id = $1 ORDER BY created_at, key_id",
        )
        .arg(client_id)
        .fetch_all(D::pool(&self.reader))
        .await?;
        rows.iter().map(key_from_row::<D>).collect()
    }

    /// SPKI DER of each active key, for signature checks.
    pub async fn active_keys(&self, client_id: &ClientId) -> StoreResult<Vec<Vec<u8>>> {
        let rows = sqlx::query::<D>(
            "SELECT spki_der FROM partner_keys WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .arg(client_id)
        .fetch_all(D::pool(&self.reader))
        .await?;
        rows.iter()
            .map(|row| Ok(D::get(row, "spki_der")?))
            .collect()
    }
}

async fn insert_key<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    client_id: &ClientId,
    key_id: &str,
    key: &PublicKey,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query::<D>(
        "INSERT INTO partner_keys (key_id, client_id, spki_der, fingerprint, bits, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .arg(key_id)
    .arg(client_id)
    .arg(key.spki_der())
    .arg(key.fingerprint())
    .arg(i64::from(key.bits()))
    .arg(now)
    .execute(D::on(tx))
    .await?;
    Ok(())
}

fn partner_from_row<D: Dialect>(row: &D::Row) -> StoreResult<PartnerRecord> {
    Ok(PartnerRecord {
        client_id: D::get(row, "client_id")?,
        name: D::get(row, "name")?,
        secret_hash: D::get(row, "secret_hash")?,
        secret_version: D::get(row, "secret_version")?,
        enabled: D::get(row, "enabled")?,
        require_body_signature: D::get(row, "require_body_signature")?,
        rate_limit: D::get(row, "rate_limit")?,
        sandbox: D::get(row, "sandbox")?,
        created_at: D::get::<Timestamp>(row, "created_at")?.get(),
    })
}

fn key_from_row<D: Dialect>(row: &D::Row) -> StoreResult<KeyRecord> {
    Ok(KeyRecord {
        key_id: D::get(row, "key_id")?,
        client_id: D::get(row, "client_id")?,
        spki_der: D::get(row, "spki_der")?,
        fingerprint: D::get(row, "fingerprint")?,
        bits: D::get(row, "bits")?,
        created_at: D::get::<Timestamp>(row, "created_at")?.get(),
        revoked_at: D::get::<Option<Timestamp>>(row, "revoked_at")?.map(Timestamp::get),
    })
}
