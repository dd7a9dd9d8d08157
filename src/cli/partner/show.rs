//! `partner list` and `partner show`: who is registered, with which keys.

use anyhow::Context;
use clap::Args;
use serde_json::json;

use super::{Operator, no_partner, status};
use crate::auth::rate_limit::RateLimit;
use crate::domain::ClientId;
use crate::domain::partner::fingerprint;

#[derive(Debug, Args)]
pub struct Opts {
    client_id: ClientId,
}

pub async fn list(operator: &Operator<'_>) -> anyhow::Result<()> {
    let partners = operator.store.partners().await?;
    let rows: Vec<serde_json::Value> = partners
        .iter()
        .map(|p| json!({"client_id": p.client_id, "name": p.name, "enabled": p.enabled, "sandbox": p.sandbox, "created_at": p.created_at.unix_timestamp()}))
        .collect();
    let mut text = format!(
        "{:<40} {:<9} {:<8} {}",
        "CLIENT ID", "STATUS", "MODE", "NAME"
    );
    for p in &partners {
        text.push_str(&format!(
            "\n{:<40} {:<9} {:<8} {}",
            p.client_id,
            status(p.enabled),
            if p.sandbox { "sandbox" } else { "live" },
            p.name
        ));
    }
    operator.output.print(&json!(rows), &text);
    Ok(())
}

pub async fn run(opts: Opts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let client_id = opts.client_id;
    let partner = operator
        .store
        .partner(&client_id)
        .await?
        .with_context(|| no_partner(&client_id))?;
    let keys = operator.store.keys(&client_id).await?;
    let key_rows: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            json!({"key_id": k.key_id, "fingerprint": k.fingerprint, "bits": k.bits,
                   "created_at": k.created_at.unix_timestamp(), "revoked_at": k.revoked_at.map(time::OffsetDateTime::unix_timestamp)})
        })
        .collect();
    let mut text = format!(
        "client_id:      {}\nname:           {}\nmode:           {}\nstatus:         {}\nsecret_version: {}\nsignature:      {}\nrate limit:     {}\nkeys:",
        partner.client_id,
        partner.name,
        if partner.sandbox {
            "sandbox (test mode)"
        } else {
            "live"
        },
        status(partner.enabled),
        partner.secret_version,
        if partner.require_body_signature {
            "v2 required"
        } else {
            "v1 or v2"
        },
        RateLimit::from_column(partner.rate_limit)
    );
    for k in &keys {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        text.push_str(&format!(
            "\n  {}  RSA-{}  {}  {}",
            k.key_id,
            k.bits,
            state,
            fingerprint(&k.spki_der)
        ));
    }
    operator.output.print(
        &json!({"client_id": partner.client_id, "name": partner.name, "enabled": partner.enabled,
                "secret_version": partner.secret_version, "require_body_signature": partner.require_body_signature,
                "rate_limit": partner.rate_limit, "sandbox": partner.sandbox,
                "created_at": partner.created_at.unix_timestamp(), "keys": key_rows}),
        &text,
    );
    Ok(())
}
