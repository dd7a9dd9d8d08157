//! Logins, the lineage of their tokens, and used v2 signatures.

use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;

use super::dialect::{Bind, Dialect, PushBind, RowsAffected};
use super::encoding::Timestamp;
use super::error::{StoreError, StoreResult};
use super::sql::SqlStore;
use crate::domain::ClientId;

/// What an API call needs to know about the token's login, read in one query.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub client_id: ClientId,
    pub partner_enabled: bool,
    pub secret_version: i64,
    pub revoked: bool,
    pub require_body_signature: bool,
    pub rate_limit: Option<i64>,
    /// A sandbox (test-mode) partner.
    pub sandbox: bool,
}

/// A token being issued, by login or refresh.
#[derive(Debug, Clone)]
pub struct TokenRow<'a> {
    pub jti: &'a str,
    pub session_id: &'a str,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    Refreshed,
    /// The presented token was refreshed moments ago (within the grace
    /// window) into this token, which has not been refreshed since: the
    /// answer was lost, and the same token is given again.
    Repeated(IssuedToken),
    /// The presented token had already been refreshed: its session is now revoked.
    Reused,
    UnknownToken,
    SessionRevoked,
    PartnerDisabled,
    SecretRotated,
}

/// A token already issued, as stored: enough to issue it again unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub jti: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What the stored lineage says of a token presented for refresh.
struct Presented {
    partner_enabled: bool,
    session_revoked: bool,
    already_refreshed: bool,
    secret_version: i64,
}

impl Presented {
    /// The refresh policy (RFC 9700 §4.14.2), decided here once for both
    /// databases: `None` when the token may be exchanged.
    fn refusal(&self, secret_version: i64) -> Option<RefreshOutcome> {
        // A disabled partner hears that first: disabling also revoked its logins.
        if !self.partner_enabled {
            Some(RefreshOutcome::PartnerDisabled)
        } else if self.session_revoked {
            Some(RefreshOutcome::SessionRevoked)
        } else if self.already_refreshed {
            Some(RefreshOutcome::Reused)
        } else if self.secret_version != secret_version {
            Some(RefreshOutcome::SecretRotated)
        } else {
            None
        }
    }
}

/// Token `jti` as issued, unless it has been refreshed itself. Read in a
/// statement of its own, after the presented token's row was locked: on
/// PostgreSQL that statement sees every refresh committed before the lock
/// was granted (a join in the locking statement would not).
async fn not_refreshed<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    jti: &str,
) -> StoreResult<Option<IssuedToken>> {
    let row = sqlx::query::<D>(
        "SELECT issued_at, expires_at, refreshed_at IS NOT NULL AS refreshed
         FROM auth_tokens WHERE jti = $1",
    )
    .arg(jti)
    .fetch_optional(D::on(tx))
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if D::get::<bool>(&row, "refreshed")? {
        return Ok(None);
    }
    Ok(Some(IssuedToken {
        jti: jti.to_owned(),
        issued_at: D::get::<Timestamp>(&row, "issued_at")?.get(),
        expires_at: D::get::<Timestamp>(&row, "expires_at")?.get(),
    }))
}

impl<D: Dialect> SqlStore<D> {
    /// `false` when the partner is disabled (or gone) by now: a login that
    /// raced a disable must not leave a live session behind it. Where there
    /// are row locks the partner row is share-locked, so a disable waits for
    /// this insert and then revokes it, or came first and is seen.
    pub async fn start_session(
        &self,
        client_id: &ClientId,
        token: &TokenRow<'_>,
    ) -> StoreResult<bool> {
        let mut tx = D::begin(&self.writer).await?;
        let mut select = QueryBuilder::<D>::new("SELECT enabled FROM partners WHERE client_id = ");
        select.arg(client_id).push(D::lock(" FOR SHARE"));
        let row = select.build().fetch_optional(D::on(&mut tx)).await?;
        let enabled = row.map(|row| D::get::<bool>(&row, "enabled")).transpose()?;
        if enabled != Some(true) {
            return Ok(false);
        }
        sqlx::query::<D>(
            "INSERT INTO auth_sessions (id, client_id, authenticated_at) VALUES ($1, $2, $3)",
        )
        .arg(token.session_id)
        .arg(client_id)
        .arg(Timestamp::new(token.issued_at))
        .execute(D::on(&mut tx))
        .await?;
        insert_token(&mut tx, token).await?;
        D::commit(tx).await?;
        Ok(true)
    }

    pub async fn session_state(&self, session_id: &str) -> StoreResult<Option<SessionState>> {
        let row = sqlx::query::<D>(
            "SELECT s.client_id, s.revoked_at IS NOT NULL AS revoked, p.enabled, p.secret_version,
                    p.require_body_signature, p.rate_limit, p.sandbox
             FROM auth_sessions s JOIN partners p ON p.client_id = s.client_id WHERE s.id = $1",
        )
        .arg(session_id)
        .fetch_optional(D::pool(&self.reader))
        .await?;
        row.map(|row| {
            Ok(SessionState {
                client_id: D::get(&row, "client_id")?,
                partner_enabled: D::get(&row, "enabled")?,
                secret_version: D::get(&row, "secret_version")?,
                revoked: D::get(&row, "revoked")?,
                require_body_signature: D::get(&row, "require_body_signature")?,
                rate_limit: D::get(&row, "rate_limit")?,
                sandbox: D::get(&row, "sandbox")?,
            })
        })
        .transpose()
    }

    /// Exchanges token `old_jti` for `new`, at most once, whichever instance
    /// asks. A second attempt on the same token is reuse: the whole session
    /// is revoked (RFC 9700 §4.14.2).
    /// Within `grace` of that first exchange, while its token has not been
    /// refreshed in turn, the same token is answered again instead
    /// ([`RefreshOutcome::Repeated`]): a client whose answer was lost can
    /// retry without losing its login.
    pub async fn refresh(
        &self,
        old_jti: &str,
        secret_version: i64,
        new: &TokenRow<'_>,
        grace: time::Duration,
    ) -> StoreResult<RefreshOutcome> {
        let issued_at = Timestamp::new(new.issued_at);
        let mut tx = D::begin(&self.writer).await?;
        // Racing refreshes of one token (from any instance) queue here, on
        // the row locks or behind the one writer; each later one reads the
        // committed `refreshed_at` of the first and is treated as reuse.
        let mut select = QueryBuilder::<D>::new(
            "SELECT t.refreshed_at IS NOT NULL AS refreshed, s.revoked_at IS NOT NULL AS revoked,
                    p.enabled, p.secret_version, t.refreshed_at, t.replaced_by
             FROM auth_tokens t
             JOIN auth_sessions s ON s.id = t.session_id
             JOIN partners p ON p.client_id = s.client_id
             WHERE t.jti = ",
        );
        select
            .arg(old_jti)
            .push(" AND t.session_id = ")
            .arg(new.session_id)
            .push(D::lock(" FOR UPDATE OF t, s"));
        let Some(row) = select.build().fetch_optional(D::on(&mut tx)).await? else {
            return Ok(RefreshOutcome::UnknownToken);
        };
        let presented = Presented {
            partner_enabled: D::get(&row, "enabled")?,
            session_revoked: D::get(&row, "revoked")?,
            already_refreshed: D::get(&row, "refreshed")?,
            secret_version: D::get(&row, "secret_version")?,
        };
        let refusal = presented.refusal(secret_version);
        let refreshed_at: Option<Timestamp> = D::get(&row, "refreshed_at")?;
        let replaced_by: Option<String> = D::get(&row, "replaced_by")?;
        drop(row);
        if refusal == Some(RefreshOutcome::Reused)
            && let (Some(refreshed_at), Some(next)) = (refreshed_at, replaced_by)
            && new.issued_at - refreshed_at.get() < grace
            && let Some(repeated) = not_refreshed(&mut tx, &next).await?
        {
            // A lost answer, but the secret was rotated since: the token it
            // would repeat is dead, so say why rather than hand it out.
            if presented.secret_version != secret_version {
                return Ok(RefreshOutcome::SecretRotated);
            }
            return Ok(RefreshOutcome::Repeated(repeated));
        }
        let outcome = match refusal {
            Some(RefreshOutcome::Reused) => {
                sqlx::query::<D>(
                    "UPDATE auth_sessions SET revoked_at = $1, revoked_reason = 'refresh token reuse' WHERE id = $2",
                )
                .arg(issued_at)
                .arg(new.session_id)
                .execute(D::on(&mut tx))
                .await?;
                RefreshOutcome::Reused
            }
            Some(refused) => return Ok(refused),
            None => {
                let claimed = sqlx::query::<D>(
                    "UPDATE auth_tokens SET refreshed_at = $1, replaced_by = $2 WHERE jti = $3 AND refreshed_at IS NULL",
                )
                .arg(issued_at)
                .arg(new.jti)
                .arg(old_jti)
                .execute(D::on(&mut tx))
                .await?
                .rows_affected();
                if claimed != 1 {
                    return Err(StoreError::Corrupt(
                        "token refreshed twice while its row was locked".into(),
                    ));
                }
                insert_token(&mut tx, new).await?;
                RefreshOutcome::Refreshed
            }
        };
        D::commit(tx).await?;
        Ok(outcome)
    }

    /// Ends every login of the partner (disable does too); returns how many
    /// were live.
    pub async fn revoke_sessions(
        &self,
        client_id: &ClientId,
        reason: &str,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut tx = D::begin(&self.writer).await?;
        let revoked = revoke_all(&mut tx, client_id, reason, now).await?;
        D::commit(tx).await?;
        Ok(revoked)
    }

    /// Records a v2 signature's digest until `expires_at`; `false` when it
    /// was recorded before and has not expired (a replay).
    pub async fn remember_signature(
        &self,
        client_id: &ClientId,
        digest: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let fresh = sqlx::query::<D>(
            "INSERT INTO used_signatures (client_id, digest, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, digest) DO UPDATE SET expires_at = excluded.expires_at
             WHERE used_signatures.expires_at <= $4",
        )
        .arg(client_id)
        .arg(digest)
        .arg(Timestamp::new(expires_at))
        .arg(Timestamp::new(now))
        .execute(D::pool(&self.writer))
        .await?
        .rows_affected();
        Ok(fresh == 1)
    }

    /// Forgets signature digests whose window has passed.
    pub async fn purge_signatures(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let purged = sqlx::query::<D>("DELETE FROM used_signatures WHERE expires_at <= $1")
            .arg(Timestamp::new(now))
            .execute(D::pool(&self.writer))
            .await?
            .rows_affected();
        Ok(purged)
    }
}

/// Revokes every live login of the partner, inside `tx`.
pub(super) async fn revoke_all<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    client_id: &ClientId,
    reason: &str,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    Ok(sqlx::query::<D>(
        "UPDATE auth_sessions SET revoked_at = $1, revoked_reason = $2 WHERE client_id = $3 AND revoked_at IS NULL",
    )
    .arg(Timestamp::new(now))
    .arg(reason)
    .arg(client_id)
    .execute(D::on(tx))
    .await?
    .rows_affected())
}

async fn insert_token<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    token: &TokenRow<'_>,
) -> StoreResult<()> {
    sqlx::query::<D>(
        "INSERT INTO auth_tokens (jti, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .arg(token.jti)
    .arg(token.session_id)
    .arg(Timestamp::new(token.issued_at))
    .arg(Timestamp::new(token.expires_at))
    .execute(D::on(tx))
    .await?;
    Ok(())
}
