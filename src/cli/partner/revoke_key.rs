//! `partner revoke-key`: stop accepting signatures made with a key.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::Operator;
use crate::domain::{AuditKind, ClientId};

#[derive(Debug, Args)]
pub struct Opts {
    client_id: ClientId,
    key_id: String,
}

pub async fn run(opts: Opts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let Opts { client_id, key_id } = opts;
    if !operator
        .store
        .revoke_key(&client_id, &key_id, operator.now)
        .await?
    {
        bail!("{client_id} has no active key {key_id}");
    }
    operator
        .changed(
            AuditKind::KeyRevoked,
            &client_id,
            Some(key_id.clone()),
            &json!({"client_id": client_id, "key_id": key_id, "revoked": true}),
            &format!("Key {key_id} of {client_id} revoked."),
        )
        .await
}
