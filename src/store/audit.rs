//! Security-relevant activity, as recorded and as `partner activity` shows it.

use sqlx::QueryBuilder;
use time::OffsetDateTime;

use super::dialect::{Dialect, PushBind, RowsAffected};
use super::encoding::{Timestamp, rfc3339};
use super::error::StoreResult;
use super::sql::SqlStore;
use crate::domain::{AuditKind, ClientId};

/// One security-relevant event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    /// Shown as RFC 3339, UTC, to the millisecond.
    #[serde(serialize_with = "serialize_time")]
    pub at: OffsetDateTime,
    pub client_id: Option<String>,
    pub kind: AuditKind,
    /// The error code answered, when there was one.
    pub code: Option<String>,
    pub reason: Option<String>,
    /// The caller's address.
    pub source: Option<String>,
    pub request_id: Option<String>,
    /// `partner` (an API call) or `operator:NAME` (a CLI change).
    pub actor: String,
}

/// Which of a partner's events to read.
#[derive(Debug, Clone, Copy)]
pub struct AuditQuery<'a> {
    pub since: Option<OffsetDateTime>,
    pub request_id: Option<&'a str>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl AuditQuery<'_> {
    /// The newest `limit` events.
    pub fn latest(limit: u32) -> Self {
        Self {
            since: None,
            request_id: None,
            limit,
        }
    }
}

fn serialize_time<S: serde::Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*at))
}

impl<D: Dialect> SqlStore<D> {
    /// Stores a batch of events in one transaction and one statement.
    pub async fn record_audit(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = D::begin(&self.writer).await?;
        // 8 binds an event: chunks stay under either database's bind limit.
        for chunk in events.chunks(1000) {
            let mut insert = QueryBuilder::<D>::new(
                "INSERT INTO audit_events (at, client_id, kind, code, reason, source, request_id, actor) ",
            );
            insert.push_values(chunk, |mut values, event| {
                values
                    .arg(Timestamp::new(event.at))
                    .arg(&event.client_id)
                    .arg(event.kind.as_str())
                    .arg(&event.code)
                    .arg(&event.reason)
                    .arg(&event.source)
                    .arg(&event.request_id)
                    .arg(&event.actor);
            });
            insert.build().execute(D::on(&mut tx)).await?;
        }
        D::commit(tx).await?;
        Ok(())
    }

    /// A partner's events, newest first, at or after `query.since`, of
    /// one request if `query.request_id` names it.
    pub async fn audit_events(
        &self,
        client_id: &ClientId,
        query: &AuditQuery<'_>,
    ) -> StoreResult<Vec<AuditEvent>> {
        let mut select = QueryBuilder::<D>::new("SELECT * FROM audit_events WHERE client_id = ");
        select.arg(client_id);
        if let Some(since) = query.since {
            select.push(" AND at >= ").arg(Timestamp::new(since));
        }
        if let Some(request_id) = query.request_id {
            select.push(" AND request_id = ").arg(request_id);
        }
        let limit = query.limit;
        select
            .push(" ORDER BY at DESC, id DESC LIMIT ")
            .arg(i64::from(limit));
        let rows = select.build().fetch_all(D::pool(&self.reader)).await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: &str = D::get(row, "kind")?;
            // Written by a newer release sharing the database: left out of
            // this one's view rather than failing the whole page.
            let Some(kind) = AuditKind::parse(kind) else {
                tracing::warn!(
                    kind,
                    "an audit event of a kind this release does not know is left out"
                );
                continue;
            };
            events.push(AuditEvent {
                at: D::get::<Timestamp>(row, "at")?.get(),
                client_id: D::get(row, "client_id")?,
                kind,
                code: D::get(row, "code")?,
                reason: D::get(row, "reason")?,
                source: D::get(row, "source")?,
                request_id: D::get(row, "request_id")?,
                actor: D::get(row, "actor")?,
            });
        }
        Ok(events)
    }

    /// Forgets events older than `before`.
    pub async fn purge_audit(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let mut delete = QueryBuilder::<D>::new("DELETE FROM audit_events WHERE at < ");
        delete.arg(Timestamp::new(before));
        let purged = delete
            .build()
            .execute(D::pool(&self.writer))
            .await?
            .rows_affected();
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::{AuditKind, ClientId};
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn an_event_of_a_kind_a_newer_release_wrote_is_left_out_not_an_error() {
        let (_dir, store) = SqliteStore::with_partner_p().await;
        for kind in ["login_succeeded", "a_kind_from_a_newer_release"] {
            sqlx::query(
                "INSERT INTO audit_events (at, client_id, kind, actor)
                 VALUES ('2026-11-30T12:00:00.000Z', 'p', $1, 'partner')",
            )
            .bind(kind)
            .execute(&store.sql.writer)
            .await
            .unwrap();
        }

        let events = store
            .sql
            .audit_events(
                &ClientId::parse("p").unwrap(),
                &super::AuditQuery::latest(10),
            )
            .await
            .unwrap();

        let kinds: Vec<AuditKind> = events.iter().map(|event| event.kind).collect();
        assert_eq!(kinds, [AuditKind::LoginSucceeded]);
    }
}
