//! `partner add-key`: register another public key, for rotation with overlap.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{Operator, no_partner, read_key};
use crate::domain::{AuditKind, ClientId, ids};
use crate::store::AddKey;

#[derive(Debug, Args)]
pub struct Opts {
    client_id: ClientId,
    #[arg(long)]
    public_key: PathBuf,
}

pub async fn run(opts: Opts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let client_id = opts.client_id;
    let key = read_key(&opts.public_key)?;
    let key_id = ids::new_key_id();
    match operator
        .store
        .add_key(&client_id, &key_id, &key, operator.now)
        .await?
    {
        AddKey::Added => {}
        AddKey::NoSuchPartner => bail!(no_partner(&client_id)),
        AddKey::Duplicate { key_id } => {
            bail!("this key is already registered for {client_id} as {key_id}")
        }
    }
    let from = format!("from {}", opts.public_key.display());
    operator
        .changed(
            AuditKind::KeyAdded,
            &client_id,
            Some(from),
            &json!({"client_id": client_id, "key_id": key_id, "fingerprint": key.fingerprint()}),
            &format!("Key {key_id} added to {client_id} ({})", key.fingerprint()),
        )
        .await
}
