//! `partner rotate-secret`: a new client secret, shown once; tokens issued
//! under the old one stop working.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{Operator, no_partner};
use crate::domain::{AuditKind, ClientId};
use crate::usecase::partners;

#[derive(Debug, Args)]
pub struct Opts {
    client_id: ClientId,
}

pub async fn run(opts: Opts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let client_id = opts.client_id;
    let Some(client_secret) =
        partners::rotate_secret(operator.store, &client_id, operator.now).await?
    else {
        bail!(no_partner(&client_id));
    };
    let json = json!({"client_id": client_id, "client_secret": client_secret.expose()});
    let text = format!(
        "New client secret for {client_id}: {}\nTokens issued under the old secret no longer work.",
        client_secret.expose()
    );
    operator
        .changed(AuditKind::SecretRotated, &client_id, None, &json, &text)
        .await
}
