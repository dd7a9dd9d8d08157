//! `partner create`: register a partner with its first public key.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{Operator, read_key};
use crate::domain::{AuditKind, ClientId, ids};
use crate::usecase::partners::{self, Registered};

#[derive(Debug, Args)]
pub struct Opts {
    /// Display name, e.g. "Versuni".
    #[arg(long)]
    name: String,
    /// The partner's RSA public key (PEM: BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY).
    #[arg(long)]
    public_key: PathBuf,
    /// Choose the client id (e.g. versuni-client-001) instead of generating one.
    #[arg(long)]
    client_id: Option<String>,
    /// A sandbox (test-mode) partner: an `sk_test_` secret, orders and events
    /// with `livemode: false`, the sandbox routes, short test tokens; left out
    /// of the operator's order views unless `--include-sandbox`.
    #[arg(long)]
    sandbox: bool,
}

pub async fn run(opts: Opts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let name = opts.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bail!("--name must be 1 to 200 characters");
    }
    let key = read_key(&opts.public_key)?;
    let client_id = ClientId::parse(&opts.client_id.unwrap_or_else(ids::new_client_id))
        .map_err(|e| anyhow::anyhow!("--client-id: {e}"))?;
    let Some(Registered {
        client_id,
        client_secret,
        key_id,
    }) = partners::register(
        operator.store,
        client_id.clone(),
        name,
        &key,
        opts.sandbox,
        operator.now,
    )
    .await?
    else {
        bail!("a partner with client id {client_id} already exists");
    };
    let json = json!({
        "client_id": client_id.as_str(),
        "client_secret": client_secret.expose(),
        "key_id": key_id,
        "fingerprint": key.fingerprint(),
        "sandbox": opts.sandbox,
    });
    let text = format!(
        "{}Partner registered.\n  client_id:     {client_id}\n  client_secret: {}\n  key_id:        {key_id}\n  fingerprint:   {}\n\nThe client secret is shown only this once; hand it to the partner over a secure channel.",
        if opts.sandbox { "Sandbox " } else { "" },
        client_secret.expose(),
        key.fingerprint()
    );
    let reason = format!("key {key_id} registered");
    operator
        .changed(
            AuditKind::PartnerCreated,
            &client_id,
            Some(reason),
            &json,
            &text,
        )
        .await
}
