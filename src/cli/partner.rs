//! `partner`: register partners and manage their secrets and keys.
//!
//! Every change is a database write, and the server reads partners and keys on
//! each request, so a change is live on running servers at once.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::auth::secret;
use crate::config::Secret;
use crate::domain::partner::fingerprint;
use crate::domain::{ClientId, PublicKey, ids};

use super::{Output, operator_name, parse_time};
use crate::auth::rate_limit::RateLimit;
use crate::store::{AddKey, AuditEvent, NewPartner, PartnerSettings, Store};

#[derive(Debug, Args)]
pub struct PartnerArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: PartnerCommand,
}

#[derive(Debug, Subcommand)]
enum PartnerCommand {
    /// Register a partner with its first public key; prints the client secret once.
    Create {
        /// Display name, e.g. "Versuni".
        #[arg(long)]
        name: String,
        /// The partner's RSA public key (PEM: BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY).
        #[arg(long)]
        public_key: PathBuf,
        /// Choose the client id (e.g. versuni-client-001) instead of generating one.
        #[arg(long)]
        client_id: Option<String>,
    },
    /// List all partners.
    List,
    /// Show one partner and its keys.
    Show { client_id: String },
    /// Refuse logins and requests from a partner, and end its logins: its
    /// tokens stay dead when it is enabled again.
    Disable { client_id: String },
    /// Allow a disabled partner again.
    Enable { client_id: String },
    /// End every login of a partner that stays enabled: its tokens stop
    /// working at once, and it logs in again with its secret.
    RevokeSessions { client_id: String },
    /// Issue a new client secret (printed once); tokens from the old one stop working.
    RotateSecret { client_id: String },
    /// Register an additional public key (for rotation with overlap).
    AddKey {
        client_id: String,
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Stop accepting signatures made with a key.
    RevokeKey { client_id: String, key_id: String },
    /// Recent security events: logins, refreshes, refused requests and why,
    /// throttling, operator changes. Newest first.
    Activity {
        client_id: String,
        /// Only events at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        since: Option<time::OffsetDateTime>,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Change a partner's settings.
    #[command(group = clap::ArgGroup::new("setting").required(true).multiple(true))]
    Set {
        client_id: String,
        /// Accept only v2 signatures, which cover method, path, query and body.
        #[arg(long, action = clap::ArgAction::Set, group = "setting")]
        require_body_signature: Option<bool>,
        /// Requests per second on the sales-order routes (bursts of ten
        /// seconds' worth), `off`, or `default` (100/s, bursts of 1000).
        #[arg(long, value_parser = parse_rate_limit, group = "setting")]
        rate_limit: Option<RateLimit>,
    },
}

pub async fn run(args: PartnerArgs, store: &Store) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let output = Output { json: args.json };
    let change = operator_change(&args.command);
    match args.command {
        PartnerCommand::Create {
            name,
            public_key,
            client_id,
        } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                bail!("--name must be 1 to 200 characters");
            }
            let key = read_key(&public_key)?;
            let client_id = ClientId::parse(&client_id.unwrap_or_else(ids::new_client_id))
                .map_err(|e| anyhow::anyhow!("--client-id: {e}"))?;
            let client_secret = Secret::new(ids::new_client_secret());
            let secret_hash = secret::hash(&client_secret)?;
            let key_id = ids::new_key_id();
            let partner = NewPartner {
                client_id: &client_id,
                name,
                secret_hash: &secret_hash,
                key_id: &key_id,
                key: &key,
                now,
            };
            if !store.insert_partner(&partner).await? {
                bail!("a partner with client id {client_id} already exists");
            }
            record(
                store,
                "partner_created",
                client_id.as_str(),
                Some(format!("key {key_id} registered")),
            )
            .await?;
            output.print(
                &json!({
                    "client_id": client_id.as_str(),
                    "client_secret": client_secret.expose(),
                    "key_id": key_id,
                    "fingerprint": key.fingerprint(),
                }),
                &format!(
                    "Partner registered.\n  client_id:     {client_id}\n  client_secret: {}\n  key_id:        {key_id}\n  fingerprint:   {}\n\nThe client secret is shown only this once; hand it to the partner over a secure channel.",
                    client_secret.expose(),
                    key.fingerprint()
                ),
            );
        }
        PartnerCommand::List => {
            let partners = store.partners().await?;
            let rows: Vec<serde_json::Value> = partners
                .iter()
                .map(|p| json!({"client_id": p.client_id, "name": p.name, "enabled": p.enabled, "created_at": p.created_at}))
                .collect();
            let mut text = format!("{:<40} {:<9} {}", "CLIENT ID", "STATUS", "NAME");
            for p in &partners {
                text.push_str(&format!(
                    "\n{:<40} {:<9} {}",
                    p.client_id,
                    status(p.enabled),
                    p.name
                ));
            }
            output.print(&json!(rows), &text);
        }
        PartnerCommand::Show { client_id } => {
            let partner = store
                .partner(&client_id)
                .await?
                .with_context(|| no_partner(&client_id))?;
            let keys = store.keys(&client_id).await?;
            let key_rows: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| {
                    json!({"key_id": k.key_id, "fingerprint": k.fingerprint, "bits": k.bits,
                           "created_at": k.created_at, "revoked_at": k.revoked_at})
                })
                .collect();
            let mut text = format!(
                "client_id:      {}\nname:           {}\nstatus:         {}\nsecret_version: {}\nsignature:      {}\nrate limit:     {}\nkeys:",
                partner.client_id,
                partner.name,
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
            output.print(
                &json!({"client_id": partner.client_id, "name": partner.name, "enabled": partner.enabled,
                        "secret_version": partner.secret_version, "require_body_signature": partner.require_body_signature,
                        "rate_limit": partner.rate_limit,
                        "created_at": partner.created_at, "keys": key_rows}),
                &text,
            );
        }
        PartnerCommand::Disable { client_id } => {
            set_enabled(store, &output, &client_id, false, now).await?;
        }
        PartnerCommand::Enable { client_id } => {
            set_enabled(store, &output, &client_id, true, now).await?;
        }
        PartnerCommand::RevokeSessions { client_id } => {
            if store.partner(&client_id).await?.is_none() {
                bail!(no_partner(&client_id));
            }
            let revoked = store
                .revoke_sessions(&client_id, "revoked by the operator", now)
                .await?;
            output.print(
                &json!({"client_id": client_id, "sessions_revoked": revoked}),
                &format!(
                    "{revoked} login(s) of {client_id} revoked; its tokens no longer work and it must log in again."
                ),
            );
        }
        PartnerCommand::RotateSecret { client_id } => {
            let client_secret = Secret::new(ids::new_client_secret());
            if !store
                .rotate_secret(&client_id, &secret::hash(&client_secret)?, now)
                .await?
            {
                bail!(no_partner(&client_id));
            }
            output.print(
                &json!({"client_id": client_id, "client_secret": client_secret.expose()}),
                &format!(
                    "New client secret for {client_id}: {}\nTokens issued under the old secret no longer work.",
                    client_secret.expose()
                ),
            );
        }
        PartnerCommand::AddKey {
            client_id,
            public_key,
        } => {
            let key = read_key(&public_key)?;
            let key_id = ids::new_key_id();
            match store.add_key(&client_id, &key_id, &key, now).await? {
                AddKey::Added => output.print(
                    &json!({"client_id": client_id, "key_id": key_id, "fingerprint": key.fingerprint()}),
                    &format!("Key {key_id} added to {client_id} ({})", key.fingerprint()),
                ),
                AddKey::NoSuchPartner => bail!(no_partner(&client_id)),
                AddKey::Duplicate { key_id } => bail!("this key is already registered for {client_id} as {key_id}"),
            }
        }
        PartnerCommand::RevokeKey { client_id, key_id } => {
            if !store.revoke_key(&client_id, &key_id, now).await? {
                bail!("{client_id} has no active key {key_id}");
            }
            output.print(
                &json!({"client_id": client_id, "key_id": key_id, "revoked": true}),
                &format!("Key {key_id} of {client_id} revoked."),
            );
        }
        PartnerCommand::Activity {
            client_id,
            since,
            limit,
        } => {
            store
                .partner(&client_id)
                .await?
                .with_context(|| no_partner(&client_id))?;
            let events = store
                .events(&client_id, since, limit.clamp(1, 10_000))
                .await?;
            let mut text = format!(
                "{:<25} {:<22} {:<26} {:<16} {:<37} {}",
                "AT", "EVENT", "CODE", "SOURCE", "REQUEST ID", "REASON / ACTOR"
            );
            for event in &events {
                text.push_str(&format!(
                    "\n{:<25} {:<22} {:<26} {:<16} {:<37} {}",
                    event.at,
                    event.kind,
                    event.code.as_deref().unwrap_or("-"),
                    event.source.as_deref().unwrap_or("-"),
                    event.request_id.as_deref().unwrap_or("-"),
                    event.reason.as_deref().unwrap_or(&event.actor),
                ));
            }
            output.print(&json!(events), &text);
        }
        PartnerCommand::Set {
            client_id,
            require_body_signature,
            rate_limit,
        } => {
            let settings = PartnerSettings {
                require_body_signature,
                rate_limit: rate_limit.map(RateLimit::to_column),
            };
            if !store.update_partner(&client_id, &settings, now).await? {
                bail!(no_partner(&client_id));
            }
            let mut changed = json!({"client_id": client_id});
            let mut text = Vec::new();
            if let Some(limit) = rate_limit {
                changed["rate_limit"] = json!(limit.to_column());
                text.push(format!("{client_id} now has rate limit {limit}."));
            }
            if let Some(required) = require_body_signature {
                changed["require_body_signature"] = json!(required);
                let accepted = if required {
                    "requires v2"
                } else {
                    "accepts v1 and v2"
                };
                text.push(format!("{client_id} now {accepted} signatures."));
            }
            output.print(&changed, &text.join("\n"));
        }
    }
    if let Some((kind, client_id, reason)) = change {
        record(store, kind, &client_id, reason).await?;
    }
    Ok(())
}

/// The audit event an operator command leaves once it succeeded: its kind,
/// the partner and what changed. Never the secret.
fn operator_change(command: &PartnerCommand) -> Option<(&'static str, String, Option<String>)> {
    Some(match command {
        PartnerCommand::Disable { client_id } => ("partner_disabled", client_id.clone(), None),
        PartnerCommand::Enable { client_id } => ("partner_enabled", client_id.clone(), None),
        PartnerCommand::RevokeSessions { client_id } => {
            ("sessions_revoked", client_id.clone(), None)
        }
        PartnerCommand::RotateSecret { client_id } => ("secret_rotated", client_id.clone(), None),
        PartnerCommand::AddKey {
            client_id,
            public_key,
        } => (
            "key_added",
            client_id.clone(),
            Some(format!("from {}", public_key.display())),
        ),
        PartnerCommand::RevokeKey { client_id, key_id } => {
            ("key_revoked", client_id.clone(), Some(key_id.clone()))
        }
        PartnerCommand::Set {
            client_id,
            require_body_signature,
            rate_limit,
        } => {
            let mut changes = Vec::new();
            if let Some(required) = require_body_signature {
                changes.push(format!("require_body_signature={required}"));
            }
            if let Some(limit) = rate_limit {
                changes.push(format!("rate_limit={limit}"));
            }
            (
                "settings_changed",
                client_id.clone(),
                Some(changes.join(", ")),
            )
        }
        PartnerCommand::Create { .. }
        | PartnerCommand::List
        | PartnerCommand::Show { .. }
        | PartnerCommand::Activity { .. } => return None,
    })
}

async fn record(
    store: &Store,
    kind: &str,
    client_id: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let event = AuditEvent {
        at: crate::store::rfc3339(time::OffsetDateTime::now_utc()),
        client_id: Some(client_id.to_owned()),
        kind: kind.to_owned(),
        code: None,
        reason,
        source: None,
        request_id: None,
        actor: format!("operator:{}", operator_name()),
    };
    store.record_events(&[event]).await?;
    Ok(())
}

async fn set_enabled(
    store: &Store,
    output: &Output,
    client_id: &str,
    enabled: bool,
    now: i64,
) -> anyhow::Result<()> {
    if !store.set_partner_enabled(client_id, enabled, now).await? {
        bail!(no_partner(client_id));
    }
    output.print(
        &json!({"client_id": client_id, "enabled": enabled}),
        &format!(
            "{client_id} is now {}.{}",
            status(enabled),
            if enabled {
                ""
            } else {
                " Its logins are revoked: it logs in again once enabled."
            }
        ),
    );
    Ok(())
}

fn read_key(path: &PathBuf) -> anyhow::Result<PublicKey> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    PublicKey::from_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn no_partner(client_id: &str) -> String {
    format!("no partner with client id {client_id}")
}

fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    match text {
        "default" => Ok(RateLimit::Default),
        "off" => Ok(RateLimit::Off),
        _ => match text.parse::<u32>() {
            Ok(rate) if rate > 0 => Ok(RateLimit::PerSecond(rate)),
            _ => Err("expected requests per second (1 or more), off, or default".into()),
        },
    }
}

fn status(enabled: bool) -> &'static str {
    if enabled { "enabled" } else { "disabled" }
}
