//! `partner activity`: a partner's recent security events, newest first.

use anyhow::Context;
use clap::Args;
use serde_json::json;

use super::{Operator, no_partner};
use crate::cli::terminal::parse_time;
use crate::domain::ClientId;
use crate::store::AuditQuery;

#[derive(Debug, Args)]
pub struct Opts {
    client_id: ClientId,
    /// Only events at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    since: Option<time::OffsetDateTime>,
    /// Only the events of this request (its X-Request-Id).
    #[arg(long)]
    request_id: Option<String>,
    /// Show at most this many.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

pub async fn run(opts: Opts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let client_id = opts.client_id;
    operator
        .store
        .partner(&client_id)
        .await?
        .with_context(|| no_partner(&client_id))?;
    let events = operator
        .store
        .audit_events(
            &client_id,
            &AuditQuery {
                since: opts.since,
                request_id: opts.request_id.as_deref(),
                limit: opts.limit.clamp(1, 10_000),
            },
        )
        .await?;
    let mut text = format!(
        "{:<25} {:<22} {:<26} {:<16} {:<37} {}",
        "AT", "EVENT", "CODE", "SOURCE", "REQUEST ID", "REASON / ACTOR"
    );
    for event in &events {
        text.push_str(&format!(
            "\n{:<25} {:<22} {:<26} {:<16} {:<37} {}",
            crate::store::rfc3339(event.at),
            event.kind,
            event.code.as_deref().unwrap_or("-"),
            event.source.as_deref().unwrap_or("-"),
            event.request_id.as_deref().unwrap_or("-"),
            event.reason.as_deref().unwrap_or(&event.actor),
        ));
    }
    operator.output.print(&json!(events), &text);
    Ok(())
}
