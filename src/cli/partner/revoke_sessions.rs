//! `partner revoke-sessions`: end every login of a partner that stays enabled.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{Operator, no_partner};
use crate::domain::{AuditKind, ClientId};

#[derive(Debug, Args)]
pub struct Opts {
    client_id: ClientId,
}

pub async fn run(opts: Opts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let client_id = opts.client_id;
    if operator.store.partner(&client_id).await?.is_none() {
        bail!(no_partner(&client_id));
    }
    let revoked = operator
        .store
        .revoke_sessions(&client_id, "revoked by the operator", operator.now)
        .await?;
    let json = json!({"client_id": client_id, "sessions_revoked": revoked});
    let text = format!(
        "{revoked} login(s) of {client_id} revoked; its tokens no longer work and it must log in again."
    );
    operator
        .changed(AuditKind::SessionsRevoked, &client_id, None, &json, &text)
        .await
}
