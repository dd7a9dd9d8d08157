//! `partner`: register partners and manage their secrets and keys; one module
//! per command, each an `Opts` and a `run`.
//!
//! Every change is a database write, and servers re-read partners and keys
//! within half a second, so a change is live on running servers at once.
//! Each change leaves an audit event naming the operator.

mod activity;
mod add_key;
mod create;
mod enable;
mod revoke_key;
mod revoke_sessions;
mod rotate_secret;
mod set;
mod show;
mod webhooks;

use std::path::Path;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::terminal::{Output, operator_name};
use crate::domain::{AuditKind, ClientId, PublicKey};
use crate::store::{AuditEvent, Store};

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
    Create(create::Opts),
    /// List all partners.
    List,
    /// Show one partner and its keys.
    Show(show::Opts),
    /// Refuse logins and requests from a partner, and end its logins: its
    /// tokens stay dead when it is enabled again.
    Disable(enable::Opts),
    /// Allow a disabled partner again.
    Enable(enable::Opts),
    /// End every login of a partner that stays enabled: its tokens stop
    /// working at once, and it logs in again with its secret.
    RevokeSessions(revoke_sessions::Opts),
    /// Issue a new client secret (printed once); tokens from the old one stop working.
    RotateSecret(rotate_secret::Opts),
    /// Register an additional public key (for rotation with overlap).
    AddKey(add_key::Opts),
    /// Stop accepting signatures made with a key.
    RevokeKey(revoke_key::Opts),
    /// Recent security events: logins, refreshes, refused requests and why,
    /// throttling, operator changes. Newest first.
    Activity(activity::Opts),
    /// Change a partner's settings.
    Set(set::Opts),
    /// A partner's webhook endpoints, with each one's last delivery attempt.
    Webhooks(webhooks::ListOpts),
    /// Enable a partner's webhook endpoint again (e.g. one the server
    /// disabled after 5 days of failures, once it is fixed).
    WebhookEnable(webhooks::SwitchOpts),
    /// Stop deliveries to a partner's webhook endpoint.
    WebhookDisable(webhooks::SwitchOpts),
}

pub async fn run(args: PartnerArgs, store: &Store) -> anyhow::Result<()> {
    let operator = Operator {
        store,
        output: Output { json: args.json },
        now: time::OffsetDateTime::now_utc(),
    };
    match args.command {
        PartnerCommand::Create(opts) => create::run(opts, &operator).await,
        PartnerCommand::List => show::list(&operator).await,
        PartnerCommand::Show(opts) => show::run(opts, &operator).await,
        PartnerCommand::Disable(opts) => enable::run(opts, false, &operator).await,
        PartnerCommand::Enable(opts) => enable::run(opts, true, &operator).await,
        PartnerCommand::RevokeSessions(opts) => revoke_sessions::run(opts, &operator).await,
        PartnerCommand::RotateSecret(opts) => rotate_secret::run(opts, &operator).await,
        PartnerCommand::AddKey(opts) => add_key::run(opts, &operator).await,
        PartnerCommand::RevokeKey(opts) => revoke_key::run(opts, &operator).await,
        PartnerCommand::Activity(opts) => activity::run(opts, &operator).await,
        PartnerCommand::Set(opts) => set::run(opts, &operator).await,
        PartnerCommand::Webhooks(opts) => webhooks::list(opts, &operator).await,
        PartnerCommand::WebhookEnable(opts) => webhooks::switch(opts, true, &operator).await,
        PartnerCommand::WebhookDisable(opts) => webhooks::switch(opts, false, &operator).await,
    }
}

/// The operator at the command line: the database, how to print, and now.
struct Operator<'a> {
    store: &'a Store,
    output: Output,
    now: time::OffsetDateTime,
}

impl Operator<'_> {
    /// Ends a command that changed something: records its audit event, then
    /// prints what it did. Printed even when the audit write failed (a
    /// secret shown once must be shown), and recorded even when printing
    /// ends the process (a reader that went away).
    async fn changed(
        &self,
        kind: AuditKind,
        client_id: &ClientId,
        reason: Option<String>,
        json: &serde_json::Value,
        text: &str,
    ) -> anyhow::Result<()> {
        let recorded = self.record(kind, client_id, reason).await;
        self.output.print(json, text);
        recorded
    }

    /// The audit event a change leaves once it succeeded: its kind, the
    /// partner and what changed, by this operator. Never a secret.
    async fn record(
        &self,
        kind: AuditKind,
        client_id: &ClientId,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        let event = AuditEvent {
            at: time::OffsetDateTime::now_utc(),
            client_id: Some(client_id.to_string()),
            kind,
            code: None,
            reason,
            source: None,
            request_id: None,
            actor: format!("operator:{}", operator_name()),
        };
        self.store.record_audit(&[event]).await?;
        Ok(())
    }
}

fn read_key(path: &Path) -> anyhow::Result<PublicKey> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    PublicKey::from_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn no_partner(client_id: &ClientId) -> String {
    format!("no partner with client id {client_id}")
}

fn status(enabled: bool) -> &'static str {
    if enabled { "enabled" } else { "disabled" }
}
